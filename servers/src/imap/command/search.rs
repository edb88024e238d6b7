//! SEARCH and UID SEARCH. The keys are matched by `imap::search`; this is the command:
//! the charset, reading messages only when a key looks inside them, and the answer.

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::response::{Code, Data, Response, Status};
use imap_codec::imap_types::search::SearchKey;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::Reader;

use crate::imap::context::Context;
use crate::imap::response::{Reply, data, no, nz, ok};
use crate::imap::search::{Candidate, matches, needs_message, supports_charset};

pub fn search(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    charset: Option<Charset<'static>>,
    criteria: Vec1<SearchKey<'static>>,
    uid: bool,
) -> StoreResult<Reply> {
    if let Some(charset) = charset
        && !supports_charset(charset.as_ref())
    {
        return Ok(Reply::new(vec![bad_charset(tag)]));
    }
    let criteria = criteria.into_inner();
    let cancel = cx.cancel.clone();
    let enabled = cx.enabled();
    let (store, user, selected) = cx.selected();
    // The search goes by the flags as they are now: others' changes first (no EXPUNGE
    // during SEARCH, RFC 3501 §7.4.1).
    let mut responses = selected
        .refresh(store, reader, false, enabled, &[])?
        .unwrap_or_default();
    let view = &selected.view;
    let needs_bytes = criteria.iter().any(needs_message);
    let mut hits = Vec::new();
    for (index, message) in view.messages.iter().enumerate() {
        // Reading every message can take long; nobody waits for it at shutdown.
        if cancel.is_cancelled() {
            return Ok(Reply::new(vec![no(tag, None, "SEARCH cancelled")]));
        }
        let bytes = if needs_bytes {
            store.read_message(&user.address, &selected.record.name, message)?
        } else {
            Vec::new()
        };
        let candidate = Candidate {
            seq: index as u32 + 1,
            uid: message.uid,
            flags: message.flags,
            keywords: &message.keywords,
            internal_date: message.internal_date,
            size: message.size,
            message: &bytes,
            modseq: u64::try_from(message.modseq).unwrap_or(0),
            recent: view.is_recent(message.uid),
        };
        if criteria
            .iter()
            .all(|key| matches(key, &candidate, view.exists(), view.max_uid()))
        {
            hits.push(nz(if uid { message.uid } else { index as u32 + 1 }));
        }
    }
    responses.push(data(Data::Search(hits, None)));
    responses.extend(selected.withheld_expunges(enabled));
    responses.push(ok(tag, "SEARCH completed"));
    Ok(Reply::new(responses))
}

/// NO [BADCHARSET] naming the charsets that work (RFC 3501 §6.4.4).
fn bad_charset(tag: &Tag<'static>) -> Response<'static> {
    let supported = ["UTF-8", "US-ASCII"].map(|name| Charset::try_from(name).expect("valid"));
    Response::Status(
        Status::no(
            Some(tag.clone()),
            Some(Code::badcharset(supported.to_vec())),
            "only UTF-8 and US-ASCII searches",
        )
        .expect("valid text"),
    )
}

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
    }
}
