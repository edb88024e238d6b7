//! IMAP under concurrent sessions, checked against a model (issue 13): a real `lifeboat
//! serve`, two users with a few messages each, four clients that log in and out as
//! either user (so each mailbox has several sessions at once: phone, laptop, browser)
//! and run a random mix of SELECT/EXAMINE, FETCH, STORE, EXPUNGE, APPEND, COPY, MOVE,
//! NOOP, IDLE, STATUS and SEARCH, while new mail arrives through the fallback listener
//! (the origin is in outage). `tests/imap_stress.py` drives the sessions and checks
//! every answer; see its header for the model and the allowances RFC 3501/2180 make.
//!
//! A bounded run (a fixed number of operations per client), not a timed assertion: it
//! asserts the checker found no violation. The seed is printed; set IMAP_STRESS_SEED to
//! replay the same workload, and IMAP_STRESS_SERIAL=1 to run one command at a time.
//! `bench/imap_stress.sh` runs the same checker longer, against Dovecot too.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use lifeboat_mailstore::Class;
use support::lifeboat::{Lifeboat, message};

const USERS: [&str; 2] = ["user1@example.test", "user2@example.test"];
const PASSWORD: &str = "secret"; // what Lifeboat::add_user sets
const CLIENTS: usize = 4;
const OPS_PER_CLIENT: usize = 150;

#[test]
fn concurrent_sessions_agree_with_the_mailbox_model() {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut lifeboat = Lifeboat::new(origin);
    for (n, user) in USERS.iter().enumerate() {
        lifeboat.add_user(user, &[]);
        lifeboat.deliver_offline(
            user,
            (1..=6).map(|i| (message(n * 100 + i), Class::Journal)),
        );
    }
    lifeboat.enable_imap("127.0.0.1", true, false);
    lifeboat.start();
    // The origin is down: the fallback listener stores what Postfix hands it, so new
    // mail reaches the mailboxes while the sessions run.
    lifeboat.outage(true);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap_stress.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .args(["--label", "lifeboat"])
        .args(["--port", &lifeboat.imap.unwrap().0.port().to_string()])
        .args(["--clients", &CLIENTS.to_string()])
        .args(["--ops", &OPS_PER_CLIENT.to_string()])
        .args(["--deliver", &format!("smtp:{}", lifeboat.fallback)]);
    for user in USERS {
        command.args(["--user", &format!("{user}:{PASSWORD}")]);
    }
    let out = command
        .output()
        .expect("python3 (tests/install-deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !out.status.success() {
        let log = lifeboat.log();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .take(20)
            .collect();
        panic!(
            "the IMAP model checker found violations (exit {:?}; its report is above)\n\
             {stderr}\nfirst warnings and errors in the server log:\n{}",
            out.status.code(),
            errors.join("\n")
        );
    }
}
