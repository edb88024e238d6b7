//! IMAP with real clients against a real `lifeboat serve`: curl (`imap://` with STARTTLS
//! and `imaps://`), mbsync (isync) syncing INBOX to a local Maildir, and two concurrent
//! imaplib sessions seeing each other's flag changes. The clients come from
//! tests/install-deps.sh (curl, isync, python3).

mod support;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use lifeboat_mailstore::Class;
use support::lifeboat::Lifeboat;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "secret"; // what Lifeboat::add_user sets

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: \"Sender, The\" <sender@else.test>\r\nTo: alice@example.test\r\n\
         Subject: message {n}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <m{n}@else.test>\r\n\r\nThis is message {n}.\r\n"
    )
    .into_bytes()
}

/// A Lifeboat with alice and `count` messages in her INBOX (stored before `serve`
/// starts, as the milter would have), IMAP on loopback with a certificate. Started.
fn lifeboat_with_mail(count: usize) -> Lifeboat {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]);
    lifeboat.deliver_offline(ALICE, (1..=count).map(|n| (message(n), Class::Journal)));
    lifeboat.enable_imap("127.0.0.1", false, true);
    lifeboat.start();
    lifeboat
}

fn plain(lifeboat: &Lifeboat) -> SocketAddr {
    lifeboat.imap.unwrap().0
}

fn implicit_tls(lifeboat: &Lifeboat) -> SocketAddr {
    lifeboat.imap.unwrap().1
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs curl with `args` (after the common ones); asserts it succeeded, returns stdout.
fn curl(lifeboat: &Lifeboat, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60"])
        .args(["--user", &format!("{ALICE}:{PASSWORD}")])
        .args(args)
        .output()
        .expect("curl (tests/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}\n{}",
        text(&out),
        lifeboat.log()
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn curl_lists_and_fetches_by_uid_over_starttls_and_implicit_tls() {
    let lifeboat = lifeboat_with_mail(3);
    let starttls = format!("imap://{}", plain(&lifeboat));
    let tls = format!("imaps://{}", implicit_tls(&lifeboat));
    for (base, extra) in [
        (&starttls, &["--ssl-reqd", "--insecure"][..]),
        (&tls, &["--insecure"][..]),
    ] {
        let get = |path: &str| {
            let url = format!("{base}/{path}");
            let mut args = extra.to_vec();
            args.push(&url);
            curl(&lifeboat, &args)
        };
        // The folder list.
        let list = get("");
        assert!(
            list.contains("* LIST (") && list.contains("INBOX"),
            "{base}: {list}"
        );
        // INBOX's messages (SEARCH ALL).
        let search = get("INBOX?ALL");
        assert_eq!(search.trim_end(), "* SEARCH 1 2 3", "{base}");
        // Message 2 by UID: exactly its bytes.
        let fetched = get("INBOX;UID=2");
        let stored = lifeboat.message_bytes(ALICE, &lifeboat.inbox(ALICE)[1]);
        assert_eq!(fetched.as_bytes(), &stored[..], "{base}");
        assert!(stored.ends_with(&message(2)), "{base}");
    }
}

/// An mbsync config syncing the IMAP INBOX with a local Maildir under `dir`.
fn mbsync_config(lifeboat: &Lifeboat, dir: &Path) -> std::path::PathBuf {
    let (cert, _) = lifeboat.cert_paths();
    let config = dir.join("mbsyncrc");
    let local = dir.join("local");
    fs::create_dir_all(&local).unwrap();
    fs::write(
        &config,
        format!(
            "IMAPAccount lifeboat\n\
             Host 127.0.0.1\n\
             Port {port}\n\
             User {ALICE}\n\
             Pass {PASSWORD}\n\
             SSLType STARTTLS\n\
             CertificateFile {cert}\n\
             \n\
             IMAPStore remote\n\
             Account lifeboat\n\
             \n\
             MaildirStore local\n\
             Path {local}/\n\
             Inbox {local}/INBOX\n\
             \n\
             Channel inbox\n\
             Far :remote:\n\
             Near :local:\n\
             Patterns INBOX\n\
             Create Near\n\
             Expunge None\n\
             Sync All\n\
             SyncState *\n",
            port = plain(lifeboat).port(),
            cert = cert.display(),
            local = local.display(),
        ),
    )
    .unwrap();
    config
}

/// Runs `mbsync -c CONFIG -a` on a pseudo-terminal (`script`), so it prints its
/// progress counters; asserts it succeeded, returns its output.
fn mbsync(lifeboat: &Lifeboat, config: &Path) -> String {
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("mbsync -c {} -a", config.display()))
        .arg("/dev/null")
        .output()
        .expect("script (util-linux) and mbsync (tests/install-deps.sh installs isync)");
    assert!(
        out.status.success(),
        "mbsync: {}\n{}",
        text(&out),
        lifeboat.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The message files in a local Maildir folder (`new` and `cur`).
fn local_messages(folder: &Path) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    for sub in ["new", "cur"] {
        for entry in fs::read_dir(folder.join(sub)).unwrap() {
            messages.push(fs::read(entry.unwrap().path()).unwrap());
        }
    }
    messages.sort();
    messages
}

/// mbsync's last progress counters, e.g. `C: 1/1  B: 1/1  F: +0/0 *0/0 #0/0  N: +3/3
/// *0/0 #0/0` (far and near side: added, flags updated, trashed).
fn counters(output: &str) -> String {
    output
        .split(['\r', '\n'])
        .rfind(|l| l.contains("C: ") && l.contains("B: "))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A local copy without the `X-TUID` header mbsync adds to find its copies again.
fn without_tuid(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.split_inclusive('\n')
        .filter(|line| !line.starts_with("X-TUID: "))
        .collect::<String>()
        .into_bytes()
}

/// The messages as mbsync stores them locally (LF line ends).
fn lf(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().filter(|&b| b != b'\r').collect()
}

#[test]
fn mbsync_pulls_inbox_and_a_second_run_transfers_nothing() {
    let lifeboat = lifeboat_with_mail(3);
    let dir = tempfile::tempdir().unwrap();
    let config = mbsync_config(&lifeboat, dir.path());

    let first = mbsync(&lifeboat, &config);
    let inbox = dir.path().join("local/INBOX");
    let got = local_messages(&inbox);
    assert_eq!(got.len(), 3, "{first}");
    let records = lifeboat.inbox(ALICE);
    for record in &records {
        // The stored bytes, with LF line ends (and mbsync's X-TUID header).
        let stored = lf(&lifeboat.message_bytes(ALICE, record));
        assert!(
            got.iter().any(|m| without_tuid(m) == stored),
            "UID {} missing: {:?} not in {:?}",
            record.uid,
            String::from_utf8_lossy(&stored),
            got.iter()
                .map(|m| String::from_utf8_lossy(m))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(
        counters(&first),
        "C: 1/1  B: 1/1  F: +0/0 *0/0 #0/0  N: +3/3 *0/0 #0/0",
        "{first}"
    );

    let second = mbsync(&lifeboat, &config);
    assert_eq!(
        counters(&second),
        "C: 1/1  B: 1/1  F: +0/0 *0/0 #0/0  N: +0/0 *0/0 #0/0",
        "{second}"
    );
    assert_eq!(local_messages(&inbox), got, "{second}");
    // The server saw no change either.
    let after = lifeboat.inbox(ALICE);
    assert_eq!(
        after.iter().map(|m| (m.uid, m.flags)).collect::<Vec<_>>(),
        records.iter().map(|m| (m.uid, m.flags)).collect::<Vec<_>>()
    );
}

#[test]
fn mbsync_pushes_a_local_new_message_up() {
    let lifeboat = lifeboat_with_mail(2);
    let dir = tempfile::tempdir().unwrap();
    let config = mbsync_config(&lifeboat, dir.path());
    mbsync(&lifeboat, &config);
    let inbox = dir.path().join("local/INBOX");
    let new = message(9);
    fs::write(inbox.join("new/1764000000.M1P1.client"), &new).unwrap();
    let out = mbsync(&lifeboat, &config);
    assert_eq!(
        counters(&out),
        "C: 1/1  B: 1/1  F: +1/1 *0/0 #0/0  N: +0/0 *0/0 #0/0",
        "{out}"
    );
    let records = lifeboat.inbox(ALICE);
    assert_eq!(records.len(), 3, "{out}");
    let stored = lifeboat.message_bytes(ALICE, &records[2]);
    // mbsync adds an X-TUID header to find the message again.
    assert!(
        String::from_utf8_lossy(&stored).contains("Subject: message 9"),
        "{}",
        String::from_utf8_lossy(&stored)
    );
    let again = mbsync(&lifeboat, &config);
    assert_eq!(
        counters(&again),
        "C: 1/1  B: 1/1  F: +0/0 *0/0 #0/0  N: +0/0 *0/0 #0/0",
        "{again}"
    );
}

#[test]
fn a_store_in_one_imaplib_session_shows_at_the_next_noop_in_another() {
    let lifeboat = lifeboat_with_mail(3);
    let script = r#"
import imaplib, ssl, sys
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def session():
    m = imaplib.IMAP4(host, port)
    m.starttls(ssl_context=ctx)
    m.login(user, password)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"], (typ, data)
    return m
a, b = session(), session()
# Nothing pending in b yet.
b.noop()
print("b before:", b.response("FETCH"))
typ, data = a.store("2", "+FLAGS", "(\\Flagged)")
print("a store:", typ, data)
typ, data = b.noop()
print("b noop:", typ, b.response("FETCH"))
typ, data = b.store("2", "-FLAGS", "(\\Flagged)")
print("b store:", typ, data)
typ, data = a.noop()
print("a noop:", typ, a.response("FETCH"))
for m in (a, b):
    m.logout()
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([
            "127.0.0.1".to_string(),
            plain(&lifeboat).port().to_string(),
            ALICE.to_string(),
            PASSWORD.to_string(),
        ])
        .output()
        .expect("python3");
    let out_text = text(&out);
    assert!(out.status.success(), "{out_text}\n{}", lifeboat.log());
    assert!(
        out_text.contains("b before: ('FETCH', [None])"),
        "{out_text}"
    );
    // a selected first: the mail is \Recent to a alone (RFC 3501 §2.3.2).
    assert!(
        out_text.contains("a store: OK [b'2 (FLAGS (\\\\Flagged \\\\Recent))']"),
        "{out_text}"
    );
    assert!(
        out_text.contains("b noop: OK ('FETCH', [b'2 (UID 2 FLAGS (\\\\Flagged))'])"),
        "{out_text}"
    );
    assert!(
        out_text.contains("a noop: OK ('FETCH', [b'2 (UID 2 FLAGS (\\\\Recent))'])"),
        "{out_text}"
    );
}
