//! One SMTP transaction as the milter sees it, assembled from the milter callbacks.

use lifeboat_mailstore::Address;
use lifeboat_mailstore::class::HEADER_PREFIX;

/// An envelope recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address exactly as Postfix passed it (what DELRCPT must name).
    pub raw: String,
    /// `None` when the address is not one Lifeboat could ever protect.
    pub address: Option<Address>,
    /// Postfix's `{rcpt_mailer}`: the transport it resolved the recipient to.
    pub mailer: Option<String>,
    /// Postfix's `{rcpt_host}`: the next hop.
    pub host: Option<String>,
}

impl Recipient {
    pub fn new(raw: &str, mailer: Option<String>, host: Option<String>) -> Recipient {
        Recipient {
            raw: raw.to_string(),
            address: Address::parse(raw).ok(),
            mailer,
            host,
        }
    }

    /// Postfix will not deliver to this recipient anyway (its transport rejects or drops).
    pub fn is_dropped_by_postfix(&self) -> bool {
        matches!(self.mailer.as_deref(), Some("error" | "discard"))
    }
}

/// The message being received: envelope, header section and body.
#[derive(Debug, Default)]
pub struct Message {
    /// Envelope sender without angle brackets (`""` for the null sender).
    pub sender: String,
    pub recipients: Vec<Recipient>,
    /// Header fields as `name:value\r\n`, in order.
    pub header: Vec<u8>,
    pub body: Vec<u8>,
    /// Set once the message grew past the size limit; its bytes are then dropped.
    pub oversize: bool,
    /// `X-Lifeboat-*` fields the sender wrote, to be removed (docs/design.md §4.6).
    pub foreign_fields: Vec<ForeignField>,
    /// Postfix's queue id (macro `i` at end of message).
    pub queue_id: Option<String>,
    max_size: u64,
}

/// A header field named like one of Lifeboat's, which only Lifeboat may write: the
/// milter deletes it with CHGHEADER, which names a field by its name and its index among
/// the fields of that name (from 1, names compared without case, as Postfix does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignField {
    pub name: String,
    pub index: i32,
}

impl Message {
    pub fn new(sender: &str, max_size: u64) -> Message {
        Message {
            sender: sender
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string(),
            max_size,
            ..Message::default()
        }
    }

    /// Adds a header field. `value` is the text after the colon, with its leading space
    /// when the MTA kept it. An `X-Lifeboat-*` field is not kept: it is noted for
    /// removal, so neither the copies nor what Postfix delivers carry a sender's mark.
    pub fn add_header(&mut self, name: &[u8], value: &[u8]) {
        let prefix = HEADER_PREFIX.as_bytes();
        if name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix) {
            let name = String::from_utf8_lossy(name).into_owned();
            let index = 1 + self
                .foreign_fields
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(&name))
                .count() as i32;
            self.foreign_fields.push(ForeignField { name, index });
            return;
        }
        let mut field = Vec::with_capacity(name.len() + value.len() + 3);
        field.extend_from_slice(name);
        field.push(b':');
        field.extend_from_slice(value);
        field.extend_from_slice(b"\r\n");
        self.append(Part::Header, &field);
    }

    pub fn add_body(&mut self, chunk: &[u8]) {
        self.append(Part::Body, chunk);
    }

    fn append(&mut self, part: Part, bytes: &[u8]) {
        if self.oversize {
            return;
        }
        if (self.header.len() + self.body.len() + bytes.len()) as u64 > self.max_size {
            // Keep nothing: the message will be left with Postfix, so memory is not held.
            self.oversize = true;
            self.header = Vec::new();
            self.body = Vec::new();
            return;
        }
        match part {
            Part::Header => self.header.extend_from_slice(bytes),
            Part::Body => self.body.extend_from_slice(bytes),
        }
    }

    /// The whole message with `extra` header fields appended to the header section, as
    /// Postfix's own add-header action does.
    pub fn content_with(&self, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header.len() + self.body.len() + 64);
        out.extend_from_slice(&self.header);
        for (name, value) in extra {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// The first header field `name` (unfolded), for the log. Reads the header section
    /// only, without copying the message.
    pub fn header_value(&self, name: &str) -> Option<String> {
        lifeboat_mailstore::deliver::header_value(&self.header, name)
    }
}

enum Part {
    Header,
    Body,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_keeps_header_order_and_appends_extra_fields() {
        let mut m = Message::new("<a@b.test>", 1000);
        m.add_header(b"Subject", b" hello");
        m.add_header(b"X-Folded", b" one\r\n\ttwo");
        m.add_body(b"body\r\n");
        assert_eq!(m.sender, "a@b.test");
        assert_eq!(
            m.content_with(&[("X-Lifeboat-ID", "abc")]),
            b"Subject: hello\r\nX-Folded: one\r\n\ttwo\r\nX-Lifeboat-ID: abc\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn header_value_reads_the_header_section_only() {
        let mut m = Message::new("<a@b.test>", 1000);
        m.add_header(b"Message-ID", b" <m1@b.test>");
        m.add_body(b"Message-ID: <body@b.test>\r\n");
        assert_eq!(m.header_value("message-id").as_deref(), Some("<m1@b.test>"));
        assert_eq!(m.header_value("Subject"), None);
    }

    #[test]
    fn lifeboat_fields_from_outside_are_counted_per_name_and_left_out() {
        let mut m = Message::new("<a@b.test>", 1000);
        m.add_header(b"X-Lifeboat-ID", b" forged");
        m.add_header(b"Subject", b" s");
        m.add_header(b"x-lifeboat-id", b" forged too");
        m.add_header(b"X-Lifeboat-Sent", b" yes");
        m.add_header(b"X-Lifeboatish", b" kept");
        let field = |name: &str, index| ForeignField {
            name: name.into(),
            index,
        };
        assert_eq!(
            m.foreign_fields,
            [
                field("X-Lifeboat-ID", 1),
                field("x-lifeboat-id", 2),
                field("X-Lifeboat-Sent", 1)
            ]
        );
        assert_eq!(m.header, b"Subject: s\r\nX-Lifeboatish: kept\r\n");
    }

    #[test]
    fn oversize_message_drops_its_bytes() {
        let mut m = Message::new("<>", 20);
        m.add_header(b"Subject", b" 0123456789");
        m.add_body(b"0123456789");
        assert!(m.oversize);
        assert!(m.header.is_empty() && m.body.is_empty());
        m.add_body(b"x");
        assert!(m.body.is_empty());
    }
}
