//! The optional log watcher: follows Postfix's log for two kinds of line.
//!
//! - Deferrals of mail to protected domains, for admins who cannot add the fallback
//!   relay to master.cf. Each such line triggers a probe of that domain's origin at
//!   once; like every deferral, it never declares an outage by itself. They look like
//!   (program name `<syslog_name>/smtp`, `/lmtp` or `/error`): `... postfix/smtp[123]:
//!   8A55A9B26A2: to=<u@example.com>, relay=..., dsn=4.4.1, status=deferred (connect to
//!   ...: Connection refused)`
//! - A milter after Lifeboat's refusing a message at end of message (docs/design.md
//!   §5.1, "After the milter"): Postfix 3.7 then logs from cleanup `... postfix/cleanup[9]:
//!   75F249922E4: milter-reject: END-OF-MESSAGE from ...: 5.7.1 ...` (or `4.x.x` for a
//!   temporary refusal, `milter-discard:` for a discard). Lifeboat's copies of that
//!   queue id were made for a message Postfix did not take, and are cancelled.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::config::PostfixLog;

/// What a Postfix log line tells the watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    /// Mail to this domain (lowercase) was deferred.
    Deferred(String),
    /// A milter refused or discarded the message with this queue id at end of message,
    /// after Lifeboat's milter had answered.
    RefusedAfterMilter(String),
}

/// The event a log line reports, if any.
pub fn event(line: &str) -> Option<LogEvent> {
    deferred_domain(line)
        .map(LogEvent::Deferred)
        .or_else(|| refused_queue_id(line).map(LogEvent::RefusedAfterMilter))
}

/// The queue id of a cleanup line saying a milter rejected (5xx or 4xx) or discarded the
/// message at end of message. Rejections before the message was queued (`NOQUEUE`) and
/// at other stages (where no milter has stored anything yet) are not it.
pub fn refused_queue_id(line: &str) -> Option<String> {
    let (head, rest) = line.split_once(": milter-")?;
    let (action, rest) = rest.split_once(": ")?;
    if !matches!(action, "reject" | "discard") || !rest.starts_with("END-OF-MESSAGE ") {
        return None;
    }
    let queue_id = head.rsplit(' ').next()?;
    let plausible = !queue_id.is_empty()
        && queue_id != "NOQUEUE"
        && queue_id.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then(|| queue_id.to_string())
}

/// The recipient domain of a Postfix delivery log line that reports a deferral, in
/// lowercase. `None` for every other line.
pub fn deferred_domain(line: &str) -> Option<String> {
    if !line.contains(" status=deferred") {
        return None;
    }
    let start = line.find(" to=<")? + " to=<".len();
    let recipient = &line[start..start + line[start..].find('>')?];
    let domain = recipient.rsplit_once('@')?.1;
    (!domain.is_empty()).then(|| domain.trim_end_matches('.').to_ascii_lowercase())
}

/// How often a quiet log file is checked for new lines and for rotation.
const POLL: Duration = Duration::from_millis(200);

/// Follows `source` on a thread of its own, calling `on_event` with each event of the
/// lines written from now on. Runs until the process exits; problems (a missing file,
/// journalctl failing) are logged and retried, never fatal to `serve`.
pub fn follow(source: PostfixLog, on_event: impl Fn(LogEvent) + Send + 'static) {
    let name = format!("postfix-log {source}");
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        loop {
            let result = match &source {
                PostfixLog::File(path) => follow_file(path, &on_event),
                PostfixLog::Journald => follow_journald(&on_event),
            };
            if let Err(e) = result {
                tracing::warn!(source = %source, error = %e, "postfix log: cannot follow; retrying in 10 s");
            }
            std::thread::sleep(Duration::from_secs(10));
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "postfix log: cannot start the follower thread");
    }
}

/// Reads lines appended to `path`, reopening it when it is rotated (a new file at the
/// path) or truncated. Starts at the end: old deferrals are old news.
fn follow_file(path: &Path, on_event: &impl Fn(LogEvent)) -> io::Result<()> {
    let mut follower = FileFollower::open(path)?;
    tracing::info!(path = %path.display(), "following Postfix's log for deferrals and refusals");
    loop {
        for line in follower.new_lines()? {
            if let Some(event) = event(&line) {
                on_event(event);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The reading half of `tail -F`.
pub struct FileFollower {
    path: PathBuf,
    reader: BufReader<File>,
    inode: u64,
    position: u64,
    partial: String,
}

impl FileFollower {
    /// Opens `path` positioned at its end.
    pub fn open(path: &Path) -> io::Result<FileFollower> {
        let mut file = File::open(path)?;
        let position = file.seek(SeekFrom::End(0))?;
        let inode = file.metadata()?.ino();
        Ok(FileFollower {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            inode,
            position,
            partial: String::new(),
        })
    }

    /// The complete lines written since the last call. After a rotation the rest of the
    /// old file is read first, then the new file from its start.
    pub fn new_lines(&mut self) -> io::Result<Vec<String>> {
        let mut lines = self.read_available()?;
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() != self.inode => {
                let file = File::open(&self.path)?;
                self.inode = meta.ino();
                self.reader = BufReader::new(file);
                self.position = 0;
                self.partial.clear();
                lines.extend(self.read_available()?);
            }
            Ok(meta) if meta.len() < self.position => {
                // Truncated in place (copytruncate): start over from the beginning.
                self.reader.seek(SeekFrom::Start(0))?;
                self.position = 0;
                self.partial.clear();
                lines.extend(self.read_available()?);
            }
            // Same file, or none at the path for a moment during rotation.
            _ => {}
        }
        Ok(lines)
    }

    fn read_available(&mut self) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = self.reader.read_until(b'\n', &mut buf)?;
            if read == 0 {
                return Ok(lines);
            }
            self.position += read as u64;
            self.partial.push_str(&String::from_utf8_lossy(&buf));
            if self.partial.ends_with('\n') {
                let line = std::mem::take(&mut self.partial);
                lines.push(line.trim_end().to_string());
            }
        }
    }
}

/// Reads new journal entries of the mail facility through `journalctl` (the service
/// account needs to be in the `systemd-journal` group).
fn follow_journald(on_event: &impl Fn(LogEvent)) -> io::Result<()> {
    let mut child = Command::new("journalctl")
        .args(["--follow", "--lines=0", "--output=cat", "SYSLOG_FACILITY=2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    tracing::info!("following Postfix's log in the journal for deferrals and refusals");
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        if let Some(event) = event(&line?) {
            on_event(event);
        }
    }
    let status = child.wait()?;
    Err(io::Error::other(format!("journalctl ended: {status}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    // Lines as Postfix 3.7 wrote them on this kind of machine (shared/notes).
    const DEFERRED_RCPT: &str = "Nov 25 04:00:00 gw postfix/smtp[811]: 3F1A2: to=<u@Example.TEST>, relay=127.0.0.1[127.0.0.1]:2526, delay=0.1, delays=0/0/0/0.1, dsn=4.2.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.2.0 busy (in reply to RCPT TO command))";
    const REFUSED: &str = "Nov 25 04:00:01 gw postfix/smtp[812]: 3F1A3: to=<v@example.test>, relay=none, delay=0.2, delays=0/0/0.2/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2526: Connection refused)";
    const SUSPENDED: &str = "Nov 25 04:00:02 gw postfix/error[813]: 3F1A4: to=<w@example.test>, orig_to=<alias@example.test>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2526: Connection refused)";
    const SENT: &str = "Nov 25 04:00:03 gw postfix/smtp[814]: 3F1A5: to=<u@example.test>, relay=127.0.0.1[127.0.0.1]:2526, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)";

    #[test]
    fn deferral_lines_name_the_recipient_domain() {
        assert_eq!(
            deferred_domain(DEFERRED_RCPT).as_deref(),
            Some("example.test")
        );
        assert_eq!(deferred_domain(REFUSED).as_deref(), Some("example.test"));
        assert_eq!(deferred_domain(SUSPENDED).as_deref(), Some("example.test"));
    }

    // Lines Postfix 3.7.11 wrote in tests/capture.rs's milter and header_checks runs.
    const MILTER_REJECT: &str = "Dec 03 08:15:14 gateway postfix/cleanup[14142]: 75F249922E4: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.7.1 Command rejected; from=<s@else.test> to=<alice@example.test> proto=ESMTP helo=<client.test>";
    const HEADER_REJECT: &str = "Dec 03 08:15:15 gateway postfix/cleanup[14142]: 8652B9922E6: reject: header Subject: reject-me from localhost[127.0.0.1]; from=<s@else.test> to=<alice@example.test> proto=ESMTP helo=<client.test>: 5.7.1 header check says no";
    const RCPT_REJECT: &str = "Dec 03 08:15:16 gateway postfix/smtpd[14078]: NOQUEUE: milter-reject: RCPT from localhost[127.0.0.1]: 550 5.7.1 Command rejected; from=<s@else.test> to=<a@example.test> proto=ESMTP helo=<client.test>";

    #[test]
    fn a_milter_refusal_at_end_of_message_names_the_queue_id() {
        assert_eq!(
            event(MILTER_REJECT),
            Some(LogEvent::RefusedAfterMilter("75F249922E4".into()))
        );
        let tempfail = MILTER_REJECT.replace("5.7.1 Command rejected", "4.7.1 Try again later");
        assert_eq!(refused_queue_id(&tempfail).as_deref(), Some("75F249922E4"));
        let discard = "Dec 03 08:15:14 gw postfix/cleanup[1]: 3F1A9: milter-discard: END-OF-MESSAGE from localhost[127.0.0.1]: milter triggers DISCARD action; from=<s@else.test> to=<a@example.test> proto=ESMTP helo=<c>";
        assert_eq!(refused_queue_id(discard).as_deref(), Some("3F1A9"));
        assert_eq!(event(HEADER_REJECT), None, "no milter had stored it");
        assert_eq!(event(RCPT_REJECT), None);
        assert_eq!(
            event(DEFERRED_RCPT),
            Some(LogEvent::Deferred("example.test".into()))
        );
    }

    #[test]
    fn other_lines_are_ignored() {
        assert_eq!(deferred_domain(SENT), None);
        assert_eq!(deferred_domain("status=deferred without a recipient"), None);
        assert_eq!(deferred_domain("x: to=<broken status=deferred"), None);
        assert_eq!(deferred_domain(""), None);
    }

    #[test]
    fn the_follower_reads_appended_lines_across_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("maillog");
        std::fs::write(&path, "old line\n").unwrap();
        let mut follower = FileFollower::open(&path).unwrap();
        assert!(follower.new_lines().unwrap().is_empty());

        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(log, "one\ntwo, half").unwrap();
        assert_eq!(follower.new_lines().unwrap(), ["one"]);
        writeln!(log, " and the rest").unwrap();
        assert_eq!(follower.new_lines().unwrap(), ["two, half and the rest"]);

        // Rotation: the old file is renamed after one last line, a new one appears.
        writeln!(log, "last of the old file").unwrap();
        std::fs::rename(&path, dir.path().join("maillog.1")).unwrap();
        std::fs::write(&path, "first of the new file\n").unwrap();
        assert_eq!(
            follower.new_lines().unwrap(),
            ["last of the old file", "first of the new file"]
        );

        // Truncation in place (copytruncate).
        std::fs::write(&path, "").unwrap();
        assert!(follower.new_lines().unwrap().is_empty());
        std::fs::write(&path, "after truncation\n").unwrap();
        assert_eq!(follower.new_lines().unwrap(), ["after truncation"]);
    }
}
