//! Hostile IMAP clients against a real `lifeboat serve` (issue 12), over raw sockets:
//! commands injected behind STARTTLS, sessions of revoked users, oversized literals and
//! lines before and after login, LIST patterns that backtrack, FETCH amplification,
//! clients that trickle, INBOX spelled in other cases, non-ASCII names in refusals.
//!
//! The memory attacks sample serve's resident memory (VmRSS) before and during the
//! attack, and check that capture goes on meanwhile: a message sent through a real
//! Postfix with the milter lands in the store while the attackers hold their
//! connections. Run with `--nocapture` to see the figures.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use lifeboat_mailstore::Class;
use support::lifeboat::Lifeboat;
use support::origin::Origin;
use support::postfix::{Postfix, PostfixOptions};
use support::python;
use support::raw::Raw;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "secret"; // what Lifeboat::add_user sets
const WAIT: Duration = Duration::from_secs(30);
const MIB: usize = 1024 * 1024;
/// How much serve may grow under an attack (the issue measured 1 GB and 1.75 GB).
const RSS_GROWTH_LIMIT_MIB: u64 = 100;

/// A running `serve` with alice and IMAP on loopback (with a certificate, so STARTTLS
/// is offered), behind a real Postfix with the milter.
struct Gateway {
    _origin: Origin,
    _outside: Origin,
    lifeboat: Lifeboat,
    postfix: Postfix,
}

impl Gateway {
    /// `inbox`: messages in alice's INBOX before `serve` starts.
    fn start(inbox: Vec<Vec<u8>>) -> Gateway {
        let origin = Origin::new();
        let outside = Origin::new();
        let mut lifeboat = Lifeboat::new(origin.addr());
        lifeboat.add_user(ALICE, &[]);
        lifeboat.deliver_offline(ALICE, inbox.into_iter().map(|m| (m, Class::Journal)));
        lifeboat.enable_imap("127.0.0.1", false, true);
        lifeboat.start();
        let mut options = PostfixOptions::new(origin.addr(), outside.addr());
        options.milter = Some(lifeboat.milter_spec());
        let postfix = Postfix::start(&options);
        Gateway {
            _origin: origin,
            _outside: outside,
            lifeboat,
            postfix,
        }
    }

    fn imap(&self) -> SocketAddr {
        self.lifeboat.imap.unwrap().0
    }

    fn pid(&self) -> u32 {
        self.lifeboat.pid().expect("serve runs")
    }

    /// A connection past the greeting.
    fn connect_from(&self, source: IpAddr) -> Raw {
        let mut raw = Raw::connect_from(source, self.imap());
        let greeting = raw.line();
        assert!(greeting.starts_with("* OK"), "{greeting:?}");
        raw
    }

    /// A connection logged in as alice.
    fn logged_in(&self) -> Raw {
        let mut raw = self.connect_from([127, 0, 0, 1].into());
        raw.send(format!("l1 LOGIN {ALICE} {PASSWORD}\r\n").as_bytes());
        let login = raw.until_tagged("l1");
        assert!(tagged(&login).starts_with("l1 OK"), "{login:?}");
        raw
    }

    /// Sends message `n` through Postfix and waits until its journal copy is in alice's
    /// INBOX: capture works.
    fn capture_works(&self, n: usize) {
        let before = self.lifeboat.inbox(ALICE).len();
        self.postfix
            .send("sender@else.test", &[ALICE], &support::lifeboat::message(n))
            .unwrap();
        let inbox = self.lifeboat.wait_for_inbox(ALICE, before + 1, WAIT);
        assert_eq!(
            inbox.len(),
            before + 1,
            "capture stopped during the attack\n{}",
            self.lifeboat.log()
        );
    }
}

fn tagged(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or("")
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib / 1024
}

/// The highest resident memory a process reaches while this runs (sampled every 20 ms).
struct PeakRss {
    stop: Arc<AtomicBool>,
    sampler: thread::JoinHandle<u64>,
}

impl PeakRss {
    fn watch(pid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = thread::spawn(move || {
            let mut peak = 0;
            while !stopped.load(Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss_mib(pid))
        });
        PeakRss { stop, sampler }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap()
    }
}

fn assert_bounded(what: &str, before: u64, peak: u64) {
    eprintln!("{what}: RSS {before} MiB before, {peak} MiB at the peak");
    assert!(
        peak < before + RSS_GROWTH_LIMIT_MIB,
        "{what}: RSS grew from {before} MiB to {peak} MiB"
    );
}

/// Whether the server closed the connection within a few seconds. (It says `* BYE`
/// first, but a client still sending when the server closes may get a reset that
/// takes the last words with it.)
fn cut_off(raw: &mut Raw) -> bool {
    raw.set_read_timeout(Duration::from_secs(5));
    let mut buffer = [0u8; 4096];
    loop {
        match raw.read_some(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

/// A message of about `size` bytes.
fn big_message(size: usize) -> Vec<u8> {
    let mut message = b"From: sender@else.test\r\nTo: alice@example.test\r\n\
        Subject: big\r\nMessage-ID: <big@else.test>\r\n\r\n"
        .to_vec();
    let line = [&[b'x'; 78][..], b"\r\n"].concat();
    while message.len() < size {
        message.extend_from_slice(&line);
    }
    message
}

#[test]
fn commands_sent_behind_starttls_are_never_executed() {
    let g = Gateway::start(vec![]);
    // One segment: STARTTLS and a LOGIN a man in the middle added. Whatever the server
    // does (close, or discard), the LOGIN must not run inside the TLS session.
    let script = r#"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
print("greeting", f.readline())
s.sendall(b"a STARTTLS\r\nb LOGIN alice@example.test secret\r\n")
print("starttls", f.readline())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    t = ctx.wrap_socket(s, server_hostname="localhost")
    t.sendall(b"c CAPABILITY\r\n")
    tf = t.makefile("rb")
    while True:
        line = tf.readline()
        if not line:
            print("closed")
            break
        print("tls", line)
        if line.startswith(b"c "):
            break
except (ssl.SSLError, OSError) as e:
    print("closed", type(e).__name__)
"#;
    let out = python(script, &[g.imap().port().to_string()]);
    assert!(out.contains("starttls b'a OK"), "{out}");
    assert!(!out.contains("b'b OK"), "the injected LOGIN ran: {out}");
    assert!(
        !out.contains("b'b "),
        "the injected LOGIN was answered: {out}"
    );
    // Whether the connection was closed or the session went on, it is not logged in.
    assert!(
        out.contains("closed") || out.contains("AUTH=PLAIN"),
        "{out}"
    );
}

#[test]
fn sessions_of_revoked_users_end_even_while_idling() {
    let g = Gateway::start(vec![support::lifeboat::message(1)]);
    let mut noop = g.logged_in();
    let mut idle = g.logged_in();
    for raw in [&mut noop, &mut idle] {
        let select = raw.command("s1 SELECT INBOX");
        assert!(select.starts_with("* "), "{select}");
        raw.until_tagged("s1");
    }
    idle.send(b"i1 IDLE\r\n");
    assert!(idle.line().starts_with("+ "));

    // A new password: both sessions end, the idling one without sending anything.
    let mut passwd = g
        .lifeboat
        .command()
        .args(["user", "passwd", ALICE, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    passwd
        .stdin
        .take()
        .unwrap()
        .write_all(b"another-pass-1\n")
        .unwrap();
    assert!(passwd.wait().unwrap().success());
    let changed = Instant::now();

    noop.send(b"n1 NOOP\r\n");
    let answer = noop.until_tagged("n1");
    assert!(
        answer.first().is_some_and(|l| l.starts_with("* BYE")),
        "{answer:?}"
    );
    assert!(!answer.iter().any(|l| l.starts_with("n1 OK")), "{answer:?}");
    assert!(noop.closed());

    idle.set_read_timeout(Duration::from_secs(30));
    let news = idle.line();
    assert!(news.starts_with("* BYE"), "{news:?}");
    assert!(idle.closed());
    eprintln!(
        "the idling session ended {:?} after the change",
        changed.elapsed()
    );

    // The new password works; disabling the user ends that session too, at APPEND.
    let mut again = g.connect_from([127, 0, 0, 1].into());
    again.send(format!("l2 LOGIN {ALICE} another-pass-1\r\n").as_bytes());
    assert!(tagged(&again.until_tagged("l2")).starts_with("l2 OK"));
    g.lifeboat.admin(&["user", "disable", ALICE]);
    again.send(b"a1 APPEND INBOX {5+}\r\nhello\r\n");
    let answer = again.until_tagged("a1");
    assert!(
        answer.first().is_some_and(|l| l.starts_with("* BYE")),
        "{answer:?}"
    );
    assert!(again.closed());
    assert_eq!(g.lifeboat.inbox(ALICE).len(), 1, "nothing was appended");
}

#[test]
fn big_literals_and_long_lines_before_login_cost_no_memory() {
    let g = Gateway::start(vec![]);
    let (imap, pid) = (g.imap(), g.pid());
    drop(g.logged_in());
    let before = rss_mib(pid);
    let peak = PeakRss::watch(pid);

    // 20 connections each send most of a 48 MiB non-synchronizing LOGIN literal, and 5
    // send 10 MB without a line end; all keep their connections open.
    let mut attackers = Vec::new();
    for i in 0..25u8 {
        attackers.push(thread::spawn(move || {
            let mut raw = Raw::connect_from([127, 0, 0, 10 + i % 5].into(), imap);
            raw.line();
            let chunk = vec![b'x'; MIB];
            let (head, chunks) = if i < 20 {
                (format!("a LOGIN {{{}+}}\r\n", 48 * MIB), 47)
            } else {
                ("a LOGIN ".to_string(), 10)
            };
            if raw.try_send(head.as_bytes()) {
                for _ in 0..chunks {
                    if !raw.try_send(&chunk) {
                        break;
                    }
                }
            }
            raw
        }));
    }
    let mut held: Vec<Raw> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    g.capture_works(1);
    let peak = peak.peak();
    assert_bounded(
        "20 unfinished 48 MiB LOGIN literals, 5 10 MB lines",
        before,
        peak,
    );
    for raw in &mut held {
        assert!(cut_off(raw), "an attacker's connection is still open");
    }
    // A synchronizing literal that is too big is refused before the client sends it.
    let mut raw = g.connect_from([127, 0, 0, 1].into());
    raw.send(format!("b LOGIN {{{}}}\r\n", MIB).as_bytes());
    let refused = raw.line();
    assert!(
        refused.starts_with("b NO [TOOBIG]") || refused.starts_with("b BAD [TOOBIG]"),
        "{refused:?}"
    );
    // Logins with small literals still work.
    raw.send(format!("l1 LOGIN {{{}+}}\r\n{ALICE} {PASSWORD}\r\n", ALICE.len()).as_bytes());
    assert!(tagged(&raw.until_tagged("l1")).starts_with("l1 OK"));
}

#[test]
fn appends_are_spooled_not_held_in_memory() {
    let g = Gateway::start(vec![]);
    let pid = g.pid();
    drop(g.logged_in());
    let before = rss_mib(pid);
    let peak = PeakRss::watch(pid);

    // 10 sessions each send 30 MiB of a 40 MiB APPEND and stop there.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut raw = g.logged_in();
        raw.send(format!("a1 APPEND Archive {{{}+}}\r\n", 40 * MIB).as_bytes());
        let chunk = vec![b'x'; MIB];
        for _ in 0..30 {
            assert!(raw.try_send(&chunk));
        }
        held.push(raw);
    }
    g.capture_works(1);
    // A whole APPEND (8 MiB, synchronizing literal) goes through meanwhile, intact.
    let message = big_message(8 * MIB);
    let mut raw = g.logged_in();
    raw.send(format!("a2 APPEND Archive (\\Seen) {{{}}}\r\n", message.len()).as_bytes());
    let go_ahead = raw.line();
    assert!(go_ahead.starts_with("+ "), "{go_ahead:?}");
    raw.send(&message);
    raw.send(b"\r\n");
    let appended = raw.until_tagged("a2");
    assert!(
        tagged(&appended).starts_with("a2 OK [APPENDUID "),
        "{appended:?}"
    );
    let peak = peak.peak();
    assert_bounded("10 unfinished 40 MiB APPENDs and one 8 MiB", before, peak);

    let store = g.lifeboat.store();
    let reader = store.reader().unwrap();
    let user = reader.user(ALICE).unwrap().unwrap();
    let archive = reader.mailbox(user.id, "Archive").unwrap().unwrap();
    let stored = reader.messages(archive.id).unwrap();
    assert_eq!(stored.len(), 1, "only the finished APPEND is stored");
    let owner = lifeboat_mailstore::Address::parse(ALICE).unwrap();
    let bytes = store.read_message(&owner, "Archive", &stored[0]).unwrap();
    assert!(bytes.ends_with(&message), "the message arrived intact");
    drop(held);
}

/// MULTIAPPEND (RFC 3502): many messages in one APPEND go to one spool file, not to
/// memory, are stored together, and one command carries no more than its limits.
#[test]
fn a_multiappend_is_spooled_and_bounded() {
    let g = Gateway::start(vec![]);
    let pid = g.pid();
    drop(g.logged_in());
    let before = rss_mib(pid);
    let peak = PeakRss::watch(pid);

    // Twelve messages of 8 MiB in one APPEND: 96 MiB, under the 100 MiB a command may
    // carry, stored in one transaction.
    let message = big_message(8 * MIB);
    let mut raw = g.logged_in();
    raw.send(b"a1 APPEND Archive");
    for _ in 0..12 {
        raw.send(format!(" (\\Seen) {{{}+}}\r\n", message.len()).as_bytes());
        raw.send(&message);
    }
    raw.send(b"\r\n");
    let appended = raw.until_tagged("a1");
    assert!(
        tagged(&appended).starts_with("a1 OK [APPENDUID ") && tagged(&appended).contains(" 1:12]"),
        "{appended:?}"
    );
    // One more message would be past 100 MiB: refused before it is sent.
    raw.send(b"a2 APPEND Archive");
    for _ in 0..12 {
        raw.send(format!(" {{{}+}}\r\n", message.len()).as_bytes());
        raw.send(&message);
    }
    raw.send(format!(" {{{}}}\r\n", message.len()).as_bytes());
    let refused = raw.until_tagged("a2");
    assert!(
        tagged(&refused).starts_with("a2 NO [TOOBIG]"),
        "{refused:?}"
    );
    let peak = peak.peak();
    assert_bounded("a 96 MiB MULTIAPPEND", before, peak);

    let store = g.lifeboat.store();
    let reader = store.reader().unwrap();
    let user = reader.user(ALICE).unwrap().unwrap();
    let archive = reader.mailbox(user.id, "Archive").unwrap().unwrap();
    assert_eq!(reader.messages(archive.id).unwrap().len(), 12);
    // The session goes on.
    let noop = raw.command("a3 NOOP");
    assert!(noop.starts_with("a3 OK"), "{noop:?}");
}

#[test]
fn fetch_with_hundreds_of_ranges_is_streamed() {
    let message = big_message(MIB);
    let g = Gateway::start(vec![message.clone()]);
    let pid = g.pid();
    let ranges: Vec<String> = (0..600)
        .map(|i| format!("BODY.PEEK[]<{}.1000000>", i * 1000))
        .collect();
    let fetch = format!("f1 FETCH 1 ({})\r\n", ranges.join(" "));
    eprintln!("FETCH command: {} bytes", fetch.len());
    let mut reader = g.logged_in();
    reader.command("s1 SELECT INBOX");
    reader.until_tagged("s1");
    let before = rss_mib(pid);
    let peak = PeakRss::watch(pid);

    // One client reads the answer as it comes, another never reads.
    let mut stalled = g.logged_in();
    stalled.command("s1 SELECT INBOX");
    stalled.until_tagged("s1");
    stalled.send(fetch.as_bytes());
    let stored = g.lifeboat.inbox(ALICE)[0].size as usize;
    let reading = thread::spawn(move || {
        reader.set_read_timeout(Duration::from_secs(120));
        reader.send(fetch.as_bytes());
        let (mut total, mut tail) = (0usize, Vec::new());
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read_bytes(&mut buffer);
            if n == 0 {
                break;
            }
            total += n;
            tail.extend_from_slice(&buffer[..n]);
            if tail.len() > 256 {
                tail.drain(..tail.len() - 256);
            }
            if tail.windows(6).any(|w| w == b"f1 OK ") && tail.ends_with(b"\r\n") {
                break;
            }
        }
        total
    });
    g.capture_works(1);
    let total = reading.join().unwrap();
    let peak = peak.peak();
    let expected: usize = (0..600)
        .map(|i| stored.saturating_sub(i * 1000).min(1_000_000))
        .sum();
    eprintln!("FETCH answer: {total} bytes, of which {expected} message data");
    assert!(
        total > expected,
        "the whole answer arrived: {total} < {expected}"
    );
    assert_bounded(
        "FETCH of 600 ranges of a 1 MB message, one reader, one stalled",
        before,
        peak,
    );

    // Shutdown does not wait for the client that never reads.
    let stopping = Instant::now();
    let mut lifeboat = g.lifeboat;
    lifeboat.terminate();
    eprintln!("serve stopped {:?} after SIGTERM", stopping.elapsed());
    assert!(stopping.elapsed() < Duration::from_secs(15));
    drop(stalled);
}

#[test]
fn list_patterns_with_many_stars_answer() {
    let g = Gateway::start(vec![]);
    let mut raw = g.logged_in();
    let name = "x".repeat(150);
    raw.send(format!("c1 CREATE {name}\r\n").as_bytes());
    assert!(tagged(&raw.until_tagged("c1")).starts_with("c1 OK"));
    raw.set_read_timeout(Duration::from_secs(60));
    for stars in [5, 12, 40] {
        let pattern = format!("{}y", "*x".repeat(stars));
        let started = Instant::now();
        raw.send(format!("l{stars} LIST \"\" \"{pattern}\"\r\n").as_bytes());
        let answer = raw.until_tagged(&format!("l{stars}"));
        eprintln!("LIST with {stars} stars: {:?}", started.elapsed());
        assert!(
            tagged(&answer).starts_with(&format!("l{stars} OK")),
            "{stars} stars: {answer:?}"
        );
    }
    let all = raw.command("l0 LIST \"\" \"*\"");
    assert!(all.starts_with("* LIST"), "{all}");
    // RFC 5258's several patterns: a line of 900 of them (60 KiB, each keeping every
    // state of its match alive) costs what each costs alone.
    let patterns: Vec<String> = (0..900)
        .map(|i| format!("\"{}%y{i}\"", "*x".repeat(30)))
        .collect();
    let started = Instant::now();
    raw.send(
        format!(
            "l1 LIST \"\" ({}) RETURN (CHILDREN)\r\n",
            patterns.join(" ")
        )
        .as_bytes(),
    );
    let answer = raw.until_tagged("l1");
    eprintln!("LIST with 900 patterns: {:?}", started.elapsed());
    assert!(tagged(&answer).starts_with("l1 OK"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn clients_that_trickle_are_cut_off_at_the_login_deadline() {
    let g = Gateway::start(vec![]);
    // One sends a byte every two seconds and never ends its line; another sends a NOOP
    // every five seconds and never logs in.
    let mut trickle = g.connect_from([127, 0, 0, 21].into());
    let mut noops = g.connect_from([127, 0, 0, 22].into());
    let started = Instant::now();
    let (mut trickle_cut, mut noops_cut) = (None, None);
    let mut tick = 0;
    while started.elapsed() < Duration::from_secs(100)
        && (trickle_cut.is_none() || noops_cut.is_none())
    {
        if trickle_cut.is_none() && !trickle.try_send(b"x") {
            trickle_cut = Some(started.elapsed());
        }
        if noops_cut.is_none() && tick % 5 == 0 {
            noops.set_read_timeout(Duration::from_secs(5));
            let answer = noops.command(&format!("n{tick} NOOP"));
            if !answer.starts_with(&format!("n{tick} OK")) {
                assert!(
                    answer.is_empty() || answer.starts_with("* BYE"),
                    "{answer:?}"
                );
                noops_cut = Some(started.elapsed());
            }
        }
        thread::sleep(Duration::from_secs(2));
        tick += 2;
    }
    eprintln!("cut off after {trickle_cut:?} (trickle) and {noops_cut:?} (NOOPs)");
    for cut in [trickle_cut, noops_cut] {
        let cut = cut.expect("cut off within 100 s");
        assert!(
            cut >= Duration::from_secs(55) && cut < Duration::from_secs(80),
            "{cut:?}"
        );
    }
}

#[test]
fn inbox_in_any_case_is_one_mailbox_also_as_a_parent() {
    let g = Gateway::start(vec![]);
    let mut raw = g.logged_in();
    raw.send(b"c1 CREATE inbox.x\r\n");
    let created = raw.until_tagged("c1");
    assert!(tagged(&created).starts_with("c1 OK"), "{created:?}");
    raw.send(b"c2 CREATE Inbox.x\r\n");
    let again = raw.until_tagged("c2");
    assert!(
        tagged(&again).starts_with("c2 NO [ALREADYEXISTS]"),
        "{again:?}"
    );
    raw.send(b"l1 LIST \"\" *\r\n");
    let list = raw.until_tagged("l1");
    let inboxes: Vec<&String> = list.iter().filter(|l| l.ends_with(" INBOX\r\n")).collect();
    assert_eq!(inboxes.len(), 1, "{list:?}");
    assert!(list.iter().any(|l| l.ends_with(" INBOX.x\r\n")), "{list:?}");
    raw.send(b"s1 SELECT INBOX.X\r\n");
    assert!(tagged(&raw.until_tagged("s1")).starts_with("s1 NO"));
    raw.send(b"s2 SELECT iNbOx.x\r\n");
    assert!(tagged(&raw.until_tagged("s2")).starts_with("s2 OK"));
    g.lifeboat.admin(&["store", "check"]);
}

#[test]
fn refusals_naming_non_ascii_mailboxes_keep_the_session() {
    let g = Gateway::start(vec![]);
    let mut raw = g.logged_in();
    raw.send(b"c1 CREATE Entw&APw-rfe\r\n");
    assert!(tagged(&raw.until_tagged("c1")).starts_with("c1 OK"));
    raw.send(b"c2 CREATE Entw&APw-rfe\r\n");
    let again = raw.until_tagged("c2");
    assert_eq!(
        tagged(&again),
        "c2 NO [ALREADYEXISTS] Entw&APw-rfe already exists\r\n",
        "{again:?}"
    );
    raw.send(b"r1 RENAME Archive Entw&APw-rfe\r\n");
    let rename = raw.until_tagged("r1");
    assert!(
        tagged(&rename).starts_with("r1 NO [ALREADYEXISTS] Entw&APw-rfe"),
        "{rename:?}"
    );
    // A name with a line break inside a literal is refused in words that stay one line.
    raw.send(b"c3 CREATE {5+}\r\na\r\nb\r\n");
    let odd = raw.until_tagged("c3");
    assert!(tagged(&odd).starts_with("c3 NO "), "{odd:?}");
    raw.send(b"n1 NOOP\r\n");
    assert!(tagged(&raw.until_tagged("n1")).starts_with("n1 OK"));
}
