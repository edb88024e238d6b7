//! contrib/systemd: the units load cleanly in `systemd-analyze verify` (with ExecStart
//! pointing at the built binary) and keep their hardening (`systemd-analyze security
//! --offline`). No systemd needs to run: both read the unit files only.
//! tests/install-deps.sh installs systemd-analyze (package `systemd`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SERVICES: &[&str] = &[
    "lifeboat.service",
    "lifeboat-replay.service",
    "lifeboat-expire.service",
];
const TIMERS: &[&str] = &["lifeboat-replay.timer", "lifeboat-expire.timer"];

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd")
}

/// The units in a temp dir, ExecStart rewritten from /usr/bin/lifeboat to the built binary.
fn units() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in SERVICES.iter().chain(TIMERS) {
        let text = fs::read_to_string(contrib().join(name)).unwrap();
        if name.ends_with(".service") {
            assert!(
                text.contains("ExecStart=/usr/bin/lifeboat "),
                "{name}: ExecStart runs /usr/bin/lifeboat"
            );
        }
        let text = text.replace("/usr/bin/lifeboat", env!("CARGO_BIN_EXE_lifeboat"));
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn analyze(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("systemd-analyze (package systemd; tests/install-deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `verify` parses each unit (unknown keys and sections, bad values, a missing or
/// non-executable ExecStart binary are errors). `--man=no`: the Documentation= man pages
/// are not installed here (tests/man.rs checks them).
fn verify(dir: &Path, names: &[&str]) -> (bool, String) {
    let mut args = vec!["verify", "--man=no", "--recursive-errors=no"];
    args.extend_from_slice(names);
    analyze(dir, &args)
}

#[test]
fn units_verify_cleanly() {
    let dir = units();
    let names: Vec<&str> = SERVICES.iter().chain(TIMERS).copied().collect();
    let (ok, text) = verify(dir.path(), &names);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn verify_catches_a_broken_unit() {
    // The check above is only worth something if verify fails on a typo here.
    let dir = units();
    let path = dir.path().join("lifeboat.service");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace("NoNewPrivileges=yes", "NoNewPrivilegez=yes"),
    )
    .unwrap();
    let (ok, text) = verify(dir.path(), &["lifeboat.service"]);
    assert!(!ok, "a unit with an unknown key verified:\n{text}");
    assert!(text.contains("NoNewPrivilegez"), "{text}");
}

#[test]
fn services_stay_hardened() {
    let dir = units();
    // Exposure levels (0-100 here; `systemd-analyze security` prints them as 0.0-10.0):
    // serve starts as root and keeps a few capabilities for its start, the one-shot
    // runs never have any.
    for (name, threshold) in [
        ("lifeboat.service", "30"),
        ("lifeboat-replay.service", "20"),
        ("lifeboat-expire.service", "20"),
    ] {
        let (ok, text) = analyze(
            dir.path(),
            &[
                "security",
                "--offline=true",
                &format!("--threshold={threshold}"),
                name,
            ],
        );
        assert!(ok, "{name} exposure above {threshold}:\n{text}");
    }
}

#[test]
fn units_have_what_the_service_needs() {
    let serve = fs::read_to_string(contrib().join("lifeboat.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RuntimeDirectory=lifeboat",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/lifeboat /run/lifeboat",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ] {
        assert!(
            serve.lines().any(|l| l == line),
            "lifeboat.service lacks {line}"
        );
    }
    for name in ["lifeboat-replay.service", "lifeboat-expire.service"] {
        let text = fs::read_to_string(contrib().join(name)).unwrap();
        assert!(text.contains("Type=oneshot"), "{name}");
        assert!(text.contains("SuccessExitStatus=75"), "{name}");
        assert!(text.contains("User=lifeboat"), "{name}");
    }
    let tmpfiles = fs::read_to_string(contrib().join("tmpfiles.d/lifeboat.conf")).unwrap();
    assert!(tmpfiles.contains("d /var/lib/lifeboat 0750 lifeboat lifeboat"));
    assert!(tmpfiles.contains("d /run/lifeboat"));
    let sysusers = fs::read_to_string(contrib().join("sysusers.d/lifeboat.conf")).unwrap();
    assert!(sysusers.starts_with('#') && sysusers.contains("\nu lifeboat "));
}
