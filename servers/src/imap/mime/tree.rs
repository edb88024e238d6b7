//! The MIME tree of a stored message, as byte slices of the stored message.
//!
//! IMAP needs exact byte ranges (sizes, line counts, `BODY[1.2]`), so the tree is cut
//! here on the stored bytes with RFC 2046's rules: a delimiter is a whole line `--`
//! boundary (`--` again for the last one, blanks allowed after), and the line break
//! before it belongs to the delimiter. mail-parser reads the header values
//! (Content-Type with RFC 2231 parameters and the like); its own part offsets are
//! not used because it also takes a boundary found in the middle of a line and
//! measures parts inside base64-encoded messages against the decoded bytes.
//!
//! Broken MIME never fails: a multipart without a usable boundary or without any
//! delimiter is read as text/plain; a missing closing delimiter ends the last part at
//! the end of its parent. Nesting deeper than [`MAX_DEPTH`] is read as text/plain,
//! and parts past the [`MAX_ENTITIES`]-th are left out, which bounds the work and
//! memory any message can cause.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use super::header;

/// Deepest nesting of multiparts and messages that is parsed as such.
pub const MAX_DEPTH: usize = 32;
/// Most entities (the message itself, its parts, their parts...) parsed per message.
pub const MAX_ENTITIES: usize = 2000;

/// A message or a body part.
#[derive(Debug)]
pub struct Entity<'a> {
    /// The header, including the empty line that ends it.
    pub header: &'a [u8],
    /// The body as stored (still transfer-encoded).
    pub body: &'a [u8],
    pub media: MediaType,
    pub content: Content<'a>,
}

#[derive(Debug)]
pub enum Content<'a> {
    /// Any single part, including message/rfc822 that cannot be parsed as a message
    /// (it is transfer-encoded) and every part past the limits.
    Leaf,
    /// multipart/*: never empty.
    Multipart(Vec<Entity<'a>>),
    /// message/rfc822: the encapsulated message.
    Message(Box<Entity<'a>>),
}

/// A Content-Type as read: type and subtype in lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    pub kind: String,
    pub subtype: String,
    /// Parameters in header order (names in lower case, values decoded as RFC 2231
    /// says).
    pub params: Vec<(String, String)>,
}

impl MediaType {
    fn new(kind: &str, subtype: &str) -> MediaType {
        MediaType {
            kind: kind.to_string(),
            subtype: subtype.to_string(),
            params: Vec::new(),
        }
    }

    /// RFC 2045 5.2: what an entity without (or with an unreadable) Content-Type is.
    pub fn text_plain() -> MediaType {
        MediaType::new("text", "plain")
    }

    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind == kind && self.subtype == subtype
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole message.
pub fn parse(message: &[u8]) -> Entity<'_> {
    let mut budget = MAX_ENTITIES;
    entity(message, MediaType::text_plain(), 0, &mut budget)
}

fn entity<'a>(
    raw: &'a [u8],
    default_media: MediaType,
    depth: usize,
    budget: &mut usize,
) -> Entity<'a> {
    *budget = budget.saturating_sub(1);
    let body_start = header::body_start(raw);
    let (header, body) = raw.split_at(body_start);
    let media = content_type(header).unwrap_or(default_media);
    let within_limits = depth < MAX_DEPTH && *budget > 0;
    let mut entity = Entity {
        header,
        body,
        media,
        content: Content::Leaf,
    };
    if !within_limits {
        if entity.media.kind == "multipart" {
            entity.media = MediaType::text_plain();
        }
        return entity;
    }
    if entity.media.kind == "multipart" {
        entity.content = match multipart_children(&entity, depth, budget) {
            Some(children) => Content::Multipart(children),
            None => {
                entity.media = MediaType::text_plain();
                Content::Leaf
            }
        };
    } else if entity.media.is("message", "rfc822") && is_identity_encoding(header) {
        let inner = self::entity(body, MediaType::text_plain(), depth + 1, budget);
        entity.content = Content::Message(Box::new(inner));
    }
    entity
}

fn multipart_children<'a>(
    entity: &Entity<'a>,
    depth: usize,
    budget: &mut usize,
) -> Option<Vec<Entity<'a>>> {
    let boundary = entity.media.param("boundary").filter(|b| !b.is_empty())?;
    let bodies = split_multipart(entity.body, boundary.as_bytes(), (*budget).max(1))?;
    // RFC 2046 5.1.5: in a digest, parts without Content-Type are messages.
    let child_default = if entity.media.subtype == "digest" {
        MediaType::new("message", "rfc822")
    } else {
        MediaType::text_plain()
    };
    let mut children = Vec::with_capacity(bodies.len());
    for raw in bodies {
        // Past the limit the remaining parts are left out of the structure.
        if *budget == 0 {
            break;
        }
        children.push(self::entity(raw, child_default.clone(), depth + 1, budget));
    }
    Some(children)
}

/// An encapsulated message can only be read in place when it is not transfer-encoded
/// (RFC 2046 5.2.1 allows only 7bit, 8bit and binary for message/rfc822).
fn is_identity_encoding(header: &[u8]) -> bool {
    match header::first_value(header, "Content-Transfer-Encoding") {
        None => true,
        Some(value) => {
            let value = String::from_utf8_lossy(&value).to_ascii_lowercase();
            matches!(value.as_str(), "" | "7bit" | "8bit" | "binary")
        }
    }
}

/// The Content-Type of a header, if it has a readable one.
pub fn content_type(header: &[u8]) -> Option<MediaType> {
    let value = header::first_value(header, "Content-Type")?;
    let parsed = parse_value(&value, |s| s.parse_content_type())?;
    let HeaderValue::ContentType(ct) = parsed else {
        return None;
    };
    let subtype = ct.c_subtype.as_deref().filter(|s| is_token(s))?;
    if !is_token(&ct.c_type) {
        return None;
    }
    Some(MediaType {
        kind: ct.c_type.to_ascii_lowercase(),
        subtype: subtype.to_ascii_lowercase(),
        params: attributes(ct.attributes),
    })
}

/// A Content-Disposition: its type (lower case) and parameters.
pub fn content_disposition(header: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let value = header::first_value(header, "Content-Disposition")?;
    let HeaderValue::ContentType(cd) = parse_value(&value, |s| s.parse_content_type())? else {
        return None;
    };
    if !is_token(&cd.c_type) {
        return None;
    }
    Some((cd.c_type.to_ascii_lowercase(), attributes(cd.attributes)))
}

fn attributes(attributes: Option<Vec<mail_parser::Attribute<'_>>>) -> Vec<(String, String)> {
    attributes
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.name.to_ascii_lowercase(), a.value.into_owned()))
        .collect()
}

/// RFC 2045 token: what a type, subtype or disposition must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

/// Runs one of mail-parser's header value parsers on an unfolded value.
pub fn parse_value(
    value: &[u8],
    parser: impl for<'x> FnOnce(&mut MessageStream<'x>) -> HeaderValue<'x>,
) -> Option<HeaderValue<'static>> {
    // The parsers read up to the line end that ends the field.
    let mut line = Vec::with_capacity(value.len() + 3);
    line.push(b' ');
    line.extend_from_slice(value);
    line.extend_from_slice(b"\r\n");
    let mut stream = MessageStream::new(&line);
    match parser(&mut stream) {
        HeaderValue::Empty => None,
        parsed => Some(parsed.into_owned()),
    }
}

/// Splits a multipart body into its parts' bytes, or `None` when there is no part
/// (no delimiter line at all, or only a closing one). The `max_parts`-th part takes
/// the rest of the body, delimiters included, so a message with a million tiny
/// parts costs no more than one with `max_parts`.
pub fn split_multipart<'a>(
    body: &'a [u8],
    boundary: &[u8],
    max_parts: usize,
) -> Option<Vec<&'a [u8]>> {
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut line_start = 0;
    while line_start < body.len() {
        let line_end = header::line_end(body, line_start);
        let line = &body[line_start..line_end];
        if let Some(closing) = delimiter(line, boundary) {
            if let Some(start) = part_start {
                parts.push(&body[start..end_before_line_break(body, start, line_start)]);
            }
            if closing {
                part_start = None;
                break;
            }
            part_start = Some(line_end);
            if parts.len() + 1 >= max_parts {
                break;
            }
        }
        line_start = line_end;
    }
    // No closing delimiter: the last part runs to the end.
    if let Some(start) = part_start {
        parts.push(&body[start..]);
    }
    (!parts.is_empty()).then_some(parts)
}

/// Whether `line` is a delimiter line for `boundary`, and if so whether it closes.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (closing, rest) = match rest.strip_prefix(b"--") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    // Transport padding (RFC 2046 5.1.1) and the line break may follow, nothing else.
    rest.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(closing)
}

/// Where a part that starts at `start` ends when the next delimiter line starts at
/// `delimiter_start`: the CRLF (or LF) before a delimiter is part of the delimiter.
fn end_before_line_break(body: &[u8], start: usize, delimiter_start: usize) -> usize {
    let mut end = delimiter_start;
    if end > start && body[end - 1] == b'\n' {
        end -= 1;
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_takes_delimiter_line_breaks_out_of_parts() {
        let body = b"preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n";
        let parts = split_multipart(body, b"b", 100).unwrap();
        assert_eq!(parts, [&b"A: 1\r\n\r\none"[..], b"\r\ntwo"]);
    }

    #[test]
    fn delimiter_at_body_start_and_transport_padding() {
        let body = b"--b  \r\nx\r\n--b-- \t\r\n";
        assert_eq!(split_multipart(body, b"b", 100).unwrap(), [&b"x"[..]]);
    }

    #[test]
    fn boundary_prefix_is_not_a_delimiter() {
        let body = b"--b\r\n--bc\r\n--b-x\r\n--b--";
        assert_eq!(
            split_multipart(body, b"b", 100).unwrap(),
            [&b"--bc\r\n--b-x"[..]]
        );
    }

    #[test]
    fn boundary_inside_a_line_is_not_a_delimiter() {
        let body = b"--b\r\ntext --b more\r\n--b--";
        assert_eq!(
            split_multipart(body, b"b", 100).unwrap(),
            [&b"text --b more"[..]]
        );
    }

    #[test]
    fn unclosed_multipart_runs_to_the_end() {
        let body = b"--b\r\none\r\n--b\r\ntwo\r\n";
        assert_eq!(
            split_multipart(body, b"b", 100).unwrap(),
            [&b"one"[..], b"two\r\n"]
        );
    }

    #[test]
    fn empty_parts_are_kept() {
        let body = b"--b\r\n--b\r\n\r\nx\r\n--b--";
        assert_eq!(
            split_multipart(body, b"b", 100).unwrap(),
            [&b""[..], b"\r\nx"]
        );
    }

    #[test]
    fn no_part_means_none() {
        assert_eq!(split_multipart(b"just text\r\n", b"b", 100), None);
        assert_eq!(split_multipart(b"--b--\r\n", b"b", 100), None);
        assert_eq!(split_multipart(b"", b"b", 100), None);
    }

    #[test]
    fn last_allowed_part_takes_the_rest() {
        let body = b"--b\r\none\r\n--b\r\ntwo\r\n--b\r\nthree\r\n--b--\r\n";
        assert_eq!(
            split_multipart(body, b"b", 2).unwrap(),
            [&b"one"[..], b"two\r\n--b\r\nthree\r\n--b--\r\n"]
        );
        assert_eq!(split_multipart(body, b"b", 1).unwrap().len(), 1);
    }

    #[test]
    fn lf_only_line_ends() {
        let body = b"--b\nA: 1\n\none\n--b\n\ntwo\n--b--\n";
        assert_eq!(
            split_multipart(body, b"b", 100).unwrap(),
            [&b"A: 1\n\none"[..], b"\ntwo"]
        );
    }

    #[test]
    fn content_type_reading() {
        let ct = content_type(b"Content-Type: Text/HTML; Charset=\"UTF-8\"\r\n\r\n").unwrap();
        assert_eq!(ct.kind, "text");
        assert_eq!(ct.subtype, "html");
        assert_eq!(ct.params, [("charset".to_string(), "UTF-8".to_string())]);
        assert_eq!(content_type(b"Content-Type: garbage\r\n\r\n"), None);
        assert_eq!(content_type(b"Content-Type: \r\n\r\n"), None);
        assert_eq!(content_type(b"Content-Type: text/\r\n\r\n"), None);
        assert_eq!(content_type(b"Subject: x\r\n\r\n"), None);
    }

    #[test]
    fn multipart_without_boundary_is_text() {
        let m = b"Content-Type: multipart/mixed\r\n\r\n--b\r\nx\r\n--b--\r\n";
        let e = parse(m);
        assert!(matches!(e.content, Content::Leaf));
        assert_eq!(e.media, MediaType::text_plain());
    }

    #[test]
    fn multipart_without_delimiters_is_text() {
        let m = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts\r\n";
        let e = parse(m);
        assert!(matches!(e.content, Content::Leaf));
        assert!(e.media.is("text", "plain"));
    }

    #[test]
    fn digest_parts_default_to_messages() {
        let m = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in\r\n\r\nhi\r\n--d--\r\n";
        let e = parse(m);
        let Content::Multipart(children) = &e.content else {
            panic!("{e:?}")
        };
        assert!(children[0].media.is("message", "rfc822"));
        assert!(matches!(children[0].content, Content::Message(_)));
    }

    #[test]
    fn encoded_message_rfc822_is_a_leaf() {
        let m = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5\r\n";
        assert!(matches!(parse(m).content, Content::Leaf));
    }

    #[test]
    fn deep_nesting_stops_at_the_limit() {
        let mut m = Vec::new();
        for _ in 0..(MAX_DEPTH + 10) {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"Subject: bottom\r\n\r\nbody\r\n");
        let mut depth = 0;
        let root = parse(&m);
        let mut e = &root;
        while let Content::Message(inner) = &e.content {
            depth += 1;
            e = inner;
        }
        assert_eq!(depth, MAX_DEPTH);
    }

    #[test]
    fn many_parts_stop_at_the_budget() {
        let mut m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..(MAX_ENTITIES + 50) {
            m.extend_from_slice(b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n");
        }
        m.extend_from_slice(b"--b--\r\n");
        fn count(e: &Entity<'_>) -> usize {
            1 + match &e.content {
                Content::Leaf => 0,
                Content::Multipart(c) => c.iter().map(count).sum(),
                Content::Message(inner) => count(inner),
            }
        }
        assert!(count(&parse(&m)) <= MAX_ENTITIES);
    }
}
