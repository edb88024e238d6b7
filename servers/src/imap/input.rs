//! The client's bytes into IMAP messages (RFC 3501 §2.2, §4.3). The stream is split into
//! lines and literals here, before any parsing, so every limit applies to bytes as they
//! arrive, and a literal's bytes are never read as commands.
//!
//! - Before login only small messages are taken ([`Limits::BEFORE_LOGIN`]): anyone may
//!   connect, and 20 connections announcing 48 MiB literals held 1 GB. A line or a
//!   non-synchronizing literal over the limit ends the connection; a synchronizing
//!   literal over it is refused before the client sends it (RFC 7888 §4 lets a server
//!   limit literals, with `TOOBIG`).
//! - After login ([`Limits::AFTER_LOGIN`]) lines and the part of a message kept in memory
//!   stay small too; the big literals of an APPEND go to a spool file (in the user's
//!   Maildir `tmp/`, unnamed; one file for all the messages of a MULTIAPPEND), so a
//!   message being uploaded costs no memory however slowly it comes. An APPEND has at
//!   most [`upload::MAX_MESSAGES`] messages and [`upload::MAX_TOTAL`] bytes of them. A
//!   message over a limit is read to its end without being kept and refused with a
//!   tagged BAD (or NO), so the connection stays in step.
//! - Literals are `{N}`, `{N+}` (RFC 7888) and, for APPEND, `~{N}` (RFC 3516's literal8,
//!   which may hold NUL): all framed alike, under the same limits.
//!
//! A complete command goes to imap-codec after [`preparse`] took out what imap-codec
//! does not read (`SEARCH RETURN (...)`, `$`); one imap-codec refuses may still be an
//! extended LIST (RFC 5258), which `preparse` has `list` read.
//!
//! Sans-I/O but for the spool file: bytes in ([`Input::push`]), [`Step`]s out
//! ([`Input::next_step`]). Which message the connection waits for (a command, AUTHENTICATE
//! data, IDLE's DONE) is the server's to say ([`Input::expect`]).

use std::path::PathBuf;
use std::time::Instant;

use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, Status, StatusKind};
use imap_codec::{AuthenticateDataCodec, IdleDoneCodec};

use super::preparse::{self, Request};
use super::response::{NoCode, bye_status, status};
use super::upload::{self, Append, MAX_LITERAL, Spool};

const KIB: usize = 1024;

/// What one message may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, its line end included.
    pub line: usize,
    /// Largest literal kept in memory.
    pub literal: usize,
    /// Most bytes of one message kept in memory: lines and literals together.
    pub message: usize,
    /// Largest APPEND literal taken into a spool file; 0: none is.
    pub spooled: u32,
    /// Whether breaking a limit ends the connection (else the message is refused).
    pub close: bool,
}

impl Limits {
    /// Enough for LOGIN, AUTHENTICATE PLAIN, CAPABILITY, ID, STARTTLS.
    pub const BEFORE_LOGIN: Limits = Limits {
        line: 8 * KIB,
        literal: 8 * KIB,
        message: 16 * KIB,
        spooled: 0,
        close: true,
    };

    /// 64 KiB lines as Dovecot allows (long UID sets); APPEND up to APPENDLIMIT.
    pub const AFTER_LOGIN: Limits = Limits {
        line: 64 * KIB,
        literal: 64 * KIB,
        message: 256 * KIB,
        spooled: MAX_LITERAL,
        close: false,
    };
}

/// The message the connection waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Command,
    /// A line answering AUTHENTICATE's challenge (RFC 3501 §6.2.2).
    AuthenticateData,
    /// IDLE's `DONE` (RFC 2177).
    IdleDone,
}

/// What the server has to act on.
#[derive(Debug)]
pub enum Step {
    /// A synchronizing literal the client may now send: answer `+`.
    GoAhead,
    Received(Received),
    Refused(Refusal),
}

#[derive(Debug)]
pub enum Received {
    /// A command (with what imap-codec does not parse, see [`preparse`]).
    Command(Request),
    /// An APPEND, with one message or several (MULTIAPPEND), big ones spooled.
    Append(Append),
    AuthenticateData(AuthenticateData<'static>),
    IdleDone,
}

/// A message refused whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The message's tag, when it began with one.
    pub tag: Option<Tag<'static>>,
    pub why: Why,
    /// The connection ends after the answer.
    pub close: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    LineTooLong,
    LiteralTooBig,
    /// Lines and literals together are over the limit.
    MessageTooBig,
    /// An APPEND with more messages or bytes than one command may carry.
    AppendTooBig,
    /// Not a message of the kind expected (or not IMAP at all).
    Malformed,
    /// The spool file could not be written.
    SpoolFailed,
}

impl Refusal {
    /// The answer: a tagged BAD (or NO) when the tag is known, else untagged; `* BYE`
    /// when the connection ends.
    pub fn status(&self) -> Status<'static> {
        let (kind, code, words) = match self.why {
            Why::LineTooLong => (StatusKind::Bad, None, "line too long"),
            Why::LiteralTooBig => (StatusKind::No, Some(too_big()), "literal too big"),
            Why::MessageTooBig => (StatusKind::Bad, Some(too_big()), "command too big"),
            Why::AppendTooBig => (
                StatusKind::No,
                Some(too_big()),
                "too much for one APPEND (at most 1000 messages, 100 MiB)",
            ),
            Why::Malformed => (StatusKind::Bad, None, "could not parse that command"),
            Why::SpoolFailed => (
                StatusKind::No,
                Some(NoCode::Unavailable.code()),
                "cannot take the message now; try again later",
            ),
        };
        if self.close {
            return bye_status(code, format!("{words}; closing"));
        }
        status(self.tag.clone(), kind, code, words)
    }
}

/// RFC 4469's code for "too big", which RFC 7888 §4 and RFC 7889 use for literals.
fn too_big() -> Code<'static> {
    Code::Other(imap_codec::imap_types::response::CodeOther::unvalidated(
        &b"TOOBIG"[..],
    ))
}

/// Where a literal's bytes go.
#[derive(Debug)]
enum Sink {
    Memory,
    Spool,
    Discard,
}

#[derive(Debug)]
enum Fragment {
    Line,
    Literal { remaining: u32, sink: Sink },
}

/// The message being read.
#[derive(Debug, Default)]
struct Message {
    /// Lines and in-memory literals as they came (not kept once the message broke a
    /// limit).
    bytes: Vec<u8>,
    /// When its first byte arrived.
    started: Option<Instant>,
    tag: Option<Tag<'static>>,
    /// Its first line is an APPEND: a big literal is a message to append.
    append: bool,
    lines: usize,
    /// An APPEND's literals: how many, and where each ends in `bytes`.
    literal_ends: Vec<usize>,
    /// Bytes of an APPEND's literals announced so far.
    appended: u64,
    spool: Option<Spool>,
    /// The limit it broke: it is read to its end and refused.
    broken: Option<Why>,
}

pub struct Input {
    limits: Limits,
    expect: Expect,
    /// Where spool files go (once logged in).
    spool_dir: Option<PathBuf>,
    /// Bytes read and not yet framed, from `consumed` on.
    unread: Vec<u8>,
    consumed: usize,
    /// When the last bytes arrived.
    arrived: Option<Instant>,
    /// The line being read; only its last bytes once it is over the limit.
    line: Vec<u8>,
    line_length: usize,
    fragment: Fragment,
    message: Message,
}

/// Bytes of an over-long line kept to find a literal announcement at its end.
const LINE_TAIL: usize = 32;

impl Input {
    pub fn new() -> Input {
        Input {
            limits: Limits::BEFORE_LOGIN,
            expect: Expect::Command,
            spool_dir: None,
            unread: Vec::new(),
            consumed: 0,
            arrived: None,
            line: Vec::new(),
            line_length: 0,
            fragment: Fragment::Line,
            message: Message::default(),
        }
    }

    /// The user logged in: the limits of [`Limits::AFTER_LOGIN`], with APPEND literals
    /// spooled in `spool_dir`.
    pub fn logged_in(&mut self, spool_dir: PathBuf) {
        self.limits = Limits::AFTER_LOGIN;
        self.spool_dir = Some(spool_dir);
    }

    pub fn expect(&mut self, expect: Expect) {
        self.expect = expect;
    }

    pub fn push(&mut self, bytes: &[u8], now: Instant) {
        if self.consumed == self.unread.len() {
            self.unread.clear();
            self.consumed = 0;
        }
        self.unread.extend_from_slice(bytes);
        self.arrived = Some(now);
    }

    /// Whether bytes wait that no step took yet (sent ahead of an answer).
    pub fn has_unread(&self) -> bool {
        self.consumed < self.unread.len()
    }

    /// When the first byte of the message being read arrived; `None` between messages.
    pub fn started(&self) -> Option<Instant> {
        self.message.started
    }

    /// The next thing to act on; `None` when more bytes are needed.
    pub fn next_step(&mut self) -> Option<Step> {
        while self.consumed < self.unread.len() {
            if self.message.started.is_none() {
                self.message.started = self.arrived;
            }
            let step = match self.fragment {
                Fragment::Line => self.read_line(),
                Fragment::Literal { .. } => self.read_literal(),
            };
            if step.is_some() {
                return step;
            }
        }
        None
    }

    fn read_line(&mut self) -> Option<Step> {
        let rest = &self.unread[self.consumed..];
        let (chunk, ended) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..=at], true),
            None => (rest, false),
        };
        self.consumed += chunk.len();
        let was = self.line_length;
        self.line_length += chunk.len();
        self.line.extend_from_slice(chunk);
        if self.line_length > self.limits.line {
            let just_now = was <= self.limits.line;
            if just_now && self.message.lines == 0 && self.expect == Expect::Command {
                self.message.tag = tag_of(&self.line);
            }
            if self.limits.close {
                return Some(self.refuse(Why::LineTooLong, true));
            }
            self.break_message(Why::LineTooLong);
            let keep = self.line.len().saturating_sub(LINE_TAIL);
            self.line.drain(..keep);
        }
        if ended { self.end_of_line() } else { None }
    }

    fn end_of_line(&mut self) -> Option<Step> {
        let line = std::mem::take(&mut self.line);
        let too_long = self.line_length > self.limits.line;
        self.line_length = 0;
        if self.message.lines == 0 && self.expect == Expect::Command {
            if !too_long {
                self.message.tag = tag_of(&line);
            }
            self.message.append = is_append(&line);
        }
        self.message.lines += 1;
        match announcement(&line) {
            None => {
                self.keep(&line);
                Some(self.finish())
            }
            Some(announced) => self.literal_announced(line, announced),
        }
    }

    /// A line ending in `{N}`, `{N+}` or `~{N}`: where its literal goes, or why it may
    /// not come.
    fn literal_announced(&mut self, line: Vec<u8>, announced: Announcement) -> Option<Step> {
        let Announcement { at, length, sync } = announced;
        let unbounded = |limit: usize| length.is_none_or(|n| n as usize > limit);
        // An APPEND's literals, all its messages together (the mailbox name may be one);
        // once the message is broken nothing more is kept of it.
        let append = self.message.append && self.message.broken.is_none();
        if append {
            self.message.appended += u64::from(length.unwrap_or(u32::MAX));
            self.message.literal_ends.push(0);
        }
        let too_much = append
            && (self.message.literal_ends.len() > upload::MAX_MESSAGES + 1
                || self.message.appended > upload::MAX_TOTAL);
        let appending = append && self.limits.spooled > 0;
        let (sink, why) = if self.message.broken.is_some() {
            (Sink::Discard, None)
        } else if appending && unbounded(self.limits.spooled as usize) {
            (Sink::Discard, Some(Why::LiteralTooBig))
        } else if too_much {
            (Sink::Discard, Some(Why::AppendTooBig))
        } else if appending && unbounded(self.limits.literal) {
            match self.open_spool() {
                Ok(()) => (Sink::Spool, None),
                Err(_) => (Sink::Discard, Some(Why::SpoolFailed)),
            }
        } else if unbounded(self.limits.literal) {
            (Sink::Discard, Some(Why::LiteralTooBig))
        } else if self.message.bytes.len() + line.len() + length.unwrap_or_default() as usize
            > self.limits.message
        {
            (Sink::Discard, Some(Why::MessageTooBig))
        } else {
            (Sink::Memory, None)
        };
        if let Some(why) = why {
            // A synchronizing literal is never sent unless the client hears `+`: the
            // message ends here. Otherwise its bytes are on their way.
            if sync {
                return Some(self.refuse(why, false));
            }
            if self.limits.close || length.is_none() {
                return Some(self.refuse(why, true));
            }
            self.break_message(why);
        } else if sync && self.message.broken.is_some() {
            let why = self.message.broken.unwrap_or(Why::Malformed);
            return Some(self.refuse(why, false));
        }
        match sink {
            // The command holds an empty literal where the spooled one was.
            Sink::Spool => {
                self.keep(&line[..at]);
                self.keep(b"{0}\r\n");
            }
            _ => self.keep(&line),
        }
        // Where the literal ends in the command's bytes.
        let end = match sink {
            Sink::Memory => self.message.bytes.len() + length.unwrap_or_default() as usize,
            Sink::Spool | Sink::Discard => self.message.bytes.len(),
        };
        if let Some(last) = self.message.literal_ends.last_mut() {
            *last = end;
        }
        if let (Sink::Spool, Some(spool)) = (&sink, &mut self.message.spool) {
            spool.begin(end, length.unwrap_or_default());
        }
        self.fragment = Fragment::Literal {
            remaining: length.unwrap_or_default(),
            sink,
        };
        sync.then_some(Step::GoAhead)
    }

    fn read_literal(&mut self) -> Option<Step> {
        let Fragment::Literal { remaining, sink } = &mut self.fragment else {
            return None;
        };
        let available = self.unread.len() - self.consumed;
        let n = available.min(*remaining as usize);
        let bytes = &self.unread[self.consumed..self.consumed + n];
        match sink {
            Sink::Memory => self.message.bytes.extend_from_slice(bytes),
            Sink::Spool => {
                let written = match &mut self.message.spool {
                    Some(spool) => spool.write(bytes).is_ok(),
                    None => false,
                };
                if !written {
                    *sink = Sink::Discard;
                    self.message.spool = None;
                    self.message.broken.get_or_insert(Why::SpoolFailed);
                }
            }
            Sink::Discard => {}
        }
        self.consumed += n;
        *remaining -= n as u32;
        if *remaining == 0 {
            self.fragment = Fragment::Line;
        }
        None
    }

    /// The command's spool file, opened for its first big literal.
    fn open_spool(&mut self) -> std::io::Result<()> {
        if self.message.spool.is_none() {
            let dir = self
                .spool_dir
                .as_ref()
                .ok_or(std::io::ErrorKind::NotFound)?;
            self.message.spool = Some(Spool::open(dir)?);
        }
        Ok(())
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.message.broken.is_none() {
            self.message.bytes.extend_from_slice(bytes);
        }
    }

    /// From now on the message is only read to its end, then refused.
    fn break_message(&mut self, why: Why) {
        self.message.broken.get_or_insert(why);
        self.message.bytes = Vec::new();
        self.message.spool = None;
        self.message.literal_ends = Vec::new();
    }

    /// Refuses the message now; the next byte starts a new one.
    fn refuse(&mut self, why: Why, close: bool) -> Step {
        let message = std::mem::take(&mut self.message);
        self.line.clear();
        self.line_length = 0;
        self.fragment = Fragment::Line;
        Step::Refused(Refusal {
            tag: message.tag,
            why,
            close,
        })
    }

    /// The message is complete: decoded as what the connection expects.
    fn finish(&mut self) -> Step {
        let message = std::mem::take(&mut self.message);
        let refused = |why| {
            Step::Refused(Refusal {
                tag: message.tag.clone(),
                why,
                close: false,
            })
        };
        if let Some(why) = message.broken {
            return refused(why);
        }
        let bytes = &message.bytes[..];
        let received = match self.expect {
            Expect::Command if message.append => {
                match upload::parse(bytes, &message.literal_ends, message.spool) {
                    Some(append) if append.messages.len() > upload::MAX_MESSAGES => {
                        return refused(Why::AppendTooBig);
                    }
                    Some(append) => Received::Append(append),
                    None => return refused(Why::Malformed),
                }
            }
            Expect::Command => match preparse::decode(bytes) {
                Some(request) => Received::Command(request),
                None => return refused(Why::Malformed),
            },
            Expect::AuthenticateData => match AuthenticateDataCodec::default().decode_static(bytes)
            {
                Ok((&[], data)) => Received::AuthenticateData(data),
                _ => return refused(Why::Malformed),
            },
            Expect::IdleDone => match IdleDoneCodec::default().decode_static(bytes) {
                Ok((&[], _)) => Received::IdleDone,
                _ => return refused(Why::Malformed),
            },
        };
        Step::Received(received)
    }
}

impl Default for Input {
    fn default() -> Input {
        Input::new()
    }
}

/// A literal a line announces at its end (RFC 3501 `literal`, RFC 7888's `{N+}`).
#[derive(Debug, PartialEq, Eq)]
struct Announcement {
    /// Where `{` is in the line.
    at: usize,
    /// `None`: more than fits in 32 bits.
    length: Option<u32>,
    sync: bool,
}

fn announcement(line: &[u8]) -> Option<Announcement> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inside = line.strip_suffix(b"}")?;
    let (digits, sync) = match inside.strip_suffix(b"+") {
        Some(digits) => (digits, false),
        None => (inside, true),
    };
    let count = digits
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let at = digits.len().checked_sub(count + 1)?;
    if count == 0 || digits[at] != b'{' {
        return None;
    }
    let length = std::str::from_utf8(&digits[at + 1..])
        .ok()
        .and_then(|d| d.parse().ok());
    Some(Announcement { at, length, sync })
}

/// The tag a line begins with, if it is one.
fn tag_of(line: &[u8]) -> Option<Tag<'static>> {
    let word = line.split(|&b| b == b' ').next()?;
    Tag::try_from(word.to_vec()).ok()
}

/// Whether a command line is an APPEND (`tag APPEND ...`).
fn is_append(line: &[u8]) -> bool {
    line.split(|&b| b == b' ')
        .nth(1)
        .is_some_and(|word| word.eq_ignore_ascii_case(b"APPEND"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::testing::encode_status;

    fn input() -> Input {
        Input::new()
    }

    /// Every step for these bytes, then `None`.
    fn steps(input: &mut Input, bytes: &[u8]) -> Vec<Step> {
        input.push(bytes, Instant::now());
        std::iter::from_fn(|| input.next_step()).collect()
    }

    fn command(step: &Step) -> String {
        match step {
            Step::Received(Received::Command(Request::Command(command))) => {
                format!("{:?}", command.body)
            }
            other => panic!("{other:?}"),
        }
    }

    fn append(step: Step) -> Append {
        match step {
            Step::Received(Received::Append(append)) => append,
            other => panic!("{other:?}"),
        }
    }

    fn refusal(step: &Step) -> String {
        match step {
            Step::Refused(refusal) => encode_status(&refusal.status()),
            other => panic!("{other:?}"),
        }
    }

    fn logged_in() -> (tempfile::TempDir, Input) {
        let dir = tempfile::tempdir().unwrap();
        let mut input = input();
        input.logged_in(dir.path().to_path_buf());
        (dir, input)
    }

    #[test]
    fn commands_come_whole_with_literals_sync_or_not_and_lines_may_end_in_lf() {
        let mut input = input();
        let got = steps(&mut input, b"a1 NOOP\r\na2 LOGIN {5}\r\n");
        assert_eq!(got.len(), 2);
        assert_eq!(command(&got[0]), "Noop");
        assert!(matches!(got[1], Step::GoAhead));
        let started = input.started().expect("a message is half read");
        // Its start is its first byte, however long the rest takes.
        input.push(b"ali", started + std::time::Duration::from_secs(30));
        assert!(input.next_step().is_none());
        assert_eq!(input.started(), Some(started));
        let got = steps(&mut input, b"ce {6+}\r\nsecret\r\na3 CAPABILITY\n");
        assert_eq!(got.len(), 2);
        assert!(command(&got[0]).starts_with("Login"), "{got:?}");
        assert_eq!(command(&got[1]), "Capability");
        assert!(input.started().is_none());
    }

    #[test]
    fn literal_bytes_are_never_read_as_commands() {
        let mut input = input();
        let got = steps(&mut input, b"a1 LOGIN {16+}\r\nb1 LOGOUT\r\nx y z\r\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(refusal(&got[0]), "a1 BAD could not parse that command\r\n");
    }

    #[test]
    fn before_login_big_literals_and_long_lines_are_refused_at_once() {
        // Non-synchronizing: the bytes are on their way, the connection ends.
        let mut input = input();
        let got = steps(&mut input, b"a1 LOGIN {50331648+}\r\nxxxx");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            refusal(&got[0]),
            "* BYE [TOOBIG] literal too big; closing\r\n"
        );
        // Synchronizing: refused before the client sends it; the session goes on.
        let mut input = self::input();
        let got = steps(&mut input, b"a2 LOGIN {9000}\r\na3 NOOP\r\n");
        assert_eq!(refusal(&got[0]), "a2 NO [TOOBIG] literal too big\r\n");
        assert_eq!(command(&got[1]), "Noop");
        // A line without end: refused as soon as it is over the limit, not at its end.
        let mut input = self::input();
        let got = steps(&mut input, &[b'x'; 8 * 1024 + 1]);
        assert_eq!(refusal(&got[0]), "* BYE line too long; closing\r\n");
        // Small literals that add up.
        let mut input = self::input();
        let mut bytes = b"a4 ID (".to_vec();
        for _ in 0..3 {
            bytes.extend_from_slice(b"{6000+}\r\n");
            bytes.extend_from_slice(&[b'x'; 6000]);
            bytes.push(b' ');
        }
        let got = steps(&mut input, &bytes);
        assert_eq!(
            refusal(&got[0]),
            "* BYE [TOOBIG] command too big; closing\r\n"
        );
    }

    #[test]
    fn after_login_an_oversized_message_is_read_to_its_end_and_refused() {
        let (_dir, mut input) = logged_in();
        let mut bytes = b"a1 SEARCH TEXT ".to_vec();
        bytes.extend_from_slice(&[b'x'; 70_000]);
        bytes.extend_from_slice(b" {3+}\r\n{5}\r\na2 NOOP\r\n");
        let got = steps(&mut input, &bytes);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(refusal(&got[0]), "a1 BAD line too long\r\n");
        assert_eq!(command(&got[1]), "Noop");
        // A literal over the limit: skipped, whatever it holds.
        let got = steps(&mut input, b"a3 SEARCH TEXT {70000+}\r\n");
        assert!(got.is_empty());
        let mut rest = vec![b'y'; 69_989];
        rest.extend_from_slice(b"a4 LOGOUT\r\n\r\na5 NOOP\r\n");
        let got = steps(&mut input, &rest);
        assert_eq!(refusal(&got[0]), "a3 NO [TOOBIG] literal too big\r\n");
        assert_eq!(command(&got[1]), "Noop");
        // Synchronizing: refused before it comes.
        let got = steps(&mut input, b"a6 SEARCH TEXT {70000}\r\n");
        assert_eq!(refusal(&got[0]), "a6 NO [TOOBIG] literal too big\r\n");
    }

    #[test]
    fn an_append_literal_goes_to_a_spool_file_not_to_memory() {
        let (dir, mut input) = logged_in();
        let size = 3 * 1024 * 1024;
        let got = steps(
            &mut input,
            format!("a1 APPEND INBOX (\\Seen) {{{size}}}\r\n").as_bytes(),
        );
        assert!(matches!(got[..], [Step::GoAhead]), "{got:?}");
        let chunk = vec![b'm'; 64 * 1024];
        for _ in 0..size / chunk.len() {
            assert!(steps(&mut input, &chunk).is_empty());
        }
        assert!(input.message.bytes.len() < 100, "kept in memory");
        let mut got = steps(&mut input, b"\r\n");
        let mut append = append(got.pop().unwrap());
        assert!(append.is_spooled());
        assert_eq!(append.messages.len(), 1);
        assert_eq!(append.messages[0].flags.len(), 1);
        assert!(!append.messages[0].binary);
        assert_eq!(append.take(0).unwrap(), vec![b'm'; size]);
        // The spool file has no name.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Over APPENDLIMIT.
        let got = steps(&mut input, b"a2 APPEND INBOX {60000000}\r\n");
        assert_eq!(refusal(&got[0]), "a2 NO [TOOBIG] literal too big\r\n");
    }

    #[test]
    fn a_multiappend_spools_its_big_messages_in_one_file_and_keeps_small_ones_in_memory() {
        let (dir, mut input) = logged_in();
        let got = steps(&mut input, b"a3 APPEND INBOX (\\Seen) {70000+}\r\n");
        assert!(got.is_empty());
        let mut rest = vec![b'x'; 70_000];
        rest.extend_from_slice(b" ~{5+}\r\nt\0iny {70001}\r\n");
        let got = steps(&mut input, &rest);
        assert!(matches!(got[..], [Step::GoAhead]), "{got:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut rest = vec![b'y'; 70_001];
        rest.extend_from_slice(b"\r\n");
        let mut got = steps(&mut input, &rest);
        let mut append = append(got.pop().unwrap());
        assert!(append.is_spooled());
        assert!(input.message.bytes.is_empty());
        let sizes: Vec<u64> = append.messages.iter().map(|m| m.len()).collect();
        assert_eq!(sizes, [70_000, 5, 70_001]);
        assert_eq!(append.take(1).unwrap(), b"t\0iny");
        assert_eq!(append.take(2).unwrap(), vec![b'y'; 70_001]);
        assert_eq!(append.take(0).unwrap(), vec![b'x'; 70_000]);
        assert!(append.messages[1].binary);
    }

    #[test]
    fn a_multiappend_is_bounded_in_messages_and_bytes() {
        let (_dir, mut input) = logged_in();
        // The biggest messages, past the total: refused before they come.
        let big = upload::MAX_TOTAL / 2;
        let got = steps(
            &mut input,
            format!("a1 APPEND INBOX {{{big}+}}\r\n").as_bytes(),
        );
        assert!(got.is_empty());
        input.push(&vec![b'x'; big as usize], Instant::now());
        assert!(input.next_step().is_none());
        let got = steps(&mut input, format!(" {{{big}}}\r\n").as_bytes());
        assert!(matches!(got[..], [Step::GoAhead]), "{got:?}");
        input.push(&vec![b'y'; big as usize], Instant::now());
        assert!(input.next_step().is_none());
        let got = steps(&mut input, b" {1}\r\n");
        assert_eq!(
            refusal(&got[0]),
            "a1 NO [TOOBIG] too much for one APPEND (at most 1000 messages, 100 MiB)\r\n"
        );
        // Many tiny ones: the 1001st message ends it (read to its end, not kept).
        let mut bytes = b"a2 APPEND INBOX".to_vec();
        for _ in 0..=upload::MAX_MESSAGES {
            bytes.extend_from_slice(b" {1+}\r\nm");
        }
        bytes.extend_from_slice(b"\r\na3 NOOP\r\n");
        let got = steps(&mut input, &bytes);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(refusal(&got[0]).starts_with("a2 NO [TOOBIG] too much for one APPEND"));
        assert_eq!(command(&got[1]), "Noop");
        // 1000 is fine.
        bytes.truncate(b"a2 APPEND INBOX".len() + 8 * upload::MAX_MESSAGES);
        bytes.extend_from_slice(b"\r\n");
        let got = steps(&mut input, &bytes);
        assert_eq!(append(got.into_iter().next().unwrap()).messages.len(), 1000);
        // A literal8 with NUL is a message; a plain literal with NUL is not.
        let got = steps(&mut input, b"a4 APPEND INBOX ~{3+}\r\na\0b\r\n");
        assert!(
            matches!(got[..], [Step::Received(Received::Append(_))]),
            "{got:?}"
        );
        let got = steps(&mut input, b"a5 APPEND INBOX {3+}\r\na\0b\r\n");
        assert_eq!(refusal(&got[0]), "a5 BAD could not parse that command\r\n");
    }

    #[test]
    fn a_literal8_is_framed_like_any_literal_under_the_same_limits() {
        let (_dir, mut input) = logged_in();
        // Over APPENDLIMIT, or more than 32 bits: refused before it comes.
        let got = steps(&mut input, b"a1 APPEND INBOX ~{60000000}\r\n");
        assert_eq!(refusal(&got[0]), "a1 NO [TOOBIG] literal too big\r\n");
        let got = steps(&mut input, b"a2 APPEND INBOX ~{99999999999}\r\n");
        assert_eq!(refusal(&got[0]), "a2 NO [TOOBIG] literal too big\r\n");
        // Its bytes are never commands, NUL or not.
        let got = steps(&mut input, b"a3 APPEND INBOX ~{12+}\r\na4 LOGOUT\r\n\0\r\n");
        let mut append = append(got.into_iter().next().unwrap());
        assert_eq!(append.take(0).unwrap(), b"a4 LOGOUT\r\n\0");
        assert!(append.messages[0].binary);
        // Before login a literal8 is no bigger than a literal.
        let mut input = self::input();
        let got = steps(&mut input, b"a5 APPEND INBOX ~{9000+}\r\n");
        assert_eq!(
            refusal(&got[0]),
            "* BYE [TOOBIG] literal too big; closing\r\n"
        );
    }

    #[test]
    fn small_appends_and_literal_mailbox_names_stay_in_memory() {
        let (_dir, mut input) = logged_in();
        let got = steps(
            &mut input,
            b"a1 APPEND {5+}\r\nINBOX {11+}\r\nSubject: x\n\r\n",
        );
        let append = append(got.into_iter().next().unwrap());
        assert!(!append.is_spooled());
        assert!(
            format!("{:?}", append.mailbox).contains("Inbox"),
            "{append:?}"
        );
    }

    #[test]
    fn search_return_and_the_saved_result_are_read_before_imap_codec() {
        let (_dir, mut input) = logged_in();
        let got = steps(
            &mut input,
            b"a1 UID SEARCH RETURN (MIN SAVE) SUBJECT {1+}\r\n$ $\r\n\
              a2 FETCH 1,$ FLAGS\r\na3 SEARCH RETURN (MIN\r\na4 FETCH $ FLAGS\r\n",
        );
        let Step::Received(Received::Command(Request::Search {
            command: search,
            returns,
        })) = &got[0]
        else {
            panic!("{got:?}");
        };
        assert!(returns.min && returns.save && !returns.count);
        let sets = preparse::sequence_sets(&search.body);
        assert!(sets.len() == 1 && preparse::is_saved(sets[0]), "{search:?}");
        assert_eq!(refusal(&got[1]), "a2 BAD could not parse that command\r\n");
        assert_eq!(refusal(&got[2]), "a3 BAD could not parse that command\r\n");
        assert!(command(&got[3]).starts_with("Fetch"), "{got:?}");
    }

    #[test]
    fn an_extended_list_imap_codec_refuses_is_read_by_preparse_literals_and_all() {
        let (_dir, mut input) = logged_in();
        let got = steps(
            &mut input,
            b"a1 LIST \"\" *\r\na2 LIST (SUBSCRIBED) \"\" ({3}\r\n",
        );
        assert!(command(&got[0]).starts_with("List"), "{got:?}");
        assert!(matches!(got[1], Step::GoAhead));
        let got = steps(
            &mut input,
            b"a.b %) RETURN (STATUS (SIZE))\r\na3 LIST (BOGUS) \"\" *\r\n",
        );
        let Step::Received(Received::Command(Request::List(list))) = &got[0] else {
            panic!("{got:?}");
        };
        assert_eq!(list.tag.as_ref(), "a2");
        assert_eq!(list.patterns, ["a.b", "%"]);
        assert!(list.select.subscribed && !list.returns.status.is_empty());
        // RFC 5258 §3: an option the server does not know is a BAD.
        assert_eq!(refusal(&got[1]), "a3 BAD could not parse that command\r\n");
    }

    #[test]
    fn the_expected_message_decides_the_parse() {
        let mut input = input();
        input.expect(Expect::IdleDone);
        let got = steps(&mut input, b"DONE\r\nNOOP\r\n");
        assert!(matches!(got[0], Step::Received(Received::IdleDone)));
        assert_eq!(refusal(&got[1]), "* BAD could not parse that command\r\n");
        input.expect(Expect::AuthenticateData);
        let got = steps(&mut input, b"AGFAYgBj\r\n*\r\n");
        assert!(matches!(
            got[..],
            [
                Step::Received(Received::AuthenticateData(AuthenticateData::Continue(_))),
                Step::Received(Received::AuthenticateData(AuthenticateData::Cancel))
            ]
        ));
    }

    #[test]
    fn announcements() {
        let at = |line: &[u8]| announcement(line);
        assert_eq!(
            at(b"a LOGIN {5}\r\n"),
            Some(Announcement {
                at: 8,
                length: Some(5),
                sync: true
            })
        );
        assert!(!at(b"a LOGIN {5+}\n").unwrap().sync);
        assert_eq!(at(b"x {99999999999}\r\n").unwrap().length, None);
        assert_eq!(at(b"a NOOP\r\n"), None);
        assert_eq!(at(b"a {}\r\n"), None);
        assert_eq!(at(b"a 5}\r\n"), None);
        assert_eq!(at(b"{5}\r\n").unwrap().at, 0);
    }

    mod bounded {
        use proptest::prelude::*;

        use super::*;

        const PIECES: &[&[u8]] = &[
            b"a1 ",
            b"APPEND INBOX ",
            b"LOGIN ",
            b"{5}\r\n",
            b"{5+}\r\n",
            b"{70000+}\r\n",
            b"{9000}\r\n",
            b"{99999999999+}\r\n",
            b"~{5}\r\n",
            b"~{70000+}\r\n",
            b" (\\Seen) {1+}\r\n",
            b"\r\n",
            b"\n",
            b"xxxxx",
            b"DONE\r\n",
        ];

        proptest! {
            #[test]
            fn memory_stays_within_the_limits_whatever_comes(
                pieces in prop::collection::vec((0..PIECES.len() + 2, any::<u8>()), 0..200),
                logged_in in any::<bool>(),
                read_size in 1..20_000usize,
            ) {
                let dir = tempfile::tempdir().unwrap();
                let mut input = Input::new();
                if logged_in {
                    input.logged_in(dir.path().to_path_buf());
                }
                let mut bytes = Vec::new();
                for (piece, byte) in pieces {
                    match piece {
                        p if p < PIECES.len() => bytes.extend_from_slice(PIECES[p]),
                        p if p == PIECES.len() => bytes.push(byte),
                        _ => bytes.extend(std::iter::repeat_n(byte, 30_000)),
                    }
                }
                let limits = input.limits;
                for chunk in bytes.chunks(read_size) {
                    input.push(chunk, Instant::now());
                    while let Some(step) = input.next_step() {
                        if let Step::Refused(Refusal { close: true, .. }) = step {
                            return Ok(());
                        }
                        prop_assert!(input.message.bytes.len() <= limits.message + limits.line);
                        prop_assert!(input.message.literal_ends.len() <= upload::MAX_MESSAGES + 1);
                    }
                    prop_assert!(input.message.bytes.len() <= limits.message + limits.line);
                    prop_assert!(input.line.len() <= limits.line + read_size);
                }
            }
        }
    }
}
