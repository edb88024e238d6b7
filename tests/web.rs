//! The web portal end to end: a real `lifeboat serve` with `[web]` on, driven over
//! real HTTP (tests/support/http.rs; curl for HTTPS). Every route and its errors, and
//! each security rule: sessions and their revocation, CSRF and cross-site refusal,
//! headers, TLS-only logins, other users' data answering 404, upload limits, hostile
//! HTML. The browser test with Postfix and an outage drill is tests/web_browser.py,
//! run by tests/web_browser.rs.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use lifeboat_mailstore::{Class, Flags, MessageRecord, password};
use support::http::{Browser, Response};
use support::lifeboat::Lifeboat;
use support::origin::Origin;
use support::raw::Raw;

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";
const PASSWORD: &str = "secret"; // what Lifeboat::add_user sets

struct Portal {
    _origin: Origin,
    /// Postfix's place: where sent mail and reset links go.
    relay: Origin,
    lifeboat: Lifeboat,
    /// (plain HTTP, HTTPS)
    web: (SocketAddr, SocketAddr),
}

impl Portal {
    /// A portal with alice (alias sales@, alternate alice@home.test) and bob; `mail`
    /// is stored in alice's INBOX before `serve` starts.
    fn start(
        plain_ip: &str,
        mail: Vec<(Vec<u8>, Class)>,
        tweak: impl FnOnce(&mut Lifeboat),
    ) -> Portal {
        let origin = Origin::new();
        let relay = Origin::new();
        let mut lifeboat = Lifeboat::new(origin.addr());
        lifeboat.add_user_with(
            ALICE,
            &["sales@example.test"],
            &["--alternate-email", "alice@home.test"],
        );
        lifeboat.add_user(BOB, &[]);
        let web = lifeboat.enable_web(plain_ip, false);
        let relay_addr = relay.addr();
        lifeboat.edit_config(|text| {
            text.replace(
                "[submission]\nlisten = []\ntls_listen = []\n",
                &format!(
                    "[submission]\nlisten = []\ntls_listen = []\nrelay = \"smtp://{relay_addr}\"\n"
                ),
            )
        });
        tweak(&mut lifeboat);
        lifeboat.deliver_offline(ALICE, mail);
        lifeboat.deliver_offline(
            BOB,
            vec![(
                mail_from("carol@else.test", "for bob only", "bob's secret"),
                Class::Journal,
            )],
        );
        lifeboat.start();
        Portal {
            _origin: origin,
            relay,
            lifeboat,
            web,
        }
    }

    fn browser(&self) -> Browser {
        Browser::new(self.web.0)
    }

    fn alice(&self) -> Browser {
        let mut browser = self.browser();
        browser.login(ALICE, PASSWORD);
        browser
    }

    /// A mailbox id of a user.
    fn mailbox(&self, user: &str, name: &str) -> i64 {
        let reader = self.lifeboat.store().reader().unwrap();
        let user = reader.user(user).unwrap().unwrap();
        reader.mailbox(user.id, name).unwrap().unwrap().id
    }

    fn messages(&self, user: &str, name: &str) -> Vec<MessageRecord> {
        let reader = self.lifeboat.store().reader().unwrap();
        reader.messages(self.mailbox(user, name)).unwrap()
    }
}

fn mail_from(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: Wed, 25 Nov 2026 10:42:00 +0000\r\n\
         Message-ID: <{}@else.test>\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}

/// A message with an HTML part full of hostile content, a cid: image and an attachment
/// with an RFC 2231 name.
fn hostile_mail() -> Vec<u8> {
    let html = r#"<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/"><base href="https://evil.example/">
<link rel="stylesheet" href="https://evil.example/s.css"><style>body{background:url(https://tracker.example/css.gif)}</style></head>
<body><script>document.title='pwned'</script><p onclick="alert(1)">Hello <b>Alice</b></p>
<a href="javascript:alert(2)">js</a><svg onload="alert(3)"></svg><form action="https://evil.example/"><input name=p></form>
<img src="https://tracker.example/open.gif"><img src="cid:logo@example"><img src="data:image/png;base64,AAAA">
<p style="background:url('https://tracker.example/bg.gif')">bg</p><div><div><b><i>nested</b></i></div>"#;
    format!(
        "From: Bob <bob@else.test>\r\nTo: alice@example.test\r\nSubject: Hostile\r\nMessage-ID: <hostile@else.test>\r\n\
         Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
         --m\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n\
         --r\r\nContent-Type: image/png\r\nContent-ID: <logo@example>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
         --r--\r\n\
         --m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*=UTF-8''R%C3%A9sum%C3%A9.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n\
         --m--\r\n"
    )
    .into_bytes()
}

fn assert_app_headers(response: &Response) {
    let csp = response
        .header("content-security-policy")
        .unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(response.header("x-frame-options"), Some("DENY"));
}

#[test]
fn login_session_and_logout() {
    let portal = Portal::start(
        "127.0.0.1",
        vec![(mail_from("bob@else.test", "hello", "hi"), Class::Journal)],
        |_| {},
    );
    let mut browser = portal.browser();
    let page = browser.get("/login");
    assert_eq!(page.status, 200);
    assert_app_headers(&page);
    assert!(page.text().contains("<label for=\"password\">"));
    assert_eq!(
        browser.get("/").location(),
        "/login",
        "not logged in: to the login page"
    );
    assert_eq!(browser.get("/folder/1").location(), "/login");

    let wrong = browser.post_form("/login", &[("address", ALICE), ("password", "nope")]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("do not match"));
    assert!(browser.cookie.is_none());
    let alias = browser.post_form(
        "/login",
        &[("address", "sales@example.test"), ("password", PASSWORD)],
    );
    assert_eq!(alias.status, 401, "aliases are not login names");

    let ok = browser.post_form("/login", &[("address", ALICE), ("password", PASSWORD)]);
    assert_eq!(ok.status, 303);
    let cookie = ok.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "a loopback listener without TLS: no Secure flag"
    );
    let id = browser.cookie.clone().unwrap();
    assert!(id.len() >= 43, "256-bit ids");
    // The index holds only a hash of the id.
    let index = std::fs::read(portal.lifeboat.data_dir().join("index.sqlite")).unwrap();
    let wal =
        std::fs::read(portal.lifeboat.data_dir().join("index.sqlite-wal")).unwrap_or_default();
    for bytes in [&index, &wal] {
        assert!(
            !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
            "the session id is never stored"
        );
    }

    let home = browser.get("/");
    assert_eq!(home.status, 303);
    let inbox = browser.get(home.location());
    assert_eq!(inbox.status, 200);
    assert!(inbox.text().contains("hello"));
    assert!(
        inbox
            .text()
            .contains("Your mail server is working normally.")
    );

    // Logout needs the token; a GET does nothing.
    assert_eq!(browser.get("/logout").status, 405);
    assert_eq!(
        browser.post_form("/logout", &[("csrf", "wrong")]).status,
        403
    );
    let token = inbox.csrf();
    let out = browser.post_form("/logout", &[("csrf", &token)]);
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    browser.cookie = Some(id);
    assert_eq!(
        browser.get("/").location(),
        "/login",
        "the old id no longer works"
    );
}

#[test]
fn sessions_end_when_the_password_changes_or_the_user_is_disabled() {
    let portal = Portal::start("127.0.0.1", vec![], |_| {});
    let mut browser = portal.alice();
    assert_eq!(browser.get("/").status, 303);
    assert!(browser.get("/").location().starts_with("/folder/"));
    let mut cmd = portal.lifeboat.command();
    cmd.args(["user", "passwd", ALICE, "--password-stdin"]);
    let mut child = cmd.stdin(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"another-password-9\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        browser.get("/").location(),
        "/login",
        "a new password ends the session"
    );

    browser.login(ALICE, "another-password-9");
    assert!(browser.get("/").location().starts_with("/folder/"));
    // Idle for longer than the idle timeout, then older than the lifetime.
    for column in ["last_seen_at", "created_at"] {
        browser.login(ALICE, "another-password-9");
        assert!(browser.get("/").location().starts_with("/folder/"));
        let index =
            rusqlite::Connection::open(portal.lifeboat.data_dir().join("index.sqlite")).unwrap();
        index
            .execute(
                &format!("UPDATE web_sessions SET {column} = {column} - 13 * 3600"),
                [],
            )
            .unwrap();
        assert_eq!(
            browser.get("/").location(),
            "/login",
            "{column} too old ends the session"
        );
    }
    browser.login(ALICE, "another-password-9");
    portal.lifeboat.admin(&["user", "disable", ALICE]);
    assert_eq!(
        browser.get("/").location(),
        "/login",
        "disabling ends the session"
    );
    let again = browser.post_form(
        "/login",
        &[("address", ALICE), ("password", "another-password-9")],
    );
    assert_eq!(again.status, 401);
}

#[test]
fn logins_without_tls_are_refused_off_loopback_and_https_adds_hsts_and_secure_cookies() {
    // The plain listener on 0.0.0.0 is not a loopback listener, even when reached
    // through 127.0.0.1.
    let portal = Portal::start("0.0.0.0", vec![], |_| {});
    let plain = SocketAddr::from(([127, 0, 0, 1], portal.web.0.port()));
    let mut browser = Browser::new(plain);
    let page = browser.get("/login");
    assert!(
        page.text().contains("signing in here is turned off"),
        "{}",
        page.text()
    );
    let refused = browser.post_form("/login", &[("address", ALICE), ("password", PASSWORD)]);
    assert_eq!(refused.status, 403);
    assert!(browser.cookie.is_none());
    assert!(page.header("strict-transport-security").is_none());

    let https = format!("https://127.0.0.1:{}/login", portal.web.1.port());
    let out = Command::new("curl")
        .args(["-sk", "-D", "-", "-o", "/dev/null", "-d"])
        .arg(format!("address={ALICE}&password={PASSWORD}"))
        .arg(&https)
        .output()
        .expect("curl (tests/install-deps.sh installs it)");
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("strict-transport-security: max-age="),
        "{head}"
    );
    assert!(
        head.contains("set-cookie: lifeboat_session=") && head.contains("; secure"),
        "{head}"
    );
}

#[test]
fn folders_pages_and_reading_a_message_marks_it_seen() {
    let mut mail: Vec<(Vec<u8>, Class)> = (1..=120)
        .map(|n| {
            (
                mail_from("bob@else.test", &format!("number {n:03}"), "text"),
                Class::Journal,
            )
        })
        .collect();
    mail.push((
        mail_from(
            "Zoë <zoe@else.test>",
            "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=",
            "Hallo aus München",
        ),
        Class::Diverted,
    ));
    let portal = Portal::start("127.0.0.1", mail, |_| {});
    let inbox = portal.mailbox(ALICE, "INBOX");
    let mut browser = portal.alice();
    let first = browser.get(&format!("/folder/{inbox}"));
    let text = first.text();
    assert!(text.contains("121 messages, 121 unread"), "{text}");
    assert!(
        text.contains("Grüße") && text.contains("Zoë"),
        "newest first, decoded"
    );
    assert_eq!(text.matches("<tr class=").count(), 50);
    assert!(text.contains("Page 1 of 3"));
    assert!(text.find("number 120").unwrap() < text.find("number 119").unwrap());
    let last = browser.get(&format!("/folder/{inbox}?page=3"));
    assert_eq!(last.text().matches("<tr class=").count(), 21);
    assert!(last.text().contains("number 001"));

    let uid = 121;
    let read = browser.get(&format!("/folder/{inbox}/{uid}"));
    assert_eq!(read.status, 200);
    assert!(read.text().contains("Hallo aus München"));
    let seen = portal.messages(ALICE, "INBOX");
    assert!(
        seen.iter()
            .find(|m| m.uid == uid)
            .unwrap()
            .flags
            .contains(Flags::SEEN)
    );
    assert!(
        browser
            .get(&format!("/folder/{inbox}"))
            .text()
            .contains("121 messages, 120 unread")
    );

    // Mark unread, flag, move, delete.
    let token = read.csrf();
    let unread = browser.post_form(
        &format!("/folder/{inbox}/{uid}/flags"),
        &[("csrf", &token), ("change", "unread")],
    );
    assert_eq!(unread.status, 303);
    let flag = browser.post_form(
        &format!("/folder/{inbox}/{uid}/flags"),
        &[("csrf", &token), ("change", "flag")],
    );
    assert_eq!(flag.status, 303);
    let record = portal
        .messages(ALICE, "INBOX")
        .into_iter()
        .find(|m| m.uid == uid)
        .unwrap();
    assert!(!record.flags.contains(Flags::SEEN) && record.flags.contains(Flags::FLAGGED));
    assert_eq!(
        browser
            .post_form(
                &format!("/folder/{inbox}/{uid}/flags"),
                &[("csrf", &token), ("change", "burn")]
            )
            .status,
        422,
        "an unknown change is refused"
    );

    let archive = portal.mailbox(ALICE, "Archive");
    let moved = browser.post_form(
        &format!("/folder/{inbox}/120/move"),
        &[("csrf", &token), ("to", &archive.to_string())],
    );
    assert_eq!(moved.status, 303);
    assert_eq!(portal.messages(ALICE, "Archive").len(), 1);
    assert_eq!(
        browser.get(&format!("/folder/{inbox}/120")).status,
        404,
        "moved away"
    );

    // Deleting the diverted copy (still owed to the origin) hides it; it is kept.
    let deleted = browser.post_form(
        &format!("/folder/{inbox}/{uid}/delete"),
        &[("csrf", &token)],
    );
    assert_eq!(deleted.status, 303);
    let kept = portal
        .messages(ALICE, "INBOX")
        .into_iter()
        .find(|m| m.uid == uid)
        .unwrap();
    assert!(kept.expunged, "hidden, not destroyed");
    assert_eq!(kept.replay_state.as_deref(), Some("pending"));
    assert_eq!(portal.messages(ALICE, "Trash").len(), 1, "a copy in Trash");
    let trash = portal.mailbox(ALICE, "Trash");
    let gone = browser.post_form(&format!("/folder/{trash}/1/delete"), &[("csrf", &token)]);
    assert_eq!(gone.status, 303);
    assert!(
        portal.messages(ALICE, "Trash").is_empty(),
        "deleted for good from Trash"
    );
    assert_eq!(browser.get("/folder/999999").status, 404);
    assert_eq!(browser.get(&format!("/folder/{inbox}/999999")).status, 404);
    assert_eq!(browser.get(&format!("/folder/{inbox}?page=x")).status, 400);
}

#[test]
fn search_uses_the_imap_search_keys() {
    let mail = vec![
        (
            mail_from(
                "Jörg <joerg@else.test>",
                "Quarterly numbers",
                "see the table",
            ),
            Class::Journal,
        ),
        (
            mail_from("bob@else.test", "lunch", "Pizza in München?"),
            Class::Journal,
        ),
        (
            mail_from("bob@else.test", "other", "nothing here"),
            Class::Journal,
        ),
    ];
    let portal = Portal::start("127.0.0.1", mail, |_| {});
    let inbox = portal.mailbox(ALICE, "INBOX");
    let mut browser = portal.alice();
    let by_from = browser.get(&format!("/folder/{inbox}/search?from=j%C3%B6rg"));
    assert!(by_from.text().contains("Quarterly numbers") && !by_from.text().contains("lunch"));
    let by_text = browser.get(&format!("/folder/{inbox}/search?text=m%C3%BCnchen"));
    assert!(by_text.text().contains("lunch") && by_text.text().contains("1 found"));
    let by_date = browser.get(&format!("/folder/{inbox}/search?since=2026-11-26"));
    assert!(by_date.text().contains("0 found"), "Date: is 25 Nov");
    assert_eq!(
        browser
            .get(&format!("/folder/{inbox}/search?since=tomorrow"))
            .status,
        400
    );
}

#[test]
fn another_users_folders_messages_and_parts_are_not_found() {
    let portal = Portal::start("127.0.0.1", vec![(hostile_mail(), Class::Journal)], |_| {});
    let bobs_inbox = portal.mailbox(BOB, "INBOX");
    let alices_inbox = portal.mailbox(ALICE, "INBOX");
    let mut bob = portal.browser();
    bob.login(BOB, PASSWORD);
    assert_eq!(bob.get(&format!("/folder/{bobs_inbox}/1")).status, 200);
    let token = bob.get(&format!("/folder/{bobs_inbox}")).csrf();
    for path in [
        format!("/folder/{alices_inbox}"),
        format!("/folder/{alices_inbox}/1"),
        format!("/folder/{alices_inbox}/1/body"),
        format!("/folder/{alices_inbox}/1/source"),
        format!("/folder/{alices_inbox}/1/part/2"),
        format!("/folder/{alices_inbox}/1/cid/logo%40example"),
        format!("/folder/{alices_inbox}/search?subject=Hostile"),
        format!("/compose?reply={alices_inbox}/1"),
        format!("/compose?forward={alices_inbox}/1&attach=1"),
    ] {
        let response = bob.get(&path);
        assert_eq!(response.status, 404, "{path}");
        assert!(
            !response.text().contains("Hostile") && !response.text().contains("Alice"),
            "{path}"
        );
    }
    for path in ["flags", "move", "delete"] {
        let response = bob.post_form(
            &format!("/folder/{alices_inbox}/1/{path}"),
            &[
                ("csrf", &token),
                ("change", "flag"),
                ("to", &bobs_inbox.to_string()),
            ],
        );
        assert_eq!(response.status, 404, "{path}");
    }
    // Bob moving his own message into Alice's folder.
    let response = bob.post_form(
        &format!("/folder/{bobs_inbox}/1/move"),
        &[("csrf", &token), ("to", &alices_inbox.to_string())],
    );
    assert_eq!(response.status, 404);
    // Part ids are validated.
    let mut alice = portal.alice();
    for part in ["0", "..%2F..%2Fetc", "1.", "abc", "99"] {
        assert_eq!(
            alice
                .get(&format!("/folder/{alices_inbox}/1/part/{part}"))
                .status,
            404,
            "{part}"
        );
    }
    assert_eq!(
        portal.messages(ALICE, "INBOX").len(),
        1,
        "nothing moved or removed"
    );
    assert!(
        !portal.messages(ALICE, "INBOX")[0]
            .flags
            .contains(Flags::FLAGGED)
    );
}

#[test]
fn csrf_and_cross_site_requests_are_refused() {
    let portal = Portal::start(
        "127.0.0.1",
        vec![(mail_from("bob@else.test", "x", "y"), Class::Journal)],
        |_| {},
    );
    let inbox = portal.mailbox(ALICE, "INBOX");
    let mut browser = portal.alice();
    let token = browser.get(&format!("/folder/{inbox}")).csrf();
    let path = format!("/folder/{inbox}/1/flags");
    assert_eq!(
        browser.post_form(&path, &[("change", "flag")]).status,
        422,
        "no token at all"
    );
    assert_eq!(
        browser
            .post_form(&path, &[("csrf", "forged"), ("change", "flag")])
            .status,
        403
    );
    browser.extra = vec![("Origin".into(), "https://evil.example".into())];
    assert_eq!(
        browser
            .post_form(&path, &[("csrf", &token), ("change", "flag")])
            .status,
        403
    );
    browser.extra = vec![("Sec-Fetch-Site".into(), "cross-site".into())];
    assert_eq!(
        browser
            .post_form(&path, &[("csrf", &token), ("change", "flag")])
            .status,
        403
    );
    let login = browser.post_form("/login", &[("address", ALICE), ("password", PASSWORD)]);
    assert_eq!(login.status, 403, "login CSRF too");
    browser.extra.clear();
    assert!(
        !portal.messages(ALICE, "INBOX")[0]
            .flags
            .contains(Flags::FLAGGED)
    );
    assert_eq!(
        browser
            .post_form(&path, &[("csrf", &token), ("change", "flag")])
            .status,
        303
    );
    assert!(
        portal.messages(ALICE, "INBOX")[0]
            .flags
            .contains(Flags::FLAGGED)
    );
    let other =
        Browser::new(portal.web.0).post_form(&path, &[("csrf", &token), ("change", "unflag")]);
    assert_eq!(other.status, 303);
    assert_eq!(
        other.location(),
        "/login",
        "a token without the session is nothing"
    );
}

#[test]
fn hostile_html_is_sanitised_framed_and_remote_content_waits_for_show_images() {
    let big_line = format!(
        "From: bob@else.test\r\nTo: alice@example.test\r\nSubject: big\r\nContent-Type: text/html\r\n\r\n<p>{}<img src=\"https://tracker.example/big.gif\"></p>\r\n",
        "A".repeat(10 * 1024 * 1024)
    )
    .into_bytes();
    let portal = Portal::start(
        "127.0.0.1",
        vec![(hostile_mail(), Class::Journal), (big_line, Class::Journal)],
        |_| {},
    );
    let inbox = portal.mailbox(ALICE, "INBOX");
    let mut browser = portal.alice();
    let page = browser.get(&format!("/folder/{inbox}/1"));
    let text = page.text();
    assert!(
        text.contains("sandbox=\"allow-same-origin allow-popups allow-popups-to-escape-sandbox\""),
        "{text}"
    );
    assert!(!text.contains("allow-scripts"));
    assert!(text.contains("Show images"));
    assert!(text.contains("Résumé.pdf"));
    let body = browser.get(&format!("/folder/{inbox}/1/body"));
    assert_eq!(body.status, 200);
    let csp = body.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("img-src 'self';")
            && csp.contains("sandbox"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no script source at all");
    assert_eq!(body.header("x-frame-options"), Some("SAMEORIGIN"));
    let document = body.text().to_ascii_lowercase();
    let html = &document[document.find("<body>").unwrap()..];
    for banned in [
        "<script",
        "onclick",
        "javascript:",
        "<svg",
        "onload",
        "<meta",
        "evil.example",
        "tracker.example",
        "<form",
        "<input",
        "data:",
        "<link",
        "pwned",
    ] {
        assert!(!html.contains(banned), "{banned} in {html}");
    }
    assert!(html.contains("hello <b>alice</b>"));
    assert!(
        html.contains(&format!("src=\"/folder/{inbox}/1/cid/logo%40example\"")),
        "{html}"
    );
    let image = browser.get(&format!("/folder/{inbox}/1/cid/logo%40example"));
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert_eq!(image.body, b"\x89PNG\r\n\x1a\n");

    let shown = browser.get(&format!("/folder/{inbox}/1/body?images=1"));
    assert!(shown.text().contains("https://tracker.example/open.gif"));
    assert!(
        shown
            .header("content-security-policy")
            .unwrap()
            .contains("img-src 'self' https: http:")
    );
    assert!(!shown.text().contains("<script"));

    // The 10 MB single line renders, safely and fast.
    let started = Instant::now();
    let big = browser.get(&format!("/folder/{inbox}/2/body"));
    assert_eq!(big.status, 200);
    assert!(big.body.len() > 10 * 1024 * 1024);
    assert!(!big.text().contains("tracker.example"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // Text and source views.
    let plain = browser.get(&format!("/folder/{inbox}/1?view=text"));
    assert!(plain.text().contains("Hello Alice") && !plain.text().contains("<iframe"));
    let source = browser.get(&format!("/folder/{inbox}/1/source"));
    assert!(
        source
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        source
            .header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );
    assert!(
        source
            .text()
            .contains("<script>document.title='pwned'</script>"),
        "the source as it is, as text"
    );
}

#[test]
fn attachments_download_with_their_names() {
    let portal = Portal::start("127.0.0.1", vec![(hostile_mail(), Class::Journal)], |_| {});
    let inbox = portal.mailbox(ALICE, "INBOX");
    let mut browser = portal.alice();
    let file = browser.get(&format!("/folder/{inbox}/1/part/2"));
    assert_eq!(file.status, 200);
    assert_eq!(file.body, b"%PDF-1.4\n");
    assert_eq!(
        file.header("content-disposition"),
        Some("attachment; filename=\"R_sum_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf")
    );
    assert_eq!(file.header("content-type"), Some("application/pdf"));
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn compose_sends_through_the_submission_path_and_records_the_sent_copy_once() {
    let portal = Portal::start(
        "127.0.0.1",
        vec![(
            mail_from("Bob <bob@else.test>", "plans", "Shall we?"),
            Class::Diverted,
        )],
        |lifeboat| lifeboat.outage(true),
    );
    let inbox = portal.mailbox(ALICE, "INBOX");
    let mut browser = portal.alice();
    let folder = browser.get(&format!("/folder/{inbox}"));
    assert!(
        folder
            .text()
            .contains("Your mail server is unavailable since"),
        "{}",
        folder.text()
    );
    let reply = browser.get(&format!("/compose?reply={inbox}/1"));
    assert_eq!(reply.status, 200);
    let text = reply.text();
    assert!(
        text.contains("value=\"Bob &#60;bob@else.test&#62;\"")
            || text.contains("value=\"Bob &lt;bob@else.test&gt;\""),
        "{text}"
    );
    assert!(text.contains("Re: plans"));
    let token = reply.csrf();
    let sent = browser.post_multipart(
        "/compose",
        &[
            ("csrf", &token),
            ("from", "sales@example.test"),
            ("to", "Bob <bob@else.test>"),
            ("cc", ""),
            ("bcc", "boss@else.test"),
            ("subject", "Re: plans"),
            ("body", "Yes.\n"),
            ("in_reply_to", "plans@else.test"),
            ("references", "plans@else.test"),
            ("forward", ""),
            ("draft", ""),
            ("answers", &format!("{inbox}/1")),
            ("action", "send"),
        ],
        &[("files", "notes.txt", b"attached bytes\x00\xff")],
    );
    assert_eq!(sent.status, 303, "{}", sent.text());
    assert!(sent.location().contains("notice=sent"));
    assert!(portal.relay.wait_for_messages(1, Duration::from_secs(20)));
    let received = &portal.relay.messages()[0];
    assert_eq!(received.mail_from, "sales@example.test");
    assert_eq!(received.rcpt_to, ["bob@else.test", "boss@else.test"]);
    let message = received.text();
    assert!(
        message.contains("(Lifeboat web) with HTTPS")
            && message.contains("In-Reply-To: <plans@else.test>")
    );
    assert!(
        !message.contains("boss@else.test"),
        "Bcc stays out of the header"
    );
    assert!(message.contains("notes.txt"));
    let original = &portal.messages(ALICE, "INBOX")[0];
    assert!(
        original.flags.contains(Flags::ANSWERED),
        "the original is marked answered"
    );
    let sent_copies = portal.messages(ALICE, "Sent");
    assert_eq!(sent_copies.len(), 1, "one sent copy for replay");
    assert_eq!(sent_copies[0].class, Class::Sent);
    assert_eq!(sent_copies[0].replay_state.as_deref(), Some("pending"));

    // Sender enforcement: not one of hers.
    let forged = browser.post_multipart(
        "/compose",
        &[
            ("csrf", &token),
            ("from", "ceo@example.test"),
            ("to", "bob@else.test"),
            ("subject", "x"),
            ("body", "x"),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(forged.status, 400);
    assert!(forged.text().contains("your own addresses"));
    let bad_rcpt = browser.post_multipart(
        "/compose",
        &[
            ("csrf", &token),
            ("from", ALICE),
            ("to", "not an address"),
            ("subject", "x"),
            ("body", "x"),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(bad_rcpt.status, 400);
    assert_eq!(portal.relay.messages().len(), 1, "nothing else went out");
    let no_token = browser.post_multipart(
        "/compose",
        &[("from", ALICE), ("to", "bob@else.test"), ("action", "send")],
        &[],
    );
    assert_eq!(no_token.status, 403);

    // Forward as attachment and a draft.
    let forward = browser.get(&format!("/compose?forward={inbox}/1&attach=1"));
    assert!(forward.text().contains("Fwd: plans"));
    let draft = browser.post_multipart(
        "/compose",
        &[
            ("csrf", &token),
            ("from", ALICE),
            ("to", "carol@else.test"),
            ("subject", "Fwd: plans"),
            ("body", "fyi"),
            ("forward", &format!("{inbox}/1")),
            ("action", "draft"),
        ],
        &[],
    );
    assert_eq!(draft.status, 303, "{}", draft.text());
    let drafts = portal.messages(ALICE, "Drafts");
    assert_eq!(drafts.len(), 1);
    assert!(drafts[0].flags.contains(Flags::DRAFT));
    let drafts_id = portal.mailbox(ALICE, "Drafts");
    let draft_page = browser.get(&format!("/folder/{drafts_id}/1"));
    assert!(
        draft_page
            .text()
            .contains(&format!("href=\"/compose?draft={drafts_id}/1\""))
    );
    let reopened = browser.get(&format!("/compose?draft={drafts_id}/1"));
    assert!(
        reopened.text().contains("carol@else.test") && reopened.text().contains("plans.eml"),
        "{}",
        reopened.text()
    );
    let from_draft = browser.post_multipart(
        "/compose",
        &[
            ("csrf", &token),
            ("from", ALICE),
            ("to", "carol@else.test"),
            ("subject", "Fwd: plans"),
            ("body", "fyi"),
            ("keep", &format!("{drafts_id}/1/2")),
            ("draft", &format!("{drafts_id}/1")),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(from_draft.status, 303, "{}", from_draft.text());
    assert!(portal.relay.wait_for_messages(2, Duration::from_secs(20)));
    assert!(
        portal.relay.messages()[1].text().contains("plans.eml"),
        "the forwarded message rides along"
    );
    assert!(
        portal.messages(ALICE, "Drafts").iter().all(|m| m.expunged)
            || portal.messages(ALICE, "Drafts").is_empty(),
        "the draft goes once sent"
    );
}

#[test]
fn an_oversized_upload_is_refused_with_413_and_nothing_is_stored_or_sent() {
    let portal = Portal::start("127.0.0.1", vec![], |lifeboat| {
        lifeboat.edit_config(|text| {
            text.replace("[milter]\n", "[milter]\nmax_message_size = 200000\n")
        });
    });
    let mut browser = portal.alice();
    let token = browser.get("/compose").csrf();
    let big = vec![b'x'; 300_000];
    for action in ["send", "draft"] {
        let response = browser.post_multipart(
            "/compose",
            &[
                ("csrf", &token),
                ("from", ALICE),
                ("to", "bob@else.test"),
                ("subject", "big"),
                ("body", "x"),
                ("action", action),
            ],
            &[("files", "big.bin", &big)],
        );
        assert_eq!(response.status, 413, "{action}");
    }
    // Under the upload limit, but over it once base64-encoded in the message.
    let medium = vec![b'y'; 180_000];
    let response = browser.post_multipart(
        "/compose",
        &[
            ("csrf", &token),
            ("from", ALICE),
            ("to", "bob@else.test"),
            ("subject", "medium"),
            ("body", "x"),
            ("action", "draft"),
        ],
        &[("files", "medium.bin", &medium)],
    );
    assert_eq!(response.status, 413);
    std::thread::sleep(Duration::from_millis(300));
    assert!(portal.relay.messages().is_empty());
    assert!(portal.messages(ALICE, "Drafts").is_empty());
    assert!(portal.messages(ALICE, "Sent").is_empty());
}

#[test]
fn settings_password_and_alternate_address() {
    let portal = Portal::start("127.0.0.1", vec![], |_| {});
    let mut browser = portal.alice();
    let page = browser.get("/settings");
    assert!(page.text().contains("at least 10 characters"));
    assert!(page.text().contains("value=\"alice@home.test\""));
    let token = page.csrf();
    let change = |browser: &mut Browser, old: &str, new: &str, again: &str| {
        browser.post_form(
            "/settings/password",
            &[
                ("csrf", &token),
                ("old", old),
                ("new", new),
                ("again", again),
            ],
        )
    };
    assert_eq!(
        change(
            &mut browser,
            "wrong",
            "a-long-new-password",
            "a-long-new-password"
        )
        .status,
        400
    );
    assert_eq!(change(&mut browser, PASSWORD, "short", "short").status, 400);
    assert_eq!(
        change(&mut browser, PASSWORD, "password123", "password123").status,
        400
    );
    assert_eq!(
        change(
            &mut browser,
            PASSWORD,
            "a-long-new-password",
            "different-one-here"
        )
        .status,
        400
    );
    let ok = change(
        &mut browser,
        PASSWORD,
        "a-long-new-password",
        "a-long-new-password",
    );
    assert_eq!(ok.status, 303);
    assert!(
        browser.get("/").location().starts_with("/folder/"),
        "this browser keeps a fresh session"
    );
    assert_eq!(
        portal
            .browser()
            .post_form("/login", &[("address", ALICE), ("password", PASSWORD)])
            .status,
        401
    );
    portal.browser().login(ALICE, "a-long-new-password");

    let token = browser.get("/settings").csrf();
    let own = browser.post_form(
        "/settings/alternate",
        &[("csrf", &token), ("alternate", "sales@example.test")],
    );
    assert_eq!(own.status, 400, "not an address of the mailbox itself");
    let set = browser.post_form(
        "/settings/alternate",
        &[("csrf", &token), ("alternate", "alice@elsewhere.test")],
    );
    assert_eq!(set.status, 303);
    let reader = portal.lifeboat.store().reader().unwrap();
    assert_eq!(
        reader
            .user(ALICE)
            .unwrap()
            .unwrap()
            .alternate_email
            .as_deref(),
        Some("alice@elsewhere.test")
    );

    let setup = browser.get("/settings/mail-app");
    assert!(setup.text().contains("lifeboat.test"), "{}", setup.text());
    let profile = browser.get("/settings/mail-app/lifeboat.mobileconfig");
    assert_eq!(
        profile.status, 404,
        "no IMAP/POP3/SMTP listener is on in this test"
    );
}

#[test]
fn a_password_kept_by_the_origin_is_not_changed_or_reset_here() {
    // Every password is the origin's (it cannot be reached here, so logins fall back to
    // the password the store has).
    let unreachable = format!("imap://127.0.0.1:{}", support::free_port());
    let portal = Portal::start("127.0.0.1", vec![], |lifeboat| {
        lifeboat.edit_config(|text| {
            let keys = format!("backend = \"origin-imap\"\norigin_imap = \"{unreachable}\"\n");
            if text.contains("\n[auth]\n") {
                text.replace("\n[auth]\n", &format!("\n[auth]\n{keys}"))
            } else {
                format!("{text}\n[auth]\n{keys}")
            }
        })
    });
    let mut browser = portal.alice();
    let page = browser.get("/settings");
    assert!(
        !page.text().contains("action=\"/settings/password\""),
        "no form to change a password that is the organisation's"
    );
    assert!(page.text().contains("change it where you always do"));
    let token = page.csrf();
    let refused = browser.post_form(
        "/settings/password",
        &[
            ("csrf", &token),
            ("old", PASSWORD),
            ("new", "a-long-new-password"),
            ("again", "a-long-new-password"),
        ],
    );
    assert_eq!(refused.status, 400);
    let reader = portal.lifeboat.store().reader().unwrap();
    let stored = reader.user(ALICE).unwrap().unwrap().password_hash;
    assert!(
        password::verify(&stored, PASSWORD),
        "the password stays as it was"
    );
    // No reset link either: only the origin can change this password.
    let asked = portal.browser().post_form("/reset", &[("address", ALICE)]);
    assert!(
        asked.status == 200 || asked.status == 303,
        "{}",
        asked.status
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(portal.relay.messages().is_empty(), "no link was mailed");
}

#[test]
fn a_reset_link_goes_to_the_alternate_address_works_once_and_answers_alike() {
    let portal = Portal::start("127.0.0.1", vec![], |_| {});
    let mut browser = portal.browser();
    assert_eq!(browser.get("/reset").status, 200);
    let known = browser.post_form("/reset", &[("address", ALICE)]);
    let unknown = browser.post_form("/reset", &[("address", "nobody@example.test")]);
    let no_alternate = browser.post_form("/reset", &[("address", BOB)]);
    assert_eq!(known.status, 200);
    assert_eq!(
        known.text(),
        unknown.text(),
        "the same answer whether or not the account exists"
    );
    assert_eq!(known.text(), no_alternate.text());
    assert!(portal.relay.wait_for_messages(1, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(500));
    let mails = portal.relay.messages();
    assert_eq!(
        mails.len(),
        1,
        "one link, to alice's alternate address only"
    );
    assert_eq!(mails[0].rcpt_to, ["alice@home.test"]);
    let text = mails[0].text();
    let start = text
        .find("https://lifeboat.test/reset/")
        .expect("a link with base_url");
    let token: String = text[start + "https://lifeboat.test/reset/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    // The index keeps only a hash of it.
    let index =
        std::fs::read(portal.lifeboat.data_dir().join("index.sqlite-wal")).unwrap_or_default();
    assert!(!index.windows(token.len()).any(|w| w == token.as_bytes()));
    // A second request soon after sends nothing more.
    browser.post_form("/reset", &[("address", ALICE)]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(portal.relay.messages().len(), 1);

    let path = format!("/reset/{token}");
    assert_eq!(browser.get(&path).status, 200);
    assert_eq!(
        browser
            .post_form(&path, &[("new", "short"), ("again", "short")])
            .status,
        400
    );
    let done = browser.post_form(
        &path,
        &[
            ("new", "brand-new-password-1"),
            ("again", "brand-new-password-1"),
        ],
    );
    assert_eq!(done.status, 303);
    assert_eq!(browser.get(&path).status, 404, "single use");
    assert_eq!(
        browser
            .post_form(
                &path,
                &[
                    ("new", "brand-new-password-2"),
                    ("again", "brand-new-password-2")
                ]
            )
            .status,
        404
    );
    browser.login(ALICE, "brand-new-password-1");
    assert_eq!(portal.browser().get("/reset/not-a-token").status, 404);
    // Rate limit per client address.
    let mut limited = 0;
    for _ in 0..6 {
        if portal
            .browser()
            .post_form("/reset", &[("address", "x@example.test")])
            .status
            == 429
        {
            limited += 1;
        }
    }
    assert!(limited > 0);
}

#[test]
fn autoconfiguration_for_thunderbird_outlook_and_apple() {
    let portal = Portal::start("127.0.0.1", vec![], |lifeboat| {
        lifeboat.edit_config(|text| {
            text.replace(
                "[imap]\nlisten = []\ntls_listen = []\n",
                &format!(
                    "[imap]\nlisten = []\ntls_listen = [\"127.0.0.1:{}\"]\n",
                    support::free_port()
                ),
            )
            .replace(
                "[submission]\nlisten = []\n",
                &format!(
                    "[submission]\nlisten = [\"127.0.0.1:{}\"]\n",
                    support::free_port()
                ),
            )
        })
    });
    let mut browser = portal.browser();
    for path in [
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.test",
        "/mail/config-v1.1.xml?emailaddress=alice%40example.test",
    ] {
        let doc = browser.get(path);
        assert_eq!(doc.status, 200, "{path}");
        assert!(
            doc.header("content-type")
                .unwrap()
                .starts_with("application/xml")
        );
        let xml = doc.text();
        assert!(
            xml.contains("<clientConfig version=\"1.1\">")
                && xml.contains("<emailProvider id=\"example.test\">")
        );
        assert!(
            xml.contains("<incomingServer type=\"imap\">")
                && xml.contains("<socketType>SSL</socketType>")
        );
        assert!(
            xml.contains("<outgoingServer type=\"smtp\">")
                && xml.contains("<socketType>STARTTLS</socketType>")
        );
    }
    assert_eq!(
        browser
            .get("/mail/config-v1.1.xml?emailaddress=x%40other.test")
            .status,
        404
    );
    let request = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>alice@example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
    let pox = browser.request(
        "POST",
        "/autodiscover/autodiscover.xml",
        Some(("text/xml", request.as_bytes().to_vec())),
        &[],
    );
    assert_eq!(pox.status, 200);
    assert!(
        pox.text().contains("<Type>IMAP</Type>")
            && pox
                .text()
                .contains("<LoginName>alice@example.test</LoginName>")
    );
    assert_eq!(
        browser
            .get("/settings/mail-app/lifeboat.mobileconfig")
            .location(),
        "/login"
    );
    browser.login(ALICE, PASSWORD);
    let profile = browser.get("/settings/mail-app/lifeboat.mobileconfig");
    assert_eq!(profile.status, 200);
    assert_eq!(
        profile.header("content-type"),
        Some("application/x-apple-aspen-config")
    );
    assert!(profile.text().contains("<string>EmailTypeIMAP</string>"));
}

#[test]
fn static_assets_and_unknown_paths() {
    let portal = Portal::start("127.0.0.1", vec![], |_| {});
    let mut browser = portal.browser();
    let css = browser.get("/static/style.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(browser.get("/static/app.js").status, 200);
    assert_eq!(browser.get("/static/../Cargo.toml").status, 404);
    assert_eq!(browser.get("/static/nothing.css").status, 404);
    assert_eq!(browser.get("/wp-admin").status, 404);
}

#[test]
fn assets_are_compressed_and_pages_are_not() {
    let portal = Portal::start("127.0.0.1", vec![], |_| {});
    let mut browser = portal.browser();
    let gzip = [("Accept-Encoding", "gzip")];
    let css = browser.request("GET", "/static/style.css", None, &gzip);
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-encoding"), Some("gzip"));
    assert!(css.body.starts_with(&[0x1f, 0x8b]), "not gzip data");
    // A page holds the CSRF token and echoes input: compressing it would open BREACH.
    let page = browser.request("GET", "/login", None, &gzip);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-encoding"), None);
    assert!(String::from_utf8_lossy(&page.body).contains("<form"));
}

/// Reads lines until the one tagged `tag`; returns them all.
fn until_tagged(raw: &mut Raw, tag: &str) -> String {
    let mut all = String::new();
    loop {
        let line = raw.line();
        assert!(!line.is_empty(), "closed: {all}");
        all.push_str(&line);
        if line.starts_with(&format!("{tag} ")) {
            return all;
        }
    }
}

#[test]
fn changes_made_in_the_browser_reach_an_idling_imap_session_at_once() {
    let portal = Portal::start(
        "127.0.0.1",
        vec![(mail_from("bob@else.test", "watched", "x"), Class::Journal)],
        |lifeboat| lifeboat.enable_imap("127.0.0.1", true, true),
    );
    let (imap, _) = portal.lifeboat.imap.unwrap();
    let mut raw = Raw::connect(imap);
    assert!(raw.line().starts_with("* OK"));
    raw.send(format!("a1 LOGIN {ALICE} {PASSWORD}\r\n").as_bytes());
    assert!(until_tagged(&mut raw, "a1").contains("a1 OK"));
    raw.send(b"a2 SELECT INBOX\r\n");
    assert!(until_tagged(&mut raw, "a2").contains("a2 OK"));
    raw.send(b"a3 IDLE\r\n");
    assert!(raw.line().starts_with("+ "));

    let inbox = portal.mailbox(ALICE, "INBOX");
    let mut browser = portal.alice();
    let started = Instant::now();
    let page = browser.get(&format!("/folder/{inbox}/1"));
    assert_eq!(page.status, 200);
    let seen = raw.line();
    assert!(
        seen.starts_with("* 1 FETCH") && seen.contains("\\Seen"),
        "{seen}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let token = page.csrf();
    browser.post_form(
        &format!("/folder/{inbox}/1/flags"),
        &[("csrf", &token), ("change", "flag")],
    );
    let flagged = raw.line();
    assert!(flagged.contains("\\Flagged"), "{flagged}");
    browser.post_form(&format!("/folder/{inbox}/1/delete"), &[("csrf", &token)]);
    assert_eq!(raw.line(), "* 1 EXPUNGE\r\n");
    raw.send(b"DONE\r\n");
    assert!(until_tagged(&mut raw, "a3").contains("a3 OK"));
}

#[test]
fn sighup_applies_new_web_settings() {
    let portal = Portal::start("127.0.0.1", vec![], |_| {});
    portal.lifeboat.edit_config(|text| {
        text.replace(
            "[web]\n",
            "[web]\nbase_url = \"https://mail.example.test/portal\"\n",
        )
    });
    portal.lifeboat.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !portal.lifeboat.log().contains("configuration reloaded") {
        assert!(
            Instant::now() < deadline,
            "no reload:\n{}",
            portal.lifeboat.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = portal.browser().post_form("/reset", &[("address", ALICE)]);
    assert_eq!(answer.status, 200);
    assert!(portal.relay.wait_for_messages(1, Duration::from_secs(20)));
    assert!(
        portal.relay.messages()[0]
            .text()
            .contains("https://mail.example.test/portal/reset/"),
        "reset links use the reloaded base_url"
    );
}
