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
//! - Cost: a range (`BINARY[2]<0.65536>`, how clients page through a big attachment, one
//!   command each) decodes no more than it returns: base64 characters before it are
//!   counted, not decoded, and `BINARY.SIZE` counts them too. So paging costs what
//!   `BODY[2]<...>` costs: the message read and its MIME tree parsed once per command.
//!   Several ranges of one part in one FETCH decode the part once (`imap::fetch`).
//!   Quoted-printable (text, small) is decoded whole.
//! - APPEND with a literal8: a part whose body holds a NUL or says
//!   `Content-Transfer-Encoding: binary` is stored base64-encoded instead, its header
//!   saying so ([`storable`]): RFC 3516 §4.4 lets a server change the encoding without
//!   losing data, and every other reader of the store (FETCH BODY[], the web portal,
//!   replay over SMTP) needs mail without NUL and with CRLF lines. A NUL anywhere else
//!   (a header, a preamble) cannot be re-encoded and the APPEND is refused.

use std::num::NonZeroU32;

use base64::Engine;
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
    decode_range(header, body, 0, usize::MAX)
}

/// Bytes `start..start + length` of an entity's body with its transfer encoding
/// undone, decoding no more of it than that takes: base64 up to the end of the range
/// (what comes before is only counted), identity bodies only the range copied.
fn decode_range(
    header: &[u8],
    body: &[u8],
    start: usize,
    length: usize,
) -> Result<Vec<u8>, UnknownCte> {
    match cte(header) {
        Cte::Identity => Ok(range(body, start, length).to_vec()),
        Cte::Base64 => Ok(base64_range(body, start, length)),
        Cte::QuotedPrintable => {
            let decoded = quoted_printable_decode(body).unwrap_or_else(|| body.to_vec());
            Ok(range(&decoded, start, length).to_vec())
        }
        Cte::Unknown => Err(UnknownCte),
    }
}

/// The decoded size of an entity's body: counted, not decoded, for base64.
fn decoded_size(header: &[u8], body: &[u8]) -> Result<usize, UnknownCte> {
    match cte(header) {
        Cte::Identity => Ok(body.len()),
        Cte::Base64 => {
            let chars = base64_chars(body).count();
            Ok(chars / 4 * 3 + [0, 0, 1, 2][chars % 4])
        }
        Cte::QuotedPrintable | Cte::Unknown => decode(header, body).map(|d| d.len()),
    }
}

fn range(bytes: &[u8], start: usize, length: usize) -> &[u8] {
    let start = start.min(bytes.len());
    let end = start.saturating_add(length).min(bytes.len());
    &bytes[start..end]
}

/// The values of a base64 body's characters (RFC 2045 §6.8): characters outside the
/// alphabet are ignored, and `=` ends the data.
fn base64_chars(body: &[u8]) -> impl Iterator<Item = u8> + '_ {
    body.iter()
        .take_while(|&&b| b != b'=')
        .filter_map(|&b| match b {
            b'A'..=b'Z' => Some(b - b'A'),
            b'a'..=b'z' => Some(b - b'a' + 26),
            b'0'..=b'9' => Some(b - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        })
}

/// Decoded bytes `start..start + length` of a base64 body. Every 4 characters are 3
/// bytes, so the characters before the range's first group are skipped uncounted
/// into bytes; a last group of 2 or 3 characters is 1 or 2 bytes.
fn base64_range(body: &[u8], start: usize, length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(length.min(body.len() / 4 * 3 + 3));
    let mut chars = base64_chars(body).skip(start / 3 * 4);
    let mut drop = start % 3;
    let mut group = [0u8; 4];
    while out.len() < length {
        let mut n = 0;
        for slot in group.iter_mut() {
            match chars.next() {
                Some(value) => {
                    *slot = value;
                    n += 1;
                }
                None => break,
            }
        }
        let bits = group[..n]
            .iter()
            .fold(0u32, |acc, &v| acc << 6 | u32::from(v))
            << (6 * (4 - n));
        let bytes = bits.to_be_bytes();
        let produced = [0, 0, 1, 2, 3][n];
        for &byte in &bytes[1..1 + produced] {
            if drop > 0 {
                drop -= 1;
            } else if out.len() < length {
                out.push(byte);
            }
        }
        if n < 4 {
            break;
        }
    }
    out
}

/// The header and body of the entity a (non-empty) part number names.
fn entity_of<'a>(root: &Entity<'a>, part: &[NonZeroU32]) -> Option<(&'a [u8], &'a [u8])> {
    super::resolve_path(root, part).map(|entity| (entity.header, entity.body))
}

/// The data of `BINARY[part]<range>` (the whole section without a range) of the message
/// whose MIME tree is `root`: the whole message for no part; what does not exist is
/// empty.
pub fn section(
    root: &Entity<'_>,
    part: &[NonZeroU32],
    range: Option<(u32, NonZeroU32)>,
) -> Result<Vec<u8>, UnknownCte> {
    let (start, length) = range.map_or((0, usize::MAX), |(start, length)| {
        (start as usize, length.get() as usize)
    });
    if part.is_empty() {
        let whole = [root.header, root.body].concat();
        return Ok(self::range(&whole, start, length).to_vec());
    }
    match entity_of(root, part) {
        Some((header, body)) => decode_range(header, body, start, length),
        None => Ok(Vec::new()),
    }
}

/// The size `BINARY[part]` has (`BINARY.SIZE`), decoding only what must be.
pub fn size(root: &Entity<'_>, part: &[NonZeroU32]) -> Result<usize, UnknownCte> {
    if part.is_empty() {
        return Ok(root.header.len() + root.body.len());
    }
    match entity_of(root, part) {
        Some((header, body)) => decoded_size(header, body),
        None => Ok(0),
    }
}

/// Whether every `BINARY[part]` can be served: its encoding is known, or it does not
/// exist.
pub fn known<'p>(root: &Entity<'_>, mut parts: impl Iterator<Item = &'p [NonZeroU32]>) -> bool {
    parts.all(|part| entity_of(root, part).is_none_or(|(header, _)| cte(header) != Cte::Unknown))
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
        super::section(&tree::parse(message), part, None)
    }

    fn known(message: &[u8], part: &[NonZeroU32]) -> bool {
        super::known(&tree::parse(message), [part].into_iter())
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

    mod ranges {
        use proptest::prelude::*;

        use super::*;

        /// `data` base64-encoded in lines of `width`, with `junk` (outside the
        /// alphabet) sprinkled in, as a single-part message.
        fn encoded(data: &[u8], width: usize, junk: &[(usize, u8)]) -> Vec<u8> {
            let text = base64::engine::general_purpose::STANDARD.encode(data);
            let mut body: Vec<u8> = Vec::new();
            for line in text.as_bytes().chunks(width) {
                body.extend_from_slice(line);
                body.extend_from_slice(b"\r\n");
            }
            for &(at, byte) in junk {
                body.insert(at % (body.len() + 1), byte);
            }
            [&b"Content-Transfer-Encoding: base64\r\n\r\n"[..], &body].concat()
        }

        proptest! {
            #[test]
            fn a_range_decodes_to_the_same_bytes_as_the_whole_and_the_size_matches(
                data in prop::collection::vec(any::<u8>(), 0..300),
                width in 1..100usize,
                junk in prop::collection::vec((any::<usize>(), prop::sample::select(vec![b' ', b'*', b'\t', b'-', b'\n'])), 0..5),
                start in 0..320u32,
                length in 1..320u32,
            ) {
                let message = encoded(&data, width, &junk);
                let root = tree::parse(&message);
                let one = part(&[1]);
                prop_assert_eq!(super::super::section(&root, &one, None).unwrap(), data.clone());
                prop_assert_eq!(size(&root, &one).unwrap(), data.len());
                let length = NonZeroU32::new(length).unwrap();
                let range = super::super::section(&root, &one, Some((start, length))).unwrap();
                let from = (start as usize).min(data.len());
                let to = (from + length.get() as usize).min(data.len());
                prop_assert_eq!(range, data[from..to].to_vec());
            }
        }
    }
}
