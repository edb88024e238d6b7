//! THREAD and UID THREAD (RFC 5256 §3), ORDEREDSUBJECT and REFERENCES: the search is
//! SEARCH's ([`run`]), each message found gives what threading needs from its header
//! (read alone), and `imap::thread` threads them. REFERENCES takes the messages one
//! by one as they are found, so no message's references are kept longer than that.

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::search::SearchKey;
use lifeboat_mailstore::error::Result as StoreResult;
use lifeboat_mailstore::reader::{MessageRecord, Reader};

use super::search::{charset_refusal, run};
use crate::imap::context::Context;
use crate::imap::mime;
use crate::imap::response::{Outgoing, Reply, bad, no, ok};
use crate::imap::search::Need;
use crate::imap::sort::{base_subject, casemap, sent_date};
use crate::imap::thread::{Message, References, Threads, ordered_subject};

pub fn thread(
    cx: &mut Context,
    reader: &Reader,
    tag: &Tag<'static>,
    algorithm: &ThreadingAlgorithm<'static>,
    charset: &Charset<'static>,
    search: Vec1<SearchKey<'static>>,
    uid: bool,
) -> StoreResult<Reply> {
    if let Some(refusal) = charset_refusal(tag, charset) {
        return Ok(Reply::new(vec![refusal]));
    }
    let found = match algorithm {
        ThreadingAlgorithm::OrderedSubject => {
            let found = run(
                cx,
                reader,
                search.as_ref(),
                Need::Header,
                |seq, record, header| message(number(seq, record, uid), record, header),
            )?;
            found.map(|(responses, hits)| {
                let messages = hits.into_iter().map(|h| h.kept).collect();
                (responses, ordered_subject(messages))
            })
        }
        ThreadingAlgorithm::References => {
            let mut builder = References::new();
            let found = run(
                cx,
                reader,
                search.as_ref(),
                Need::Header,
                |seq, record, header| {
                    let id = mime::message_ids(header, "Message-ID").into_iter().next();
                    let mut references = mime::message_ids(header, "References");
                    if references.is_empty() {
                        references = mime::message_ids(header, "In-Reply-To");
                        references.truncate(1);
                    }
                    let message = message(number(seq, record, uid), record, header);
                    builder.add(message, id.as_deref(), &references);
                },
            )?;
            found.map(|(responses, _)| (responses, builder.threads()))
        }
        ThreadingAlgorithm::Other(_) => {
            return Ok(Reply::new(vec![bad(tag, "unknown threading algorithm")]));
        }
    };
    let Some((responses, threads)) = found else {
        return Ok(Reply::new(vec![no(tag, None, "THREAD cancelled")]));
    };
    Ok(Reply::new(answer(tag, responses, &threads)))
}

/// What the answer names a message by: its UID for UID THREAD.
fn number(seq: u32, record: &MessageRecord, uid: bool) -> u32 {
    if uid { record.uid } else { seq }
}

/// What threading needs of a message found.
fn message(number: u32, record: &MessageRecord, header: &[u8]) -> Message {
    let base = base_subject(&mime::subject(header).unwrap_or_default());
    Message {
        number,
        sent: sent_date(header, record.internal_date),
        subject: casemap(&base.text),
        reply: base.reply_or_forward,
    }
}

fn answer(
    tag: &Tag<'static>,
    responses: Vec<imap_codec::imap_types::response::Response<'static>>,
    threads: &Threads,
) -> Vec<Outgoing> {
    let mut out: Vec<Outgoing> = responses.into_iter().map(Outgoing::from).collect();
    out.push(Outgoing::Line(threads.encode()));
    out.push(ok(tag, "THREAD completed").into());
    out
}

#[cfg(test)]
mod tests;
