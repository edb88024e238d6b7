//! `serve` under a low `ulimit -n` with IMAP clients trying to take every descriptor:
//! the user-facing servers get at most their share, capture (milter through a real
//! Postfix) goes on during the flood and after it, and `lifeboat status` shows the
//! budget and each listener.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lifeboat::{Lifeboat, message};
use support::origin::Origin;
use support::postfix::{Postfix, PostfixOptions};

const WAIT: Duration = Duration::from_secs(30);
const LIMIT: u64 = 256;

/// Opens up to `count` connections, spread over 127.0.0.2..=127.0.0.11 so the per-client
/// limit (50) is not what stops them; keeps those the server did not close at once.
fn flood(imap: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::new();
    for i in 0..count {
        let source = std::net::IpAddr::from([127, 0, 0, 2 + (i % 10) as u8]);
        let socket = support::raw::connect_from(source, imap);
        if let Some(stream) = socket {
            open.push(stream);
        }
    }
    // Those refused got a line and a close; keep only the ones still open.
    std::thread::sleep(Duration::from_millis(500));
    open.retain(|stream| {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 512];
        let mut alive = true;
        loop {
            match std::io::Read::read(&mut &*stream, &mut byte) {
                Ok(0) => {
                    alive = false;
                    break;
                }
                Ok(n) if String::from_utf8_lossy(&byte[..n]).contains("BYE") => {
                    alive = false;
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        alive
    });
    open
}

fn serve_status(lifeboat: &Lifeboat) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let status: Value = serde_json::from_str(&lifeboat.admin(&["status", "--json"])).unwrap();
        if !status["serve"].is_null() {
            return status["serve"].clone();
        }
        assert!(Instant::now() < deadline, "no serve report: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn capture_goes_on_while_imap_clients_try_to_take_every_descriptor() {
    let origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.enable_imap("127.0.0.1", true, false);
    lifeboat.limit_descriptors(LIMIT);
    lifeboat.add_user("alice@example.test", &[]);
    lifeboat.start();
    let imap = lifeboat.imap.unwrap().0;
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    options.fallback = Some(lifeboat.fallback);
    let postfix = Postfix::start(&options);

    let report = serve_status(&lifeboat);
    assert_eq!(report["descriptor_limit"], LIMIT, "{report}");
    let budget = report["session_budget"].as_u64().unwrap() as usize;
    assert!(budget > 0 && budget < (LIMIT / 2) as usize, "{report}");

    // Far more connections than the process has descriptors.
    let held = flood(imap, 2 * LIMIT as usize);
    assert!(
        held.len() <= budget,
        "{} connections held, budget {budget}",
        held.len()
    );
    assert!(held.len() >= budget / 2, "{} held of {budget}", held.len());

    // Capture works during the flood: journal copies through Postfix and the milter.
    for n in 1..=3 {
        postfix
            .send("sender@else.test", &["alice@example.test"], &message(n))
            .unwrap();
    }
    let inbox = lifeboat.wait_for_inbox("alice@example.test", 3, WAIT);
    assert_eq!(inbox.len(), 3, "{}", lifeboat.log());
    assert!(origin.wait_for_messages(3, WAIT));

    // The flood ends; capture and IMAP work as before.
    drop(held);
    postfix
        .send("sender@else.test", &["alice@example.test"], &message(4))
        .unwrap();
    assert_eq!(
        lifeboat.wait_for_inbox("alice@example.test", 4, WAIT).len(),
        4
    );
    let mut greeting = [0u8; 64];
    let stream = TcpStream::connect(imap).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = std::io::Read::read(&mut &stream, &mut greeting).unwrap();
    assert!(String::from_utf8_lossy(&greeting[..n]).starts_with("* OK"));

    // serve rewrites its report every few seconds: wait for one after the last message.
    let deadline = Instant::now() + WAIT;
    let report = loop {
        let report = serve_status(&lifeboat);
        let milter_accepted = report["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["kind"] == "milter")
            .map_or(0, |m| m["accepted"].as_u64().unwrap());
        if milter_accepted >= 4 || Instant::now() > deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let listeners = report["listeners"].as_array().unwrap();
    for kind in ["milter", "fallback", "imap"] {
        let listener = listeners
            .iter()
            .find(|l| l["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {report}"));
        assert_eq!(listener["stopped"], false, "{report}");
    }
    let milter = listeners.iter().find(|l| l["kind"] == "milter").unwrap();
    assert!(milter["accepted"].as_u64().unwrap() >= 4, "{report}");
}
