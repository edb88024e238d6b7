//! What the README tells an admin to copy works as written: `contrib/postfix/main.cf`
//! and `master.cf` applied with `postconf` to a real Postfix (only the addresses, ports
//! and domains of this test substituted), and `lifeboat config check` on
//! `contrib/lifeboat.toml`.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use lifeboat_mailstore::Class;
use support::lifeboat::{Lifeboat, message};
use support::origin::Origin;
use support::postfix::{Postfix, PostfixOptions};

const WAIT: Duration = Duration::from_secs(30);

fn contrib(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `name = value` settings of a main.cf snippet (comments and blank lines skipped).
fn settings(main_cf: &str) -> Vec<(String, String)> {
    main_cf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (name, value) = l.split_once('=').unwrap();
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect()
}

/// The service line and its `-o` options from the master.cf snippet.
fn service(master_cf: &str) -> (String, Vec<String>) {
    let mut lines = master_cf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty());
    let entry = lines.next().expect("a service line").to_string();
    let options = lines
        .map(|l| {
            l.trim()
                .strip_prefix("-o ")
                .expect("an -o line")
                .to_string()
        })
        .collect();
    (entry, options)
}

#[test]
fn the_contrib_postfix_snippets_attach_lifeboat_to_a_real_postfix() {
    let mut origin = Origin::new();
    let outside = Origin::new();
    let mut lifeboat = Lifeboat::new(origin.addr());
    lifeboat.edit_config(|text| {
        format!(
            "{text}\n[watch]\nprobe_interval = \"1h\"\noutage_probe_interval = \"200ms\"\n\
             retry_interval = \"100ms\"\nprobe_timeout = \"500ms\"\n"
        )
    });
    lifeboat.add_user("alice@example.test", &[]);
    lifeboat.start();
    // A plain gateway: no milter, no fallback relay, until the snippets add them.
    let postfix = Postfix::start(&PostfixOptions::new(origin.addr(), outside.addr()));
    let etc = postfix.config_dir();

    // main.cf, as the README says: merge the lines (here with `postconf -e`).
    let milter = lifeboat.milter_spec();
    let transport = etc.join("lifeboat-transport");
    let substituted: Vec<(String, String)> = settings(&contrib("postfix/main.cf"))
        .into_iter()
        .map(|(name, value)| {
            let value = value
                .replace("inet:127.0.0.1:8891", &milter)
                .replace(
                    "hash:/etc/postfix/transport",
                    &format!("texthash:{}", transport.display()),
                )
                .replace("example.com, example.org", "example.test");
            (name, value)
        })
        .collect();
    for (name, value) in &substituted {
        let out = postfix
            .tool("postconf")
            .arg("-e")
            .arg(format!("{name} = {value}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "postconf -e {name}: {out:?}");
    }
    // The transport map the snippet's comment describes, pointing at this test's origin.
    fs::write(
        &transport,
        format!(
            "example.test lifeboat-origin:[127.0.0.1]:{}\n* smtp:[127.0.0.1]:{}\n",
            origin.addr().port(),
            outside.addr().port()
        ),
    )
    .unwrap();

    // master.cf: the service as written, with this test's fallback port.
    let (entry, options) = service(&contrib("postfix/master.cf"));
    let fields: Vec<&str> = entry.split_whitespace().collect();
    assert_eq!(fields[0], "lifeboat-origin");
    let out = postfix
        .tool("postconf")
        .arg("-M")
        .arg(format!("lifeboat-origin/unix={}", fields.join(" ")))
        .output()
        .unwrap();
    assert!(out.status.success(), "postconf -M: {out:?}");
    for option in &options {
        let option = option.replace(
            "[127.0.0.1]:10026",
            &format!("[127.0.0.1]:{}", lifeboat.fallback.port()),
        );
        let out = postfix
            .tool("postconf")
            .arg("-P")
            .arg(format!("lifeboat-origin/unix/{option}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "postconf -P {option}: {out:?}");
    }

    // `postfix check` accepts it, and `postconf -n` shows every setting of the snippet.
    let check = postfix.tool("postfix").arg("check").output().unwrap();
    assert!(check.status.success(), "postfix check: {check:?}");
    let shown = postfix.tool("postconf").arg("-n").output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    for (name, value) in &substituted {
        assert!(
            shown.lines().any(|l| l == format!("{name} = {value}")),
            "postconf -n lacks `{name} = {value}`:\n{shown}"
        );
    }
    let reload = postfix.tool("postfix").arg("reload").output().unwrap();
    assert!(reload.status.success(), "postfix reload: {reload:?}");
    std::thread::sleep(Duration::from_secs(1));

    // The milter sees mail: a journal copy while the origin is up.
    postfix
        .send("sender@else.test", &["alice@example.test"], &message(1))
        .unwrap();
    assert!(origin.wait_for_messages(1, WAIT), "{}", postfix.log());
    let inbox = lifeboat.wait_for_inbox("alice@example.test", 1, WAIT);
    assert_eq!(inbox.len(), 1, "{}", lifeboat.log());
    assert_eq!(inbox[0].class, Class::Journal);

    // The origin dies: the lifeboat-origin transport hands the next message to the
    // fallback relay, which has the origin judged and keeps it.
    origin.stop();
    postfix
        .send("sender@else.test", &["alice@example.test"], &message(2))
        .unwrap();
    assert!(
        postfix.wait_queue_empty(WAIT),
        "queue: {:?}\n{}\n{}",
        postfix.queue(),
        postfix.log(),
        lifeboat.log()
    );
    let inbox = lifeboat.wait_for_inbox("alice@example.test", 2, WAIT);
    assert_eq!(inbox.len(), 2, "{}", lifeboat.log());
    assert_eq!(inbox[1].class, Class::Diverted);
    assert!(
        postfix.log().contains("postfix/lifeboat-origin"),
        "the syslog_name of the snippet's service shows in the log:\n{}",
        postfix.log()
    );
}

#[test]
fn lifeboat_config_check_accepts_the_contrib_configuration() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/lifeboat.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--config")
        .arg(&path)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": ok"),
        "{out:?}"
    );
}
