//! Configuration loading as an admin meets it: fixture files with one mistake each must be
//! reported as `<file>:<line>: <key>: <message>`, and `contrib/lifeboat.toml` must be a
//! valid, complete reference of the real defaults.

use std::path::{Path, PathBuf};

use lifeboat::config::{Config, ConfigError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn contrib_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/lifeboat.toml")
}

/// Loads a fixture that must fail, and checks the error names the file, the key and the
/// line, in the form `<file>:<line>: <key>: <message>`.
fn assert_error(name: &str, key: Option<&str>, line: usize) -> ConfigError {
    let path = fixture(name);
    let error = match Config::load(&path) {
        Ok(_) => panic!("{name} was accepted"),
        Err(error) => error,
    };
    let shown = error.to_string();
    let expected_start = match key {
        Some(key) => format!("{}:{line}: {key}: ", path.display()),
        None => format!("{}:{line}: ", path.display()),
    };
    assert!(
        shown.starts_with(&expected_start),
        "{name}: expected an error starting with {expected_start:?}, got {shown:?}"
    );
    assert_eq!(error.file, path, "{shown}");
    assert_eq!(error.key.as_deref(), key, "{shown}");
    assert_eq!(error.line, Some(line), "{shown}");
    assert!(!error.message.is_empty(), "{shown}");
    error
}

#[test]
fn syntax_error_points_at_the_broken_line() {
    let error = assert_error("syntax_error.toml", None, 5);
    assert!(!error.message.contains('\n'), "{error}");
}

#[test]
fn unknown_key_is_named_with_the_expected_ones() {
    let error = assert_error("unknown_key.toml", Some("origin[1].adress"), 12);
    assert!(error.message.contains("`address`"), "{error}");
    assert!(error.message.contains("`probe_address`"), "{error}");
}

#[test]
fn unknown_table_is_named() {
    let error = assert_error("unknown_table.toml", Some("smtp"), 8);
    assert!(error.message.contains("`submission`"), "{error}");
}

#[test]
fn wrong_type_points_at_the_value() {
    let error = assert_error("wrong_type.toml", Some("history_days"), 3);
    assert!(error.message.contains("thirty"), "{error}");
}

#[test]
fn missing_key_points_at_the_table_that_lacks_it() {
    let error = assert_error("missing_address.toml", Some("origin[1].address"), 9);
    assert!(error.message.contains("missing"), "{error}");
}

#[test]
fn missing_top_level_key_points_at_line_one() {
    assert_error("missing_data_dir.toml", Some("data_dir"), 1);
}

#[test]
fn a_config_without_origins_is_refused() {
    let error = assert_error("no_origin.toml", Some("origin"), 1);
    assert!(
        error
            .message
            .contains("at least one [[origin]] is required"),
        "{error}"
    );
}

#[test]
fn bad_origin_scheme() {
    let error = assert_error("bad_scheme.toml", Some("origin[0].address"), 6);
    assert!(error.message.contains("http"), "{error}");
}

#[test]
fn duplicate_origin_name() {
    let error = assert_error("duplicate_origin_name.toml", Some("origin[1].name"), 11);
    assert!(error.message.contains("origin[0]"), "{error}");
}

#[test]
fn a_domain_may_belong_to_one_origin_only() {
    let error = assert_error(
        "domain_in_two_origins.toml",
        Some("origin[1].domains[1]"),
        13,
    );
    assert!(error.message.contains("`example.org`"), "{error}");
    assert!(error.message.contains("`main`"), "{error}");
}

#[test]
fn history_days_must_be_positive() {
    assert_error("history_days_zero.toml", Some("history_days"), 3);
}

#[test]
fn milter_listen_needs_an_ip_address() {
    let error = assert_error("bad_milter_listen.toml", Some("milter.listen"), 10);
    assert!(error.message.contains("localhost"), "{error}");
}

#[test]
fn bad_cidr_is_located_in_its_list() {
    let error = assert_error("bad_cidr.toml", Some("fallback.allowed_clients[1]"), 9);
    assert!(error.message.contains("10.0.0.0/33"), "{error}");
}

#[test]
fn milter_clients_are_checked_like_the_fallbacks() {
    let error = assert_error(
        "bad_milter_clients.toml",
        Some("milter.allowed_clients[1]"),
        9,
    );
    assert!(error.message.contains("::1/129"), "{error}");
}

#[test]
fn data_dir_must_be_absolute() {
    assert_error("relative_data_dir.toml", Some("data_dir"), 4);
}

#[test]
fn bad_listen_address_in_a_multi_line_list() {
    assert_error("bad_listen_address.toml", Some("pop3.tls_listen[1]"), 11);
}

#[test]
fn unreadable_file_is_named_without_line_or_key() {
    let path = fixture("does-not-exist.toml");
    let error = Config::load(&path).expect_err("a missing file must be an error");
    assert_eq!((error.key.as_deref(), error.line), (None, None));
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!("{}: ", path.display())),
        "{shown}"
    );
}

#[test]
fn minimal_fixture_loads() {
    let path = fixture("minimal.toml");
    let config = Config::load(&path).expect("minimal.toml is valid");
    assert_eq!(config.path, path);
    assert_eq!(config.origins.len(), 1);
    assert_eq!(
        config.origin_for_domain("EXAMPLE.COM").unwrap().name,
        "main"
    );
}

// ---- contrib/lifeboat.toml ----

fn contrib_text() -> String {
    std::fs::read_to_string(contrib_path()).expect("contrib/lifeboat.toml is readable")
}

/// The reference with its commented examples (`# key = value`) made active.
fn contrib_text_uncommented() -> String {
    contrib_text()
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_assignment(rest) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_assignment(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(key, _)| {
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    })
}

#[test]
fn contrib_reference_loads() {
    let config = Config::load(&contrib_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.origins.len(), 1);
}

#[test]
fn contrib_reference_writes_the_real_defaults() {
    let contrib = Config::load(&contrib_path()).unwrap_or_else(|e| panic!("{e}"));
    // The same file with only what has no default: data_dir and the example origin.
    let origin = &contrib.origins[0];
    let domains: Vec<String> = origin.domains.iter().map(|d| format!("{d:?}")).collect();
    let minimal = format!(
        "data_dir = {:?}\n[[origin]]\nname = {:?}\naddress = \"{}\"\ndomains = [{}]\n",
        contrib.data_dir.display().to_string(),
        origin.name,
        origin.address,
        domains.join(", "),
    );
    let defaults = Config::parse(&minimal, &contrib.path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(contrib, defaults);
}

#[test]
fn contrib_commented_examples_are_valid() {
    let text = contrib_text_uncommented();
    let config = Config::parse(&text, &contrib_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.hostname, "continuity.example.com");
    assert!(config.origins[0].probe_address.is_some());
}

/// Every key a configuration has must be written in the reference (as an active line or
/// as a `# key = value` example), so a new key cannot go undocumented.
#[test]
fn contrib_reference_names_every_key() {
    let text = contrib_text_uncommented();
    let config = Config::parse(&text, &contrib_path()).unwrap_or_else(|e| panic!("{e}"));
    let serialized = toml::Value::try_from(&config).expect("a config serializes");
    let mut keys = Vec::new();
    collect_keys(&serialized, "", &mut keys);
    // A sanity check that the walk found the nested keys at all.
    assert!(
        keys.contains(&"origin.probe_address".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"submission.save_sent".to_string()),
        "{keys:?}"
    );

    let reference: toml::Value = toml::from_str(&text).expect("the reference is TOML");
    let mut written = Vec::new();
    collect_keys(&reference, "", &mut written);
    let undocumented: Vec<&String> = keys.iter().filter(|k| !written.contains(k)).collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from contrib/lifeboat.toml: {undocumented:?}"
    );
}

/// Dotted paths of the leaf keys in `value`; arrays of tables contribute their keys once
/// (`origin.name`), lists of values count as leaves.
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
            if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
        {
            for item in items {
                collect_keys(item, prefix, keys);
            }
        }
        _ => {
            if !keys.iter().any(|k| k == prefix) {
                keys.push(prefix.to_string());
            }
        }
    }
}

/// What a config serializes to is a config that loads back the same, so a printed
/// configuration (`config check`) can be trusted.
#[test]
fn a_config_round_trips_through_toml() {
    let text = contrib_text_uncommented();
    let config = Config::parse(&text, &contrib_path()).unwrap_or_else(|e| panic!("{e}"));
    let printed = toml::to_string(&config).expect("a config serializes");
    let reloaded =
        Config::parse(&printed, &contrib_path()).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(reloaded, config);
}
