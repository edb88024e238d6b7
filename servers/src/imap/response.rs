//! Building responses: what a command returns ([`Reply`], made of [`Line`]s), tagged and
//! untagged status lines, and the typed codes a NO carries ([`NoCode`], [`Rejection`]).

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
    pub responses: Vec<Line>,
    pub after: After,
    /// A login failed: the server delays the answer (and counts it for rate limits).
    pub auth_failed: bool,
}

impl Reply {
    pub fn new(responses: Vec<Response<'static>>) -> Reply {
        Reply::of_lines(responses.into_iter().map(Line::from).collect())
    }

    pub fn of_lines(responses: Vec<Line>) -> Reply {
        Reply {
            responses,
            after: After::Continue,
            auth_failed: false,
        }
    }
}

/// One response of a [`Reply`] as the server writes it: imap-codec's, or one with
/// extended data imap-codec has no place for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Response(Response<'static>),
    /// A LIST response and its RFC 5258 `mbox-list-extended` (`("CHILDINFO"
    /// ("SUBSCRIBED"))`), which goes after the mailbox name, at the end of the line:
    /// imap-codec's LIST data ends at the name.
    Extended {
        response: Response<'static>,
        extended: String,
    },
}

impl Line {
    /// The bytes on the wire, literals and all.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Line::Response(response) => ResponseCodec::default().encode(response).dump(),
            Line::Extended { response, extended } => {
                let mut bytes = ResponseCodec::default().encode(response).dump();
                debug_assert!(bytes.ends_with(b"\r\n") && !extended.contains(['\r', '\n']));
                bytes.truncate(bytes.len().saturating_sub(2));
                bytes.push(b' ');
                bytes.extend_from_slice(extended.as_bytes());
                bytes.extend_from_slice(b"\r\n");
                bytes
            }
        }
    }
}

impl From<Response<'static>> for Line {
    fn from(response: Response<'static>) -> Line {
        Line::Response(response)
    }
}

pub type Responses = Vec<Response<'static>>;

/// Where a command sends the untagged responses it makes before its reply (FETCH, a
/// message or a chunk at a time): the server writes each while the command goes on and
/// holds back the command while the client is slow to read, so a long answer never sits
/// in memory whole (600 ranges of a 1 MB message made one 600 MB reply). Tests and the
/// fuzz target keep them instead, in front of the reply.
pub struct Outbox {
    stream: Option<SendResponse>,
    kept: Responses,
}

type SendResponse = Box<dyn FnMut(Response<'static>) -> Result<(), Gone> + Send>;

/// Nobody reads the answer any more (the connection is closing): the command may stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone;

impl Outbox {
    /// Responses go to `send` as they come; it may wait for the client.
    pub fn streaming(
        send: impl FnMut(Response<'static>) -> Result<(), Gone> + Send + 'static,
    ) -> Outbox {
        Outbox {
            stream: Some(Box::new(send)),
            kept: Vec::new(),
        }
    }

    pub fn send(&mut self, response: Response<'static>) -> Result<(), Gone> {
        match &mut self.stream {
            Some(send) => send(response),
            None => {
                self.kept.push(response);
                Ok(())
            }
        }
    }

    /// What was kept (none when streaming).
    pub fn into_kept(self) -> Responses {
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
}

impl NoCode {
    pub fn code(self) -> Code<'static> {
        let atom: &'static [u8] = match self {
            NoCode::ReadOnly => return Code::ReadOnly,
            NoCode::TryCreate => return Code::TryCreate,
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
    let mut elements: Vec<UidElement> = Vec::new();
    for uid in uids {
        let uid = nz(uid);
        match elements.last_mut() {
            Some(UidElement::Single(last)) if last.get() + 1 == uid.get() => {
                *elements.last_mut().expect("present") = UidElement::Range(*last, uid);
            }
            Some(UidElement::Range(_, last)) if last.get() + 1 == uid.get() => *last = uid,
            _ => elements.push(UidElement::Single(uid)),
        }
    }
    UidSet(Vec1::try_from(elements).unwrap_or_else(|_| Vec1::from(UidElement::Single(nz(1)))))
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
