//! SEARCH keys, written as clients send them and parsed by imap-codec.

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Vec1;
use imap_codec::{CommandCodec, decode::Decoder};

use super::*;

fn fixture(name: &str) -> &'static [u8] {
    let path = format!("{}/tests/fixtures/mime/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Box::leak(bytes.into_boxed_slice())
}

/// The key of `A SEARCH <criteria>`; several criteria are ANDed, as RFC 3501 says.
fn key(criteria: &str) -> SearchKey<'static> {
    let command: &'static [u8] = Box::leak(
        format!("A SEARCH {criteria}\r\n")
            .into_bytes()
            .into_boxed_slice(),
    );
    let (_, command) = CommandCodec::default()
        .decode(command)
        .unwrap_or_else(|e| panic!("SEARCH {criteria}: {e:?}"));
    let CommandBody::Search { criteria, .. } = command.body else {
        panic!("not a SEARCH")
    };
    let mut keys = criteria.into_inner();
    if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(Vec1::try_from(keys).expect("several keys"))
    }
}

/// 2024-01-02 12:00:00 UTC.
const NOON_2_JAN_2024: i64 = 1_704_196_800;

fn candidate(message: &'static [u8]) -> Candidate<'static> {
    Candidate {
        seq: 5,
        uid: 50,
        flags: Flags::empty(),
        keywords: &[],
        internal_date: NOON_2_JAN_2024,
        size: message.len() as u64,
        message,
        modseq: 7,
        recent: false,
    }
}

/// Whether `criteria` matches with 10 messages in the mailbox and UIDs up to 60.
fn hit(criteria: &str, c: &Candidate<'_>) -> bool {
    matches(&key(criteria), c, 10, 60)
}

fn simple() -> Candidate<'static> {
    candidate(fixture("simple.eml"))
}

#[test]
fn all_matches_everything() {
    assert!(hit("ALL", &simple()));
    assert!(hit("ALL", &candidate(b"")));
}

#[test]
fn sequence_sets() {
    let c = simple(); // seq 5 of 10
    for yes in ["5", "1:5", "5:*", "4:6", "6:2", "1,3,5", "*:4,5", "1:*"] {
        assert!(hit(yes, &c), "{yes}");
    }
    for no in ["4", "1:4", "6:*", "*", "1,3"] {
        assert!(!hit(no, &c), "{no}");
    }
    // `*` is the last message.
    assert!(matches(&key("*"), &c, 5, 60));
}

#[test]
fn uid_sets() {
    let c = simple(); // UID 50, highest 60
    for yes in [
        "UID 50",
        "UID 1:50",
        "UID 40:*",
        "UID 50:*",
        "UID 60:45",
        "UID 1,50",
    ] {
        assert!(hit(yes, &c), "{yes}");
    }
    for no in ["UID 49", "UID 51:*", "UID *"] {
        assert!(!hit(no, &c), "{no}");
    }
    // RFC 3501 6.4.8: `n:*` with n past the highest UID still means the last one.
    assert!(matches(&key("UID 70:*"), &c, 10, 50));
}

#[test]
fn system_flags_and_their_negations() {
    let pairs = [
        ("ANSWERED", "UNANSWERED", Flags::ANSWERED),
        ("DELETED", "UNDELETED", Flags::DELETED),
        ("DRAFT", "UNDRAFT", Flags::DRAFT),
        ("FLAGGED", "UNFLAGGED", Flags::FLAGGED),
        ("SEEN", "UNSEEN", Flags::SEEN),
    ];
    for (set, unset, flag) in pairs {
        let mut c = simple();
        assert!(!hit(set, &c) && hit(unset, &c), "{set} on no flags");
        c.flags = flag;
        assert!(hit(set, &c) && !hit(unset, &c), "{set} on {flag:?}");
        c.flags = Flags::from_bits(31);
        assert!(hit(set, &c) && !hit(unset, &c), "{set} on all flags");
    }
}

#[test]
fn keywords_compare_case_insensitively() {
    let keywords = ["$Forwarded".to_string(), "Junk".to_string()];
    let c = Candidate {
        keywords: &keywords,
        ..simple()
    };
    assert!(hit("KEYWORD junk", &c));
    assert!(hit("KEYWORD $forwarded", &c));
    assert!(!hit("KEYWORD NonJunk", &c));
    assert!(hit("UNKEYWORD NonJunk", &c));
    assert!(!hit("UNKEYWORD Junk", &c));
    assert!(!hit("KEYWORD Junk", &simple()));
}

#[test]
fn recent_new_and_old_follow_the_sessions_recent_messages() {
    let mut c = simple();
    assert!(!hit("RECENT", &c));
    assert!(!hit("NEW", &c));
    assert!(hit("OLD", &c));
    assert!(hit("NOT RECENT", &c));
    c.recent = true;
    assert!(hit("RECENT", &c));
    assert!(hit("NEW", &c));
    assert!(!hit("OLD", &c));
    c.flags = Flags::SEEN;
    assert!(!hit("NEW", &c));
    assert!(hit("RECENT", &c));
}

#[test]
fn larger_and_smaller_are_strict() {
    let c = Candidate {
        size: 100,
        ..simple()
    };
    assert!(hit("LARGER 99", &c));
    assert!(!hit("LARGER 100", &c));
    assert!(hit("SMALLER 101", &c));
    assert!(!hit("SMALLER 100", &c));
}

#[test]
fn internal_date_compares_by_utc_day() {
    let c = simple(); // 2024-01-02 12:00 UTC
    assert!(hit("ON 2-Jan-2024", &c));
    assert!(!hit("ON 1-Jan-2024", &c));
    assert!(hit("BEFORE 3-Jan-2024", &c));
    assert!(!hit("BEFORE 2-Jan-2024", &c));
    assert!(hit("SINCE 2-Jan-2024", &c));
    assert!(hit("SINCE 1-Jan-2024", &c));
    assert!(!hit("SINCE 3-Jan-2024", &c));
}

#[test]
fn internal_date_day_boundaries() {
    let last_second = Candidate {
        internal_date: 1_704_239_999, // 2024-01-02 23:59:59 UTC
        ..simple()
    };
    assert!(hit("ON 2-Jan-2024", &last_second));
    let first_second = Candidate {
        internal_date: 1_704_240_000, // 2024-01-03 00:00:00 UTC
        ..simple()
    };
    assert!(hit("ON 3-Jan-2024", &first_second));
    let before_epoch = Candidate {
        internal_date: -1, // 1969-12-31 23:59:59 UTC
        ..simple()
    };
    assert!(hit("ON 31-Dec-1969", &before_epoch));
}

#[test]
fn sent_dates_use_the_day_written_in_the_date_header() {
    // "Mon, 7 Feb 1994 21:52:25 -0800": 8 Feb in UTC, but the sender's day is the 7th.
    let c = simple();
    assert!(hit("SENTON 7-Feb-1994", &c));
    assert!(!hit("SENTON 8-Feb-1994", &c));
    assert!(hit("SENTBEFORE 8-Feb-1994", &c));
    assert!(!hit("SENTBEFORE 7-Feb-1994", &c));
    assert!(hit("SENTSINCE 7-Feb-1994", &c));
    assert!(!hit("SENTSINCE 8-Feb-1994", &c));
}

#[test]
fn sent_dates_fall_back_to_the_internal_date() {
    let c = candidate(fixture("missing.eml"));
    assert!(hit("SENTON 2-Jan-2024", &c));
    let c = candidate(b"Date: not a date\r\n\r\n");
    assert!(hit("SENTON 2-Jan-2024", &c));
}

#[test]
fn address_fields_match_names_and_addresses_case_insensitively() {
    let c = simple();
    assert!(hit("FROM foobar", &c));
    assert!(hit("FROM \"FRED FOOBAR\"", &c));
    assert!(hit("FROM blurdybloop.EXAMPLE", &c));
    assert!(!hit("FROM mooch", &c));
    assert!(hit("TO mooch@owatagu", &c));
    assert!(!hit("CC mooch", &c));
    assert!(!hit("BCC mooch", &c));
    let group = candidate(fixture("group.eml"));
    assert!(hit("CC undisclosed", &group));
    assert!(hit("TO bob@example.net", &group));
    assert!(hit("FROM johnny", &group));
}

#[test]
fn subject_matches_substrings() {
    let c = simple();
    assert!(hit("SUBJECT afternoon", &c));
    assert!(hit("SUBJECT \"NOON MEET\"", &c));
    assert!(!hit("SUBJECT evening", &c));
    assert!(hit("SUBJECT \"\"", &c));
    assert!(!hit("SUBJECT \"\"", &candidate(fixture("missing.eml"))));
}

#[test]
fn encoded_words_are_decoded_for_matching() {
    let c = candidate(fixture("encoded-words.eml"));
    let utf8 = |s: &'static str| AString::try_from(s).expect("valid search string");
    assert!(matches(&SearchKey::Subject(utf8("grüße")), &c, 10, 60));
    assert!(matches(&SearchKey::Subject(utf8("MÜNCHEN")), &c, 10, 60));
    assert!(matches(&SearchKey::From(utf8("jörg müller")), &c, 10, 60));
    // ISO-8859-1 encoded-word.
    assert!(matches(&SearchKey::To(utf8("françois")), &c, 10, 60));
    // The raw encoded form is not what users search for.
    assert!(!hit("SUBJECT R3LDvMOfZSBhdXMgTcO8bmNoZW4", &c));
}

#[test]
fn literal_search_strings_in_utf8() {
    let c = candidate(fixture("encoded-words.eml"));
    assert!(hit("CHARSET UTF-8 SUBJECT {7}\r\nGrüße", &c));
}

#[test]
fn eight_bit_headers_are_read_as_utf8() {
    let c = candidate(fixture("eight-bit.eml"));
    let utf8 = |s: &'static str| AString::try_from(s).expect("valid search string");
    assert!(matches(&SearchKey::From(utf8("jörg")), &c, 10, 60));
    assert!(matches(&SearchKey::Subject(utf8("grüße")), &c, 10, 60));
}

#[test]
fn header_key() {
    let c = candidate(fixture("folded.eml"));
    assert!(hit("HEADER X-Custom two", &c));
    assert!(hit("HEADER x-custom ONE", &c));
    assert!(!hit("HEADER X-Custom three", &c));
    // An empty string matches every message that has the field.
    assert!(hit("HEADER X-Custom \"\"", &c));
    assert!(!hit("HEADER X-None \"\"", &c));
    // Folded values are unfolded before matching.
    assert!(hit("HEADER Subject \"is folded over\"", &c) || hit("HEADER Subject \"folded\"", &c));
    assert!(hit("HEADER Subject \"subject that\"", &c));
}

#[test]
fn body_searches_decoded_text_parts_only() {
    let simple = simple();
    assert!(hit("BODY \"meet at 3:30\"", &simple));
    assert!(
        !hit("BODY afternoon", &simple),
        "BODY must not look at the header"
    );
    assert!(hit("BODY \"\"", &simple));

    let alternative = candidate(fixture("alternative.eml"));
    let utf8 = |s: &'static str| AString::try_from(s).expect("valid search string");
    assert!(matches(
        &SearchKey::Body(utf8("CAFÉ")),
        &alternative,
        10,
        60
    ));
    assert!(
        !hit("BODY C3=A9", &alternative),
        "quoted-printable is decoded"
    );

    let latin1 = candidate(fixture("encoded-words.eml"));
    assert!(matches(&SearchKey::Body(utf8("münchen")), &latin1, 10, 60));

    let attachment = candidate(fixture("mixed-attachment.eml"));
    assert!(hit("BODY \"report attached\"", &attachment));
    assert!(
        !hit("BODY JVBERi0", &attachment),
        "base64 attachments are not text"
    );

    let forwarded = candidate(fixture("rfc822.eml"));
    assert!(hit("BODY \"lunch at noon\"", &forwarded));
}

#[test]
fn body_decodes_base64_text() {
    let c = candidate(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
          SGVsbG8gV29ybGQ=\r\n",
    );
    assert!(hit("BODY \"hello world\"", &c));
    assert!(!hit("BODY SGVsbG8", &c));
}

#[test]
fn text_searches_header_and_body() {
    let c = simple();
    assert!(hit("TEXT afternoon", &c));
    assert!(hit("TEXT tomorrow", &c));
    assert!(
        hit("TEXT message-id", &c),
        "field names are part of the header text"
    );
    assert!(!hit("TEXT nowhere", &c));
    let encoded = candidate(fixture("encoded-words.eml"));
    let utf8 = |s: &'static str| AString::try_from(s).expect("valid search string");
    assert!(matches(
        &SearchKey::Text(utf8("grüße aus")),
        &encoded,
        10,
        60
    ));
}

#[test]
fn boolean_combinations() {
    let mut c = simple();
    c.flags = Flags::SEEN;
    assert!(hit("SEEN FROM fred", &c));
    assert!(!hit("SEEN FROM nobody", &c));
    assert!(hit("OR FLAGGED SEEN", &c));
    assert!(!hit("OR FLAGGED DELETED", &c));
    assert!(hit("NOT DELETED", &c));
    assert!(hit("(SEEN (UNFLAGGED 5))", &c));
    assert!(hit("NOT (FLAGGED OR DELETED ANSWERED)", &c));
    assert!(hit("OR (FROM nobody) (SUBJECT afternoon)", &c));
}

#[test]
fn modseq_matches_at_or_above() {
    let c = simple(); // modseq 7
    assert!(hit("MODSEQ 7", &c));
    assert!(hit("MODSEQ 1", &c));
    assert!(!hit("MODSEQ 8", &c));
    assert!(hit("MODSEQ \"/flags/\\\\seen\" all 7", &c));
}

#[test]
fn broken_messages_never_panic() {
    for message in [
        &b""[..],
        b"\r\n",
        b"no header at all",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        b"Subject: \xff\xfe\r\nDate: 99 Foo 99999 99:99:99 +9999\r\n\r\n\xff",
    ] {
        let c = candidate(message);
        for criteria in [
            "TEXT x",
            "BODY x",
            "SUBJECT x",
            "SENTON 1-Jan-2024",
            "HEADER Date 9",
        ] {
            let _ = hit(criteria, &c);
        }
    }
}

#[test]
fn which_keys_need_the_message() {
    for (criteria, expected) in [
        ("BODY x", Need::Whole),
        ("TEXT x", Need::Whole),
        ("SEEN OR UID 1 NOT BODY x", Need::Whole),
        ("FROM x", Need::Header),
        ("HEADER X-Y z", Need::Header),
        ("SENTON 1-Jan-2024", Need::Header),
        ("SEEN OR UID 1 NOT SUBJECT x", Need::Header),
        ("ALL", Need::Nothing),
        ("SEEN UNFLAGGED", Need::Nothing),
        ("UID 1:*", Need::Nothing),
        ("OR 1:3 KEYWORD x", Need::Nothing),
        ("NOT LARGER 10", Need::Nothing),
        ("ON 1-Jan-2024", Need::Nothing),
        ("MODSEQ 3", Need::Nothing),
    ] {
        assert_eq!(need(&key(criteria)), expected, "{criteria}");
    }
}

#[test]
fn header_keys_match_on_the_header_alone() {
    let whole = fixture("simple.eml");
    let header = &whole[..mime::header::body_start(whole)];
    for criteria in [
        "FROM fred",
        "NOT TO nobody",
        "SUBJECT meeting",
        "SENTON 7-Feb-1994",
        "HEADER Message-Id B27397",
    ] {
        assert!(hit(criteria, &candidate(whole)), "{criteria}");
        assert!(hit(criteria, &candidate(header)), "{criteria}");
    }
}

#[test]
fn sets_are_matched_by_range_whatever_their_order_or_size() {
    let c = simple(); // sequence number 5, UID 50
    assert!(hit("9:4", &c) && hit("1,3,5", &c) && hit("*:5", &c) && hit("5:*", &c));
    assert!(!hit("6:*", &c) && !hit("1:4,6", &c));
    assert!(hit("UID 60:50", &c) && hit("UID 1,49:51", &c) && !hit("UID 51:*", &c));
    // 20,000 ranges against one message: a lookup, not a scan (the line limit lets a
    // client send about as many).
    let many: Vec<String> = (0..20_000u32).map(|n| format!("{}", 2 * n + 1)).collect();
    let set = many.join(",");
    assert!(hit(&format!("UID {set}"), &candidate_uid(49)));
    assert!(!hit(&format!("UID {set}"), &candidate_uid(50)));
}

fn candidate_uid(uid: u32) -> Candidate<'static> {
    Candidate { uid, ..simple() }
}

#[test]
fn charsets() {
    assert!(supports_charset("utf-8"));
    assert!(supports_charset("US-ASCII"));
    assert!(!supports_charset("ISO-8859-1"));
}

#[test]
fn civil_day_numbers() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(1969, 12, 31), -1);
    assert_eq!(days_from_civil(1994, 2, 7), 8803);
    assert_eq!(days_from_civil(2000, 3, 1), 11017);
    assert_eq!(days_from_civil(2024, 2, 29), 19782);
    assert_eq!(days_from_civil(1900, 3, 1), -25508);
}

#[test]
fn text_finds_lines_that_are_not_fields() {
    let c = candidate(b"Subject: x\r\nnot a field line\r\n\r\nbody\r\n");
    assert!(hit("TEXT \"not a field\"", &c));
}

mod any_input {
    use proptest::prelude::*;

    use super::*;

    const CRITERIA: &[&str] = &[
        "TEXT a",
        "BODY a",
        "SUBJECT a",
        "FROM a",
        "TO \"\"",
        "HEADER Content-Type text",
        "SENTON 1-Jan-2024",
        "SENTBEFORE 1-Jan-1970",
        "OR BODY x NOT TEXT y",
    ];

    proptest! {
        #[test]
        fn matching_never_panics(
            message in prop::collection::vec(any::<u8>(), 0..400),
            internal_date in any::<i64>(),
        ) {
            let message: &'static [u8] = Box::leak(message.into_boxed_slice());
            let c = Candidate { internal_date, ..candidate(message) };
            for criteria in CRITERIA {
                let _ = hit(criteria, &c);
            }
            let _ = hit("ON 1-Jan-2024", &c);
        }
    }
}
