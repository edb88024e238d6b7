//! Building responses: what a command returns ([`Reply`], made of [`Outgoing`]
//! responses), tagged and untagged status lines, and the typed codes a NO carries
//! ([`NoCode`], [`Rejection`]).

use std::borrow::Cow;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{Tag, Text, Vec1};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::response::{Code, CodeOther, Data, Response, Status, StatusKind};

/// What the server must do once the responses are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    /// Start TLS on this connection (the tagged OK is the last plaintext).
    StartTls,
    /// Close the connection.
    Logout,
}

#[derive(Debug)]
pub struct Reply {
    /// What the command sent ahead when its outbox kept them (tests, fuzzing) come
    /// first, encoded ([`Outgoing::Line`]).
    pub responses: Vec<Outgoing>,
    pub after: After,
    /// A login failed: the server delays the answer (and counts it for rate limits).
    pub auth_failed: bool,
}

impl Reply {
    pub fn new<T: Into<Outgoing>>(responses: Vec<T>) -> Reply {
        Reply {
            responses: responses.into_iter().map(Into::into).collect(),
            after: After::Continue,
            auth_failed: false,
        }
    }
}

/// A response as the wire has it.
pub fn encode(response: &Response<'_>) -> Vec<u8> {
    ResponseCodec::default().encode(response).dump()
}

/// A response as a command returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// What imap-types expresses, encoded by imap-codec.
    Imap(Response<'static>),
    /// One untagged response, CRLF included, encoded by the module that makes it:
    /// what imap-types has no type for (ESEARCH, RFC 4731, in `esearch`; a LIST with
    /// RFC 5258's extended data, [`Outgoing::extended`]), would hold as a tree as deep
    /// as the answer (THREAD, RFC 5256, in `thread`), or cannot write (FETCH's BINARY
    /// data, RFC 3516, sent ahead through the [`Outbox`]).
    Line(Vec<u8>),
}

impl Outgoing {
    /// The bytes the server writes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Outgoing::Imap(response) => encode(response),
            Outgoing::Line(line) => line.clone(),
        }
    }

    /// `response` (a LIST) with `extended` after it, at the end of the line: RFC
    /// 5258's `mbox-list-extended` (`("CHILDINFO" ("SUBSCRIBED"))`), which imap-codec's
    /// LIST data, ending at the mailbox name, has no place for.
    pub fn extended(response: &Response<'_>, extended: &str) -> Outgoing {
        let mut bytes = encode(response);
        debug_assert!(bytes.ends_with(b"\r\n") && !extended.contains(['\r', '\n']));
        bytes.truncate(bytes.len().saturating_sub(2));
        bytes.push(b' ');
        bytes.extend_from_slice(extended.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        Outgoing::Line(bytes)
    }
}

impl From<Response<'static>> for Outgoing {
    fn from(response: Response<'static>) -> Outgoing {
        Outgoing::Imap(response)
    }
}

pub type Responses = Vec<Response<'static>>;

/// Where a command sends the untagged responses it makes before its reply (FETCH, a
/// message or a chunk at a time): the server writes each while the command goes on and
/// holds back the command while the client is slow to read, so a long answer never sits
/// in memory whole (600 ranges of a 1 MB message made one 600 MB reply). Tests and the
/// fuzz target keep them instead, in front of the reply.
///
/// They are encoded already (on the command's thread): a FETCH response with BINARY
/// data (RFC 3516) has what imap-codec cannot write, `BINARY[1]<0>` and `~{n}`.
pub struct Outbox {
    stream: Option<SendResponse>,
    kept: Vec<Vec<u8>>,
}

type SendResponse = Box<dyn FnMut(Vec<u8>) -> Result<(), Gone> + Send>;

/// Nobody reads the answer any more (the connection is closing): the command may stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone;

impl Outbox {
    /// Responses go to `send` as they come; it may wait for the client.
    pub fn streaming(send: impl FnMut(Vec<u8>) -> Result<(), Gone> + Send + 'static) -> Outbox {
        Outbox {
            stream: Some(Box::new(send)),
            kept: Vec::new(),
        }
    }

    /// One encoded response.
    pub fn send(&mut self, response: Vec<u8>) -> Result<(), Gone> {
        match &mut self.stream {
            Some(send) => send(response),
            None => {
                self.kept.push(response);
                Ok(())
            }
        }
    }

    /// What was kept (none when streaming).
    pub fn into_kept(self) -> Vec<Vec<u8>> {
        self.kept
    }
}

impl Default for Outbox {
    /// Keeps the responses.
    fn default() -> Outbox {
        Outbox {
            stream: None,
            kept: Vec::new(),
        }
    }
}

/// The response codes a NO carries here (RFC 3501 §7.1, RFC 5530), typed so that no
/// code is ever parsed back out of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCode {
    AlreadyExists,
    AuthenticationFailed,
    ExpungeIssued,
    InUse,
    Nonexistent,
    PrivacyRequired,
    ReadOnly,
    ServerBug,
    TryCreate,
    Unavailable,
    /// RFC 3516: a section's transfer encoding that cannot be undone, or binary
    /// content that cannot be stored.
    UnknownCte,
}

impl NoCode {
    pub fn code(self) -> Code<'static> {
        let atom: &'static [u8] = match self {
            NoCode::ReadOnly => return Code::ReadOnly,
            NoCode::TryCreate => return Code::TryCreate,
            NoCode::UnknownCte => return Code::UnknownCte,
            // RFC 5530's codes, which imap-codec has no variants for.
            NoCode::AlreadyExists => b"ALREADYEXISTS",
            NoCode::AuthenticationFailed => b"AUTHENTICATIONFAILED",
            NoCode::ExpungeIssued => b"EXPUNGEISSUED",
            NoCode::InUse => b"INUSE",
            NoCode::Nonexistent => b"NONEXISTENT",
            NoCode::PrivacyRequired => b"PRIVACYREQUIRED",
            NoCode::ServerBug => b"SERVERBUG",
            NoCode::Unavailable => b"UNAVAILABLE",
        };
        Code::Other(CodeOther::unvalidated(atom))
    }
}

/// Why a command is refused: what the tagged NO says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: Option<NoCode>,
    pub text: Cow<'static, str>,
}

impl Rejection {
    pub fn new(code: Option<NoCode>, text: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection {
            code,
            text: text.into(),
        }
    }

    /// The tagged NO.
    pub fn status(&self, tag: &Tag<'static>) -> Status<'static> {
        status(
            Some(tag.clone()),
            StatusKind::No,
            self.code.map(NoCode::code),
            self.text.clone(),
        )
    }

    pub fn response(&self, tag: &Tag<'static>) -> Response<'static> {
        Response::Status(self.status(tag))
    }
}

/// `words` as IMAP text (RFC 3501 §9: 7-bit, no CR or LF, not empty). Words from
/// elsewhere (a store error naming a mailbox or a user) may hold anything: what IMAP
/// cannot carry becomes `?`, so building a response never fails. (A NO naming a
/// non-ASCII mailbox panicked here and dropped the connection.)
pub fn text(words: impl Into<Cow<'static, str>>) -> Text<'static> {
    let words = words.into();
    if Text::validate(words.as_bytes()).is_ok() {
        return Text::unvalidated(words);
    }
    let carried: String = words
        .chars()
        .map(|c| match c {
            '\0' | '\r' | '\n' => ' ',
            c if c.is_ascii() => c,
            _ => '?',
        })
        .collect();
    if carried.trim().is_empty() {
        Text::unvalidated("-")
    } else {
        Text::unvalidated(carried)
    }
}

/// A status response; total, since the text is made valid first.
pub fn status(
    tag: Option<Tag<'static>>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    words: impl Into<Cow<'static, str>>,
) -> Status<'static> {
    match Status::new(tag, kind, code, text(words)) {
        Ok(status) => status,
        Err(never) => match never {},
    }
}

pub fn data(data: Data<'static>) -> Response<'static> {
    Response::Data(data)
}

pub fn ok(tag: &Tag<'static>, text: &'static str) -> Response<'static> {
    Response::Status(status(Some(tag.clone()), StatusKind::Ok, None, text))
}

/// Tagged OK with a response code.
pub fn ok_code(tag: &Tag<'static>, code: Code<'static>, text: &'static str) -> Response<'static> {
    Response::Status(status(Some(tag.clone()), StatusKind::Ok, Some(code), text))
}

pub fn bad(tag: &Tag<'static>, text: &'static str) -> Response<'static> {
    Response::Status(status(Some(tag.clone()), StatusKind::Bad, None, text))
}

/// Tagged NO.
pub fn no(
    tag: &Tag<'static>,
    code: Option<NoCode>,
    text: impl Into<Cow<'static, str>>,
) -> Response<'static> {
    Rejection::new(code, text).response(tag)
}

pub fn untagged_ok(code: Code<'static>, text: &'static str) -> Response<'static> {
    Response::Status(status(None, StatusKind::Ok, Some(code), text))
}

pub fn bye(words: impl Into<Cow<'static, str>>) -> Response<'static> {
    Response::Status(bye_status(None, words))
}

/// `* BYE`, with a code if one says why.
pub fn bye_status(
    code: Option<Code<'static>>,
    words: impl Into<Cow<'static, str>>,
) -> Status<'static> {
    match Status::bye(code, text(words)) {
        Ok(status) => status,
        Err(never) => match never {},
    }
}

/// UIDs (ascending as given) as a UID set, runs folded into ranges.
pub fn uid_set(uids: impl Iterator<Item = u32>) -> UidSet {
    let elements: Vec<UidElement> = runs(uids)
        .into_iter()
        .map(|(first, last)| match first == last {
            true => UidElement::Single(nz(first)),
            false => UidElement::Range(nz(first), nz(last)),
        })
        .collect();
    UidSet(Vec1::try_from(elements).unwrap_or_else(|_| Vec1::from(UidElement::Single(nz(1)))))
}

/// Ascending numbers as runs of consecutive ones, `(first, last)` each.
pub fn runs(numbers: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for n in numbers {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(n) => *last = n,
            _ => runs.push((n, n)),
        }
    }
    runs
}

/// UIDPLUS's APPENDUID (RFC 4315): with MULTIAPPEND, the UIDs of every message
/// appended, in order (RFC 3502), which imap-codec's code has no room for.
pub fn append_uid(uid_validity: u32, uids: &[u32]) -> Code<'static> {
    if let [uid] = uids {
        return Code::AppendUid {
            uid_validity: nz(uid_validity),
            uid: nz(*uid),
        };
    }
    let set: Vec<String> = uid_set(uids.iter().copied())
        .0
        .as_ref()
        .iter()
        .map(|element| match element {
            UidElement::Single(uid) => uid.to_string(),
            UidElement::Range(first, last) => format!("{first}:{last}"),
        })
        .collect();
    let code = format!("APPENDUID {uid_validity} {}", set.join(","));
    Code::Other(CodeOther::unvalidated(code.into_bytes()))
}

/// A count or number the protocol wants non-zero; 0 (which the store never hands out
/// for a UID, UIDVALIDITY or sequence number) becomes 1.
pub fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// [`nz`] for the store's signed 64-bit modseqs.
pub fn nz64(n: i64) -> NonZeroU64 {
    NonZeroU64::new(u64::try_from(n).unwrap_or(1)).unwrap_or(NonZeroU64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::testing::encode;

    #[test]
    fn every_no_code_is_spelled_as_its_rfc_says() {
        let tag = Tag::try_from("a1").unwrap();
        let codes = [
            (NoCode::AlreadyExists, "ALREADYEXISTS"),
            (NoCode::AuthenticationFailed, "AUTHENTICATIONFAILED"),
            (NoCode::ExpungeIssued, "EXPUNGEISSUED"),
            (NoCode::InUse, "INUSE"),
            (NoCode::Nonexistent, "NONEXISTENT"),
            (NoCode::PrivacyRequired, "PRIVACYREQUIRED"),
            (NoCode::ReadOnly, "READ-ONLY"),
            (NoCode::ServerBug, "SERVERBUG"),
            (NoCode::TryCreate, "TRYCREATE"),
            (NoCode::Unavailable, "UNAVAILABLE"),
            (NoCode::UnknownCte, "UNKNOWN-CTE"),
        ];
        for (code, atom) in codes {
            assert_eq!(
                encode(&no(&tag, Some(code), "why")),
                format!("a1 NO [{atom}] why\r\n")
            );
        }
        assert_eq!(encode(&no(&tag, None, "why")), "a1 NO why\r\n");
    }

    #[test]
    fn texts_imap_cannot_carry_are_made_valid_not_panicked_on() {
        let tag = Tag::try_from("a1").unwrap();
        assert_eq!(
            encode(&no(
                &tag,
                Some(NoCode::AlreadyExists),
                "Entwürfe already exists"
            )),
            "a1 NO [ALREADYEXISTS] Entw?rfe already exists\r\n"
        );
        assert_eq!(
            encode(&no(&tag, None, "`a\r\nb` is not a usable mailbox name")),
            "a1 NO `a  b` is not a usable mailbox name\r\n"
        );
        assert_eq!(encode(&no(&tag, None, "")), "a1 NO -\r\n");
        assert_eq!(encode(&bye("ünïcode")), "* BYE ?n?code\r\n");
    }

    #[test]
    fn appenduid_names_every_message_appended() {
        let tag = Tag::try_from("a1").unwrap();
        let answer = |uids: &[u32]| encode_str(&ok_code(&tag, append_uid(9, uids), "done"));
        assert_eq!(answer(&[4]), "a1 OK [APPENDUID 9 4] done\r\n");
        assert_eq!(answer(&[4, 5, 6, 8]), "a1 OK [APPENDUID 9 4:6,8] done\r\n");
    }

    fn encode_str(response: &Response<'static>) -> String {
        String::from_utf8(super::encode(response)).unwrap()
    }

    #[test]
    fn uid_sets_fold_runs() {
        let tag = Tag::try_from("a1").unwrap();
        let copyuid = |source: &[u32]| {
            let code = Code::CopyUid {
                uid_validity: nz(7),
                source: uid_set(source.iter().copied()),
                destination: uid_set(1..=source.len() as u32),
            };
            encode(&ok_code(&tag, code, "done"))
        };
        assert_eq!(copyuid(&[4]), "a1 OK [COPYUID 7 4 1] done\r\n");
        assert_eq!(
            copyuid(&[1, 2, 3, 5, 7, 8]),
            "a1 OK [COPYUID 7 1:3,5,7:8 1:6] done\r\n"
        );
    }
}
