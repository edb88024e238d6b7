//! `[auth] backend = "origin-imap"` against a real Dovecot as the origin's IMAP server:
//! logins are checked there (STARTTLS, then implicit TLS after a reload), the accepted
//! password is cached and works while the origin is down or silent (after
//! `source_timeout`), and a password the origin refuses never works from the cache.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use support::dovecot::Dovecot;
use support::lifeboat::Lifeboat;

const ALICE: &str = "alice@example.test";

fn imap_login(lifeboat: &Lifeboat, user: &str, password: &str) -> bool {
    let mut imap = support::raw::Raw::connect(lifeboat.imap.unwrap().0);
    assert!(imap.line().starts_with("* OK"));
    imap.send(format!("a LOGIN \"{user}\" \"{password}\"\r\n").as_bytes());
    loop {
        let line = imap.line();
        assert!(!line.is_empty(), "connection closed during LOGIN");
        if let Some(answer) = line.strip_prefix("a ") {
            return answer.starts_with("OK");
        }
    }
}

fn cached(lifeboat: &Lifeboat) -> bool {
    let reader = lifeboat.store().reader().unwrap();
    reader
        .user(ALICE)
        .unwrap()
        .unwrap()
        .cached_verifier
        .is_some()
}

fn use_origin(lifeboat: &Lifeboat, url: &str, ca: &std::path::Path) {
    lifeboat.edit_config(|text| {
        let start = text.find("[auth]\n").expect("an [auth] section");
        let end = text[start + 7..]
            .find("\n[")
            .map_or(text.len(), |at| start + 7 + at + 1);
        format!(
            "{}[auth]\nallow_plaintext = false\nbackend = \"origin-imap\"\norigin_imap = \"{url}\"\n\
             origin_imap_ca_file = \"{}\"\nsource_timeout = \"4s\"\nsource_retry_after = \"1s\"\n{}",
            &text[..start],
            ca.display(),
            &text[end..]
        )
    });
}

#[test]
fn origin_logins_are_cached_and_a_refusal_beats_the_cache() {
    let mut dovecot = Dovecot::new(&[(ALICE, "origin-first")]);
    dovecot.start();
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]); // local password "secret"
    lifeboat.enable_imap("127.0.0.1", false, true);
    use_origin(
        &lifeboat,
        &format!("imap://127.0.0.1:{}", dovecot.port),
        &dovecot.tls.ca,
    );
    lifeboat.start();

    let started = Instant::now();
    assert!(
        imap_login(&lifeboat, ALICE, "origin-first"),
        "over STARTTLS:\n{}\n{}",
        lifeboat.log(),
        dovecot.log()
    );
    eprintln!("first origin login took {:?}", started.elapsed());
    assert!(cached(&lifeboat));
    let started = Instant::now();
    assert!(
        !imap_login(&lifeboat, ALICE, "secret"),
        "the origin decides while it answers, not the local password:\n{}",
        lifeboat.log()
    );
    eprintln!("refused origin login took {:?}", started.elapsed());
    assert!(
        cached(&lifeboat),
        "a refused other password leaves the cache alone"
    );

    // The origin hangs (accepts, says nothing): after source_timeout the cache decides.
    dovecot.stop();
    let silent = TcpListener::bind(("127.0.0.1", dovecot.port)).unwrap();
    let started = Instant::now();
    assert!(imap_login(&lifeboat, ALICE, "origin-first"));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(3900) && waited < Duration::from_secs(6),
        "waited {waited:?} for a silent origin (source_timeout = 4s)"
    );
    // Within source_retry_after the origin is not asked again: no wait.
    let started = Instant::now();
    assert!(
        !imap_login(&lifeboat, ALICE, "guess"),
        "a wrong one still fails"
    );
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "the failure delay (1 s) but no wait for the origin"
    );
    drop(silent);

    // Back, with a new password: the old one is refused at once and its cache dropped.
    dovecot.set_users(&[(ALICE, "origin-second")]);
    dovecot.start();
    std::thread::sleep(Duration::from_millis(1100)); // source_retry_after
    assert!(!imap_login(&lifeboat, ALICE, "origin-first"));
    assert!(
        !cached(&lifeboat),
        "the refused password's cache is dropped"
    );
    dovecot.stop();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        !imap_login(&lifeboat, ALICE, "origin-first"),
        "the revoked password does not come back while the origin is down"
    );

    // A reload switches to implicit TLS.
    dovecot.start();
    use_origin(
        &lifeboat,
        &format!("imaps://127.0.0.1:{}", dovecot.tls_port),
        &dovecot.tls.ca,
    );
    lifeboat.signal(nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(imap_login(&lifeboat, ALICE, "origin-second"), "over imaps");
    assert!(cached(&lifeboat));
    assert!(lifeboat.log().contains("configuration reloaded"));
}

/// A certificate the client cannot verify is "cannot ask", never "accepted".
#[test]
fn an_origin_with_an_untrusted_certificate_is_not_believed() {
    let mut dovecot = Dovecot::new(&[(ALICE, "origin-pw")]);
    dovecot.start();
    let other_ca = support::test_ca::TestCa::create(&dovecot.dir().join("other-ca"));
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user(ALICE, &[]);
    lifeboat.enable_imap("127.0.0.1", false, true);
    use_origin(
        &lifeboat,
        &format!("imaps://127.0.0.1:{}", dovecot.tls_port),
        &other_ca.ca,
    );
    lifeboat.start();
    assert!(!imap_login(&lifeboat, ALICE, "origin-pw"));
    assert!(!cached(&lifeboat));
    assert!(
        lifeboat.log().contains("password source unreachable"),
        "{}",
        lifeboat.log()
    );
}
