//! Mailbox names between the wire and the store: the store keeps UTF-8 names with `.`
//! as the hierarchy separator (Maildir++), the wire carries modified UTF-7 (RFC 3501
//! §5.1.3), and INBOX is case-insensitive.

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
/// delimiter. INBOX matches case-insensitively.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('%', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != DELIMITER)
                .any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let fold = |s: &str| -> Vec<char> {
        if s.len() >= 5 && s[..5].eq_ignore_ascii_case("INBOX") {
            format!("INBOX{}", &s[5..]).chars().collect()
        } else {
            s.chars().collect()
        }
    };
    go(&fold(pattern), &fold(name))
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
