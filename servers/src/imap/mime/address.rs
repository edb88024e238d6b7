//! RFC 5322 address lists read the way IMAP wants them: display names keep their
//! encoded-words (clients decode them), quoted strings lose their quotes and
//! escapes, groups become start/end markers.
//!
//! mail-parser's address parser decodes encoded-words and drops groups' exact
//! boundaries, which is right for display but not for ENVELOPE, so this small parser
//! works on the raw, unfolded value instead. It never fails: anything it cannot make
//! sense of is skipped, and a part that is missing gets a placeholder (the same
//! `MISSING_MAILBOX` / `MISSING_DOMAIN` that Dovecot uses) because a NIL host would
//! turn the address into a group marker.

/// What a missing local part becomes.
pub const MISSING_MAILBOX: &[u8] = b"MISSING_MAILBOX";
/// What a missing domain becomes.
pub const MISSING_DOMAIN: &[u8] = b"MISSING_DOMAIN";

/// One element of an ENVELOPE address list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Mailbox(Mailbox),
    /// `name:` of a group; the IMAP form is `(NIL NIL "name" NIL)`.
    GroupStart(Vec<u8>),
    /// The `;` closing a group; the IMAP form is `(NIL NIL NIL NIL)`.
    GroupEnd,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<Vec<u8>>,
    /// The obsolete source route (`@a,@b`), kept for completeness.
    pub adl: Option<Vec<u8>>,
    pub mailbox: Vec<u8>,
    pub host: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// An atom, dots included (`john.smith`), or any run of other bytes.
    Word,
    /// A quoted string; the text is its content with escapes removed.
    Quoted,
    /// `[...]`, kept with its brackets.
    DomainLiteral,
    /// One of `< > , : ; @`.
    Special(u8),
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    text: Vec<u8>,
    /// Whether blanks or a comment came before it (phrases join words with a space).
    spaced: bool,
}

/// Parses an unfolded address-list header value.
pub fn parse_list(value: &[u8]) -> Vec<Item> {
    let (tokens, comments) = tokenize(value);
    Parser {
        tokens,
        comments,
        pos: 0,
    }
    .list()
}

/// Bytes that end a word.
const SPECIALS: &[u8] = b"()<>,:;@\"[";

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the value into tokens; comments are returned apart, each with the index
/// of the token that follows it (a trailing comment names an address without a
/// display name: `joe@example.com (Joe)`).
fn tokenize(value: &[u8]) -> (Vec<Token>, Vec<(usize, Vec<u8>)>) {
    let mut tokens = Vec::new();
    let mut comments = Vec::new();
    let mut pos = 0;
    let mut spaced = false;
    while pos < value.len() {
        let b = value[pos];
        if is_blank(b) {
            spaced = true;
            pos += 1;
            continue;
        }
        let (kind, text, next) = match b {
            b'(' => {
                let (text, next) = comment(value, pos);
                comments.push((tokens.len(), text));
                spaced = true;
                pos = next;
                continue;
            }
            b'"' => {
                let (text, next) = quoted(value, pos);
                (Kind::Quoted, text, next)
            }
            b'[' => {
                let next = value[pos..]
                    .iter()
                    .position(|&b| b == b']')
                    .map_or(value.len(), |at| pos + at + 1);
                (Kind::DomainLiteral, value[pos..next].to_vec(), next)
            }
            b'<' | b'>' | b',' | b':' | b';' | b'@' => (Kind::Special(b), vec![b], pos + 1),
            // Anything else starts a word, a stray ')' included; a word is never empty
            // so the loop always moves on.
            _ => {
                let next = value[pos + 1..]
                    .iter()
                    .position(|&b| is_blank(b) || SPECIALS.contains(&b))
                    .map_or(value.len(), |at| pos + 1 + at);
                (Kind::Word, value[pos..next].to_vec(), next)
            }
        };
        tokens.push(Token { kind, text, spaced });
        spaced = false;
        pos = next;
    }
    (tokens, comments)
}

/// A comment starting at `value[start] == '('`, nested comments included; returns
/// its text (unescaped, trimmed) and where it ends. An unclosed comment runs to the
/// end.
fn comment(value: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut depth = 0usize;
    let mut text = Vec::new();
    let mut pos = start;
    while pos < value.len() {
        let b = value[pos];
        pos += 1;
        match b {
            b'\\' if pos < value.len() => {
                text.push(value[pos]);
                pos += 1;
            }
            b'(' => {
                if depth > 0 {
                    text.push(b);
                }
                depth += 1;
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
                text.push(b);
            }
            _ => text.push(b),
        }
    }
    (super::header::trim(&text).to_vec(), pos)
}

/// A quoted string starting at `value[start] == '"'`: its content without the
/// escapes, and where it ends. An unclosed one runs to the end.
fn quoted(value: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut text = Vec::new();
    let mut pos = start + 1;
    while pos < value.len() {
        let b = value[pos];
        pos += 1;
        match b {
            b'\\' if pos < value.len() => {
                text.push(value[pos]);
                pos += 1;
            }
            b'"' => break,
            _ => text.push(b),
        }
    }
    (text, pos)
}

struct Parser {
    tokens: Vec<Token>,
    comments: Vec<(usize, Vec<u8>)>,
    pos: usize,
}

impl Parser {
    fn list(mut self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut in_group = false;
        while self.pos < self.tokens.len() {
            let start = self.pos;
            let stop = self.skip_until(|b| matches!(b, b'<' | b':' | b',' | b';'));
            let phrase = start..self.pos;
            self.pos += 1; // past the stop character (or past the end)
            match stop {
                Some(b'<') => {
                    let mailbox = self.angle_address(phrase);
                    items.extend(mailbox.map(Item::Mailbox));
                    if self.skip_until(|b| matches!(b, b',' | b';')) == Some(b';') && in_group {
                        items.push(Item::GroupEnd);
                        in_group = false;
                    }
                    self.pos += 1;
                }
                Some(b':') if !in_group => {
                    items.push(Item::GroupStart(self.phrase_text(phrase)));
                    in_group = true;
                }
                Some(b';') => {
                    items.extend(self.bare_address(phrase).map(Item::Mailbox));
                    if in_group {
                        items.push(Item::GroupEnd);
                        in_group = false;
                    }
                }
                _ => items.extend(self.bare_address(phrase).map(Item::Mailbox)),
            }
        }
        if in_group {
            items.push(Item::GroupEnd);
        }
        items
    }

    /// Moves to the next special token accepted by `stop` and returns it, or moves to
    /// the end and returns `None`.
    fn skip_until(&mut self, stop: impl Fn(u8) -> bool) -> Option<u8> {
        while let Some(token) = self.tokens.get(self.pos) {
            if let Kind::Special(b) = token.kind
                && stop(b)
            {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// `phrase <route:local@domain>`; `self.pos` is just past the `<`.
    fn angle_address(&mut self, phrase: std::ops::Range<usize>) -> Option<Mailbox> {
        let start = self.pos;
        self.skip_until(|b| b == b'>');
        let inside = start..self.pos.min(self.tokens.len());
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        let name = Some(self.phrase_text(phrase)).filter(|name| !name.is_empty());
        let tokens = &self.tokens[inside];
        if tokens.is_empty() && name.is_none() {
            // `<>` alone (a null return path) is no address at all.
            return None;
        }
        let route_end = tokens.iter().position(|t| t.kind == Kind::Special(b':'));
        let (adl, spec) = match route_end {
            Some(colon) => (Some(concat(&tokens[..colon])), &tokens[colon + 1..]),
            None => (None, tokens),
        };
        let (mailbox, host) = addr_spec(spec);
        Some(Mailbox {
            name,
            adl: adl.filter(|adl| !adl.is_empty()),
            mailbox,
            host,
        })
    }

    /// An address without angle brackets: `local@domain`, perhaps after stray words
    /// (`John joe@example.com`) that then serve as its name, or named by a comment.
    fn bare_address(&self, phrase: std::ops::Range<usize>) -> Option<Mailbox> {
        let tokens = &self.tokens[phrase.clone()];
        if tokens.is_empty() {
            return None;
        }
        let at = tokens.iter().position(|t| t.kind == Kind::Special(b'@'));
        // The local part is the run of unspaced tokens just before the '@'.
        let local_start = match at {
            Some(at) => (0..at)
                .rev()
                .find(|&i| tokens[i].spaced)
                .unwrap_or(0)
                .min(at),
            None => tokens.len() - 1,
        };
        let (mailbox, host) = addr_spec(&tokens[local_start..]);
        let words = self.phrase_text(phrase.start..phrase.start + local_start);
        let name = if words.is_empty() {
            self.comment_name(phrase)
        } else {
            Some(words)
        };
        Some(Mailbox {
            name,
            adl: None,
            mailbox,
            host,
        })
    }

    /// The last comment inside or just after the tokens of `range`.
    fn comment_name(&self, range: std::ops::Range<usize>) -> Option<Vec<u8>> {
        self.comments
            .iter()
            .filter(|(before, _)| *before > range.start && *before <= range.end)
            .map(|(_, text)| text.clone())
            .rfind(|text| !text.is_empty())
    }

    /// The words of a display name joined by single spaces, quotes removed.
    fn phrase_text(&self, range: std::ops::Range<usize>) -> Vec<u8> {
        let mut text = Vec::new();
        for (i, token) in self.tokens[range].iter().enumerate() {
            if i > 0 && token.spaced {
                text.push(b' ');
            }
            text.extend_from_slice(&token.text);
        }
        text
    }
}

/// `local@domain` from tokens; a missing part gets its placeholder.
fn addr_spec(tokens: &[Token]) -> (Vec<u8>, Vec<u8>) {
    let at = tokens.iter().position(|t| t.kind == Kind::Special(b'@'));
    let (local, domain) = match at {
        Some(at) => (&tokens[..at], &tokens[at + 1..]),
        None => (tokens, &tokens[..0]),
    };
    let local = local_part(local);
    let domain = concat(domain);
    (
        if local.is_empty() {
            MISSING_MAILBOX.to_vec()
        } else {
            local
        },
        if domain.is_empty() {
            MISSING_DOMAIN.to_vec()
        } else {
            domain
        },
    )
}

/// The local part as it must be written in an address: a quoted string keeps (or
/// regains) its quotes when its content is not a dot-atom.
fn local_part(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for token in tokens {
        match token.kind {
            Kind::Quoted if !is_dot_atom(&token.text) => {
                out.push(b'"');
                for &b in &token.text {
                    if b == b'"' || b == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
            _ => out.extend_from_slice(&token.text),
        }
    }
    out
}

fn is_dot_atom(text: &[u8]) -> bool {
    !text.is_empty()
        && !text.starts_with(b".")
        && !text.ends_with(b".")
        && !text.windows(2).any(|w| w == b"..")
        && text.iter().all(|&b| {
            b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
        })
}

/// Token texts glued together without spaces (domains, routes).
fn concat(tokens: &[Token]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.text.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: Option<&str>, mailbox: &str, host: &str) -> Item {
        Item::Mailbox(Mailbox {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.as_bytes().to_vec(),
            host: host.as_bytes().to_vec(),
        })
    }

    #[test]
    fn plain_address() {
        assert_eq!(
            parse_list(b"joe@example.com"),
            [mailbox(None, "joe", "example.com")]
        );
    }

    #[test]
    fn name_and_angle_address() {
        assert_eq!(
            parse_list(b"Joe Q. Public <john.q.public@example.com>"),
            [mailbox(
                Some("Joe Q. Public"),
                "john.q.public",
                "example.com"
            )]
        );
    }

    #[test]
    fn quoted_name_loses_quotes_and_escapes() {
        assert_eq!(
            parse_list(br#""Smith, \"Jo\" \\ Jr." <jo@example.com>"#),
            [mailbox(Some(r#"Smith, "Jo" \ Jr."#), "jo", "example.com")]
        );
    }

    #[test]
    fn encoded_words_stay_raw() {
        assert_eq!(
            parse_list(b"=?UTF-8?Q?J=C3=B6rg?= <j@example.com>"),
            [mailbox(Some("=?UTF-8?Q?J=C3=B6rg?="), "j", "example.com")]
        );
    }

    #[test]
    fn several_addresses() {
        assert_eq!(
            parse_list(b"a@x.org, B <b@y.org>,c@z.org"),
            [
                mailbox(None, "a", "x.org"),
                mailbox(Some("B"), "b", "y.org"),
                mailbox(None, "c", "z.org"),
            ]
        );
    }

    #[test]
    fn group_with_members() {
        assert_eq!(
            parse_list(b"A Group: Ed <ed@x.org>, joe@y.org; , last@z.org"),
            [
                Item::GroupStart(b"A Group".to_vec()),
                mailbox(Some("Ed"), "ed", "x.org"),
                mailbox(None, "joe", "y.org"),
                Item::GroupEnd,
                mailbox(None, "last", "z.org"),
            ]
        );
    }

    #[test]
    fn empty_group() {
        assert_eq!(
            parse_list(b"undisclosed-recipients:;"),
            [
                Item::GroupStart(b"undisclosed-recipients".to_vec()),
                Item::GroupEnd
            ]
        );
    }

    #[test]
    fn unclosed_group_is_closed() {
        assert_eq!(
            parse_list(b"G: a@x.org"),
            [
                Item::GroupStart(b"G".to_vec()),
                mailbox(None, "a", "x.org"),
                Item::GroupEnd
            ]
        );
    }

    #[test]
    fn comment_names_an_address_without_display_name() {
        assert_eq!(
            parse_list(b"joe@example.com (Joe Bloggs)"),
            [mailbox(Some("Joe Bloggs"), "joe", "example.com")]
        );
    }

    #[test]
    fn comments_elsewhere_are_ignored() {
        assert_eq!(
            parse_list(b"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            [mailbox(Some("Pete"), "pete", "silly.test")]
        );
    }

    #[test]
    fn source_route_goes_to_adl() {
        let items = parse_list(b"<@a.example,@b.example:joe@c.example>");
        let Item::Mailbox(m) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(m.adl.as_deref(), Some(&b"@a.example,@b.example"[..]));
        assert_eq!(m.mailbox, b"joe");
        assert_eq!(m.host, b"c.example");
    }

    #[test]
    fn missing_parts_get_placeholders() {
        assert_eq!(parse_list(b"joe"), [mailbox(None, "joe", "MISSING_DOMAIN")]);
        assert_eq!(
            parse_list(b"Joe <@example.com>"),
            [mailbox(Some("Joe"), "MISSING_MAILBOX", "example.com")]
        );
    }

    #[test]
    fn null_path_is_skipped() {
        assert_eq!(parse_list(b"<>"), []);
        assert_eq!(parse_list(b""), []);
        assert_eq!(parse_list(b" , ,"), []);
    }

    #[test]
    fn stray_words_before_bare_address_become_the_name() {
        assert_eq!(
            parse_list(b"John Smith john@example.com"),
            [mailbox(Some("John Smith"), "john", "example.com")]
        );
    }

    #[test]
    fn quoted_local_part_keeps_quotes_when_needed() {
        assert_eq!(
            parse_list(br#""john doe"@example.com"#),
            [mailbox(None, "\"john doe\"", "example.com")]
        );
        assert_eq!(
            parse_list(br#""john"@example.com"#),
            [mailbox(None, "john", "example.com")]
        );
    }

    #[test]
    fn unclosed_quotes_brackets_and_comments_do_not_panic() {
        for input in [
            &b"\"unclosed"[..],
            b"(unclosed",
            b"<unclosed@x",
            b"[unclosed",
            b"a@[1.2.3.4",
            b")",
            b"a)b <c)@d)>",
            b"\\",
            b"\"\\",
            b"(\\",
            b":;:;<>@@,,",
            b">>>",
        ] {
            let _ = parse_list(input);
        }
    }

    #[test]
    fn eight_bit_names_are_kept_as_bytes() {
        assert_eq!(
            parse_list(b"J\xc3\xb6rg <j@x.de>"),
            [Item::Mailbox(Mailbox {
                name: Some(b"J\xc3\xb6rg".to_vec()),
                adl: None,
                mailbox: b"j".to_vec(),
                host: b"x.de".to_vec(),
            })]
        );
    }

    #[test]
    fn domain_literal() {
        assert_eq!(
            parse_list(b"joe@[192.0.2.1]"),
            [mailbox(None, "joe", "[192.0.2.1]")]
        );
    }
}
