//! Self-tests of the end-to-end harness in `tests/support/`: the scriptable origin server
//! and the private Postfix instance behave as the product tests assume.
//!
//! None of these waits for Postfix's retry timers: deferred mail is retried with
//! `Postfix::flush` once it shows as deferred.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::origin::{Mode, Origin};
use support::postfix::{Postfix, PostfixOptions, QueuedMessage};

/// Generous bound for anything Postfix does without waiting for a timer.
const SOON: Duration = Duration::from_secs(20);

/// A complete message: with Date, From and Message-ID present, Postfix adds only its
/// `Received:` header on top, so the origin must see these exact bytes at the end. The
/// leading-dot line checks dot-stuffing on both hops.
fn message(subject: &str) -> Vec<u8> {
    format!(
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         From: Alice <alice@sender.example>\r\n\
         To: bob@example.test\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{subject}@sender.example>\r\n\
         \r\n\
         Hello.\r\n\
         .a line that starts with a dot\r\n\
         A literal \\n and %DATE% that swaks must not rewrite.\r\n"
    )
    .into_bytes()
}

/// Submits `message(subject)` from alice@sender.example through the gateway.
fn send(postfix: &Postfix, to: &[&str], subject: &str) {
    let body = message(subject);
    if let Err(transcript) = postfix.send("alice@sender.example", to, &body) {
        panic!("submission failed:\n{transcript}");
    }
}

/// Waits until the message shows as `deferred` with a delay reason on every recipient,
/// which is when `flush` can pick it up.
fn wait_deferred(postfix: &Postfix) -> Vec<QueuedMessage> {
    postfix
        .wait_for_queue(SOON, |queue| {
            !queue.is_empty()
                && queue.iter().all(|m| {
                    m.queue_name == "deferred"
                        && m.recipients.iter().all(|r| r.delay_reason.is_some())
                })
        })
        .unwrap_or_else(|| panic!("message never deferred; queue: {:?}", postfix.queue()))
}

#[test]
fn origin_speaks_smtp_and_can_be_stopped_and_restarted() {
    let mut origin = Origin::new();
    let addr = origin.addr();

    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut reply = |command: &str| -> String {
        if !command.is_empty() {
            writer.write_all(command.as_bytes()).unwrap();
        }
        let mut text = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            text.push_str(&line);
            // The last line of a reply has a space after the code.
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return text;
            }
        }
    };
    assert!(reply("").starts_with("220 "));
    let ehlo = reply("EHLO client.test\r\n");
    assert!(
        ehlo.starts_with("250-") && !ehlo.contains("PIPELINING"),
        "{ehlo}"
    );
    assert!(reply("MAIL FROM:<a@x.test> BODY=8BITMIME\r\n").starts_with("250 "));
    assert!(reply("RCPT TO:<b@example.test>\r\n").starts_with("250 "));
    assert!(reply("DATA\r\n").starts_with("354 "));
    assert!(reply("Subject: t\r\n\r\n..dot\r\nend\r\n.\r\n").starts_with("250 "));
    assert!(reply("RSET\r\n").starts_with("250 "));
    assert!(reply("NOOP\r\n").starts_with("250 "));

    origin.set_mode(Mode::TempFailFor(HashSet::from([
        "Full@example.test".to_string()
    ])));
    assert!(reply("MAIL FROM:<>\r\n").starts_with("250 "));
    assert!(reply("RCPT TO:<full@EXAMPLE.test>\r\n").starts_with("450 4.2.2"));
    assert!(reply("RCPT TO:<ok@example.test>\r\n").starts_with("250 "));
    origin.set_mode(Mode::TempFailRcpt);
    assert!(reply("RCPT TO:<other@example.test>\r\n").starts_with("450 4.2.0"));
    assert!(reply("DATA\r\n").starts_with("354 "));
    assert!(reply("x\r\n.\r\n").starts_with("250 "));
    assert!(reply("QUIT\r\n").starts_with("221 "));

    assert!(origin.wait_for_messages(2, Duration::from_secs(1)));
    let messages = origin.messages();
    assert_eq!(messages[0].mail_from, "a@x.test");
    assert_eq!(messages[0].rcpt_to, ["b@example.test"]);
    assert_eq!(messages[0].data, b"Subject: t\r\n\r\n.dot\r\nend\r\n");
    assert_eq!(messages[1].mail_from, "");
    assert_eq!(messages[1].rcpt_to, ["ok@example.test"]);

    // Hang: the connection is accepted but no banner ever comes.
    origin.set_mode(Mode::Hang);
    let mut hung = TcpStream::connect(addr).unwrap();
    hung.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = hung.read(&mut [0; 16]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );

    // Stopped: refused, and open connections are cut (the hung one reads EOF).
    origin.stop();
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    hung.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(hung.read(&mut [0; 16]), Ok(0) | Err(_)));

    // Restarted on the same port.
    origin.set_mode(Mode::Accept);
    origin.start();
    let mut again = TcpStream::connect(addr).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut banner = [0; 4];
    again.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"220 ");
}

#[test]
fn relays_protected_domain_to_origin_and_the_rest_outside() {
    let origin = Origin::new();
    let outside = Origin::new();
    let postfix = Postfix::start(&PostfixOptions::new(origin.addr(), outside.addr()));
    let body = message("split");

    postfix
        .send(
            "alice@sender.example",
            &["bob@example.test", "carol@other.example"],
            &body,
        )
        .unwrap();

    assert!(origin.wait_for_messages(1, SOON), "origin got nothing");
    assert!(
        outside.wait_for_messages(1, SOON),
        "outside sink got nothing"
    );
    let at_origin = &origin.messages()[0];
    assert_eq!(at_origin.mail_from, "alice@sender.example");
    assert_eq!(at_origin.rcpt_to, ["bob@example.test"]);
    assert!(
        at_origin.text().starts_with("Received: from client.test"),
        "{}",
        at_origin.text()
    );
    assert!(
        at_origin.data.ends_with(&body),
        "message altered:\n{}",
        at_origin.text()
    );
    let at_outside = &outside.messages()[0];
    assert_eq!(at_outside.mail_from, "alice@sender.example");
    assert_eq!(at_outside.rcpt_to, ["carol@other.example"]);
    assert!(at_outside.data.ends_with(&body));

    assert!(
        postfix.wait_queue_empty(SOON),
        "queue: {:?}",
        postfix.queue()
    );
    let origin_relay = format!("relay=127.0.0.1[127.0.0.1]:{}", origin.addr().port());
    assert!(
        postfix.wait_for_log(&origin_relay, SOON),
        "{}",
        postfix.log()
    );
    assert_eq!(origin.messages().len(), 1);
    assert_eq!(outside.messages().len(), 1);
}

#[test]
fn tempfailed_rcpt_stays_queued_until_flushed() {
    let origin = Origin::with_mode(Mode::TempFailRcpt);
    let outside = Origin::new();
    let postfix = Postfix::start(&PostfixOptions::new(origin.addr(), outside.addr()));

    send(&postfix, &["bob@example.test"], "tempfail");

    assert!(
        postfix.wait_for_log("status=deferred", SOON),
        "{}",
        postfix.log()
    );
    let queue = wait_deferred(&postfix);
    assert_eq!(queue.len(), 1);
    let recipient = &queue[0].recipients[0];
    assert_eq!(recipient.address, "bob@example.test");
    let reason = recipient.delay_reason.as_deref().unwrap();
    assert!(reason.contains("450 4.2.0"), "delay_reason: {reason}");
    assert!(
        postfix.log().contains("dsn=4.2.0, status=deferred"),
        "{}",
        postfix.log()
    );
    assert!(origin.messages().is_empty());

    origin.set_mode(Mode::Accept);
    postfix.flush();
    assert!(
        origin.wait_for_messages(1, SOON),
        "not delivered after flush:\n{}",
        postfix.log()
    );
    assert_eq!(origin.messages()[0].rcpt_to, ["bob@example.test"]);
    assert!(
        postfix.wait_queue_empty(SOON),
        "queue: {:?}",
        postfix.queue()
    );
    // A deferral is not a bounce: nothing went to the outside world.
    assert!(outside.messages().is_empty());
}

#[test]
fn full_mailbox_defers_only_that_recipient() {
    let origin = Origin::with_mode(Mode::TempFailFor(HashSet::from([
        "full@example.test".to_string()
    ])));
    let outside = Origin::new();
    let postfix = Postfix::start(&PostfixOptions::new(origin.addr(), outside.addr()));

    send(&postfix, &["full@example.test", "bob@example.test"], "full");

    assert!(origin.wait_for_messages(1, SOON), "{}", postfix.log());
    assert_eq!(origin.messages()[0].rcpt_to, ["bob@example.test"]);
    let queue = wait_deferred(&postfix);
    let addresses: Vec<&str> = queue[0]
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(addresses, ["full@example.test"]);
    assert!(
        queue[0].recipients[0]
            .delay_reason
            .as_deref()
            .unwrap()
            .contains("450 4.2.2")
    );
}

#[test]
fn stopped_origin_leaves_mail_queued_with_connection_refused() {
    let mut origin = Origin::new();
    origin.stop();
    let outside = Origin::new();
    let postfix = Postfix::start(&PostfixOptions::new(origin.addr(), outside.addr()));

    send(&postfix, &["bob@example.test"], "refused");

    assert!(
        postfix.wait_for_log("Connection refused", SOON),
        "{}",
        postfix.log()
    );
    let queue = wait_deferred(&postfix);
    let reason = queue[0].recipients[0].delay_reason.as_deref().unwrap();
    assert!(
        reason.contains("Connection refused"),
        "delay_reason: {reason}"
    );
    assert!(
        postfix.log().contains("dsn=4.4.1, status=deferred"),
        "{}",
        postfix.log()
    );

    // The origin comes back; a flush delivers (dead destinations included).
    origin.start();
    postfix.flush();
    assert!(
        origin.wait_for_messages(1, SOON),
        "not delivered after flush:\n{}",
        postfix.log()
    );
    assert!(
        postfix.wait_queue_empty(SOON),
        "queue: {:?}",
        postfix.queue()
    );
}

#[test]
fn fallback_relay_takes_mail_the_origin_refuses() {
    let mut origin = Origin::new();
    origin.stop();
    let outside = Origin::new();
    let fallback = Origin::new();
    let postfix = Postfix::start(&PostfixOptions {
        fallback: Some(fallback.addr()),
        ..PostfixOptions::new(origin.addr(), outside.addr())
    });

    send(
        &postfix,
        &["bob@example.test", "carol@other.example"],
        "fallback",
    );

    // Same delivery attempt: refused by the origin, handed to the fallback relay.
    assert!(
        fallback.wait_for_messages(1, SOON),
        "fallback got nothing:\n{}",
        postfix.log()
    );
    let at_fallback = &fallback.messages()[0];
    assert_eq!(at_fallback.mail_from, "alice@sender.example");
    assert_eq!(at_fallback.rcpt_to, ["bob@example.test"]);
    assert!(
        postfix.wait_queue_empty(SOON),
        "queue: {:?}",
        postfix.queue()
    );
    let via_fallback = format!("relay=127.0.0.1[127.0.0.1]:{}", fallback.addr().port());
    assert!(
        postfix.wait_for_log(&via_fallback, SOON),
        "{}",
        postfix.log()
    );
    assert!(
        postfix.log().contains("Connection refused"),
        "{}",
        postfix.log()
    );
    // Only the origin transport has the fallback: other domains still go outside.
    assert!(outside.wait_for_messages(1, SOON));
    assert_eq!(outside.messages()[0].rcpt_to, ["carol@other.example"]);
    assert_eq!(fallback.messages().len(), 1);
}

#[test]
fn hanging_origin_falls_back_after_helo_timeout() {
    let origin = Origin::with_mode(Mode::Hang);
    let outside = Origin::new();
    let fallback = Origin::new();
    let postfix = Postfix::start(&PostfixOptions {
        fallback: Some(fallback.addr()),
        ..PostfixOptions::new(origin.addr(), outside.addr())
    });

    send(&postfix, &["bob@example.test"], "hang");

    // smtp_helo_timeout is 5s in the instance; the fallback gets the mail after it.
    assert!(
        fallback.wait_for_messages(1, SOON),
        "fallback got nothing:\n{}",
        postfix.log()
    );
    assert!(
        postfix
            .log()
            .contains("timed out while receiving the initial server greeting"),
        "{}",
        postfix.log()
    );
    assert!(
        postfix.wait_queue_empty(SOON),
        "queue: {:?}",
        postfix.queue()
    );
}

#[test]
fn unreachable_milter_does_not_block_mail() {
    let origin = Origin::new();
    let outside = Origin::new();
    // Nobody listens on the milter port: milter_default_action = accept lets mail through.
    let milter = format!("inet:127.0.0.1:{}", support::free_port());
    let postfix = Postfix::start(&PostfixOptions {
        milter: Some(milter.clone()),
        ..PostfixOptions::new(origin.addr(), outside.addr())
    });

    send(&postfix, &["bob@example.test"], "milter");

    assert!(origin.wait_for_messages(1, SOON), "{}", postfix.log());
    // Proof that smtpd really tried the milter.
    assert!(
        postfix
            .log()
            .contains(&format!("connect to Milter service {milter}")),
        "{}",
        postfix.log()
    );
}
