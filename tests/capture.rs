//! Capture on a real Postfix: the gateway (own config and queue, on loopback) with
//! Lifeboat's milter and fallback relay, an origin the test controls, and an outside
//! sink for every other domain. Mail is submitted with swaks.

mod support;

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use lifeboat_mailstore::Class;
use support::lifeboat::{Lifeboat, message};
use support::origin::{Mode, Origin};
use support::postfix::{Postfix, PostfixOptions};
use support::wait_until;

const WAIT: Duration = Duration::from_secs(30);

/// Postfix + a running Lifeboat with users alice (alias sales@) and bob.
struct Gateway {
    origin: Origin,
    outside: Origin,
    lifeboat: Lifeboat,
    postfix: Postfix,
}

impl Gateway {
    fn start() -> Gateway {
        let origin = Origin::new();
        let outside = Origin::new();
        let mut lifeboat = Lifeboat::new(origin.addr());
        lifeboat.add_user("alice@example.test", &["sales@example.test"]);
        lifeboat.add_user("bob@example.test", &[]);
        lifeboat.start();
        let mut options = PostfixOptions::new(origin.addr(), outside.addr());
        options.milter = Some(lifeboat.milter_spec());
        options.fallback = Some(lifeboat.fallback);
        let postfix = Postfix::start(&options);
        Gateway {
            origin,
            outside,
            lifeboat,
            postfix,
        }
    }

    fn send(&self, to: &[&str], n: usize) {
        self.postfix
            .send("sender@else.test", to, &message(n))
            .unwrap();
    }

    /// Waits until Postfix's queue is empty (everything delivered, diverted or dropped).
    fn settled(&self) {
        assert!(
            self.postfix.wait_queue_empty(WAIT),
            "queue not empty: {:?}\n{}",
            self.postfix.queue(),
            self.lifeboat.log()
        );
    }

    fn decision_logged(&self, needle: &str) -> bool {
        self.lifeboat
            .log()
            .lines()
            .any(|l| l.contains("milter decision") && l.contains(needle))
    }
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
}

#[test]
fn normal_state_journals_and_the_origin_receives_the_message_once() {
    let g = Gateway::start();
    g.send(&["alice@example.test"], 1);
    assert!(g.origin.wait_for_messages(1, WAIT));
    g.settled();
    let received = g.origin.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["alice@example.test"]);
    let text = received[0].text();
    let id =
        header(&text, "X-Lifeboat-ID").unwrap_or_else(|| panic!("no X-Lifeboat-ID in {text:?}"));

    let inbox = g.lifeboat.wait_for_inbox("alice@example.test", 1, WAIT);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].class, Class::Journal);
    assert_eq!(inbox[0].lifeboat_id.as_deref(), Some(id));
    let stored =
        String::from_utf8(g.lifeboat.message_bytes("alice@example.test", &inbox[0])).unwrap();
    assert!(
        stored.contains("Subject: message 1\r\n") && stored.ends_with("This is message 1.\r\n")
    );
    assert!(
        g.decision_logged("<alice@example.test>=journal(queued)"),
        "{}",
        g.lifeboat.log()
    );
}

#[test]
fn outage_diverts_and_the_origin_receives_nothing() {
    let g = Gateway::start();
    g.lifeboat.outage(true);
    g.send(&["alice@example.test"], 1);
    g.settled();
    let inbox = g.lifeboat.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].class, Class::Diverted);
    assert_eq!(inbox[0].replay_state.as_deref(), Some("pending"));
    assert_eq!(inbox[0].envelope_from.as_deref(), Some("sender@else.test"));
    // No recipient left: Postfix accepts the message and its queue manager drops it.
    assert!(
        g.postfix.wait_for_log(": removed", WAIT),
        "{}",
        g.postfix.log()
    );
    thread::sleep(Duration::from_millis(500));
    assert!(g.origin.messages().is_empty());
    assert!(g.decision_logged("<alice@example.test>=diverted(uid 1)"));
}

#[test]
fn mixed_recipients_only_protected_users_are_diverted() {
    let g = Gateway::start();
    g.lifeboat.outage(true);
    g.send(
        &[
            "alice@example.test",
            "nobody@example.test",
            "friend@other.test",
        ],
        1,
    );
    assert!(g.origin.wait_for_messages(1, WAIT));
    assert!(g.outside.wait_for_messages(1, WAIT));
    g.settled();
    assert_eq!(g.origin.messages()[0].rcpt_to, ["nobody@example.test"]);
    assert_eq!(g.outside.messages()[0].rcpt_to, ["friend@other.test"]);
    let inbox = g.lifeboat.inbox("alice@example.test");
    assert_eq!((inbox.len(), inbox[0].class), (1, Class::Diverted));
    assert!(g.decision_logged("<nobody@example.test>=left:unprotected"));
    assert!(g.decision_logged("<friend@other.test>=left:other-domain"));
}

#[test]
fn alias_lands_in_the_parent_mailbox_with_the_original_recipient() {
    let g = Gateway::start();
    g.lifeboat.outage(true);
    g.send(&["sales@example.test"], 1);
    g.settled();
    let inbox = g.lifeboat.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].envelope_to, ["sales@example.test"]);
    let stored =
        String::from_utf8(g.lifeboat.message_bytes("alice@example.test", &inbox[0])).unwrap();
    assert!(
        stored
            .starts_with("Return-Path: <sender@else.test>\r\nDelivered-To: sales@example.test\r\n"),
        "{stored}"
    );
}

#[test]
fn store_failure_in_an_outage_leaves_the_mail_with_postfix_until_the_origin_returns() {
    let mut g = Gateway::start();
    g.origin.stop();
    g.lifeboat.outage(true);
    // Every write into alice's INBOX fails: tmp/ is no longer a directory. (Running as
    // root, a read-only chmod would not stop writes, so the fault is made this way.)
    let tmp = g.lifeboat.user_dir("alice@example.test").join("tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::fs::write(&tmp, "not a directory").unwrap();

    g.send(&["alice@example.test"], 1);
    // In the deferred queue, not only with a delay reason: a flush that comes while the
    // message is still active misses it, and then nothing retries it within WAIT.
    let queued = g.postfix.wait_for_queue(WAIT, |q| {
        q.len() == 1
            && q[0].queue_name == "deferred"
            && q[0].recipients.iter().all(|r| r.delay_reason.is_some())
    });
    assert!(
        queued.is_some(),
        "the message must stay queued: {:?}",
        g.postfix.queue()
    );
    assert!(g.decision_logged("<alice@example.test>=left:divert-failed"));
    assert!(
        g.lifeboat.log().contains("could not store the message")
            || g.lifeboat.log().contains("failed(")
    );

    g.origin.start();
    g.postfix.flush();
    assert!(
        g.origin.wait_for_messages(1, WAIT),
        "Postfix delivers it once the origin is back"
    );
    g.settled();
    assert_eq!(g.origin.messages()[0].rcpt_to, ["alice@example.test"]);
}

#[test]
fn mail_deferred_before_the_outage_is_captured_by_the_fallback_and_stored_once() {
    let g = Gateway::start();
    g.origin.set_mode(Mode::TempFailRcpt);
    g.send(&["alice@example.test"], 1);
    // Normal state: journal copy, and the origin's 4xx leaves the mail queued (the
    // fallback listener answers 4xx too while the origin is not judged down).
    let queued = g.postfix.wait_for_queue(WAIT, |q| {
        q.len() == 1
            && q[0].recipients[0]
                .delay_reason
                .as_deref()
                .is_some_and(|r| r.contains("4.4.3"))
    });
    assert!(
        queued.is_some(),
        "{:?}\n{}",
        g.postfix.queue(),
        g.postfix.log()
    );
    assert_eq!(
        g.lifeboat.wait_for_inbox("alice@example.test", 1, WAIT)[0].class,
        Class::Journal
    );

    g.lifeboat.outage(true);
    g.postfix.flush();
    g.settled();
    let inbox = g.lifeboat.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1, "one copy in the mailbox");
    assert_eq!(inbox[0].class, Class::Diverted);
    assert_eq!(inbox[0].uid, 1, "the journal copy was upgraded in place");
    assert!(g.origin.messages().is_empty());
    assert!(g.lifeboat.log().contains("upgraded-journal(uid 1)"));
    let status = g.lifeboat.admin(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(status["origins"][0]["deferrals"]["count"].as_i64().unwrap() >= 2);
}

/// Issue 12, item 4: a crash can leave an unsynced journal file at its full length with
/// its contents lost (zeros). Upgrading it to the diverted copy keeps the message Postfix
/// hands over, not the zeros.
#[test]
fn upgrading_a_zeroed_journal_copy_keeps_the_message_postfix_hands_over() {
    let g = Gateway::start();
    g.origin.set_mode(Mode::TempFailRcpt);
    g.send(&["alice@example.test"], 1);
    let queued = g.postfix.wait_for_queue(WAIT, |q| {
        q.len() == 1
            && q[0].recipients[0]
                .delay_reason
                .as_deref()
                .is_some_and(|r| r.contains("4.4.3"))
    });
    assert!(queued.is_some(), "{:?}", g.postfix.queue());
    let journal = g.lifeboat.wait_for_inbox("alice@example.test", 1, WAIT);
    assert_eq!(journal[0].class, Class::Journal);
    let path = g.lifeboat.store().message_path(
        &lifeboat_mailstore::Address::parse("alice@example.test").unwrap(),
        "INBOX",
        &journal[0],
    );
    let length = std::fs::metadata(&path).unwrap().len() as usize;
    std::fs::write(&path, vec![0u8; length]).unwrap();

    g.lifeboat.outage(true);
    g.postfix.flush();
    g.settled();
    let inbox = g.lifeboat.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1, "one copy in the mailbox");
    assert_eq!((inbox[0].uid, inbox[0].class), (1, Class::Diverted));
    let stored = g.lifeboat.message_bytes("alice@example.test", &inbox[0]);
    assert!(!stored.contains(&0), "{}", String::from_utf8_lossy(&stored));
    let text = String::from_utf8(stored).unwrap();
    assert!(
        text.contains("Subject: message 1\r\n") && text.ends_with("This is message 1.\r\n"),
        "{text}"
    );
}

/// Issue 12, items 2 and 3: X-Lifeboat-* fields a sender wrote never reach the store or
/// the origin (Postfix applies the milter's deletions by name and index); the only
/// X-Lifeboat-ID left is the milter's, keyed with the store's key.
#[test]
fn a_senders_lifeboat_fields_are_removed_before_the_origin() {
    let g = Gateway::start();
    let forged = b"From: sender@else.test\r\nX-Lifeboat-ID: forged-one\r\n\
        Subject: forged marks\r\nX-Lifeboat-Sent: yes\r\nx-lifeboat-id: forged-two\r\n\
        X-Lifeboat-Class: diverted\r\n\r\nbody\r\n";
    g.postfix
        .send(
            "sender@else.test",
            &["alice@example.test", "nobody@example.test"],
            forged,
        )
        .unwrap();
    assert!(g.origin.wait_for_messages(1, WAIT));
    g.settled();
    let text = g.origin.messages()[0].text();
    assert!(text.contains("Subject: forged marks"), "{text}");
    assert!(!text.contains("forged-"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("x-lifeboat-sent"),
        "{text}"
    );
    assert!(!text.contains("X-Lifeboat-Class"), "{text}");
    let ids: Vec<&str> = text
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("x-lifeboat-id:"))
        .collect();
    assert_eq!(ids.len(), 1, "{text}");
    let id = header(&text, "X-Lifeboat-ID").unwrap();
    assert!(
        g.lifeboat.store().keyring().lifeboat_id(id).is_some(),
        "not the store's id: {id}"
    );
    let inbox = g.lifeboat.wait_for_inbox("alice@example.test", 1, WAIT);
    let stored =
        String::from_utf8(g.lifeboat.message_bytes("alice@example.test", &inbox[0])).unwrap();
    assert!(
        !stored.contains("forged-") && !stored.contains("X-Lifeboat-Sent"),
        "{stored}"
    );
}

#[test]
fn one_full_mailbox_at_the_origin_stays_queued_without_an_outage() {
    let g = Gateway::start();
    g.origin.set_mode(Mode::TempFailFor(HashSet::from([
        "alice@example.test".to_string()
    ])));
    g.send(&["alice@example.test", "bob@example.test"], 1);
    assert!(g.origin.wait_for_messages(1, WAIT));
    assert_eq!(g.origin.messages()[0].rcpt_to, ["bob@example.test"]);
    let queued = g.postfix.wait_for_queue(WAIT, |q| {
        q.len() == 1 && q[0].recipients.len() == 1 && q[0].recipients[0].delay_reason.is_some()
    });
    let queued = queued.expect("alice stays queued");
    assert_eq!(queued[0].recipients[0].address, "alice@example.test");
    assert!(
        queued[0].recipients[0]
            .delay_reason
            .as_deref()
            .unwrap()
            .contains("origin is not in outage"),
        "{queued:?}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&g.lifeboat.admin(&["status", "--json"])).unwrap();
    assert_eq!(status["origins"][0]["state"], "normal");
}

#[test]
fn lifeboat_killed_mid_stream_loses_nothing() {
    let mut g = Gateway::start();
    g.origin.stop();
    g.lifeboat.outage(true);
    const MESSAGES: usize = 40;
    let postfix = &g.postfix;
    let sent = thread::scope(|scope| {
        let sender = scope.spawn(move || {
            (0..MESSAGES)
                .filter(|&n| {
                    postfix
                        .send("sender@else.test", &["alice@example.test"], &message(n))
                        .is_ok()
                })
                .count()
        });
        // Let part of the stream through the milter, then kill it mid-flight.
        let deadline = std::time::Instant::now() + WAIT;
        while g.lifeboat.inbox("alice@example.test").len() < 10
            && std::time::Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(20));
        }
        g.lifeboat.kill();
        sender.join().unwrap()
    });
    assert_eq!(
        sent, MESSAGES,
        "Postfix accepted every message (milter_default_action = accept)"
    );

    // Every message is either stored by Lifeboat or still in Postfix's queue.
    thread::sleep(Duration::from_secs(1));
    let stored: HashSet<String> = subjects(&g.lifeboat);
    let queued = g.postfix.queue().len();
    // A message can be both: stored by the milter, which was killed before Postfix heard
    // its answer (Postfix then carries on without the milter). That is a duplicate, not
    // a loss; it is counted.
    let in_both = (stored.len() + queued).saturating_sub(MESSAGES);
    let lost = MESSAGES.saturating_sub(stored.len() + queued);
    eprintln!(
        "after SIGKILL: {} stored, {queued} still queued, {in_both} in both, {lost} lost",
        stored.len()
    );
    assert!(
        stored.len() >= 10 && queued > 0,
        "the kill should land mid-stream"
    );
    assert_eq!(lost, 0);

    // Restarted, Lifeboat takes the rest through the fallback listener: all stored, once.
    g.lifeboat.start();
    g.postfix.flush();
    g.settled();
    let stored = subjects(&g.lifeboat);
    assert_eq!(stored.len(), MESSAGES, "every message is in the mailbox");
    let duplicates = g.lifeboat.inbox("alice@example.test").len() - MESSAGES;
    eprintln!("after restart: {MESSAGES} stored, {duplicates} stored twice");
    assert!(
        duplicates <= in_both,
        "only the kill window may store a message twice"
    );
    g.lifeboat.terminate();
    let check = g
        .lifeboat
        .command()
        .args(["store", "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

fn subjects(lifeboat: &Lifeboat) -> HashSet<String> {
    lifeboat
        .inbox("alice@example.test")
        .iter()
        .map(|m| {
            let text = String::from_utf8(lifeboat.message_bytes("alice@example.test", m)).unwrap();
            header(&text, "Subject").unwrap().to_string()
        })
        .collect()
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let mut g = Gateway::start();
    g.send(&["alice@example.test"], 1);
    g.settled();
    assert_eq!(g.lifeboat.terminate(), Some(0));
    assert!(g.lifeboat.log().contains("lifeboat serve stopped"));
}

/// A milter placed after Lifeboat's in `smtpd_milters`, as a spam or virus filter would
/// be: refuses at end of message a message whose Subject says so (5xx or 4xx).
fn start_refusing_milter(runtime: &tokio::runtime::Runtime) -> std::net::SocketAddr {
    use indymilter::{Callbacks, Status};
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    // Per connection: the Subject of the current message.
    let callbacks = Callbacks::<String>::new()
        .on_header(|cx, name, value| {
            if name.to_bytes().eq_ignore_ascii_case(b"Subject") {
                cx.data = Some(value.to_string_lossy().into_owned());
            }
            Box::pin(async { Status::Continue })
        })
        .on_eom(|cx| {
            let subject = cx.data.take().unwrap_or_default();
            Box::pin(async move {
                if subject.contains("reject-me") {
                    Status::Reject
                } else if subject.contains("tempfail-me") {
                    Status::Tempfail
                } else {
                    Status::Continue
                }
            })
        });
    runtime.spawn(indymilter::run(
        listener,
        callbacks,
        Default::default(),
        std::future::pending::<()>(),
    ));
    addr
}

/// Issue 12, item 5, on Postfix 3.7 itself. Lifeboat's milter makes a diverted copy
/// durable before it answers at end of message; a milter after it can still refuse the
/// message. Postfix then logs `<queue id>: milter-reject: END-OF-MESSAGE`, and with
/// `[watch] postfix_log` Lifeboat removes the copies of that queue id instead of
/// replaying a message the sender was told was refused (5xx) or will send again (4xx).
/// `header_checks` (like `body_checks` and `smtpd_end_of_data_restrictions`) refuse
/// before any milter sees the end of the message: Lifeboat never stores those.
#[test]
fn copies_of_a_message_refused_after_the_milter_are_not_replayed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refusing = start_refusing_milter(&runtime);
    let origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.add_user("alice@example.test", &[]);
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(format!("{}, inet:{refusing}", lifeboat.milter_spec()));
    options.fallback = Some(lifeboat.fallback);
    let checks = lifeboat.dir().join("header_checks");
    std::fs::write(
        &checks,
        "/^Subject: header-reject/ REJECT refused by header_checks\n",
    )
    .unwrap();
    options
        .main_cf
        .push(format!("header_checks = regexp:{}", checks.display()));
    let postfix = Postfix::start(&options);
    let maillog = postfix.dir().join("maillog");
    lifeboat
        .edit_config(|text| format!("{text}\n[watch]\npostfix_log = \"{}\"\n", maillog.display()));
    lifeboat.start();
    lifeboat.outage(true);

    let send = |subject: &str| {
        let text = format!("From: s@else.test\r\nSubject: {subject}\r\n\r\n{subject} body\r\n");
        postfix.send("s@else.test", &["alice@example.test"], text.as_bytes())
    };
    send("kept").unwrap();
    let refused = send("reject-me").unwrap_err();
    assert!(refused.contains("<** 550 5.7.1"), "{refused}");
    let deferred = send("tempfail-me").unwrap_err();
    assert!(deferred.contains("<** 451 4.7.1"), "{deferred}");
    let header_refused = send("header-reject").unwrap_err();
    assert!(
        header_refused.contains("refused by header_checks"),
        "{header_refused}"
    );

    // What Postfix did: the refusing milter spoke after Lifeboat's copies were durable.
    assert!(postfix.wait_for_log("milter-reject: END-OF-MESSAGE", WAIT));
    let decisions: Vec<String> = lifeboat
        .log()
        .lines()
        .filter(|l| l.contains("milter decision"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        decisions.len(),
        3,
        "header_checks refused before any milter: {decisions:?}"
    );
    assert!(
        decisions.iter().all(|d| d.contains("=diverted(uid ")),
        "{decisions:?}"
    );
    assert!(
        wait_until(WAIT, || lifeboat
            .log()
            .matches("its copies are removed, not replayed")
            .count()
            == 2),
        "{}",
        lifeboat.log()
    );

    let inbox = lifeboat.inbox("alice@example.test");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].class, Class::Diverted);
    assert_eq!(inbox[0].replay_state.as_deref(), Some("pending"));
    let text = String::from_utf8(lifeboat.message_bytes("alice@example.test", &inbox[0])).unwrap();
    assert!(text.contains("Subject: kept"), "{text}");
    let check = lifeboat
        .command()
        .args(["store", "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(origin.messages().is_empty());
}
