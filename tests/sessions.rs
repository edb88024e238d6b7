//! Sessions and logins against a real `serve`, over raw sockets: a disabled user or a
//! changed password ends open sessions at their next command; failures from one
//! address never lock the user out of their own account from another; STARTTLS after a
//! login is refused.

mod support;

use std::net::{IpAddr, SocketAddr};

use support::lifeboat::Lifeboat;
use support::origin::Origin;
use support::raw::Raw;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "secret"; // what Lifeboat::add_user sets

/// An AUTH PLAIN initial response.
fn plain_login(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

/// POP3 and submission on loopback (logins without TLS allowed there), alice added.
fn lifeboat() -> (Lifeboat, Origin) {
    let origin = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.add_user(ALICE, &[]);
    lifeboat.enable_pop3("127.0.0.1", false, true);
    lifeboat.enable_submission("127.0.0.1", origin.addr(), false);
    lifeboat.start();
    (lifeboat, origin)
}

fn pop3_logged_in(address: SocketAddr) -> Raw {
    let mut pop = Raw::connect(address);
    assert!(pop.line().starts_with("+OK"));
    assert!(pop.command(&format!("USER {ALICE}")).starts_with("+OK"));
    let answer = pop.command(&format!("PASS {PASSWORD}"));
    assert!(answer.starts_with("+OK"), "{answer}");
    pop
}

fn submission_logged_in(address: SocketAddr) -> Raw {
    let mut smtp = Raw::connect(address);
    assert!(smtp.smtp_reply().starts_with("220"));
    smtp.send(b"EHLO client.test\r\n");
    assert!(smtp.smtp_reply().starts_with("250"));
    let answer = smtp.command(&format!("AUTH PLAIN {}", plain_login(ALICE, PASSWORD)));
    assert!(answer.starts_with("235"), "{answer}");
    smtp
}

#[test]
fn disabling_a_user_ends_their_open_sessions() {
    let (lifeboat, _origin) = lifeboat();
    let mut pop = pop3_logged_in(lifeboat.pop3.unwrap().0);
    let mut smtp = submission_logged_in(lifeboat.submission.unwrap().0);
    assert!(pop.command("STAT").starts_with("+OK"));
    assert!(smtp.command("NOOP").starts_with("250"));

    lifeboat.admin(&["user", "disable", ALICE]);

    let answer = pop.command("STAT");
    assert!(answer.starts_with("-ERR [AUTH]"), "{answer}");
    assert!(pop.closed());
    let answer = smtp.command(&format!("MAIL FROM:<{ALICE}>"));
    assert!(answer.starts_with("421 4.7.0"), "{answer}");
    assert!(smtp.closed());
}

#[test]
fn a_new_password_ends_sessions_opened_with_the_old_one() {
    let (lifeboat, _origin) = lifeboat();
    let mut pop = pop3_logged_in(lifeboat.pop3.unwrap().0);
    let mut smtp = submission_logged_in(lifeboat.submission.unwrap().0);

    let mut passwd = lifeboat
        .command()
        .args(["user", "passwd", ALICE, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = passwd.stdin.take().unwrap();
    stdin.write_all(b"another-pass-1\n").unwrap();
    drop(stdin);
    assert!(passwd.wait().unwrap().success());

    assert!(pop.command("LIST").starts_with("-ERR [AUTH]"));
    assert!(smtp.command("RSET").starts_with("421 4.7.0"));
    // The new password works.
    let mut again = Raw::connect(lifeboat.pop3.unwrap().0);
    again.line();
    again.command(&format!("USER {ALICE}"));
    assert!(again.command("PASS another-pass-1").starts_with("+OK"));
}

#[test]
fn failures_from_one_address_do_not_lock_the_user_out_from_another() {
    let (lifeboat, _origin) = lifeboat();
    let pop3 = lifeboat.pop3.unwrap().0;
    let attacker: IpAddr = [127, 0, 0, 66].into();
    for _ in 0..8 {
        let mut pop = Raw::connect_from(attacker, pop3);
        pop.line();
        pop.command(&format!("USER {ALICE}"));
        assert!(pop.command("PASS guess").starts_with("-ERR"));
    }
    // The attacker's address is now refused even with the right password…
    let mut pop = Raw::connect_from(attacker, pop3);
    pop.line();
    pop.command(&format!("USER {ALICE}"));
    let answer = pop.command(&format!("PASS {PASSWORD}"));
    assert!(answer.starts_with("-ERR"), "{answer}");
    // …and alice, elsewhere, gets in.
    let mut pop = Raw::connect_from([127, 0, 0, 77].into(), pop3);
    pop.line();
    pop.command(&format!("USER {ALICE}"));
    let answer = pop.command(&format!("PASS {PASSWORD}"));
    assert!(answer.starts_with("+OK"), "{answer}");
}

#[test]
fn starttls_after_a_login_is_refused() {
    let (lifeboat, _origin) = lifeboat();
    let mut smtp = submission_logged_in(lifeboat.submission.unwrap().0);
    let answer = smtp.command("STARTTLS");
    assert!(answer.starts_with("503"), "{answer}");
}
