//! POP3 end to end: a real `lifeboat serve` with a test certificate, driven by real
//! clients (Python's poplib, curl, fetchmail; installed by tests/install-deps.sh).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use lifeboat_mailstore::{Address, Class};
use nix::sys::signal::Signal;
use support::lifeboat::Lifeboat;
use support::python;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "secret"; // what Lifeboat::add_user sets

/// A Lifeboat with alice and `messages` in her INBOX (stored before `serve` starts, as
/// the milter would have), POP3 on loopback with a certificate. Not started.
fn lifeboat_with_mail(messages: &[(&[u8], Class)]) -> Lifeboat {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]);
    lifeboat.deliver_offline(ALICE, messages.iter().map(|(c, k)| (c.to_vec(), *k)));
    lifeboat.enable_pop3("127.0.0.1", false, true);
    lifeboat
}

fn plain(lifeboat: &Lifeboat) -> SocketAddr {
    lifeboat.pop3.unwrap().0
}

fn implicit_tls(lifeboat: &Lifeboat) -> SocketAddr {
    lifeboat.pop3.unwrap().1
}

/// A hand-driven POP3 connection, for what clients will not do (drop without QUIT).
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert!(raw.line().starts_with("+OK"));
        raw
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    fn command(&mut self, command: &str) -> String {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        self.line()
    }

    /// A multi-line answer's lines up to (without) the terminating ".".
    fn lines(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if line == ".\r\n" || line.is_empty() {
                return lines;
            }
            lines.push(line.trim_end().to_string());
        }
    }

    fn login(&mut self) {
        assert!(self.command(&format!("USER {ALICE}")).starts_with("+OK"));
        let answer = self.command(&format!("PASS {PASSWORD}"));
        assert!(answer.starts_with("+OK"), "{answer}");
    }

    fn uidl(&mut self) -> Vec<String> {
        assert!(self.command("UIDL").starts_with("+OK"));
        self.lines()
    }
}

const DOTTED: &[u8] =
    b"From: a@else.test\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n";

const POPLIB_SESSION: &str = r#"
import poplib, ssl, sys
mode, host, port, user, password = sys.argv[1:6]
context = ssl._create_unverified_context()
if mode == "tls":
    pop = poplib.POP3_SSL(host, int(port), context=context, timeout=10)
else:
    pop = poplib.POP3(host, int(port), timeout=10)
    capa = pop.capa()
    print("capa-before:", " ".join(sorted(capa)))
    if mode == "stls":
        pop.stls(context=context)
        print("capa-after:", " ".join(sorted(pop.capa())))
pop.user(user)
pop.pass_(password)
count, size = pop.stat()
print("stat:", count, size)
print("list:", " ".join(x.decode() for x in pop.list()[1]))
print("uidl:", " ".join(x.decode() for x in pop.uidl()[1]))
for n in range(1, count + 1):
    response, lines, octets = pop.retr(n)
    sys.stdout.write("retr %d %d:\n" % (n, octets))
    for line in lines:
        sys.stdout.write(line.decode() + "\n")
if count:
    response, lines, octets = pop.top(1, 0)
    print("top-lines:", len(lines))
pop.quit()
"#;

#[test]
fn poplib_reads_the_maildrop_plain_after_stls_and_over_implicit_tls() {
    let mut lifeboat = lifeboat_with_mail(&[
        (&support::lifeboat::message(1), Class::Journal),
        (DOTTED, Class::Diverted),
    ]);
    lifeboat.start();
    let inbox = lifeboat.inbox(ALICE);
    let stored: Vec<Vec<u8>> = inbox
        .iter()
        .map(|m| lifeboat.message_bytes(ALICE, m))
        .collect();
    let total: u64 = inbox.iter().map(|m| m.size).sum();

    for (mode, addr) in [
        ("plain", plain(&lifeboat)),
        ("stls", plain(&lifeboat)),
        ("tls", implicit_tls(&lifeboat)),
    ] {
        let out = python(
            POPLIB_SESSION,
            &[
                mode.into(),
                addr.ip().to_string(),
                addr.port().to_string(),
                ALICE.into(),
                PASSWORD.into(),
            ],
        );
        assert!(out.contains(&format!("stat: 2 {total}\n")), "{mode}: {out}");
        assert!(
            out.contains(&format!("list: 1 {} 2 {}\n", inbox[0].size, inbox[1].size)),
            "{mode}: sizes are the stored CRLF sizes: {out}"
        );
        // UIDL: UIDVALIDITY and UID of INBOX.
        let uidvalidity = {
            let reader = lifeboat.store().reader().unwrap();
            let user = reader.user(ALICE).unwrap().unwrap();
            reader
                .mailbox(user.id, "INBOX")
                .unwrap()
                .unwrap()
                .uidvalidity
        };
        let uidl = format!(
            "uidl: 1 {uidvalidity:08X}{:08X} 2 {uidvalidity:08X}{:08X}\n",
            inbox[0].uid, inbox[1].uid
        );
        assert!(out.contains(&uidl), "{mode}: {out}");
        // poplib undoes the dot-stuffing: the lines must be the stored message's.
        for (n, bytes) in stored.iter().enumerate() {
            let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
            assert!(
                out.contains(&format!("retr {}", n + 1)) && out.contains(&text),
                "{mode}: message {} differs:\n{out}",
                n + 1
            );
        }
        // The header (trace block with its seal, then the message's four fields) and the
        // empty line.
        assert!(out.contains("top-lines: 9\n"), "{mode}: {out}");
        match mode {
            "plain" => assert!(out.contains("capa-before: AUTH-RESP-CODE IMPLEMENTATION PIPELINING RESP-CODES SASL STLS TOP UIDL USER"), "{out}"),
            "stls" => assert!(out.contains("capa-after: AUTH-RESP-CODE IMPLEMENTATION PIPELINING RESP-CODES SASL TOP UIDL USER"), "{out}"),
            _ => {}
        }
    }
    assert_eq!(lifeboat.inbox(ALICE).len(), 2, "nothing was deleted");
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn curl_lists_and_retrieves_over_pop3_and_pop3s() {
    let mut lifeboat = lifeboat_with_mail(&[
        (&support::lifeboat::message(1), Class::Journal),
        (&support::lifeboat::message(2), Class::Journal),
    ]);
    lifeboat.start();
    let inbox = lifeboat.inbox(ALICE);
    let second = lifeboat.message_bytes(ALICE, &inbox[1]);
    let user = format!("{ALICE}:{PASSWORD}");
    let curl = |url: String, extra: &[&str]| {
        let out = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--max-time",
                "20",
                "--user",
                &user,
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("curl (tests/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let (plain, tls) = (plain(&lifeboat), implicit_tls(&lifeboat));
    let listing = curl(format!("pop3://{plain}/"), &[]);
    assert_eq!(
        String::from_utf8(listing).unwrap(),
        format!("1 {}\r\n2 {}\r\n", inbox[0].size, inbox[1].size)
    );
    assert_eq!(curl(format!("pop3://{plain}/2"), &[]), second);
    assert_eq!(
        curl(format!("pop3://{plain}/2"), &["--ssl-reqd", "--insecure"]),
        second,
        "STLS"
    );
    assert_eq!(curl(format!("pop3s://{tls}/2"), &["--insecure"]), second);
    // SASL PLAIN (curl picks it from CAPA; the initial response is in the AUTH line).
    assert_eq!(
        curl(
            format!("pop3://{plain}/1"),
            &["--login-options", "AUTH=PLAIN", "--sasl-ir"]
        ),
        lifeboat.message_bytes(ALICE, &inbox[0])
    );
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn fetchmail_with_keep_and_uidl_gets_each_message_once() {
    let mut lifeboat = lifeboat_with_mail(&[
        (&support::lifeboat::message(1), Class::Journal),
        (&support::lifeboat::message(2), Class::Diverted),
    ]);
    lifeboat.start();
    let dir = lifeboat.dir().to_path_buf();
    let mbox = dir.join("fetched.mbox");
    let rc = dir.join("fetchmailrc");
    let plain = plain(&lifeboat);
    std::fs::write(
        &rc,
        format!(
            "set idfile \"{ids}\"\n\
             poll 127.0.0.1 service {port} protocol pop3 uidl\n\
             \tuser \"{ALICE}\" there with password \"{PASSWORD}\" is \"root\" here\n\
             \tkeep no sslcertck sslproto 'tls1.2+'\n\
             \tmda \"/bin/sh -c 'cat >> {mbox}'\"\n",
            ids = dir.join("fetchids").display(),
            port = plain.port(),
            mbox = mbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let fetch = || {
        Command::new("fetchmail")
            .args(["--fetchmailrc"])
            .arg(&rc)
            .args(["--nodetach", "--nosyslog", "-v"])
            .env("HOME", &dir)
            .env("FETCHMAILHOME", &dir)
            .output()
            .expect("fetchmail (tests/install-deps.sh installs it)")
    };
    let first = fetch();
    let first_log = String::from_utf8_lossy(&first.stderr).to_string()
        + &String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(0), "first pull: {first_log}");
    assert!(
        first_log.contains("POP3> STLS"),
        "fetchmail used STLS: {first_log}"
    );
    assert!(first_log.contains("POP3> UIDL"), "{first_log}");
    let fetched = std::fs::read_to_string(&mbox).unwrap();
    assert!(fetched.contains("Subject: message 1"), "{fetched}");
    assert!(fetched.contains("Subject: message 2"), "{fetched}");

    let second = fetch();
    let second_log = String::from_utf8_lossy(&second.stderr).to_string()
        + &String::from_utf8_lossy(&second.stdout);
    // fetchmail exits 1 for "no new mail".
    assert_eq!(second.status.code(), Some(1), "second pull: {second_log}");
    assert_eq!(std::fs::read_to_string(&mbox).unwrap(), fetched);
    assert_eq!(lifeboat.inbox(ALICE).len(), 2, "keep: nothing deleted");
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn deletions_happen_on_quit_only_and_uidls_stay() {
    let mut lifeboat = lifeboat_with_mail(&[
        (&support::lifeboat::message(1), Class::Journal),
        (&support::lifeboat::message(2), Class::Journal),
        (&support::lifeboat::message(3), Class::Journal),
    ]);
    lifeboat.start();
    let before = {
        let mut pop = Raw::connect(plain(&lifeboat));
        pop.login();
        let uidl = pop.uidl();
        assert!(pop.command("DELE 1").starts_with("+OK"));
        assert!(pop.command("DELE 3").starts_with("+OK"));
        assert_eq!(
            pop.command("STAT"),
            format!("+OK 1 {}\r\n", lifeboat.inbox(ALICE)[1].size)
        );
        uidl
        // Dropped without QUIT: RFC 1939 says nothing is deleted.
    };
    assert_eq!(before.len(), 3);
    let mut pop = wait_for_login(plain(&lifeboat));
    assert_eq!(
        pop.uidl(),
        before,
        "nothing deleted after a dropped connection"
    );
    assert!(pop.command("DELE 1").starts_with("+OK"));
    assert!(
        pop.command("RSET")
            .starts_with("+OK maildrop has 3 messages")
    );
    assert!(pop.command("DELE 2").starts_with("+OK"));
    assert_eq!(
        pop.command("QUIT"),
        "+OK Lifeboat POP3 server signing off (2 messages left)\r\n"
    );

    let inbox = lifeboat.inbox(ALICE);
    assert_eq!(inbox.len(), 2, "the journal copy is gone from the index");
    let mut pop = Raw::connect(plain(&lifeboat));
    pop.login();
    let after = pop.uidl();
    let uid_of = |line: &String| line.split(' ').nth(1).unwrap().to_string();
    assert_eq!(
        after.iter().map(uid_of).collect::<Vec<_>>(),
        vec![uid_of(&before[0]), uid_of(&before[2])],
        "remaining messages keep their UIDLs"
    );
    let files = std::fs::read_dir(lifeboat.user_dir(ALICE).join("cur"))
        .unwrap()
        .count();
    assert_eq!(files, 2, "the deleted journal copy's file is removed");
    assert!(pop.command("QUIT").starts_with("+OK"));

    // A new message gets a UIDL never used before.
    lifeboat.terminate();
    lifeboat.deliver_offline(ALICE, [(support::lifeboat::message(4), Class::Journal)]);
    lifeboat.start();
    let mut pop = Raw::connect(plain(&lifeboat));
    pop.login();
    let newest = uid_of(pop.uidl().last().unwrap());
    assert!(!before.iter().map(uid_of).any(|u| u == newest));
    assert_eq!(lifeboat.terminate(), Some(0));
}

/// The session lock of a dropped connection goes when the server notices the close;
/// retry the login until it has.
fn wait_for_login(addr: SocketAddr) -> Raw {
    for _ in 0..100 {
        let mut pop = Raw::connect(addr);
        assert!(pop.command(&format!("USER {ALICE}")).starts_with("+OK"));
        let answer = pop.command(&format!("PASS {PASSWORD}"));
        if answer.starts_with("+OK") {
            return pop;
        }
        assert!(answer.starts_with("-ERR [IN-USE]"), "{answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the maildrop stayed locked");
}

#[test]
fn a_pending_diverted_copy_deleted_over_pop3_still_waits_for_replay() {
    let mut lifeboat = lifeboat_with_mail(&[
        (&support::lifeboat::message(1), Class::Diverted),
        (&support::lifeboat::message(2), Class::Journal),
    ]);
    lifeboat.start();
    let diverted = lifeboat.inbox(ALICE)[0].clone();
    let diverted_bytes = lifeboat.message_bytes(ALICE, &diverted);
    assert_eq!(diverted.replay_state.as_deref(), Some("pending"));

    // What a POP3 client does by default: download, delete, quit.
    let mut pop = Raw::connect(plain(&lifeboat));
    pop.login();
    for n in 1..=2 {
        assert!(pop.command(&format!("RETR {n}")).starts_with("+OK"));
        pop.lines();
        assert!(pop.command(&format!("DELE {n}")).starts_with("+OK"));
    }
    assert!(pop.command("QUIT").starts_with("+OK"));

    let mut pop = Raw::connect(plain(&lifeboat));
    pop.login();
    assert_eq!(pop.command("STAT"), "+OK 0 0\r\n", "the user sees nothing");
    pop.command("QUIT");

    let rows = lifeboat.inbox(ALICE);
    assert_eq!(
        rows.len(),
        1,
        "the journal copy is gone, the diverted one kept"
    );
    assert_eq!(rows[0].uid, diverted.uid);
    assert!(rows[0].expunged);
    assert_eq!(
        rows[0].replay_state.as_deref(),
        Some("pending"),
        "still in the replay ledger"
    );
    assert_eq!(
        lifeboat.message_bytes(ALICE, &rows[0]),
        diverted_bytes,
        "the file is intact for replay"
    );
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn retr_and_dele_find_a_message_whose_flags_changed_after_login() {
    let mut lifeboat = lifeboat_with_mail(&[(&support::lifeboat::message(1), Class::Journal)]);
    lifeboat.start();
    let mut pop = Raw::connect(plain(&lifeboat));
    pop.login();
    // An IMAP client marks it \Seen meanwhile: the file is renamed (Maildir flags).
    let record = lifeboat.inbox(ALICE)[0].clone();
    let store = lifeboat.store();
    let inbox = {
        let reader = store.reader().unwrap();
        let user = reader.user(ALICE).unwrap().unwrap();
        reader.mailbox(user.id, "INBOX").unwrap().unwrap().id
    };
    let seen = lifeboat_mailstore::flags::FlagEdit::new(
        lifeboat_mailstore::flags::FlagOp::Add,
        lifeboat_mailstore::Flags::SEEN,
        vec![],
    );
    store
        .edit_flags(
            &Address::parse(ALICE).unwrap(),
            "INBOX",
            inbox,
            vec![record.row],
            seen,
        )
        .unwrap();
    assert!(pop.command("RETR 1").starts_with("+OK"));
    assert!(pop.lines().contains(&"Subject: message 1".to_string()));
    assert!(pop.command("DELE 1").starts_with("+OK"));
    assert!(pop.command("QUIT").starts_with("+OK"));
    assert!(lifeboat.inbox(ALICE).is_empty());
    let files = std::fs::read_dir(lifeboat.user_dir(ALICE).join("cur"))
        .unwrap()
        .count();
    assert_eq!(files, 0);
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn a_second_session_on_the_same_maildrop_is_refused() {
    let mut lifeboat = lifeboat_with_mail(&[(&support::lifeboat::message(1), Class::Journal)]);
    lifeboat.start();
    let mut first = Raw::connect(plain(&lifeboat));
    first.login();
    let mut second = Raw::connect(plain(&lifeboat));
    assert!(second.command(&format!("USER {ALICE}")).starts_with("+OK"));
    let answer = second.command(&format!("PASS {PASSWORD}"));
    assert!(answer.starts_with("-ERR [IN-USE] "), "{answer}");
    assert!(first.command("QUIT").starts_with("+OK"));
    // QUIT frees the maildrop before its +OK: logging in again at once works.
    Raw::connect(plain(&lifeboat)).login();
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn wrong_passwords_lock_the_user_out() {
    let mut lifeboat = lifeboat_with_mail(&[]);
    lifeboat.start();
    // Three failures close a connection; the per-user limit allows five, then locks.
    for _ in 0..2 {
        let mut pop = Raw::connect(plain(&lifeboat));
        for _ in 0..3 {
            pop.command(&format!("USER {ALICE}"));
            let answer = pop.command("PASS wrong");
            assert_eq!(answer, "-ERR [AUTH] authentication failed\r\n");
        }
        assert_eq!(pop.line(), "", "closed after three failures");
    }
    let mut pop = Raw::connect(plain(&lifeboat));
    pop.command(&format!("USER {ALICE}"));
    let answer = pop.command(&format!("PASS {PASSWORD}"));
    assert!(
        answer.starts_with("-ERR [LOGIN-DELAY] "),
        "the right password is refused while locked out: {answer}"
    );
    assert!(lifeboat.log().contains("locked out"));
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn plaintext_login_needs_tls_on_a_non_loopback_listener() {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]);
    // Listening on all interfaces: not a loopback listener, even when reached over
    // loopback (the test connects to 127.0.0.1 through it).
    lifeboat.enable_pop3("0.0.0.0", false, true);
    lifeboat.start();
    let port = plain(&lifeboat).port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut pop = Raw::connect(addr);
    assert!(pop.command("CAPA").starts_with("+OK"));
    let capa = pop.lines();
    assert!(capa.contains(&"STLS".to_string()), "{capa:?}");
    assert!(
        !capa.iter().any(|c| c == "USER" || c.starts_with("SASL")),
        "{capa:?}"
    );
    let answer = pop.command(&format!("USER {ALICE}"));
    assert!(answer.starts_with("-ERR [AUTH] "), "{answer}");
    let answer = pop.command("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=");
    assert!(answer.starts_with("-ERR [AUTH] "), "{answer}");

    // After STLS the same login works (poplib).
    let out = python(
        POPLIB_SESSION,
        &[
            "stls".into(),
            "127.0.0.1".into(),
            port.to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    assert!(
        out.contains(
            "capa-before: AUTH-RESP-CODE IMPLEMENTATION PIPELINING RESP-CODES STLS TOP UIDL\n"
        ),
        "{out}"
    );
    assert!(out.contains("stat: 0 0"), "{out}");

    // allow_plaintext = true lets it through without TLS.
    lifeboat.terminate();
    lifeboat.edit_config(|text| text.replace("allow_plaintext = false", "allow_plaintext = true"));
    lifeboat.start();
    let mut pop = Raw::connect(addr);
    pop.login();
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn without_certificate_serve_runs_and_sighup_turns_tls_on() {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]);
    lifeboat.enable_pop3("127.0.0.1", false, false);
    lifeboat.start();
    assert!(lifeboat.log().contains("NO TLS"), "{}", lifeboat.log());
    let (cert, _) = lifeboat.cert_paths();
    assert!(
        lifeboat.log().contains(&cert.display().to_string()),
        "the error names the file"
    );

    // Loopback: logins work without TLS; STLS is not offered.
    let mut pop = Raw::connect(plain(&lifeboat));
    assert!(pop.command("CAPA").starts_with("+OK"));
    assert!(!pop.lines().contains(&"STLS".to_string()));
    assert!(pop.command("STLS").starts_with("-ERR"));
    pop.login();
    pop.command("QUIT");
    let tls_session = |lifeboat: &Lifeboat| {
        Command::new("python3")
            .arg("-c")
            .arg(POPLIB_SESSION)
            .args([
                "tls",
                "127.0.0.1",
                &implicit_tls(lifeboat).port().to_string(),
                ALICE,
                PASSWORD,
            ])
            .output()
            .unwrap()
    };
    assert!(
        !tls_session(&lifeboat).status.success(),
        "implicit TLS is closed"
    );

    lifeboat.write_cert();
    lifeboat.signal(Signal::SIGHUP);
    wait_until(|| lifeboat.log().contains("TLS certificate loaded"));
    let out = tls_session(&lifeboat);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lifeboat.terminate(), Some(0));
}

fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out");
}

#[test]
fn bad_input_gets_errors_and_shutdown_deletes_nothing() {
    let mut lifeboat = lifeboat_with_mail(&[(&support::lifeboat::message(1), Class::Journal)]);
    lifeboat.start();
    let mut pop = Raw::connect(plain(&lifeboat));
    assert!(pop.command("HELO").starts_with("-ERR"));
    assert!(pop.command("RETR 1").starts_with("-ERR"));
    let long = "X".repeat(10_000);
    assert_eq!(pop.command(&long), "-ERR line too long\r\n");
    assert!(pop.command("\u{00e9}\u{0000}").starts_with("-ERR"));
    pop.login();
    assert!(pop.command("RETR 99999999999").starts_with("-ERR"));
    assert!(pop.command("DELE 1").starts_with("+OK"));
    // Pipelined commands get their answers in order.
    pop.writer.write_all(b"NOOP\r\nSTAT\r\nLIST 1\r\n").unwrap();
    assert_eq!(pop.line(), "+OK\r\n");
    assert_eq!(pop.line(), "+OK 0 0\r\n");
    assert_eq!(pop.line(), "-ERR no such message\r\n");

    lifeboat.signal(Signal::SIGTERM);
    let goodbye = pop.line();
    assert!(
        goodbye.starts_with("-ERR [SYS/TEMP] server shutting down"),
        "{goodbye}"
    );
    assert_eq!(lifeboat.terminate(), Some(0));
    assert_eq!(
        lifeboat.inbox(ALICE).len(),
        1,
        "DELE without QUIT deleted nothing"
    );
}
