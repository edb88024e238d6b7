//! Mailbox names between the wire and the store: the store keeps UTF-8 names with `.`
//! as the hierarchy separator (Maildir++), the wire carries modified UTF-7 (RFC 3501
//! §5.1.3), and INBOX is case-insensitive.

use std::borrow::Cow;

use imap_codec::imap_types::core::QuotedChar;
use imap_codec::imap_types::mailbox::Mailbox;

use super::mutf7;

/// Hierarchy separator on the wire; Maildir++ spells it the same way in folder names.
pub const DELIMITER: char = '.';

/// The store's (UTF-8) name of a mailbox the client named; `None` for a name that is not
/// valid modified UTF-7.
pub fn mailbox_name(mailbox: &Mailbox<'_>) -> Option<String> {
    match mailbox {
        Mailbox::Inbox => Some("INBOX".to_string()),
        Mailbox::Other(other) => {
            let wire = std::str::from_utf8(other.inner().as_ref()).ok()?;
            mutf7::decode(wire)
        }
    }
}

/// A store name as the wire spells it.
pub fn wire_name(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else {
        mutf7::encode(name)
    }
}

pub fn to_mailbox(name: &str) -> Mailbox<'static> {
    Mailbox::try_from(wire_name(name)).unwrap_or(Mailbox::Inbox)
}

pub fn delimiter() -> QuotedChar {
    QuotedChar::try_from(DELIMITER).expect("valid")
}

/// LIST patterns (RFC 3501 §6.3.8): `*` matches anything, `%` anything but the
/// delimiter. INBOX matches case-insensitively, also as the first level of a name.
///
/// The pattern runs as the set of its positions reachable so far (an NFA), one step per
/// character of the name: at most pattern length × name length steps however many
/// wildcards a client writes. Trying each split of the name for each `*` in turn took
/// exponential time: 12 stars against a 150-character name never finished. Runs of
/// wildcards count as one, and a pattern with more plain characters than the name has
/// cannot match, so a long pattern costs no more than a short one.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern = compact(&fold_inbox(pattern, true));
    let name = fold_inbox(name, false);
    let plain = pattern.iter().filter(|c| !matches!(c, '*' | '%')).count();
    if plain > name.chars().count() {
        return false;
    }
    let mut reachable = vec![false; pattern.len() + 1];
    let mut next = reachable.clone();
    reachable[0] = true;
    skip_empty_wildcards(&pattern, &mut reachable);
    for c in name.chars() {
        next.fill(false);
        for (at, &p) in pattern.iter().enumerate() {
            if !reachable[at] {
                continue;
            }
            match p {
                '*' => next[at] = true,
                '%' if c != DELIMITER => next[at] = true,
                '%' => {}
                literal if literal == c => next[at + 1] = true,
                _ => {}
            }
        }
        skip_empty_wildcards(&pattern, &mut next);
        std::mem::swap(&mut reachable, &mut next);
        if !reachable.contains(&true) {
            return false;
        }
    }
    reachable[pattern.len()]
}

/// The pattern's characters with each run of wildcards as one: `*` if the run has one,
/// else `%` (two `%` match what one does).
fn compact(pattern: &str) -> Vec<char> {
    let mut compact: Vec<char> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        match (compact.last_mut(), c) {
            (Some(last @ ('*' | '%')), '*' | '%') => {
                if c == '*' {
                    *last = '*';
                }
            }
            _ => compact.push(c),
        }
    }
    compact
}

/// A wildcard also matches nothing: the position after it is reachable with it.
fn skip_empty_wildcards(pattern: &[char], reachable: &mut [bool]) {
    for (at, &p) in pattern.iter().enumerate() {
        if reachable[at] && matches!(p, '*' | '%') {
            reachable[at + 1] = true;
        }
    }
}

/// INBOX in capitals where it is the first level: a name `inbox` or `inbox.…`, and in a
/// pattern also `inbox` followed by a wildcard. Other names keep their case.
fn fold_inbox(text: &str, pattern: bool) -> Cow<'_, str> {
    let Some(first) = text.get(..5).filter(|f| f.eq_ignore_ascii_case("INBOX")) else {
        return Cow::Borrowed(text);
    };
    let rest = &text[5..];
    let first_level = match rest.chars().next() {
        None | Some(DELIMITER) => true,
        Some('*' | '%') => pattern,
        Some(_) => false,
    };
    if first_level && first != "INBOX" {
        Cow::Owned(format!("INBOX{rest}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "Projects.2026"));
        assert!(wildcard_match("%", "Projects"));
        assert!(!wildcard_match("%", "Projects.2026"));
        assert!(wildcard_match("Projects.%", "Projects.2026"));
        assert!(wildcard_match("P*6", "Projects.2026"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(wildcard_match("Inbox.%", "INBOX.Sub"));
        assert!(!wildcard_match("sent", "Sent"));
        assert!(!wildcard_match("", "INBOX"));
        assert!(wildcard_match("%.%", "INBOX.Sub"));
        assert!(wildcard_match("**%*", "Projects.2026"));
        assert!(wildcard_match("Entw%", "Entwürfe"));
        assert!(wildcard_match("inbox*", "INBOX.Sub"));
        // Only INBOX itself is case-insensitive, not names that begin like it.
        assert!(!wildcard_match("inboxes", "Inboxes"));
        assert!(wildcard_match("Inboxes", "Inboxes"));
        // Multi-byte characters where INBOX would end.
        assert!(!wildcard_match("abcdé", "abcde"));
        assert!(wildcard_match("abcdé*", "abcdéf"));
    }

    #[test]
    fn many_wildcards_cost_pattern_times_name_steps() {
        // Backtracking needed C(150, 40) tries for this; each case here is microseconds.
        let name = "x".repeat(150);
        let started = std::time::Instant::now();
        for stars in [5, 12, 40, 149] {
            let pattern = format!("{}y", "*x".repeat(stars));
            assert!(!wildcard_match(&pattern, &name));
            assert!(wildcard_match(&"*x".repeat(stars), &name));
            assert!(wildcard_match(&"%x".repeat(stars), &name));
        }
        let long_pattern = "*%".repeat(32 * 1024);
        assert!(wildcard_match(&long_pattern, &name));
        assert!(!wildcard_match(
            &format!("{}*", "x".repeat(64 * 1024)),
            &name
        ));
        assert!(wildcard_match("%%", "Projects") && !wildcard_match("%%", "Projects.2026"));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn names_in_modified_utf7_and_inbox_in_any_case() {
        let named = |wire: &str| mailbox_name(&Mailbox::try_from(wire).unwrap());
        assert_eq!(named("inbox").as_deref(), Some("INBOX"));
        assert_eq!(named("Entw&APw-rfe").as_deref(), Some("Entwürfe"));
        assert_eq!(named("&Jjo"), None);
        assert_eq!(wire_name("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(wire_name("inbox"), "INBOX");
        assert_eq!(to_mailbox("inbox"), Mailbox::Inbox);
    }
}
