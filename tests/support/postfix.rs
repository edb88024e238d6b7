//! A private Postfix instance per test, built by `tests/support/postfix-instance`.
//!
//! The instance listens on a loopback port ([`Postfix::smtpd`]), relays the protected
//! domains through its `origin` transport to [`PostfixOptions::origin`] (with
//! `smtp_fallback_relay` when [`PostfixOptions::fallback`] is set) and everything else,
//! bounces included, to [`PostfixOptions::outside`]. Nothing touches /etc/postfix. See the
//! script for the exact configuration and the Postfix facts behind it.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The shell script that writes, starts and stops an instance (shared with benchmarks).
pub const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/postfix-instance"
);

/// How to build the instance. `PostfixOptions::new` fills in the usual defaults.
#[derive(Debug, Clone)]
pub struct PostfixOptions {
    /// `smtpd_milters` value, e.g. `inet:127.0.0.1:8891`; `milter_default_action = accept`.
    pub milter: Option<String>,
    /// Where the protected domains are delivered (transport `origin`).
    pub origin: SocketAddr,
    /// Where every other domain goes, bounces and double bounces included.
    pub outside: SocketAddr,
    /// `smtp_fallback_relay` of the `origin` transport (Lifeboat's fallback listener).
    pub fallback: Option<SocketAddr>,
    /// Domains routed to the origin (`relay_domains`).
    pub protected_domains: Vec<String>,
    /// Retry deferred mail within seconds on Postfix's own timers (queue_run_delay,
    /// minimal/maximal_backoff_time = 1s). Off by default: tests should call
    /// [`Postfix::flush`] rather than wait for timers.
    pub fast_retry: bool,
    /// Extra `main.cf` lines (`name = value`), written after the defaults so they win,
    /// e.g. `header_checks = regexp:/path`.
    pub main_cf: Vec<String>,
}

impl PostfixOptions {
    /// No milter, no fallback, protected domain `example.test`, Postfix's normal timers.
    pub fn new(origin: SocketAddr, outside: SocketAddr) -> PostfixOptions {
        PostfixOptions {
            milter: None,
            origin,
            outside,
            fallback: None,
            protected_domains: vec!["example.test".to_string()],
            fast_retry: false,
            main_cf: Vec::new(),
        }
    }
}

/// One message in Postfix's queue, as `postqueue -j` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// `incoming`, `active`, `deferred`, `hold` or `maildrop`.
    pub queue_name: String,
    pub queue_id: String,
    /// Envelope sender; empty for the null sender.
    pub sender: String,
    pub arrival_time: u64,
    pub message_size: u64,
    pub recipients: Vec<QueuedRecipient>,
}

/// A recipient still waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub address: String,
    /// Why the last attempt failed, e.g. `host 127.0.0.1[127.0.0.1] said: 450 4.2.0 ...`
    /// or `connect to 127.0.0.1[127.0.0.1]:2526: Connection refused`; None before the
    /// first attempt.
    pub delay_reason: Option<String>,
}

/// A running Postfix instance in a temporary directory it owns. Stops on drop.
pub struct Postfix {
    /// The gateway's smtpd (127.0.0.1 and a free port).
    pub smtpd: SocketAddr,
    dir: TempDir,
    sent: AtomicU64,
}

impl Postfix {
    /// Writes and starts an instance; panics (with the maillog tail) if it cannot start,
    /// or if Postfix or swaks is not installed.
    pub fn start(opts: &PostfixOptions) -> Postfix {
        for tool in ["postfix", "postqueue", "swaks"] {
            if find_program(tool).is_none() {
                panic!("{tool} is not installed; run ./tests/install-deps.sh");
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-postfix-")
            .tempdir()
            .expect("create Postfix temp dir");

        // The port from free_port() can be taken by someone else before master binds it;
        // master then fails with "Address already in use" and we try another port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = super::free_port();
            let mut script = Command::new(SCRIPT);
            script
                .arg(dir.path())
                .arg("start")
                .args(["--smtpd-port", &port.to_string()])
                .args(["--origin", &opts.origin.to_string()])
                .args(["--outside", &opts.outside.to_string()])
                .args(["--protected-domains", &opts.protected_domains.join(" ")]);
            if let Some(milter) = &opts.milter {
                script.args(["--milter", milter]);
            }
            if let Some(fallback) = opts.fallback {
                script.args(["--fallback", &fallback.to_string()]);
            }
            if opts.fast_retry {
                script.arg("--fast-retry");
            }
            for line in &opts.main_cf {
                script.args(["--main-cf", line]);
            }
            let out = run(&mut script);
            if out.status.success() {
                return Postfix {
                    smtpd: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    dir,
                    sent: AtomicU64::new(0),
                };
            }
            let report = output_text(&out);
            if attempt < 3 && report.contains("Address already in use") {
                continue;
            }
            panic!("postfix-instance start failed ({}):\n{report}", out.status);
        }
    }

    /// The instance's directory (etc/, queue/, data/, maillog).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The instance's config directory, for `-c` of Postfix's tools.
    pub fn config_dir(&self) -> PathBuf {
        self.dir().join("etc")
    }

    /// A Postfix tool (`postsuper`, `postconf`, `postqueue`, `postfix`, ...) already given
    /// `-c <config dir>`; add the remaining arguments and run it.
    pub fn tool(&self, name: &str) -> Command {
        let program = find_program(name).unwrap_or_else(|| PathBuf::from(name));
        let mut command = Command::new(program);
        command.arg("-c").arg(self.config_dir());
        command
    }

    /// Everything in the queue (`postqueue -j`), in Postfix's order.
    pub fn queue(&self) -> Vec<QueuedMessage> {
        let out = run(self.tool("postqueue").arg("-j"));
        assert!(
            out.status.success(),
            "postqueue -j failed:\n{}",
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(parse_queue_line)
            .collect()
    }

    /// Polls the queue until `done` holds for it; returns that snapshot, or None on
    /// timeout.
    pub fn wait_for_queue(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[QueuedMessage]) -> bool,
    ) -> Option<Vec<QueuedMessage>> {
        let deadline = Instant::now() + timeout;
        loop {
            let queue = self.queue();
            if done(&queue) {
                return Some(queue);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the queue is empty; false on timeout.
    pub fn wait_queue_empty(&self, timeout: Duration) -> bool {
        self.wait_for_queue(timeout, |queue| queue.is_empty())
            .is_some()
    }

    /// `postqueue -f`: retry all deferred mail now, dead destinations included.
    /// Asynchronous: it only wakes the queue manager. Mail that is still in the `active`
    /// queue (its attempt not finished) is not affected; wait until it shows as
    /// `deferred` first (see [`Postfix::wait_for_queue`]).
    pub fn flush(&self) {
        let out = run(self.tool("postqueue").arg("-f"));
        assert!(
            out.status.success(),
            "postqueue -f failed:\n{}",
            output_text(&out)
        );
    }

    /// The whole maillog so far. Lines arrive a moment after the event (postlogd).
    pub fn log(&self) -> String {
        fs::read(self.dir().join("maillog"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the maillog contains `pattern` (a plain substring, not a regex);
    /// false on timeout.
    pub fn wait_for_log(&self, pattern: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(pattern) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Submits a message through the gateway's smtpd with swaks (a real SMTP client).
    /// `from` may be empty for the null sender. `message` is sent byte for byte (swaks's
    /// token expansion, `\n` rewriting and header munging are turned off; this function
    /// dot-stuffs and terminates it). Ok once the gateway answered 250 after DATA, so the
    /// message is in the queue; Err carries swaks's transcript.
    pub fn send(&self, from: &str, to: &[&str], message: &[u8]) -> Result<(), String> {
        if to.is_empty() {
            return Err("send: no recipients".to_string());
        }
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        let file = self.dir().join(format!("send-{n}.eml"));
        fs::write(&file, swaks_data(message))
            .map_err(|e| format!("write {}: {e}", file.display()))?;
        let swaks = find_program("swaks").unwrap_or_else(|| PathBuf::from("swaks"));
        let out = run(Command::new(swaks)
            .args(["--server", &self.smtpd.to_string()])
            .args(["--helo", "client.test"])
            // swaks treats an empty --from as "use the default"; <> is the null sender.
            .args(["--from", if from.is_empty() { "<>" } else { from }])
            .args(["--to", &to.join(",")])
            .arg("--data")
            .arg(format!("@{}", file.display()))
            .arg("--no-data-fixup")
            .arg("--suppress-data")
            .args(["--timeout", "30"]));
        let _ = fs::remove_file(&file);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "swaks failed ({}):\n{}",
                out.status,
                output_text(&out)
            ))
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if thread::panicking() {
            // The maillog is the first thing one needs when a test fails; the directory
            // is about to be deleted.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {}/maillog ---", self.dir().display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let out = run(Command::new(SCRIPT).arg(self.dir()).arg("stop"));
        if !out.status.success() {
            eprintln!("postfix-instance stop failed:\n{}", output_text(&out));
        }
    }
}

/// Runs a command to completion; panics only if it cannot be started at all.
fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()))
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Looks for a program on PATH and in the sbin directories, where Postfix's tools live
/// but which are not on every user's PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The DATA section swaks must send verbatim under `--no-data-fixup`: the message,
/// dot-stuffed, ending in a line break, then the final `.` (swaks adds the CRLF after it).
fn swaks_data(message: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(message.len() + 8);
    let mut at_line_start = true;
    for &byte in message {
        if at_line_start && byte == b'.' {
            data.push(b'.');
        }
        data.push(byte);
        at_line_start = byte == b'\n';
    }
    if !at_line_start {
        data.extend_from_slice(b"\r\n");
    }
    data.push(b'.');
    data
}

/// One line of `postqueue -j` output (one JSON object per message).
fn parse_queue_line(line: &str) -> QueuedMessage {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("postqueue -j line {line:?}: {e}"));
    let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    let recipients = value["recipients"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| QueuedRecipient {
                    address: text(r, "address"),
                    delay_reason: r["delay_reason"].as_str().map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    QueuedMessage {
        queue_name: text(&value, "queue_name"),
        queue_id: text(&value, "queue_id"),
        sender: text(&value, "sender"),
        arrival_time: value["arrival_time"].as_u64().unwrap_or_default(),
        message_size: value["message_size"].as_u64().unwrap_or_default(),
        recipients,
    }
}
