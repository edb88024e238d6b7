//! SMTP submission end to end: a real `lifeboat serve` handing users' mail to a real
//! Postfix gateway (with Lifeboat's milter), driven by swaks and Python's smtplib.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use lifeboat_mailstore::{Class, MessageRecord};
use support::lifeboat::Lifeboat;
use support::origin::Origin;
use support::postfix::{Postfix, PostfixOptions};

const WAIT: Duration = Duration::from_secs(30);
const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "secret"; // what Lifeboat::add_user sets

struct Setup {
    origin: Origin,
    outside: Origin,
    lifeboat: Lifeboat,
    postfix: Postfix,
    /// (STARTTLS, implicit TLS)
    submission: (SocketAddr, SocketAddr),
}

fn setup(plain_ip: &str, save_sent: bool) -> Setup {
    let origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.add_user(ALICE, &["sales@example.test"]);
    lifeboat.add_user("bob@example.test", &[]);
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    let postfix = Postfix::start(&options);
    let submission = lifeboat.enable_submission(plain_ip, postfix.smtpd, save_sent);
    lifeboat.start();
    Setup {
        origin,
        outside,
        lifeboat,
        postfix,
        submission,
    }
}

/// Sends one message with smtplib (STARTTLS, then AUTH); prints what happened.
fn smtplib(
    port: u16,
    user: &str,
    password: &str,
    from: &str,
    to: &[&str],
    message: &str,
) -> String {
    let script = r#"
import smtplib, ssl, sys
port, user, password, sender, rcpts, message = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(","), sys.argv[6]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.starttls(context=ctx)
try:
    s.login(user, password)
    refused = s.sendmail(sender, rcpts, message.encode())
    print("sent", refused)
except smtplib.SMTPException as e:
    print("error", e)
s.quit()
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), user, password, from])
        .arg(to.join(","))
        .arg(message)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mail(from: &str, to: &str, subject: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.test>\r\n\r\nHello.\r\n"
    )
}

fn folder(lifeboat: &Lifeboat, user: &str, name: &str) -> Vec<MessageRecord> {
    let reader = lifeboat.store().reader().unwrap();
    let user = reader.user(user).unwrap().unwrap();
    let mailbox = reader.mailbox(user.id, name).unwrap().unwrap();
    reader.messages(mailbox.id).unwrap()
}

#[test]
fn during_an_outage_colleagues_get_diverted_copies_and_outsiders_get_the_mail() {
    let s = setup("127.0.0.1", false);
    s.lifeboat.outage(true);
    let out = smtplib(
        s.submission.0.port(),
        ALICE,
        PASSWORD,
        ALICE,
        &["bob@example.test", "friend@else.test"],
        &mail(ALICE, "bob@example.test, friend@else.test", "lunch"),
    );
    assert!(out.starts_with("sent {}"), "{out}\n{}", s.lifeboat.log());
    // The outside recipient through Postfix, with Lifeboat's trace on top.
    assert!(s.outside.wait_for_messages(1, WAIT), "{}", s.postfix.log());
    let delivered = &s.outside.messages()[0];
    assert_eq!(delivered.rcpt_to, ["friend@else.test"]);
    assert_eq!(delivered.mail_from, ALICE);
    let text = delivered.text();
    assert!(
        text.contains("by lifeboat.test (Lifeboat submission) with ESMTPSA"),
        "{text}"
    );
    assert!(text.contains("Subject: lunch"), "{text}");
    // The colleague's copy was diverted by the milter: the origin got nothing.
    assert!(s.postfix.wait_queue_empty(WAIT), "{:?}", s.postfix.queue());
    let bob = folder(&s.lifeboat, "bob@example.test", "INBOX");
    assert_eq!((bob.len(), bob[0].class), (1, Class::Diverted));
    assert!(s.origin.messages().is_empty());
    // Alice's sent copy is recorded for replay, hidden (save_sent = false).
    let sent = folder(&s.lifeboat, ALICE, "Sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].class, Class::Sent);
    assert_eq!(sent[0].replay_state.as_deref(), Some("pending"));
    assert!(sent[0].expunged);
}

#[test]
fn swaks_over_implicit_tls_and_save_sent_outside_an_outage() {
    let s = setup("127.0.0.1", true);
    let out = Command::new("swaks")
        .args(["--server", &s.submission.1.to_string(), "--tls-on-connect"])
        .args(["--auth", "LOGIN", "--auth-user", "sales@example.test"])
        .args(["--auth-password", PASSWORD])
        .args(["--from", "sales@example.test", "--to", "friend@else.test"])
        .args(["--header", "From: Sales <sales@example.test>"])
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    // An alias is not a login name: only the user's own address logs in.
    assert!(transcript.contains("535 5.7.8"), "{transcript}");

    let out = Command::new("swaks")
        .args(["--server", &s.submission.1.to_string(), "--tls-on-connect"])
        .args([
            "--auth",
            "LOGIN",
            "--auth-user",
            ALICE,
            "--auth-password",
            PASSWORD,
        ])
        .args(["--from", "sales@example.test", "--to", "friend@else.test"])
        .args(["--header", "From: Sales <sales@example.test>"])
        .output()
        .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{transcript}");
    assert!(s.outside.wait_for_messages(1, WAIT));
    // Not in continuity: a visible copy in Sent (save_sent), not a copy for replay.
    let sent = folder(&s.lifeboat, ALICE, "Sent");
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].class, sent[0].expunged), (Class::Other, false));
}

#[test]
fn spoofed_senders_are_refused() {
    let s = setup("127.0.0.1", false);
    let envelope = smtplib(
        s.submission.0.port(),
        ALICE,
        PASSWORD,
        "ceo@example.test",
        &["friend@else.test"],
        &mail("ceo@example.test", "friend@else.test", "spoof1"),
    );
    assert!(
        envelope.contains("553") && envelope.contains("5.7.1"),
        "{envelope}"
    );
    let header = smtplib(
        s.submission.0.port(),
        ALICE,
        PASSWORD,
        ALICE,
        &["friend@else.test"],
        &mail("\"Alice\" <ceo@example.test>", "friend@else.test", "spoof2"),
    );
    assert!(
        header.contains("553") && header.contains("5.7.1"),
        "{header}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(s.outside.messages().is_empty());
}

#[test]
fn auth_needs_tls_and_wrong_passwords_lock_out() {
    let s = setup("0.0.0.0", false);
    let port = s.submission.0.port();
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.ehlo()
print("auth offered:", s.has_extn("auth"), "starttls offered:", s.has_extn("starttls"))
code, text = s.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=")
print("plain auth:", code, text.decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("auth offered: False starttls offered: True"),
        "{out}"
    );
    assert!(out.contains("plain auth: 538 5.7.11"), "{out}");

    // Wrong passwords (smtplib tries PLAIN, then LOGIN: two failures a round) lock the
    // user out after five: then the right one is refused too, for now.
    for _ in 0..3 {
        let wrong = smtplib(port, ALICE, "wrong", ALICE, &["x@else.test"], "x");
        assert!(wrong.contains("535") || wrong.contains("454"), "{wrong}");
    }
    let locked = smtplib(port, ALICE, PASSWORD, ALICE, &["x@else.test"], "x");
    assert!(locked.contains("454"), "{locked}");
}
