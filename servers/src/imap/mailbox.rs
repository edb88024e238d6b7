//! The selected mailbox as the client knows it: which messages have which sequence
//! numbers and flags. Changes made by others (new mail, flags set in another session,
//! messages removed) reach the client as untagged responses when the rules of RFC 3501
//! §7 allow: EXISTS and FETCH at any command, EXPUNGE (VANISHED once QRESYNC is on)
//! only where sequence numbers may shift (not during FETCH, STORE or SEARCH).

use std::num::NonZeroU32;

use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use super::fetch;
use super::flags::{mailbox_flags, new_keywords, permanent_flags};
use super::preparse;
use super::response::{data, nz, nz64, untagged_ok};
use super::vanished::{UidRanges, ranges};
use lifeboat_mailstore::error::Result;
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::{MailboxRecord, MessageRecord, Reader};
use lifeboat_mailstore::store::Store;

/// The extensions that change how a session reports changes, as enabled (RFC 5161) or
/// turned on by use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Enabled {
    /// FETCH responses carry MODSEQ (RFC 7162 §3.1).
    pub condstore: bool,
    /// Expunges are reported as VANISHED (RFC 7162 §3.2.10).
    pub qresync: bool,
}

pub struct Selected {
    pub record: MailboxRecord,
    pub read_only: bool,
    pub view: MailboxView,
    /// The keywords the client was told of in FLAGS (RFC 3501 §7.2.6): every keyword on
    /// a message of the mailbox, since a client may show only those (Thunderbird's tags).
    pub keywords: Vec<String>,
    /// The mailbox's HIGHESTMODSEQ as of the last change report that held nothing
    /// back: the client has heard of every change up to it, expunges included.
    pub synced_modseq: i64,
}

impl Selected {
    /// A mailbox just selected: the client is told of every keyword in it, and of the
    /// messages no session heard of before as `\Recent` ones.
    pub fn open(
        store: &Store,
        record: MailboxRecord,
        read_only: bool,
        mut view: MailboxView,
    ) -> Result<Selected> {
        let keywords = new_keywords(&[], view.messages.iter().map(|m| &m.keywords[..]));
        let first = first_recent(store, &record, read_only, &view.messages)?;
        view.recent = view.uids_from(first).collect();
        Ok(Selected {
            synced_modseq: record.highest_modseq,
            record,
            read_only,
            view,
            keywords,
        })
    }

    /// FLAGS (and for a read-write mailbox PERMANENTFLAGS) again when `fresh` holds
    /// keywords the client has not heard of: before any FETCH shows them.
    fn announce_keywords(&mut self, fresh: &MailboxView) -> Vec<Response<'static>> {
        let new = new_keywords(
            &self.keywords,
            fresh.messages.iter().map(|m| &m.keywords[..]),
        );
        if new.is_empty() {
            return Vec::new();
        }
        self.keywords.extend(new);
        let mut responses = vec![data(Data::Flags(mailbox_flags(&self.keywords)))];
        if !self.read_only {
            let permanent = Code::PermanentFlags(permanent_flags(&self.keywords));
            responses.push(untagged_ok(permanent, "flags permitted"));
        }
        responses
    }

    /// Looks for changes since the client last heard and brings the view up to date
    /// (see [`MailboxView::sync`]); `None` when the mailbox was deleted. The mailbox row's
    /// HIGHESTMODSEQ and UIDNEXT move with every change, so an unchanged mailbox costs one
    /// row read, not a reload of every message (a NOOP on 100k messages).
    pub fn refresh(
        &mut self,
        store: &Store,
        reader: &Reader,
        expunge_allowed: bool,
        enabled: Enabled,
        reported: &[u32],
    ) -> Result<Option<Vec<Response<'static>>>> {
        let Some(record) = reader.mailbox_by_id(self.record.id)? else {
            return Ok(None);
        };
        let unchanged = record.highest_modseq == self.record.highest_modseq
            && record.uidnext == self.record.uidnext
            && !(expunge_allowed && self.view.held_back_expunges);
        let mut responses = Vec::new();
        if !unchanged {
            let Some((record, fresh)) = MailboxView::load(reader, |r| r.mailbox_by_id(record.id))?
            else {
                return Ok(None);
            };
            let arrived = &fresh.messages[fresh
                .messages
                .partition_point(|m| m.uid <= self.view.max_uid())..];
            let first_recent = first_recent(store, &record, self.read_only, arrived)?;
            self.record = record;
            responses.extend(self.announce_keywords(&fresh));
            responses.extend(self.view.sync(
                fresh,
                expunge_allowed,
                enabled,
                reported,
                first_recent,
            ));
        }
        if !self.view.held_back_expunges {
            self.synced_modseq = self.record.highest_modseq;
        }
        Ok(Some(responses))
    }

    /// While expunges wait for a command that may report them, a QRESYNC client is told
    /// `OK [HIGHESTMODSEQ n]` with the last modseq it has heard everything up to, after
    /// the MODSEQ values a FETCH, STORE or SEARCH sent: RFC 7162 §3.2 requires it, or a
    /// client that lost the connection would resume past the expunge and keep the
    /// message forever.
    pub fn withheld_expunges(&self, enabled: Enabled) -> Option<Response<'static>> {
        (enabled.qresync && self.view.held_back_expunges).then(|| {
            let code = Code::HighestModSeq(nz64(self.synced_modseq));
            untagged_ok(code, "expunges not reported yet")
        })
    }
}

/// The first UID that is `\Recent` to this session among `heard` (the messages it hears
/// of now, in UID order). A read-write session claims those no session heard of before
/// (RFC 3501 §2.3.2: only the first session to be notified sees it as recent) in the
/// index, where each is claimed once; a read-only one sees them as recent without taking
/// them, and nothing is written when no message heard of is unclaimed.
fn first_recent(
    store: &Store,
    record: &MailboxRecord,
    read_only: bool,
    heard: &[MessageRecord],
) -> Result<u32> {
    let unclaimed = heard
        .last()
        .is_some_and(|m| m.uid >= record.first_recent_uid);
    if read_only || !unclaimed {
        return Ok(record.first_recent_uid);
    }
    store.claim_recent(record.id, record.uidnext)
}

/// Messages in sequence-number order (which is UID order).
#[derive(Clone, Debug, Default)]
pub struct MailboxView {
    pub messages: Vec<MessageRecord>,
    /// Messages gone from the store are still listed: the client may not hear of it yet.
    pub held_back_expunges: bool,
    /// UIDs of the messages that are `\Recent` to this session, ascending: it stays so
    /// for as long as the mailbox is selected.
    pub recent: Vec<u32>,
    /// UIDs of the messages the last `SEARCH RETURN (SAVE)` kept, ascending: what `$`
    /// stands for (RFC 5182). Empty when the mailbox is selected; messages leave it as
    /// the client hears they were expunged.
    pub saved: Vec<u32>,
}

/// The messages a command names: a sequence set as written, or the UIDs `$` stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageSet {
    Set(SequenceSet),
    /// Ascending.
    Uids(Vec<u32>),
}

impl MessageSet {
    /// The set a command names, with `$` ([`preparse::is_saved`]) as the view's saved
    /// result.
    pub fn named(set: SequenceSet, view: &MailboxView) -> MessageSet {
        if preparse::is_saved(&set) {
            MessageSet::Uids(view.saved.clone())
        } else {
            MessageSet::Set(set)
        }
    }
}

impl MailboxView {
    /// The mailbox `find` finds and its messages, read in one snapshot of the index, so
    /// that its UIDNEXT is above every UID listed and its HIGHESTMODSEQ covers every
    /// change seen; `None` when there is no such mailbox.
    pub fn load(
        reader: &Reader,
        find: impl FnOnce(&Reader) -> Result<Option<MailboxRecord>>,
    ) -> Result<Option<(MailboxRecord, MailboxView)>> {
        reader.snapshot(|reader| {
            let Some(record) = find(reader)? else {
                return Ok(None);
            };
            let view = MailboxView {
                messages: reader.visible_messages(record.id)?,
                held_back_expunges: false,
                recent: Vec::new(),
                saved: Vec::new(),
            };
            Ok(Some((record, view)))
        })
    }

    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    pub fn unseen(&self) -> u32 {
        self.count(|m| !m.flags.contains(Flags::SEEN))
    }

    pub fn deleted(&self) -> u32 {
        self.count(|m| m.flags.contains(Flags::DELETED))
    }

    fn count(&self, f: impl Fn(&MessageRecord) -> bool) -> u32 {
        self.messages.iter().filter(|m| f(m)).count() as u32
    }

    /// Sequence number of the first message without `\Seen`.
    pub fn first_unseen(&self) -> Option<NonZeroU32> {
        self.messages
            .iter()
            .position(|m| !m.flags.contains(Flags::SEEN))
            .map(|i| nz(i as u32 + 1))
    }

    pub fn is_recent(&self, uid: u32) -> bool {
        self.recent.binary_search(&uid).is_ok()
    }

    pub fn recent_count(&self) -> u32 {
        self.recent.len() as u32
    }

    /// How many messages no read-write session has claimed as `\Recent` yet.
    pub fn unclaimed(&self, record: &MailboxRecord) -> u32 {
        self.uids_from(record.first_recent_uid).count() as u32
    }

    /// UIDs of the messages from UID `first` on.
    fn uids_from(&self, first: u32) -> impl Iterator<Item = u32> + '_ {
        let start = self.messages.partition_point(|m| m.uid < first);
        self.messages[start..].iter().map(|m| m.uid)
    }

    pub fn max_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid)
    }

    pub fn by_uid(&self, uid: u32) -> Option<&MessageRecord> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| &self.messages[i])
    }

    /// Indexes (0-based positions) of the messages a set names, ascending. With `uid`,
    /// `*` is the highest UID and UIDs that do not exist are skipped; a sequence number
    /// past the end names nothing. `$` names its messages still in the view, whether
    /// `uid` or not (RFC 5182 §2.1).
    pub fn resolve(&self, set: &MessageSet, uid: bool) -> Vec<usize> {
        let set = match set {
            MessageSet::Set(set) => set,
            MessageSet::Uids(uids) => {
                return uids
                    .iter()
                    .filter_map(|&uid| self.messages.binary_search_by_key(&uid, |m| m.uid).ok())
                    .collect();
            }
        };
        let mut positions: Vec<usize> = if uid {
            let Some(largest) = NonZeroU32::new(self.max_uid()) else {
                return Vec::new();
            };
            // Iterating a UID range like 1:4294967295 value by value would be slow:
            // test each message against the ranges instead.
            let ranges = ranges(set, largest);
            self.messages
                .iter()
                .enumerate()
                .filter(|(_, m)| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&m.uid)))
                .map(|(i, _)| i)
                .collect()
        } else {
            let Some(largest) = NonZeroU32::new(self.exists()) else {
                return Vec::new();
            };
            let ranges = ranges(set, largest);
            (0..self.messages.len())
                .filter(|i| {
                    let seq = *i as u32 + 1;
                    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&seq))
                })
                .collect()
        };
        positions.dedup();
        positions
    }

    /// Whether every message number in a (non-UID) set exists: RFC 3501 §9 makes a
    /// number past the end, or any number in an empty mailbox, an error. `$` is always
    /// valid, empty or not (RFC 5182 §2.1).
    pub fn valid_sequence(&self, set: &MessageSet) -> bool {
        let MessageSet::Set(set) = set else {
            return true;
        };
        let Some(largest) = NonZeroU32::new(self.exists()) else {
            return false;
        };
        ranges(set, largest)
            .iter()
            .all(|(_, high)| *high <= largest.get())
    }

    /// Brings this view up to `fresh` and returns what to tell the client: EXPUNGE for
    /// messages that are gone, or one VANISHED with their UIDs once QRESYNC is on (only
    /// when `expunge_allowed`; otherwise they stay until a command that may renumber),
    /// FETCH FLAGS for changed flags (not for the UIDs in `reported`, which the caller
    /// answers itself), and EXISTS when mail arrived, with RECENT when some of it (UIDs
    /// from `first_recent` on) is recent to this session.
    pub fn sync(
        &mut self,
        fresh: MailboxView,
        expunge_allowed: bool,
        enabled: Enabled,
        reported: &[u32],
        first_recent: u32,
    ) -> Vec<Response<'static>> {
        let mut responses = Vec::new();
        let gone: Vec<usize> = (0..self.messages.len())
            .filter(|&i| fresh.by_uid(self.messages[i].uid).is_none())
            .collect();
        if expunge_allowed && !gone.is_empty() {
            let uids: Vec<u32> = gone.iter().map(|&i| self.messages[i].uid).collect();
            if enabled.qresync {
                let uids = UidRanges::from_ascending(&uids);
                responses.push(data(Data::Vanished {
                    earlier: false,
                    known_uids: uids.sequence_set(),
                }));
            } else {
                // Highest sequence number first, so each number is valid when sent.
                responses.extend(
                    gone.iter()
                        .rev()
                        .map(|&i| data(Data::Expunge(nz(i as u32 + 1)))),
                );
            }
            self.messages
                .retain(|m| uids.binary_search(&m.uid).is_err());
            // What is gone is neither recent nor in `$` (RFC 5182 §2.1: it loses messages
            // as the client hears they are gone).
            self.recent.retain(|r| uids.binary_search(r).is_err());
            self.saved.retain(|s| uids.binary_search(s).is_err());
        }
        self.held_back_expunges = !expunge_allowed && !gone.is_empty();
        for (i, message) in self.messages.iter_mut().enumerate() {
            let Some(now) = fresh.by_uid(message.uid) else {
                continue;
            };
            let changed = now.flags != message.flags || now.keywords != message.keywords;
            if changed && !reported.contains(&message.uid) {
                let recent = self.recent.binary_search(&message.uid).is_ok();
                responses.push(data(Data::Fetch {
                    seq: nz(i as u32 + 1),
                    items: fetch::flags_update(now, recent, true, enabled.condstore),
                }));
            }
            *message = now.clone();
        }
        let known = self.max_uid();
        let arrived: Vec<MessageRecord> = fresh
            .messages
            .into_iter()
            .filter(|m| m.uid > known)
            .collect();
        if !arrived.is_empty() {
            let recent_before = self.recent.len();
            self.recent.extend(
                arrived
                    .iter()
                    .map(|m| m.uid)
                    .filter(|&uid| uid >= first_recent),
            );
            self.messages.extend(arrived);
            responses.push(data(Data::Exists(self.exists())));
            if self.recent.len() > recent_before {
                responses.push(data(Data::Recent(self.recent_count())));
            }
        }
        responses
    }
}
