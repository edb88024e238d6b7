//! The messages of an APPEND as they came off the wire: one, or several with MULTIAPPEND
//! (RFC 3502: `APPEND mbox (flags) date {n}` followed by more `(flags) date {m}`, all
//! in one command), each a literal or a literal8 (RFC 3516 `~{n}`, which may hold NUL).
//!
//! imap-codec parses an APPEND with one message and wants the command's CRLF right
//! after it, so the further messages are parsed here, with imap-codec still doing the
//! parsing: [`Input`](super::input::Input) records where each literal of the command
//! ends, and each further message (`SP [flag-list SP] [date-time SP] literal`, up to
//! the end of its literal) is parsed as the APPEND `0 APPEND x <message>`. Nothing is
//! searched for in the bytes, so a literal's bytes are never read as syntax.
//!
//! Big literals (over the in-memory limit) are in one spool file per command, one after
//! the other ([`Spool`]): a MULTIAPPEND holds one file descriptor and no memory for
//! them, and [`Append::take`] reads one message back at a time.
//!
//! Limits per command (the framing enforces them as the bytes arrive, refusing with
//! `NO [TOOBIG]`): at most [`MAX_MESSAGES`] messages and [`MAX_TOTAL`] bytes of
//! literals; each literal still at most APPENDLIMIT ([`MAX_LITERAL`]).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;

/// Largest literal (an APPEND's message) accepted: advertised as APPENDLIMIT (RFC 7889),
/// enforced by the framing.
pub const MAX_LITERAL: u32 = 50 * 1024 * 1024;
/// Most messages in one APPEND.
pub const MAX_MESSAGES: usize = 1000;
/// Most bytes of literals in one APPEND, all messages together: twice APPENDLIMIT, so a
/// connection's spool never holds more than two of the biggest messages.
pub const MAX_TOTAL: u64 = 2 * MAX_LITERAL as u64;

/// An APPEND: its mailbox and its messages, in order.
#[derive(Debug)]
pub struct Append {
    pub tag: Tag<'static>,
    pub mailbox: Mailbox<'static>,
    pub messages: Vec<Upload>,
    /// Where the spooled messages are.
    spool: Option<File>,
}

/// One message of an APPEND.
#[derive(Debug)]
pub struct Upload {
    pub flags: Vec<Flag<'static>>,
    pub date: Option<DateTime>,
    /// Sent as a literal8: it may hold any byte, NUL included.
    pub binary: bool,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Memory(Vec<u8>),
    /// In the spool file, from `start`.
    Spooled {
        start: u64,
        length: u32,
    },
}

impl Upload {
    pub fn len(&self) -> u64 {
        match &self.body {
            Body::Memory(bytes) => bytes.len() as u64,
            Body::Spooled { length, .. } => u64::from(*length),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Append {
    /// The APPEND imap-codec parsed whole (one message, in memory).
    pub fn from_command(command: Command<'static>) -> Option<Append> {
        let CommandBody::Append {
            mailbox,
            flags,
            date,
            message,
        } = command.body
        else {
            return None;
        };
        Some(Append {
            tag: command.tag,
            mailbox,
            messages: vec![upload(flags, date, message)],
            spool: None,
        })
    }

    /// Whether a message waits in a spool file (and must be read back to be stored).
    pub fn is_spooled(&self) -> bool {
        self.spool.is_some()
    }

    /// The bytes of message `index`, read back from the spool if they are there; its
    /// place is left empty.
    pub fn take(&mut self, index: usize) -> std::io::Result<Vec<u8>> {
        let Some(upload) = self.messages.get_mut(index) else {
            return Ok(Vec::new());
        };
        match &mut upload.body {
            Body::Memory(bytes) => Ok(std::mem::take(bytes)),
            Body::Spooled { start, length } => {
                let file = self.spool.as_mut().ok_or(std::io::ErrorKind::NotFound)?;
                file.seek(SeekFrom::Start(*start))?;
                let mut bytes = Vec::with_capacity(*length as usize);
                file.take(u64::from(*length)).read_to_end(&mut bytes)?;
                if bytes.len() != *length as usize {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Ok(bytes)
            }
        }
    }
}

fn upload(
    flags: Vec<Flag<'static>>,
    date: Option<DateTime>,
    message: LiteralOrLiteral8<'static>,
) -> Upload {
    let (bytes, binary) = match message {
        LiteralOrLiteral8::Literal(literal) => (literal.into_inner().into_owned(), false),
        LiteralOrLiteral8::Literal8(literal) => (literal.data.into_owned(), true),
    };
    Upload {
        flags,
        date,
        binary,
        body: Body::Memory(bytes),
    }
}

/// The big literals of the command being read, one after the other in an unnamed file
/// (gone when dropped, or if the process dies).
#[derive(Debug)]
pub struct Spool {
    file: File,
    literals: Vec<SpooledLiteral>,
    /// Bytes written.
    written: u64,
}

#[derive(Debug)]
struct SpooledLiteral {
    /// Where the literal ends in the command's bytes (which hold `{0}` in its place).
    end: usize,
    start: u64,
    length: u32,
    /// It holds a NUL, which only a literal8 may.
    nul: bool,
}

impl Spool {
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        Ok(Spool {
            file: tempfile::tempfile_in(dir)?,
            literals: Vec::new(),
            written: 0,
        })
    }

    /// A literal of `length` bytes follows; in the command it is the empty literal
    /// that ends at `end`.
    pub fn begin(&mut self, end: usize, length: u32) {
        self.literals.push(SpooledLiteral {
            end,
            start: self.written,
            length,
            nul: false,
        });
    }

    /// Bytes of the literal begun last.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        if let Some(literal) = self.literals.last_mut() {
            literal.nul |= bytes.contains(&0);
        }
        Ok(())
    }
}

/// The APPEND in `bytes` (a whole command, CRLF included), whose literals end at
/// `literal_ends`, the big ones in `spool`. `None` when it is not a well-formed APPEND
/// (RFC 3502 `append = "APPEND" SP mailbox 1*append-message`) or a plain literal
/// holds a NUL.
pub fn parse(bytes: &[u8], literal_ends: &[usize], spool: Option<Spool>) -> Option<Append> {
    let codec = CommandCodec::default();
    let with_crlf = |parts: &[&[u8]]| {
        let mut line = parts.concat();
        line.extend_from_slice(b"\r\n");
        line
    };
    // The command up to its first message's literal: the first literal, or the second
    // when the mailbox name is the first.
    let (first, command) = literal_ends.iter().take(2).find_map(|&end| {
        let line = with_crlf(&[&bytes[..end]]);
        match codec.decode_static(&line) {
            Ok((&[], command)) => Some((end, command)),
            _ => None,
        }
    })?;
    let mut append = Append::from_command(command)?;
    let mut ends = vec![first];
    let mut start = first;
    for &end in literal_ends.iter().skip_while(|&&end| end <= first) {
        let line = with_crlf(&[b"0 APPEND x", &bytes[start..end]]);
        let Ok((&[], command)) = codec.decode_static(&line) else {
            return None;
        };
        append
            .messages
            .extend(Append::from_command(command)?.messages);
        ends.push(end);
        start = end;
    }
    if !matches!(&bytes[start..], b"\r\n" | b"\n") {
        return None;
    }
    if let Some(spool) = spool {
        for literal in &spool.literals {
            let index = ends.iter().position(|&end| end == literal.end)?;
            let upload = &mut append.messages[index];
            if literal.nul && !upload.binary {
                return None;
            }
            upload.body = Body::Spooled {
                start: literal.start,
                length: literal.length,
            };
        }
        append.spool = Some(spool.file);
    }
    Some(append)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal ends of `bytes`, found as the framing finds them (tests only use
    /// literals whose data holds no `}\r\n`).
    fn ends(bytes: &[u8]) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut at = 0;
        while let Some(open) = bytes[at..].windows(1).position(|w| w == b"{") {
            let open = at + open;
            let close = open + bytes[open..].iter().position(|&b| b == b'}').unwrap();
            let digits = std::str::from_utf8(&bytes[open + 1..close]).unwrap();
            let length: usize = digits.trim_end_matches('+').parse().unwrap();
            let data = close + 3;
            ends.push(data + length);
            at = data + length;
        }
        ends
    }

    fn parsed(bytes: &[u8]) -> Option<Append> {
        parse(bytes, &ends(bytes), None)
    }

    fn contents(append: &mut Append) -> Vec<String> {
        (0..append.messages.len())
            .map(|i| String::from_utf8(append.take(i).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn one_message_or_several_each_with_its_flags_and_date() {
        let mut one = parsed(b"a1 APPEND INBOX {5}\r\nhello\r\n").unwrap();
        assert_eq!(contents(&mut one), ["hello"]);
        let bytes = b"a2 APPEND {5}\r\nDraft (\\Seen) {3}\r\none \
                      (\\Flagged $Work) \"20-Nov-2026 12:00:00 +0100\" {3+}\r\ntwo {5}\r\nthree\r\n";
        let mut several = parsed(bytes).unwrap();
        assert_eq!(several.tag.as_ref(), "a2");
        assert!(format!("{:?}", several.mailbox).contains("Draft"));
        assert_eq!(contents(&mut several), ["one", "two", "three"]);
        let flags: Vec<usize> = several.messages.iter().map(|m| m.flags.len()).collect();
        assert_eq!(flags, [1, 2, 0]);
        assert!(several.messages[0].date.is_none() && several.messages[1].date.is_some());
    }

    #[test]
    fn rfc_3502_example() {
        let first = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
                     From: Fred Foobar <foobar@Blurdybloop.example.COM>\r\n\
                     Subject: afternoon meeting\r\nTo: mooch@owatagu.example.net\r\n\
                     Message-Id: <B27397-0100000@Blurdybloop.example.COM>\r\n\
                     MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n\
                     Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
        let second = "Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\n\
                      From: Joe Mooch <mooch@OWaTaGu.example.net>\r\n\
                      Subject: Re: afternoon meeting\r\nTo: foobar@blurdybloop.example.com\r\n\
                      Message-Id: <a0434793874930@OWaTaGu.example.net>\r\n\
                      MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n\
                      3:30 is fine with me.\r\n";
        assert_eq!((first.len(), second.len()), (329, 295));
        let bytes = format!(
            "A003 APPEND saved-messages (\\Seen) {{329}}\r\n{first} (\\Seen) \
             \" 7-Feb-1994 22:43:04 -0800\" {{295}}\r\n{second}\r\n"
        );
        let mut append = parsed(bytes.as_bytes()).unwrap();
        assert_eq!(contents(&mut append), [first, second]);
        let date = append.messages[1]
            .date
            .as_ref()
            .unwrap()
            .as_ref()
            .timestamp();
        assert_eq!(date, 760_689_784);
    }

    #[test]
    fn what_is_not_an_append_message_is_refused() {
        for bytes in [
            &b"a1 APPEND INBOX {3}\r\none{3}\r\ntwo\r\n"[..],
            b"a1 APPEND INBOX {3}\r\none (\\Seen {3}\r\ntwo\r\n",
            b"a1 APPEND INBOX {3}\r\none x {3}\r\ntwo\r\n",
            b"a1 APPEND INBOX {3}\r\none {3}\r\ntwo x\r\n",
            b"a1 APPEND INBOX {3}\r\none {3}\r\nt\0o\r\n",
            b"a1 NOOP {3}\r\none\r\n",
        ] {
            assert!(
                parsed(bytes).is_none(),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // A literal8 may hold NUL.
        let mut binary = parsed(b"a1 APPEND INBOX {3}\r\none ~{3}\r\nt\0o\r\n").unwrap();
        assert_eq!(contents(&mut binary), ["one", "t\0o"]);
        assert!(binary.messages[1].binary && !binary.messages[0].binary);
    }

    #[test]
    fn spooled_literals_are_read_back_from_their_place_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let bytes = b"a1 APPEND INBOX {0}\r\n {3}\r\nmid ~{0}\r\n\r\n";
        let ends = ends(bytes);
        spool.begin(ends[0], 5);
        spool.write(b"first").unwrap();
        spool.begin(ends[2], 4);
        spool.write(b"l\0st").unwrap();
        let mut append = parse(bytes, &ends, Some(spool)).unwrap();
        assert!(append.is_spooled());
        assert_eq!(
            append.messages.iter().map(Upload::len).collect::<Vec<_>>(),
            [5, 3, 4]
        );
        assert_eq!(contents(&mut append), ["first", "mid", "l\0st"]);
        // A NUL in a plain literal is refused, spooled or not.
        let mut spool = Spool::open(dir.path()).unwrap();
        let bytes = b"a1 APPEND INBOX {0}\r\n\r\n";
        spool.begin(ends[0], 3);
        spool.write(b"a\0b").unwrap();
        assert!(parse(bytes, &[ends[0]], Some(spool)).is_none());
    }
}
