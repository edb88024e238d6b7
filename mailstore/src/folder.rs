//! Folder names as the store keeps them.

use std::borrow::Cow;

/// INBOX is case-insensitive (RFC 3501 §5.1), also as the first level of a hierarchical
/// name: `inbox.x` is `INBOX.x` (as `inbox` it became a second row on INBOX's
/// directory). Other names, and the levels below INBOX, are exact.
pub fn canonical_folder(name: &str) -> Cow<'_, str> {
    let Some(first) = name.get(..5) else {
        return Cow::Borrowed(name);
    };
    let first_level = matches!(name.as_bytes().get(5), None | Some(b'.'));
    if first_level && first.eq_ignore_ascii_case("INBOX") && first != "INBOX" {
        Cow::Owned(format!("INBOX{}", &name[5..]))
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_folder;

    #[test]
    fn inbox_in_any_case_also_as_the_first_level() {
        for (name, canonical) in [
            ("inbox", "INBOX"),
            ("InBoX", "INBOX"),
            ("INBOX", "INBOX"),
            ("inbox.x", "INBOX.x"),
            ("Inbox.Sub.inbox", "INBOX.Sub.inbox"),
            ("inboxes", "inboxes"),
            ("Archive.inbox", "Archive.inbox"),
            ("inbo", "inbo"),
            ("Entwürfe", "Entwürfe"),
            ("abcdé", "abcdé"),
        ] {
            assert_eq!(canonical_folder(name), canonical, "{name}");
        }
    }
}
