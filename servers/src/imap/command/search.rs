//! SEARCH and UID SEARCH. The keys are matched by `imap::search`; this is the command:
//! the charset, reading messages only when a key looks inside them, and the answer.

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::response::{Code, Data, Response, Status};
use imap_codec::imap_types::search::SearchKey;
use lifeboat_mailstore::error::Result as StoreResult;

use crate::imap::context::Context;
use crate::imap::response::{Reply, data, nz, ok};
use crate::imap::search::{Candidate, matches, needs_message, supports_charset};

pub fn search(
    cx: &mut Context,
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
    let (store, user, selected) = cx.selected();
    let view = &selected.view;
    let needs_bytes = criteria.iter().any(needs_message);
    let mut hits = Vec::new();
    for (index, message) in view.messages.iter().enumerate() {
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
        };
        if criteria
            .iter()
            .all(|key| matches(key, &candidate, view.exists(), view.max_uid()))
        {
            hits.push(nz(if uid { message.uid } else { index as u32 + 1 }));
        }
    }
    Ok(Reply::new(vec![
        data(Data::Search(hits, None)),
        ok(tag, "SEARCH completed"),
    ]))
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
