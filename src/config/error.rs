//! Configuration errors that point at the file, the key and the line, so an admin can fix
//! the file without guessing.
//!
//! Every error carries a key path. Its line is found by looking the path up in the text
//! ([`line_of`]); only when there is no path to look up (a syntax error) does the line come
//! from the TOML parser's own position.

use std::fmt;
use std::path::{Path, PathBuf};

use toml_edit::{Array, ArrayOfTables, ImDocument, Item, TableLike, Value};

/// Why a configuration file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// The key the error belongs to, as a path such as `origin[1].address`.
    pub key: Option<String>,
    /// 1-based line in the file.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(super) fn unreadable(file: &Path, error: &std::io::Error) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            key: None,
            line: None,
            message: format!("cannot read the configuration file: {error}"),
        }
    }

    /// An error about the value at `key`. `fallback_line` is used when the key path is
    /// empty; with neither, the error is placed on line 1.
    pub(super) fn at_key(
        file: &Path,
        text: &str,
        key: KeyPath,
        fallback_line: Option<usize>,
        message: String,
    ) -> ConfigError {
        let line = line_of(text, &key).or(fallback_line).unwrap_or(1);
        ConfigError {
            file: file.to_path_buf(),
            key: (!key.is_empty()).then(|| key.to_string()),
            line: Some(line),
            message,
        }
    }

    pub(super) fn from_toml(
        file: &Path,
        text: &str,
        error: serde_path_to_error::Error<toml::de::Error>,
    ) -> ConfigError {
        let mut key = KeyPath::from_serde(error.path());
        let toml_error = error.into_inner();
        let parser_line = toml_error.span().map(|span| line_at(text, span.start));
        // Parser messages may span lines ("invalid table header\nexpected `.`, `]`").
        let raw = toml_error.message().trim().replace('\n', "; ");

        // serde reports a missing field against the table that lacks it; the admin
        // needs the full key, located at that table.
        let message = if let Some(field) = quoted_after(&raw, "missing field `") {
            key = key.key(field);
            "required key is missing".to_string()
        } else if let Some(rest) = unknown_field_expectation(&raw) {
            format!("unknown key, {rest}")
        } else if let Some((found, _)) = raw.split_once(", expected struct ") {
            // serde names the Rust struct; the admin wrote a TOML table.
            format!("{found}, expected a table")
        } else if key == KeyPath::root().key("origin") && raw.starts_with("invalid type: map") {
            // The usual slip: `[origin]` where the list of origins needs `[[origin]]`.
            format!("{raw}; write each origin as [[origin]], with double brackets")
        } else {
            raw
        };
        ConfigError::at_key(file, text, key, parser_line, message)
    }
}

/// The text between `prefix` and the next backquote, when `message` starts with `prefix`.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(quoted, _)| quoted)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" returns "expected one of …".
fn unknown_field_expectation(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once("`, ").map(|(_, expectation)| expectation)
}

/// A key path into the configuration, displayed as `origin[1].domains[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub(super) fn root() -> KeyPath {
        KeyPath::default()
    }

    pub(super) fn key(mut self, key: &str) -> KeyPath {
        self.0.push(Step::Key(key.to_string()));
        self
    }

    pub(super) fn index(mut self, index: usize) -> KeyPath {
        self.0.push(Step::Index(index));
        self
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment;
        let mut steps = Vec::new();
        for segment in path.iter() {
            match segment {
                Segment::Seq { index } => steps.push(Step::Index(*index)),
                Segment::Map { key } => steps.push(Step::Key(key.clone())),
                // Keep the part of the path that is known; it still locates the error.
                Segment::Enum { .. } | Segment::Unknown => break,
            }
        }
        KeyPath(steps)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(key) {
                        f.write_str(key)?;
                    } else {
                        // As TOML would need it written, so `a.b` is not read as two keys.
                        write!(f, "{key:?}")?;
                    }
                }
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The 1-based line of the value at `path` in the TOML `text`, or, when the path goes past
/// what the file holds (a missing key, a default), the line of the deepest table or value
/// on the path that the file does hold. `None` when not even the first step is in the file.
pub(super) fn line_of(text: &str, path: &KeyPath) -> Option<usize> {
    let document = ImDocument::parse(text).ok()?;
    let mut node = Node::Table(document.as_table());
    let mut offset = None;
    for step in &path.0 {
        let Some((child, span_start)) = node.child(step) else {
            break;
        };
        offset = span_start.or(offset);
        node = child;
    }
    offset.map(|offset| line_at(text, offset))
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where a key path can lead in a parsed document.
enum Node<'a> {
    Table(&'a dyn TableLike),
    Array(&'a Array),
    Tables(&'a ArrayOfTables),
    Scalar,
}

impl<'a> Node<'a> {
    fn of_item(item: &'a Item) -> Node<'a> {
        match item {
            Item::ArrayOfTables(tables) => Node::Tables(tables),
            Item::Value(value) => Node::of_value(value),
            _ => item.as_table_like().map_or(Node::Scalar, Node::Table),
        }
    }

    fn of_value(value: &'a Value) -> Node<'a> {
        match value {
            Value::Array(array) => Node::Array(array),
            Value::InlineTable(table) => Node::Table(table),
            _ => Node::Scalar,
        }
    }

    /// The child at `step` and the byte offset where it starts in the text, if known.
    fn child(&self, step: &Step) -> Option<(Node<'a>, Option<usize>)> {
        match (self, step) {
            (Node::Table(table), Step::Key(key)) => {
                let (key, item) = table.get_key_value(key)?;
                // Tables created implicitly (by `[a.b]` or `a.b = 1`) have no span of
                // their own; their key's is the best place to point at.
                let span = item.span().or_else(|| key.span());
                Some((Node::of_item(item), span.map(|span| span.start)))
            }
            (Node::Array(array), Step::Index(index)) => {
                let value = array.get(*index)?;
                Some((Node::of_value(value), value.span().map(|span| span.start)))
            }
            (Node::Tables(tables), Step::Index(index)) => {
                let table = tables.get(*index)?;
                Some((Node::Table(table), table.span().map(|span| span.start)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
data_dir = \"/srv\"
imap.listen = [\"a\",
  \"b\"]

[[origin]]
name = \"one\"

[[origin]]   # second
name = \"two\"
domains = [
  \"x.example\",
  \"y.example\",
]
[pop3.extra]
n = 1
[submission]
relay = { host = \"h\" }
";

    fn line(path: KeyPath) -> Option<usize> {
        line_of(TEXT, &path)
    }

    #[test]
    fn key_paths_display_like_toml_access() {
        let path = KeyPath::root()
            .key("origin")
            .index(1)
            .key("domains")
            .index(0);
        assert_eq!(path.to_string(), "origin[1].domains[0]");
        assert_eq!(KeyPath::root().key("data_dir").to_string(), "data_dir");
        let odd = KeyPath::root().key("imap").key("a.b");
        assert_eq!(odd.to_string(), r#"imap."a.b""#);
    }

    #[test]
    fn finds_values_elements_and_table_headers() {
        assert_eq!(line(KeyPath::root().key("data_dir")), Some(1));
        assert_eq!(
            line(KeyPath::root().key("imap").key("listen").index(1)),
            Some(3)
        );
        assert_eq!(line(KeyPath::root().key("origin").index(1)), Some(8));
        assert_eq!(
            line(KeyPath::root().key("origin").index(1).key("name")),
            Some(9)
        );
        let domain = KeyPath::root()
            .key("origin")
            .index(1)
            .key("domains")
            .index(1);
        assert_eq!(line(domain), Some(12));
        assert_eq!(
            line(KeyPath::root().key("pop3").key("extra").key("n")),
            Some(15)
        );
        let inline = KeyPath::root().key("submission").key("relay").key("host");
        assert_eq!(line(inline), Some(17));
    }

    #[test]
    fn missing_keys_point_at_the_deepest_table_present() {
        let missing = KeyPath::root().key("origin").index(1).key("address");
        assert_eq!(line(missing), Some(8));
        // `imap` is implicit (dotted keys): its key's line.
        assert_eq!(line(KeyPath::root().key("imap").key("tls_listen")), Some(2));
        assert_eq!(line(KeyPath::root().key("hostname")), None);
        assert_eq!(line(KeyPath::root()), None);
    }

    #[test]
    fn display_omits_unknown_parts() {
        let mut error = ConfigError {
            file: PathBuf::from("/etc/lifeboat/lifeboat.toml"),
            key: Some("origin[0].address".into()),
            line: Some(7),
            message: "bad".into(),
        };
        assert_eq!(
            error.to_string(),
            "/etc/lifeboat/lifeboat.toml:7: origin[0].address: bad"
        );
        error.key = None;
        error.line = None;
        assert_eq!(error.to_string(), "/etc/lifeboat/lifeboat.toml: bad");
    }
}
