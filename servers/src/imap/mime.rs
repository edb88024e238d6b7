//! What IMAP FETCH needs from a stored message, computed from its bytes alone:
//! ENVELOPE, BODY / BODYSTRUCTURE and the bytes of `BODY[section]<partial>`
//! (RFC 3501 6.4.5 and 7.4.2).
//!
//! Every function takes any bytes and never panics; a message that breaks RFC 5322 or
//! MIME still gets a well-formed answer (see [`tree`] for how broken MIME is read).
//! Values that come from the message are passed through as stored (encoded-words
//! included, as clients expect) and become IMAP quoted strings when they are plain
//! 7-bit text, or literals otherwise (8-bit header bytes); NUL bytes, which no IMAP
//! string can carry, are dropped.
//!
//! How FETCH items map onto this module (`m` is the stored message):
//!
//! | item | value |
//! |---|---|
//! | `ENVELOPE` | [`envelope`]`(m)` |
//! | `BODY` / `BODYSTRUCTURE` | [`body_structure`]`(m, false)` / `(m, true)` |
//! | `BODY[s]`, `BODY.PEEK[s]` | [`section`]`(m, s)` (`None` for `BODY[]`) |
//! | `BODY[s]<o.n>` | [`partial`]`(&section(m, s), o, n)`, answered as `BODY[s]<o>` |
//! | `RFC822` / `.HEADER` / `.TEXT` | `m` / `section(m, HEADER)` / `section(m, TEXT)` |
//! | `RFC822.SIZE` | `m.len()` |
//! | `BINARY[p]`, `BINARY.SIZE[p]` | [`binary::section`]`(m, p)`, its length |

pub mod address;
pub mod binary;
pub mod header;
pub mod tree;

use std::num::NonZeroU32;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{AString, IString, NString, Quoted, Vec1};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::{Part, Section};
use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::map::charset_decoder;

use tree::{Content, Entity, MediaType};

// ------------------------------------------------------------------------------------
// ENVELOPE

/// The ENVELOPE of a message (RFC 3501 7.4.2), from its header.
///
/// Date, subject, In-Reply-To and Message-ID are the raw header values, unfolded:
/// IMAP sends encoded-words undecoded. Sender and Reply-To default to From when they
/// are missing or empty. Missing fields are NIL.
pub fn envelope(message: &[u8]) -> Envelope<'static> {
    let header = &message[..header::body_start(message)];
    let from = addresses(header, "From");
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: raw_nstring(header, "Date"),
        subject: raw_nstring(header, "Subject"),
        sender: or_from(addresses(header, "Sender")),
        reply_to: or_from(addresses(header, "Reply-To")),
        to: addresses(header, "To"),
        cc: addresses(header, "Cc"),
        bcc: addresses(header, "Bcc"),
        in_reply_to: raw_nstring(header, "In-Reply-To"),
        message_id: raw_nstring(header, "Message-ID"),
        from,
    }
}

/// The first field named `name`, unfolded, or NIL.
fn raw_nstring(header: &[u8], name: &str) -> NString<'static> {
    NString(header::first_value(header, name).map(istring))
}

/// The address list of the first field named `name`, in ENVELOPE form.
fn addresses(header: &[u8], name: &str) -> Vec<Address<'static>> {
    let Some(value) = header::first_value(header, name) else {
        return Vec::new();
    };
    address::parse_list(&value)
        .into_iter()
        .map(|item| match item {
            address::Item::Mailbox(m) => Address {
                name: NString(m.name.map(istring)),
                adl: NString(m.adl.map(istring)),
                mailbox: NString(Some(istring(m.mailbox))),
                host: NString(Some(istring(m.host))),
            },
            // RFC 3501: a group starts with (NIL NIL "name" NIL), ends with all NIL.
            address::Item::GroupStart(name) => Address {
                name: NString::NIL,
                adl: NString::NIL,
                mailbox: NString(Some(istring(name))),
                host: NString::NIL,
            },
            address::Item::GroupEnd => Address {
                name: NString::NIL,
                adl: NString::NIL,
                mailbox: NString::NIL,
                host: NString::NIL,
            },
        })
        .collect()
}

/// Any bytes as an IMAP string: quoted when it can be, a literal otherwise. NULs
/// are dropped, which is all it takes for the conversion to succeed.
fn istring(bytes: impl Into<Vec<u8>>) -> IString<'static> {
    let mut bytes = bytes.into();
    bytes.retain(|&b| b != 0);
    IString::try_from(bytes).unwrap_or_else(|_| IString::from(Quoted::unvalidated("")))
}

fn nstring(value: Option<impl Into<Vec<u8>>>) -> NString<'static> {
    NString(value.map(istring))
}

// ------------------------------------------------------------------------------------
// BODY and BODYSTRUCTURE

/// BODY (`extended == false`) or BODYSTRUCTURE (`extended == true`) of a message.
///
/// Types, subtypes, parameter names and encodings are sent in upper case like RFC
/// 3501's examples; parameter values as the message has them (RFC 2231 continuations
/// and charsets decoded). A text part without a charset gets `CHARSET US-ASCII`
/// (RFC 2045 5.2). Sizes are the encoded body bytes as stored; line counts are the
/// number of lines of the body as stored, a last line without line end included.
pub fn body_structure(message: &[u8], extended: bool) -> BodyStructure<'static> {
    structure(&tree::parse(message), extended)
}

fn structure(entity: &Entity<'_>, extended: bool) -> BodyStructure<'static> {
    if let Content::Multipart(children) = &entity.content {
        let bodies: Vec<_> = children.iter().map(|c| structure(c, extended)).collect();
        if let Ok(bodies) = Vec1::try_from(bodies) {
            return BodyStructure::Multi {
                bodies,
                subtype: istring(entity.media.subtype.to_ascii_uppercase()),
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: parameters(&entity.media.params),
                    tail: Some(disposition_and_more(entity.header)),
                }),
            };
        }
    }
    BodyStructure::Single {
        body: Body {
            basic: basic_fields(entity),
            specific: specific_fields(entity, extended),
        },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring(header::first_value(entity.header, "Content-MD5")),
            tail: Some(disposition_and_more(entity.header)),
        }),
    }
}

fn basic_fields(entity: &Entity<'_>) -> BasicFields<'static> {
    let mut params = entity.media.params.clone();
    if entity.media.kind == "text" && entity.media.param("charset").is_none() {
        params.insert(0, ("charset".to_string(), "US-ASCII".to_string()));
    }
    BasicFields {
        parameter_list: parameters(&params),
        id: nstring(header::first_value(entity.header, "Content-ID")),
        description: nstring(header::first_value(entity.header, "Content-Description")),
        content_transfer_encoding: istring(transfer_encoding(entity.header).to_ascii_uppercase()),
        size: u32::try_from(entity.body.len()).unwrap_or(u32::MAX),
    }
}

fn specific_fields(entity: &Entity<'_>, extended: bool) -> SpecificFields<'static> {
    let media = &entity.media;
    match &entity.content {
        Content::Message(inner) => SpecificFields::Message {
            envelope: Box::new(envelope_of(inner)),
            body_structure: Box::new(structure(inner, extended)),
            number_of_lines: line_count(entity.body),
        },
        _ if media.kind == "text" => SpecificFields::Text {
            subtype: istring(media.subtype.to_ascii_uppercase()),
            number_of_lines: line_count(entity.body),
        },
        // message/rfc822 that could not be read as a message (transfer-encoded): a
        // leaf "MESSAGE" "RFC822" would make clients look for an envelope that is not
        // there.
        _ if media.is("message", "rfc822") => SpecificFields::Basic {
            r#type: istring("APPLICATION"),
            subtype: istring("OCTET-STREAM"),
        },
        _ => SpecificFields::Basic {
            r#type: istring(media.kind.to_ascii_uppercase()),
            subtype: istring(media.subtype.to_ascii_uppercase()),
        },
    }
}

fn envelope_of(entity: &Entity<'_>) -> Envelope<'static> {
    envelope(entity.header)
}

/// Content-Transfer-Encoding as written, `7BIT` when missing (RFC 2045 6.1).
fn transfer_encoding(header: &[u8]) -> String {
    header::first_value(header, "Content-Transfer-Encoding")
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "7bit".to_string())
}

fn parameters(params: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    params
        .iter()
        .map(|(name, value)| (istring(name.to_ascii_uppercase()), istring(value.as_str())))
        .collect()
}

/// body-fld-dsp, body-fld-lang and body-fld-loc: always all three, NIL when absent.
fn disposition_and_more(header: &[u8]) -> Disposition<'static> {
    let disposition = tree::content_disposition(header)
        .map(|(kind, params)| (istring(kind.to_ascii_uppercase()), parameters(&params)));
    Disposition {
        disposition,
        tail: Some(Language {
            language: languages(header),
            tail: Some(Location {
                location: nstring(header::first_value(header, "Content-Location")),
                extensions: Vec::new(),
            }),
        }),
    }
}

/// Content-Language tags (RFC 3282), comma separated.
fn languages(header: &[u8]) -> Vec<IString<'static>> {
    let Some(value) = header::first_value(header, "Content-Language") else {
        return Vec::new();
    };
    value
        .split(|&b| b == b',')
        .map(header::trim)
        .filter(|tag| !tag.is_empty())
        .map(istring)
        .collect()
}

/// Lines in a body as stored: each line end counts, and so does a last line without
/// one (a part's last line ends where the delimiter's line break starts).
fn line_count(body: &[u8]) -> u32 {
    let line_ends = body.iter().filter(|&&b| b == b'\n').count();
    let unterminated = usize::from(!body.is_empty() && !body.ends_with(b"\n"));
    u32::try_from(line_ends + unterminated).unwrap_or(u32::MAX)
}

// ------------------------------------------------------------------------------------
// BODY[section]

/// The bytes of `BODY[section]` (RFC 3501 6.4.5): the whole message for `None`;
/// HEADER, HEADER.FIELDS (.NOT) and TEXT of the message or of an encapsulated
/// message (message/rfc822 part); MIME of a part; the body of a part by number (for a
/// message that is not multipart, part 1 is its body). What does not exist is empty.
pub fn section(message: &[u8], section: Option<&Section<'_>>) -> Vec<u8> {
    let Some(section) = section else {
        return message.to_vec();
    };
    let root = tree::parse(message);
    let part = |p: &Part| resolve(&root, &p.0);
    let bytes = match section {
        Section::Part(p) => part(p).map(|e| e.body.to_vec()),
        Section::Mime(p) => part(p).map(|e| e.header.to_vec()),
        Section::Header(p) => message_of(&root, p.as_ref()).map(|m| m.header.to_vec()),
        Section::Text(p) => message_of(&root, p.as_ref()).map(|m| m.body.to_vec()),
        Section::HeaderFields(p, names) => message_of(&root, p.as_ref())
            .map(|m| header::select_fields(m.header, &field_names(names), true)),
        Section::HeaderFieldsNot(p, names) => message_of(&root, p.as_ref())
            .map(|m| header::select_fields(m.header, &field_names(names), false)),
    };
    bytes.unwrap_or_default()
}

fn field_names<'a>(names: &'a Vec1<AString<'_>>) -> Vec<&'a [u8]> {
    names.as_ref().iter().map(|n| n.as_ref()).collect()
}

/// The message whose HEADER or TEXT is asked for: the message itself without a part
/// number, otherwise the message encapsulated in that (message/rfc822) part.
fn message_of<'e, 'a>(root: &'e Entity<'a>, part: Option<&Part>) -> Option<&'e Entity<'a>> {
    match part {
        None => Some(root),
        Some(p) => match &resolve(root, &p.0)?.content {
            Content::Message(inner) => Some(inner),
            _ => None,
        },
    }
}

/// The entity a part number (`1.2.3`) names.
fn resolve<'e, 'a>(root: &'e Entity<'a>, path: &Vec1<NonZeroU32>) -> Option<&'e Entity<'a>> {
    resolve_path(root, path.as_ref())
}

/// [`resolve`] for a path that may be empty (which names nothing).
fn resolve_path<'e, 'a>(root: &'e Entity<'a>, path: &[NonZeroU32]) -> Option<&'e Entity<'a>> {
    let (first, rest) = path.split_first()?;
    let mut current = message_child(root, *first)?;
    for &number in rest {
        current = match &current.content {
            Content::Multipart(children) => children.get(index(number))?,
            // The parts of a message/rfc822 part are those of its message.
            Content::Message(inner) => message_child(inner, number)?,
            Content::Leaf => return None,
        };
    }
    Some(current)
}

/// Part `number` of a message: a part of its multipart body, or, when the message is
/// not multipart, its one part (number 1) which is the message's own entity.
fn message_child<'e, 'a>(message: &'e Entity<'a>, number: NonZeroU32) -> Option<&'e Entity<'a>> {
    match &message.content {
        Content::Multipart(children) => children.get(index(number)),
        _ if number.get() == 1 => Some(message),
        _ => None,
    }
}

fn index(number: NonZeroU32) -> usize {
    usize::try_from(number.get() - 1).unwrap_or(usize::MAX)
}

/// `<start.len>` of a fetched section (RFC 3501 6.4.5): at most `len` bytes from
/// `start`; empty when `start` is past the end.
pub fn partial(bytes: &[u8], start: u32, len: NonZeroU32) -> &[u8] {
    let start = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let len = usize::try_from(len.get()).unwrap_or(usize::MAX);
    let end = start.saturating_add(len).min(bytes.len());
    &bytes[start..end]
}

// ------------------------------------------------------------------------------------
// Header values and decoded text (SEARCH)

/// The values of every field `name` in the message's header, unfolded, with
/// encoded-words decoded (RFC 2047) and other bytes read as UTF-8 (lossily).
pub fn header_field(message: &[u8], name: &str) -> Vec<String> {
    let header = &message[..header::body_start(message)];
    header::all_values(header, name)
        .iter()
        .map(|value| decode_words(value))
        .collect()
}

/// The addresses of every field `name` (From, To, Cc, Bcc) as ENVELOPE reads them, for
/// SEARCH: per mailbox its `local@domain`, its display name (encoded-words decoded) and
/// both as `name <local@domain>`. Comments, routes and folding are gone, so
/// `<user (comment)@ domain.org>` is found as `user@domain.org`.
pub(crate) fn address_texts(message: &[u8], name: &str) -> Vec<String> {
    let header = &message[..header::body_start(message)];
    let mut texts = Vec::new();
    for value in header::all_values(header, name) {
        for item in address::parse_list(&value) {
            let address::Item::Mailbox(mailbox) = item else {
                continue;
            };
            let spec = format!(
                "{}@{}",
                String::from_utf8_lossy(&mailbox.mailbox),
                String::from_utf8_lossy(&mailbox.host)
            );
            if let Some(display) = mailbox.name.as_deref().map(decode_words) {
                texts.push(format!("{display} <{spec}>"));
            }
            texts.push(spec);
        }
    }
    texts
}

/// A header value with its encoded-words decoded.
pub fn decode_words(value: &[u8]) -> String {
    match tree::parse_value(value, |s| s.parse_unstructured()) {
        Some(HeaderValue::Text(text)) => text.into_owned(),
        _ => String::from_utf8_lossy(value).into_owned(),
    }
}

/// The whole header of a message, each field on its own line with encoded-words
/// decoded: what SEARCH TEXT looks through besides the body.
pub(crate) fn header_text(message: &[u8]) -> String {
    let header = &message[..header::body_start(message)];
    let mut text = String::new();
    for field in header::fields(header) {
        if field.name.is_empty() {
            // Not a field, but still text of the header.
            text.push_str(&String::from_utf8_lossy(&header::unfold(field.raw)));
        } else {
            text.push_str(&String::from_utf8_lossy(field.name));
            text.push_str(": ");
            text.push_str(&decode_words(&header::unfold(field.value)));
        }
        text.push('\n');
    }
    text
}

/// The text of every text/* part (those inside attached messages too), transfer
/// encoding and charset decoded, one after the other: what SEARCH BODY looks through.
pub(crate) fn body_text(message: &[u8]) -> String {
    let mut text = String::new();
    collect_text(&tree::parse(message), &mut text);
    text
}

fn collect_text(entity: &Entity<'_>, out: &mut String) {
    match &entity.content {
        Content::Multipart(children) => children.iter().for_each(|c| collect_text(c, out)),
        Content::Message(inner) => collect_text(inner, out),
        Content::Leaf if entity.media.kind == "text" => {
            out.push_str(&decode_text(entity));
            out.push('\n');
        }
        Content::Leaf => {}
    }
}

/// The text of a leaf entity: transfer encoding and charset undone.
pub fn decode_text(entity: &Entity<'_>) -> String {
    let bytes = decode_transfer(entity.header, entity.body);
    decode_charset(&entity.media, &bytes)
}

/// The body with its Content-Transfer-Encoding undone; as stored when the encoding is
/// unknown.
pub fn decode_transfer(header: &[u8], body: &[u8]) -> Vec<u8> {
    binary::decode(header, body).unwrap_or_else(|_| body.to_vec())
}

fn decode_charset(media: &MediaType, bytes: &[u8]) -> String {
    let decoder = media
        .param("charset")
        .and_then(|charset| charset_decoder(charset.as_bytes()));
    match decoder {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The Date: header's calendar date as written (the sender's own day, which is what
/// SENTON and friends compare, RFC 3501 6.4.4), if it can be read.
pub(crate) fn sent_date(message: &[u8]) -> Option<(u16, u8, u8)> {
    let header = &message[..header::body_start(message)];
    let value = header::first_value(header, "Date")?;
    let date = mail_parser::DateTime::parse_rfc822(&String::from_utf8_lossy(&value))?;
    let valid = (1..=12).contains(&date.month) && (1..=31).contains(&date.day);
    valid.then_some((date.year, date.month, date.day))
}

// ------------------------------------------------------------------------------------
// SORT and THREAD keys (RFC 5256, RFC 5957)

/// The first address of the first field `name` (From, To, Cc) as ENVELOPE reads it:
/// what SORT's FROM, TO, CC, DISPLAYFROM and DISPLAYTO go by.
pub(crate) fn first_address(message: &[u8], name: &str) -> Option<address::Item> {
    let header = &message[..header::body_start(message)];
    let value = header::first_value(header, name)?;
    address::parse_list(&value).into_iter().next()
}

/// The first Subject field, encoded-words decoded.
pub(crate) fn subject(message: &[u8]) -> Option<String> {
    let header = &message[..header::body_start(message)];
    header::first_value(header, "Subject").map(|value| decode_words(&value))
}

/// The Date: header as seconds since the epoch in UTC (RFC 5256 §2.2): a zone that
/// cannot be read counts as UTC, a time that cannot as midnight; `None` when there is
/// no field or no date in it (the caller takes the internal date).
pub(crate) fn sent_time(message: &[u8]) -> Option<i64> {
    let header = &message[..header::body_start(message)];
    let value = header::first_value(header, "Date")?;
    let mut date = mail_parser::DateTime::parse_rfc822(&String::from_utf8_lossy(&value))?;
    if !(1..=12).contains(&date.month) || !(1..=31).contains(&date.day) {
        return None;
    }
    if date.hour > 23 || date.minute > 59 || date.second > 60 {
        (date.hour, date.minute, date.second) = (0, 0, 0);
    }
    if date.tz_hour > 23 || date.tz_minute > 59 {
        (date.tz_hour, date.tz_minute) = (0, 0);
    }
    Some(date.to_timestamp())
}

/// The message IDs of the first field `name` (Message-ID, References, In-Reply-To), in
/// order: each `<...>` that holds a valid one, normalized (RFC 5256 §3 REFERENCES) so
/// that quoting and comments make no difference: `<"a.b"@c>` is `a.b@c`. What is
/// between them (In-Reply-To's "your message of...") is passed over.
pub(crate) fn message_ids(message: &[u8], name: &str) -> Vec<String> {
    let header = &message[..header::body_start(message)];
    header::first_value(header, name).map_or_else(Vec::new, |value| parse_message_ids(&value))
}

fn parse_message_ids(value: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    let (mut quoted, mut comment) = (false, 0usize);
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        i += 1;
        match b {
            b'\\' if quoted || comment > 0 => i += 1,
            b'"' if comment == 0 => quoted = !quoted,
            _ if quoted => {}
            b'(' => comment += 1,
            b')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            b'<' => {
                let (id, end) = message_id(value, i);
                i = end;
                ids.extend(id);
            }
            _ => {}
        }
    }
    ids
}

/// The message ID whose `<` is just before `start`, and where it ends; `None` when it
/// is not a valid one (no `>`, or not `left@right`).
fn message_id(value: &[u8], start: usize) -> (Option<String>, usize) {
    let mut id = Vec::new();
    let (mut quoted, mut comment) = (false, 0usize);
    let mut i = start;
    while i < value.len() {
        let b = value[i];
        i += 1;
        match b {
            b'\\' if quoted || comment > 0 => {
                if quoted && let Some(&escaped) = value.get(i) {
                    id.push(escaped);
                }
                i += 1;
            }
            b'"' if comment == 0 => quoted = !quoted,
            _ if quoted => id.push(b),
            b'(' => comment += 1,
            b')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            b'>' => {
                let valid = id
                    .iter()
                    .rposition(|&b| b == b'@')
                    .is_some_and(|at| at > 0 && at + 1 < id.len());
                return (valid.then(|| String::from_utf8_lossy(&id).into_owned()), i);
            }
            // A new `<`: what came before was no ID.
            b'<' => id.clear(),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => id.push(b),
        }
    }
    (None, value.len())
}

#[cfg(test)]
mod tests;
