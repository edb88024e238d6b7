//! SORT and UID SORT (RFC 5256 §3), with SORT=DISPLAY's DISPLAYFROM and DISPLAYTO (RFC
//! 5957): the search is SEARCH's ([`run`]), each message found gets its keys from its
//! header (read alone, not the whole message), and `imap::sort` orders them.

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::search::SearchKey;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::Reader;

use super::search::{charset_refusal, run, withheld_expunges};
use crate::imap::context::Context;
use crate::imap::response::{Reply, data, no, nz, nz64, ok};
use crate::imap::search::{Need, has_modseq};
use crate::imap::sort::{self, Facts};

pub fn sort(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    criteria: &Vec1<SortCriterion>,
    charset: &Charset<'static>,
    search: Vec1<SearchKey<'static>>,
    uid: bool,
) -> StoreResult<Reply> {
    if let Some(refusal) = charset_refusal(tag, charset) {
        return Ok(Reply::new(vec![refusal]));
    }
    let criteria = criteria.as_ref();
    let need = if sort::needs_header(criteria) {
        Need::Header
    } else {
        Need::Nothing
    };
    let found = run(cx, reader, search.as_ref(), need, |_, record, header| {
        let facts = Facts {
            internal_date: record.internal_date,
            size: record.size,
        };
        sort::values(criteria, header, facts)
    })?;
    let Some((mut responses, mut hits)) = found else {
        return Ok(Reply::new(vec![no(tag, None, "SORT cancelled")]));
    };
    // Stable: messages equal by every key stay in mailbox order.
    hits.sort_by(|a, b| sort::compare(criteria, &a.kept, &b.kept));
    // RFC 7162 §3.1.5: with a MODSEQ key, the highest mod-sequence found.
    let modseq = has_modseq(search.as_ref())
        .then(|| hits.iter().map(|h| h.modseq).max())
        .flatten()
        .map(|m| nz64(i64::try_from(m).unwrap_or(i64::MAX)));
    let numbers = hits.iter().map(|h| nz(h.number(uid))).collect();
    responses.push(data(Data::Sort(numbers, modseq)));
    responses.extend(withheld_expunges(cx));
    responses.push(ok(tag, "SORT completed"));
    Ok(Reply::new(responses))
}

#[cfg(test)]
mod tests;
