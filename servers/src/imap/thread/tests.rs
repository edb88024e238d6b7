//! THREAD's algorithms on hand-made messages: RFC 5256's examples, each rule of
//! REFERENCES, and mailboxes made to be slow or deep.

use std::time::{Duration, Instant};

use super::*;

/// Message `number`, sent at `sent`, with a subject as written (its base subject and
/// reply mark are taken as SORT takes them).
fn message(number: u32, sent: i64, subject: &str) -> Message {
    let base = crate::imap::sort::base_subject(subject);
    Message {
        number,
        sent,
        subject: crate::imap::sort::casemap(&base.text),
        reply: base.reply_or_forward,
    }
}

fn text(threads: &Threads) -> String {
    String::from_utf8(threads.encode()).unwrap()
}

/// A message as `(number, sent, subject, message-id, references)`.
type Fed<'a> = (u32, i64, &'a str, Option<&'a str>, &'a [&'a str]);

/// REFERENCES over messages fed in that order.
fn references(messages: &[Fed<'_>]) -> String {
    let mut builder = References::new();
    for &(number, sent, subject, id, refs) in messages {
        let refs: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        builder.add(message(number, sent, subject), id, &refs);
    }
    text(&builder.threads())
}

#[test]
fn the_thread_response_examples_of_rfc_5256_section_4() {
    // `(2)(3 6 (4 23)(44 7 96))`: 6 answers 3; 4 and 44 answer 6; 23 answers 4; 7
    // answers 44; 96 answers 7. (Later messages are parents of earlier ones.)
    let threads = references(&[
        (2, 2, "two", Some("2@x"), &[]),
        (3, 3, "three", Some("3@x"), &[]),
        (4, 4, "Re: three", Some("4@x"), &["3@x", "6@x"]),
        (6, 6, "Re: three", Some("6@x"), &["3@x"]),
        (7, 7, "Re: three", Some("7@x"), &["3@x", "6@x", "44@x"]),
        (23, 23, "Re: three", Some("23@x"), &["3@x", "6@x", "4@x"]),
        (44, 44, "Re: three", Some("44@x"), &["3@x", "6@x"]),
        (96, 96, "Re: three", Some("96@x"), &["44@x", "7@x"]),
    ]);
    assert_eq!(threads, "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n");
    // `((3)(5))`: siblings whose parent was not searched.
    let threads = references(&[
        (3, 3, "a", Some("3@x"), &["gone@x"]),
        (5, 5, "b", Some("5@x"), &["gone@x"]),
    ]);
    assert_eq!(threads, "* THREAD ((3)(5))\r\n");
    assert_eq!(text(&References::new().threads()), "* THREAD\r\n");
    assert_eq!(text(&ordered_subject(Vec::new())), "* THREAD\r\n");
}

#[test]
fn ordered_subject_as_rfc_5256_describes_it() {
    // From the example's `(166)(167)...(174 (175)(176)(178)(181)(180))...(194 195)`:
    // 174 starts a thread whose other messages are its children by date (181 was sent
    // before 180); a thread of two is `(194 195)`.
    let mut messages = vec![
        message(166, 1, "alpha"),
        message(167, 2, "beta"),
        message(174, 10, "gamma"),
        message(175, 11, "Re: gamma"),
        message(176, 12, "RE: Gamma"),
        message(178, 13, "[list] gamma"),
        message(180, 15, "Fwd: gamma"),
        message(181, 14, "gamma (fwd)"),
        message(194, 20, "delta"),
        message(195, 21, "Re: delta"),
    ];
    // Mailbox order is not date order: the threads are sorted by their first
    // message's date.
    messages.swap(0, 1);
    messages[0].sent = 3;
    assert_eq!(
        text(&ordered_subject(messages)),
        "* THREAD (166)(167)(174 (175)(176)(178)(181)(180))(194 195)\r\n"
    );
    // Equal dates keep mailbox order; an empty subject is a subject like any other.
    let same = vec![
        message(1, 5, ""),
        message(2, 5, "x"),
        message(3, 5, "Re:"),
        message(4, 5, "x"),
    ];
    assert_eq!(text(&ordered_subject(same)), "* THREAD (1 3)(2 4)\r\n");
}

#[test]
fn references_follow_the_header_and_in_reply_to_order() {
    // References make a chain; a message's parent is its last reference.
    assert_eq!(
        references(&[
            (1, 1, "a", Some("1@x"), &[]),
            (2, 2, "Re: a", Some("2@x"), &["1@x"]),
            (3, 3, "Re: a", Some("3@x"), &["1@x", "2@x"]),
            (4, 4, "Re: a", Some("4@x"), &["1@x"]),
        ]),
        "* THREAD (1 (2 3)(4))\r\n"
    );
    // A message referred to before it arrives fills its dummy.
    assert_eq!(
        references(&[
            (1, 2, "Re: a", Some("1@x"), &["0@x"]),
            (2, 1, "a", Some("0@x"), &[]),
        ]),
        "* THREAD (2 1)\r\n"
    );
}

#[test]
fn a_truncated_references_header_does_not_undo_links_but_the_last_one_wins() {
    // 3's References lost 2; 4's list says 1 -> 3 -> 4 and 2 -> 3: 1A keeps 3 under
    // 2 (it already has a parent), and 1B puts 4 under 3.
    assert_eq!(
        references(&[
            (1, 1, "a", Some("1@x"), &[]),
            (2, 2, "Re: a", Some("2@x"), &["1@x"]),
            (3, 3, "Re: a", Some("3@x"), &["1@x", "2@x"]),
            (4, 4, "Re: a", Some("4@x"), &["1@x", "3@x"]),
        ]),
        "* THREAD (1 2 3 4)\r\n"
    );
    // A message that already has a parent (from another's references) gets the one
    // its own last reference names (1B): 4 leaves 1 for 2, and 3 comes along.
    assert_eq!(
        references(&[
            (1, 1, "a", Some("1@x"), &[]),
            (2, 2, "b", Some("2@x"), &[]),
            (3, 3, "Re: b", Some("3@x"), &["1@x", "4@x"]),
            (4, 4, "Re: b", Some("4@x"), &["2@x"]),
        ]),
        "* THREAD (1)(2 4 3)\r\n"
    );
}

#[test]
fn loops_are_never_made() {
    // Each names the other as its parent: the second link would close a loop.
    assert_eq!(
        references(&[
            (1, 1, "a", Some("1@x"), &["2@x"]),
            (2, 2, "b", Some("2@x"), &["1@x"]),
        ]),
        "* THREAD (2 1)\r\n"
    );
    // A message naming itself, and references going round: 2 ends under 3 (its last
    // reference), and 3's own references would all close loops.
    assert_eq!(
        references(&[
            (1, 1, "a", Some("1@x"), &["1@x"]),
            (2, 2, "b", Some("2@x"), &["3@x", "2@x", "3@x"]),
            (3, 3, "c", Some("3@x"), &["2@x", "3@x", "2@x"]),
        ]),
        "* THREAD (1)(3 2)\r\n"
    );
}

#[test]
fn duplicate_and_missing_message_ids_are_their_own() {
    // The second message with ID 1@x gets an ID of its own: references to 1@x name
    // the first. Messages without an ID are never referred to.
    assert_eq!(
        references(&[
            (1, 1, "a", Some("1@x"), &[]),
            (2, 2, "b", Some("1@x"), &[]),
            (3, 3, "c", None, &["1@x"]),
            (4, 4, "d", None, &[]),
        ]),
        "* THREAD (1 3)(2)(4)\r\n"
    );
}

#[test]
fn dummies_are_pruned_and_promoted() {
    // A dummy with one child gives way to it at the top; inside a thread a dummy always
    // gives way to its children.
    assert_eq!(
        references(&[(1, 1, "a", Some("1@x"), &["gone@x"])]),
        "* THREAD (1)\r\n"
    );
    assert_eq!(
        references(&[
            (1, 1, "a", Some("1@x"), &[]),
            (2, 2, "Re: a", Some("2@x"), &["1@x", "gone@x"]),
            (3, 3, "Re: a", Some("3@x"), &["1@x", "gone@x"]),
        ]),
        "* THREAD (1 (2)(3))\r\n"
    );
    // A dummy at the top sorts by its first child's date.
    assert_eq!(
        references(&[
            (1, 5, "x", Some("1@x"), &[]),
            (2, 9, "y", Some("2@x"), &["gone@x"]),
            (3, 1, "z", Some("3@x"), &["gone@x"]),
        ]),
        "* THREAD ((3)(2))(1)\r\n"
    );
}

#[test]
fn threads_with_the_same_subject_are_gathered() {
    // A reply without references goes under the original.
    assert_eq!(
        references(&[
            (1, 1, "Lunch", Some("1@x"), &[]),
            (2, 2, "Re: lunch", Some("2@x"), &[]),
        ]),
        "* THREAD (1 2)\r\n"
    );
    // Two originals with one subject get a dummy parent; a third joins it.
    assert_eq!(
        references(&[
            (1, 1, "Lunch", Some("1@x"), &[]),
            (2, 2, "lunch", Some("2@x"), &[]),
            (3, 3, "Re: Lunch", Some("3@x"), &[]),
        ]),
        "* THREAD ((1)(2)(3))\r\n"
    );
    // A dummy thread takes in a message with its subject; an empty subject gathers
    // nothing.
    assert_eq!(
        references(&[
            (1, 1, "x", Some("1@x"), &["gone@x"]),
            (2, 2, "y", Some("2@x"), &["gone@x"]),
            (3, 3, "Re: x", Some("3@x"), &[]),
            (4, 4, "", Some("4@x"), &[]),
            (5, 5, "Re:", Some("5@x"), &[]),
        ]),
        "* THREAD ((1)(2)(3))(4)(5)\r\n"
    );
    // Two dummies with one subject become one.
    assert_eq!(
        references(&[
            (1, 1, "x", Some("1@x"), &["gone1@x"]),
            (2, 2, "y", Some("2@x"), &["gone1@x"]),
            (3, 3, "x", Some("3@x"), &["gone2@x"]),
            (4, 4, "z", Some("4@x"), &["gone2@x"]),
        ]),
        "* THREAD ((1)(2)(3)(4))\r\n"
    );
}

#[test]
fn the_link_cut_forest_agrees_with_parent_walks() {
    // Pseudo-random links and cuts on 64 nodes, each root checked against a walk up
    // the parents.
    let n = 64;
    let mut forest = Forest::default();
    for _ in 0..n {
        forest.add();
    }
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let walk = |parent: &[Option<usize>], mut x: usize| {
        while let Some(p) = parent[x] {
            x = p;
        }
        x
    };
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    for _ in 0..20_000 {
        let (a, b) = (next(n), next(n));
        if next(3) == 0 {
            if parent[a].is_some() {
                parent[a] = None;
                forest.cut(a);
            }
        } else if parent[a].is_none() && walk(&parent, b) != a {
            parent[a] = Some(b);
            forest.link(a, b);
        }
        let x = next(n);
        assert_eq!(forest.root(x), walk(&parent, x));
    }
}

#[test]
fn a_mailbox_made_to_be_quadratic_threads_in_time() {
    // Two chains of 25,000 (two messages list them whole), then each message of the
    // second chain, in turn, names the bottom of the first as its parent: a walk up
    // the parents to look for loops would take 25,000 steps each time (over 600
    // million in all), and a walk down the subtree as many.
    let k = 25_000u32;
    let chain =
        |prefix: &str| -> Vec<String> { (0..k).map(|i| format!("{prefix}{i}@x")).collect() };
    let (p, d) = (chain("p"), chain("d"));
    let started = Instant::now();
    let mut builder = References::new();
    builder.add(message(1, 1, "p"), Some("builder-p@x"), &p);
    builder.add(message(2, 2, "d"), Some("builder-d@x"), &d);
    let last_p = vec![p[p.len() - 1].clone()];
    for (i, id) in d.iter().enumerate() {
        builder.add(message(3 + i as u32, 3, "d"), Some(id), &last_p);
    }
    // And a hundred thousand replies to one message, all referring to each other's
    // IDs in a ring.
    let ring = 100_000u32;
    for i in 0..ring {
        let id = format!("r{i}@x");
        let refs = [
            format!("r{}@x", (i + 1) % ring),
            format!("r{}@x", (i + 2) % ring),
        ];
        builder.add(message(100_000 + i, 4, "Re: ring"), Some(&id), &refs);
    }
    let threads = builder.threads();
    let encoded = threads.encode();
    let elapsed = started.elapsed();
    assert!(encoded.starts_with(b"* THREAD ("));
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

#[test]
fn very_deep_threads_are_written_without_recursion() {
    // Each message answers the one before and has one more, unanswered, reply: the
    // THREAD response nests 50,000 deep.
    let depth = 50_000u32;
    let mut builder = References::new();
    let mut refs: Vec<String> = Vec::new();
    for i in 0..depth {
        let id = format!("{i}@x");
        let parent: Vec<String> = refs.last().cloned().into_iter().collect();
        builder.add(
            message(2 * i + 1, i64::from(2 * i), "s"),
            Some(&id),
            &parent,
        );
        builder.add(
            message(2 * i + 2, i64::from(2 * i + 1), "Re: s"),
            Some(&format!("leaf{i}@x")),
            std::slice::from_ref(&id),
        );
        refs.push(id);
    }
    let threads = builder.threads();
    let encoded = String::from_utf8(threads.encode()).unwrap();
    assert!(
        encoded.starts_with("* THREAD (1 (2)(3 (4)(5 "),
        "{}",
        &encoded[..40]
    );
    assert_eq!(encoded.matches('(').count(), encoded.matches(')').count());
    drop(threads);
}
