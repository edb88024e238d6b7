//! Address lists from headers and from what users type, read with the IMAP server's
//! RFC 5322 address parser (`imap::mime::address`).

use lifeboat_mailstore::Address;
use lifeboat_servers::imap::mime::address::{Item, parse_list};
use lifeboat_servers::imap::mime::{decode_words, header};

/// One mailbox of an address list: its display name (encoded-words decoded) and
/// address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Named {
    pub name: Option<String>,
    pub address: String,
}

impl Named {
    /// `Name <address>`, or the address alone.
    pub fn display(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} <{}>", self.address),
            None => self.address.clone(),
        }
    }

    /// The name, or the address when there is none (message lists).
    pub fn short(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.address)
    }
}

/// The mailboxes of every field `name` in a message (or header) (groups flattened).
pub fn field(message: &[u8], name: &str) -> Vec<Named> {
    let head = &message[..header::body_start(message)];
    header::all_values(head, name)
        .iter()
        .flat_map(|value| list(value))
        .collect()
}

/// The mailboxes of one address-list value.
pub fn list(value: &[u8]) -> Vec<Named> {
    parse_list(value)
        .into_iter()
        .filter_map(|item| match item {
            Item::Mailbox(mailbox) => Some(mailbox),
            _ => None,
        })
        .filter(|m| !m.mailbox.is_empty() && !m.host.is_empty())
        .map(|m| Named {
            name: m
                .name
                .map(|n| decode_words(&n))
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
            address: format!(
                "{}@{}",
                String::from_utf8_lossy(&m.mailbox),
                String::from_utf8_lossy(&m.host)
            ),
        })
        .collect()
}

/// Addresses typed in a To/Cc/Bcc field (comma separated, `Name <a@b>` allowed).
/// The error names the first that is not an address.
pub fn typed(text: &str) -> Result<Vec<Named>, String> {
    let mut found = Vec::new();
    for piece in split_outside_quotes(text) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let parsed = list(piece.as_bytes());
        match parsed.as_slice() {
            [one] if Address::parse(&one.address).is_ok() => found.push(one.clone()),
            _ => return Err(format!("“{piece}” is not an email address.")),
        }
    }
    Ok(found)
}

/// Splits at commas and semicolons that are not inside a quoted name.
fn split_outside_quotes(text: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                pieces.last_mut().unwrap().push(c);
            }
            ',' | ';' if !quoted => pieces.push(String::new()),
            _ => pieces.last_mut().unwrap().push(c),
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_decode_names() {
        let message = b"From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.test>\r\nTo: a@x.test, \"B, C\" <b@x.test>\r\n\r\nbody";
        let from = field(message, "From");
        assert_eq!(from[0].name.as_deref(), Some("Jürgen"));
        assert_eq!(from[0].display(), "Jürgen <j@example.test>");
        let to = field(message, "To");
        assert_eq!(to.len(), 2);
        assert_eq!(to[1].name.as_deref(), Some("B, C"));
    }

    #[test]
    fn typed_addresses_are_checked() {
        let typed_ok = typed("a@x.test, \"Bee, Queen\" <b@x.test>; c@y.test").unwrap();
        assert_eq!(typed_ok.len(), 3);
        assert_eq!(typed_ok[1].address, "b@x.test");
        assert!(typed("not an address").is_err());
        assert!(typed("").unwrap().is_empty());
    }
}
