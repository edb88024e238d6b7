//! The `lifeboat` command as an admin uses it: real binary, real store in a temp dir.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lifeboat_mailstore::{Address, Class, NewMessage, Store, password, synthetic};
use predicates::prelude::*;
use serde_json::Value;

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("lifeboat.toml");
        fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\nhostname = \"continuity.example.test\"\nuser = \"{}\"\n\n\
                 [[origin]]\nname = \"main\"\naddress = \"smtp://127.0.0.1:2526\"\ndomains = [\"example.test\"]\n\n\
                 [[origin]]\nname = \"branch\"\naddress = \"lmtp://127.0.0.1:2424\"\ndomains = [\"branch.test\"]\n",
                dir.path().join("data").display(),
                current_account()
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn lifeboat(&self) -> Command {
        let mut cmd = Command::cargo_bin("lifeboat").unwrap();
        cmd.env("LIFEBOAT_CONFIG", &self.config);
        cmd
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn store(&self) -> Store {
        Store::open(&self.data_dir(), "continuity.example.test").unwrap()
    }

    fn add_user(&self, address: &str, password: &str) {
        self.lifeboat()
            .args(["user", "add", address, "--password-stdin"])
            .write_stdin(format!("{password}\n"))
            .assert()
            .success();
    }

    fn users_json(&self) -> Vec<Value> {
        let out = self
            .lifeboat()
            .args(["user", "list", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Stores a copy for `user` through the store's delivery path (as `serve` would).
    fn deliver(&self, user: &str, class: Class) -> lifeboat_mailstore::Stored {
        let store = self.store();
        store.lock_for_delivery().unwrap();
        let owner = Address::parse(user).unwrap();
        store
            .deliver(NewMessage::new(
                owner,
                "INBOX",
                synthetic::message(1),
                class,
            ))
            .unwrap()
    }

    fn stored_hash(&self, address: &str) -> String {
        self.store()
            .reader()
            .unwrap()
            .user(address)
            .unwrap()
            .unwrap()
            .password_hash
    }
}

/// The account running the tests: admin commands then run as it without switching.
fn current_account() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .expect("the test runs as a named account")
        .name
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn user_lifecycle() {
    let s = Setup::new();
    s.lifeboat()
        .args([
            "user",
            "add",
            "Alice@EXAMPLE.test",
            "--password-stdin",
            "--alias",
            "sales@example.test",
        ])
        .args(["--alternate-email", "alice@home.example"])
        .write_stdin("first secret\n")
        .assert()
        .success()
        .stdout(predicate::str::contains("added Alice@example.test"));
    let users = s.users_json();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["address"], "Alice@example.test");
    assert_eq!(users[0]["aliases"][0], "sales@example.test");
    assert_eq!(users[0]["alternate_email"], "alice@home.example");
    assert_eq!(users[0]["active"], true);
    let hash = s.stored_hash("alice@example.test");
    assert!(hash.starts_with("{ARGON2ID}"));
    assert!(password::verify(&hash, "first secret"));
    assert!(!hash.contains("first secret"));

    let folders: Vec<_> = [".Sent", ".Drafts", ".Trash", ".Junk", ".Archive", "cur"]
        .iter()
        .map(|f| s.data_dir().join("mail/example.test/Alice").join(f))
        .collect();
    assert!(
        folders.iter().all(|f| f.is_dir()),
        "standard folders created"
    );

    // The same address (any case) or an alias of it cannot be taken again.
    s.lifeboat()
        .args(["user", "add", "alice@example.test", "--password-stdin"])
        .write_stdin("x\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already a user"));
    s.lifeboat()
        .args(["user", "add", "sales@example.test", "--password-stdin"])
        .write_stdin("x\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "already an alias of Alice@example.test",
        ));
    // Only domains of a configured origin are protected.
    s.lifeboat()
        .args(["user", "add", "eve@elsewhere.test", "--password-stdin"])
        .write_stdin("x\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a domain of any [[origin]]"));
    // No password on a non-terminal stdin without --password-stdin; empty passwords refused.
    s.lifeboat()
        .args(["user", "add", "bob@example.test"])
        .assert()
        .code(1);
    s.lifeboat()
        .args(["user", "add", "bob@example.test", "--password-stdin"])
        .write_stdin("\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("empty"));

    s.lifeboat()
        .args(["user", "passwd", "alice@example.test", "--password-stdin"])
        .write_stdin("second secret\n")
        .assert()
        .success();
    let hash = s.stored_hash("alice@example.test");
    assert!(password::verify(&hash, "second secret") && !password::verify(&hash, "first secret"));

    s.lifeboat()
        .args(["user", "disable", "alice@example.test"])
        .assert()
        .success();
    assert_eq!(s.users_json()[0]["active"], false);
    s.lifeboat()
        .args(["user", "enable", "alice@example.test"])
        .assert()
        .success();
    assert_eq!(s.users_json()[0]["active"], true);

    s.lifeboat()
        .args(["alias", "add", "info@example.test", "alice@example.test"])
        .assert()
        .success();
    s.lifeboat()
        .args(["alias", "del", "sales@example.test"])
        .assert()
        .success();
    assert_eq!(
        s.users_json()[0]["aliases"],
        serde_json::json!(["info@example.test"])
    );
    s.lifeboat()
        .args(["alias", "del", "sales@example.test"])
        .assert()
        .code(1);

    s.lifeboat()
        .args(["user", "del", "alice@example.test"])
        .assert()
        .success();
    assert!(s.users_json().is_empty());
    assert!(!s.data_dir().join("mail/example.test/Alice").exists());
    assert!(
        s.data_dir().join("deleted/example.test").is_dir(),
        "mail is moved aside, not destroyed"
    );
    s.lifeboat()
        .args(["user", "del", "alice@example.test"])
        .assert()
        .code(1);
}

#[test]
fn user_with_mail_waiting_for_replay_is_only_deleted_with_force() {
    let s = Setup::new();
    s.add_user("carl@example.test", "pw");
    s.deliver("carl@example.test", Class::Diverted);
    s.lifeboat()
        .args(["user", "del", "carl@example.test"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 copies not yet replayed"));
    s.lifeboat()
        .args(["user", "del", "carl@example.test", "--force"])
        .assert()
        .success();
}

#[test]
fn import_good_file_keeps_dovecot_hashes() {
    let s = Setup::new();
    s.lifeboat()
        .args(["user", "import"])
        .arg(fixture("import/good.csv"))
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 5 users"));
    let users = s.users_json();
    assert_eq!(users.len(), 5);
    let reader = s.store().reader().unwrap();
    for (address, pw) in [
        ("alice@example.test", "alice-plain-Pa55"),
        ("bob@example.test", "bob-sha512-secret"),
        ("carol@example.test", "carol-bcrypt-secret"),
        ("dave@example.test", "dave-argon2-secret"),
        ("erin@example.test", "erin-sha256-secret"),
    ] {
        let user = reader.user(address).unwrap().unwrap();
        assert!(
            password::verify(&user.password_hash, pw),
            "{address} does not verify"
        );
        assert!(
            !password::verify(&user.password_hash, "wrong"),
            "{address} verifies a wrong password"
        );
    }
    assert!(
        reader
            .user("bob@example.test")
            .unwrap()
            .unwrap()
            .password_hash
            .starts_with("{SHA512-CRYPT}$6$")
    );
    assert!(!reader.user("erin@example.test").unwrap().unwrap().active);
    assert_eq!(
        reader
            .resolve("postmaster@example.test")
            .unwrap()
            .unwrap()
            .address
            .as_str(),
        "alice@example.test"
    );
}

#[test]
fn import_with_a_bad_row_imports_nothing_and_names_the_line() {
    let s = Setup::new();
    s.lifeboat()
        .args(["user", "import"])
        .arg(fixture("import/bad-row.csv"))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("bad-row.csv:5:").and(predicate::str::contains("ARGON2ID")),
        );
    assert!(s.users_json().is_empty());

    // A row that clashes with the store (not the file) also stops the whole import.
    s.add_user("carol@example.test", "pw");
    s.lifeboat()
        .args(["user", "import"])
        .arg(fixture("import/good.csv"))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("good.csv:4:").and(predicate::str::contains("already a user")),
        );
    assert_eq!(s.users_json().len(), 1);

    // And so does a row outside the protected domains.
    let csv = s.dir.path().join("outside.csv");
    fs::write(
        &csv,
        "address,password,password_hash,aliases,active,alternate_email\n\
         ok@example.test,pw,,,,\nx@elsewhere.test,pw,,,,\n",
    )
    .unwrap();
    s.lifeboat()
        .args(["user", "import"])
        .arg(&csv)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("outside.csv:3:"));
    assert_eq!(s.users_json().len(), 1);
}

#[test]
fn store_check_reports_and_repairs() {
    let s = Setup::new();
    s.add_user("dora@example.test", "pw");
    let stored = s.deliver("dora@example.test", Class::Journal);
    s.lifeboat()
        .args(["store", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("consistent"));
    fs::remove_file(&stored.path).unwrap();
    s.lifeboat()
        .args(["store", "check"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("UID 1: file is missing"));
    s.lifeboat()
        .args(["store", "check", "--repair"])
        .assert()
        .success();
    s.lifeboat().args(["store", "check"]).assert().success();
}

#[test]
fn store_repair_refuses_while_another_process_delivers() {
    let s = Setup::new();
    let store = s.store();
    store.lock_for_delivery().unwrap();
    s.lifeboat()
        .args(["store", "check", "--repair"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("held by another process"));
    s.lifeboat().args(["store", "check"]).assert().success();
}

#[test]
fn outage_by_hand_and_status() {
    let s = Setup::new();
    let status = |s: &Setup| -> Value {
        let out = s.lifeboat().args(["status", "--json"]).output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(status(&s)["origins"][0]["state"], "normal");
    s.lifeboat()
        .args([
            "outage",
            "begin",
            "--origin",
            "main",
            "--reason",
            "maintenance",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("main: normal -> outage"));
    let now = status(&s);
    assert_eq!(now["origins"][0]["state"], "outage");
    assert_eq!(now["origins"][0]["manual"], true);
    assert_eq!(now["origins"][0]["reason"], "maintenance");
    assert_eq!(
        now["origins"][1]["state"], "normal",
        "other origins are untouched"
    );
    s.lifeboat()
        .args(["outage", "begin", "--origin", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no [[origin]] named `nope`"));

    // A diverted copy waiting for replay: ending the outage means recovering, not normal.
    s.add_user("erik@example.test", "pw");
    s.deliver("erik@example.test", Class::Diverted);
    s.lifeboat()
        .args(["outage", "end", "--origin", "main"])
        .assert()
        .success()
        .stdout(predicate::str::contains("main: outage -> recovering"));
    let now = status(&s);
    assert_eq!(now["origins"][0]["state"], "recovering");
    assert_eq!(now["origins"][0]["copies"]["diverted_pending"], 1);

    // With nothing waiting, ending the outage goes straight back to normal.
    s.lifeboat()
        .args(["outage", "begin", "--origin", "branch"])
        .assert()
        .success();
    s.lifeboat()
        .args(["outage", "end", "--origin", "branch"])
        .assert()
        .success()
        .stdout(predicate::str::contains("branch: outage -> normal"));
    s.lifeboat().arg("status").assert().success().stdout(
        predicate::str::contains("origin main").and(predicate::str::contains("recovering")),
    );
}

#[test]
fn config_check_names_file_key_and_line() {
    let s = Setup::new();
    s.lifeboat()
        .args(["config", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("origin main"));
    let bad = s.dir.path().join("bad.toml");
    fs::write(
        &bad,
        "data_dir = \"/var/lib/lifeboat\"\nhistory_days = \"thirty\"\n",
    )
    .unwrap();
    s.lifeboat()
        .args(["--config"])
        .arg(&bad)
        .args(["config", "check"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("bad.toml:2:").and(predicate::str::contains("history_days")),
        );
    s.lifeboat()
        .args(["--config", "/nonexistent/lifeboat.toml", "user", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/lifeboat.toml"));
}

/// Stores a copy dated `days_ago` days back and puts its ledger row (if any) in `state`.
fn deliver_dated(
    s: &Setup,
    user: &str,
    class: Class,
    days_ago: i64,
    state: Option<&str>,
) -> lifeboat_mailstore::Stored {
    let store = s.store();
    store.lock_for_delivery().unwrap();
    let mut message = NewMessage::new(
        Address::parse(user).unwrap(),
        "INBOX",
        synthetic::message(1),
        class,
    );
    message.internal_date = Some(lifeboat_mailstore::store::now() - days_ago * 86_400);
    let stored = store.deliver(message).unwrap();
    drop(store);
    if let Some(state) = state {
        let conn = rusqlite::Connection::open(s.data_dir().join("index.sqlite")).unwrap();
        let changed = conn
            .execute(
                "UPDATE replay_ledger SET state = ?1 WHERE message_row = ?2",
                rusqlite::params![state, stored.message_row],
            )
            .unwrap();
        assert_eq!(changed, 1, "{class:?} copies have a ledger row");
    }
    stored
}

#[test]
fn expire_removes_old_journal_and_replayed_copies_only() {
    let s = Setup::new();
    s.add_user("alice@example.test", "pw");
    s.add_user("bob@example.test", "pw");
    let gone = [
        deliver_dated(&s, "alice@example.test", Class::Journal, 40, None),
        deliver_dated(&s, "alice@example.test", Class::Journal, 31, None),
        deliver_dated(
            &s,
            "bob@example.test",
            Class::Diverted,
            40,
            Some("delivered"),
        ),
        deliver_dated(&s, "bob@example.test", Class::Sent, 40, Some("delivered")),
    ];
    let kept = [
        deliver_dated(&s, "alice@example.test", Class::Journal, 29, None),
        deliver_dated(&s, "alice@example.test", Class::Diverted, 40, None),
        deliver_dated(
            &s,
            "alice@example.test",
            Class::Diverted,
            40,
            Some("rejected"),
        ),
        deliver_dated(&s, "bob@example.test", Class::Sent, 40, None),
        deliver_dated(&s, "bob@example.test", Class::Sent, 40, Some("rejected")),
        deliver_dated(
            &s,
            "bob@example.test",
            Class::Diverted,
            1,
            Some("delivered"),
        ),
        deliver_dated(&s, "bob@example.test", Class::Other, 40, None),
    ];

    s.lifeboat().arg("expire").assert().success().stdout(
        predicate::str::contains("alice@example.test: 2 journal copies removed")
            .and(predicate::str::contains(
                "bob@example.test: 1 diverted copies removed",
            ))
            .and(predicate::str::contains(
                "bob@example.test: 1 sent copies removed",
            ))
            .and(predicate::str::contains(
                "4 copies older than 30 days removed",
            )),
    );
    for stored in &gone {
        assert!(!stored.path.exists(), "{} removed", stored.path.display());
    }
    for stored in &kept {
        assert!(stored.path.exists(), "{} kept", stored.path.display());
    }
    let reader = s.store().reader().unwrap();
    let mut rows: Vec<i64> = Vec::new();
    for stored in gone.iter().chain(&kept) {
        rows.extend(
            reader
                .messages(stored.mailbox_id)
                .unwrap()
                .iter()
                .map(|m| m.row),
        );
    }
    for stored in &gone {
        assert!(!rows.contains(&stored.message_row), "index row removed");
    }
    for stored in &kept {
        assert!(rows.contains(&stored.message_row), "index row kept");
    }
    s.lifeboat()
        .args(["store", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("consistent"));

    // A second run finds nothing more.
    s.lifeboat()
        .arg("expire")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "0 copies older than 30 days removed",
        ));
}

#[test]
fn expire_waits_while_serve_holds_the_store() {
    let s = Setup::new();
    s.add_user("alice@example.test", "pw");
    let store = s.store();
    store.lock_for_delivery().unwrap();
    s.lifeboat()
        .arg("expire")
        .assert()
        .code(75)
        .stderr(predicate::str::contains("serve is running"));
}

#[test]
fn admin_commands_as_root_refuse_a_missing_account_like_serve() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching accounts only happens as root");
        return;
    }
    let setup = Setup::new();
    let text = fs::read_to_string(&setup.config).unwrap();
    let user_line = format!("user = \"{}\"", current_account());
    fs::write(
        &setup.config,
        text.replace(&user_line, "user = \"no-such-lifeboat-account\""),
    )
    .unwrap();
    let message = "no system account `no-such-lifeboat-account`";
    setup
        .lifeboat()
        .args(["user", "add", "alice@example.test", "--password-stdin"])
        .write_stdin("pw-alice-123\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(message))
        .stderr(predicate::str::contains("sysusers.d/lifeboat.conf"));
    assert!(
        !setup.data_dir().exists(),
        "nothing is created as root for an account that does not exist"
    );
    setup
        .lifeboat()
        .arg("serve")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(message));
}
