//! SORT's keys (RFC 5256 §3, and RFC 5957's DISPLAYFROM and DISPLAYTO) and how they
//! order messages; the base subject (§2.1) and sent date (§2.2) THREAD uses too; and
//! the collation strings are compared in.
//!
//! - Strings compare as RFC 5256 §7 wants, by the i;unicode-casemap collation (RFC
//!   5051): each character titlecased, then decomposed (NFKD), then octet by octet, so
//!   `é` sorts between `e` and `f` and case does not matter. [`casemap`] prepares a
//!   string once; comparing is then plain byte order. A missing header is the empty
//!   string, which sorts first.
//! - FROM, TO and CC go by the addr-mailbox (the local part) of the first address as
//!   ENVELOPE reads it. DISPLAYFROM and DISPLAYTO go by its display name (encoded-words
//!   decoded) or, when it has none, by `local@domain`; a group by its name.
//! - DATE is the Date: header in UTC, or the internal date when it cannot be read;
//!   ARRIVAL the internal date; SIZE the size in octets.
//! - Messages equal by every key stay in mailbox order (the implicit last key, which
//!   REVERSE does not turn round).
//!
//! Pure: the SORT command (`command/sort.rs`) reads the headers and hands them here.

use std::cmp::Ordering;

use icu_normalizer::DecomposingNormalizerBorrowed;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};

use super::mime::{self, address};

/// One key's value for one message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Number(i64),
    /// Casemapped ([`casemap`]): compared as bytes.
    Text(String),
}

/// What the index knows of a message, besides its header.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    /// Seconds since the epoch.
    pub internal_date: i64,
    pub size: u64,
}

/// Whether any key needs the message's header (all but ARRIVAL and SIZE do).
pub fn needs_header(criteria: &[SortCriterion]) -> bool {
    criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size))
}

/// The values of `criteria`'s keys for one message, in their order; `header` is the
/// message's header (or the whole message).
pub fn values(criteria: &[SortCriterion], header: &[u8], facts: Facts) -> Vec<Value> {
    criteria
        .iter()
        .map(|criterion| value(&criterion.key, header, facts))
        .collect()
}

fn value(key: &SortKey, header: &[u8], facts: Facts) -> Value {
    let text = |s: &str| Value::Text(casemap(s));
    match key {
        SortKey::Arrival => Value::Number(facts.internal_date),
        SortKey::Size => Value::Number(i64::try_from(facts.size).unwrap_or(i64::MAX)),
        SortKey::Date => Value::Number(sent_date(header, facts.internal_date)),
        SortKey::Subject => text(&base_subject(&mime::subject(header).unwrap_or_default()).text),
        SortKey::From => text(&addr_mailbox(header, "From")),
        SortKey::To => text(&addr_mailbox(header, "To")),
        SortKey::Cc => text(&addr_mailbox(header, "Cc")),
        SortKey::DisplayFrom => text(&display_name(header, "From")),
        SortKey::DisplayTo => text(&display_name(header, "To")),
    }
}

/// How two messages' values compare under `criteria` (REVERSE turning single keys
/// round); equal ones are left to the caller's mailbox order.
pub fn compare(criteria: &[SortCriterion], a: &[Value], b: &[Value]) -> Ordering {
    for (criterion, (a, b)) in criteria.iter().zip(a.iter().zip(b)) {
        let order = if criterion.reverse {
            b.cmp(a)
        } else {
            a.cmp(b)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// The sent date (RFC 5256 §2.2), seconds since the epoch in UTC: the Date: header,
/// else the internal date.
pub fn sent_date(header: &[u8], internal_date: i64) -> i64 {
    mime::sent_time(header).unwrap_or(internal_date)
}

/// The addr-mailbox of the first address of field `name`: for a group, its name.
fn addr_mailbox(header: &[u8], name: &str) -> String {
    match mime::first_address(header, name) {
        Some(address::Item::Mailbox(m)) => String::from_utf8_lossy(&m.mailbox).into_owned(),
        Some(address::Item::GroupStart(name)) => String::from_utf8_lossy(&name).into_owned(),
        Some(address::Item::GroupEnd) | None => String::new(),
    }
}

/// RFC 5957: the display name of the first address of field `name`, decoded; without
/// one, `local@domain`; a group's name for a group.
fn display_name(header: &[u8], name: &str) -> String {
    match mime::first_address(header, name) {
        Some(address::Item::Mailbox(m)) => {
            let display = m.name.as_deref().map(mime::decode_words);
            match display.filter(|d| !d.trim().is_empty()) {
                Some(display) => display,
                None => format!(
                    "{}@{}",
                    String::from_utf8_lossy(&m.mailbox),
                    String::from_utf8_lossy(&m.host)
                ),
            }
        }
        Some(address::Item::GroupStart(name)) => mime::decode_words(&name),
        Some(address::Item::GroupEnd) | None => String::new(),
    }
}

/// A string prepared for the i;unicode-casemap collation (RFC 5051 §2): every
/// character titlecased (its simple mapping), the result decomposed (NFKD). Prepared
/// strings compare as bytes.
pub fn casemap(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    let titled: String = s.chars().map(titlecase).collect();
    DecomposingNormalizerBorrowed::new_nfkd()
        .normalize(&titled)
        .into_owned()
}

/// A character's simple titlecase mapping (UnicodeData.txt): the uppercase one, but
/// for the four digraphs whose titlecase form differs, and none where uppercasing
/// makes more than one character (`ß`).
fn titlecase(c: char) -> char {
    match c {
        '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
        '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
        '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
        '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
        c => {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        }
    }
}

/// A subject's base subject (RFC 5256 §2.1), and whether taking it removed what marks
/// a reply or a forward (a `Re:`/`Fwd:`, a `(fwd)` trailer, or `[fwd: ...]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseSubject {
    /// Not casemapped.
    pub text: String,
    pub reply_or_forward: bool,
}

/// The base subject of a subject whose encoded-words are decoded already (step 1).
pub fn base_subject(subject: &str) -> BaseSubject {
    // (1) Tabs and line breaks are spaces; runs of spaces are one.
    let mut s = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') {
            ' '
        } else {
            c
        };
        if !(c == ' ' && s.ends_with(' ')) {
            s.push(c);
        }
    }
    let mut reply = false;
    let mut s = s.as_str();
    loop {
        // (2) Trailers: `(fwd)` and blanks, as long as there are any.
        loop {
            if let Some(rest) = s.strip_suffix(' ') {
                s = rest;
            } else if s.len() >= 5 && s.as_bytes()[s.len() - 5..].eq_ignore_ascii_case(b"(fwd)") {
                s = &s[..s.len() - 5];
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders (`Re:`, `[blob] Fwd:`, blanks) and leading blobs, until
        // neither is left.
        loop {
            let before = s.len();
            loop {
                if let Some(rest) = s.strip_prefix(' ') {
                    s = rest;
                } else if let Some(n) = refwd_leader(s.as_bytes()) {
                    s = &s[n..];
                    reply = true;
                } else {
                    break;
                }
            }
            // (4) A blob goes only if something is left after it.
            if let Some(n) = blob(s.as_bytes(), 0)
                && n < s.len()
            {
                s = &s[n..];
            }
            if s.len() == before {
                break;
            }
        }
        // (6) `[fwd: ...]` around it all: take it off and start again at (2).
        let bytes = s.as_bytes();
        if bytes.len() >= 6 && bytes[..5].eq_ignore_ascii_case(b"[fwd:") && s.ends_with(']') {
            s = &s[5..s.len() - 1];
            reply = true;
            continue;
        }
        break;
    }
    BaseSubject {
        text: s.to_string(),
        reply_or_forward: reply,
    }
}

/// The length of `*subj-blob subj-refwd` at the start of `s`, if it is there.
fn refwd_leader(s: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(end) = blob(s, at) {
        at = end;
    }
    refwd(s, at)
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"` at `at`: where it ends.
fn refwd(s: &[u8], at: usize) -> Option<usize> {
    let word = |w: &[u8]| {
        s.get(at..at + w.len())
            .is_some_and(|x| x.eq_ignore_ascii_case(w))
    };
    let candidates = [&b"re"[..], b"fwd", b"fw"];
    candidates.iter().filter(|w| word(w)).find_map(|w| {
        let mut i = at + w.len();
        while s.get(i) == Some(&b' ') {
            i += 1;
        }
        if let Some(end) = blob(s, i) {
            i = end;
        }
        (s.get(i) == Some(&b':')).then_some(i + 1)
    })
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP` at `at`: where it ends.
fn blob(s: &[u8], at: usize) -> Option<usize> {
    if s.get(at) != Some(&b'[') {
        return None;
    }
    let close = at + 1 + s[at + 1..].iter().position(|&b| b == b']' || b == b'[')?;
    if s[close] != b']' {
        return None;
    }
    let mut end = close + 1;
    while s.get(end) == Some(&b' ') {
        end += 1;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(subject: &str) -> (String, bool) {
        let b = base_subject(subject);
        (b.text, b.reply_or_forward)
    }

    #[test]
    fn base_subjects_lose_what_rfc_5256_section_2_1_takes_off() {
        for (subject, text, reply) in [
            ("Hello", "Hello", false),
            ("  Hello \t  world  ", "Hello world", false),
            ("Re: Hello", "Hello", true),
            ("RE: re: Re:Hello", "Hello", true),
            ("Fwd: Hello", "Hello", true),
            ("FW: Hello", "Hello", true),
            ("fwd [list]: Hello", "Hello", true),
            ("Re[2]: Hello", "Hello", true),
            ("Re : Hello", "Hello", true),
            ("[list] Re: Hello", "Hello", true),
            ("[list] [x] Re: [list] Hello", "Hello", true),
            ("[PATCH] Hello", "Hello", false),
            ("[PATCH v2] [1/3] Hello", "Hello", false),
            // A blob that is all there is stays: the base subject is not empty.
            ("[PATCH]", "[PATCH]", false),
            ("Re: [PATCH]", "[PATCH]", true),
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd)  ", "Hello", true),
            ("[fwd: Hello]", "Hello", true),
            ("[Fwd: Re: [list] Hello (fwd)]", "Hello", true),
            ("Re: [fwd: [fwd: Hello]]", "Hello", true),
            ("Rebecca: Hello", "Rebecca: Hello", false),
            ("Fwiw: Hello", "Fwiw: Hello", false),
            ("Re:", "", true),
            ("", "", false),
            ("[unclosed Re: Hello", "[unclosed Re: Hello", false),
            ("Réponse: Re: Grüße", "Réponse: Re: Grüße", false),
            ("Re: Grüße [x]", "Grüße [x]", true),
        ] {
            assert_eq!(base(subject), (text.to_string(), reply), "{subject:?}");
        }
    }

    #[test]
    fn casemap_is_rfc_5051s() {
        assert_eq!(casemap("Hello, World"), "HELLO, WORLD");
        // RFC 5051 §2's example: U+01C4 becomes U+0044 U+007A U+030C.
        assert_eq!(casemap("\u{1C4}"), "D\u{7A}\u{30C}");
        assert_eq!(casemap("é"), "E\u{301}");
        assert_eq!(casemap("e\u{301}"), casemap("É"));
        assert_eq!(casemap("straße"), "STRAßE");
        assert_eq!(
            casemap("ﬁ"),
            "fi",
            "a ligature decomposes (its own titlecase is itself)"
        );
        // é sorts between e and f; case does not matter.
        let mut words = ["f", "é", "E", "ea", "Z", "a"].map(casemap);
        words.sort();
        assert_eq!(words, ["A", "E", "EA", "E\u{301}", "F", "Z"]);
    }

    #[test]
    fn sent_dates_are_utc_and_fall_back_to_the_internal_date() {
        let header = |date: &str| format!("Date: {date}\r\nSubject: x\r\n\r\n").into_bytes();
        // RFC 5256 §2.2's example.
        assert_eq!(
            sent_date(&header("31 Dec 2000 16:01:33 -0800"), 7),
            sent_date(&header("Mon, 1 Jan 2001 00:01:33 +0000"), 7)
        );
        assert_eq!(
            sent_date(&header("Mon, 1 Jan 2001 00:01:33 +0000"), 7),
            978_307_293
        );
        assert_eq!(sent_date(&header("not a date"), 7), 7);
        assert_eq!(sent_date(b"Subject: no date\r\n\r\n", 7), 7);
    }

    fn criteria(keys: &[(bool, SortKey)]) -> Vec<SortCriterion> {
        keys.iter()
            .map(|(reverse, key)| SortCriterion {
                reverse: *reverse,
                key: key.clone(),
            })
            .collect()
    }

    #[test]
    fn keys_come_from_the_header() {
        let header = b"From: =?utf-8?q?J=C3=BCrgen?= <jr@b.test>\r\n\
            To: <ann@c.test>, bob@c.test\r\nCc: team: x@c.test;\r\n\
            Subject: Re: [list] hello\r\nDate: 2 Jan 2024 12:00:00 +0100\r\n\r\n";
        let facts = Facts {
            internal_date: 5,
            size: 99,
        };
        use SortKey::*;
        let values = values(
            &criteria(&[
                (false, Arrival),
                (false, Size),
                (false, Date),
                (false, Subject),
                (false, From),
                (false, To),
                (false, Cc),
                (false, DisplayFrom),
                (false, DisplayTo),
            ]),
            header,
            facts,
        );
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            values,
            [
                Value::Number(5),
                Value::Number(99),
                Value::Number(1_704_193_200),
                text("HELLO"),
                text("JR"),
                text("ANN"),
                text("TEAM"),
                text("JU\u{308}RGEN"),
                text("ANN@C.TEST"),
            ]
        );
        let empty = super::values(
            &criteria(&[(false, From), (false, DisplayTo)]),
            b"\r\n",
            facts,
        );
        assert_eq!(empty, [text(""), text("")]);
    }

    #[test]
    fn reverse_turns_one_key_round() {
        use SortKey::*;
        let c = criteria(&[(false, Subject), (true, Date)]);
        let a = [Value::Text("A".into()), Value::Number(1)];
        let b = [Value::Text("A".into()), Value::Number(2)];
        let z = [Value::Text("B".into()), Value::Number(0)];
        assert_eq!(compare(&c, &a, &b), Ordering::Greater);
        assert_eq!(compare(&c, &a, &z), Ordering::Less);
        assert_eq!(compare(&c, &a, &a), Ordering::Equal);
        assert!(!needs_header(&criteria(&[(true, Arrival), (false, Size)])));
        assert!(needs_header(&criteria(&[(false, Arrival), (false, Cc)])));
    }
}
