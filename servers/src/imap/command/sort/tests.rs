//! SORT and UID SORT through the session, byte for byte.

use crate::imap::testing::{DATE, Fixture};

/// Five messages whose subjects and dates make RFC 5256 §3's second example come out
/// as it does there: `SORT (SUBJECT REVERSE DATE) UTF-8 ALL` is `5 3 4 1 2`.
fn five() -> Fixture {
    let mut f = Fixture::logged_in(0);
    for (n, (from, to, subject, date, body)) in [
        (
            "Aaron <zoe@b.test>",
            "ann@c.test",
            "b",
            "2 Jan 2000 10:00 +0000",
            10,
        ),
        (
            "\"Bob\" <bob@b.test>",
            "Ann Other <carl@c.test>",
            "B",
            "1 Jan 2000 10:00 +0000",
            300,
        ),
        (
            "amy@b.test",
            "\"\" <dan@c.test>",
            "Re: a",
            "5 Jan 2000 10:00 +0000",
            50,
        ),
        (
            "=?utf-8?q?=C3=89mile?= <emile@b.test>",
            "bea@c.test",
            "a",
            "4 Jan 2000 10:00 +0000",
            200,
        ),
        (
            "Yann <yann@b.test>",
            "abe@c.test",
            "[list] A",
            "6 Jan 2000 10:00 -0800",
            100,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let content = format!(
            "From: {from}\r\nTo: {to}\r\nCc: cc{n}@c.test\r\nSubject: {subject}\r\n\
             Date: {date}\r\n\r\n{}\r\n",
            "x".repeat(body)
        );
        // Arrival in the opposite order of the mailbox.
        f.deliver_bytes(&content, DATE - n as i64);
    }
    let select = f.run(b"s1 SELECT INBOX\r\n");
    assert!(select.last().unwrap().starts_with("s1 OK"), "{select:?}");
    f
}

fn sorted(f: &mut Fixture, command: &str) -> String {
    let responses = f.run(format!("{command}\r\n").as_bytes());
    assert!(
        responses.last().unwrap().contains(" OK SORT completed"),
        "{responses:?}"
    );
    responses[responses.len() - 2].clone()
}

#[test]
fn the_examples_of_rfc_5256_section_3() {
    let mut f = five();
    assert_eq!(
        f.run(b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n"),
        ["* SORT 5 3 4 1 2\r\n", "A283 OK SORT completed\r\n"]
    );
    assert_eq!(
        f.run(b"A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"\r\n"),
        ["* SORT\r\n", "A284 OK SORT completed\r\n"]
    );
    // Ties stay in mailbox order, REVERSE or not.
    assert_eq!(
        sorted(&mut f, "a SORT (SUBJECT) UTF-8 ALL"),
        "* SORT 3 4 5 1 2\r\n"
    );
    assert_eq!(
        sorted(&mut f, "a SORT (REVERSE SUBJECT) UTF-8 ALL"),
        "* SORT 1 2 3 4 5\r\n"
    );
}

#[test]
fn every_sort_key() {
    let mut f = five();
    for (criteria, expected) in [
        ("ARRIVAL", "5 4 3 2 1"),
        ("REVERSE ARRIVAL", "1 2 3 4 5"),
        // 6 Jan 10:00 -0800 is 18:00 UTC.
        ("DATE", "2 1 4 3 5"),
        ("SIZE", "1 3 5 4 2"),
        ("REVERSE SIZE", "2 4 5 3 1"),
        // The local part of the first address: amy bob emile yann zoe.
        ("FROM", "3 2 4 5 1"),
        ("TO", "5 1 4 2 3"),
        ("CC", "1 2 3 4 5"),
        ("REVERSE CC", "5 4 3 2 1"),
        // Display names (decoded, then casemapped: É after E), else `local@domain`:
        // Aaron, amy@b.test, Bob, Émile, Yann.
        ("DISPLAYFROM", "1 3 2 4 5"),
        // abe@c.test, Ann Other, ann@c.test, bea@c.test, dan@c.test.
        ("DISPLAYTO", "5 2 1 4 3"),
        ("SUBJECT DATE", "4 3 5 2 1"),
    ] {
        assert_eq!(
            sorted(&mut f, &format!("a SORT ({criteria}) UTF-8 ALL")),
            format!("* SORT {expected}\r\n"),
            "{criteria}"
        );
    }
}

#[test]
fn uid_sort_answers_uids_and_searches_like_search() {
    let mut f = five();
    f.run(b"a1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    f.run(b"a2 EXPUNGE\r\n");
    assert_eq!(
        sorted(&mut f, "a3 SORT (DATE) UTF-8 ALL"),
        "* SORT 1 3 2 4\r\n"
    );
    assert_eq!(
        sorted(&mut f, "a4 UID SORT (DATE) UTF-8 ALL"),
        "* SORT 2 4 3 5\r\n"
    );
    assert_eq!(
        sorted(
            &mut f,
            "a5 UID SORT (REVERSE DATE) utf-8 UID 3:* NOT SUBJECT \"[list]\""
        ),
        "* SORT 3 4\r\n"
    );
    assert_eq!(
        sorted(&mut f, "a6 SORT (SUBJECT) \"US-ASCII\" OR FROM yann TO bea"),
        "* SORT 3 4\r\n"
    );
}

#[test]
fn only_utf8_and_ascii_charsets() {
    let mut f = five();
    assert_eq!(
        f.run(b"a1 SORT (DATE) KOI8-R ALL\r\n"),
        ["a1 NO [BADCHARSET (UTF-8 US-ASCII)] only UTF-8 and US-ASCII searches\r\n"]
    );
    f.run(b"a2 UNSELECT\r\n");
    assert_eq!(
        f.run(b"a3 SORT (DATE) UTF-8 ALL\r\n"),
        ["a3 BAD select a mailbox first\r\n"]
    );
}

#[test]
fn sort_reports_others_changes_first_and_a_modseq_search_its_highest() {
    let mut f = five();
    let mut other = f.other_session();
    crate::imap::testing::exchange(&mut other, b"b1 SELECT INBOX\r\n");
    crate::imap::testing::exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n");
    let flagged = f.messages("INBOX")[1].modseq;
    assert_eq!(
        f.run(b"a1 SORT (SIZE) UTF-8 FLAGGED\r\n"),
        [
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n",
            "* SORT 2\r\n",
            "a1 OK SORT completed\r\n"
        ]
    );
    assert_eq!(
        f.run(format!("a2 SORT (SIZE) UTF-8 MODSEQ {flagged}\r\n").as_bytes()),
        [
            format!("* SORT 2 (MODSEQ {flagged})\r\n"),
            "a2 OK SORT completed\r\n".into()
        ]
    );
}
