//! LIST as RFC 5258 (LIST-EXTENDED) extends it, with RFC 5819's STATUS return option
//! (LIST-STATUS) and RFC 6154's SPECIAL-USE options: the command as the server runs it
//! ([`ListCommand`], LSUB too), and the parse of the extended syntax.
//!
//! imap-codec parses only RFC 3501's `LIST reference pattern` (its `ext_list_extended`
//! feature brings types for response items and no parser: no options, no pattern list),
//! so a message it refuses that is a LIST gets a second look here ([`parse`]). An option
//! not known here is a parse failure, so the client gets the BAD RFC 5258 §3 asks for.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

/// A LIST or LSUB, in whichever syntax it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCommand {
    pub tag: Tag<'static>,
    /// LSUB (RFC 3501 §6.3.9) rather than LIST.
    pub lsub: bool,
    /// The reference and the patterns as the client wrote them (modified UTF-7).
    pub reference: String,
    pub patterns: Vec<String>,
    /// Written in RFC 5258's syntax (options, or patterns in parentheses): an empty
    /// pattern then matches nothing rather than asking for the delimiter, and the
    /// responses may carry extended data (CHILDINFO).
    pub extended: bool,
    pub select: Selection,
    pub returns: Returns,
}

/// Selection options (RFC 5258 §3.1, RFC 6154 §5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Subscribed names only (a base option).
    pub subscribed: bool,
    /// Mailboxes with a special-use attribute only (a base option).
    pub special_use: bool,
    /// Remote mailboxes too: there are none here, so it changes nothing.
    pub remote: bool,
    /// Parents that do not meet the base options but hold a mailbox that does, with
    /// CHILDINFO saying so.
    pub recursive_match: bool,
}

/// Return options (RFC 5258 §3.2, RFC 5819, RFC 6154 §5.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Returns {
    /// `\Subscribed` on the names subscribed to.
    pub subscribed: bool,
    /// `\HasChildren` / `\HasNoChildren`: always given here (CHILDREN).
    pub children: bool,
    /// Special-use attributes: always given here.
    pub special_use: bool,
    /// STATUS after the LIST line of each selectable mailbox listed; empty: none.
    pub status: Vec<StatusDataItemName>,
}

impl Selection {
    /// The base options given, as CHILDINFO names them (RFC 5258 §6:
    /// `list-select-base-opt-quoted`).
    pub fn base_options(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.subscribed {
            names.push("SUBSCRIBED");
        }
        if self.special_use {
            names.push("SPECIAL-USE");
        }
        names
    }
}

impl ListCommand {
    /// RFC 3501's LIST or LSUB as imap-codec parsed it.
    pub fn basic(
        tag: Tag<'static>,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> ListCommand {
        let pattern = match pattern {
            ListMailbox::Token(token) => String::from_utf8_lossy(token.as_ref()).into_owned(),
            ListMailbox::String(string) => String::from_utf8_lossy(string.as_ref()).into_owned(),
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(other) => String::from_utf8_lossy(other.inner().as_ref()).into_owned(),
        };
        ListCommand {
            tag,
            lsub,
            reference,
            patterns: vec![pattern],
            extended: false,
            select: Selection::default(),
            returns: Returns::default(),
        }
    }
}

/// A whole command message (lines and literals as they came, the last line end
/// included) that is a LIST in RFC 5258's grammar:
///
/// ```abnf
/// list             = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
///                    [SP list-return-opts]
/// list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"
/// mbox-or-pat      = list-mailbox / "(" list-mailbox *(SP list-mailbox) ")"
/// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
/// return-option    = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE"
///                  / "STATUS" SP "(" status-att *(SP status-att) ")"
/// ```
///
/// `None` when it is not: an unknown option, or RECURSIVEMATCH without a base option
/// (RFC 5258 §3.1 has both answered BAD).
pub fn parse(message: &[u8]) -> Option<ListCommand> {
    let mut p = Parser {
        bytes: message,
        at: 0,
    };
    let tag = Tag::try_from(p.take_while(is_tag_char).to_vec()).ok()?;
    p.expect(b" ")?;
    p.keyword("LIST")?;
    p.expect(b" ")?;
    let mut extended = false;
    let mut select = Selection::default();
    let mut returns = Returns::default();
    if p.peek() == Some(b'(') {
        extended = true;
        p.options(|_, option| {
            match option.to_ascii_uppercase().as_slice() {
                b"SUBSCRIBED" => select.subscribed = true,
                b"SPECIAL-USE" => select.special_use = true,
                b"REMOTE" => select.remote = true,
                b"RECURSIVEMATCH" => select.recursive_match = true,
                _ => return None,
            }
            Some(())
        })?;
        if select.recursive_match && select.base_options().is_empty() {
            return None;
        }
        // RFC 5819 §3 writes `LIST (SUBSCRIBED RECURSIVEMATCH)"" %`: the space RFC
        // 5258's grammar wants after the options is not insisted on.
        let _ = p.expect(b" ");
    }
    let reference = p.astring()?;
    p.expect(b" ")?;
    let patterns = if p.peek() == Some(b'(') {
        extended = true;
        p.expect(b"(")?;
        let mut patterns = vec![p.list_mailbox()?];
        while p.expect(b" ").is_some() {
            patterns.push(p.list_mailbox()?);
        }
        p.expect(b")")?;
        patterns
    } else {
        vec![p.list_mailbox()?]
    };
    if p.expect(b" ").is_some() {
        extended = true;
        p.keyword("RETURN")?;
        p.expect(b" ")?;
        p.options(|p, option| {
            match option.to_ascii_uppercase().as_slice() {
                b"SUBSCRIBED" => returns.subscribed = true,
                b"CHILDREN" => returns.children = true,
                b"SPECIAL-USE" => returns.special_use = true,
                b"STATUS" => {
                    p.expect(b" ")?;
                    p.options(|_, item| {
                        let item = status_item(item)?;
                        if !returns.status.contains(&item) {
                            returns.status.push(item);
                        }
                        Some(())
                    })?;
                    if returns.status.is_empty() {
                        return None;
                    }
                }
                _ => return None,
            }
            Some(())
        })?;
    }
    p.line_end()?;
    if p.at != message.len() {
        return None;
    }
    // RFC 5258 §3.1 and RFC 6154 §5.1: a selection option implies its return option.
    returns.subscribed |= select.subscribed;
    returns.special_use |= select.special_use;
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    Some(ListCommand {
        tag,
        lsub: false,
        reference: text(reference),
        patterns: patterns.into_iter().map(text).collect(),
        extended,
        select,
        returns,
    })
}

/// The STATUS items LIST-STATUS takes: those STATUS answers.
fn status_item(name: &[u8]) -> Option<StatusDataItemName> {
    Some(match name.to_ascii_uppercase().as_slice() {
        b"MESSAGES" => StatusDataItemName::Messages,
        b"RECENT" => StatusDataItemName::Recent,
        b"UIDNEXT" => StatusDataItemName::UidNext,
        b"UIDVALIDITY" => StatusDataItemName::UidValidity,
        b"UNSEEN" => StatusDataItemName::Unseen,
        b"DELETED" => StatusDataItemName::Deleted,
        b"SIZE" => StatusDataItemName::Size,
        b"HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        _ => return None,
    })
}

/// RFC 3501 §9 `ATOM-CHAR`: any 7-bit character but the atom specials.
fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

/// `ASTRING-CHAR`: an atom character or `]`.
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `list-char`: an astring character or a wildcard.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }

    /// `expected` next, taken.
    fn expect(&mut self, expected: &[u8]) -> Option<()> {
        self.rest()
            .starts_with(expected)
            .then(|| self.at += expected.len())
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let length = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.at += length;
        &rest[..length]
    }

    /// An atom that is `word` in any case.
    fn keyword(&mut self, word: &str) -> Option<()> {
        let start = self.at;
        if self
            .take_while(is_atom_char)
            .eq_ignore_ascii_case(word.as_bytes())
        {
            Some(())
        } else {
            self.at = start;
            None
        }
    }

    /// A parenthesized list of atoms separated by single spaces, possibly empty; `each`
    /// takes an atom and may read what follows it (an option's value).
    fn options(&mut self, mut each: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.expect(b"(")?;
        if self.expect(b")").is_some() {
            return Some(());
        }
        loop {
            let atom = self.take_while(is_atom_char);
            if atom.is_empty() {
                return None;
            }
            each(self, atom)?;
            if self.expect(b")").is_some() {
                return Some(());
            }
            self.expect(b" ")?;
        }
    }

    /// `astring`: atom-like characters, or a string.
    fn astring(&mut self) -> Option<Vec<u8>> {
        let chars = self.take_while(is_astring_char);
        if chars.is_empty() {
            self.string()
        } else {
            Some(chars.to_vec())
        }
    }

    /// `list-mailbox`: list characters, or a string.
    fn list_mailbox(&mut self) -> Option<Vec<u8>> {
        let chars = self.take_while(is_list_char);
        if chars.is_empty() {
            self.string()
        } else {
            Some(chars.to_vec())
        }
    }

    /// `string`: quoted, or a literal (`{n}` or LITERAL+ `{n+}`, its line end, n bytes).
    fn string(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => None,
        }
    }

    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.expect(b"\"")?;
        let mut text = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(text);
                }
                b'\\' => {
                    let escaped = *self.bytes.get(self.at + 1)?;
                    if escaped != b'"' && escaped != b'\\' {
                        return None;
                    }
                    text.push(escaped);
                    self.at += 2;
                }
                b'\0' | b'\r' | b'\n' | 0x80.. => return None,
                b => {
                    text.push(b);
                    self.at += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Option<Vec<u8>> {
        self.expect(b"{")?;
        let digits = self.take_while(|b| b.is_ascii_digit());
        let length: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let _ = self.expect(b"+");
        self.expect(b"}")?;
        self.line_end()?;
        let bytes = self.rest().get(..length)?;
        if bytes.contains(&0) {
            return None;
        }
        self.at += length;
        Some(bytes.to_vec())
    }

    /// CRLF, or a bare LF as the server's input takes it.
    fn line_end(&mut self) -> Option<()> {
        self.expect(b"\r\n").or_else(|| self.expect(b"\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Option<ListCommand> {
        parse(line.as_bytes())
    }

    #[test]
    fn the_extended_forms_of_rfc_5258_5819_and_6154() {
        let list = parsed("A02 LIST (SUBSCRIBED) \"\" \"*\"\r\n").unwrap();
        assert_eq!(list.tag.as_ref(), "A02");
        assert!(list.extended && !list.lsub);
        assert_eq!(
            (list.reference.as_str(), &list.patterns[..]),
            ("", &["*".to_string()][..])
        );
        assert!(list.select.subscribed && list.returns.subscribed);

        let list = parsed("A03 list () \"\" \"%\" return (children)\r\n").unwrap();
        assert_eq!(list.select, Selection::default());
        assert!(list.returns.children && !list.returns.subscribed);

        let list = parsed("BBB LIST \"\" (\"INBOX\" \"Drafts\" Sent.%)\r\n").unwrap();
        assert!(list.extended);
        assert_eq!(list.patterns, ["INBOX", "Drafts", "Sent.%"]);

        let list = parsed(
            "A02 LIST (SUBSCRIBED RECURSIVEMATCH REMOTE) \"\" % RETURN (STATUS (MESSAGES \
             unseen SIZE messages) SPECIAL-USE)\r\n",
        )
        .unwrap();
        assert!(list.select.recursive_match && list.select.remote);
        assert!(list.returns.special_use);
        assert_eq!(
            list.returns.status,
            [
                StatusDataItemName::Messages,
                StatusDataItemName::Unseen,
                StatusDataItemName::Size
            ]
        );

        let list = parsed("A02 LIST (SUBSCRIBED)\"\" % RETURN (STATUS (MESSAGES))\r\n").unwrap();
        assert!(list.select.subscribed && list.patterns == ["%"]);

        let list = parsed("a1 LIST (SPECIAL-USE) \"\" *\r\n").unwrap();
        assert!(list.select.special_use && list.returns.special_use);

        // Literals, synchronizing or not, and a bare LF.
        let list = parsed("a1 LIST () {0}\r\n ({3+}\r\na.b {1}\r\n%)\n").unwrap();
        assert_eq!(
            (list.reference.as_str(), &list.patterns[..]),
            ("", &["a.b".to_string(), "%".to_string()][..])
        );

        // RFC 3501's syntax is LIST too, not extended.
        let list = parsed("a1 LIST \"\" \"\"\r\n").unwrap();
        assert!(!list.extended);
        assert_eq!(list.patterns, [""]);
        assert!(parsed("a1 LIST \"\" (\"\")\r\n").unwrap().extended);
        assert!(parsed("a1 LIST \"\" \"\" RETURN ()\r\n").unwrap().extended);
    }

    #[test]
    fn unknown_options_and_a_lone_recursivematch_are_not_lists() {
        for line in [
            "a1 LIST (RECURSIVEMATCH) \"\" *\r\n",
            "a1 LIST (REMOTE RECURSIVEMATCH) \"\" *\r\n",
            "a1 LIST (VENDOR-X) \"\" *\r\n",
            "a1 LIST \"\" * RETURN (METADATA)\r\n",
            "a1 LIST \"\" * RETURN (STATUS ())\r\n",
            "a1 LIST \"\" * RETURN (STATUS (MESSAGES BOGUS))\r\n",
            "a1 LIST \"\" * RETURN (STATUS)\r\n",
            "a1 LIST \"\" ()\r\n",
            "a1 LIST \"\" (a  b)\r\n",
            "a1 LIST  \"\" *\r\n",
            "a1 LIST \"\" *",
            "a1 LIST \"\" * \r\n",
            "a1 LIST \"\" *\r\nextra",
            "a1 LIST \"\" {5}\r\nab\r\n",
            "a1 LSUB (SUBSCRIBED) \"\" *\r\n",
            "a1 LISTX \"\" *\r\n",
            "+ LIST \"\" *\r\n",
            "a1 LIST \"\" \"a\\b\"\r\n",
            "a1 LIST \"\" \"\u{e9}\"\r\n",
        ] {
            assert_eq!(parsed(line), None, "{line:?}");
        }
        assert!(parsed("a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *\r\n").is_some());
        assert!(parsed("a1 LIST (SPECIAL-USE RECURSIVEMATCH) \"\" *\r\n").is_some());
    }
}
