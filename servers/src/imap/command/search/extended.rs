//! Extended SEARCH through the session, byte for byte: ESEARCH's result options (RFC
//! 4731) and SEARCHRES's saved result, `$` (RFC 5182), in the commands that take a
//! set.

use crate::imap::testing::{Fixture, exchange};

/// Five messages (UIDs 1 to 5), 2, 4 and 5 flagged.
fn flagged() -> Fixture {
    let mut f = Fixture::selected(5);
    f.run(b"s2 STORE 2,4:5 +FLAGS.SILENT (\\Flagged)\r\n");
    f
}

fn run(f: &mut Fixture, command: &str) -> Vec<String> {
    f.run(format!("{command}\r\n").as_bytes())
}

#[test]
fn the_examples_of_rfc_4731() {
    let mut f = flagged();
    f.run(b"s3 STORE 1:3 +FLAGS.SILENT (\\Seen)\r\n");
    for (command, esearch) in [
        (
            "A282 SEARCH RETURN (MIN COUNT) FLAGGED",
            "(TAG \"A282\") MIN 2 COUNT 3",
        ),
        ("A283 SEARCH RETURN () FLAGGED", "(TAG \"A283\") ALL 2,4:5"),
        ("A284 SEARCH RETURN (MIN) UNSEEN", "(TAG \"A284\") MIN 4"),
        (
            "A285 UID SEARCH RETURN (MIN MAX) 1:5000",
            "(TAG \"A285\") UID MIN 1 MAX 5",
        ),
        (
            "A286 SEARCH RETURN (COUNT) DELETED",
            "(TAG \"A286\") COUNT 0",
        ),
        (
            "a1 search return (all count max) not flagged",
            "(TAG \"a1\") MAX 3 ALL 1,3 COUNT 2",
        ),
        ("a2 SEARCH RETURN (MIN MAX ALL) DELETED", "(TAG \"a2\")"),
        (
            "a3 UID SEARCH RETURN (ALL) CHARSET UTF-8 SUBJECT message",
            "(TAG \"a3\") UID ALL 1:5",
        ),
    ] {
        let tag = command.split(' ').next().unwrap();
        assert_eq!(
            run(&mut f, command),
            [
                format!("* ESEARCH {esearch}\r\n"),
                format!("{tag} OK SEARCH completed\r\n")
            ],
            "{command}"
        );
    }
    // A plain SEARCH still answers SEARCH.
    assert_eq!(
        run(&mut f, "a4 SEARCH FLAGGED"),
        ["* SEARCH 2 4 5\r\n", "a4 OK SEARCH completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a5 SEARCH RETURN (MIN) CHARSET KOI8-R ALL"),
        ["a5 NO [BADCHARSET (UTF-8 US-ASCII)] only UTF-8 and US-ASCII searches\r\n"]
    );
}

#[test]
fn a_saved_result_serves_fetch_store_copy_and_search() {
    // RFC 5182 §2.2's first examples: a SAVE answers nothing but its OK.
    let mut f = flagged();
    assert_eq!(
        run(
            &mut f,
            "A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""
        ),
        ["A282 OK SEARCH completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "A283 FETCH $ (UID FLAGS)"),
        [
            "* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n",
            "* 4 FETCH (UID 4 FLAGS (\\Flagged))\r\n",
            "* 5 FETCH (UID 5 FLAGS (\\Flagged))\r\n",
            "A283 OK FETCH completed\r\n"
        ]
    );
    // A UID command takes `$` as the same messages, named by UID.
    assert_eq!(
        run(&mut f, "A284 UID STORE $ +FLAGS (\\Seen)"),
        [
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen))\r\n",
            "* 4 FETCH (UID 4 FLAGS (\\Flagged \\Seen))\r\n",
            "* 5 FETCH (UID 5 FLAGS (\\Flagged \\Seen))\r\n",
            "A284 OK STORE completed\r\n"
        ]
    );
    for (search, found) in [
        ("SEARCH $", " 2 4 5"),
        ("SEARCH $ NOT 4", " 2 5"),
        ("SEARCH OR $ 1", " 1 2 4 5"),
        ("SEARCH NOT $", " 1 3"),
        ("UID SEARCH UID $", " 2 4 5"),
        ("SEARCH (UID 1:4 $)", " 2 4"),
        ("SEARCH SUBJECT $", ""),
    ] {
        assert_eq!(
            run(&mut f, &format!("a1 {search}")),
            [
                format!("* SEARCH{found}\r\n"),
                "a1 OK SEARCH completed\r\n".into()
            ],
            "{search}"
        );
    }
    let archive = f.mailbox("Archive").uidvalidity;
    assert_eq!(
        run(&mut f, "a2 COPY $ Archive"),
        [format!(
            "a2 OK [COPYUID {archive} 2,4:5 1:3] COPY completed\r\n"
        )]
    );
    assert_eq!(
        run(&mut f, "a3 SORT (REVERSE SUBJECT) UTF-8 $"),
        ["* SORT 5 4 2\r\n", "a3 OK SORT completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a4 UID THREAD ORDEREDSUBJECT UTF-8 UID $"),
        ["* THREAD (2)(4)(5)\r\n", "a4 OK THREAD completed\r\n"]
    );
}

#[test]
fn save_with_min_or_max_keeps_only_those() {
    // RFC 5182 §2.4.
    let mut f = flagged();
    assert_eq!(
        run(&mut f, "a1 SEARCH RETURN (SAVE MIN MAX) FLAGGED"),
        [
            "* ESEARCH (TAG \"a1\") MIN 2 MAX 5\r\n",
            "a1 OK SEARCH completed\r\n"
        ]
    );
    let search = |f: &mut Fixture, found: &str| {
        assert_eq!(
            run(f, "a2 SEARCH $"),
            [
                format!("* SEARCH{found}\r\n"),
                "a2 OK SEARCH completed\r\n".into()
            ]
        );
    };
    search(&mut f, " 2 5");
    run(&mut f, "a3 UID SEARCH RETURN (MAX SAVE) FLAGGED");
    search(&mut f, " 5");
    assert_eq!(
        run(&mut f, "a5 SEARCH RETURN (SAVE COUNT MIN) FLAGGED"),
        [
            "* ESEARCH (TAG \"a5\") MIN 2 COUNT 3\r\n",
            "a5 OK SEARCH completed\r\n"
        ]
    );
    search(&mut f, " 2 4 5");
    // A SAVE that refers to `$` sees the result before it.
    run(&mut f, "a7 SEARCH RETURN (SAVE) $ NOT 4");
    search(&mut f, " 2 5");
}

#[test]
fn a_failed_save_empties_the_result_and_other_searches_keep_it() {
    let mut f = flagged();
    run(&mut f, "a1 SEARCH RETURN (SAVE) FLAGGED");
    // Searches without SAVE, ESEARCH or not, leave it.
    run(&mut f, "a2 SEARCH ALL");
    run(&mut f, "a3 SEARCH RETURN (COUNT) 1");
    assert_eq!(
        run(&mut f, "a4 SEARCH $"),
        ["* SEARCH 2 4 5\r\n", "a4 OK SEARCH completed\r\n"]
    );
    // RFC 5182 §2.2's example 6: the SAVE fails, so `$` is empty, and the COPY
    // pipelined behind it copies nothing (and succeeds).
    assert_eq!(
        run(
            &mut f,
            "E282 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT x"
        ),
        ["E282 NO [BADCHARSET (UTF-8 US-ASCII)] only UTF-8 and US-ASCII searches\r\n"]
    );
    assert_eq!(
        run(&mut f, "E283 COPY $ Archive"),
        ["E283 OK COPY completed\r\n"]
    );
    assert!(f.messages("Archive").is_empty());
    assert_eq!(
        run(&mut f, "a5 FETCH $ FLAGS"),
        ["a5 OK FETCH completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a6 UID FETCH $ FLAGS"),
        ["a6 OK FETCH completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a7 STORE $ +FLAGS (\\Seen)"),
        ["a7 OK STORE completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a8 SEARCH $"),
        ["* SEARCH\r\n", "a8 OK SEARCH completed\r\n"]
    );
    // A SAVE that finds nothing saves nothing.
    run(&mut f, "a9 SEARCH RETURN (SAVE) FLAGGED");
    run(&mut f, "b1 SEARCH RETURN (SAVE) DELETED");
    assert_eq!(
        run(&mut f, "b2 MOVE $ Archive"),
        ["b2 OK MOVE completed\r\n"]
    );
}

#[test]
fn selecting_closing_and_unselecting_empty_the_result() {
    let mut f = flagged();
    // Before any SAVE, `$` is empty.
    assert_eq!(run(&mut f, "a1 FETCH $ UID"), ["a1 OK FETCH completed\r\n"]);
    for leave in ["SELECT INBOX", "EXAMINE INBOX", "UNSELECT", "CLOSE"] {
        run(&mut f, "a2 SEARCH RETURN (SAVE) FLAGGED");
        assert_eq!(run(&mut f, "a3 SEARCH $")[0], "* SEARCH 2 4 5\r\n");
        let left = run(&mut f, &format!("a4 {leave}"));
        assert!(left.last().unwrap().starts_with("a4 OK"), "{left:?}");
        if !leave.ends_with("INBOX") {
            run(&mut f, "a5 SELECT INBOX");
        }
        assert_eq!(
            run(&mut f, "a6 SEARCH $"),
            ["* SEARCH\r\n", "a6 OK SEARCH completed\r\n"],
            "after {leave}"
        );
    }
}

#[test]
fn expunged_messages_leave_the_result_as_the_client_hears_of_it() {
    let mut f = flagged();
    run(&mut f, "a1 SEARCH RETURN (SAVE) 2:4");
    run(&mut f, "a2 STORE 3 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(
        run(&mut f, "a3 EXPUNGE"),
        ["* 3 EXPUNGE\r\n", "a3 OK EXPUNGE completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a4 FETCH $ (UID)"),
        [
            "* 2 FETCH (UID 2)\r\n",
            "* 3 FETCH (UID 4)\r\n",
            "a4 OK FETCH completed\r\n"
        ]
    );
    // Another session expunges 2: until this one hears of it (NOOP), `$` still names
    // it; then the numbers shift.
    let mut other = f.other_session();
    exchange(&mut other, b"b1 SELECT INBOX\r\n");
    exchange(&mut other, b"b2 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n");
    exchange(&mut other, b"b3 EXPUNGE\r\n");
    assert_eq!(
        run(&mut f, "a5 SEARCH $"),
        ["* SEARCH 2 3\r\n", "a5 OK SEARCH completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a6 NOOP"),
        ["* 2 EXPUNGE\r\n", "a6 OK NOOP completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a7 SEARCH $"),
        ["* SEARCH 2\r\n", "a7 OK SEARCH completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a8 UID SEARCH $"),
        ["* SEARCH 4\r\n", "a8 OK SEARCH completed\r\n"]
    );
    // UID EXPUNGE $ removes what `$` names and is \Deleted.
    run(&mut f, "a9 STORE $ +FLAGS.SILENT (\\Deleted)");
    assert_eq!(
        run(&mut f, "b1 UID EXPUNGE $"),
        ["* 2 EXPUNGE\r\n", "b1 OK EXPUNGE completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "b2 SEARCH ALL"),
        ["* SEARCH 1 2\r\n", "b2 OK SEARCH completed\r\n"]
    );
}

#[test]
fn with_qresync_the_result_loses_what_vanished_as_the_client_hears_of_it() {
    let mut f = flagged();
    run(&mut f, "q1 ENABLE QRESYNC");
    run(&mut f, "a1 UID SEARCH RETURN (SAVE) 2:4");
    let mut other = f.other_session();
    exchange(&mut other, b"b1 SELECT INBOX\r\n");
    exchange(&mut other, b"b2 STORE 3 +FLAGS.SILENT (\\Deleted)\r\n");
    exchange(&mut other, b"b3 EXPUNGE\r\n");
    // Not heard of yet: `$` still names UID 3, and the answer says which modseq the
    // client is in step with (RFC 7162 §3.2).
    let answer = run(&mut f, "a2 UID SEARCH RETURN (ALL) $");
    assert_eq!(answer[0], "* ESEARCH (TAG \"a2\") UID ALL 2:4\r\n");
    assert!(answer[1].starts_with("* OK [HIGHESTMODSEQ "), "{answer:?}");
    assert_eq!(answer[2], "a2 OK SEARCH completed\r\n");
    let answer = run(&mut f, "s1 UID SORT (ARRIVAL) UTF-8 $");
    assert_eq!(answer[0], "* SORT 2 3 4\r\n");
    assert!(answer[1].starts_with("* OK [HIGHESTMODSEQ "), "{answer:?}");
    // UID FETCH $ with VANISHED: no VANISHED (EARLIER) for UID 3, which the client
    // still lists (it hears of it as any expunge, below).
    let answer = run(&mut f, "a3 UID FETCH $ (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    let uids: Vec<&str> = answer
        .iter()
        .filter_map(|line| line.split("(UID ").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(uids, ["2", "3", "4"], "{answer:?}");
    assert!(!answer.iter().any(|l| l.contains("VANISHED")), "{answer:?}");
    // Heard of as VANISHED: it leaves `$`.
    assert_eq!(
        run(&mut f, "a4 NOOP"),
        ["* VANISHED 3\r\n", "a4 OK NOOP completed\r\n"]
    );
    assert_eq!(
        run(&mut f, "a5 UID SEARCH $"),
        ["* SEARCH 2 4\r\n", "a5 OK SEARCH completed\r\n"]
    );
    let answer = run(&mut f, "a6 UID FETCH $ (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    assert_eq!(answer.len(), 3, "{answer:?}");
    assert!(
        answer[0].starts_with("* 2 FETCH (UID 2 ") && answer[1].starts_with("* 3 FETCH (UID 4 "),
        "{answer:?}"
    );
}
