//! SEARCH and UID SEARCH, with ESEARCH's `RETURN (...)` (RFC 4731) and SEARCHRES's
//! SAVE (RFC 5182); and [`run`], the search SORT and THREAD make too. The keys are
//! matched by `imap::search`, the result options read by `imap::esearch`; this is the
//! command: the charset, reading of each message only as much as the keys (and the
//! caller) look at, and the answer.

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::response::{Code, Data, Response, Status};
use imap_codec::imap_types::search::SearchKey;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{MessageRecord, Reader};

use crate::imap::context::Context;
use crate::imap::esearch::{Esearch, ReturnOptions};
use crate::imap::response::{Outgoing, Reply, Responses, data, no, nz, nz64, ok};
use crate::imap::search::{Candidate, Criteria, Need, has_modseq, need, supports_charset};

/// SEARCH; with `returning`, an extended SEARCH answered by ESEARCH (or, for SAVE
/// alone, by nothing but the tagged OK), whose SAVE keeps the result for `$`.
pub fn search(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    charset: Option<Charset<'static>>,
    criteria: Vec1<SearchKey<'static>>,
    uid: bool,
    returning: Option<ReturnOptions>,
) -> StoreResult<Reply> {
    let save = returning.is_some_and(|o| o.save);
    // RFC 5182 §2.1: a SEARCH with SAVE that fails (NO) leaves `$` empty, whatever way
    // it fails; one that succeeds replaces it below.
    let result = found(cx, reader, tag, charset.as_ref(), criteria.as_ref());
    if save {
        cx.selected().2.view.saved.clear();
    }
    let (mut responses, hits) = match result? {
        Ok(found) => found,
        Err(refusal) => return Ok(Reply::new(vec![refusal])),
    };
    let numbers: Vec<u32> = hits.iter().map(|h| h.number(uid)).collect();
    let with_modseq = has_modseq(criteria.as_ref());
    let modseq_of = |number: u32| {
        // Numbers are ascending, as the hits are.
        let at = numbers.partition_point(|&n| n < number);
        hits.get(at).map_or(0, |h| h.modseq)
    };
    let mut out: Vec<Outgoing> = responses.drain(..).map(Outgoing::from).collect();
    match returning {
        None => {
            let modseq = with_modseq
                .then(|| hits.iter().map(|h| h.modseq).max())
                .flatten();
            let numbers = numbers.iter().map(|&n| nz(n)).collect();
            out.push(data(Data::Search(numbers, modseq.map(nz64_u))).into());
        }
        Some(options) => {
            if options.answers() {
                let modseq: Option<&dyn Fn(u32) -> u64> = with_modseq.then_some(&modseq_of);
                let esearch = Esearch::new(tag, uid, options, &numbers, modseq);
                out.push(Outgoing::Line(esearch.encode()));
            }
            if save {
                let uids: Vec<u32> = hits.iter().map(|h| h.uid).collect();
                cx.selected().2.view.saved = options.saved(&uids);
            }
        }
    }
    out.extend(withheld_expunges(cx).map(Outgoing::from));
    out.push(ok(tag, "SEARCH completed").into());
    Ok(Reply::new(out))
}

/// With QRESYNC, the HIGHESTMODSEQ a client may resume from while expunges wait
/// ([`Selected::withheld_expunges`](crate::imap::mailbox::Selected::withheld_expunges)):
/// after the MODSEQ values a SEARCH, SORT or THREAD answered.
pub(crate) fn withheld_expunges(cx: &mut Context) -> Option<Response<'static>> {
    let enabled = cx.enabled();
    cx.selected().2.withheld_expunges(enabled)
}

/// The messages the search finds, with the untagged responses that go before them; or
/// the refusal (a NO) to answer with.
type Found = Result<(Responses, Vec<Hit<()>>), Response<'static>>;

fn found(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    charset: Option<&Charset<'static>>,
    criteria: &[SearchKey<'static>],
) -> StoreResult<Found> {
    if let Some(refusal) = charset.and_then(|c| charset_refusal(tag, c)) {
        return Ok(Err(refusal));
    }
    Ok(
        match run(cx, reader, criteria, Need::Nothing, |_, _, _| ())? {
            Some(found) => Ok(found),
            None => Err(no(tag, None, "SEARCH cancelled")),
        },
    )
}

/// A message a search found, with what the caller kept of it.
#[derive(Debug)]
pub(crate) struct Hit<T> {
    pub seq: u32,
    pub uid: u32,
    pub modseq: u64,
    pub kept: T,
}

impl<T> Hit<T> {
    /// Its UID for a UID command, else its sequence number.
    pub fn number(&self, uid: bool) -> u32 {
        if uid { self.uid } else { self.seq }
    }
}

/// Searches the selected mailbox for the messages matching every key, in sequence
/// order, after bringing the view up to date (flag changes are reported, never
/// EXPUNGE: RFC 3501 §7.4.1, RFC 5256 §3). Each message is read only as far as the keys
/// or `need` ask (nothing, its header, or all of it), and `keep` makes what the caller
/// keeps of a hit from its sequence number, its record and those bytes. `None` when the command was
/// cancelled (the connection is going away).
pub(crate) fn run<T>(
    cx: &mut Context,
    reader: &Reader,
    criteria: &[SearchKey<'static>],
    need: Need,
    mut keep: impl FnMut(u32, &MessageRecord, &[u8]) -> T,
) -> StoreResult<Option<(Responses, Vec<Hit<T>>)>> {
    let cancel = cx.cancel.clone();
    let enabled = cx.enabled();
    let (store, user, selected) = cx.selected();
    // The search goes by the flags as they are now: others' changes first (no EXPUNGE
    // during SEARCH, RFC 3501 §7.4.1).
    let responses = selected
        .refresh(store, reader, false, enabled, &[])?
        .unwrap_or_default();
    let view = &selected.view;
    let read = criteria.iter().map(self::need).fold(need, Need::max);
    let criteria = Criteria::new(criteria, view.exists(), view.max_uid(), &view.saved);
    let mut hits = Vec::new();
    for (index, message) in view.messages.iter().enumerate() {
        // Reading every message can take long; nobody waits for it at shutdown.
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let bytes = match read {
            Need::Nothing => Ok(Vec::new()),
            Need::Header => store.read_header(&user.address, &selected.record.name, message),
            Need::Whole => store.read_message(&user.address, &selected.record.name, message),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            // RFC 2180 §4.1: another session expunged it, and this one may not hear of
            // it yet; it is searched as an empty message.
            Err(_) if reader.message_flags(message.row)?.is_none() => Vec::new(),
            Err(e) => return Err(e),
        };
        let seq = index as u32 + 1;
        let modseq = u64::try_from(message.modseq).unwrap_or(0);
        let candidate = Candidate {
            seq,
            uid: message.uid,
            flags: message.flags,
            keywords: &message.keywords,
            internal_date: message.internal_date,
            size: message.size,
            message: &bytes,
            modseq,
            recent: view.is_recent(message.uid),
        };
        if criteria.matches(&candidate) {
            hits.push(Hit {
                seq,
                uid: message.uid,
                modseq,
                kept: keep(seq, message, &bytes),
            });
        }
    }
    Ok(Some((responses, hits)))
}

/// NO [BADCHARSET] naming the charsets that work (RFC 3501 §6.4.4, RFC 5256 §3) when
/// `charset` is not one of them.
pub(crate) fn charset_refusal(
    tag: &Tag<'static>,
    charset: &Charset<'static>,
) -> Option<Response<'static>> {
    if supports_charset(charset.as_ref()) {
        return None;
    }
    let supported = ["UTF-8", "US-ASCII"].map(|name| Charset::try_from(name).expect("valid"));
    Some(Response::Status(
        Status::no(
            Some(tag.clone()),
            Some(Code::badcharset(supported.to_vec())),
            "only UTF-8 and US-ASCII searches",
        )
        .expect("valid text"),
    ))
}

fn nz64_u(n: u64) -> std::num::NonZeroU64 {
    nz64(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod extended;

#[cfg(test)]
mod tests {
    use crate::imap::testing::Fixture;
    use lifeboat_mailstore::{Class, NewMessage};

    #[test]
    fn search_by_flags_and_text() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 2 +FLAGS.SILENT (\\Seen)\r\n");
        assert_eq!(
            f.run(b"a1 SEARCH ALL\r\n"),
            ["* SEARCH 1 2 3\r\n", "a1 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a2 SEARCH UNSEEN\r\n"),
            ["* SEARCH 1 3\r\n", "a2 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID SEARCH SUBJECT \"message 2\"\r\n"),
            ["* SEARCH 2\r\n", "a3 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a4 SEARCH CHARSET utf-8 BODY \"body 3\"\r\n"),
            ["* SEARCH 3\r\n", "a4 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a5 SEARCH DELETED\r\n"),
            ["* SEARCH\r\n", "a5 OK SEARCH completed\r\n"]
        );
    }

    #[test]
    fn recent_new_and_old() {
        let mut f = Fixture::logged_in(0);
        f.deliver("INBOX", 1);
        let mut other = f.other_session();
        crate::imap::testing::exchange(&mut other, b"b1 SELECT INBOX\r\n");
        f.deliver("INBOX", 2);
        f.deliver("INBOX", 3);
        f.run(b"a1 SELECT INBOX\r\n");
        f.run(b"a2 STORE 2 +FLAGS.SILENT (\\Seen)\r\n");
        for (search, found) in [
            ("RECENT", "2 3"),
            ("NEW", "3"),
            ("OLD", "1"),
            ("NOT RECENT", "1"),
            ("OR NEW OLD", "1 3"),
        ] {
            assert_eq!(
                f.run(format!("a3 SEARCH {search}\r\n").as_bytes()),
                [
                    format!("* SEARCH {found}\r\n"),
                    "a3 OK SEARCH completed\r\n".into()
                ],
                "{search}"
            );
        }
    }

    #[test]
    fn address_keys_match_addresses_as_envelope_reads_them() {
        let mut f = Fixture::logged_in(0);
        let owner = lifeboat_mailstore::Address::parse(crate::imap::testing::USER).unwrap();
        for header in [
            "From: <user-from (comment)@ (comment) domain.org>",
            "To: joe(the man)@public.example, \"Q. Public\" <@a.example,@b.example:q@public.example>",
            "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            "Bcc: (hidden) secret(x)@ example.org",
        ] {
            let content = format!("{header}\r\nSubject: s\r\n\r\nbody\r\n").into_bytes();
            let message = NewMessage::new(owner.clone(), "INBOX", content, Class::Other);
            f.store.deliver(message).unwrap();
        }
        f.run(b"a0 SELECT INBOX\r\n");
        for (search, found) in [
            ("FROM user-from@domain.org", "1"),
            ("TO joe@public.example", "2"),
            ("TO q@public.example", "2"),
            ("TO \"Q. Public\"", "2"),
            ("FROM pete@silly.test", "3"),
            ("FROM \"Pete <pete@silly.test>\"", "3"),
            ("BCC secret@example.org", "4"),
            ("FROM domain.org", "1"),
        ] {
            assert_eq!(
                f.run(format!("a1 SEARCH {search}\r\n").as_bytes()),
                [
                    format!("* SEARCH {found}\r\n"),
                    "a1 OK SEARCH completed\r\n".into()
                ],
                "{search}"
            );
        }
    }

    #[test]
    fn search_goes_by_the_flags_another_session_set_and_reports_them() {
        let mut f = Fixture::selected(2);
        let mut other = f.other_session();
        crate::imap::testing::exchange(&mut other, b"b1 SELECT INBOX\r\n");
        crate::imap::testing::exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n");
        assert_eq!(
            f.run(b"a1 SEARCH ALL\r\n"),
            [
                "* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n",
                "* SEARCH 1 2\r\n",
                "a1 OK SEARCH completed\r\n"
            ]
        );
        assert_eq!(
            f.run(b"a2 SEARCH FLAGGED\r\n"),
            ["* SEARCH 2\r\n", "a2 OK SEARCH completed\r\n"]
        );
    }

    #[test]
    fn search_sequence_numbers_follow_expunges() {
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        f.run(b"a1 EXPUNGE\r\n");
        assert_eq!(
            f.run(b"a2 SEARCH SUBJECT \"message 3\"\r\n"),
            ["* SEARCH 2\r\n", "a2 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 UID SEARCH 2\r\n"),
            ["* SEARCH 3\r\n", "a3 OK SEARCH completed\r\n"]
        );
    }

    #[test]
    fn only_utf8_and_ascii_charsets() {
        let mut f = Fixture::selected(1);
        assert_eq!(
            f.run(b"a1 SEARCH CHARSET KOI8-R ALL\r\n"),
            ["a1 NO [BADCHARSET (UTF-8 US-ASCII)] only UTF-8 and US-ASCII searches\r\n"]
        );
        f.run(b"a2 UNSELECT\r\n");
        assert_eq!(
            f.run(b"a3 SEARCH ALL\r\n"),
            ["a3 BAD select a mailbox first\r\n"]
        );
    }

    #[test]
    fn sequence_and_uid_sets() {
        let mut f = Fixture::selected(3);
        assert_eq!(
            f.run(b"a1 SEARCH 2:*\r\n"),
            ["* SEARCH 2 3\r\n", "a1 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a2 UID SEARCH UID 1,3 NOT SEEN\r\n"),
            ["* SEARCH 1 3\r\n", "a2 OK SEARCH completed\r\n"]
        );
        assert_eq!(
            f.run(b"a3 SEARCH 3:2,1 UID 3:1\r\n"),
            ["* SEARCH 1 2 3\r\n", "a3 OK SEARCH completed\r\n"]
        );
    }

    #[test]
    fn a_modseq_search_answers_with_the_highest_modseq_found() {
        // RFC 7162 §3.1.5.
        let mut f = Fixture::selected(3);
        f.run(b"a0 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n");
        let modseq = |f: &Fixture, n: usize| f.messages("INBOX")[n].modseq;
        let (second, third) = (modseq(&f, 1), modseq(&f, 2));
        assert!(second > third);
        assert_eq!(
            f.run(format!("a1 SEARCH MODSEQ {third}\r\n").as_bytes()),
            [
                format!("* SEARCH 2 3 (MODSEQ {second})\r\n"),
                "a1 OK SEARCH completed\r\n".into()
            ]
        );
        assert_eq!(
            f.run(format!("a2 SEARCH RETURN (MIN) MODSEQ {third}\r\n").as_bytes()),
            [
                format!("* ESEARCH (TAG \"a2\") MIN 2 MODSEQ {second}\r\n"),
                "a2 OK SEARCH completed\r\n".into()
            ]
        );
        assert_eq!(
            f.run(b"a3 SEARCH MODSEQ 999999\r\n"),
            ["* SEARCH\r\n", "a3 OK SEARCH completed\r\n"]
        );
    }
}
