//! RFC 3516 BINARY: sections with their Content-Transfer-Encoding undone (FETCH
//! `BINARY[1.2]`, `BINARY.SIZE`), and APPENDed binary content made storable.
//!
//! - FETCH: base64 and quoted-printable are decoded; 7bit, 8bit and binary (or no
//!   Content-Transfer-Encoding) are the bytes as stored; any other encoding is
//!   [`UnknownCte`], which FETCH answers with `NO [UNKNOWN-CTE]`. Data that breaks its
//!   encoding is read as RFC 2045 asks of a decoder (characters outside the base64
//!   alphabet are ignored); quoted-printable that cannot be decoded at all is served as
//!   stored. `BINARY[]` is the whole message as stored: the message as a whole has no
//!   transfer encoding (its body's is its part 1's).
//! - APPEND with a literal8: a part whose body holds a NUL or says
//!   `Content-Transfer-Encoding: binary` is stored base64-encoded instead, its header
//!   saying so ([`storable`]): RFC 3516 §4.4 lets a server change the encoding without
//!   losing data, and every other reader of the store (FETCH BODY[], the web portal,
//!   replay over SMTP) needs mail without NUL and with CRLF lines. A NUL anywhere else
//!   (a header, a preamble) cannot be re-encoded and the APPEND is refused.

use std::num::NonZeroU32;

use base64::Engine;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

use super::header;
use super::tree::{self, Content, Entity};

/// The section's Content-Transfer-Encoding is one this server cannot undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownCte;

/// The transfer encodings, as RFC 2045 §6.1 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cte {
    /// 7bit, 8bit, binary, or none given: the bytes are the data.
    Identity,
    Base64,
    QuotedPrintable,
    Unknown,
}

/// The Content-Transfer-Encoding of an entity's header.
pub fn cte(header: &[u8]) -> Cte {
    let Some(value) = header::first_value(header, "Content-Transfer-Encoding") else {
        return Cte::Identity;
    };
    let value = String::from_utf8_lossy(header::trim(&value)).to_ascii_lowercase();
    match value.as_str() {
        "" | "7bit" | "8bit" | "binary" => Cte::Identity,
        "base64" => Cte::Base64,
        "quoted-printable" => Cte::QuotedPrintable,
        _ => Cte::Unknown,
    }
}

/// An entity's body with its transfer encoding undone.
pub fn decode(header: &[u8], body: &[u8]) -> Result<Vec<u8>, UnknownCte> {
    match cte(header) {
        Cte::Identity => Ok(body.to_vec()),
        Cte::Base64 => {
            // RFC 2045 §6.8: characters outside the alphabet are ignored.
            let kept: Vec<u8> = body
                .iter()
                .copied()
                .filter(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .collect();
            Ok(base64_decode(&kept).unwrap_or_default())
        }
        Cte::QuotedPrintable => Ok(quoted_printable_decode(body).unwrap_or_else(|| body.to_vec())),
        Cte::Unknown => Err(UnknownCte),
    }
}

/// The data of `BINARY[part]` of the message whose MIME tree is `root`: the whole
/// message for no part; what does not exist is empty.
pub fn section(root: &Entity<'_>, part: &[NonZeroU32]) -> Result<Vec<u8>, UnknownCte> {
    if part.is_empty() {
        // The root's header and body are the whole message, one after the other.
        return Ok([root.header, root.body].concat());
    }
    match super::resolve_path(root, part) {
        Some(entity) => decode(entity.header, entity.body),
        None => Ok(Vec::new()),
    }
}

/// Whether every `BINARY[part]` can be served (its encoding is known, or it does not
/// exist): the message is parsed once for them all.
pub fn known<'p>(message: &[u8], parts: impl IntoIterator<Item = &'p [NonZeroU32]>) -> bool {
    let mut parts = parts.into_iter().filter(|part| !part.is_empty()).peekable();
    if parts.peek().is_none() {
        return true;
    }
    let root = tree::parse(message);
    parts.all(|part| {
        super::resolve_path(&root, part).is_none_or(|entity| cte(entity.header) != Cte::Unknown)
    })
}

/// An APPENDed message as the store can keep it: leaf parts whose body holds a NUL or
/// is labelled `binary` base64-encoded (their header says so); `None` when a NUL is
/// left elsewhere.
pub fn storable(content: Vec<u8>) -> Option<Vec<u8>> {
    let root = tree::parse(&content);
    let mut edits = Vec::new();
    collect_edits(&content, &root, &mut edits);
    if edits.is_empty() {
        return (!content.contains(&0)).then_some(content);
    }
    let mut out = Vec::with_capacity(content.len() * 4 / 3 + 64);
    let mut at = 0;
    for (start, end, replacement) in edits {
        out.extend_from_slice(&content[at..start]);
        out.extend_from_slice(&replacement);
        at = end;
    }
    out.extend_from_slice(&content[at..]);
    (!out.contains(&0)).then_some(out)
}

/// Where `part` (a slice of `whole`) starts in it.
fn offset(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// The leaves to re-encode, in order: (start, end, new header and body).
fn collect_edits(whole: &[u8], entity: &Entity<'_>, edits: &mut Vec<(usize, usize, Vec<u8>)>) {
    match &entity.content {
        Content::Multipart(children) => {
            children.iter().for_each(|c| collect_edits(whole, c, edits))
        }
        Content::Message(inner) => collect_edits(whole, inner, edits),
        Content::Leaf => {
            let binary = header::first_value(entity.header, "Content-Transfer-Encoding")
                .is_some_and(|v| header::trim(&v).eq_ignore_ascii_case(b"binary"));
            if !(binary || entity.body.contains(&0)) || cte(entity.header) == Cte::Base64 {
                return;
            }
            let start = offset(whole, entity.header);
            let body_start = offset(whole, entity.body);
            // The header ends with its empty line, right before the body.
            let Some(blank) = blank_line(entity.header) else {
                return;
            };
            if start + entity.header.len() != body_start {
                return;
            }
            let decoded = match decode(entity.header, entity.body) {
                Ok(decoded) => decoded,
                Err(UnknownCte) => entity.body.to_vec(),
            };
            let mut replacement = Vec::with_capacity(entity.header.len() + decoded.len() * 4 / 3);
            let fields = &entity.header[..blank];
            let mut kept = 0;
            for field in header::fields(fields) {
                if field.is_named(b"Content-Transfer-Encoding") {
                    let from = offset(fields, field.raw);
                    replacement.extend_from_slice(&fields[kept..from]);
                    kept = from + field.raw.len();
                }
            }
            replacement.extend_from_slice(&fields[kept..]);
            replacement.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
            replacement.extend_from_slice(&base64_lines(&decoded));
            edits.push((start, body_start + entity.body.len(), replacement));
        }
    }
}

/// Where the empty line that ends a header starts.
fn blank_line(header: &[u8]) -> Option<usize> {
    let without_last_lf = header.strip_suffix(b"\n")?;
    let start = without_last_lf
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    matches!(&header[start..], b"\r\n" | b"\n").then_some(start)
}

/// Base64 in lines of 76 characters (RFC 2045 §6.8), CRLF between them.
fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38);
    for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(numbers: &[u32]) -> Vec<NonZeroU32> {
        numbers
            .iter()
            .map(|&n| NonZeroU32::new(n).unwrap())
            .collect()
    }

    fn section(message: &[u8], part: &[NonZeroU32]) -> Result<Vec<u8>, UnknownCte> {
        super::section(&tree::parse(message), part)
    }

    fn known(message: &[u8], part: &[NonZeroU32]) -> bool {
        super::known(message, [part])
    }

    const MIXED: &str = "Subject: parts\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        caf=C3=A9 =\r\nsoft\r\n\
        --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        AAEC/w==\r\n\
        --b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\
        begin 644 x\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nplain\r\n\
        --b--\r\n";

    #[test]
    fn sections_are_decoded_by_their_encoding() {
        let message = MIXED.as_bytes();
        assert_eq!(
            section(message, &part(&[1])).unwrap(),
            "café soft".as_bytes()
        );
        assert_eq!(section(message, &part(&[2])).unwrap(), [0, 1, 2, 255]);
        assert_eq!(section(message, &part(&[3])), Err(UnknownCte));
        assert!(!known(message, &part(&[3])) && known(message, &part(&[2])));
        assert_eq!(section(message, &part(&[4])).unwrap(), b"plain");
        assert_eq!(section(message, &part(&[9])).unwrap(), b"");
        assert!(known(message, &part(&[9])));
        assert_eq!(section(message, &[]).unwrap(), message);
        // A message that is not multipart: part 1 is its body.
        let single = b"Content-Transfer-Encoding: BASE64\r\n\r\naGVs\r\nbG8=\r\n";
        assert_eq!(section(single, &part(&[1])).unwrap(), b"hello");
        // Outside the alphabet: ignored.
        let broken = b"Content-Transfer-Encoding: base64\r\n\r\naGV*sbG8\r\n";
        assert_eq!(section(broken, &part(&[1])).unwrap(), b"hello");
    }

    #[test]
    fn binary_parts_are_stored_base64_encoded_and_decode_to_what_was_sent() {
        let data: Vec<u8> = (0..=255u8).chain(b"\n\r\n\0".iter().copied()).collect();
        let mut message = b"Subject: bin\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
            --x\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
            --x\r\nContent-Type: application/octet-stream\r\n\
            Content-Transfer-Encoding: binary\r\n\r\n"
            .to_vec();
        message.extend_from_slice(&data);
        message.extend_from_slice(b"\r\n--x--\r\n");
        let stored = storable(message).unwrap();
        assert!(!stored.contains(&0));
        let text = String::from_utf8(stored.clone()).unwrap();
        assert!(text.contains("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF"));
        assert!(!text.contains("binary"));
        assert!(text.lines().all(|line| line.len() <= 76));
        assert_eq!(section(&stored, &part(&[2])).unwrap(), data);
        assert_eq!(section(&stored, &part(&[1])).unwrap(), b"hi");
        // Nothing binary: untouched.
        let plain = b"Subject: s\r\n\r\nbody\r\n".to_vec();
        assert_eq!(storable(plain.clone()).unwrap(), plain);
        // A single-part message with NUL in its body.
        let single = storable(b"Subject: s\r\n\r\na\0b".to_vec()).unwrap();
        assert_eq!(
            single,
            b"Subject: s\r\nContent-Transfer-Encoding: base64\r\n\r\nYQBi"
        );
        // A NUL in a header cannot be re-encoded.
        assert_eq!(storable(b"Subject: a\0b\r\n\r\nbody\r\n".to_vec()), None);
    }
}
