//! One SMTP transaction as the milter sees it, assembled from the milter callbacks.

use lifeboat_mailstore::Address;

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
    max_size: u64,
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
    /// when the MTA kept it.
    pub fn add_header(&mut self, name: &[u8], value: &[u8]) {
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
