//! Message flags between IMAP's spelling and the store's: system flags are the store's
//! bits (they live in Maildir file names), keywords are kept as the client wrote them.

use imap_codec::imap_types::core::Atom;
use imap_codec::imap_types::flag::{Flag, FlagFetch, FlagPerm};
use lifeboat_mailstore::maildir::Flags;

/// The system flags a client may set. `\Recent` is the server's (see `mailbox.rs`), so
/// STORE refuses it.
pub const SYSTEM_FLAGS: [Flag<'static>; 5] = [
    Flag::Answered,
    Flag::Flagged,
    Flag::Deleted,
    Flag::Seen,
    Flag::Draft,
];

/// The mailbox's FLAGS (RFC 3501 §7.2.6): the system flags and every keyword in use.
pub fn mailbox_flags(keywords: &[String]) -> Vec<Flag<'static>> {
    let mut flags = SYSTEM_FLAGS.to_vec();
    flags.extend(keywords.iter().filter_map(|k| keyword(k)));
    flags
}

/// The PERMANENTFLAGS of a read-write mailbox: those FLAGS and `\*`, since a client
/// may create keywords (RFC 3501 §7.1).
pub fn permanent_flags(keywords: &[String]) -> Vec<FlagPerm<'static>> {
    let mut flags: Vec<FlagPerm> = mailbox_flags(keywords)
        .into_iter()
        .map(FlagPerm::Flag)
        .collect();
    flags.push(FlagPerm::Asterisk);
    flags
}

/// A stored keyword as a flag; `None` for one that is not an atom (written by hand into
/// the index), which is left out rather than sent broken.
fn keyword(name: &str) -> Option<Flag<'static>> {
    Atom::try_from(name.to_string()).ok().map(Flag::Keyword)
}

/// Keywords of `lists` not in `known` (compared without case), each once, in the order
/// they first come.
pub fn new_keywords<'a>(
    known: &[String],
    lists: impl IntoIterator<Item = &'a [String]>,
) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for keyword in lists.into_iter().flatten() {
        let seen = |k: &String| k.eq_ignore_ascii_case(keyword);
        if !known.iter().any(seen) && !found.iter().any(seen) {
            found.push(keyword.clone());
        }
    }
    found
}

/// System flags as the store's bits, and keywords (case kept, the first spelling of
/// keywords that differ only in case). Other `\` flags are dropped.
pub fn split_flags(flags: &[Flag<'_>]) -> (Flags, Vec<String>) {
    let mut system = Flags::empty();
    let mut keywords: Vec<String> = Vec::new();
    for flag in flags {
        match flag {
            Flag::Answered => system = system.union(Flags::ANSWERED),
            Flag::Deleted => system = system.union(Flags::DELETED),
            Flag::Draft => system = system.union(Flags::DRAFT),
            Flag::Flagged => system = system.union(Flags::FLAGGED),
            Flag::Seen => system = system.union(Flags::SEEN),
            Flag::Keyword(atom) => {
                if !keywords
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(atom.inner()))
                {
                    keywords.push(atom.inner().to_string());
                }
            }
            Flag::Extension(_) => {}
        }
    }
    (system, keywords)
}

/// The flags of a message as IMAP spells them, with `\Recent` when the message is
/// recent to this session. A stored keyword that is not an atom (written by hand into a
/// Maildir name) is left out rather than sent broken.
pub fn flag_list(flags: Flags, keywords: &[String], recent: bool) -> Vec<FlagFetch<'static>> {
    let mut list: Vec<FlagFetch<'static>> = [
        (Flags::ANSWERED, Flag::Answered),
        (Flags::FLAGGED, Flag::Flagged),
        (Flags::DELETED, Flag::Deleted),
        (Flags::SEEN, Flag::Seen),
        (Flags::DRAFT, Flag::Draft),
    ]
    .into_iter()
    .filter(|(bit, _)| flags.contains(*bit))
    .map(|(_, flag)| FlagFetch::Flag(flag))
    .collect();
    if recent {
        list.push(FlagFetch::Recent);
    }
    list.extend(
        keywords
            .iter()
            .filter_map(|k| keyword(k))
            .map(FlagFetch::Flag),
    );
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_the_first_spelling_of_a_keyword_and_drops_extensions() {
        let flags = [
            Flag::Seen,
            Flag::Keyword(Atom::try_from("$Work").unwrap()),
            Flag::Keyword(Atom::try_from("$WORK").unwrap()),
            Flag::try_from("\\Recent").unwrap(),
            Flag::Draft,
        ];
        let (system, keywords) = split_flags(&flags);
        assert_eq!(system, Flags::SEEN.union(Flags::DRAFT));
        assert_eq!(keywords, ["$Work"]);
    }

    #[test]
    fn flag_list_orders_system_flags_and_skips_keywords_that_are_no_atoms() {
        let all = Flags::ANSWERED
            .union(Flags::FLAGGED)
            .union(Flags::DELETED)
            .union(Flags::SEEN)
            .union(Flags::DRAFT);
        let list = flag_list(all, &["$Later".into(), "not an atom".into()], true);
        let mut expected: Vec<FlagFetch<'static>> =
            SYSTEM_FLAGS.iter().cloned().map(FlagFetch::Flag).collect();
        expected.push(FlagFetch::Recent);
        expected.push(FlagFetch::Flag(Flag::Keyword(
            Atom::try_from("$Later").unwrap(),
        )));
        assert_eq!(list, expected);
    }
}
