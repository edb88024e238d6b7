//! IMAP SEARCH keys (RFC 3501 6.4.4, plus MODSEQ from RFC 7162) evaluated against
//! one message at a time.
//!
//! - String keys match case-insensitively as substrings of decoded text: header
//!   values with encoded-words decoded, bodies with transfer encoding and charset
//!   decoded (the search string is read as UTF-8, which covers CHARSET US-ASCII and
//!   UTF-8). FROM, TO, CC and BCC also match each address as ENVELOPE reads it
//!   (`name <local@domain>`, without comments and routes). BODY looks through the
//!   text/* parts; TEXT through the header and those parts.
//! - BEFORE, ON and SINCE compare the day of the internal date in UTC (the server's
//!   zone); SENTBEFORE, SENTON and SENTSINCE the day written in the Date: header,
//!   falling back to the internal date when it is missing or unreadable.
//! - RECENT, NEW and OLD go by whether the message is `\Recent` to the session.
//! - Keywords compare case-insensitively.
//! - Sequence sets and UID sets are resolved once per command ([`Criteria`]) and looked
//!   up by halving; `$` (RFC 5182) is the saved result's UIDs.
//!
//! [`need`] says how much of a message the keys read: nothing, its header, or all.

use std::cell::OnceCell;

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::mime;
use super::preparse;
use super::response::runs;
use lifeboat_mailstore::maildir::Flags;

/// What SEARCH knows about one message.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Message sequence number in the session (1-based).
    pub seq: u32,
    pub uid: u32,
    /// The system flags, as the store keeps them.
    pub flags: Flags,
    /// The keywords (`$Forwarded`, `Junk`...), as the store keeps them.
    pub keywords: &'a [String],
    /// The internal date, in seconds since the Unix epoch.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// The whole message as stored.
    pub message: &'a [u8],
    pub modseq: u64,
    /// Whether it is `\Recent` to the session searching.
    pub recent: bool,
}

/// Whether `key` matches `candidate`. `max_seq` and `max_uid` are what `*` stands for
/// in sequence sets: the number of messages in the mailbox and the highest UID.
pub fn matches(key: &SearchKey<'_>, candidate: &Candidate<'_>, max_seq: u32, max_uid: u32) -> bool {
    Criteria::new(std::slice::from_ref(key), max_seq, max_uid, &[]).matches(candidate)
}

/// What evaluating keys reads of a message; [`Candidate::message`] need hold no more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Flags, dates, sizes, numbers: what the index has.
    Nothing,
    /// The header (up to its empty line): address, subject, header and sent-date keys.
    Header,
    /// The whole message: BODY and TEXT.
    Whole,
}

/// What evaluating `key` reads of a message.
pub fn need(key: &SearchKey<'_>) -> Need {
    match key {
        SearchKey::And(keys) => keys
            .as_ref()
            .iter()
            .map(need)
            .max()
            .unwrap_or(Need::Nothing),
        SearchKey::Or(a, b) => need(a).max(need(b)),
        SearchKey::Not(k) => need(k),
        SearchKey::Body(_) | SearchKey::Text(_) => Need::Whole,
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::To(_) => Need::Header,
        _ => Need::Nothing,
    }
}

/// Whether the keys hold a MODSEQ key, which makes the answer carry the highest
/// mod-sequence found (RFC 7162 §3.1.5, RFC 4731 §3.2).
pub fn has_modseq(keys: &[SearchKey<'_>]) -> bool {
    keys.iter().any(|key| match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => has_modseq(keys.as_ref()),
        SearchKey::Or(a, b) => {
            has_modseq(std::slice::from_ref(a)) || has_modseq(std::slice::from_ref(b))
        }
        SearchKey::Not(k) => has_modseq(std::slice::from_ref(k)),
        _ => false,
    })
}

/// Search keys (all of which must match) made ready to match message after message:
/// sequence sets are resolved once, as sorted ranges looked up by halving (a set of
/// 10,000 ranges against 100,000 messages costs no billion comparisons), and `$` (see
/// [`preparse::is_saved`]) is the saved result (RFC 5182).
pub struct Criteria<'k> {
    keys: Vec<Node<'k>>,
}

enum Node<'k> {
    And(Vec<Node<'k>>),
    Or(Box<Node<'k>>, Box<Node<'k>>),
    Not(Box<Node<'k>>),
    Seq(Ranges),
    Uid(Ranges),
    /// Any other key, matched by [`Matcher`].
    Key(&'k SearchKey<'k>),
}

impl<'k> Criteria<'k> {
    /// `max_seq` and `max_uid` are what `*` stands for; `saved` (ascending UIDs) is
    /// what `$` does.
    pub fn new(
        keys: &'k [SearchKey<'k>],
        max_seq: u32,
        max_uid: u32,
        saved: &[u32],
    ) -> Criteria<'k> {
        let compile = |key| Node::new(key, max_seq, max_uid, saved);
        Criteria {
            keys: keys.iter().map(compile).collect(),
        }
    }

    pub fn matches(&self, candidate: &Candidate<'_>) -> bool {
        let matcher = Matcher {
            candidate,
            header_text: OnceCell::new(),
            body_text: OnceCell::new(),
        };
        self.keys.iter().all(|node| node.matches(&matcher))
    }
}

impl<'k> Node<'k> {
    /// imap-codec nests keys at most 9 deep: the recursion is bounded.
    fn new(key: &'k SearchKey<'k>, max_seq: u32, max_uid: u32, saved: &[u32]) -> Node<'k> {
        let node = |key| Node::new(key, max_seq, max_uid, saved);
        match key {
            SearchKey::And(keys) => Node::And(keys.as_ref().iter().map(node).collect()),
            SearchKey::Or(a, b) => Node::Or(Box::new(node(a)), Box::new(node(b))),
            SearchKey::Not(k) => Node::Not(Box::new(node(k))),
            SearchKey::SequenceSet(set) | SearchKey::Uid(set) if preparse::is_saved(set) => {
                Node::Uid(Ranges(runs(saved.iter().copied())))
            }
            SearchKey::SequenceSet(set) => Node::Seq(Ranges::new(set, max_seq)),
            SearchKey::Uid(set) => Node::Uid(Ranges::new(set, max_uid)),
            key => Node::Key(key),
        }
    }

    fn matches(&self, m: &Matcher<'_, '_>) -> bool {
        match self {
            Node::And(nodes) => nodes.iter().all(|n| n.matches(m)),
            Node::Or(a, b) => a.matches(m) || b.matches(m),
            Node::Not(n) => !n.matches(m),
            Node::Seq(ranges) => ranges.contains(m.candidate.seq),
            Node::Uid(ranges) => ranges.contains(m.candidate.uid),
            Node::Key(key) => m.matches(key),
        }
    }
}

/// A sequence set as ascending, disjoint inclusive ranges.
struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    /// `*` stands for `max`; ranges may be written either way round (RFC 3501 §9: `4:2`
    /// is `2:4`).
    fn new(set: &SequenceSet, max: u32) -> Ranges {
        let resolve = |v: &SeqOrUid| match v {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => max,
        };
        let mut ranges: Vec<(u32, u32)> = set
            .0
            .as_ref()
            .iter()
            .map(|sequence| match sequence {
                Sequence::Single(v) => (resolve(v), resolve(v)),
                Sequence::Range(a, b) => {
                    let (a, b) = (resolve(a), resolve(b));
                    (a.min(b), a.max(b))
                }
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (low, high) in ranges {
            match merged.last_mut() {
                Some((_, last)) if low <= last.saturating_add(1) => *last = (*last).max(high),
                _ => merged.push((low, high)),
            }
        }
        Ranges(merged)
    }

    fn contains(&self, n: u32) -> bool {
        let after = self.0.partition_point(|&(low, _)| low <= n);
        after > 0 && self.0[after - 1].1 >= n
    }
}

/// Whether SEARCH can take strings in `charset` (the CHARSET argument): US-ASCII and
/// UTF-8, which RFC 3501 6.4.4 and RFC 9051 require; anything else should get a
/// `NO [BADCHARSET (US-ASCII UTF-8)]`.
pub fn supports_charset(charset: &str) -> bool {
    charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("US-ASCII")
}

/// Evaluates keys for one message, decoding its text at most once however many keys
/// look at it.
struct Matcher<'c, 'a> {
    candidate: &'c Candidate<'a>,
    header_text: OnceCell<String>,
    body_text: OnceCell<String>,
}

impl Matcher<'_, '_> {
    /// Whether a key other than AND, OR, NOT and sets (which [`Criteria`] matches)
    /// matches.
    fn matches(&self, key: &SearchKey<'_>) -> bool {
        let c = self.candidate;
        match key {
            SearchKey::All => true,

            SearchKey::Answered => c.flags.contains(Flags::ANSWERED),
            SearchKey::Deleted => c.flags.contains(Flags::DELETED),
            SearchKey::Draft => c.flags.contains(Flags::DRAFT),
            SearchKey::Flagged => c.flags.contains(Flags::FLAGGED),
            SearchKey::Seen => c.flags.contains(Flags::SEEN),
            SearchKey::Unanswered => !c.flags.contains(Flags::ANSWERED),
            SearchKey::Undeleted => !c.flags.contains(Flags::DELETED),
            SearchKey::Undraft => !c.flags.contains(Flags::DRAFT),
            SearchKey::Unflagged => !c.flags.contains(Flags::FLAGGED),
            SearchKey::Unseen => !c.flags.contains(Flags::SEEN),
            SearchKey::Keyword(k) => has_keyword(c, k.as_ref()),
            SearchKey::Unkeyword(k) => !has_keyword(c, k.as_ref()),
            SearchKey::Recent => c.recent,
            SearchKey::New => c.recent && !c.flags.contains(Flags::SEEN),
            SearchKey::Old => !c.recent,

            SearchKey::Larger(n) => c.size > u64::from(*n),
            SearchKey::Smaller(n) => c.size < u64::from(*n),

            SearchKey::Before(d) => internal_day(c) < day_number(d),
            SearchKey::On(d) => internal_day(c) == day_number(d),
            SearchKey::Since(d) => internal_day(c) >= day_number(d),
            SearchKey::SentBefore(d) => sent_day(c) < day_number(d),
            SearchKey::SentOn(d) => sent_day(c) == day_number(d),
            SearchKey::SentSince(d) => sent_day(c) >= day_number(d),

            SearchKey::From(s) => address_contains(c, "From", s),
            SearchKey::To(s) => address_contains(c, "To", s),
            SearchKey::Cc(s) => address_contains(c, "Cc", s),
            SearchKey::Bcc(s) => address_contains(c, "Bcc", s),
            SearchKey::Subject(s) => header_contains(c, "Subject", s),
            SearchKey::Header(name, s) => {
                header_contains(c, &String::from_utf8_lossy(name.as_ref()), s)
            }
            SearchKey::Body(s) => contains_text(self.body_text(), s),
            SearchKey::Text(s) => {
                contains_text(self.header_text(), s) || contains_text(self.body_text(), s)
            }

            // RFC 7162 3.1.5: modified at or after the given mod-sequence. Lifeboat keeps
            // one mod-sequence per message, so the entry name and type do not matter.
            SearchKey::ModSequence { modseq, .. } => c.modseq >= *modseq,

            // AND, OR, NOT and sets are compiled into [`Criteria`]; keys of extensions
            // Lifeboat does not announce (e.g. WITHIN), should some other crate enable
            // them in imap-types.
            _ => false,
        }
    }

    fn header_text(&self) -> &str {
        self.header_text
            .get_or_init(|| lowercase(&mime::header_text(self.candidate.message)))
    }

    fn body_text(&self) -> &str {
        self.body_text
            .get_or_init(|| lowercase(&mime::body_text(self.candidate.message)))
    }
}

fn has_keyword(c: &Candidate<'_>, keyword: &str) -> bool {
    c.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword))
}

const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of the internal date, in UTC.
fn internal_day(c: &Candidate<'_>) -> i64 {
    c.internal_date.div_euclid(SECONDS_PER_DAY)
}

/// Days since 1970-01-01 of the Date: header's own calendar day.
fn sent_day(c: &Candidate<'_>) -> i64 {
    match mime::sent_date(c.message) {
        Some((year, month, day)) => days_from_civil(i64::from(year), month, day),
        None => internal_day(c),
    }
}

/// Days since 1970-01-01 of a search date. (imap-types hands out chrono's date; its
/// inherent methods are enough, no chrono dependency needed.)
fn day_number(date: &NaiveDate) -> i64 {
    date.as_ref().and_hms_opt(0, 0, 0).map_or(0, |midnight| {
        midnight.and_utc().timestamp().div_euclid(SECONDS_PER_DAY)
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Whether any field `name` contains the string; an empty string matches any message
/// that has the field at all (RFC 3501 6.4.4 HEADER).
fn header_contains(c: &Candidate<'_>, name: &str, needle: &AString<'_>) -> bool {
    let needle = lowercase(&String::from_utf8_lossy(needle.as_ref()));
    mime::header_field(c.message, name)
        .iter()
        .any(|value| lowercase(value).contains(&needle))
}

/// Whether an address field contains the string: as written (decoded), or in one of its
/// addresses as ENVELOPE reads them (`mime::address_texts`: without comments or routes,
/// with the display name).
fn address_contains(c: &Candidate<'_>, name: &str, needle: &AString<'_>) -> bool {
    if header_contains(c, name, needle) {
        return true;
    }
    let needle = lowercase(&String::from_utf8_lossy(needle.as_ref()));
    mime::address_texts(c.message, name)
        .iter()
        .any(|text| lowercase(text).contains(&needle))
}

/// `haystack` must already be lower case.
fn contains_text(haystack: &str, needle: &AString<'_>) -> bool {
    haystack.contains(&lowercase(&String::from_utf8_lossy(needle.as_ref())))
}

/// Case folding for matching. Unicode lower case, so "Ä" finds "ä".
fn lowercase(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests;
