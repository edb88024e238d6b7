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

/// QRESYNC through the session, byte for byte, after RFC 7162's examples (with small
/// UIDs for its large ones).
#[cfg(test)]
mod session_tests {
    use crate::imap::testing::{Fixture, exchange};

    const SYSTEM: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

    fn enabled(count: usize) -> Fixture {
        let mut f = Fixture::logged_in(count);
        assert_eq!(f.run(b"e1 ENABLE QRESYNC\r\n")[0], "* ENABLED QRESYNC\r\n");
        f
    }

    /// The modseq of the message with this UID in INBOX.
    fn modseq(f: &Fixture, uid: u32) -> i64 {
        f.messages("INBOX")
            .iter()
            .find(|m| m.uid == uid)
            .unwrap()
            .modseq
    }

    #[test]
    fn expunge_answers_vanished_and_the_new_highestmodseq() {
        // §3.2.10: messages 3, 4, 7 and 11 are \Deleted (UIDs 3, 4, 7, 11 here).
        let mut f = enabled(11);
        f.run(b"s1 SELECT INBOX\r\n");
        f.run(b"a1 STORE 3,4,7,11 +FLAGS.SILENT (\\Deleted)\r\n");
        let next = f.mailbox("INBOX").highest_modseq + 1;
        assert_eq!(
            f.run(b"A202 EXPUNGE\r\n"),
            [
                "* VANISHED 3:4,7,11\r\n".to_string(),
                format!("A202 OK [HIGHESTMODSEQ {next}] EXPUNGE completed\r\n"),
            ]
        );
        // Then UIDs 2 and 6 (messages 2 and 4 now): only the new ones are reported.
        f.run(b"a2 STORE 2,4 +FLAGS.SILENT (\\Deleted)\r\n");
        let next = f.mailbox("INBOX").highest_modseq + 1;
        assert_eq!(
            f.run(b"A210 UID EXPUNGE 1:20\r\n"),
            [
                "* VANISHED 2,6\r\n".to_string(),
                format!("A210 OK [HIGHESTMODSEQ {next}] EXPUNGE completed\r\n"),
            ]
        );
        // Nothing expunged: a plain OK.
        assert_eq!(f.run(b"a3 EXPUNGE\r\n"), ["a3 OK EXPUNGE completed\r\n"]);
    }

    #[test]
    fn expunges_by_another_session_arrive_as_vanished() {
        let mut f = enabled(5);
        f.run(b"s1 SELECT INBOX\r\n");
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2,5 +FLAGS.SILENT (\\Deleted)\r\n");
        let (expunged, _) = exchange(&mut other, b"b3 EXPUNGE\r\n");
        // Without QRESYNC, the other session hears EXPUNGE.
        assert_eq!(expunged[..2], ["* 5 EXPUNGE\r\n", "* 2 EXPUNGE\r\n"]);
        assert_eq!(
            f.run(b"a1 NOOP\r\n"),
            ["* VANISHED 2,5\r\n", "a1 OK NOOP completed\r\n"]
        );
        assert_eq!(f.run(b"a2 NOOP\r\n"), ["a2 OK NOOP completed\r\n"]);
    }

    #[test]
    fn while_an_expunge_is_withheld_the_client_is_told_how_far_it_is_in_step() {
        // §3.2: a FETCH may not report the expunge, but shows a later MODSEQ.
        let mut f = enabled(3);
        f.run(b"s1 SELECT INBOX\r\n");
        let in_step = f.mailbox("INBOX").highest_modseq;
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        exchange(&mut other, b"b3 EXPUNGE\r\n");
        exchange(&mut other, b"b4 UID STORE 3 +FLAGS.SILENT (\\Flagged)\r\n");
        let flagged = modseq(&f, 3);
        assert_eq!(
            f.run(b"a1 FETCH 1 FLAGS\r\n"),
            [
                format!("* 1 FETCH (FLAGS () MODSEQ ({}))\r\n", modseq(&f, 1)),
                format!("* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ ({flagged}))\r\n"),
                format!("* OK [HIGHESTMODSEQ {in_step}] expunges not reported yet\r\n"),
                "a1 OK FETCH completed\r\n".into(),
            ]
        );
        assert_eq!(
            f.run(b"a2 NOOP\r\n"),
            ["* VANISHED 2\r\n", "a2 OK NOOP completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 FETCH 1 FLAGS\r\n"),
            [
                format!("* 1 FETCH (FLAGS () MODSEQ ({}))\r\n", modseq(&f, 1)),
                "a3 OK FETCH completed\r\n".into(),
            ]
        );
    }

    #[test]
    fn select_with_qresync_reports_what_vanished_and_changed_since() {
        // §3.2.5.1's example A03, on ten messages.
        let mut f = enabled(10);
        f.run(b"s1 SELECT INBOX\r\n");
        let inbox = f.mailbox("INBOX");
        let (uv, known) = (inbox.uidvalidity, inbox.highest_modseq);
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(
            &mut other,
            b"b2 UID STORE 2:3,5 +FLAGS.SILENT (\\Deleted)\r\n",
        );
        exchange(&mut other, b"b3 EXPUNGE\r\n");
        exchange(&mut other, b"b4 UID STORE 7 +FLAGS.SILENT (\\Seen)\r\n");
        exchange(
            &mut other,
            b"b5 UID STORE 9 +FLAGS.SILENT ($MDNSent \\Draft)\r\n",
        );
        let now = f.mailbox("INBOX").highest_modseq;
        let command = format!("A03 SELECT INBOX (QRESYNC ({uv} {known} 1:10))\r\n");
        assert_eq!(
            f.run(command.as_bytes()),
            [
                "* OK [CLOSED] previous mailbox closed\r\n".to_string(),
                format!("* FLAGS ({SYSTEM} $MDNSent)\r\n"),
                "* 7 EXISTS\r\n".into(),
                "* 0 RECENT\r\n".into(),
                format!("* OK [UIDVALIDITY {uv}] UIDs valid\r\n"),
                "* OK [UIDNEXT 11] predicted next UID\r\n".into(),
                format!("* OK [PERMANENTFLAGS ({SYSTEM} $MDNSent \\*)] flags permitted\r\n"),
                format!("* OK [HIGHESTMODSEQ {now}] highest modseq\r\n"),
                "* OK [UNSEEN 1] first unseen\r\n".into(),
                "* VANISHED (EARLIER) 2:3,5\r\n".into(),
                format!(
                    "* 4 FETCH (UID 7 FLAGS (\\Seen) MODSEQ ({}))\r\n",
                    modseq(&f, 7)
                ),
                format!(
                    "* 6 FETCH (UID 9 FLAGS (\\Draft $MDNSent) MODSEQ ({}))\r\n",
                    modseq(&f, 9)
                ),
                "A03 OK [READ-WRITE] SELECT completed\r\n".into(),
            ]
        );
        // Known UIDs narrow both; no known UIDs mean all up to UIDNEXT - 1.
        let narrow =
            f.run(format!("A04 EXAMINE INBOX (QRESYNC ({uv} {known} 1:4))\r\n").as_bytes());
        assert_eq!(
            narrow[9..],
            [
                "* VANISHED (EARLIER) 2:3\r\n",
                "A04 OK [READ-ONLY] SELECT completed\r\n"
            ]
        );
        let all = f.run(format!("A05 EXAMINE INBOX (QRESYNC ({uv} {known}))\r\n").as_bytes());
        assert_eq!(all[9], "* VANISHED (EARLIER) 2:3,5\r\n");
        assert_eq!(all.len(), 13);
        // In step already: nothing to say.
        let none = f.run(format!("A06 EXAMINE INBOX (QRESYNC ({uv} {now}))\r\n").as_bytes());
        assert_eq!(none.len(), 10, "{none:?}");
        // Another UIDVALIDITY: the rest is ignored (§3.2.5.1, example A02).
        let other_uv =
            f.run(format!("A02 EXAMINE INBOX (QRESYNC ({} {known} 1:10))\r\n", uv - 1).as_bytes());
        assert_eq!(other_uv.len(), 10, "{other_uv:?}");
        assert!(other_uv[9].starts_with("A02 OK"));
    }

    #[test]
    fn old_modseqs_get_every_named_uid_that_is_gone_narrowed_by_sequence_match_data() {
        // §3.2.5.2's examples A04 and B04: only UIDs divisible by three are left, and
        // the store no longer knows when the others went.
        let f = Fixture::logged_in(30);
        let inbox = f.mailbox("INBOX");
        let gone: Vec<u32> = (1..=30).filter(|uid| uid % 3 != 0).collect();
        f.store.expunge(inbox.id, &gone).unwrap();
        f.store.forget_old_tombstones(0).unwrap();
        let mut f = f;
        f.run(b"e1 ENABLE QRESYNC\r\n");
        let (uv, since) = (inbox.uidvalidity, inbox.highest_modseq);
        let a04 = f.run(format!("A04 SELECT INBOX (QRESYNC ({uv} {since} 1:29))\r\n").as_bytes());
        assert_eq!(
            a04[8..],
            [
                "* VANISHED (EARLIER) 1:2,4:5,7:8,10:11,13:14,16:17,19:20,22:23,25:26,28:29\r\n",
                "A04 OK [READ-WRITE] SELECT completed\r\n"
            ]
        );
        // Message 5 is UID 15 as the client says; message 7 is UID 21, not 22.
        let b04 = f.run(
            format!("B04 SELECT INBOX (QRESYNC ({uv} {since} 1:29 (5,7,9 15,22,27)))\r\n")
                .as_bytes(),
        );
        assert_eq!(
            b04[9..],
            [
                "* VANISHED (EARLIER) 16:17,19:20,22:23,25:26,28:29\r\n",
                "B04 OK [READ-WRITE] SELECT completed\r\n"
            ]
        );
    }

    #[test]
    fn uid_fetch_vanished_reports_expunges_before_the_changes() {
        // §3.2.6's example s100.
        let mut f = enabled(10);
        let known = f.mailbox("INBOX").highest_modseq;
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(
            &mut other,
            b"b2 UID STORE 3:4 +FLAGS.SILENT (\\Deleted)\r\n",
        );
        exchange(&mut other, b"b3 UID EXPUNGE 3:4\r\n");
        exchange(&mut other, b"b4 UID STORE 6 +FLAGS.SILENT (\\Seen)\r\n");
        f.run(b"s1 SELECT INBOX\r\n");
        let command = format!("s100 UID FETCH 2:8 (FLAGS) (CHANGEDSINCE {known} VANISHED)\r\n");
        assert_eq!(
            f.run(command.as_bytes()),
            [
                "* VANISHED (EARLIER) 3:4\r\n".to_string(),
                format!(
                    "* 4 FETCH (UID 6 FLAGS (\\Seen) MODSEQ ({}))\r\n",
                    modseq(&f, 6)
                ),
                "s100 OK FETCH completed\r\n".into(),
            ]
        );
        // UIDs this session still lists are not EARLIER news: they come as VANISHED
        // when the session may renumber.
        exchange(&mut other, b"b5 UID STORE 8 +FLAGS.SILENT (\\Deleted)\r\n");
        exchange(&mut other, b"b6 UID EXPUNGE 8\r\n");
        let fetched = f.run(command.replace("s100", "s101").as_bytes());
        assert_eq!(fetched[0], "* VANISHED (EARLIER) 3:4\r\n");
        assert_eq!(f.run(b"a1 NOOP\r\n")[0], "* VANISHED 8\r\n");
    }

    #[test]
    fn move_answers_vanished_and_highestmodseq() {
        let mut f = enabled(3);
        f.run(b"s1 SELECT INBOX\r\n");
        let archive = f.mailbox("Archive").uidvalidity;
        let next = f.mailbox("INBOX").highest_modseq + 1;
        assert_eq!(
            f.run(b"a1 UID MOVE 2:3 Archive\r\n"),
            [
                format!("* OK [COPYUID {archive} 2:3 1:2] moved\r\n"),
                "* VANISHED 2:3\r\n".into(),
                format!("a1 OK [HIGHESTMODSEQ {next}] MOVE completed\r\n"),
            ]
        );
    }

    #[test]
    fn what_close_removed_is_reported_at_the_next_select() {
        let mut f = enabled(3);
        f.run(b"s1 SELECT INBOX\r\n");
        let inbox = f.mailbox("INBOX");
        f.run(b"a1 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
        // Another session marks one this client never hears of; CLOSE removes both.
        let mut other = f.other_session();
        exchange(&mut other, b"b1 SELECT INBOX\r\n");
        exchange(&mut other, b"b2 STORE 3 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(f.run(b"a2 CLOSE\r\n"), ["a2 OK CLOSE completed\r\n"]);
        let select = f.run(
            format!(
                "a3 SELECT INBOX (QRESYNC ({} {}))\r\n",
                inbox.uidvalidity, inbox.highest_modseq
            )
            .as_bytes(),
        );
        assert_eq!(select[8], "* VANISHED (EARLIER) 2:3\r\n");
        assert!(select[9].starts_with("a3 OK"), "{select:?}");
    }

    #[test]
    fn a_mailbox_deleted_and_made_again_has_another_uidvalidity() {
        let mut f = enabled(0);
        f.run(b"a1 CREATE Projects\r\n");
        f.deliver("Projects", 1);
        let old = f.mailbox("Projects");
        let mut other = f.other_session();
        exchange(&mut other, b"b1 DELETE Projects\r\n");
        exchange(&mut other, b"b2 CREATE Projects\r\n");
        let select = f.run(
            format!(
                "a2 SELECT Projects (QRESYNC ({} {} 1))\r\n",
                old.uidvalidity, old.highest_modseq
            )
            .as_bytes(),
        );
        let now = f.mailbox("Projects").uidvalidity;
        assert_ne!(now, old.uidvalidity);
        assert_eq!(
            select[3],
            format!("* OK [UIDVALIDITY {now}] UIDs valid\r\n")
        );
        assert_eq!(
            select.len(),
            8,
            "no VANISHED: the client starts over {select:?}"
        );
    }

    #[test]
    fn qresync_parameters_are_checked_before_anything_changes() {
        let mut f = Fixture::selected(2);
        let uv = f.mailbox("INBOX").uidvalidity;
        let without = format!("a1 SELECT INBOX (QRESYNC ({uv} 1))\r\n");
        assert_eq!(
            f.run(without.as_bytes()),
            ["a1 BAD QRESYNC is not enabled\r\n"]
        );
        assert!(f.session.is_selected());
        f.run(b"e1 ENABLE QRESYNC\r\n");
        assert_eq!(
            f.run(format!("a2 SELECT INBOX (QRESYNC ({uv} 1 1:*))\r\n").as_bytes()),
            ["a2 BAD QRESYNC's UIDs and message numbers may not use *\r\n"]
        );
        assert_eq!(
            f.run(format!("a3 SELECT INBOX (QRESYNC ({uv} 1) QRESYNC ({uv} 1))\r\n").as_bytes()),
            ["a3 BAD a SELECT parameter was given twice\r\n"]
        );
        let both = f.run(format!("a4 SELECT INBOX (CONDSTORE QRESYNC ({uv} 1))\r\n").as_bytes());
        assert!(both.last().unwrap().starts_with("a4 OK"), "{both:?}");
    }
}
