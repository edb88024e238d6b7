//! Attachment file names: found in Content-Disposition `filename` or Content-Type
//! `name` (RFC 2231 continuations and charsets decoded by mail-parser, RFC 2047
//! encoded-words decoded here), made safe to save, and written back into a
//! `Content-Disposition: attachment` header for the download.

use lifeboat_servers::imap::mime::decode_words;
use lifeboat_servers::imap::mime::tree::{Entity, content_disposition};

/// The name a part asks to be saved under, if any (unsanitised).
pub fn declared(entity: &Entity<'_>) -> Option<String> {
    let from_disposition = content_disposition(entity.header).and_then(|(_, params)| {
        params
            .into_iter()
            .find(|(name, _)| name == "filename")
            .map(|(_, value)| value)
    });
    let name = from_disposition.or_else(|| entity.media.param("name").map(str::to_string))?;
    let name = if name.contains("=?") {
        decode_words(name.as_bytes())
    } else {
        name
    };
    Some(name)
}

/// A name safe to offer for saving: no directories, no control characters, no
/// leading dots, at most 200 characters; `fallback` when nothing is left.
pub fn safe(name: &str, fallback: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        fallback.to_string()
    } else {
        cleaned
    }
}

/// A name for a part that declares none: `part-1.2` with an extension from its type.
pub fn fallback(part: &str, kind: &str, subtype: &str) -> String {
    let extension = match (kind, subtype) {
        ("text", "plain") => "txt",
        ("text", "html") => "html",
        ("message", "rfc822") => "eml",
        ("application", "pdf") => "pdf",
        ("image", "jpeg") => "jpg",
        ("image", "png") => "png",
        ("image", "gif") => "gif",
        _ => "bin",
    };
    format!("part-{part}.{extension}")
}

/// `Content-Disposition: attachment` naming the file: an ASCII `filename` for old
/// browsers and `filename*` (RFC 6266 / RFC 5987) with the exact UTF-8 name.
pub fn attachment_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, ATTR_CHAR).to_string();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// RFC 5987 attr-char: everything else is percent-encoded.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_servers::imap::mime::tree::parse;

    #[test]
    fn rfc2231_and_encoded_word_names_are_decoded() {
        let part = b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''R%C3%A9sum;\r\n filename*1*=%C3%A9.pdf\r\n\r\nx";
        assert_eq!(declared(&parse(part)).as_deref(), Some("Résumé.pdf"));
        let part =
            b"Content-Type: application/pdf; name=\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe.pdf?=\"\r\n\r\nx";
        assert_eq!(declared(&parse(part)).as_deref(), Some("Grüße.pdf"));
    }

    #[test]
    fn names_cannot_escape_the_download_folder() {
        assert_eq!(safe("../../etc/passwd", "x"), "passwd");
        assert_eq!(safe("C:\\evil\\..\\a.exe", "x"), "a.exe");
        assert_eq!(safe(".bashrc", "x"), "bashrc");
        assert_eq!(safe("\u{0}\u{7}", "part-2.bin"), "part-2.bin");
    }

    #[test]
    fn the_download_header_carries_both_forms() {
        assert_eq!(
            attachment_disposition("Résumé 1.pdf"),
            "attachment; filename=\"R_sum_ 1.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%201.pdf"
        );
    }
}
