//! `lifeboat user invite` through a real Postfix to a sink playing the origin, and the
//! readiness numbers it works from (`user list --readiness`, `lifeboat_users{state}`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use lifeboat_mailstore::Address;
use lifeboat_mailstore::directory_sync::{DirectoryUser, SyncInput};
use support::free_port;
use support::lifeboat::Lifeboat;
use support::origin::Origin;
use support::postfix::{Postfix, PostfixOptions};

fn directory_user(local: &str) -> DirectoryUser {
    DirectoryUser {
        dn: format!("uid={local},ou=people,dc=example,dc=test"),
        address: Address::parse(&format!("{local}@example.test")).unwrap(),
        aliases: vec![],
        alternate_email: None,
        disabled: None,
    }
}

#[test]
fn invitations_go_through_postfix_once_per_interval_to_unready_users() {
    let origin = Origin::new();
    let outside = Origin::new();
    let postfix = Postfix::start(&PostfixOptions::new(origin.addr(), outside.addr()));
    let lifeboat = Lifeboat::new(origin.addr());
    let metrics_port = free_port();
    lifeboat.edit_config(|text| {
        text.replace(
            "[submission]\nlisten = []\n",
            &format!("[submission]\nrelay = \"smtp://{}\"\nlisten = []\n", postfix.smtpd),
        )
        .replace(
            "[imap]\nlisten = []\ntls_listen = []\n",
            "[imap]\nlisten = []\ntls_listen = [\"127.0.0.1:1993\"]\n",
        ) + &format!(
            "\n[auth]\nbackend = \"directory\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n\
             [directory]\nurl = \"ldap://127.0.0.1:9\"\nbind_dn = \"cn=x\"\n\
             bind_password_file = \"/nonexistent\"\nbase = \"dc=example,dc=test\"\n"
        )
    });
    lifeboat.add_user("alice@example.test", &[]);
    // Two users as directory sync leaves them: no password until they log in once.
    lifeboat
        .store()
        .sync_directory(
            SyncInput {
                users: vec![directory_user("ann"), directory_user("bob")],
                skipped: vec![],
            },
            true,
            1,
            1,
        )
        .unwrap();

    let text = lifeboat.admin(&["user", "list", "--readiness"]);
    assert!(
        text.contains("1 of 3 users ready; 2 have never logged in (no cached password); 3 without an alternate address"),
        "{text}"
    );

    let text = lifeboat.admin(&["user", "invite", "--unready"]);
    assert!(text.contains("invited  ann@example.test"), "{text}");
    assert!(text.contains("invited  bob@example.test"), "{text}");
    assert!(!text.contains("alice"), "alice is ready: {text}");
    assert!(
        origin.wait_for_messages(2, Duration::from_secs(30)),
        "Postfix delivered both"
    );
    let messages = origin.messages();
    let ann = messages
        .iter()
        .find(|m| m.rcpt_to == ["ann@example.test"])
        .expect("ann's invitation");
    let body = ann.text();
    assert!(body.contains("Subject: Please log in once"), "{body}");
    assert!(body.contains("server:   lifeboat.test"), "{body}");
    assert!(body.contains("username: ann@example.test"), "{body}");
    assert!(body.contains("port 1993 (TLS)"), "{body}");
    assert_eq!(ann.mail_from, "lifeboat@lifeboat.test");

    // Rate-limited: a second run holds both back; --force re-sends one.
    let text = lifeboat.admin(&["user", "invite", "--unready"]);
    assert!(text.contains("0 invited, 2 held back"), "{text}");
    let text = lifeboat.admin(&["user", "invite", "ann@example.test", "--force"]);
    assert!(text.contains("1 invited"), "{text}");
    assert!(origin.wait_for_messages(3, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(origin.messages().len(), 3);

    let out = lifeboat
        .command()
        .args(["user", "invite", "nobody@example.test"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = lifeboat
        .command()
        .args(["user", "invite"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "nothing to invite named");

    // The same numbers as a metric.
    let mut lifeboat = lifeboat;
    lifeboat.start();
    let mut stream = TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("lifeboat_users{state=\"no_password\"} 2"),
        "{answer}"
    );
    assert!(
        answer.contains("lifeboat_users{state=\"local_password\"} 1"),
        "{answer}"
    );
    assert!(
        answer.contains("lifeboat_users{state=\"cached_password\"} 0"),
        "{answer}"
    );
}
