//! The header section of an entity (a message or a MIME part): where it ends, its
//! fields as stored, and their values unfolded.
//!
//! Everything works on the stored bytes and never fails: a header that breaks
//! RFC 5322 still splits into a header and a body, and lines that are not fields are
//! kept (they belong to the header bytes) but never match a field name.

/// Where the body starts: just after the first empty line. The empty line belongs to
/// the header, as RFC 3501 wants for `BODY[HEADER]`. Without an empty line the whole
/// entity is header and the body is empty.
pub fn body_start(entity: &[u8]) -> usize {
    let mut line_start = 0;
    while line_start < entity.len() {
        let line_end = line_end(entity, line_start);
        if is_blank_line(&entity[line_start..line_end]) {
            return line_end;
        }
        line_start = line_end;
    }
    entity.len()
}

/// The end of the line starting at `start`, just after its LF (or the end of input).
pub fn line_end(bytes: &[u8], start: usize) -> usize {
    match bytes[start..].iter().position(|&b| b == b'\n') {
        Some(at) => start + at + 1,
        None => bytes.len(),
    }
}

fn is_blank_line(line: &[u8]) -> bool {
    matches!(line, b"\r\n" | b"\n")
}

/// One header field as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The name before the colon, without surrounding blanks; empty for a line that
    /// is not a field (no colon), so it never matches a requested name.
    pub name: &'a [u8],
    /// The whole field: name, value, continuation lines and the final line end.
    pub raw: &'a [u8],
    /// Everything after the colon, folded as stored, without the final line end.
    pub value: &'a [u8],
}

impl Field<'_> {
    pub fn is_named(&self, name: &[u8]) -> bool {
        !self.name.is_empty() && self.name.eq_ignore_ascii_case(name)
    }
}

/// The fields of a header section (the bytes up to and including the empty line).
pub fn fields(header: &[u8]) -> Fields<'_> {
    Fields { header, pos: 0 }
}

pub struct Fields<'a> {
    header: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let header = self.header;
        loop {
            if self.pos >= header.len() {
                return None;
            }
            let start = self.pos;
            let mut end = line_end(header, start);
            if is_blank_line(&header[start..end]) {
                self.pos = header.len();
                return None;
            }
            // Continuation lines belong to the field above.
            while end < header.len() && is_continuation(header[end]) {
                end = line_end(header, end);
            }
            self.pos = end;
            // A continuation line with no field above it (the header starts with a
            // blank) has nothing to belong to; skip it.
            if is_continuation(header[start]) {
                continue;
            }
            return Some(split_field(&header[start..end]));
        }
    }
}

fn is_continuation(first_byte: u8) -> bool {
    first_byte == b' ' || first_byte == b'\t'
}

fn split_field(raw: &[u8]) -> Field<'_> {
    let without_eol = strip_line_end(raw);
    match without_eol.iter().position(|&b| b == b':') {
        Some(colon) => Field {
            name: trim(&without_eol[..colon]),
            raw,
            value: &without_eol[colon + 1..],
        },
        None => Field {
            name: b"",
            raw,
            value: b"",
        },
    }
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Removes blanks (SP, HTAB, CR, LF) at both ends.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let is_blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = bytes
        .iter()
        .position(|b| !is_blank(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_blank(b))
        .map_or(start, |at| at + 1);
    &bytes[start..end]
}

/// A field value unfolded (RFC 5322 2.2.3: folding CRLFs removed, the blanks after
/// them kept) and trimmed. NULs are dropped: no IMAP string can carry them.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    trim(value)
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n' && b != 0)
        .collect()
}

/// The unfolded value of the first field named `name`, if there is one.
pub fn first_value(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .find(|field| field.is_named(name.as_bytes()))
        .map(|field| unfold(field.value))
}

/// The unfolded values of every field named `name`, in header order.
pub fn all_values(header: &[u8], name: &str) -> Vec<Vec<u8>> {
    fields(header)
        .filter(|field| field.is_named(name.as_bytes()))
        .map(|field| unfold(field.value))
        .collect()
}

/// The fields whose names are (`keep == true`) or are not (`keep == false`) among
/// `names`, as stored, followed by the empty line that ends a header (RFC 3501
/// `HEADER.FIELDS` / `HEADER.FIELDS.NOT`).
pub fn select_fields(header: &[u8], names: &[&[u8]], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields(header) {
        let listed = names.iter().any(|name| field.is_named(name));
        if listed == keep {
            out.extend_from_slice(field.raw);
            // A last field without a line end (header with no body) still needs one
            // before the empty line.
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_starts_after_the_first_empty_line() {
        let m = b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore";
        assert_eq!(&m[body_start(m)..], b"body\r\n\r\nmore");
    }

    #[test]
    fn header_without_empty_line_takes_everything() {
        let m = b"A: 1\r\nB: 2\r\n";
        assert_eq!(body_start(m), m.len());
        assert_eq!(body_start(b""), 0);
    }

    #[test]
    fn entity_starting_with_empty_line_has_empty_header() {
        assert_eq!(body_start(b"\r\nbody"), 2);
        assert_eq!(body_start(b"\nbody"), 1);
    }

    #[test]
    fn bare_lf_line_ends_are_tolerated() {
        let m = b"A: 1\nB: 2\n\nbody";
        assert_eq!(&m[body_start(m)..], b"body");
        let names: Vec<_> = fields(&m[..body_start(m)]).map(|f| f.name).collect();
        assert_eq!(names, [&b"A"[..], b"B"]);
    }

    #[test]
    fn fields_keep_continuation_lines() {
        let h = b"Subject: one\r\n two\r\n\tthree\r\nTo: x\r\n\r\n";
        let all: Vec<_> = fields(h).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, b"Subject");
        assert_eq!(all[0].raw, b"Subject: one\r\n two\r\n\tthree\r\n");
        assert_eq!(unfold(all[0].value), b"one two\tthree");
        assert_eq!(all[1].raw, b"To: x\r\n");
    }

    #[test]
    fn lines_without_colon_are_kept_but_nameless() {
        let h = b"garbage line\r\nA: 1\r\n\r\n";
        let all: Vec<_> = fields(h).collect();
        assert_eq!(all[0].name, b"");
        assert!(!all[0].is_named(b""));
        assert_eq!(all[1].name, b"A");
    }

    #[test]
    fn leading_continuation_line_is_skipped() {
        let h = b" orphan\r\nA: 1\r\n\r\n";
        let names: Vec<_> = fields(h).map(|f| f.name).collect();
        assert_eq!(names, [&b"A"[..]]);
    }

    #[test]
    fn names_match_case_insensitively_and_ignore_blanks_before_colon() {
        let h = b"SUBJECT : hi\r\n\r\n";
        assert_eq!(first_value(h, "subject").as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn first_and_all_values() {
        let h = b"Received: a\r\nX: 1\r\nReceived: b\r\n\r\n";
        assert_eq!(first_value(h, "received").as_deref(), Some(&b"a"[..]));
        assert_eq!(
            all_values(h, "RECEIVED"),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(first_value(h, "missing"), None);
    }

    #[test]
    fn unfold_drops_nul_and_line_ends() {
        assert_eq!(unfold(b" a\0b\r\n c \r\n"), b"ab c");
    }

    #[test]
    fn select_fields_keeps_order_and_adds_empty_line() {
        let h = b"From: a\r\nTo: b\r\nSubject: c\r\n d\r\n\r\n";
        assert_eq!(
            select_fields(h, &[b"subject", b"FROM"], true),
            b"From: a\r\nSubject: c\r\n d\r\n\r\n"
        );
        assert_eq!(
            select_fields(h, &[b"subject", b"FROM"], false),
            b"To: b\r\n\r\n"
        );
        assert_eq!(select_fields(h, &[b"x-none"], true), b"\r\n");
    }

    #[test]
    fn select_fields_terminates_an_unterminated_last_field() {
        assert_eq!(select_fields(b"A: 1", &[b"a"], true), b"A: 1\r\n\r\n");
    }
}
