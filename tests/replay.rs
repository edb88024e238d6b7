//! `lifeboat replay` against an origin the test controls: order, envelopes, the replay
//! id, idempotent reruns, 4xx and 5xx, and the flip from recovering to normal.

mod support;

use std::collections::HashSet;
use std::process::Output;

use lifeboat_mailstore::{Address, Class, NewMessage, Store};
use support::lifeboat::Lifeboat;
use support::origin::{Mode, Origin};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

fn message(n: usize) -> Vec<u8> {
    format!("From: someone@else.test\r\nSubject: message {n}\r\nMessage-ID: <r{n}@else.test>\r\n\r\nBody {n}.\r\n")
        .into_bytes()
}

/// Stores a copy as the capture paths would (serve is not running).
fn store_copy(lifeboat: &Lifeboat, owner: &str, to: &[&str], class: Class, n: usize) {
    let store = Store::open(&lifeboat.data_dir(), "lifeboat.test").unwrap();
    store.lock_for_delivery().unwrap();
    let folder = if class == Class::Sent {
        "Sent"
    } else {
        "INBOX"
    };
    let mut copy = NewMessage::new(Address::parse(owner).unwrap(), folder, message(n), class);
    copy.envelope_from = Some(if class == Class::Sent {
        owner.to_string()
    } else {
        "someone@else.test".to_string()
    });
    copy.envelope_to = to.iter().map(|a| Address::parse(a).unwrap()).collect();
    store.deliver(copy).unwrap();
}

fn replay(lifeboat: &Lifeboat, args: &[&str]) -> Output {
    lifeboat
        .command()
        .arg("replay")
        .args(args)
        .output()
        .unwrap()
}

fn state(lifeboat: &Lifeboat) -> String {
    let status: serde_json::Value =
        serde_json::from_str(&lifeboat.admin(&["status", "--json"])).unwrap();
    status["origins"][0]["state"].as_str().unwrap().to_string()
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
}

fn setup(origin: &Origin) -> Lifeboat {
    let lifeboat = Lifeboat::new(origin.addr());
    lifeboat.add_user(ALICE, &["sales@example.test"]);
    lifeboat.add_user(BOB, &[]);
    lifeboat
}

#[test]
fn replay_delivers_in_order_once_and_ends_the_recovery() {
    let origin = Origin::new();
    let lifeboat = setup(&origin);
    lifeboat.edit_config(|text| format!("{text}\n[replay]\nsent_subject_tag = \"[sent]\"\n"));
    lifeboat.outage(true);
    store_copy(&lifeboat, ALICE, &[ALICE], Class::Diverted, 1);
    store_copy(
        &lifeboat,
        ALICE,
        &["sales@example.test"],
        Class::Diverted,
        2,
    );
    store_copy(&lifeboat, BOB, &[BOB], Class::Diverted, 3);
    store_copy(&lifeboat, ALICE, &[], Class::Sent, 4);
    store_copy(&lifeboat, ALICE, &[ALICE], Class::Journal, 5);

    // In outage nothing is sent, and that is not an error.
    let out = replay(&lifeboat, &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("in outage"));
    assert!(origin.messages().is_empty());

    lifeboat.outage(false);
    assert_eq!(state(&lifeboat), "recovering");
    let dry = replay(&lifeboat, &["--dry-run"]);
    let listing = String::from_utf8_lossy(&dry.stdout);
    assert!(listing.contains("4 copies would be replayed"), "{listing}");
    assert!(origin.messages().is_empty());

    let out = replay(&lifeboat, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4 delivered, 0 deferred, 0 rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("recovering -> normal"), "{stdout}");
    assert_eq!(state(&lifeboat), "normal");

    let received = origin.messages();
    let deliveries: Vec<(String, Vec<String>, String)> = received
        .iter()
        .map(|m| {
            let text = m.text();
            (
                header(&text, "Subject").unwrap().to_string(),
                m.rcpt_to.clone(),
                m.mail_from.clone(),
            )
        })
        .collect();
    // Users go in parallel; each user's copies in arrival order. The journal copy is
    // never replayed; the alias copy goes to the original recipient; the sent copy to
    // the sender's own mailbox.
    let alices: Vec<_> = deliveries
        .iter()
        .filter(|d| d.0 != "message 3")
        .cloned()
        .collect();
    assert_eq!(
        alices,
        [
            (
                "message 1".into(),
                vec![ALICE.to_string()],
                "someone@else.test".into()
            ),
            (
                "message 2".into(),
                vec!["sales@example.test".to_string()],
                "someone@else.test".into()
            ),
            (
                "[sent] message 4".into(),
                vec![ALICE.to_string()],
                ALICE.into()
            ),
        ]
    );
    assert!(deliveries.contains(&(
        "message 3".into(),
        vec![BOB.to_string()],
        "someone@else.test".into()
    )));
    let sent = received
        .iter()
        .find(|m| m.mail_from == ALICE)
        .unwrap()
        .text();
    // Keyed with the store's key: the tag of the copy's replay id, not a fixed "yes".
    let mark = header(&sent, "X-Lifeboat-Sent").expect("sent copies are marked");
    let replay_id = header(&sent, "X-Lifeboat-Replay-ID").unwrap();
    assert!(
        lifeboat.store().keyring().is_sent_mark(replay_id, mark),
        "{sent}"
    );
    let ids: HashSet<String> = received
        .iter()
        .map(|m| {
            header(&m.text(), "X-Lifeboat-Replay-ID")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 4, "a stable, distinct replay id per copy");
    // The trace block Lifeboat keeps in its files does not travel.
    assert!(
        !received[0].text().contains("X-Lifeboat-Class")
            && !received[0].text().contains("X-Lifeboat-Trace"),
        "{}",
        received[0].text()
    );

    // The shipped Sieve rule files the replayed sent copy into Sent, and nothing else.
    for m in &received {
        let folder = sieve_folder(&m.text(), &m.mail_from, &m.rcpt_to[0]);
        let expected = if m.mail_from == ALICE {
            "Sent"
        } else {
            "INBOX"
        };
        assert_eq!(folder, expected, "{}", m.text());
    }
    // A message from someone else that carries both fields (had it bypassed the
    // gateway's milter, which removes them) is not filed as sent either.
    assert_eq!(sieve_folder(&sent, "someone@else.test", ALICE), "INBOX");

    // A second run has nothing to do.
    let again = replay(&lifeboat, &[]);
    assert!(again.status.success());
    assert_eq!(origin.messages().len(), 4);
}

#[test]
fn a_full_mailbox_waits_and_keeps_the_order_an_unknown_user_is_rejected() {
    let origin = Origin::with_mode(Mode::TempFailFor(HashSet::from([ALICE.to_string()])));
    let relay = Origin::new();
    let lifeboat = setup(&origin);
    // Notices about rejected copies go to the admins through the relay.
    lifeboat.edit_config(|text| {
        format!(
            "{}\n[notify]\nadmins = [\"ops@else.test\"]\n",
            text.replace(
                "[submission]\nlisten = []\ntls_listen = []\n",
                &format!(
                    "[submission]\nlisten = []\ntls_listen = []\nrelay = \"smtp://{}\"\n",
                    relay.addr()
                )
            )
        )
    });
    lifeboat.outage(true);
    store_copy(&lifeboat, ALICE, &[ALICE], Class::Diverted, 1);
    store_copy(
        &lifeboat,
        ALICE,
        &["sales@example.test"],
        Class::Diverted,
        2,
    );
    store_copy(&lifeboat, BOB, &[BOB], Class::Diverted, 3);
    lifeboat.outage(false);

    let out = replay(&lifeboat, &[]);
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    // Alice's first copy was deferred, so her second waits too (order); Bob's went.
    let received = origin.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, [BOB]);
    assert_eq!(state(&lifeboat), "recovering");

    // Bob's address is now unknown at the origin: a rejected copy is kept and counted.
    store_copy(&lifeboat, BOB, &[BOB], Class::Diverted, 4);
    origin.set_mode(Mode::RejectFor(HashSet::from([BOB.to_string()])));
    let out = replay(&lifeboat, &[]);
    // Alice's copies are in backoff (not due yet): still a later run's work.
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    let status: serde_json::Value =
        serde_json::from_str(&lifeboat.admin(&["status", "--json"])).unwrap();
    assert_eq!(status["origins"][0]["copies"]["rejected"], 1, "{status}");
    assert_eq!(
        status["origins"][0]["copies"]["diverted_pending"], 2,
        "{status}"
    );
    assert_eq!(origin.messages().len(), 1);
    let notices = relay.messages();
    assert_eq!(notices.len(), 1, "one notice to the admin");
    assert_eq!(notices[0].rcpt_to, ["ops@else.test"]);
    let notice = notices[0].text();
    assert!(notice.contains("1 replayed copies refused"), "{notice}");
    assert!(notice.contains("550 5.1.1"), "{notice}");
}

#[test]
fn an_unreachable_origin_is_left_for_a_later_run() {
    let mut origin = Origin::new();
    let lifeboat = setup(&origin);
    lifeboat.outage(true);
    store_copy(&lifeboat, ALICE, &[ALICE], Class::Diverted, 1);
    lifeboat.outage(false);
    origin.stop();
    // Not an error: the origin is not ready yet, and the run says so.
    let out = replay(&lifeboat, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("does not take mail"),
        "{out:?}"
    );
    assert_eq!(state(&lifeboat), "recovering");
}

#[test]
fn replay_killed_at_random_points_and_rerun_loses_nothing() {
    use std::time::{Duration, Instant};
    let origin = Origin::new();
    let lifeboat = setup(&origin);
    lifeboat.add_user("carol@example.test", &[]);
    lifeboat.outage(true);
    let users = [ALICE, BOB, "carol@example.test"];
    const PER_USER: usize = 20;
    for n in 0..PER_USER * users.len() {
        let user = users[n % users.len()];
        store_copy(&lifeboat, user, &[user], Class::Diverted, n);
    }
    lifeboat.outage(false);

    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "replay never finished");
        let mut child = lifeboat
            .command()
            .arg("replay")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a random point of the run (a run takes a few hundred ms here), 25
        // times; then let the last run finish.
        if kills < 25 {
            std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 400));
        } else {
            child.wait().unwrap();
        }
        match child.try_wait().unwrap() {
            Some(status) if status.success() && state(&lifeboat) == "normal" => break,
            Some(_) => {}
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
    }

    let received = origin.messages();
    let mut first_seen: Vec<String> = Vec::new();
    for m in &received {
        let id = header(&m.text(), "X-Lifeboat-Replay-ID")
            .unwrap()
            .to_string();
        if !first_seen.contains(&id) {
            first_seen.push(id);
        }
    }
    let duplicates = received.len() - first_seen.len();
    eprintln!(
        "replay killed {kills} times: {} copies, {} deliveries, {duplicates} duplicates",
        PER_USER * users.len(),
        received.len()
    );
    // Nothing lost: every copy reached the origin.
    assert_eq!(first_seen.len(), PER_USER * users.len());
    // A duplicate needs a kill between the origin's 250 and the ledger's commit.
    assert!(
        duplicates <= kills,
        "{duplicates} duplicates from {kills} kills"
    );
    // Per user, first deliveries come in arrival order.
    for user in users {
        let numbers: Vec<usize> = received
            .iter()
            .filter(|m| m.rcpt_to == [user])
            .map(|m| {
                header(&m.text(), "Subject")
                    .unwrap()
                    .trim_start_matches("message ")
                    .parse()
                    .unwrap()
            })
            .fold(Vec::new(), |mut seen, n| {
                if !seen.contains(&n) {
                    seen.push(n);
                }
                seen
            });
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        assert_eq!(numbers, sorted, "{user} got its copies out of order");
    }
}

/// Where `contrib/sieve/lifeboat-sent.sieve` files `message` delivered from `from` to
/// `to`, as Pigeonhole's `sieve-test` (package dovecot-sieve) says.
fn sieve_folder(message: &str, from: &str, to: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // sieve-test refuses to run as root; the files must be readable by `nobody`.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.path().join("lifeboat-sent.sieve");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/contrib/sieve/lifeboat-sent.sieve"
        ),
        &script,
    )
    .unwrap();
    let mail = dir.path().join("message.eml");
    std::fs::write(&mail, message).unwrap();
    for file in [&script, &mail] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut command = if nix::unistd::geteuid().is_root() {
        let mut setpriv = std::process::Command::new("setpriv");
        setpriv.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "sieve-test",
        ]);
        setpriv
    } else {
        std::process::Command::new("sieve-test")
    };
    let out = command
        .args(["-f", from, "-r", to, "-a", to])
        .arg(&script)
        .arg(&mail)
        .output()
        .expect("sieve-test (dovecot-sieve) is not installed; run ./tests/install-deps.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("* store message in folder: "))
        .unwrap_or_else(|| panic!("no folder in sieve-test's answer:\n{text}"));
    folder.to_string()
}
