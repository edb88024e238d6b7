//! The outage drill end to end: 2,000 messages through a real Postfix gateway before,
//! during and after an outage that Lifeboat detects, rides out and replays by itself.

mod support;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use lifeboat_mailstore::Class;
use support::lifeboat::Lifeboat;
use support::origin::Origin;
use support::postfix::{Postfix, PostfixOptions};

const USERS: [&str; 2] = ["alice@example.test", "bob@example.test"];
const WAIT: Duration = Duration::from_secs(180);

/// Sends messages `range` over one SMTP session (Python's smtplib), alternating users.
fn send(postfix: &Postfix, range: std::ops::Range<usize>) {
    let script = r#"
import smtplib, sys
port, first, last = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
users = ["alice@example.test", "bob@example.test"]
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
for n in range(first, last):
    to = users[n % 2]
    s.sendmail("partner@else.test", [to],
        f"From: partner@else.test\r\nTo: {to}\r\nSubject: drill {n}\r\nMessage-ID: <drill{n}@else.test>\r\n\r\nMessage {n}.\r\n".encode())
s.quit()
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .args([
            postfix.smtpd.port().to_string(),
            range.start.to_string(),
            range.end.to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

fn state(lifeboat: &Lifeboat) -> String {
    let status: serde_json::Value =
        serde_json::from_str(&lifeboat.admin(&["status", "--json"])).unwrap();
    status["origins"][0]["state"].as_str().unwrap().to_string()
}

fn wait_until(what: &str, lifeboat: &Lifeboat, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: state {}, log tail:\n{}",
            state(lifeboat),
            lifeboat
                .log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
}

#[test]
fn two_thousand_messages_across_an_outage_reach_the_origin_once_each_in_order() {
    let mut origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.edit_config(|text| {
        format!(
            "{text}\n[watch]\nprobe_interval = \"1s\"\noutage_probe_interval = \"500ms\"\n\
             retry_interval = \"200ms\"\nprobe_timeout = \"1s\"\nrecovery_min_duration = \"2s\"\n"
        )
    });
    for user in USERS {
        lifeboat.add_user(user, &[]);
    }
    lifeboat.start();
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    options.fallback = Some(lifeboat.fallback);
    options.fast_retry = true;
    let postfix = Postfix::start(&options);

    // Before: the origin takes everything; Lifeboat journals.
    send(&postfix, 0..600);
    // During: the origin is down; Lifeboat notices and diverts.
    origin.stop();
    send(&postfix, 600..1400);
    wait_until("the outage is declared", &lifeboat, || {
        state(&lifeboat) == "outage"
    });
    // After: the origin returns; Lifeboat recovers, replays, and mail flows again.
    origin.start();
    send(&postfix, 1400..2000);
    wait_until(
        "back to normal with Postfix's queue empty",
        &lifeboat,
        || state(&lifeboat) == "normal" && postfix.queue().is_empty(),
    );

    let received = origin.messages();
    let mut per_subject: HashMap<String, usize> = HashMap::new();
    let mut replay_ids = HashSet::new();
    let mut replayed: HashMap<String, Vec<usize>> = HashMap::new();
    for message in &received {
        let text = message.text();
        let subject = header(&text, "Subject").unwrap().to_string();
        *per_subject.entry(subject.clone()).or_default() += 1;
        if let Some(id) = header(&text, "X-Lifeboat-Replay-ID") {
            assert!(replay_ids.insert(id.to_string()), "replayed twice: {id}");
            let n: usize = subject.trim_start_matches("drill ").parse().unwrap();
            replayed
                .entry(message.rcpt_to[0].clone())
                .or_default()
                .push(n);
        }
    }
    // Every message reached the origin exactly once: by Postfix, or by replay.
    assert_eq!(per_subject.len(), 2000, "missing some of 2,000");
    let twice: Vec<_> = per_subject.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");

    // Replay went per recipient in the order Lifeboat stored the copies (UID order), and
    // only diverted copies were replayed.
    let store = lifeboat.store();
    let reader = store.reader().unwrap();
    let mut diverted_total = 0;
    for user in USERS {
        let record = reader.user(user).unwrap().unwrap();
        let inbox = reader.mailbox(record.id, "INBOX").unwrap().unwrap();
        let diverted: Vec<usize> = reader
            .messages(inbox.id)
            .unwrap()
            .iter()
            .filter(|m| m.class == Class::Diverted)
            .map(|m| {
                let bytes = lifeboat.message_bytes(user, m);
                let text = String::from_utf8_lossy(&bytes).into_owned();
                header(&text, "Subject")
                    .unwrap()
                    .trim_start_matches("drill ")
                    .parse()
                    .unwrap()
            })
            .collect();
        diverted_total += diverted.len();
        assert_eq!(
            replayed.get(user).cloned().unwrap_or_default(),
            diverted,
            "{user}: replayed in stored order"
        );
    }
    assert!(diverted_total > 0, "the outage diverted nothing");
    assert_eq!(replay_ids.len(), diverted_total);
    eprintln!(
        "drill: 2000 messages, {} delivered by Postfix, {diverted_total} diverted and replayed",
        2000 - diverted_total
    );
}
