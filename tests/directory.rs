//! Directory sync against a real OpenLDAP `slapd` (StartTLS with a test CA): what a
//! sync adds, changes, disables and skips, that a dry run changes nothing, that a user
//! gone from the directory keeps their mail, that an unreachable directory changes
//! nothing, paged search past the server's size limit, the protected group, and Active
//! Directory style entries (`proxyAddresses`, `userAccountControl`).

mod support;

use std::net::SocketAddr;
use std::process::Output;
use std::time::Instant;

use lifeboat_mailstore::{Class, UserSource};
use support::lifeboat::{Lifeboat, message};
use support::slapd::{Person, SERVICE_DN, SUFFIX, Slapd};

/// A Lifeboat (not started) whose `[directory]` is this slapd, over StartTLS trusting
/// the test CA, with `extra` lines in the section.
fn lifeboat_for(slapd: &Slapd, extra: &str) -> Lifeboat {
    let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let lifeboat = Lifeboat::new(origin);
    let section = directory_section(slapd, extra);
    lifeboat.edit_config(|text| format!("{text}\n{section}"));
    lifeboat
}

fn directory_section(slapd: &Slapd, extra: &str) -> String {
    format!(
        "[directory]\nurl = \"{url}\"\nca_file = \"{ca}\"\nbind_dn = \"{SERVICE_DN}\"\n\
         bind_password_file = \"{password}\"\nbase = \"ou=people,{SUFFIX}\"\n\
         disabled_filter = \"(employeeType=disabled)\"\n\
         alternate_email_attribute = \"otherMailbox\"\n{extra}",
        url = slapd.url(),
        ca = slapd.tls.ca.display(),
        password = slapd.service_password_file().display(),
    )
}

fn run(lifeboat: &Lifeboat, args: &[&str]) -> Output {
    lifeboat.command().args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn people() -> String {
    Slapd::people_ldif(&[
        Person {
            aliases: &["sales@example.test"],
            other_mailbox: Some("ann@home.example"),
            ..Person::new("ann", "ann@example.test", "ann-pw")
        },
        Person::new("bob", "bob@example.test", "bob-pw"),
        Person {
            disabled: true,
            ..Person::new("carol", "carol@example.test", "carol-pw")
        },
        // Claims the alias of a user added by hand.
        Person {
            aliases: &["help@example.test"],
            ..Person::new("eve", "eve@example.test", "eve-pw")
        },
        // A domain no origin has.
        Person::new("frank", "frank@elsewhere.test", "frank-pw"),
        // Two entries claiming one alias: neither is taken.
        Person {
            aliases: &["team@example.test"],
            ..Person::new("gus", "gus@example.test", "gus-pw")
        },
        Person {
            aliases: &["team@example.test"],
            ..Person::new("hal", "hal@example.test", "hal-pw")
        },
        // No mail attribute at all: the default user filter does not even see it.
        Person {
            mail: None,
            ..Person::new("ida", "", "ida-pw")
        },
    ])
}

#[test]
fn sync_adds_changes_disables_and_skips_as_the_directory_says() {
    let mut slapd = Slapd::new();
    slapd.load(&people());
    slapd.start();
    let lifeboat = lifeboat_for(&slapd, "");
    lifeboat.add_user("local@example.test", &["help@example.test"]);

    // A dry run says what it would do and does nothing.
    let out = run(&lifeboat, &["directory", "sync", "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("would add      ann@example.test"), "{text}");
    assert!(
        text.contains("would add      carol@example.test (disabled)"),
        "{text}"
    );
    assert!(text.contains("dry run, nothing changed: 3 added"), "{text}");
    let reader = lifeboat.store().reader().unwrap();
    assert_eq!(reader.users().unwrap().len(), 1, "only the local user");
    assert!(!lifeboat.user_dir("ann@example.test").exists());
    assert_eq!(reader.directory_syncs().unwrap(), (None, None));

    // The real sync.
    let text = lifeboat.admin(&["directory", "sync"]);
    assert!(
        text.contains("3 added, 0 changed, 0 disabled, 4 skipped"),
        "{text}"
    );
    let skipped = |dn: &str, why: &str| {
        assert!(
            text.lines()
                .any(|l| l.starts_with("skip") && l.contains(dn) && l.contains(why)),
            "{dn}: {why}\n{text}"
        )
    };
    skipped(
        "uid=eve,",
        "help@example.test already belongs to local@example.test",
    );
    skipped(
        "uid=frank,",
        "frank@elsewhere.test is not in any [[origin]]'s domains",
    );
    skipped("uid=gus,", "team@example.test is also claimed by uid=hal");
    skipped("uid=hal,", "team@example.test is also claimed by uid=gus");

    let reader = lifeboat.store().reader().unwrap();
    let ann = reader.user("ann@example.test").unwrap().unwrap();
    assert_eq!(ann.source, UserSource::Directory);
    assert_eq!(
        ann.directory_dn.as_deref(),
        Some("uid=ann,ou=people,dc=example,dc=test")
    );
    assert_eq!(ann.aliases, ["sales@example.test"]);
    assert_eq!(ann.alternate_email.as_deref(), Some("ann@home.example"));
    assert!(ann.active);
    assert!(reader.user("bob@example.test").unwrap().unwrap().active);
    assert!(!reader.user("carol@example.test").unwrap().unwrap().active);
    assert!(reader.user("eve@example.test").unwrap().is_none());
    let local = reader.user("local@example.test").unwrap().unwrap();
    assert_eq!(local.source, UserSource::Local);
    assert_eq!(local.aliases, ["help@example.test"]);
    assert!(lifeboat.user_dir("ann@example.test").join("cur").is_dir());

    // bob has mail, then leaves the directory; ann's alias changes.
    lifeboat.deliver_offline("bob@example.test", [(message(1), Class::Diverted)]);
    slapd.delete("uid=bob,ou=people,dc=example,dc=test");
    slapd.modify(
        "dn: uid=ann,ou=people,dc=example,dc=test\nchangetype: modify\n\
         replace: mailAlternateAddress\nmailAlternateAddress: orders@example.test\n",
    );
    let text = lifeboat.admin(&["directory", "sync"]);
    assert!(
        text.contains("disable  bob@example.test: gone from the directory"),
        "{text}"
    );
    assert!(
        text.contains("change   ann@example.test: aliases"),
        "{text}"
    );
    let reader = lifeboat.store().reader().unwrap();
    let bob = reader.user("bob@example.test").unwrap().unwrap();
    assert!(!bob.active, "disabled, never deleted");
    assert_eq!(
        lifeboat.inbox("bob@example.test").len(),
        1,
        "his mail stays"
    );
    assert_eq!(
        reader.user("ann@example.test").unwrap().unwrap().aliases,
        ["orders@example.test"]
    );
    assert!(reader.user("local@example.test").unwrap().unwrap().active);

    let status = lifeboat.admin(&["status"]);
    assert!(
        status.contains("last sync: ok at")
            && status.contains("0 added, 1 changed, 1 disabled, 4 skipped"),
        "{status}"
    );

    // The directory goes away: nothing changes, the last good sync stands.
    slapd.stop();
    let out = run(&lifeboat, &["directory", "sync"]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = lifeboat.store().reader().unwrap();
    assert!(reader.user("ann@example.test").unwrap().unwrap().active);
    assert_eq!(reader.users().unwrap().len(), 4);
    let status = lifeboat.admin(&["status"]);
    assert!(status.contains("last sync: FAILED at"), "{status}");
    assert!(status.contains("last good sync: "), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&lifeboat.admin(&["status", "--json"])).unwrap();
    assert_eq!(json["directory"]["last_sync"]["ok"], false);
    assert_eq!(json["directory"]["last_good_sync"]["disabled"], 1);
}

#[test]
fn only_members_of_the_protected_group_stay_enabled() {
    let mut slapd = Slapd::new();
    slapd.load(&Slapd::people_ldif(&[
        Person::new("ann", "ann@example.test", "x"),
        Person::new("bob", "bob@example.test", "x"),
    ]));
    slapd.load(&Slapd::group_ldif(
        "continuity",
        &["uid=ann,ou=people,dc=example,dc=test".to_string()],
    ));
    slapd.start();
    let group = Slapd::group_dn("continuity");
    let lifeboat = lifeboat_for(&slapd, &format!("group = \"{group}\"\n"));
    lifeboat.admin(&["directory", "sync"]);
    let reader = lifeboat.store().reader().unwrap();
    assert!(reader.user("ann@example.test").unwrap().unwrap().active);
    assert!(!reader.user("bob@example.test").unwrap().unwrap().active);

    // A group that is not there is a failed read, not "nobody is a member".
    lifeboat.edit_config(|text| text.replace("cn=continuity,", "cn=nonesuch,"));
    let out = run(&lifeboat, &["directory", "sync"]);
    assert!(!out.status.success());
    assert!(
        lifeboat
            .store()
            .reader()
            .unwrap()
            .user("ann@example.test")
            .unwrap()
            .unwrap()
            .active
    );
}

#[test]
fn active_directory_entries_use_proxy_addresses_and_user_account_control() {
    let mut slapd = Slapd::new();
    slapd.load(&Slapd::people_ldif(&[
        Person {
            mail: Some("ivy.old@example.test"),
            proxy_addresses: &[
                "SMTP:Ivy@example.test",
                "smtp:ivy.sales@example.test",
                "X500:/o=Example/ou=Exchange/cn=Recipients/cn=ivy",
            ],
            account_control: Some(512),
            ..Person::new("ivy", "", "ivy-pw")
        },
        Person {
            proxy_addresses: &["SMTP:jim@example.test"],
            account_control: Some(514),
            ..Person::new("jim", "jim@example.test", "jim-pw")
        },
    ]));
    slapd.start();
    let lifeboat = lifeboat_for(
        &slapd,
        "kind = \"active-directory\"\nuser_filter = \"(&(objectClass=inetOrgPerson)(proxyAddresses=*))\"\n",
    );
    let text = lifeboat.admin(&["directory", "sync"]);
    assert!(text.contains("2 added"), "{text}");
    let reader = lifeboat.store().reader().unwrap();
    let ivy = reader.user("Ivy@example.test").unwrap().unwrap();
    assert_eq!(
        ivy.address.as_str(),
        "Ivy@example.test",
        "SMTP: is the primary"
    );
    assert_eq!(
        ivy.aliases,
        ["ivy.old@example.test", "ivy.sales@example.test"]
    );
    assert!(ivy.active);
    let jim = reader.user("jim@example.test").unwrap().unwrap();
    assert!(!jim.active, "userAccountControl 514 has ACCOUNTDISABLE set");
}

/// More entries than slapd's size limit (500 here) come back whole only with paged
/// results. `LIFEBOAT_DIRECTORY_ENTRIES` sets the count (default 1,200), for measuring
/// large directories: the test prints how long the sync took.
#[test]
fn paged_search_reads_past_the_size_limit() {
    let count: usize = std::env::var("LIFEBOAT_DIRECTORY_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1200);
    let names: Vec<(String, String)> = (0..count)
        .map(|n| (format!("user{n:05}"), format!("user{n:05}@example.test")))
        .collect();
    let people: Vec<Person> = names
        .iter()
        .map(|(uid, mail)| Person::new(uid, mail, "pw"))
        .collect();
    let mut slapd = Slapd::new();
    slapd.load(&Slapd::people_ldif(&people));
    slapd.start();
    let lifeboat = lifeboat_for(&slapd, "page_size = 200\n");
    let started = Instant::now();
    let text = lifeboat.admin(&["directory", "sync"]);
    let first = started.elapsed();
    assert!(text.contains(&format!("{count} added")), "{text}");
    let started = Instant::now();
    let text = lifeboat.admin(&["directory", "sync"]);
    let again = started.elapsed();
    assert!(text.contains(&format!("{count} unchanged")), "{text}");
    eprintln!(
        "directory sync of {count} entries: first (adds every user) {:.2} s, again (no change) {:.2} s",
        first.as_secs_f64(),
        again.as_secs_f64()
    );
    assert_eq!(
        lifeboat.store().reader().unwrap().users().unwrap().len(),
        count
    );
}

/// One IMAP LOGIN over the plain loopback listener (plaintext is allowed on loopback);
/// whether it succeeded.
fn imap_login(lifeboat: &Lifeboat, user: &str, password: &str) -> bool {
    let mut imap = support::raw::Raw::connect(lifeboat.imap.unwrap().0);
    assert!(imap.line().starts_with("* OK"));
    imap.send(format!("a LOGIN \"{user}\" \"{password}\"\r\n").as_bytes());
    loop {
        let line = imap.line();
        assert!(!line.is_empty(), "connection closed during LOGIN");
        if let Some(answer) = line.strip_prefix("a ") {
            return answer.starts_with("OK");
        }
    }
}

fn cached_verifier(lifeboat: &Lifeboat, user: &str) -> Option<String> {
    let reader = lifeboat.store().reader().unwrap();
    reader.user(user).unwrap().unwrap().cached_verifier
}

/// `[auth] backend = "directory"`: a login binds to slapd as the user. The password the
/// directory accepts is cached and works while slapd is down; a password the directory
/// refuses never works, not even from an older cache.
#[test]
fn directory_logins_are_cached_and_a_refusal_beats_the_cache() {
    let mut slapd = Slapd::new();
    slapd.load(&Slapd::people_ldif(&[
        Person::new("ann", "ann@example.test", "ann-first"),
        Person::new("bob", "bob@example.test", "bob-pw"),
    ]));
    slapd.start();
    let mut lifeboat = lifeboat_for(&slapd, "");
    lifeboat.add_user("local@example.test", &[]);
    lifeboat.admin(&["directory", "sync"]);
    lifeboat.enable_imap("127.0.0.1", false, true);
    lifeboat.edit_config(|text| {
        text.replace(
            "[auth]\nallow_plaintext = false\n",
            "[auth]\nallow_plaintext = false\nbackend = \"directory\"\n\
             source_timeout = \"2s\"\nsource_retry_after = \"1s\"\n",
        )
    });
    lifeboat.start();
    let ann = "ann@example.test";

    let readiness = lifeboat.admin(&["user", "list", "--readiness"]);
    assert!(
        readiness.contains("1 of 3 users ready; 2 have never logged in"),
        "{readiness}"
    );

    assert!(!imap_login(&lifeboat, ann, "wrong"), "a wrong password");
    assert_eq!(cached_verifier(&lifeboat, ann), None);
    assert!(
        imap_login(&lifeboat, ann, "ann-first"),
        "the directory's password"
    );
    assert!(
        cached_verifier(&lifeboat, ann).is_some(),
        "and it is cached"
    );
    assert!(
        imap_login(&lifeboat, "local@example.test", "secret"),
        "a user added by hand keeps the local password"
    );

    // The directory is down: the cached password works, nothing else does.
    slapd.stop();
    let started = Instant::now();
    assert!(
        imap_login(&lifeboat, ann, "ann-first"),
        "cached while slapd is down"
    );
    assert!(
        started.elapsed().as_secs() < 2 + 1,
        "waits at most source_timeout: {:?}",
        started.elapsed()
    );
    assert!(
        !imap_login(&lifeboat, ann, "guess"),
        "a wrong one still fails"
    );
    assert!(
        !imap_login(&lifeboat, "bob@example.test", "bob-pw"),
        "bob never logged in: nothing cached to check"
    );

    // Back up; the password changes in the directory: the old one is refused at once,
    // and its cached copy is dropped, so it does not come back in the next outage.
    slapd.start();
    slapd.set_password("uid=ann,ou=people,dc=example,dc=test", "ann-second");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // source_retry_after
    assert!(
        !imap_login(&lifeboat, ann, "ann-first"),
        "the old password is refused"
    );
    assert_eq!(
        cached_verifier(&lifeboat, ann),
        None,
        "the stale cache is dropped"
    );
    slapd.stop();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(
        !imap_login(&lifeboat, ann, "ann-first"),
        "not even while slapd is down"
    );
    slapd.start();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(imap_login(&lifeboat, ann, "ann-second"));

    // Lockouts apply to directory logins too: after bob's failures from this address,
    // even his right password is refused here, and the directory is not the one to say.
    for _ in 0..5 {
        assert!(!imap_login(&lifeboat, "bob@example.test", "guess"));
    }
    assert!(!imap_login(&lifeboat, "bob@example.test", "bob-pw"));
    assert!(
        lifeboat
            .log()
            .contains("login refused: locked out after failures")
    );
    assert_eq!(cached_verifier(&lifeboat, "bob@example.test"), None);

    let json: serde_json::Value =
        serde_json::from_str(&lifeboat.admin(&["user", "list", "--readiness", "--json"])).unwrap();
    let users = json["users"].as_array().unwrap();
    let ann_row = users.iter().find(|u| u["address"] == ann).unwrap();
    assert_eq!(ann_row["login"], "cached_password");
    assert_eq!(ann_row["ready"], true);
    assert!(ann_row["last_login"].is_string());
    let bob_row = users
        .iter()
        .find(|u| u["address"] == "bob@example.test")
        .unwrap();
    assert_eq!(bob_row["login"], "no_password");
    assert_eq!(
        json["summary"],
        "2 of 3 users ready; 1 have never logged in (no cached password); 3 without an alternate address"
    );
}

/// `serve` syncs once at start and then every `sync_interval`.
#[test]
fn serve_syncs_at_start_and_every_interval() {
    let mut slapd = Slapd::new();
    slapd.load(&Slapd::people_ldif(&[Person::new(
        "ann",
        "ann@example.test",
        "x",
    )]));
    slapd.start();
    let mut lifeboat = lifeboat_for(&slapd, "sync_interval = \"1s\"\n");
    lifeboat.start();
    let has = |user: &str| {
        let deadline = Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let found = lifeboat.store().reader().unwrap().user(user).unwrap();
            if found.as_ref().is_some_and(|u| u.active) || Instant::now() > deadline {
                return found.is_some_and(|u| u.active);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    assert!(
        has("ann@example.test"),
        "synced at start:\n{}",
        lifeboat.log()
    );
    slapd.modify(
        &Slapd::people_ldif(&[Person::new("bob", "bob@example.test", "x")]).replace(
            "dn: uid=bob,ou=people,dc=example,dc=test\n",
            "dn: uid=bob,ou=people,dc=example,dc=test\nchangetype: add\n",
        ),
    );
    assert!(has("bob@example.test"), "synced again:\n{}", lifeboat.log());
    assert!(lifeboat.log().contains("directory sync done"));
}
