//! `lifeboat serve` as a process: reload on SIGHUP, the unprivileged account, and
//! refusing a second instance on the same store.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::lifeboat::Lifeboat;

fn banner(addr: std::net::SocketAddr) -> String {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_applies_a_good_config_and_keeps_running_on_a_bad_one() {
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.start();
    assert!(banner(lifeboat.fallback).starts_with("220 "));

    // Loopback is no longer an allowed client of the fallback listener.
    let fallback = lifeboat.fallback;
    lifeboat.edit_config(|text| {
        text.replace(
            &format!("listen = \"{fallback}\"\n"),
            &format!("listen = \"{fallback}\"\nallowed_clients = [\"192.0.2.0/24\"]\n"),
        )
    });
    lifeboat.signal(Signal::SIGHUP);
    wait_for("the reload", || {
        lifeboat.log().contains("configuration reloaded")
    });
    assert!(
        banner(fallback).starts_with("554 5.7.1"),
        "the new allowed_clients apply"
    );

    lifeboat.edit_config(|text| text + "\nhistory_days = \"thirty\"\n");
    lifeboat.signal(Signal::SIGHUP);
    wait_for("the refused reload", || {
        lifeboat.log().contains("configuration not reloaded")
    });
    assert!(
        lifeboat.log().contains("history_days"),
        "the error names the key"
    );
    assert!(
        banner(fallback).starts_with("554 5.7.1"),
        "still serving with the last good config"
    );
    assert_eq!(lifeboat.terminate(), Some(0));
}

/// Sends the milter protocol's first packet (option negotiation) and returns the bytes
/// of the answer: none when the milter closed the connection without a word.
fn milter_answer(addr: std::net::SocketAddr) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Length 13, 'O', version 6, every action, every protocol option.
    let optneg = [
        0, 0, 0, 13, b'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff,
    ];
    let _ = stream.write_all(&optneg);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// Issue 12, item 10: the inet milter accepted any client, so anyone who could reach it
/// could have mail stored and replayed with any envelope sender. `[milter]
/// allowed_clients` (loopback by default, reloaded on SIGHUP) closes the door on others.
#[test]
fn the_milter_refuses_clients_outside_allowed_clients() {
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    let milter = lifeboat.milter;
    lifeboat.edit_config(|text| {
        text.replace(
            &format!("listen = \"inet:{milter}\"\n"),
            &format!("listen = \"inet:{milter}\"\nallowed_clients = [\"192.0.2.0/24\"]\n"),
        )
    });
    lifeboat.start();
    assert_eq!(
        milter_answer(milter),
        b"",
        "closed: 127.0.0.1 is not allowed"
    );
    assert!(
        lifeboat
            .log()
            .contains("connection from a client not in milter.allowed_clients"),
        "{}",
        lifeboat.log()
    );

    // SIGHUP before serve installed its handler would end it.
    wait_for("serve to be ready", || {
        lifeboat.log().contains("lifeboat serve ready")
    });
    lifeboat.edit_config(|text| text.replace("[\"192.0.2.0/24\"]", "[\"127.0.0.1\"]"));
    lifeboat.signal(Signal::SIGHUP);
    wait_for("the reload", || {
        lifeboat.log().contains("configuration reloaded")
    });
    let answer = milter_answer(milter);
    assert_eq!(
        answer.get(4),
        Some(&b'O'),
        "negotiation answered: {answer:?}"
    );
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn a_second_serve_on_the_same_store_is_refused() {
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut first = Lifeboat::new(origin);
    first.start();
    // Same data_dir, other ports.
    let second = Lifeboat::new(origin);
    let data_dir = first.data_dir();
    second.edit_config(|text| {
        let line = text.lines().next().unwrap().to_string();
        text.replacen(&line, &format!("data_dir = \"{}\"", data_dir.display()), 1)
    });
    let out = second.command().arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("held by another process"));
}

#[test]
fn started_as_root_serve_runs_as_the_configured_account() {
    if !nix::unistd::geteuid().is_root() {
        panic!("the end-to-end tests run as root (see test.sh)");
    }
    // A system account for this test (created once, kept: useradd is not cheap).
    let name = "lifeboat-test";
    if nix::unistd::User::from_name(name).unwrap().is_none() {
        let status = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name}");
    }
    let account = nix::unistd::User::from_name(name).unwrap().unwrap();
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    // The temp dir itself is root's and private: data_dir must be reachable by the account.
    std::fs::set_permissions(
        lifeboat.dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    lifeboat.add_user("alice@example.test", &[]); // as root, before the account is set
    lifeboat.edit_config(|text| text.replace("user = \"root\"", &format!("user = \"{name}\"")));
    lifeboat.start();

    let status =
        std::fs::read_to_string(format!("/proc/{}/status", lifeboat.pid().unwrap())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|uid| uid == account.uid.to_string()),
        "real, effective, saved and fs uid must all be {name}'s: {uid_line}"
    );
    for path in [
        "data",
        "data/index.sqlite",
        "data/mail/example.test/alice/cur",
    ] {
        let owner = std::fs::metadata(lifeboat.dir().join(path)).unwrap().uid();
        assert_eq!(
            owner,
            account.uid.as_raw(),
            "{path} belongs to the service account"
        );
    }
    // It still works as that account: the fallback stores during an outage.
    lifeboat.outage(true);
    assert!(banner(lifeboat.fallback).starts_with("220 "));
    assert_eq!(lifeboat.terminate(), Some(0));
}

#[test]
fn tells_systemd_when_it_is_ready_and_when_it_stops() {
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    let socket_path = lifeboat.dir().join("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    lifeboat.set_env("NOTIFY_SOCKET", socket_path.to_str().unwrap());
    lifeboat.start();
    let mut buf = [0u8; 256];
    let n = systemd.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    lifeboat.signal(Signal::SIGTERM);
    let n = systemd.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert_eq!(lifeboat.terminate(), Some(0));
}

/// Expiry needs the delivery lock `serve` holds: serve expires at start (then daily) and
/// `lifeboat expire` beside it exits 75.
#[test]
fn serve_expires_old_copies_and_the_command_waits_for_it() {
    let origin: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    lifeboat.add_user("alice@example.test", &[]);
    let (old, recent) = {
        let store = lifeboat.store();
        store.lock_for_delivery().unwrap();
        let owner = lifeboat_mailstore::Address::parse("alice@example.test").unwrap();
        let deliver = |days_ago: i64| {
            let mut message = lifeboat_mailstore::NewMessage::new(
                owner.clone(),
                "INBOX",
                support::lifeboat::message(1),
                lifeboat_mailstore::Class::Journal,
            );
            message.internal_date = Some(lifeboat_mailstore::store::now() - days_ago * 86_400);
            store.deliver(message).unwrap()
        };
        (deliver(31), deliver(1))
    };
    lifeboat.start();
    wait_for("serve's expiry", || !old.path.exists());
    assert!(recent.path.exists());
    wait_for("the expiry log line", || {
        lifeboat.log().contains("expiry done")
    });
    let out = lifeboat.command().arg("expire").output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("serve is running"));
    assert_eq!(lifeboat.terminate(), Some(0));
}
