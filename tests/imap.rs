//! IMAP end to end: a real `lifeboat serve` with a test certificate, driven by real
//! clients (Python's imaplib, curl, mbsync) and byte by byte.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use lifeboat_mailstore::Class;
use support::lifeboat::Lifeboat;
use support::python;

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
    lifeboat.add_user(ALICE, &["sales@example.test"]);
    lifeboat.add_user("bob@example.test", &[]);
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

/// A hand-driven IMAP connection for byte-level checks.
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
        let greeting = raw.line();
        assert!(greeting.starts_with("* OK "), "{greeting}");
        raw
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).unwrap();
    }

    /// Sends `tag command` and returns every line up to and including the tagged one.
    fn command(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(&format!("{tag} {command}\r\n"));
        self.until_tagged(tag)
    }

    fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "connection closed; so far: {lines:?}");
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

/// Hands a message to the fallback listener, as Postfix does during an outage.
fn smtp_to_fallback(fallback: SocketAddr, to: &str, content: &[u8]) {
    let stream = TcpStream::connect(fallback).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let expect = |reader: &mut BufReader<TcpStream>, code: &str| loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "wanted {code}, got {line:?}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    };
    expect(&mut reader, "220");
    for (command, code) in [
        ("EHLO test".to_string(), "250"),
        ("MAIL FROM:<sender@else.test>".to_string(), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
        expect(&mut reader, code);
    }
    writer.write_all(content).unwrap();
    writer.write_all(b".\r\n").unwrap();
    expect(&mut reader, "250");
}

fn tagged(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or("")
}

#[test]
fn imaplib_reads_over_starttls_and_implicit_tls() {
    let lifeboat = lifeboat_with_mail(3);
    let script = r#"
import imaplib, ssl, sys
host, plain, tls, user, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
for how in ("starttls", "tls"):
    if how == "starttls":
        m = imaplib.IMAP4(host, plain)
        assert "STARTTLS" in m.capabilities, m.capabilities
        m.starttls(ssl_context=ctx)
    else:
        m = imaplib.IMAP4_SSL(host, tls, ssl_context=ctx)
    assert "AUTH=PLAIN" in m.capabilities, m.capabilities
    m.login(user, password)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"], (typ, data)
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", (typ, data)
    subjects = [part[1].strip() for part in data if isinstance(part, tuple)]
    print(how, subjects)
    typ, data = m.uid("SEARCH", None, "SUBJECT", "message 2")
    print(how, "search", data)
    typ, data = m.fetch("2", "(BODY[TEXT])")
    print(how, "text", data[0][1])
    typ, data = m.fetch("2", "(FLAGS)")
    print(how, "flags", data)
    m.logout()
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            implicit_tls(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    for how in ["starttls", "tls"] {
        assert!(
            out.contains(&format!(
                "{how} [b'Subject: message 1', b'Subject: message 2', b'Subject: message 3']"
            )),
            "{out}"
        );
        assert!(out.contains(&format!("{how} search [b'2']")), "{out}");
        assert!(
            out.contains(&format!("{how} text b'This is message 2.\\r\\n'")),
            "{out}"
        );
    }
    // BODY[TEXT] (not PEEK) set \Seen. The first session to see the mail has it
    // \Recent (RFC 3501 §2.3.2); the second does not.
    assert!(
        out.contains("starttls flags [b'2 (FLAGS (\\\\Seen \\\\Recent))']"),
        "{out}"
    );
    assert!(out.contains("tls flags [b'2 (FLAGS (\\\\Seen))']"), "{out}");
}

#[test]
fn login_is_refused_before_tls_on_a_non_loopback_listener_and_wrong_passwords_fail() {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]);
    lifeboat.enable_imap("0.0.0.0", false, true);
    lifeboat.start();
    let mut raw = Raw::connect(SocketAddr::from(([127, 0, 0, 1], plain(&lifeboat).port())));
    let caps = raw.command("a1", "CAPABILITY");
    assert!(
        caps[0].contains("LOGINDISABLED") && caps[0].contains("STARTTLS"),
        "{caps:?}"
    );
    let login = raw.command("a2", &format!("LOGIN {ALICE} {PASSWORD}"));
    assert!(
        tagged(&login).starts_with("a2 NO [PRIVACYREQUIRED]"),
        "{login:?}"
    );

    // Over TLS the same listener takes the login; a wrong password is refused.
    let script = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.starttls(ssl_context=ctx)
try:
    m.login(sys.argv[3], "wrong")
    print("wrong password accepted")
except imaplib.IMAP4.error as e:
    print("refused:", e)
m.login(sys.argv[3], sys.argv[4])
print(m.select("INBOX"))
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    assert!(out.contains("[AUTHENTICATIONFAILED]"), "{out}");
    assert!(out.contains("('OK', [b'0'])"), "{out}");
}

#[test]
fn byte_level_session_with_literals_idle_and_bad_input() {
    let lifeboat = lifeboat_with_mail(2);
    let mut raw = Raw::connect(plain(&lifeboat));
    // LOGIN with literals (RFC 3501 §4.3), as clients send odd passwords.
    raw.send(&format!("a1 LOGIN {{{}}}\r\n", ALICE.len()));
    let go_ahead = raw.line();
    assert!(go_ahead.starts_with("+ "), "{go_ahead}");
    raw.send(&format!(
        "{ALICE} {{{}+}}\r\n{PASSWORD}\r\n",
        PASSWORD.len()
    ));
    let login = raw.until_tagged("a1");
    assert!(
        tagged(&login).starts_with("a1 OK [CAPABILITY IMAP4REV1"),
        "{login:?}"
    );

    let select = raw.command("a2", "SELECT INBOX");
    assert!(select.contains(&"* 2 EXISTS\r\n".to_string()), "{select:?}");
    assert!(
        select.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")),
        "{select:?}"
    );
    assert!(
        select.iter().any(|l| l.starts_with("* OK [UIDNEXT 3]")),
        "{select:?}"
    );
    assert!(
        tagged(&select).starts_with("a2 OK [READ-WRITE]"),
        "{select:?}"
    );

    // RFC 3501 details clients trip over.
    let past_the_end = raw.command("b1", "FETCH 9 (FLAGS)");
    assert!(
        tagged(&past_the_end).starts_with("b1 BAD"),
        "{past_the_end:?}"
    );
    let seen = raw
        .command("b2", "FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
        .concat();
    assert!(
        seen.contains("Subject: message 1") && seen.contains("FLAGS (\\Seen \\Recent)"),
        "a FETCH that sets \\Seen reports it: {seen}"
    );
    let recent = raw.command("b3", "STORE 1 +FLAGS (\\Recent)");
    assert!(tagged(&recent).starts_with("b3 BAD"), "{recent:?}");

    // Garbage gets BAD, and the session goes on.
    let bad = raw.command("a3", "FROBNICATE now");
    assert!(tagged(&bad).starts_with("a3 BAD"), "{bad:?}");
    let noop = raw.command("a4", "NOOP");
    assert!(tagged(&noop).starts_with("a4 OK"), "{noop:?}");

    // IDLE sees a message stored meanwhile, within a second or two.
    raw.send("a5 IDLE\r\n");
    let idling = raw.line();
    assert!(idling.starts_with("+ "), "{idling}");
    lifeboat.outage(true);
    smtp_to_fallback(lifeboat.fallback, ALICE, &message(3));
    let news = raw.line();
    assert_eq!(news, "* 3 EXISTS\r\n");
    raw.send("DONE\r\n");
    let done = raw.until_tagged("a5");
    assert!(tagged(&done).starts_with("a5 OK"), "{done:?}");

    let logout = raw.command("a6", "LOGOUT");
    assert!(logout[0].starts_with("* BYE"), "{logout:?}");
    let mut rest = String::new();
    let _ = raw.reader.read_to_string(&mut rest);
    assert_eq!(rest, "");
}

#[test]
fn mailboxes_append_copy_move_and_expunge_with_imaplib() {
    let lifeboat = lifeboat_with_mail(3);
    let script = r#"
import imaplib, sys, time
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
caps = m.capabilities
for c in ("UIDPLUS", "MOVE", "SPECIAL-USE", "IDLE", "NAMESPACE"):
    assert c in caps, (c, caps)
typ, listing = m.list()
print("list", sorted(l.decode() for l in listing))
print("create", m.create("Projekte.Entw&APw-rfe"))
print("create again", m.create("Projekte"))
print("rename", m.rename("Projekte", "Arbeit"))
typ, listing = m.list("\"\"", "Arbeit*")
print("renamed", sorted(l.decode() for l in listing))
print("subscribe", m.unsubscribe("Junk"))
typ, lsub = m.lsub()
print("lsub", sorted(l.decode() for l in lsub))
date = imaplib.Time2Internaldate(time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, -1)))
typ, data = m.append("Arbeit.Entw&APw-rfe", r"(\Flagged $Work)", date, b"Subject: appended\r\n\r\nhello\r\n")
print("append", typ, data)
m.select("INBOX")
m.uid("COPY", "1:2", "Archive")
print("copy", m.response("COPYUID"))
m.uid("MOVE", "3", "Arbeit.Entw&APw-rfe")
print("move", m.response("COPYUID"))
print("after move", m.select("INBOX"))
print("status", m.status("Arbeit.Entw&APw-rfe", "(MESSAGES UIDNEXT UNSEEN)"))
m.select("Arbeit.Entw&APw-rfe")
print("fetch", m.fetch("1:*", "(FLAGS INTERNALDATE RFC822.SIZE)"))
m.store("1", "+FLAGS", r"(\Deleted)")
print("expunge", m.expunge())
print("left", m.search(None, "ALL"))
m.close()
print("delete selected-not", m.delete("Arbeit.Entw&APw-rfe"))
print("delete parent", m.delete("Arbeit"))
print("delete inbox", m.delete("INBOX"))
m.logout()
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{out}"))
            .to_string()
    };
    let list = line("list ");
    for expected in [
        r#"(\\HasNoChildren \\Sent) "." Sent"#,
        r#"(\\HasNoChildren \\Archive) "." Archive"#,
        r#"(\\HasNoChildren) "." INBOX"#,
    ] {
        assert!(list.contains(expected), "{expected} in {list}");
    }
    assert!(line("create ").contains("'OK'"), "{out}");
    assert!(line("create again").contains("ALREADYEXISTS"), "{out}");
    assert!(
        line("renamed").contains(r#""." Arbeit.Entw&APw-rfe"#),
        "{out}"
    );
    assert!(
        !line("lsub").contains("Junk") && line("lsub").contains("Sent"),
        "{out}"
    );
    assert!(line("append").contains("[APPENDUID "), "{out}");
    assert!(line("copy").ends_with(" 1:2 1:2'])"), "{out}");
    assert!(line("move").ends_with(" 3 2'])"), "{out}");
    assert!(line("after move").contains("[b'2']"), "{out}");
    assert!(
        line("status").contains("MESSAGES 2 UIDNEXT 3 UNSEEN 2"),
        "{out}"
    );
    let fetch = line("fetch");
    assert!(
        fetch.contains(r#"1 (FLAGS (\\Flagged \\Recent $Work) INTERNALDATE "20-Nov-2026"#),
        "{fetch}"
    );
    assert!(line("expunge").contains("[b'1']"), "{out}");
    assert!(line("left").contains("[b'1']"), "{out}");
    assert!(line("delete selected-not").contains("'OK'"), "{out}");
    assert!(line("delete parent").contains("'OK'"), "{out}");
    assert!(line("delete inbox").contains("'NO'"), "{out}");
}

/// LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), CHILDREN and STATUS=SIZE (RFC
/// 8438) as a client uses them; imaplib has no call for the extended syntax, so its
/// generic one sends it.
#[test]
fn list_extended_list_status_and_status_size_with_imaplib() {
    let lifeboat = lifeboat_with_mail(3);
    let script = r#"
import imaplib, re, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
for c in ("CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "SPECIAL-USE"):
    assert c in m.capabilities, (c, m.capabilities)
m.create("Projects.2026")
m.unsubscribe("Projects")
def ext(*args):
    typ, dat = m._simple_command("LIST", *args)
    lines = m._untagged_response(typ, dat, "LIST")[1]
    status = m.response("STATUS")[1]
    return typ, [l.decode() for l in lines if l], [s.decode() for s in status if s]
print("children", ext('""', "%", "RETURN", "(CHILDREN)"))
print("patterns", ext('""', '("INBOX" "Projects.%" "inbox")'))
print("recursive", ext("(SUBSCRIBED RECURSIVEMATCH)", '""', "P%"))
print("liststatus", ext('""', "%", "RETURN", "(STATUS (MESSAGES UNSEEN SIZE))"))
print("specialuse", ext("(SPECIAL-USE)", '""', "*"))
print("status", m.status("INBOX", "(MESSAGES SIZE)"))
m.select("INBOX", readonly=True)
typ, sizes = m.fetch("1:*", "(RFC822.SIZE)")
print("sizesum", sum(int(re.search(rb"RFC822.SIZE (\d+)", s).group(1)) for s in sizes))
try:
    ext("(RECURSIVEMATCH)", '""', "*")
except imaplib.IMAP4.error as e:
    print("bad", e)
m.logout()
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{out}"))
            .to_string()
    };
    assert_eq!(
        line("children "),
        r#"children ('OK', ['(\\HasNoChildren) "." INBOX', '(\\HasNoChildren \\Archive) "." Archive', '(\\HasNoChildren \\Drafts) "." Drafts', '(\\HasNoChildren \\Junk) "." Junk', '(\\HasChildren) "." Projects', '(\\HasNoChildren \\Sent) "." Sent', '(\\HasNoChildren \\Trash) "." Trash'], [])"#
    );
    assert_eq!(
        line("patterns "),
        r#"patterns ('OK', ['(\\HasNoChildren) "." INBOX', '(\\HasNoChildren) "." Projects.2026'], [])"#
    );
    assert_eq!(
        line("recursive "),
        r#"recursive ('OK', ['(\\HasChildren) "." Projects ("CHILDINFO" ("SUBSCRIBED"))'], [])"#
    );
    let sum = line("sizesum ").trim_start_matches("sizesum ").to_string();
    let list_status = line("liststatus ");
    assert!(
        list_status.contains(&format!("'INBOX (MESSAGES 3 UNSEEN 3 SIZE {sum})'")),
        "{list_status}"
    );
    assert!(
        list_status.contains("'Projects (MESSAGES 0 UNSEEN 0 SIZE 0)'")
            && list_status.matches("(MESSAGES ").count() == 7,
        "{list_status}"
    );
    assert!(
        line("specialuse ").contains(r#"'(\\HasNoChildren \\Sent) "." Sent'"#)
            && !line("specialuse ").contains("INBOX"),
        "{out}"
    );
    assert!(
        line("status ").contains(&format!("INBOX (MESSAGES 3 SIZE {sum})")),
        "{out}"
    );
    assert!(line("bad ").contains("could not parse"), "{out}");
}

/// A small conversation for SORT and THREAD: `(from, subject, date, extra header)`.
fn conversation() -> Vec<(Vec<u8>, Class)> {
    [
        ("Zed <z@else.test>", "Plans", "Fri, 1 Mar 2024 09:00:00 +0000", "Message-ID: <plans@a>"),
        ("amy@else.test", "Re: Plans", "Fri, 1 Mar 2024 10:00:00 +0000", "Message-ID: <re@b>\r\nReferences: <plans@a>"),
        ("Bob <b@else.test>", "Other", "Thu, 29 Feb 2024 12:00:00 +0000", "Message-ID: <other@c>"),
        ("=?utf-8?q?=C3=89va?= <e@else.test>", "Re: Re: Plans", "Fri, 1 Mar 2024 11:00:00 +0000", "Message-ID: <re2@a>\r\nIn-Reply-To: <re@b>"),
    ]
    .into_iter()
    .map(|(from, subject, date, extra)| {
        let content = format!(
            "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}\r\n\r\nHello.\r\n"
        );
        (content.into_bytes(), Class::Journal)
    })
    .collect()
}

#[test]
fn sort_thread_esearch_and_searchres_with_imaplib() {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]);
    lifeboat.deliver_offline(ALICE, conversation());
    lifeboat.enable_imap("127.0.0.1", false, true);
    lifeboat.start();
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
for c in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESEARCH", "SEARCHRES"):
    assert c in m.capabilities, (c, m.capabilities)
m.select("INBOX")
print("sort date", m.sort("(DATE)", "UTF-8", "ALL"))
print("sort subject", m.sort("(SUBJECT REVERSE DATE)", "UTF-8", "ALL"))
print("sort displayfrom", m.sort("(DISPLAYFROM)", "UTF-8", "ALL"))
print("uid sort", m.uid("SORT", "(REVERSE DATE)", "UTF-8", "SUBJECT", "plans"))
print("thread references", m.thread("REFERENCES", "UTF-8", "ALL"))
print("thread orderedsubject", m.thread("ORDEREDSUBJECT", "UTF-8", "ALL"))
print("uid thread", m.uid("THREAD", "REFERENCES", "UTF-8", "NOT", "SUBJECT", "other"))
print("bad charset", m.sort("(DATE)", "KOI8-R", "ALL"))
typ, data = m.search(None, "RETURN", "(MIN MAX COUNT ALL)", "SUBJECT", "plans")
print("esearch", typ, m.response("ESEARCH"))
typ, data = m.uid("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "re:")
print("save", typ, data, m.response("ESEARCH"))
print("fetch saved", m.fetch("$", "(UID)"))
print("store saved", m.uid("STORE", "$", "+FLAGS.SILENT", r"(\Flagged)"))
print("flagged", m.search(None, "FLAGGED"))
m.logout()
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{out}"))
            .to_string()
    };
    assert_eq!(line("sort date"), "sort date ('OK', [b'3 1 2 4'])");
    assert_eq!(line("sort subject"), "sort subject ('OK', [b'3 4 2 1'])");
    // Display names, else the address: amy@else.test, Bob, Éva, Zed.
    assert_eq!(
        line("sort displayfrom"),
        "sort displayfrom ('OK', [b'2 3 4 1'])"
    );
    assert_eq!(line("uid sort"), "uid sort ('OK', [b'4 2 1'])");
    assert_eq!(
        line("thread references"),
        "thread references ('OK', [b'(3)(1 2 4)'])"
    );
    assert_eq!(
        line("thread orderedsubject"),
        "thread orderedsubject ('OK', [b'(3)(1 (2)(4))'])"
    );
    assert_eq!(line("uid thread"), "uid thread ('OK', [b'(1 2 4)'])");
    assert!(line("bad charset").contains("BADCHARSET"), "{out}");
    // imaplib keeps the ESEARCH line as it came, after its own tag.
    let esearch = line("esearch");
    assert!(
        esearch.starts_with("esearch OK ('ESEARCH', [b'(TAG "),
        "{esearch}"
    );
    assert!(
        esearch.ends_with(") MIN 1 MAX 4 ALL 1:2,4 COUNT 3'])"),
        "{esearch}"
    );
    assert_eq!(line("save"), "save OK [None] ('ESEARCH', [None])");
    assert_eq!(
        line("fetch saved"),
        "fetch saved ('OK', [b'2 (UID 2)', b'4 (UID 4)'])"
    );
    assert_eq!(line("flagged"), "flagged ('OK', [b'2 4'])");
}

/// SEARCHRES pipelined, byte for byte: the saved result is ready for the commands
/// sent right behind the SAVE (RFC 5182 §2.3), and a `$` in a set is BAD.
#[test]
fn searchres_pipelined_byte_for_byte() {
    let lifeboat = lifeboat_with_mail(3);
    let mut raw = Raw::connect(plain(&lifeboat));
    let login = raw.command("a1", &format!("LOGIN {ALICE} {PASSWORD}"));
    assert!(tagged(&login).starts_with("a1 OK"), "{login:?}");
    raw.command("a2", "SELECT INBOX");
    raw.send(
        "a3 SEARCH RETURN (SAVE MIN) SUBJECT message NOT 1\r\n\
         a4 FETCH $ (UID)\r\na5 UID SEARCH RETURN (ALL COUNT) OR $ 1\r\n\
         a6 FETCH 1,$ (UID)\r\na7 SEARCH RETURN (PARTIAL 1:2) ALL\r\n",
    );
    let mut lines = Vec::new();
    for tag in ["a3", "a4", "a5", "a6", "a7"] {
        lines.extend(raw.until_tagged(tag));
    }
    assert_eq!(
        lines,
        [
            "* ESEARCH (TAG \"a3\") MIN 2\r\n",
            "a3 OK SEARCH completed\r\n",
            "* 2 FETCH (UID 2)\r\n",
            "a4 OK FETCH completed\r\n",
            "* ESEARCH (TAG \"a5\") UID ALL 1:2 COUNT 2\r\n",
            "a5 OK SEARCH completed\r\n",
            "a6 BAD could not parse that command\r\n",
            "a7 BAD could not parse that command\r\n",
        ]
    );
}

#[test]
fn append_to_sent_during_an_outage_is_a_sent_copy_for_replay() {
    let lifeboat = lifeboat_with_mail(0);
    lifeboat.outage(true);
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
msg = b"From: alice@example.test\r\nTo: friend@else.test\r\nMessage-ID: <sent1@example.test>\r\nSubject: reply\r\n\r\nhi\r\n"
print(m.append("Sent", r"(\Seen)", None, msg))
print(m.append("Sent", r"(\Seen)", None, msg))
print(m.append("Drafts", None, None, msg))
"#;
    python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    let store = lifeboat.store();
    let reader = store.reader().unwrap();
    let user = reader.user(ALICE).unwrap().unwrap();
    let classes = |folder: &str| -> Vec<(Class, Option<String>)> {
        let mailbox = reader.mailbox(user.id, folder).unwrap().unwrap();
        reader
            .messages(mailbox.id)
            .unwrap()
            .into_iter()
            .map(|m| (m.class, m.replay_state))
            .collect()
    };
    // Once for replay; the client's second APPEND of the same message is its own copy.
    assert_eq!(
        classes("Sent"),
        [
            (Class::Sent, Some("pending".to_string())),
            (Class::Other, None)
        ]
    );
    assert_eq!(classes("Drafts"), [(Class::Other, None)]);
}

#[test]
fn condstore_and_a_second_session_seeing_changes() {
    let lifeboat = lifeboat_with_mail(3);
    let login = |raw: &mut Raw, tag: &str| {
        let lines = raw.command(tag, &format!("LOGIN {ALICE} {PASSWORD}"));
        assert!(tagged(&lines).contains(" OK "), "{lines:?}");
    };
    let mut one = Raw::connect(plain(&lifeboat));
    let mut two = Raw::connect(plain(&lifeboat));
    login(&mut one, "a0");
    login(&mut two, "b0");
    let select = one.command("a1", "SELECT INBOX (CONDSTORE)");
    let highest: u64 = select
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{select:?}"));
    drop(two.command("b1", "SELECT INBOX"));

    // A change in session two...
    let store = two.command("b2", "STORE 2 +FLAGS (\\Flagged)");
    assert!(
        store[0].starts_with("* 2 FETCH (FLAGS (\\Flagged))"),
        "{store:?}"
    );
    // ...reaches session one at its next command, with its modseq (and \Recent: one
    // selected first, so the delivered mail is recent to it alone).
    let noop = one.command("a2", "NOOP");
    assert!(
        noop.iter()
            .any(|l| l.starts_with("* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (")),
        "{noop:?}"
    );
    let changed = one.command("a3", &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"));
    assert_eq!(changed.len(), 2, "only message 2 changed: {changed:?}");
    assert!(
        changed[0].starts_with("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ("),
        "{changed:?}"
    );

    // UNCHANGEDSINCE: message 2 changed after `highest`, so it is left alone.
    let conditional = one.command(
        "a4",
        &format!("STORE 1:2 (UNCHANGEDSINCE {highest}) +FLAGS (\\Seen)"),
    );
    assert!(
        tagged(&conditional).starts_with("a4 OK [MODIFIED 2]"),
        "{conditional:?}"
    );
    let flags = one.command("a5", "FETCH 1:2 (FLAGS)");
    assert!(
        flags[0].starts_with("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ"),
        "{flags:?}"
    );
    assert!(
        flags[1].starts_with("* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ"),
        "{flags:?}"
    );

    // An EXPUNGE in session two is not announced to one during FETCH, only after NOOP.
    drop(two.command("b3", "STORE 3 +FLAGS.SILENT (\\Deleted)"));
    let expunged = two.command("b4", "EXPUNGE");
    assert!(
        expunged.contains(&"* 3 EXPUNGE\r\n".to_string()),
        "{expunged:?}"
    );
    let during_fetch = one.command("a6", "FETCH 1 (UID)");
    assert!(
        !during_fetch.iter().any(|l| l.contains("EXPUNGE")),
        "{during_fetch:?}"
    );
    let noop = one.command("a7", "NOOP");
    assert!(noop.contains(&"* 3 EXPUNGE\r\n".to_string()), "{noop:?}");
}

#[test]
fn idle_hears_of_mail_the_milter_journals_through_a_real_postfix() {
    use support::origin::Origin;
    use support::postfix::{Postfix, PostfixOptions};
    let origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.add_user(ALICE, &[]);
    lifeboat.enable_imap("127.0.0.1", false, true);
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    let postfix = Postfix::start(&options);
    lifeboat.start();

    let mut raw = Raw::connect(plain(&lifeboat));
    let login = raw.command("a1", &format!("LOGIN {ALICE} {PASSWORD}"));
    assert!(tagged(&login).starts_with("a1 OK"), "{login:?}");
    let select = raw.command("a2", "SELECT INBOX");
    assert!(select.contains(&"* 0 EXISTS\r\n".to_string()), "{select:?}");
    raw.send("a3 IDLE\r\n");
    assert!(raw.line().starts_with("+ "));
    postfix
        .send("sender@else.test", &[ALICE], &message(1))
        .unwrap();
    // The journal copy (origin normal) wakes the IDLE session.
    assert_eq!(raw.line(), "* 1 EXISTS\r\n");
    raw.send("DONE\r\n");
    let done = raw.until_tagged("a3");
    assert!(tagged(&done).starts_with("a3 OK"), "{done:?}");
    let fetched = raw.command("a4", "FETCH 1 (ENVELOPE)").concat();
    assert!(fetched.contains("\"message 1\""), "{fetched}");
    assert!(origin.wait_for_messages(1, Duration::from_secs(30)));
}

#[test]
fn qresync_client_resumes_after_another_session_expunged() {
    let lifeboat = lifeboat_with_mail(6);
    let script = r#"
import imaplib, sys
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def connect():
    m = imaplib.IMAP4(host, port)
    m.login(user, password)
    return m
# Session 1 syncs, remembers UIDVALIDITY and HIGHESTMODSEQ, and goes away.
one = connect()
assert "QRESYNC" in one.capabilities, one.capabilities
print("enable", one.enable("QRESYNC"), one.response("ENABLED"))
one.select("INBOX")
uv = one.response("UIDVALIDITY")[1][0].decode()
known = one.response("HIGHESTMODSEQ")[1][0].decode()
one.logout()
# Session 2 (no QRESYNC) expunges two messages and flags one, while 3 (QRESYNC) looks on.
watcher = connect()
watcher.enable("QRESYNC")
watcher.select("INBOX")
two = connect()
two.select("INBOX")
two.uid("STORE", "2,4", "+FLAGS.SILENT", r"(\Deleted)")
print("expunge", two.expunge())
two.uid("STORE", "5", "+FLAGS.SILENT", r"(\Flagged)")
two.logout()
typ, data = watcher.noop()
print("watcher", watcher.response("VANISHED"), watcher.response("FETCH"))
watcher.logout()
# Session 1 comes back and resumes where it was.
back = connect()
back.enable("QRESYNC")
typ, data = back._simple_command("SELECT", "INBOX (QRESYNC (%s %s 1:6))" % (uv, known))
back.state = "SELECTED"
print("select", typ, data)
print("earlier", back.response("VANISHED"))
print("changed", back.response("FETCH"))
typ, data = back.uid("FETCH", "1:6", "(FLAGS)", "(CHANGEDSINCE %s VANISHED)" % known)
print("uid fetch", typ, data, back.response("VANISHED"))
print("stale uidvalidity", back._simple_command("SELECT", "INBOX (QRESYNC (1 %s 1:6))" % known)[0], back.response("VANISHED"))
back.logout()
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{out}"))
            .to_string()
    };
    assert!(line("enable ").contains("[b'QRESYNC']"), "{out}");
    // The session without QRESYNC hears EXPUNGE; the one with it, VANISHED.
    assert!(line("expunge ").contains("[b'4', b'2']"), "{out}");
    let watcher = line("watcher ");
    assert!(watcher.contains("('VANISHED', [b'2,4'])"), "{watcher}");
    assert!(
        watcher.contains("b'3 (UID 5 FLAGS (\\\\Flagged) MODSEQ ("),
        "{watcher}"
    );
    assert!(
        line("select ").starts_with("select OK [b'[READ-WRITE]"),
        "{out}"
    );
    assert_eq!(line("earlier "), "earlier ('VANISHED', [b'(EARLIER) 2,4'])");
    let changed = line("changed ");
    assert!(
        changed.contains("[b'3 (UID 5 FLAGS (\\\\Flagged) MODSEQ (") && !changed.contains("UID 1 "),
        "{changed}"
    );
    let uid_fetch = line("uid fetch ");
    assert!(
        uid_fetch.contains("b'3 (UID 5 FLAGS (\\\\Flagged) MODSEQ (")
            && uid_fetch.ends_with("('VANISHED', [b'(EARLIER) 2,4'])"),
        "{uid_fetch}"
    );
    assert!(
        line("stale uidvalidity ").ends_with("('VANISHED', [None])"),
        "{out}"
    );
}

/// MULTIAPPEND (RFC 3502) and BINARY (RFC 3516) over a real socket, from Python: several
/// messages in one APPEND with synchronizing literals and a literal8, the UID set in
/// APPENDUID, BINARY data back as a literal8, all or nothing, and the limits.
#[test]
fn multiappend_and_binary_over_the_wire() {
    let lifeboat = lifeboat_with_mail(0);
    let script = r#"
import re, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
f = s.makefile("rb")

def until(tag):
    out = b""
    while True:
        line = f.readline()
        assert line, ("closed", out)
        out += line
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            out += f.read(int(m.group(1)))
            continue
        if line.startswith(tag + b" "):
            return out

def command(tag, text):
    s.sendall(tag + b" " + text + b"\r\n")
    return until(tag)

def go_ahead():
    line = f.readline()
    assert line.startswith(b"+"), line

assert f.readline().startswith(b"* OK")
assert b" OK " in command(b"a1", b"LOGIN " + sys.argv[3].encode() + b" " + sys.argv[4].encode())
caps = command(b"a2", b"CAPABILITY")
assert b" MULTIAPPEND" in caps and b" BINARY" in caps, caps

data = bytes(range(256))
first = b"Subject: one\r\n\r\nfirst message\r\n"
second = (b"Subject: two\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
          b"--x\r\nContent-Type: text/plain\r\n\r\nattached\r\n"
          b"--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
          + data + b"\r\n--x--\r\n")
s.sendall(b"a3 APPEND Archive (\\Seen) {%d}\r\n" % len(first))
go_ahead()
s.sendall(first + b' (\\Flagged) "20-Nov-2026 12:00:00 +0100" ~{%d}\r\n' % len(second))
go_ahead()
s.sendall(second + b"\r\n")
answer = until(b"a3")
print("multiappend", answer)
assert re.search(rb"a3 OK \[APPENDUID \d+ 1:2\]", answer), answer

command(b"a4", b"SELECT Archive")
answer = command(b"a5", b"UID FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[2]<254.10> FLAGS)")
print("binary", answer[:60])
# BINARY items come last, by section; BINARY.SIZE with the other items.
expected = (b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) BINARY.SIZE[2] 256 BINARY[2] ~{256}\r\n"
            + data + b" BINARY[2]<254> {2}\r\n\xfe\xff)\r\n")
assert answer.startswith(expected), answer
body = command(b"a6", b"UID FETCH 2 BODY.PEEK[2]")
assert b"Content-Transfer-Encoding" not in body and b"\x00" not in body, body

# All or nothing: an empty message cancels the lot.
answer = command(b"a7", b"APPEND Archive {5+}\r\nthird {0+}\r\n")
assert answer.startswith(b"a7 NO "), answer
assert b"MESSAGES 2" in command(b"a8", b"STATUS Archive (MESSAGES)")

# An encoding nobody knows.
odd = b"Subject: odd\r\nContent-Transfer-Encoding: x-odd\r\n\r\n???\r\n"
answer = command(b"a9", b"APPEND Archive {%d+}\r\n" % len(odd) + odd)
assert b"a9 OK [APPENDUID" in answer, answer
answer = command(b"b1", b"FETCH 3 BINARY.PEEK[1]")
print("odd", answer)
assert b"b1 NO [UNKNOWN-CTE]" in answer, answer

# Hostile: a plain literal with NUL, then 1001 tiny messages; the session goes on.
answer = command(b"b2", b"APPEND Archive {3+}\r\na\x00b")
assert answer.startswith(b"b2 BAD"), answer
many = b"".join(b" {1+}\r\nm" for _ in range(1001))
answer = command(b"b3", b"APPEND Archive" + many)
print("many", answer)
assert answer.startswith(b"b3 NO [TOOBIG]"), answer
assert b"b4 OK" in command(b"b4", b"NOOP")
assert b"MESSAGES 3" in command(b"b5", b"STATUS Archive (MESSAGES)")
print("done")
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            plain(&lifeboat).port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    );
    assert!(out.contains("done"), "{out}");
}
