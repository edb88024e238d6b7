//! The origin watch end to end: a real `lifeboat serve`, a real Postfix gateway where
//! mail flows, and an origin the test stops, hangs, or makes answer 4xx.
//!
//! Timings are shortened in each test's config so the suite stays quick; the defaults
//! are measured by `bench/watch.sh`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use lifeboat_mailstore::Class;
use serde_json::Value;
use support::lifeboat::{Lifeboat, message};
use support::origin::{Mode, Origin};
use support::postfix::{Postfix, PostfixOptions};

const WAIT: Duration = Duration::from_secs(30);

/// Quick probes; detection comes from probes alone.
const QUICK: &str = "[watch]\nprobe_interval = \"300ms\"\noutage_probe_interval = \"200ms\"\n\
                     retry_interval = \"100ms\"\nprobe_timeout = \"500ms\"\n\
                     recovery_min_duration = \"1s\"\n";

/// Periodic probes too rare to matter: only deferrals can trigger detection.
const DEFERRALS_ONLY: &str = "[watch]\nprobe_interval = \"1h\"\noutage_probe_interval = \"200ms\"\n\
                              retry_interval = \"100ms\"\nprobe_timeout = \"500ms\"\n\
                              recovery_min_duration = \"1s\"\n";

fn lifeboat_with(origin: &Origin, extra: &str) -> Lifeboat {
    let lifeboat = Lifeboat::new(origin.addr());
    lifeboat.edit_config(|text| format!("{text}\n{extra}"));
    lifeboat
}

fn status(lifeboat: &Lifeboat) -> Value {
    let text = lifeboat.admin(&["status", "--json"]);
    let json: Value = serde_json::from_str(&text).unwrap();
    json["origins"][0].clone()
}

fn state(lifeboat: &Lifeboat) -> String {
    status(lifeboat)["state"].as_str().unwrap().to_string()
}

/// Waits until the origin's state is `want`; panics with the log otherwise.
fn wait_for_state(lifeboat: &Lifeboat, want: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = status(lifeboat);
        if status["state"] == want {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "state never became {want}: {status}\n{}",
            lifeboat.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The recorded transitions as "from->to", oldest first.
fn transitions(lifeboat: &Lifeboat) -> Vec<String> {
    let reader = lifeboat.store().reader().unwrap();
    let mut stmt = reader
        .connection()
        .prepare("SELECT from_state, to_state FROM origin_transitions ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(format!(
            "{}->{}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn scrape(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    response
}

#[test]
fn a_stopped_origin_is_detected_from_a_deferral_and_its_mail_captured_at_once() {
    let mut origin = Origin::new();
    let outside = Origin::new();
    let metrics: SocketAddr = format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap();
    let mut lifeboat = lifeboat_with(
        &origin,
        &format!("{DEFERRALS_ONLY}\n[metrics]\nlisten = \"{metrics}\"\n"),
    );
    lifeboat.add_user("alice@example.test", &[]);
    lifeboat.start();
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    options.fallback = Some(lifeboat.fallback);
    let postfix = Postfix::start(&options);
    assert_eq!(state(&lifeboat), "normal");

    origin.stop();
    postfix
        .send("sender@else.test", &["alice@example.test"], &message(1))
        .unwrap();
    // Journalled by the milter (origin still judged up), refused by the origin, handed
    // to the fallback listener, which has the origin judged and then keeps the message.
    assert!(
        postfix.wait_queue_empty(WAIT),
        "queue: {:?}\n{}",
        postfix.queue(),
        lifeboat.log()
    );
    let status = wait_for_state(&lifeboat, "outage");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .starts_with("3 failed probes in a row; last: connect:"),
        "{status}"
    );
    assert_eq!(status["manual"], false);
    assert_eq!(status["last_probe"]["ok"], false);
    let inbox = lifeboat.inbox("alice@example.test");
    assert_eq!(
        inbox.len(),
        1,
        "one copy: the journal copy became the diverted one"
    );
    assert_eq!(inbox[0].class, Class::Diverted);
    assert!(
        lifeboat.log().contains("upgraded-journal(uid 1)"),
        "{}",
        lifeboat.log()
    );

    let metrics = scrape(metrics);
    for line in [
        "lifeboat_origin_state{origin=\"main\",state=\"outage\"} 1",
        "lifeboat_origin_state{origin=\"main\",state=\"normal\"} 0",
        "lifeboat_origin_transitions_total{origin=\"main\",from=\"normal\",to=\"outage\"} 1",
        "lifeboat_deferrals_total{origin=\"main\",source=\"fallback\"} 1",
        "lifeboat_captures_total{path=\"fallback\",outcome=\"diverted\"} 1",
        "lifeboat_captures_total{path=\"milter\",outcome=\"journal\"} 1",
        "lifeboat_copies{origin=\"main\",kind=\"diverted_pending\"} 1",
    ] {
        assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    }
    assert!(
        metrics.contains("lifeboat_probes_total{origin=\"main\",result=\"down\"} "),
        "{metrics}"
    );
}

#[test]
fn a_hanging_origin_is_detected_by_probe_timeouts() {
    let origin = Origin::with_mode(Mode::Hang);
    let mut lifeboat = lifeboat_with(&origin, QUICK);
    lifeboat.start();
    let status = wait_for_state(&lifeboat, "outage");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains("banner: no answer within 500ms"),
        "{status}"
    );
}

#[test]
fn an_origin_that_defers_every_rcpt_is_down_when_a_probe_address_is_set() {
    let origin = Origin::with_mode(Mode::TempFailRcpt);
    let mut lifeboat = lifeboat_with(&origin, QUICK);
    lifeboat.edit_config(|text| {
        text.replace(
            "domains = [\"example.test\"]",
            "domains = [\"example.test\"]\nprobe_address = \"postmaster@example.test\"",
        )
    });
    lifeboat.start();
    let status = wait_for_state(&lifeboat, "outage");
    assert!(
        status["reason"].as_str().unwrap().contains("RCPT TO: 450"),
        "{status}"
    );
}

#[test]
fn one_full_mailbox_never_starts_an_outage() {
    let origin = Origin::with_mode(Mode::TempFailFor(
        ["alice@example.test".to_string()].into_iter().collect(),
    ));
    let outside = Origin::new();
    let mut lifeboat = lifeboat_with(&origin, DEFERRALS_ONLY);
    lifeboat.edit_config(|text| {
        text.replace(
            "domains = [\"example.test\"]",
            "domains = [\"example.test\"]\nprobe_address = \"postmaster@example.test\"",
        )
    });
    lifeboat.add_user("alice@example.test", &[]);
    lifeboat.start();
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    options.fallback = Some(lifeboat.fallback);
    let postfix = Postfix::start(&options);

    postfix
        .send("sender@else.test", &["alice@example.test"], &message(1))
        .unwrap();
    let deferred = postfix.wait_for_queue(WAIT, |q| {
        q.len() == 1 && q[0].recipients.iter().all(|r| r.delay_reason.is_some())
    });
    assert!(deferred.is_some(), "queue: {:?}", postfix.queue());
    // The deferral made the watch probe at once: the origin is up for the probe address.
    let status = status(&lifeboat);
    assert_eq!(status["state"], "normal", "{status}");
    assert_eq!(status["last_probe"]["ok"], true, "{status}");
    assert_eq!(status["deferrals"]["count"], 1, "{status}");
    assert!(transitions(&lifeboat).is_empty());
    let inbox = lifeboat.inbox("alice@example.test");
    assert_eq!((inbox.len(), inbox[0].class), (1, Class::Journal));
}

#[test]
fn recovery_ends_in_normal_directly_or_after_the_replay_serve_starts() {
    let mut origin = Origin::new();
    let mut lifeboat = lifeboat_with(&origin, QUICK);
    lifeboat.add_user("alice@example.test", &[]);
    lifeboat.start();

    // Nothing captured: the outage ends straight in normal.
    origin.stop();
    wait_for_state(&lifeboat, "outage");
    origin.start();
    let status = wait_for_state(&lifeboat, "normal");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .starts_with("3 good probes in a row over at least 1s"),
        "{status}"
    );

    // A diverted copy waits for replay: recovering, and diversion goes on.
    origin.stop();
    wait_for_state(&lifeboat, "outage");
    let outside = Origin::new();
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    let postfix = Postfix::start(&options);
    postfix
        .send("sender@else.test", &["alice@example.test"], &message(1))
        .unwrap();
    assert!(postfix.wait_queue_empty(WAIT), "{:?}", postfix.queue());
    origin.start();
    // serve starts a replay at once: the copy goes to the origin, then normal.
    let status = wait_for_state(&lifeboat, "normal");
    assert_eq!(status["copies"]["diverted_pending"], 0, "{status}");
    assert_eq!(status["copies"]["delivered"], 1, "{status}");
    assert_eq!(
        transitions(&lifeboat),
        [
            "normal->outage",
            "outage->normal",
            "normal->outage",
            "outage->recovering",
            "recovering->normal"
        ]
    );
    let replayed = origin.messages();
    assert_eq!(replayed.len(), 1);
    assert!(replayed[0].text().contains("X-Lifeboat-Replay-ID: "));
    // Replay records the change; serve's watch announces it once, with replay's reason.
    let announced = |log: &str| {
        log.lines()
            .filter(|l| l.contains("origin state changed") && l.contains("from=recovering"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + WAIT;
    while announced(&lifeboat.log()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = announced(&lifeboat.log());
    assert_eq!(lines.len(), 1, "{}", lifeboat.log());
    assert!(
        lines[0].contains("replay delivered every waiting copy"),
        "{}",
        lines[0]
    );
    assert!(
        lifeboat.log().contains("replay started"),
        "{}",
        lifeboat.log()
    );
}

#[test]
fn a_flapping_origin_does_not_make_the_state_oscillate() {
    let mut origin = Origin::new();
    let mut lifeboat = lifeboat_with(
        &origin,
        "[watch]\nprobe_interval = \"100ms\"\noutage_probe_interval = \"100ms\"\n\
         retry_interval = \"100ms\"\nprobe_timeout = \"500ms\"\n\
         recovery_min_duration = \"2s\"\n",
    );
    lifeboat.start();
    origin.stop();
    wait_for_state(&lifeboat, "outage");
    // Up 700 ms, down 700 ms, for about 8 s: runs of good probes never span 2 s, and
    // runs of failures (7 probes) would be enough to go down again if it ever went up.
    for _ in 0..6 {
        origin.start();
        thread::sleep(Duration::from_millis(700));
        origin.stop();
        thread::sleep(Duration::from_millis(700));
    }
    assert_eq!(state(&lifeboat), "outage");
    assert_eq!(transitions(&lifeboat), ["normal->outage"]);
    origin.start();
    wait_for_state(&lifeboat, "normal");
    assert_eq!(transitions(&lifeboat), ["normal->outage", "outage->normal"]);
}

#[test]
fn a_manual_outage_holds_until_an_admin_ends_it() {
    let origin = Origin::new();
    let mut lifeboat = lifeboat_with(&origin, QUICK);
    lifeboat.start();
    // The watch has seen the state as it was before the admin changes it.
    while status(&lifeboat)["last_probe"].is_null() {
        thread::sleep(Duration::from_millis(50));
    }
    lifeboat.outage(true);
    // Probes succeed all along (the origin is up), well past the recovery thresholds.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(state(&lifeboat), "outage");
        thread::sleep(Duration::from_millis(100));
    }
    let status = status(&lifeboat);
    assert_eq!(status["manual"], true);
    assert_eq!(status["last_probe"]["ok"], true, "{status}");
    assert!(
        lifeboat.log().contains("held by an admin"),
        "{}",
        lifeboat.log()
    );
    lifeboat.outage(false);
    assert_eq!(state(&lifeboat), "normal");
    thread::sleep(Duration::from_secs(1));
    assert_eq!(state(&lifeboat), "normal");
    // The watch noticed both changes made by `lifeboat outage` and logged them.
    let log = lifeboat.log();
    assert_eq!(log.matches("origin state changed").count(), 2, "{log}");
}

#[test]
fn the_state_survives_a_restart() {
    let mut origin = Origin::new();
    let mut lifeboat = lifeboat_with(&origin, QUICK);
    lifeboat.start();
    origin.stop();
    let before = wait_for_state(&lifeboat, "outage");
    assert_eq!(lifeboat.terminate(), Some(0));
    lifeboat.start();
    thread::sleep(Duration::from_secs(1));
    let after = status(&lifeboat);
    assert_eq!(after["state"], "outage");
    assert_eq!(after["since"], before["since"]);
    assert_eq!(after["reason"], before["reason"]);
    assert_eq!(transitions(&lifeboat), ["normal->outage"]);
    origin.start();
    wait_for_state(&lifeboat, "normal");
}

#[test]
fn notices_reach_the_admins_and_the_users_alternate_addresses() {
    let mut origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = lifeboat_with(&origin, QUICK);
    lifeboat.add_user_with(
        "alice@example.test",
        &[],
        &["--alternate-email", "alice@home.test"],
    );
    lifeboat.add_user("bob@example.test", &[]); // no alternate address: not told
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    let postfix = Postfix::start(&options);
    // Notices go out through the submission relay: the test's Postfix.
    let (submission, submissions) = lifeboat.enable_submission("127.0.0.1", postfix.smtpd, false);
    lifeboat.edit_config(|text| {
        format!("{text}\n[notify]\nadmins = [\"ops@else.test\"]\nfrom = \"lifeboat@else.test\"\n")
    });
    lifeboat.start();

    origin.stop();
    wait_for_state(&lifeboat, "outage");
    assert!(outside.wait_for_messages(2, WAIT), "{}", lifeboat.log());
    let mut notices = outside.messages();
    notices.sort_by(|a, b| a.rcpt_to.cmp(&b.rcpt_to));
    assert_eq!(notices[0].rcpt_to, ["alice@home.test"]);
    assert_eq!(notices[0].mail_from, "lifeboat@else.test");
    let user = notices[0].text();
    assert!(
        user.contains("Subject: Your mail is running on the continuity service"),
        "{user}"
    );
    assert!(user.contains("Auto-Submitted: auto-generated"), "{user}");
    assert!(user.contains("username: alice@example.test"), "{user}");
    assert!(user.contains("server:   lifeboat.test"), "{user}");
    let ports = format!(
        "port {} (TLS) or {} (STARTTLS)",
        submissions.port(),
        submission.port()
    );
    assert!(user.contains(&ports), "{user}");
    assert_eq!(notices[1].rcpt_to, ["ops@else.test"]);
    let admin = notices[1].text();
    assert!(
        admin.contains("Subject: [lifeboat] origin main: normal -> outage"),
        "{admin}"
    );
    assert!(
        admin.contains("Reason: 3 failed probes in a row"),
        "{admin}"
    );

    origin.start();
    wait_for_state(&lifeboat, "normal");
    assert!(outside.wait_for_messages(4, WAIT), "{}", lifeboat.log());
    let texts: Vec<String> = outside.messages()[2..].iter().map(|m| m.text()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Subject: Your mail server is back")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Subject: [lifeboat] origin main: outage -> normal")),
        "{texts:?}"
    );

    // A second outage within notify.min_interval (1 h by default): nobody is told again.
    origin.stop();
    wait_for_state(&lifeboat, "outage");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(outside.messages().len(), 4);
    assert!(
        lifeboat.log().contains("notice held back"),
        "{}",
        lifeboat.log()
    );
}

#[test]
fn the_postfix_log_watcher_triggers_detection_without_a_fallback_relay() {
    let mut origin = Origin::new();
    let outside = Origin::new();
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    let mut lifeboat = lifeboat_with(&origin, DEFERRALS_ONLY);
    options.milter = Some(lifeboat.milter_spec());
    let postfix = Postfix::start(&options);
    let maillog = postfix.dir().join("maillog");
    lifeboat.edit_config(|text| format!("{text}postfix_log = \"{}\"\n", maillog.display()));
    lifeboat.start();

    origin.stop();
    postfix
        .send("sender@else.test", &["someone@example.test"], &message(1))
        .unwrap();
    assert!(
        postfix.wait_for_log("status=deferred", WAIT),
        "{}",
        postfix.log()
    );
    let status = wait_for_state(&lifeboat, "outage");
    assert!(
        status["reason"].as_str().unwrap().contains("connect:"),
        "{status}"
    );
    assert!(
        lifeboat.log().contains("postfix log: deferral"),
        "{}",
        lifeboat.log()
    );
}
