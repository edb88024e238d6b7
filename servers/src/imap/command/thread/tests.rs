//! THREAD and UID THREAD through the session, byte for byte: the headers each
//! algorithm reads, as clients write them.

use crate::imap::testing::{DATE, Fixture};

/// Stores messages `(subject, date, extra header lines)` in INBOX, in order, and
/// selects it.
fn mailbox(messages: &[(&str, &str, &str)]) -> Fixture {
    let mut f = Fixture::logged_in(0);
    for (subject, date, extra) in messages {
        let content =
            format!("From: a@b.test\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}\r\nbody\r\n");
        f.deliver_bytes(&content, DATE);
    }
    let select = f.run(b"s1 SELECT INBOX\r\n");
    assert!(select.last().unwrap().starts_with("s1 OK"), "{select:?}");
    f
}

fn threads(f: &mut Fixture, command: &str) -> String {
    let responses = f.run(format!("{command}\r\n").as_bytes());
    assert!(
        responses.last().unwrap().contains(" OK THREAD completed"),
        "{responses:?}"
    );
    assert_eq!(responses.len(), 2, "{responses:?}");
    responses[0].clone()
}

fn conversation() -> Fixture {
    mailbox(&[
        // 1
        (
            "Plans",
            "1 Mar 2024 09:00 +0000",
            "Message-ID: <plans@a>\r\n",
        ),
        // 2: answers 1 (References)
        (
            "Re: Plans",
            "1 Mar 2024 10:00 +0000",
            "Message-ID: <re1@b>\r\nReferences: <plans@a>\r\n",
        ),
        // 3: answers 2, References quoted differently, a comment inside
        (
            "RE: plans",
            "1 Mar 2024 11:00 +0000",
            "Message-ID: <re2@a>\r\nReferences: <\"plans\"@a>\r\n <re1 (the reply) @b>\r\n",
        ),
        // 4: answers 1 by In-Reply-To only, with text around it
        (
            "Re: Plans",
            "1 Mar 2024 09:30 +0000",
            "Message-ID: <re3@c>\r\nIn-Reply-To: your message of Friday <plans@a> and <re1@b>\r\n",
        ),
        // 5: unrelated
        (
            "Other",
            "29 Feb 2024 12:00 +0000",
            "Message-ID: <other@a>\r\n",
        ),
        // 6: same subject as 1, no references, a forward: gathered under 1
        (
            "Fwd: plans",
            "2 Mar 2024 08:00 +0000",
            "Message-ID: <fwd@a>\r\n",
        ),
        // 7: no Message-ID, no date: the internal date (24 Nov 2026) sorts it last
        ("Later", "", ""),
    ])
}

#[test]
fn references_threads_by_message_ids_normalized() {
    let mut f = conversation();
    assert_eq!(
        threads(&mut f, "a1 THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (5)(1 (4)(2 3)(6))(7)\r\n"
    );
    // UID THREAD names UIDs: after an expunge they are not the sequence numbers.
    f.run(b"a2 STORE 5 +FLAGS.SILENT (\\Deleted)\r\n");
    f.run(b"a3 EXPUNGE\r\n");
    assert_eq!(
        threads(&mut f, "a4 UID THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (1 (4)(2 3)(6))(7)\r\n"
    );
    assert_eq!(
        threads(&mut f, "a5 THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (1 (4)(2 3)(5))(6)\r\n"
    );
    // Only the messages searched: 2 is missing, so 3 hangs from 1 through a dummy
    // that is pruned away.
    assert_eq!(
        threads(&mut f, "a6 UID THREAD REFERENCES US-ASCII NOT UID 2"),
        "* THREAD (1 (4)(3)(6))(7)\r\n"
    );
}

#[test]
fn ordered_subject_threads_by_base_subject() {
    let mut f = conversation();
    // Plans: 1 (9:00), 4 (9:30), 2, 3, 6; Other: 5; Later: 7.
    assert_eq!(
        threads(&mut f, "a1 THREAD ORDEREDSUBJECT UTF-8 ALL"),
        "* THREAD (5)(1 (4)(2)(3)(6))(7)\r\n"
    );
    // RFC 5256's A284: nothing found.
    assert_eq!(
        threads(&mut f, "A284 THREAD ORDEREDSUBJECT US-ASCII TEXT \"gewp\""),
        "* THREAD\r\n"
    );
    assert_eq!(
        threads(&mut f, "a2 UID THREAD ORDEREDSUBJECT UTF-8 1:2"),
        "* THREAD (1 2)\r\n"
    );
}

#[test]
fn unknown_algorithms_and_charsets_are_refused() {
    let mut f = conversation();
    assert_eq!(
        f.run(b"a1 THREAD FOO UTF-8 ALL\r\n"),
        ["a1 BAD unknown threading algorithm\r\n"]
    );
    assert_eq!(
        f.run(b"a2 THREAD REFERENCES ISO-8859-1 ALL\r\n"),
        ["a2 NO [BADCHARSET (UTF-8 US-ASCII)] only UTF-8 and US-ASCII searches\r\n"]
    );
    f.run(b"a3 CLOSE\r\n");
    assert_eq!(
        f.run(b"a4 THREAD REFERENCES UTF-8 ALL\r\n"),
        ["a4 BAD select a mailbox first\r\n"]
    );
}
