//! The trace block: header lines `deliver` puts in front of every copy that has an
//! envelope or a class to remember, so `store check --repair` can rebuild the index from
//! the Maildirs alone (docs/design.md §2, §4.6).
//!
//! ```text
//! Return-Path: <sender@else.example>      envelope sender, when there is one
//! Delivered-To: alice@example.com         one per original recipient
//! X-Lifeboat-Class: diverted              every class but `other`
//! X-Lifeboat-Trace: 9f0c…                 the seal: keyed tag of the lines above and
//!                                         the digest of the message below
//! ```
//!
//! Repair trusts a block only when its seal verifies under the store's key, so a message
//! that merely starts with such lines (a client's APPEND) is never taken for a captured
//! copy, and a genuine block moved onto other content (or the content changed under it)
//! is not trusted either. A client can still hand the store a genuine block, byte for
//! byte (COPY of a diverted copy, or APPEND of one it fetched): [`strip_genuine`] takes
//! it off whatever a caller stores, so only the store's own deliveries write one.

use crate::class::{CLASS_HEADER, Class};
use crate::secret::{Keyring, sha256};

/// The seal's header field, always the block's last line.
pub const TRACE_HEADER: &str = "X-Lifeboat-Trace";

/// What a trace block records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFields {
    /// Envelope sender (`Some("")` for `<>`).
    pub envelope_from: Option<String>,
    /// Original envelope recipients.
    pub envelope_to: Vec<String>,
    /// `None` when the block names no class (an `other` copy with an envelope).
    pub class: Option<Class>,
}

impl TraceFields {
    fn is_empty(&self) -> bool {
        self.envelope_from.is_none() && self.envelope_to.is_empty() && self.class.is_none()
    }
}

/// The block `deliver` writes in front of `message` (nothing when there is nothing to
/// record), sealed with `keyring`.
pub fn sealed_block(keyring: &Keyring, fields: &TraceFields, message: &[u8]) -> Vec<u8> {
    if fields.is_empty() {
        return Vec::new();
    }
    let mut block = Vec::with_capacity(256);
    if let Some(from) = &fields.envelope_from {
        block.extend_from_slice(format!("Return-Path: <{from}>\r\n").as_bytes());
    }
    for rcpt in &fields.envelope_to {
        block.extend_from_slice(format!("Delivered-To: {rcpt}\r\n").as_bytes());
    }
    if let Some(class) = fields.class {
        block.extend_from_slice(format!("{CLASS_HEADER}: {class}\r\n").as_bytes());
    }
    let seal = keyring.trace_seal(&block, &sha256(message));
    block.extend_from_slice(format!("{TRACE_HEADER}: {seal}\r\n").as_bytes());
    block
}

/// A trace block found at the top of a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub fields: TraceFields,
    /// Bytes of the block, seal line included: the message starts here.
    pub len: usize,
    /// Bytes before the seal line (what the seal covers, with the message's digest).
    signed_len: usize,
    /// The seal's value; `None` for a block without one (written before blocks were
    /// sealed, or a message's own leading `Return-Path`/`Delivered-To` lines).
    seal: Option<String>,
}

impl Found {
    /// Whether this store sealed the block over exactly the content that follows it.
    pub fn is_genuine(&self, keyring: &Keyring, content: &[u8]) -> bool {
        self.seal.as_deref().is_some_and(|seal| {
            keyring.trace_seal_matches(
                &content[..self.signed_len],
                &sha256(&content[self.len..]),
                seal,
            )
        })
    }
}

/// The trace-block lines at the top of `content`, if any: up to and including the first
/// seal line, or (unsealed) every leading `Return-Path`, `Delivered-To` and
/// `X-Lifeboat-Class` line.
pub fn find(content: &[u8]) -> Option<Found> {
    let mut fields = TraceFields::default();
    let mut at = 0;
    while at < content.len() {
        let end = content[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |i| at + i + 1);
        let line = &content[at..end];
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            break;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case(TRACE_HEADER) {
            return Some(Found {
                fields,
                len: end,
                signed_len: at,
                seal: Some(value.to_string()),
            });
        } else if name.eq_ignore_ascii_case("Return-Path") {
            let address = value.trim_start_matches('<').trim_end_matches('>');
            fields.envelope_from = Some(address.to_string());
        } else if name.eq_ignore_ascii_case("Delivered-To") {
            fields.envelope_to.push(value.to_string());
        } else if name.eq_ignore_ascii_case(CLASS_HEADER) {
            fields.class = Some(value.parse().unwrap_or(Class::Other));
        } else {
            break;
        }
        at = end;
    }
    (at > 0).then_some(Found {
        fields,
        len: at,
        signed_len: at,
        seal: None,
    })
}

/// `content` without a genuine trace block at its top: what a caller hands the store
/// never keeps one (a client's COPY or APPEND of a captured copy), so the only block a
/// file starts with is the one its own delivery wrote.
pub fn strip_genuine<'a>(keyring: &Keyring, content: &'a [u8]) -> &'a [u8] {
    match find(content) {
        Some(found) if found.is_genuine(keyring, content) => &content[found.len..],
        _ => content,
    }
}

/// The message without the trace block the store put in front of it (for replay): the
/// sealed block exactly, or for a file written before blocks were sealed, every leading
/// trace line as before.
pub fn strip(content: &[u8]) -> &[u8] {
    match find(content) {
        Some(found) => &content[found.len..],
        None => content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> TraceFields {
        TraceFields {
            envelope_from: Some("s@else.test".into()),
            envelope_to: vec!["alias@example.test".into()],
            class: Some(Class::Diverted),
        }
    }

    fn sealed(keyring: &Keyring, message: &[u8]) -> Vec<u8> {
        [sealed_block(keyring, &fields(), message), message.to_vec()].concat()
    }

    #[test]
    fn a_sealed_block_is_found_and_verifies_only_over_its_own_message() {
        let keyring = Keyring::from_bytes(&[3; 32]);
        let message = b"Delivered-To: earlier@hop.test\r\nSubject: s\r\n\r\nbody\r\n";
        let file = sealed(&keyring, message);
        let found = find(&file).unwrap();
        assert_eq!(found.fields, fields());
        assert!(found.is_genuine(&keyring, &file));
        // The message's own Delivered-To stays: the block ends at its seal.
        assert_eq!(strip(&file), message);
        assert_eq!(strip_genuine(&keyring, &file), message);

        let other_key = Keyring::from_bytes(&[4; 32]);
        assert!(!found.is_genuine(&other_key, &file));
        let mut changed = file.clone();
        *changed.last_mut().unwrap() = b'X';
        assert!(!find(&changed).unwrap().is_genuine(&keyring, &changed));
        let moved = [&file[..found.len], b"Subject: other\r\n\r\n".as_slice()].concat();
        assert!(!find(&moved).unwrap().is_genuine(&keyring, &moved));
        assert_eq!(strip_genuine(&keyring, &moved), moved);
    }

    #[test]
    fn a_forged_or_unsealed_block_is_never_genuine() {
        let keyring = Keyring::from_bytes(&[3; 32]);
        let forged = b"X-Lifeboat-Class: diverted\r\nReturn-Path: <ceo@example.test>\r\n\
            Delivered-To: alice@example.test\r\nSubject: s\r\n\r\nbody\r\n";
        let found = find(forged).unwrap();
        assert_eq!(found.fields.class, Some(Class::Diverted));
        assert!(!found.is_genuine(&keyring, forged));
        assert_eq!(strip_genuine(&keyring, forged), forged);
        let with_seal = [
            b"X-Lifeboat-Class: sent\r\nX-Lifeboat-Trace: 00112233445566778899aabbccddeeff\r\n"
                .as_slice(),
            b"Subject: s\r\n\r\n",
        ]
        .concat();
        assert!(!find(&with_seal).unwrap().is_genuine(&keyring, &with_seal));
        assert_eq!(find(b"Subject: s\r\n\r\n"), None);
    }

    #[test]
    fn other_copies_without_an_envelope_get_no_block() {
        let keyring = Keyring::from_bytes(&[3; 32]);
        assert!(sealed_block(&keyring, &TraceFields::default(), b"x").is_empty());
    }
}
