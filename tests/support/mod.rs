//! Shared helpers for Lifeboat's end-to-end tests.
//!
//! Use from an integration test with `mod support;`, then:
//! - [`origin::Origin`]: a scriptable SMTP server playing the origin mail server (or the
//!   outside world, or a fallback relay);
//! - [`postfix::Postfix`]: a private, real Postfix instance routing protected domains to
//!   an origin and everything else to an outside sink (built by the `postfix-instance`
//!   script next to this file, which benchmarks use too);
//! - [`free_port`]: a loopback port nobody listens on right now;
//! - [`lifeboat`]: a real `lifeboat serve` process (written alongside the product code);
//! - [`slapd::Slapd`]: a private OpenLDAP server (StartTLS with [`test_ca::TestCa`]);
//! - [`dovecot::Dovecot`]: a private Dovecot IMAP server playing the origin's.
//!
//! Each test binary compiles this module separately and most use only part of it.
#![allow(dead_code)]

pub mod dovecot;
pub mod http;
pub mod lifeboat;
pub mod origin;
pub mod postfix;
pub mod raw;
pub mod slapd;
pub mod test_ca;

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read the port,
/// close), and not handed out before in this test process: the kernel may offer a port
/// it just gave back, and two listeners of one test config must not share it. Another
/// process may still take it before the caller binds it; callers that can should bind
/// port 0 themselves and keep the socket.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// A TCP port free on `ip` a moment ago: for a wildcard address (`0.0.0.0`) the port
/// must be free on every local address, which a check on 127.0.0.1 alone does not
/// show (another test may hold it on 127.0.0.2).
pub fn free_port_on(ip: &str) -> u16 {
    if ip == "127.0.0.1" {
        return free_port();
    }
    let ip: std::net::IpAddr = ip.parse().expect("an IP address");
    TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind port 0")
        .port()
}

/// Runs a Python script with `args` and returns its stdout; the script failing fails
/// the test with its output.
pub fn python(script: &str, args: &[String]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 (tests/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `done` every 50 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
