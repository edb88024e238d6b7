//! What a QRESYNC client is told of messages that left a mailbox while it was away
//! (RFC 7162 §3.2.5.1, §3.2.5.2, §3.2.6): `VANISHED (EARLIER)` with the UIDs it asked
//! about that were expunged after the modseq it gave. The store's tombstones answer
//! exactly; where expiry has dropped the older ones, every UID asked about that is not in
//! the mailbox is reported, which the RFC allows, narrowed by the client's sequence match
//! data. UIDs go by ranges throughout, never one by one: a client may name
//! 1:4294967295.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use lifeboat_mailstore::error::Result;
use lifeboat_mailstore::reader::{MailboxRecord, MessageRecord, Reader};

use super::response::data;

/// UIDs as ascending, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UidRanges(Vec<(u32, u32)>);

impl UidRanges {
    /// UIDs 1 to `last`; none when `last` is 0.
    pub fn up_to(last: u32) -> UidRanges {
        UidRanges(if last == 0 { vec![] } else { vec![(1, last)] })
    }

    /// The UIDs a set names, `*` taken as `star` (at least 1).
    pub fn from_set(set: &SequenceSet, star: u32) -> UidRanges {
        let star = NonZeroU32::new(star).unwrap_or(NonZeroU32::MIN);
        let mut pairs = ranges(set, star);
        pairs.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(pairs.len());
        for (low, high) in pairs {
            match merged.last_mut() {
                Some((_, last)) if low <= last.saturating_add(1) => *last = (*last).max(high),
                _ => merged.push((low, high)),
            }
        }
        UidRanges(merged)
    }

    /// UIDs given one by one, ascending, with their runs folded.
    pub fn from_ascending(uids: &[u32]) -> UidRanges {
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for &uid in uids {
            match merged.last_mut() {
                Some((_, last)) if uid == last.saturating_add(1) => *last = uid,
                Some((_, last)) if uid <= *last => {}
                _ => merged.push((uid, uid)),
            }
        }
        UidRanges(merged)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, uid: u32) -> bool {
        let after = self.0.partition_point(|&(low, _)| low <= uid);
        after > 0 && self.0[after - 1].1 >= uid
    }

    /// Only the UIDs from `low` to `high`.
    fn within(&self, low: u32, high: u32) -> UidRanges {
        UidRanges(
            self.0
                .iter()
                .filter(|&&(l, h)| h >= low && l <= high)
                .map(|&(l, h)| (l.max(low), h.min(high)))
                .collect(),
        )
    }

    /// The UIDs of these ranges that none of `present` (in UID order) has: linear in
    /// the ranges and the messages.
    fn without(&self, present: &[MessageRecord]) -> UidRanges {
        let mut gaps = Vec::new();
        for &(low, high) in &self.0 {
            let start = present.partition_point(|m| m.uid < low);
            // The first UID not yet known to be present (u64: it may pass u32::MAX).
            let mut next = u64::from(low);
            for message in present[start..].iter().take_while(|m| m.uid <= high) {
                if u64::from(message.uid) > next {
                    gaps.push((next as u32, message.uid - 1));
                }
                next = u64::from(message.uid) + 1;
            }
            if next <= u64::from(high) {
                gaps.push((next as u32, high));
            }
        }
        UidRanges(gaps)
    }

    /// The ranges as a sequence set (`1` for none, which callers do not send).
    pub fn sequence_set(&self) -> SequenceSet {
        let value = |uid: u32| SeqOrUid::Value(NonZeroU32::new(uid).unwrap_or(NonZeroU32::MIN));
        let sequences: Vec<Sequence> = self
            .0
            .iter()
            .map(|&(low, high)| {
                if low == high {
                    Sequence::Single(value(low))
                } else {
                    Sequence::Range(value(low), value(high))
                }
            })
            .collect();
        SequenceSet(
            Vec1::try_from(sequences)
                .unwrap_or_else(|_| Vec1::from(Sequence::from(NonZeroU32::MIN))),
        )
    }
}

/// The client's message sequence match data (RFC 7162 §3.2.5.2): sequence numbers and
/// the UIDs it believes they have, in ascending order.
#[derive(Clone, Debug)]
pub struct SeqMatch {
    pub seqs: SequenceSet,
    pub uids: SequenceSet,
}

impl SeqMatch {
    /// The highest UID up to which the client knows every expunge: that of the last
    /// pair, in order, whose sequence number still has that UID. Pairs are taken while
    /// sequence numbers rise and name a message, so the walk is bounded by the mailbox.
    fn known_through(&self, messages: &[MessageRecord]) -> u32 {
        let mut through = 0;
        let mut last_seq = 0;
        for (seq, uid) in values(&self.seqs).zip(values(&self.uids)) {
            if seq <= last_seq {
                break;
            }
            last_seq = seq;
            match messages.get(seq as usize - 1) {
                Some(message) if message.uid == uid => through = uid,
                _ => break,
            }
        }
        through
    }
}

/// The values of a set without `*`, in the order given, each range ascending.
fn values(set: &SequenceSet) -> impl Iterator<Item = u32> + '_ {
    set.0.as_ref().iter().flat_map(|sequence| {
        let (a, b) = match sequence {
            Sequence::Single(v) => (v.to_non_zero_u32().get(), v.to_non_zero_u32().get()),
            Sequence::Range(a, b) => (a.to_non_zero_u32().get(), b.to_non_zero_u32().get()),
        };
        a.min(b)..=a.max(b)
    })
}

/// Whether a set uses `*`, which known UIDs and sequence match data may not.
pub fn has_asterisk(set: &SequenceSet) -> bool {
    set.0.as_ref().iter().any(|sequence| match sequence {
        Sequence::Single(v) => *v == SeqOrUid::Asterisk,
        Sequence::Range(a, b) => *a == SeqOrUid::Asterisk || *b == SeqOrUid::Asterisk,
    })
}

/// `VANISHED (EARLIER)` for the UIDs in `asked` that were expunged from `mailbox` after
/// modseq `since`, if any. UIDs the session still lists in `messages` are left out:
/// their expunge reaches the client as a plain VANISHED when the session may renumber.
pub fn earlier(
    reader: &Reader,
    mailbox: &MailboxRecord,
    messages: &[MessageRecord],
    asked: &UidRanges,
    since: i64,
    matched: Option<&SeqMatch>,
) -> Result<Option<Response<'static>>> {
    let asked = asked.within(1, mailbox.uidnext.saturating_sub(1));
    if asked.is_empty() {
        return Ok(None);
    }
    let listed = |uid: u32| messages.binary_search_by_key(&uid, |m| m.uid).is_ok();
    let gone = match reader.expunged_since(mailbox.id, since)? {
        Some(expunged) => {
            let gone: Vec<u32> = expunged
                .into_iter()
                .filter(|&uid| asked.contains(uid) && !listed(uid))
                .collect();
            UidRanges::from_ascending(&gone)
        }
        // The tombstones that far back are gone: everything asked about that is not
        // here, above what the sequence match data shows the client knows.
        None => {
            let through = matched.map_or(0, |m| m.known_through(messages));
            asked
                .within(through.saturating_add(1), u32::MAX)
                .without(messages)
        }
    };
    if gone.is_empty() {
        return Ok(None);
    }
    Ok(Some(data(Data::Vanished {
        earlier: true,
        known_uids: gone.sequence_set(),
    })))
}

/// The set's ranges as inclusive `(low, high)` pairs, `*` taken as `largest`.
pub fn ranges(set: &SequenceSet, largest: NonZeroU32) -> Vec<(u32, u32)> {
    use imap_codec::imap_types::sequence::Sequence;
    set.0
        .as_ref()
        .iter()
        .map(|sequence| match sequence {
            Sequence::Single(value) => {
                let v = value.expand(largest).get();
                (v, v)
            }
            Sequence::Range(a, b) => {
                let (a, b) = (a.expand(largest).get(), b.expand(largest).get());
                (a.min(b), a.max(b))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> SequenceSet {
        SequenceSet::try_from(text).unwrap()
    }

    fn messages(uids: &[u32]) -> Vec<MessageRecord> {
        uids.iter()
            .map(|&uid| MessageRecord {
                row: uid as i64,
                uid,
                basename: String::new(),
                flags: Default::default(),
                keywords: vec![],
                modseq: 1,
                internal_date: 0,
                size: 0,
                class: lifeboat_mailstore::Class::Journal,
                envelope_from: None,
                envelope_to: vec![],
                lifeboat_id: None,
                replay_state: None,
                expunged: false,
            })
            .collect()
    }

    #[test]
    fn sets_become_sorted_merged_ranges() {
        let ranges = UidRanges::from_set(&set("9,1:3,4,20:*,7:5"), 30);
        assert_eq!(ranges, UidRanges(vec![(1, 7), (9, 9), (20, 30)]));
        assert!(ranges.contains(1) && ranges.contains(9) && ranges.contains(25));
        assert!(!ranges.contains(8) && !ranges.contains(31) && !ranges.contains(0));
        assert_eq!(
            UidRanges::from_ascending(&[1, 2, 3, 5, 7, 8]).0,
            [(1, 3), (5, 5), (7, 8)]
        );
        assert_eq!(UidRanges::up_to(0), UidRanges::default());
    }

    #[test]
    fn what_is_missing_goes_by_ranges() {
        let present = messages(&[3, 6, 7, 10]);
        let asked = UidRanges(vec![(1, 8), (10, 4_000_000_000)]);
        assert_eq!(
            asked.without(&present).0,
            [(1, 2), (4, 5), (8, 8), (11, 4_000_000_000)]
        );
        assert_eq!(UidRanges(vec![(3, 3)]).without(&present).0, []);
        assert_eq!(UidRanges(vec![(6, 7)]).without(&present).0, []);
        assert_eq!(UidRanges(vec![(4, 4)]).without(&present).0, [(4, 4)]);
    }

    #[test]
    fn sequence_match_data_stops_at_the_first_pair_that_differs() {
        // RFC 7162 §3.2.5.2: 4th message is UID 8, 12th is 25, not 24.
        let mut uids = vec![1, 2, 5, 8];
        uids.extend(9..=16);
        uids[11] = 25;
        let present = messages(&uids);
        let matched = SeqMatch {
            seqs: set("4,12"),
            uids: set("8,24"),
        };
        assert_eq!(matched.known_through(&present), 8);
        // Falling sequence numbers or ones past the end end the walk.
        let falling = SeqMatch {
            seqs: set("4,1:4"),
            uids: set("8,1:2,5,8"),
        };
        assert_eq!(falling.known_through(&present), 8);
        let huge = SeqMatch {
            seqs: set("1:4294967294"),
            uids: set("1:4294967294"),
        };
        assert_eq!(huge.known_through(&present), 2);
    }
}
