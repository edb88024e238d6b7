//! man/lifeboat.8 and man/lifeboat.toml.5.
//!
//! lifeboat(8)'s SYNOPSIS, OPTIONS and COMMANDS are generated from the clap definitions
//! (src/cli.rs) and kept between the BEGIN/END GENERATED markers; this test fails when
//! they drift. Regenerate with:
//!
//!     LIFEBOAT_REGEN_MAN=1 cargo test --test man
//!
//! The rest of both pages is written by hand; the tests render them with groff (no
//! warnings allowed), open them with `man -l`, and check that every subcommand and every
//! configuration key is there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use lifeboat::config::Config;

const BEGIN: &str =
    ".\\\" BEGIN GENERATED from src/cli.rs: LIFEBOAT_REGEN_MAN=1 cargo test --test man\n";
const END: &str = ".\\\" END GENERATED\n";

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// Escapes text for roff: backslashes, hyphens (as in options) and leading dots/quotes.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|line| {
            let line = line.trim_end();
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every subcommand that takes no further subcommand, with its full name.
fn leaves(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("{prefix} {}", sub.get_name());
        if sub.has_subcommands() {
            leaves(sub, &name, out);
        } else {
            out.push((name, sub.clone()));
        }
    }
}

fn generated() -> String {
    let mut cmd = lifeboat::cli::Cli::command();
    cmd.build();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_synopsis_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    let mut text = String::from_utf8(out).unwrap();
    text.push_str(".SH COMMANDS\n");
    let mut commands = Vec::new();
    leaves(&cmd, "lifeboat", &mut commands);
    for (name, sub) in commands {
        let mut usage = sub.clone().bin_name(&name).render_usage().to_string();
        usage = usage.trim_start_matches("Usage: ").to_string();
        text.push_str(&format!(".SS \"{}\"\n", roff(&usage)));
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(|s| s.to_string())
            .unwrap_or_default();
        for (i, paragraph) in about.split("\n\n").enumerate() {
            if i > 0 {
                text.push_str(".PP\n");
            }
            text.push_str(&roff(paragraph));
            text.push('\n');
        }
        for arg in sub.get_arguments() {
            if arg.is_global_set() || matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            let Some(help) = arg.get_long_help().or(arg.get_help()) else {
                continue;
            };
            let value = arg
                .get_value_names()
                .map(|v| format!(" \\fI{}\\fR", roff(&v.join(" "))))
                .unwrap_or_default();
            let flag = match arg.get_long() {
                Some(long) if arg.get_action().takes_values() => {
                    format!("\\fB\\-\\-{}\\fR{value}", roff(long))
                }
                Some(long) => format!("\\fB\\-\\-{}\\fR", roff(long)),
                None => format!("\\fI{}\\fR", roff(arg.get_id().as_str()).to_uppercase()),
            };
            text.push_str(&format!(".TP\n{flag}\n{}\n", roff(&help.to_string())));
        }
    }
    text
}

#[test]
fn lifeboat_8_matches_the_cli_definitions() {
    let path = man_dir().join("lifeboat.8");
    let page = fs::read_to_string(&path).unwrap();
    let start = page.find(BEGIN).expect("BEGIN GENERATED marker") + BEGIN.len();
    let end = page.find(END).expect("END GENERATED marker");
    let fresh = generated();
    if std::env::var_os("LIFEBOAT_REGEN_MAN").is_some() {
        let updated = format!("{}{fresh}{}", &page[..start], &page[end..]);
        fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        page[start..end] == fresh,
        "man/lifeboat.8 is out of date with src/cli.rs: run LIFEBOAT_REGEN_MAN=1 cargo test --test man"
    );
    let mut cmd = lifeboat::cli::Cli::command();
    cmd.build();
    let mut commands = Vec::new();
    leaves(&cmd, "lifeboat", &mut commands);
    for (name, _) in commands {
        assert!(page.contains(&roff(&name)), "{name} missing");
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "FILES",
        "SIGNALS",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            page.contains(&format!(".SH {section}\n"))
                || page.contains(&format!(".SH \"{section}\"\n")),
            "section {section} missing"
        );
    }
    // Every exit status of src/exit.rs is documented.
    for code in ["0", "1", "2", "3", "69", "75"] {
        assert!(page.contains(&format!(".TP\n.B {code}\n")), "exit {code}");
    }
}

/// Dotted paths of the leaf keys in `value` (as in tests/config.rs).
fn collect_keys(value: &toml::Value, prefix: &str, keys: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect_keys(value, &path, keys);
            }
        }
        toml::Value::Array(items)
            if !items.is_empty() && items.iter().all(toml::Value::is_table) =>
        {
            for item in items {
                collect_keys(item, prefix, keys);
            }
        }
        _ => {
            if !keys.contains(&prefix.to_string()) {
                keys.push(prefix.to_string());
            }
        }
    }
}

#[test]
fn lifeboat_toml_5_documents_every_key() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/lifeboat.toml");
    // The reference with its commented examples switched on, so optional keys count too.
    let text: String = fs::read_to_string(&contrib)
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(key, _)| {
                    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) =>
            {
                rest.to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = Config::parse(&text, &contrib).unwrap_or_else(|e| panic!("{e}"));
    let mut keys = Vec::new();
    collect_keys(&toml::Value::try_from(&config).unwrap(), "", &mut keys);
    assert!(
        keys.contains(&"origin.probe_address".to_string()),
        "{keys:?}"
    );
    assert!(keys.contains(&"metrics.listen".to_string()), "{keys:?}");
    let page = fs::read_to_string(man_dir().join("lifeboat.toml.5")).unwrap();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !page.contains(&format!(".TP\n.B {}\n", roff(k))))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from man/lifeboat.toml.5: {missing:?}"
    );
}

#[test]
fn pages_render_without_warnings() {
    for page in ["lifeboat.8", "lifeboat.toml.5"] {
        let path = man_dir().join(page);
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&path)
            .output()
            .expect("groff (tests/install-deps.sh installs it)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "groff warnings for {page}:\n{stderr}"
        );
        let out = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .output()
            .expect("man (package man-db)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l {page} failed");
        assert!(text.contains("SEE ALSO"), "man -l {page}:\n{text}");
    }
}
