//! Tests of ENVELOPE, BODY/BODYSTRUCTURE and BODY[section] against the fixtures in
//! `servers/tests/fixtures/mime/` (CRLF line ends, as the store keeps messages).
//! Exact expectations are written as the IMAP text imap-codec's encoder produces.

use std::num::NonZeroU32;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::{CommandCodec, ResponseCodec, decode::Decoder, encode::Encoder};

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/mime/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `* 1 FETCH (<item>)\r\n` as imap-codec encodes it.
fn encode_bytes(item: MessageDataItem<'static>) -> Vec<u8> {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::from(item),
    });
    ResponseCodec::default().encode(&response).dump()
}

/// [`encode_bytes`] for UTF-8 results, to compare with expected text.
fn encode(item: MessageDataItem<'static>) -> String {
    String::from_utf8(encode_bytes(item)).expect("test fixtures encode to UTF-8")
}

/// Encodes and decodes back: what a client would parse must be what we built.
fn round_trips(item: MessageDataItem<'static>) {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items: Vec1::from(item),
    });
    let bytes = ResponseCodec::default().encode(&response).dump();
    let (rest, decoded) = ResponseCodec::default()
        .decode(&bytes)
        .unwrap_or_else(|e| panic!("{e:?} decoding {}", String::from_utf8_lossy(&bytes)));
    assert!(rest.is_empty());
    assert_eq!(decoded, response, "{}", String::from_utf8_lossy(&bytes));
}

fn bodystructure_text(message: &[u8]) -> String {
    encode(MessageDataItem::BodyStructure(body_structure(
        message, true,
    )))
}

fn body_text_item(message: &[u8]) -> String {
    encode(MessageDataItem::Body(body_structure(message, false)))
}

fn envelope_text(message: &[u8]) -> String {
    encode(MessageDataItem::Envelope(envelope(message)))
}

/// The section of `BODY[<spec>]` as imap-codec parses it from a FETCH command.
fn spec(spec: &str) -> Option<Section<'static>> {
    let command: &'static [u8] = Box::leak(
        format!("A FETCH 1 BODY[{spec}]\r\n")
            .into_bytes()
            .into_boxed_slice(),
    );
    let (_, command) = CommandCodec::default()
        .decode(command)
        .unwrap_or_else(|e| panic!("BODY[{spec}]: {e:?}"));
    let CommandBody::Fetch {
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(mut names),
        ..
    } = command.body
    else {
        panic!("not a FETCH")
    };
    match names.pop() {
        Some(MessageDataItemName::BodyExt { section, .. }) => section,
        other => panic!("{other:?}"),
    }
}

fn fetch(message: &[u8], section_spec: &str) -> String {
    String::from_utf8_lossy(&section(message, spec(section_spec).as_ref())).into_owned()
}

/// The bytes between the first occurrence of `start` and the following `end`
/// (exclusive), to check sizes against the fixture itself.
fn between<'a>(message: &'a [u8], start: &str, end: &str) -> &'a [u8] {
    let from = find(message, start.as_bytes(), 0) + start.len();
    let to = find(message, end.as_bytes(), from);
    &message[from..to]
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> usize {
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| at + from)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

// ------------------------------------------------------------------------------------
// BODYSTRUCTURE / BODY: exact encodings

#[test]
fn simple_text_bodystructure_is_rfc3501_style() {
    let m = fixture("simple.eml");
    assert_eq!(
        bodystructure_text(&m),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \
         \"7BIT\" 55 1 NIL NIL NIL NIL))\r\n"
    );
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1))\r\n"
    );
}

#[test]
fn simple_text_size_and_lines_match_the_fixture() {
    let m = fixture("simple.eml");
    let body = &m[find(&m, b"\r\n\r\n", 0) + 4..];
    assert_eq!(body.len(), 55);
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn multipart_alternative_bodystructure() {
    let m = fixture("alternative.eml");
    assert_eq!(
        bodystructure_text(&m),
        "* 1 FETCH (BODYSTRUCTURE (\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 47 2 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 44 1 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"alt-boundary\") NIL NIL NIL))\r\n"
    );
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 47 2)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 44 1) \
         \"ALTERNATIVE\"))\r\n"
    );
}

#[test]
fn multipart_alternative_sizes_match_the_fixture() {
    let m = fixture("alternative.eml");
    let plain = between(&m, "quoted-printable\r\n\r\n", "\r\n--alt-boundary");
    assert_eq!(plain, b"Shall we have lunch at the caf=C3=A9?\r\nSee you.");
    assert_eq!(plain.len(), 47);
    let html_start = find(&m, b"<p>", 0);
    let html_end = find(&m, b"\r\n--alt-boundary--", html_start);
    assert_eq!(html_end - html_start, 44);
}

#[test]
fn message_rfc822_bodystructure() {
    let m = fixture("rfc822.eml");
    let inner_envelope = "(\"Tue, 2 Jan 2024 10:00:00 +0100\" \"Lunch\" \
         ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) \
         ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.net\")) \
         NIL NIL NIL \"<alt-1@example.org>\")";
    let inner_structure = "(\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 1 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 21 1 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"alt\") NIL NIL NIL)";
    let expected = format!(
        "* 1 FETCH (BODYSTRUCTURE (\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 372 {inner_envelope} {inner_structure} 17 \
         NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"fwd\") NIL NIL NIL))\r\n"
    );
    assert_eq!(bodystructure_text(&m), expected);
}

#[test]
fn message_rfc822_size_is_the_encapsulated_message() {
    let m = fixture("rfc822.eml");
    let inner = between(&m, "message/rfc822\r\n\r\n", "\r\n--fwd--");
    assert_eq!(inner.len(), 372);
    assert_eq!(inner.iter().filter(|&&b| b == b'\n').count() + 1, 17);
    assert_eq!(section(&m, spec("2").as_ref()), inner);
}

#[test]
fn mixed_with_attachment_has_all_extension_fields() {
    let m = fixture("mixed-attachment.eml");
    assert_eq!(
        bodystructure_text(&m),
        "* 1 FETCH (BODYSTRUCTURE (\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 32 1 NIL NIL NIL NIL)\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<report@example.com>\" \
         \"Quarterly report\" \"BASE64\" 114 NIL (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\")) \
         (\"en\" \"de\") \"http://example.com/report.pdf\") \
         \"MIXED\" (\"BOUNDARY\" \"mix\") NIL NIL NIL))\r\n"
    );
}

#[test]
fn attachment_size_matches_the_fixture() {
    let m = fixture("mixed-attachment.eml");
    let encoded = between(&m, "report.pdf\r\n\r\n", "\r\n--mix--");
    assert_eq!(encoded.len(), 114);
    assert_eq!(section(&m, spec("2").as_ref()), encoded);
}

#[test]
fn nested_multipart_bodystructure() {
    let m = fixture("nested.eml");
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 1)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 16 1) \"ALTERNATIVE\")\
         (\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 12) \"MIXED\"))\r\n"
    );
    assert!(bodystructure_text(&m).contains(
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 12 NIL (\"INLINE\" (\"FILENAME\" \"dot.png\")) NIL NIL)"
    ));
}

#[test]
fn single_part_message_rfc822_at_top_level() {
    let m = fixture("rfc822-single.eml");
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 64 \
         (NIL \"note\" ((\"Mallory\" NIL \"mallory\" \"example.com\")) \
         ((\"Mallory\" NIL \"mallory\" \"example.com\")) ((\"Mallory\" NIL \"mallory\" \"example.com\")) \
         NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1) 4))\r\n"
    );
}

#[test]
fn digest_parts_are_messages_by_default() {
    let m = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n\
              Subject: first\r\n\r\none\r\n--d\r\n\r\nSubject: second\r\n\r\ntwo\r\n--d--\r\n";
    let inner = |subject: &str, size: u32| {
        format!(
            "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" {size} \
             (NIL \"{subject}\" NIL NIL NIL NIL NIL NIL NIL NIL) \
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1) 3)"
        )
    };
    assert_eq!(
        body_text_item(m),
        format!(
            "* 1 FETCH (BODY ({}{} \"DIGEST\"))\r\n",
            inner("first", 21),
            inner("second", 22)
        )
    );
    assert_eq!(fetch(m, "2.HEADER"), "Subject: second\r\n\r\n");
    assert_eq!(fetch(m, "2.1"), "two");
}

#[test]
fn encoded_words_text_part_keeps_declared_charset() {
    let m = fixture("encoded-words.eml");
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"ISO-8859-1\") NIL NIL \
         \"QUOTED-PRINTABLE\" 38 1))\r\n"
    );
}

#[test]
fn broken_unclosed_multipart_still_has_both_parts() {
    let m = fixture("broken-unclosed.eml");
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 35 1) \"MIXED\"))\r\n"
    );
    assert_eq!(fetch(&m, "2"), "second, and the message just ends\r\n");
}

#[test]
fn garbage_content_type_is_text_plain() {
    let m = fixture("broken-ctype.eml");
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 17 1))\r\n"
    );
}

#[test]
fn message_without_header_or_body() {
    assert_eq!(
        body_text_item(b""),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0))\r\n"
    );
    assert_eq!(
        envelope_text(b""),
        "* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
    );
}

#[test]
fn header_only_message_has_empty_body() {
    let m = b"Subject: only a header\r\n";
    assert!(body_text_item(m).contains("\"7BIT\" 0 0)"));
    assert_eq!(fetch(m, "HEADER"), "Subject: only a header\r\n");
    assert_eq!(fetch(m, "TEXT"), "");
}

#[test]
fn encoded_message_rfc822_is_reported_as_octet_stream() {
    let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
              Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n\
              U3ViamVjdDogeA0KDQp5DQo=\r\n--b--\r\n";
    assert_eq!(
        body_text_item(m),
        "* 1 FETCH (BODY ((\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 24) \"MIXED\"))\r\n"
    );
}

#[test]
fn message_global_is_a_plain_leaf() {
    let m = b"Content-Type: message/global\r\n\r\nSubject: x\r\n\r\ny\r\n";
    assert_eq!(
        body_text_item(m),
        "* 1 FETCH (BODY (\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 17))\r\n"
    );
}

#[test]
fn rfc2231_parameters_are_decoded_and_8bit_values_become_literals() {
    let m = b"Content-Type: application/octet-stream; name*=utf-8''%E2%82%AC.txt\r\n\r\nx";
    assert_eq!(
        body_text_item(m),
        "* 1 FETCH (BODY (\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" {7}\r\n\u{20ac}.txt) \
         NIL NIL \"7BIT\" 1))\r\n"
    );
}

#[test]
fn content_md5_is_passed_through() {
    let m = b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\nx";
    assert!(
        bodystructure_text(m).contains("\"7BIT\" 1 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" NIL NIL NIL")
    );
}

#[test]
fn lf_only_message_counts_lines_and_sizes_as_stored() {
    let m = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\ntwo\n--b--\n";
    assert_eq!(
        body_text_item(m),
        "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 2) \"MIXED\"))\r\n"
    );
}

#[test]
fn every_fixture_round_trips_through_the_codec() {
    for name in FIXTURES {
        let m = fixture(name);
        round_trips(MessageDataItem::Envelope(envelope(&m)));
        round_trips(MessageDataItem::Body(body_structure(&m, false)));
        round_trips(MessageDataItem::BodyStructure(body_structure(&m, true)));
    }
}

const FIXTURES: &[&str] = &[
    "rfc3501-example.eml",
    "simple.eml",
    "alternative.eml",
    "mixed-attachment.eml",
    "nested.eml",
    "rfc822.eml",
    "rfc822-single.eml",
    "encoded-words.eml",
    "group.eml",
    "missing.eml",
    "quotes.eml",
    "eight-bit.eml",
    "broken-unclosed.eml",
    "broken-ctype.eml",
    "folded.eml",
];

/// Every size in the structure equals the length of the bytes BODY[part] returns,
/// and every text line count the lines in those bytes: the two views of one message
/// must agree.
fn assert_sizes_agree(message: &[u8]) {
    /// `path` is the part number of `s`; at a message's top (`message_level`) a
    /// single part is part `path.1` (RFC 3501: a non-multipart message has part 1).
    fn check(message: &[u8], s: &BodyStructure<'_>, path: Vec<u32>, message_level: bool) {
        match s {
            BodyStructure::Multi { bodies, .. } => {
                for (i, b) in bodies.as_ref().iter().enumerate() {
                    let mut p = path.clone();
                    p.push(i as u32 + 1);
                    check(message, b, p, false);
                }
            }
            BodyStructure::Single { body, .. } => {
                let mut path = path;
                if message_level {
                    path.push(1);
                }
                let spec_text: Vec<String> = path.iter().map(u32::to_string).collect();
                let bytes = section(message, spec(&spec_text.join(".")).as_ref());
                assert_eq!(body.basic.size as usize, bytes.len(), "part {spec_text:?}");
                let lines = match &body.specific {
                    SpecificFields::Text {
                        number_of_lines, ..
                    }
                    | SpecificFields::Message {
                        number_of_lines, ..
                    } => Some(*number_of_lines),
                    SpecificFields::Basic { .. } => None,
                };
                if let Some(lines) = lines {
                    assert_eq!(lines, line_count(&bytes), "part {spec_text:?}");
                }
                if let SpecificFields::Message { body_structure, .. } = &body.specific {
                    check(message, body_structure, path, true);
                }
            }
        }
    }
    check(message, &body_structure(message, false), Vec::new(), true);
}

#[test]
fn sizes_and_line_counts_agree_with_fetched_sections() {
    for name in FIXTURES {
        assert_sizes_agree(&fixture(name));
    }
}

/// HEADER and TEXT split the message: together they are the whole of it.
fn assert_header_and_text_make_the_message(message: &[u8]) {
    let mut joined = section(message, spec("HEADER").as_ref());
    joined.extend(section(message, spec("TEXT").as_ref()));
    assert_eq!(joined, message);
}

#[test]
fn header_and_text_make_the_message() {
    for name in FIXTURES {
        assert_header_and_text_make_the_message(&fixture(name));
    }
}

#[test]
fn line_count_counts_a_last_unterminated_line() {
    assert_eq!(line_count(b""), 0);
    assert_eq!(line_count(b"a"), 1);
    assert_eq!(line_count(b"a\r\n"), 1);
    assert_eq!(line_count(b"a\r\nb"), 2);
    assert_eq!(line_count(b"\r\n\r\n"), 2);
}

// ------------------------------------------------------------------------------------
// ENVELOPE

#[test]
fn envelope_with_group_and_quoted_display_name() {
    let m = fixture("group.eml");
    let from = r#"(("Doe, \"Johnny\" \\ Jr." NIL "john" "example.com"))"#;
    assert_eq!(
        envelope_text(&m),
        format!(
            "* 1 FETCH (ENVELOPE (\"Sun, 7 Jan 2024 18:00:00 +0000\" \"Party\" {from} {from} {from} \
             ((NIL NIL \"Friends\" NIL)(NIL NIL \"alice\" \"example.org\")\
             (\"Bob\" NIL \"bob\" \"example.net\")(NIL NIL NIL NIL)\
             (NIL NIL \"carol\" \"example.com\")) \
             ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
             NIL \"<prev@example.com>\" \"<group-1@example.com>\"))\r\n"
        )
    );
}

/// RFC 3501 6.4.5's own example (`a003 fetch 12 full`, `a004 fetch 12 body[header]`):
/// the fixture has the header shown there and a body of the stated 3028 bytes in 92
/// lines.
#[test]
fn rfc3501_fetch_example() {
    let m = fixture("rfc3501-example.eml");
    let terry = r#"(("Terry Gray" NIL "gray" "cac.washington.edu"))"#;
    assert_eq!(
        envelope_text(&m),
        format!(
            "* 1 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \
             \"IMAP4rev1 WG mtg summary and minutes\" {terry} {terry} {terry} \
             ((NIL NIL \"imap\" \"cac.washington.edu\")) \
             ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")\
             (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \
             \"<B27397-0100000@cac.washington.edu>\"))\r\n"
        )
    );
    assert_eq!(
        body_text_item(&m),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 \
         92))\r\n"
    );
    let header = section(&m, spec("HEADER").as_ref());
    assert_eq!(header.len(), 342);
    assert!(header.starts_with(b"Date: Wed, 17 Jul 1996"));
    assert!(header.ends_with(b"CHARSET=US-ASCII\r\n\r\n"));
}

#[test]
fn envelope_of_rfc3501_style_message() {
    let m = fixture("simple.eml");
    let fred = r#"(("Fred Foobar" NIL "foobar" "Blurdybloop.example"))"#;
    assert_eq!(
        envelope_text(&m),
        format!(
            "* 1 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"afternoon meeting\" \
             {fred} {fred} {fred} ((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL \
             \"<B27397-0100000@Blurdybloop.example>\"))\r\n"
        )
    );
}

#[test]
fn envelope_keeps_encoded_words_raw() {
    let m = fixture("encoded-words.eml");
    let e = envelope(&m);
    assert_eq!(
        e.subject,
        NString::try_from("=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=").unwrap()
    );
    assert_eq!(
        e.from[0].name,
        NString::try_from("=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=").unwrap()
    );
    assert_eq!(
        e.to[0].name,
        NString::try_from("=?ISO-8859-1?Q?Fran=E7ois?=").unwrap()
    );
}

#[test]
fn envelope_with_missing_fields_is_nil() {
    let m = fixture("missing.eml");
    assert_eq!(
        envelope_text(&m),
        "* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL ((NIL NIL \"someone\" \"example.com\")) \
         NIL NIL NIL NIL))\r\n"
    );
}

#[test]
fn envelope_escapes_quotes_and_backslashes_in_subject() {
    let m = fixture("quotes.eml");
    let text = envelope_text(&m);
    assert!(
        text.contains(r#" "\"Quoted\" and back\\slash\\" "#),
        "{text}"
    );
    round_trips(MessageDataItem::Envelope(envelope(&m)));
}

#[test]
fn envelope_sends_8bit_header_bytes_as_literals() {
    let m = fixture("eight-bit.eml");
    let e = envelope(&m);
    assert_eq!(e.subject.0, Some(istring(&b"Gr\xc3\xbc\xc3\x9fe"[..])));
    assert!(matches!(e.subject.0, Some(IString::Literal(_))));
    assert!(matches!(e.to[0].name.0, Some(IString::Literal(_))));
    let bytes = ResponseCodec::default()
        .encode(&Response::Data(Data::Fetch {
            seq: NonZeroU32::MIN,
            items: Vec1::from(MessageDataItem::Envelope(e)),
        }))
        .dump();
    assert!(find(&bytes, b"{7}\r\nGr\xc3\xbc\xc3\x9fe", 0) > 0);
}

#[test]
fn envelope_unfolds_folded_fields() {
    let m = fixture("folded.eml");
    let e = envelope(&m);
    assert_eq!(
        e.subject,
        NString::try_from("a subject that is folded\tover lines").unwrap()
    );
    assert_eq!(
        e.date,
        NString::try_from("Wed, 10 Jan 2024 07:00:00 +0000").unwrap()
    );
    assert_eq!(
        e.from[0].name,
        NString::try_from("Long Name Folded").unwrap()
    );
}

#[test]
fn sender_and_reply_to_default_to_from_only_when_missing_or_empty() {
    let m = b"From: a@x.org\r\nSender: s@x.org\r\nReply-To:\r\n\r\n";
    let e = envelope(m);
    assert_eq!(e.sender[0].mailbox, NString::try_from("s").unwrap());
    assert_eq!(e.reply_to, e.from);
}

#[test]
fn empty_subject_is_an_empty_string_not_nil() {
    let e = envelope(b"Subject:\r\n\r\n");
    assert_eq!(e.subject, NString::try_from("").unwrap());
}

#[test]
fn nul_bytes_are_dropped_from_envelope_strings() {
    let e = envelope(b"Subject: a\0b\r\n\r\n");
    assert_eq!(e.subject, NString::try_from("ab").unwrap());
}

#[test]
fn bare_cr_in_a_header_value_becomes_a_literal() {
    let m = b"Subject: a\rb\r\n\r\n";
    round_trips(MessageDataItem::Envelope(envelope(m)));
}

// ------------------------------------------------------------------------------------
// BODY[section]

#[test]
fn whole_message_header_and_text() {
    let m = fixture("simple.eml");
    assert_eq!(section(&m, None), m);
    let header_end = find(&m, b"\r\n\r\n", 0) + 4;
    assert_eq!(section(&m, spec("HEADER").as_ref()), &m[..header_end]);
    assert_eq!(section(&m, spec("TEXT").as_ref()), &m[header_end..]);
    assert_eq!(section(&m, spec("").as_ref()), m);
}

#[test]
fn non_multipart_message_has_part_one_only() {
    let m = fixture("simple.eml");
    assert_eq!(
        fetch(&m, "1"),
        "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    );
    assert_eq!(fetch(&m, "2"), "");
    assert_eq!(fetch(&m, "1.1"), "");
    assert!(fetch(&m, "1.MIME").starts_with("Date: Mon, 7 Feb 1994"));
}

#[test]
fn header_fields_and_not() {
    let m = fixture("simple.eml");
    assert_eq!(
        fetch(&m, "HEADER.FIELDS (SUBJECT from)"),
        "From: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\n\r\n"
    );
    assert_eq!(fetch(&m, "HEADER.FIELDS (X-NONE)"), "\r\n");
    let not = fetch(&m, "HEADER.FIELDS.NOT (Date From Subject To Message-Id)");
    assert_eq!(
        not,
        "MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"
    );
}

#[test]
fn header_fields_keep_folding_and_repeats() {
    let m = fixture("folded.eml");
    assert_eq!(
        fetch(&m, "HEADER.FIELDS (Subject X-Custom)"),
        "Subject: a subject\r\n that is folded\r\n\tover lines\r\nX-Custom: one\r\nX-Custom: two\r\n\r\n"
    );
}

#[test]
fn multipart_parts_and_mime_headers() {
    let m = fixture("alternative.eml");
    assert_eq!(
        fetch(&m, "1"),
        "Shall we have lunch at the caf=C3=A9?\r\nSee you."
    );
    assert_eq!(
        fetch(&m, "2"),
        "<p>Shall we have lunch at the caf=C3=A9?</p>"
    );
    assert_eq!(
        fetch(&m, "1.MIME"),
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(fetch(&m, "3"), "");
    // HEADER and TEXT of a part are only for message/rfc822 parts.
    assert_eq!(fetch(&m, "1.HEADER"), "");
    assert_eq!(fetch(&m, "1.TEXT"), "");
}

#[test]
fn nested_multipart_part_numbers() {
    let m = fixture("nested.eml");
    assert_eq!(fetch(&m, "1.1"), "plain body");
    assert_eq!(fetch(&m, "1.2"), "<b>html body</b>");
    assert_eq!(fetch(&m, "2"), "iVBORw0KGgo=");
    assert_eq!(
        fetch(&m, "1.2.MIME"),
        "Content-Type: text/html; charset=us-ascii\r\n\r\n"
    );
    assert_eq!(fetch(&m, "1.3"), "");
    assert_eq!(fetch(&m, "2.1"), "");
    let alternative = fetch(&m, "1");
    assert!(alternative.starts_with("--inner\r\n"));
    assert!(alternative.ends_with("--inner--\r\n"));
}

#[test]
fn message_rfc822_subparts() {
    let m = fixture("rfc822.eml");
    assert_eq!(fetch(&m, "1"), "See below.");
    assert!(fetch(&m, "2.HEADER").starts_with("From: Alice <alice@example.org>\r\n"));
    assert!(fetch(&m, "2.HEADER").ends_with("boundary=\"alt\"\r\n\r\n"));
    assert!(fetch(&m, "2.TEXT").starts_with("--alt\r\n"));
    assert!(fetch(&m, "2.TEXT").ends_with("--alt--"));
    assert_eq!(fetch(&m, "2.1"), "Lunch at noon?");
    assert_eq!(fetch(&m, "2.2"), "<p>Lunch at noon?</p>");
    assert_eq!(
        fetch(&m, "2.2.MIME"),
        "Content-Type: text/html; charset=us-ascii\r\n\r\n"
    );
    assert_eq!(
        fetch(&m, "2.HEADER.FIELDS (Subject)"),
        "Subject: Lunch\r\n\r\n"
    );
    assert_eq!(fetch(&m, "2.MIME"), "Content-Type: message/rfc822\r\n\r\n");
    assert_eq!(fetch(&m, "2.3"), "");
}

#[test]
fn message_rfc822_with_single_part_body() {
    let m = fixture("rfc822-single.eml");
    assert!(fetch(&m, "1").starts_with("From: Mallory"));
    assert_eq!(
        fetch(&m, "1.HEADER"),
        "From: Mallory <mallory@example.com>\r\nSubject: note\r\n\r\n"
    );
    assert_eq!(fetch(&m, "1.TEXT"), "the note\r\n");
    assert_eq!(fetch(&m, "1.1"), "the note\r\n");
    assert_eq!(fetch(&m, "1.1.MIME"), fetch(&m, "1.HEADER"));
    assert_eq!(fetch(&m, "1.2"), "");
}

#[test]
fn partial_ranges() {
    let bytes = b"0123456789";
    let n = |n| NonZeroU32::new(n).unwrap();
    assert_eq!(partial(bytes, 0, n(4)), b"0123");
    assert_eq!(partial(bytes, 8, n(4)), b"89");
    assert_eq!(partial(bytes, 10, n(4)), b"");
    assert_eq!(partial(bytes, u32::MAX, n(u32::MAX)), b"");
    assert_eq!(partial(bytes, 3, n(u32::MAX)), b"3456789");
}

// ------------------------------------------------------------------------------------
// header_field and decoded text

#[test]
fn header_field_decodes_encoded_words() {
    let m = fixture("encoded-words.eml");
    assert_eq!(header_field(&m, "subject"), ["Grüße aus München"]);
    assert_eq!(header_field(&m, "From"), ["Jörg Müller <joerg@example.de>"]);
    assert_eq!(header_field(&m, "To"), ["François <francois@example.fr>"]);
    assert!(header_field(&m, "X-Missing").is_empty());
}

#[test]
fn header_field_returns_every_occurrence() {
    let m = fixture("folded.eml");
    assert_eq!(header_field(&m, "x-custom"), ["one", "two"]);
}

#[test]
fn body_text_decodes_transfer_encoding_and_charset() {
    assert!(body_text(&fixture("encoded-words.eml")).contains("Grüße aus München, François!"));
    let alt = body_text(&fixture("alternative.eml"));
    assert!(alt.contains("lunch at the café?"));
    assert!(alt.contains("<p>Shall we"));
    // The base64 PDF is not text.
    assert!(!body_text(&fixture("mixed-attachment.eml")).contains("JVBER"));
    // Parts of an attached message are searched too.
    assert!(body_text(&fixture("rfc822.eml")).contains("Lunch at noon?"));
}

#[test]
fn sent_date_is_the_written_day() {
    assert_eq!(sent_date(&fixture("simple.eml")), Some((1994, 2, 7)));
    assert_eq!(sent_date(&fixture("missing.eml")), None);
    assert_eq!(sent_date(b"Date: garbage\r\n\r\n"), None);
}

/// imap-codec's decoder refuses BODYSTRUCTUREs nested deeper than a few levels (its
/// recursion limit of 8 lets 6 multipart levels through, fewer for encapsulated
/// messages, which cost more); 3 levels are safe either way. The encoder, which is
/// what the server uses, has no limit, and other clients' parsers take more.
const IMAP_CODEC_DECODER_NESTING: usize = 3;

/// Levels of multiparts and encapsulated messages.
fn nesting(s: &BodyStructure<'_>) -> usize {
    match s {
        BodyStructure::Multi { bodies, .. } => {
            1 + bodies.as_ref().iter().map(nesting).max().unwrap_or(0)
        }
        BodyStructure::Single { body, .. } => match &body.specific {
            SpecificFields::Message { body_structure, .. } => 1 + nesting(body_structure),
            _ => 0,
        },
    }
}

#[test]
fn deep_nesting_encodes_and_shallow_nesting_decodes() {
    fn nested(levels: usize) -> Vec<u8> {
        let mut m = Vec::new();
        for level in 0..levels {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(b"\r\ninnermost\r\n");
        m
    }
    let deep = body_structure(&nested(tree::MAX_DEPTH + 5), true);
    assert_eq!(nesting(&deep), tree::MAX_DEPTH);
    assert!(encode(MessageDataItem::BodyStructure(deep)).contains("\"MIXED\""));
    for levels in 0..=IMAP_CODEC_DECODER_NESTING {
        let structure = body_structure(&nested(levels), true);
        assert_eq!(nesting(&structure), levels);
        round_trips(MessageDataItem::BodyStructure(structure));
        let messages = b"Content-Type: message/rfc822\r\n\r\n".repeat(levels);
        let structure = body_structure(&[messages, b"Subject: x\r\n\r\ny".to_vec()].concat(), true);
        assert_eq!(nesting(&structure), levels);
        round_trips(MessageDataItem::BodyStructure(structure));
    }
}

// ------------------------------------------------------------------------------------
// Any input

mod any_input {
    use proptest::prelude::*;

    use super::*;

    /// Messages made of MIME-ish pieces, so the generator reaches nested structures
    /// far more often than random bytes would.
    fn mime_soup() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(&b"Content-Type: multipart/mixed; boundary=b\r\n"[..]),
            Just(&b"Content-Type: multipart/digest; boundary=c\r\n"[..]),
            Just(&b"Content-Type: message/rfc822\r\n"[..]),
            Just(&b"Content-Type: text/plain; charset=\"utf-8\r\n"[..]),
            Just(&b"Content-Transfer-Encoding: base64\r\n"[..]),
            Just(&b"From: \"a\\\" <b@c>, g: d@e;\r\n"[..]),
            Just(&b"To: (x <y@z>\r\n"[..]),
            Just(&b"Subject: =?utf-8?q?x?= \xff\x00\r\n"[..]),
            Just(&b"\r\n"[..]),
            Just(&b"\n"[..]),
            Just(&b"--b\r\n"[..]),
            Just(&b"--b--\r\n"[..]),
            Just(&b"--c\r\n"[..]),
            Just(&b" folded\r\n"[..]),
            Just(&b"text\r\n"[..]),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn everything_encodes(message: &[u8]) {
        round_trips(MessageDataItem::Envelope(envelope(message)));
        for extended in [false, true] {
            let structure = body_structure(message, extended);
            if nesting(&structure) <= IMAP_CODEC_DECODER_NESTING {
                round_trips(if extended {
                    MessageDataItem::BodyStructure(structure)
                } else {
                    MessageDataItem::Body(structure)
                });
            } else {
                // Deeper than imap-codec's own decoder goes: encoding must still work.
                assert!(encode_bytes(MessageDataItem::Body(structure)).ends_with(b")\r\n"));
            }
        }
        for spec_text in [
            "",
            "HEADER",
            "TEXT",
            "1",
            "1.1",
            "2.1.TEXT",
            "1.MIME",
            "2.HEADER.FIELDS (To)",
        ] {
            let _ = section(message, spec(spec_text).as_ref());
        }
        let _ = header_field(message, "subject");
        let _ = body_text(message);
        let _ = header_text(message);
        let _ = sent_date(message);
        assert_sizes_agree(message);
        assert_header_and_text_make_the_message(message);
    }

    /// A message whose parsed fields carry arbitrary values.
    fn odd_values() -> impl Strategy<Value = Vec<u8>> {
        let value = prop::collection::vec(any::<u8>(), 0..60);
        (
            value.clone(),
            value.clone(),
            value.clone(),
            value.clone(),
            value.clone(),
            value,
        )
            .prop_map(|(ct, cd, date, from, cte, body)| {
                let mut m = Vec::new();
                for (name, value) in [
                    (&b"Content-Type: "[..], ct),
                    (b"Content-Disposition: ", cd),
                    (b"Date: ", date),
                    (b"From: ", from),
                    (b"Content-Transfer-Encoding: ", cte),
                ] {
                    m.extend_from_slice(name);
                    m.extend_from_slice(&value);
                    m.extend_from_slice(b"\r\n");
                }
                m.extend_from_slice(b"\r\n");
                m.extend_from_slice(&body);
                m
            })
    }

    proptest! {
        #[test]
        fn random_bytes(message in prop::collection::vec(any::<u8>(), 0..512)) {
            everything_encodes(&message);
        }

        #[test]
        fn mime_like_input(message in mime_soup()) {
            everything_encodes(&message);
        }

        #[test]
        fn odd_header_values(message in odd_values()) {
            everything_encodes(&message);
        }

        /// The body decoders (transfer encodings, then charsets) on any body.
        #[test]
        fn any_body_in_any_charset(
            charset in prop::sample::select(vec![
                "utf-8", "utf-7", "utf-16", "utf-16le", "utf-16be", "iso-2022-jp", "shift_jis",
                "gb18030", "big5", "euc-kr", "koi8-r", "windows-1252", "iso-8859-15", "x-unknown",
            ]),
            encoding in prop::sample::select(vec!["base64", "quoted-printable", "8bit", "x-uue"]),
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut m = format!(
                "Content-Type: text/plain; charset={charset}\r\n\
                 Content-Transfer-Encoding: {encoding}\r\n\r\n"
            )
            .into_bytes();
            m.extend_from_slice(&body);
            let _ = body_text(&m);
        }
    }
}

#[test]
fn message_ids_are_normalized_and_noise_is_passed_over() {
    let ids = |value: &str| parse_message_ids(value.as_bytes());
    // RFC 5256 §3: quoting makes no difference.
    assert_eq!(
        ids("<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>"),
        ids("<01KF8JCEOCBS0045PS@xxx.yyy.com>")
    );
    assert_eq!(
        ids("<01KF8JCEOCBS0045PS@xxx.yyy.com>"),
        ["01KF8JCEOCBS0045PS@xxx.yyy.com"]
    );
    assert_eq!(
        ids("<a@b> (a comment <c@d>)\t<e (x) @f>  <\"g\\\"h\"@i>"),
        ["a@b", "e@f", "g\"h@i"]
    );
    assert_eq!(
        ids("your message of \"Mon, 1 Jan\" <x@y> and <z@w>"),
        ["x@y", "z@w"]
    );
    // Not valid: no `@`, nothing on one side of it, never closed.
    assert!(ids("<abc> <@b> <a@> <a@b").is_empty());
    assert_eq!(ids("<<a@b>"), ["a@b"]);
}

#[test]
fn sort_keys_read_from_the_header() {
    let m = b"From: \"A, B\" <ab@x.test>, c@x.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
        Date: Tue, 2 Jan 2024 25:61:00 +0000\r\nMessage-ID: <m@x>\r\n\r\nbody";
    let Some(address::Item::Mailbox(first)) = first_address(m, "From") else {
        panic!("no mailbox")
    };
    assert_eq!(
        (first.mailbox, first.host),
        (b"ab".to_vec(), b"x.test".to_vec())
    );
    assert_eq!(subject(m).as_deref(), Some("Grüße"));
    // A time that cannot be read counts as midnight.
    assert_eq!(sent_time(m), Some(1_704_153_600));
    assert_eq!(message_ids(m, "Message-ID"), ["m@x"]);
    assert_eq!(message_ids(m, "References"), Vec::<String>::new());
    assert_eq!(sent_time(b"Date: yesterday\r\n\r\n"), None);
}
