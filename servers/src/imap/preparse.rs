//! What a command may say that imap-codec does not read, taken out before imap-codec
//! parses the rest. Sans-I/O, on one complete message (its lines and in-memory
//! literals, as [`input`](super::input) frames it):
//!
//! - `RETURN (...)` of an extended SEARCH or UID SEARCH (RFC 4466 §2.6; RFC 4731's MIN,
//!   MAX, ALL, COUNT and RFC 5182's SAVE): cut out, its options kept in [`Request`];
//! - `$`, the saved search result (RFC 5182), wherever it may stand for a sequence set:
//!   the set of FETCH, STORE, COPY, MOVE and UID EXPUNGE (and their UID forms), and the
//!   sequence-set and UID keys of SEARCH, SORT and THREAD. Each `$` becomes the
//!   placeholder set `4294967295:4294967295`, which the session reads as `$`
//!   ([`is_saved`]); a client's own spelling of that set is respelled `4294967295` (the
//!   same messages), so after parsing the placeholder means `$` and nothing else. A `$`
//!   inside a set (`1,$`) is not RFC 5182's and is left for imap-codec to refuse.
//!
//! Where the search keys start and which tokens are keys (not the argument of
//! SUBJECT, HEADER, MODSEQ...) is read here token by token; after parsing, the
//! placeholders must sit exactly where a `$` was seen, or the command is refused as
//! malformed, so a reading here that disagreed with imap-codec's could never turn a
//! `$` into something else. Everything that is not one of these commands passes
//! through without a copy.
//!
//! A message imap-codec refuses may still be a LIST in RFC 5258's syntax (selection
//! and return options, several patterns), which imap-codec does not parse at all:
//! [`list`] reads it ([`Request::List`]).

use std::borrow::Cow;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::esearch::ReturnOptions;
use super::list::{self, ListCommand};

/// What a session handles: a command as imap-codec parsed it, with what this module
/// took out before it did; or a LIST in RFC 5258's syntax, which imap-codec does not
/// parse at all ([`list::parse`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Any command; a `$` in it is the placeholder set ([`is_saved`]).
    Command(Command<'static>),
    /// SEARCH or UID SEARCH with `RETURN (...)`: answered with ESEARCH (RFC 4731).
    Search {
        command: Command<'static>,
        returns: ReturnOptions,
    },
    /// LIST-EXTENDED's LIST (selection and return options, several patterns).
    List(ListCommand),
}

impl Request {
    /// `command`, with the RETURN options of its SEARCH if it had any.
    pub fn new(command: Command<'static>, search_return: Option<ReturnOptions>) -> Request {
        match search_return {
            Some(returns) => Request::Search { command, returns },
            None => Request::Command(command),
        }
    }

    pub fn tag(&self) -> &Tag<'static> {
        match self {
            Request::Command(command) | Request::Search { command, .. } => &command.tag,
            Request::List(list) => &list.tag,
        }
    }
}

impl From<Command<'static>> for Request {
    fn from(command: Command<'static>) -> Request {
        Request::Command(command)
    }
}

impl From<ListCommand> for Request {
    fn from(list: ListCommand) -> Request {
        Request::List(list)
    }
}

/// One complete command message (CRLF included) as a [`Request`]; `None` when it is
/// not a command imap-codec and this module read whole, nor a LIST `list` reads.
pub fn decode(message: &[u8]) -> Option<Request> {
    command(message).or_else(|| list::parse(message).map(Request::List))
}

/// The message as imap-codec parses it once `RETURN (...)` and `$` are taken out.
fn command(message: &[u8]) -> Option<Request> {
    let Rewritten {
        bytes,
        search_return,
        saved,
    } = rewrite(message)?;
    let command = match CommandCodec::default().decode_static(&bytes) {
        Ok((&[], command)) => command,
        _ => return None,
    };
    let placeholders: Vec<usize> = sequence_sets(&command.body)
        .iter()
        .enumerate()
        .filter(|(_, set)| is_saved(set))
        .map(|(n, _)| n)
        .collect();
    (placeholders == saved).then(|| Request::new(command, search_return))
}

/// Whether a sequence set is `$`, the saved search result, in a command [`decode`]
/// made.
pub fn is_saved(set: &SequenceSet) -> bool {
    let max = SeqOrUid::Value(std::num::NonZeroU32::MAX);
    matches!(set.0.as_ref(), [Sequence::Range(a, b)] if *a == max && *b == max)
}

const PLACEHOLDER: &[u8] = b"4294967295:4294967295";

/// The sequence sets a command holds, in the order they are written: the set of
/// FETCH, STORE, COPY, MOVE and UID EXPUNGE, and the sequence-set and UID keys of
/// SEARCH, SORT and THREAD (depth first, left to right, as written).
pub fn sequence_sets<'c>(body: &'c CommandBody<'_>) -> Vec<&'c SequenceSet> {
    let mut sets = Vec::new();
    match body {
        CommandBody::Fetch { sequence_set, .. }
        | CommandBody::Store { sequence_set, .. }
        | CommandBody::Copy { sequence_set, .. }
        | CommandBody::Move { sequence_set, .. }
        | CommandBody::ExpungeUid { sequence_set } => sets.push(sequence_set),
        CommandBody::Search { criteria, .. } => key_sets(criteria.as_ref(), &mut sets),
        CommandBody::Sort {
            search_criteria, ..
        }
        | CommandBody::Thread {
            search_criteria, ..
        } => key_sets(search_criteria.as_ref(), &mut sets),
        _ => {}
    }
    sets
}

fn key_sets<'c>(keys: &'c [SearchKey<'_>], sets: &mut Vec<&'c SequenceSet>) {
    // imap-codec nests keys at most 9 deep: recursion is bounded.
    for key in keys {
        match key {
            SearchKey::SequenceSet(set) | SearchKey::Uid(set) => sets.push(set),
            SearchKey::And(keys) => key_sets(keys.as_ref(), sets),
            SearchKey::Or(a, b) => {
                key_sets(std::slice::from_ref(a), sets);
                key_sets(std::slice::from_ref(b), sets);
            }
            SearchKey::Not(key) => key_sets(std::slice::from_ref(key), sets),
            _ => {}
        }
    }
}

/// The message as imap-codec is to see it, and what was taken out.
#[derive(Debug)]
struct Rewritten<'a> {
    bytes: Cow<'a, [u8]>,
    search_return: Option<ReturnOptions>,
    /// Which of the command's sequence sets (see [`sequence_sets`]) are `$`.
    saved: Vec<usize>,
}

/// `None`: the extension syntax is wrong (an unknown RETURN option, an unclosed
/// list), so the command is refused.
fn rewrite(message: &[u8]) -> Option<Rewritten<'_>> {
    let mut tokens = Tokens::new(message);
    let mut edits = Edits::default();
    let mut search_return = None;
    let (Some(_tag), Some(Token::Atom(mut name))) = (tokens.next(), tokens.next()) else {
        return Some(edits.apply(message, None));
    };
    let uid = name.eq_ignore_ascii_case(b"UID");
    if uid {
        match tokens.next() {
            Some(Token::Atom(word)) => name = word,
            _ => return Some(edits.apply(message, None)),
        }
    }
    match name.to_ascii_uppercase().as_slice() {
        b"FETCH" | b"STORE" | b"COPY" | b"MOVE" => set_argument(&mut tokens, &mut edits),
        b"EXPUNGE" if uid => set_argument(&mut tokens, &mut edits),
        b"SEARCH" => {
            let before = tokens.at;
            if let Some(Token::Atom(word)) = tokens.peek()
                && word.eq_ignore_ascii_case(b"RETURN")
            {
                tokens.next();
                search_return = Some(return_options(&mut tokens)?);
                // ` RETURN (...)` goes: imap-codec sees a plain SEARCH.
                edits.push(before, tokens.at, b"");
            }
            search_keys(&mut tokens, &mut edits);
        }
        // `(criteria) charset`, then the keys.
        b"SORT" if tokens.next() == Some(Token::Open) => {
            while !matches!(tokens.next(), Some(Token::Close) | None) {}
            tokens.next();
            search_keys(&mut tokens, &mut edits);
        }
        b"THREAD" => {
            // `algorithm charset`, then the keys.
            tokens.next();
            tokens.next();
            search_keys(&mut tokens, &mut edits);
        }
        _ => {}
    }
    Some(edits.apply(message, search_return))
}

/// `RETURN (...)`'s list, after RETURN: each option known, the list closed.
fn return_options(tokens: &mut Tokens<'_>) -> Option<ReturnOptions> {
    if tokens.next()? != Token::Open {
        return None;
    }
    let mut options = ReturnOptions::default();
    loop {
        match tokens.next()? {
            Token::Close => return Some(options),
            Token::Atom(name) if options.add(name) => {}
            _ => return None,
        }
    }
}

/// The sequence set FETCH, STORE, COPY, MOVE and UID EXPUNGE start with.
fn set_argument(tokens: &mut Tokens<'_>, edits: &mut Edits) {
    if let Some(Token::Atom(set)) = tokens.next() {
        edits.sequence_set(tokens.last, set);
    }
}

/// SEARCH keys (RFC 3501 §6.4.4, RFC 7162's MODSEQ), after whatever comes before
/// them: which tokens are sequence-set keys (and UID's set), counted in order.
fn search_keys(tokens: &mut Tokens<'_>, edits: &mut Edits) {
    // Tokens still to pass over as arguments of the key before.
    let mut arguments = 0;
    let mut uid_set = false;
    let mut modseq = false;
    while let Some(token) = tokens.next() {
        if modseq {
            // MODSEQ ["/flags/..." entry-type] value: two more after a quoted name.
            modseq = false;
            arguments = if matches!(token, Token::Quoted) { 2 } else { 0 };
            continue;
        }
        if arguments > 0 {
            arguments -= 1;
            continue;
        }
        let Token::Atom(word) = token else { continue };
        if uid_set {
            uid_set = false;
            edits.sequence_set(tokens.last, word);
            continue;
        }
        if word == b"$" || word[0].is_ascii_digit() || word[0] == b'*' {
            edits.sequence_set(tokens.last, word);
            continue;
        }
        match word.to_ascii_uppercase().as_slice() {
            b"UID" => uid_set = true,
            b"MODSEQ" => modseq = true,
            b"HEADER" => arguments = 2,
            b"BCC" | b"BEFORE" | b"BODY" | b"CC" | b"CHARSET" | b"FROM" | b"KEYWORD"
            | b"LARGER" | b"ON" | b"OLDER" | b"SENTBEFORE" | b"SENTON" | b"SENTSINCE"
            | b"SINCE" | b"SMALLER" | b"SUBJECT" | b"TEXT" | b"TO" | b"UNKEYWORD" | b"YOUNGER" => {
                arguments = 1
            }
            _ => {}
        }
    }
}

/// Replacements to make in the message, in order, and the sequence sets seen.
#[derive(Debug, Default)]
struct Edits {
    /// `(start, end, replacement)`, ascending and apart.
    replace: Vec<(usize, usize, &'static [u8])>,
    /// Sequence sets seen so far.
    sets: usize,
    /// Which of them were `$`.
    saved: Vec<usize>,
}

impl Edits {
    fn push(&mut self, start: usize, end: usize, with: &'static [u8]) {
        self.replace.push((start, end, with));
    }

    /// A token in the place of a sequence set, at `start`: `$` becomes the
    /// placeholder, the placeholder's own spellings its one-number form.
    fn sequence_set(&mut self, start: usize, set: &[u8]) {
        if set == b"$" {
            self.saved.push(self.sets);
            self.push(start, start + 1, PLACEHOLDER);
        } else if spells_placeholder(set) {
            self.push(start, start + set.len(), b"4294967295");
        }
        self.sets += 1;
    }

    fn apply(self, message: &[u8], search_return: Option<ReturnOptions>) -> Rewritten<'_> {
        let bytes = if self.replace.is_empty() {
            Cow::Borrowed(message)
        } else {
            let mut bytes = Vec::with_capacity(message.len() + 32 * self.replace.len());
            let mut from = 0;
            for (start, end, with) in self.replace {
                bytes.extend_from_slice(&message[from..start]);
                bytes.extend_from_slice(with);
                from = end;
            }
            bytes.extend_from_slice(&message[from..]);
            Cow::Owned(bytes)
        };
        Rewritten {
            bytes,
            search_return,
            saved: self.saved,
        }
    }
}

/// Whether a token reads as the placeholder set: `N:N` with both numbers 4294967295
/// (imap-codec takes leading zeros).
fn spells_placeholder(set: &[u8]) -> bool {
    let max = |digits: &[u8]| {
        !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<u32>().ok())
                == Some(u32::MAX)
    };
    match set.iter().position(|&b| b == b':') {
        Some(colon) => max(&set[..colon]) && max(&set[colon + 1..]),
        None => false,
    }
}

/// A token of a command line, as far as this module needs to tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    /// A run of bytes up to a space, a parenthesis or the line end: an atom, a
    /// number, a sequence set, a date.
    Atom(&'a [u8]),
    Quoted,
    Literal,
}

struct Tokens<'a> {
    bytes: &'a [u8],
    /// Where the next token is looked for.
    at: usize,
    /// Where the token returned last started.
    last: usize,
}

impl<'a> Tokens<'a> {
    fn new(bytes: &'a [u8]) -> Tokens<'a> {
        Tokens {
            bytes,
            at: 0,
            last: 0,
        }
    }

    fn peek(&self) -> Option<Token<'a>> {
        let mut copy = Tokens { ..*self };
        copy.next()
    }

    /// The next token; `None` at the end of the line (or of the message).
    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.bytes;
        while bytes.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
        let start = self.at;
        self.last = start;
        let token = match *bytes.get(start)? {
            b'\r' | b'\n' => return None,
            b'(' => {
                self.at += 1;
                Token::Open
            }
            b')' => {
                self.at += 1;
                Token::Close
            }
            b'"' => {
                self.at = quoted_end(bytes, start + 1)?;
                Token::Quoted
            }
            b'{' => match literal_end(bytes, start) {
                Some(end) => {
                    self.at = end;
                    Token::Literal
                }
                None => self.atom(),
            },
            _ => self.atom(),
        };
        Some(token)
    }

    fn atom(&mut self) -> Token<'a> {
        let start = self.at;
        let len = self.bytes[start..]
            .iter()
            .position(|b| matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'))
            .unwrap_or(self.bytes.len() - start);
        self.at = start + len;
        Token::Atom(&self.bytes[start..start + len])
    }
}

/// Just after the closing quote of a quoted string whose content starts at `from`;
/// `None` when it does not close on this line.
fn quoted_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        match *bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
}

/// Just after the literal announced at `start` (`{N}` or `{N+}`, CRLF, N bytes);
/// `None` when that is not what is there.
fn literal_end(bytes: &[u8], start: usize) -> Option<usize> {
    let close = start + bytes[start..].iter().position(|&b| b == b'}')?;
    let inside = &bytes[start + 1..close];
    let digits = inside.strip_suffix(b"+").unwrap_or(inside);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let data = match bytes.get(close + 1..close + 3)? {
        b"\r\n" => close + 3,
        _ => return None,
    };
    let end = data.checked_add(length)?;
    (end <= bytes.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message as imap-codec gets it, the RETURN options and the `$` positions.
    fn rewritten(message: &str) -> (String, Option<ReturnOptions>, Vec<usize>) {
        let r = rewrite(message.as_bytes()).expect("well formed");
        (
            String::from_utf8(r.bytes.into_owned()).unwrap(),
            r.search_return,
            r.saved,
        )
    }

    fn options(names: &[&str]) -> Option<ReturnOptions> {
        let mut o = ReturnOptions::default();
        for name in names {
            assert!(o.add(name.as_bytes()));
        }
        Some(o)
    }

    #[test]
    fn search_return_is_cut_out_and_its_options_kept() {
        // RFC 4731 §3.1's examples, and RFC 5182's SAVE.
        assert_eq!(
            rewritten(
                "A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n"
            ),
            (
                "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n".into(),
                options(&["MIN", "COUNT"]),
                vec![]
            )
        );
        assert_eq!(
            rewritten("A283 SEARCH RETURN () FLAGGED\r\n"),
            ("A283 SEARCH FLAGGED\r\n".into(), options(&[]), vec![])
        );
        assert_eq!(
            rewritten("A285 uid search return (min MAX) 1:5000\r\n"),
            (
                "A285 uid search 1:5000\r\n".into(),
                options(&["MIN", "MAX"]),
                vec![]
            )
        );
        assert_eq!(
            rewritten("a SEARCH RETURN (SAVE) CHARSET UTF-8 ALL\r\n"),
            (
                "a SEARCH CHARSET UTF-8 ALL\r\n".into(),
                options(&["SAVE"]),
                vec![]
            )
        );
        assert_eq!(
            rewritten("a SEARCH RETURN (SAVE) $\r\n"),
            (
                "a SEARCH 4294967295:4294967295\r\n".into(),
                options(&["SAVE"]),
                vec![0]
            )
        );
        // RETURN is only SEARCH's.
        assert_eq!(
            rewritten("a FETCH 1 RETURN\r\n"),
            ("a FETCH 1 RETURN\r\n".into(), None, vec![])
        );
    }

    #[test]
    fn dollar_is_found_where_a_sequence_set_stands() {
        let p = "4294967295:4294967295";
        for (command, expected, saved) in [
            (
                "a FETCH $ (FLAGS)\r\n",
                format!("a FETCH {p} (FLAGS)\r\n"),
                vec![0],
            ),
            (
                "a UID FETCH $ UID\r\n",
                format!("a UID FETCH {p} UID\r\n"),
                vec![0],
            ),
            (
                "a STORE $ +FLAGS (\\Seen)\r\n",
                format!("a STORE {p} +FLAGS (\\Seen)\r\n"),
                vec![0],
            ),
            (
                "a COPY $ Archive\r\n",
                format!("a COPY {p} Archive\r\n"),
                vec![0],
            ),
            (
                "a UID MOVE $ Archive\r\n",
                format!("a UID MOVE {p} Archive\r\n"),
                vec![0],
            ),
            (
                "a UID EXPUNGE $\r\n",
                format!("a UID EXPUNGE {p}\r\n"),
                vec![0],
            ),
            ("a SEARCH $\r\n", format!("a SEARCH {p}\r\n"), vec![0]),
            (
                "a SEARCH UID $ 1:3\r\n",
                format!("a SEARCH UID {p} 1:3\r\n"),
                vec![0],
            ),
            (
                "a SEARCH 1:3 OR $ (UID $)\r\n",
                format!("a SEARCH 1:3 OR {p} (UID {p})\r\n"),
                vec![1, 2],
            ),
            // Arguments of keys are not sets, even when they look like one.
            (
                "a SEARCH SUBJECT $ FROM 1:3 $\r\n",
                format!("a SEARCH SUBJECT $ FROM 1:3 {p}\r\n"),
                vec![0],
            ),
            (
                "a SEARCH HEADER X-A $ $\r\n",
                format!("a SEARCH HEADER X-A $ {p}\r\n"),
                vec![0],
            ),
            (
                "a SEARCH MODSEQ \"/flags/\\\\draft\" all 5 $\r\n",
                format!("a SEARCH MODSEQ \"/flags/\\\\draft\" all 5 {p}\r\n"),
                vec![0],
            ),
            (
                "a SEARCH MODSEQ 5 $\r\n",
                format!("a SEARCH MODSEQ 5 {p}\r\n"),
                vec![0],
            ),
            (
                "a SEARCH SUBJECT {1+}\r\n$ $\r\n",
                format!("a SEARCH SUBJECT {{1+}}\r\n$ {p}\r\n"),
                vec![0],
            ),
            (
                "a SEARCH SUBJECT \"a $ b\" NOT $\r\n",
                format!("a SEARCH SUBJECT \"a $ b\" NOT {p}\r\n"),
                vec![0],
            ),
            (
                "a SORT (SUBJECT) UTF-8 $\r\n",
                format!("a SORT (SUBJECT) UTF-8 {p}\r\n"),
                vec![0],
            ),
            (
                "a UID SORT (REVERSE DATE FROM) UTF-8 UNSEEN $\r\n",
                format!("a UID SORT (REVERSE DATE FROM) UTF-8 UNSEEN {p}\r\n"),
                vec![0],
            ),
            (
                "a THREAD REFERENCES UTF-8 UID $\r\n",
                format!("a THREAD REFERENCES UTF-8 UID {p}\r\n"),
                vec![0],
            ),
        ] {
            assert_eq!(rewritten(command), (expected, None, saved), "{command:?}");
        }
    }

    #[test]
    fn other_commands_pass_through_without_a_copy() {
        for command in [
            &b"a LOGIN $ $\r\n"[..],
            b"a SELECT $\r\n",
            b"a APPEND INBOX {3+}\r\n$ $\r\n",
            b"a FETCH 1:* (FLAGS)\r\n",
            b"a SEARCH SUBJECT $\r\n",
            b"a NOOP\r\n",
            b"",
            b"\r\n",
            b"a\r\n",
        ] {
            let r = rewrite(command).unwrap();
            assert!(matches!(r.bytes, Cow::Borrowed(_)), "{command:?}");
            assert!(r.search_return.is_none() && r.saved.is_empty());
        }
    }

    #[test]
    fn decoding_gives_the_command_with_placeholders_only_for_dollar() {
        let decoded = |message: &[u8]| match decode(message).unwrap() {
            Request::Command(command) => (command, None),
            Request::Search { command, returns } => (command, Some(returns)),
            Request::List(list) => panic!("{list:?}"),
        };
        let (command, search_return) =
            decoded(b"a UID SEARCH RETURN (ALL) OR $ 4294967295:4294967295\r\n");
        assert_eq!(search_return, options(&["ALL"]));
        let sets = sequence_sets(&command.body);
        assert_eq!(sets.len(), 2);
        assert!(is_saved(sets[0]) && !is_saved(sets[1]));
        let (command, _) = decoded(b"a FETCH 04294967295:4294967295 FLAGS\r\n");
        assert!(!is_saved(sequence_sets(&command.body)[0]));
        let (command, search_return) = decoded(b"a FETCH $ FLAGS\r\n");
        assert!(is_saved(sequence_sets(&command.body)[0]));
        assert_eq!(search_return, None);
        // Plain commands are imap-codec's alone.
        let (command, _) = decoded(b"a SEARCH CHARSET UTF-8 1:3 SUBJECT x\r\n");
        assert!(matches!(command.body, CommandBody::Search { .. }));
    }

    #[test]
    fn malformed_extensions_are_refused() {
        for command in [
            &b"a SEARCH RETURN (PARTIAL 1:5) ALL\r\n"[..],
            b"a SEARCH RETURN (MIN ALL\r\n",
            b"a SEARCH RETURN MIN ALL\r\n",
            b"a SEARCH RETURN (MIN (MAX)) ALL\r\n",
            b"a SEARCH RETURN (\"MIN\") ALL\r\n",
            b"a SEARCH RETURN\r\n",
            // `$` is a whole set or nothing (RFC 5182 §3).
            b"a FETCH 1,$ FLAGS\r\n",
            b"a FETCH $:3 FLAGS\r\n",
            b"a SEARCH 1,$\r\n",
            b"a SEARCH UID $,1\r\n",
            // A RETURN and nothing to search for.
            b"a SEARCH RETURN () \r\n",
            b"a SEARCH $ $$\r\n",
        ] {
            assert_eq!(
                decode(command),
                None,
                "{}",
                String::from_utf8_lossy(command)
            );
        }
    }

    #[test]
    fn hostile_input_neither_panics_nor_takes_long() {
        let mut cases: Vec<Vec<u8>> = vec![
            b"a SEARCH \"unterminated\r\n".to_vec(),
            b"a SEARCH SUBJECT \"a\\\r\n".to_vec(),
            b"a SEARCH SUBJECT {999999999999999999999}\r\nx\r\n".to_vec(),
            b"a SEARCH SUBJECT {5}\r\nab".to_vec(),
            b"a SEARCH SUBJECT {2}\rxx".to_vec(),
            b"a SEARCH {".to_vec(),
            b"a UID".to_vec(),
            b"a SORT (SUBJECT".to_vec(),
            b"a THREAD\r\n".to_vec(),
            b"a SEARCH RETURN (".to_vec(),
            b"a SEARCH RETURN (MIN".to_vec(),
            b"\xff\xfe SEARCH \xff $ \x00\r\n".to_vec(),
            b"a SEARCH MODSEQ".to_vec(),
            b"a SEARCH HEADER".to_vec(),
            b"a SEARCH UID".to_vec(),
            b"a SEARCH ))))(((($\r\n".to_vec(),
        ];
        // Deep parentheses and very many `$`.
        let mut deep = b"a SEARCH ".to_vec();
        deep.extend(std::iter::repeat_n(b'(', 100_000));
        deep.extend_from_slice(b"$");
        deep.extend(std::iter::repeat_n(b')', 100_000));
        deep.extend_from_slice(b"\r\n");
        cases.push(deep);
        let mut many = b"a SEARCH".to_vec();
        for _ in 0..50_000 {
            many.extend_from_slice(b" $");
        }
        many.extend_from_slice(b"\r\n");
        cases.push(many.clone());
        let mut returns = b"a SEARCH RETURN (".to_vec();
        for _ in 0..50_000 {
            returns.extend_from_slice(b"MIN ");
        }
        returns.extend_from_slice(b") ALL\r\n");
        cases.push(returns);
        let started = std::time::Instant::now();
        for case in &cases {
            let _ = decode(case);
            for end in 0..case.len().min(64) {
                let _ = rewrite(&case[..end]);
                let _ = decode(&case[..end]);
            }
        }
        // Every `$` is rewritten, in one pass.
        let r = rewrite(&many).unwrap();
        assert_eq!(r.saved.len(), 50_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
