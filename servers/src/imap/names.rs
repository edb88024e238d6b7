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
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    Pattern::new(pattern).matches(name)
}

/// A LIST pattern ready to match many names: compacted and turned into bit masks once,
/// not once per mailbox.
///
/// The pattern runs as the set of its positions reachable so far (an NFA), one step per
/// character of the name: at most pattern length × name length steps however many
/// wildcards a client writes. Trying each split of the name for each `*` in turn took
/// exponential time: 12 stars against a 150-character name never finished. Runs of
/// wildcards count as one, and a pattern with more plain characters than the name has
/// cannot match, so a long pattern costs no more than a short one: what matching one
/// name costs is bounded by the name (twice its length, squared), whatever the pattern.
/// The set is a bit per position, so a step is a few word operations per 64 positions
/// (shift-and): one or two words for any real pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// Positions (characters after compaction); the states are 0 to `positions`.
    positions: usize,
    /// Characters that are not wildcards.
    plain: usize,
    /// The positions holding `*`, and `%`.
    star: Vec<u64>,
    percent: Vec<u64>,
    /// Each literal character with the positions holding it, ordered by character.
    literals: Vec<(char, Vec<u64>)>,
}

impl Pattern {
    pub fn new(pattern: &str) -> Pattern {
        Pattern::compiled(&compact(&fold_inbox(pattern, true)))
    }

    fn compiled(chars: &[char]) -> Pattern {
        let words = (chars.len() + 1).div_ceil(64);
        let mut star = vec![0u64; words];
        let mut percent = vec![0u64; words];
        let mut literals: Vec<(char, Vec<u64>)> = Vec::new();
        for (at, &c) in chars.iter().enumerate() {
            let (word, bit) = (at / 64, 1u64 << (at % 64));
            match c {
                '*' => star[word] |= bit,
                '%' => percent[word] |= bit,
                c => match literals.binary_search_by_key(&c, |(l, _)| *l) {
                    Ok(i) => literals[i].1[word] |= bit,
                    Err(i) => {
                        let mut mask = vec![0u64; words];
                        mask[word] |= bit;
                        literals.insert(i, (c, mask));
                    }
                },
            }
        }
        Pattern {
            positions: chars.len(),
            plain: chars.iter().filter(|c| !matches!(c, '*' | '%')).count(),
            star,
            percent,
            literals,
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        let name = fold_inbox(name, false);
        self.matches_folded(&name, name.chars().count())
    }

    /// [`Pattern::matches`] on a name already folded, `length` characters long.
    fn matches_folded(&self, name: &str, length: usize) -> bool {
        if self.plain > length {
            return false;
        }
        let words = self.star.len();
        let mut reachable = vec![0u64; words];
        let mut next = vec![0u64; words];
        reachable[0] = 1;
        self.skip_empty_wildcards(&mut reachable);
        for c in name.chars() {
            let literal = self
                .literals
                .binary_search_by_key(&c, |(l, _)| *l)
                .ok()
                .map(|i| &self.literals[i].1);
            let mut carry = 0;
            for (w, next) in next.iter_mut().enumerate() {
                // A literal equal to `c` moves on; `*`, and `%` but at the delimiter, stay.
                let moving = literal.map_or(0, |mask| reachable[w] & mask[w]);
                let mut staying = self.star[w];
                if c != DELIMITER {
                    staying |= self.percent[w];
                }
                *next = (moving << 1) | carry | (reachable[w] & staying);
                carry = moving >> 63;
            }
            self.skip_empty_wildcards(&mut next);
            std::mem::swap(&mut reachable, &mut next);
            if reachable.iter().all(|&w| w == 0) {
                return false;
            }
        }
        reachable[self.positions / 64] & (1 << (self.positions % 64)) != 0
    }

    /// A wildcard also matches nothing: the position after a reachable one is reachable
    /// too. One shift does it: after compaction no wildcard follows another.
    fn skip_empty_wildcards(&self, reachable: &mut [u64]) {
        let mut carry = 0;
        for (w, states) in reachable.iter_mut().enumerate() {
            let wild = *states & (self.star[w] | self.percent[w]);
            *states |= (wild << 1) | carry;
            carry = wild >> 63;
        }
    }
}

/// The patterns of one LIST (RFC 5258 §3 allows several): a name matches if one of them
/// matches it. Each distinct pattern is compiled once and kept once, so a name costs
/// at most the sum of what each pattern costs alone (each bounded by the name, see
/// [`Pattern`]): repeating a pattern costs nothing, and the first pattern that matches
/// ends the search.
#[derive(Clone, Debug, Default)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Patterns {
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::new();
        for pattern in patterns {
            let chars = compact(&fold_inbox(pattern, true));
            if !seen.contains(&chars) {
                kept.push(Pattern::compiled(&chars));
                seen.insert(chars);
            }
        }
        Patterns(kept)
    }

    pub fn matches(&self, name: &str) -> bool {
        let name = fold_inbox(name, false);
        let length = name.chars().count();
        self.0
            .iter()
            .any(|pattern| pattern.matches_folded(&name, length))
    }
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

    /// The matcher as it was before its positions became bits: one `bool` a position.
    fn reference_match(pattern: &str, name: &str) -> bool {
        let pattern = compact(&fold_inbox(pattern, true));
        let name = fold_inbox(name, false);
        let skip = |reachable: &mut [bool]| {
            for (at, &p) in pattern.iter().enumerate() {
                if reachable[at] && matches!(p, '*' | '%') {
                    reachable[at + 1] = true;
                }
            }
        };
        let mut reachable = vec![false; pattern.len() + 1];
        reachable[0] = true;
        skip(&mut reachable);
        for c in name.chars() {
            let mut next = vec![false; pattern.len() + 1];
            for (at, &p) in pattern.iter().enumerate() {
                if reachable[at] {
                    match p {
                        '*' => next[at] = true,
                        '%' if c != DELIMITER => next[at] = true,
                        '%' => {}
                        literal if literal == c => next[at + 1] = true,
                        _ => {}
                    }
                }
            }
            skip(&mut next);
            reachable = next;
        }
        reachable[pattern.len()]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn bits_match_as_the_positions_did(
            pattern in "(INBOX|inbox|[ab.*%é]){0,60}",
            name in "(INBOX|inbox|[ab.é]){0,70}",
        ) {
            proptest::prop_assert_eq!(
                wildcard_match(&pattern, &name),
                reference_match(&pattern, &name),
                "{:?} {:?}", pattern, name
            );
        }
    }

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
    fn several_patterns_cost_what_each_costs_alone_and_repeats_nothing() {
        let names: Vec<String> = (0..20).map(|i| format!("{}.{i}", "x".repeat(60))).collect();
        // A 64 KiB line of patterns, each keeping every NFA state alive to the end.
        let costly: Vec<String> = (0..1000)
            .map(|i| format!("{}%y{i}", "*x".repeat(30)))
            .collect();
        let started = std::time::Instant::now();
        let patterns = Patterns::new(costly.iter().map(String::as_str));
        assert_eq!(patterns.0.len(), 1000);
        assert!(names.iter().all(|name| !patterns.matches(name)));
        // Repeating a pattern costs its parse, not a match per copy.
        let repeated = Patterns::new(std::iter::repeat_n("*x*x%.1", 50_000));
        assert_eq!(repeated.0.len(), 1);
        assert!(repeated.matches(&names[1]) && !repeated.matches(&names[2]));
        let several = Patterns::new(["Drafts", "inbox", "Sent.%", "INBOX"]);
        assert!(several.matches("INBOX") && several.matches("Sent.2025"));
        assert!(!several.matches("Sent") && !several.matches("Sent.a.b"));
        assert!(!Patterns::new([]).matches("INBOX"));
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
