//! A real browser through the web portal during a real outage drill: a private Postfix
//! gateway with Lifeboat's milter and fallback relay, an origin that dies and comes
//! back, and headless Chromium driven by Selenium (tests/web_browser.py). Alice reads
//! a diverted message, opens an HTML mail whose script must not run and whose remote
//! image must not load before "show images", downloads an attachment, and replies
//! with one (the outside world gets it through Postfix); after recovery, replay brings
//! the diverted mail and her sent copy to the origin. Screenshots of the main pages are
//! taken on every run; `LIFEBOAT_SCREENSHOTS=1 cargo test --test web_browser` puts them
//! in docs/screenshots/ for the README.

mod support;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::lifeboat::Lifeboat;
use support::origin::Origin;
use support::postfix::{Postfix, PostfixOptions};

/// Debian's Python, where python3-selenium is installed (a pyenv or venv `python3`
/// earlier in PATH would not have it).
const PYTHON: &str = "/usr/bin/python3";
const WAIT: Duration = Duration::from_secs(60);
const ALICE: &str = "alice@example.test";

const QUICK: &str = "[watch]\nprobe_interval = \"300ms\"\noutage_probe_interval = \"200ms\"\n\
                     retry_interval = \"100ms\"\nprobe_timeout = \"500ms\"\n\
                     recovery_min_duration = \"1s\"\n";

fn state(lifeboat: &Lifeboat) -> String {
    let text = lifeboat.admin(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["origins"][0]["state"].as_str().unwrap().to_string()
}

fn wait_for_state(lifeboat: &Lifeboat, want: &str) {
    let deadline = Instant::now() + WAIT;
    while state(lifeboat) != want {
        assert!(
            Instant::now() < deadline,
            "never {want}:\n{}",
            lifeboat.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn browser_available() -> bool {
    Path::new("/usr/bin/chromium").exists()
        && Path::new("/usr/bin/chromedriver").exists()
        && Command::new(PYTHON)
            .args(["-c", "import selenium"])
            .status()
            .is_ok_and(|s| s.success())
}

fn newsletter(tracker_port: u16, attachment: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
    let html = format!(
        "<html><body><script>parent.document.body.setAttribute('data-pwned','1');document.title='pwned'</script>\
         <p>Hello from the newsletter</p><img src=\"http://127.0.0.1:{tracker_port}/open.gif\" alt=\"pixel\">\
         <img src=\"x\" onerror=\"parent.document.body.setAttribute('data-pwned','2')\">\
         <p style=\"background:url(http://127.0.0.1:{tracker_port}/bg.gif)\">styled</p></body></html>"
    );
    format!(
        "From: News <news@else.test>\r\nTo: alice@example.test\r\nSubject: Newsletter with tracking\r\n\
         Message-ID: <news1@else.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n\
         --b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*=UTF-8''Bericht-Gr%C3%BC%C3%9Fe.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b--\r\n"
    )
    .into_bytes()
}

#[test]
fn a_real_browser_reads_and_replies_during_an_outage_and_the_reply_is_replayed() {
    if !browser_available() {
        // tests/install-deps.sh installs chromium, chromium-driver and python3-selenium.
        panic!("chromium, chromedriver or python3-selenium missing: run tests/install-deps.sh");
    }
    let mut origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.edit_config(|text| format!("{text}\n{QUICK}"));
    lifeboat.add_user_with(ALICE, &[], &["--alternate-email", "alice@home.test"]);
    let mut options = PostfixOptions::new(origin.addr(), outside.addr());
    options.milter = Some(lifeboat.milter_spec());
    options.fallback = Some(lifeboat.fallback);
    let postfix = Postfix::start(&options);
    // The portal on loopback, sending through that Postfix.
    let web = lifeboat.enable_web("127.0.0.1", false);
    let smtpd = postfix.smtpd;
    lifeboat.edit_config(|text| {
        text.replace(
            "[submission]\nlisten = []\ntls_listen = []\n",
            &format!("[submission]\nlisten = []\ntls_listen = []\nrelay = \"smtp://{smtpd}\"\n"),
        )
    });
    lifeboat.start();
    wait_for_state(&lifeboat, "normal");

    // The outage.
    origin.stop();
    wait_for_state(&lifeboat, "outage");
    let tracker_port = support::free_port();
    let attachment: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    postfix
        .send(
            "bob@else.test",
            &[ALICE],
            b"From: Bob <bob@else.test>\r\nTo: alice@example.test\r\nSubject: Diverted during the outage\r\n\
              Message-ID: <diverted1@else.test>\r\n\r\nThis mail is kept safe while the origin is down.\r\n",
        )
        .unwrap();
    postfix
        .send(
            "news@else.test",
            &[ALICE],
            &newsletter(tracker_port, &attachment),
        )
        .unwrap();
    let inbox = lifeboat.wait_for_inbox(ALICE, 2, WAIT);
    assert_eq!(inbox.len(), 2, "{}", postfix.log());
    assert!(
        inbox
            .iter()
            .all(|m| m.class == lifeboat_mailstore::Class::Diverted)
    );

    let work = tempfile::tempdir().unwrap();
    let attachment_file = work.path().join("expected.pdf");
    std::fs::write(&attachment_file, &attachment).unwrap();
    let reply_file = work.path().join("minutes.txt");
    std::fs::write(&reply_file, "Minutes of the outage meeting.\n").unwrap();
    // Screenshots go to docs/screenshots only when asked (they are the README's), so a
    // test run does not rewrite tracked files.
    let shots = if std::env::var_os("LIFEBOAT_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        work.path().join("screenshots")
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web_browser.py");
    let run = Command::new(PYTHON)
        .arg(&script)
        .arg(format!("http://{}", web.0))
        .arg(ALICE)
        .arg("secret")
        .arg(tracker_port.to_string())
        .arg(&attachment_file)
        .arg(&reply_file)
        .arg(&shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.trim_end().ends_with("ok"),
        "browser run failed:\n{stdout}\n{}\n--- serve log ---\n{}",
        String::from_utf8_lossy(&run.stderr),
        lifeboat.log()
    );

    // The reply reached the outside world through Postfix, with its attachment.
    let deadline = Instant::now() + WAIT;
    while !outside
        .messages()
        .iter()
        .any(|m| m.text().contains("Sent from the Lifeboat web portal"))
    {
        assert!(
            Instant::now() < deadline,
            "the reply never left Postfix:\n{}",
            postfix.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    let reply = outside
        .messages()
        .into_iter()
        .find(|m| m.text().contains("Sent from the Lifeboat web portal"))
        .unwrap();
    assert_eq!(reply.rcpt_to, ["news@else.test"]);
    assert!(reply.text().contains("minutes.txt"));

    // Recovery: replay brings the diverted mail and the sent copy to the origin.
    origin.start();
    wait_for_state(&lifeboat, "normal");
    let deadline = Instant::now() + WAIT;
    loop {
        let texts: Vec<String> = origin.messages().iter().map(|m| m.text()).collect();
        let diverted = texts
            .iter()
            .any(|t| t.contains("kept safe while the origin is down"));
        let sent = texts.iter().any(|t| {
            t.contains("\r\nX-Lifeboat-Sent: ") && t.contains("Sent from the Lifeboat web portal")
        });
        if diverted && sent {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not replayed: {texts:?}\n{}",
            lifeboat.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    for page in [
        "login",
        "inbox",
        "message",
        "compose",
        "settings",
        "mail-app",
        "phone-inbox",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "{page}.png");
    }
}
