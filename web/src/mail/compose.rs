//! New messages: replies and forwards prefilled from the original, and the message
//! built from the compose form with mail-builder (for sending and for Drafts).

use lifeboat_servers::imap::mime::header_field;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as HeaderAddress;
use mail_builder::headers::text::Text;

use super::addresses::{self, Named};
use super::view;
use crate::pages::ComposeForm;

/// A file to attach.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub filename: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// Everything a message is built from.
#[derive(Clone, Debug, Default)]
pub struct Outgoing {
    pub from: Named,
    pub to: Vec<Named>,
    pub cc: Vec<Named>,
    pub bcc: Vec<Named>,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// A message attached whole (forward as attachment): its bytes and subject.
    pub attached_message: Option<(Vec<u8>, String)>,
    /// Kept in the Bcc: field (drafts only; a sent message never shows its Bcc).
    pub keep_bcc: bool,
}

fn header_addresses(list: &[Named]) -> HeaderAddress<'static> {
    let items: Vec<HeaderAddress<'static>> = list
        .iter()
        .map(|n| match &n.name {
            Some(name) => HeaderAddress::from((name.clone(), n.address.clone())),
            None => HeaderAddress::from(n.address.clone()),
        })
        .collect();
    HeaderAddress::new_list(items)
}

/// Builds the message (CRLF line ends, MIME when there are attachments).
pub fn build(outgoing: &Outgoing, hostname: &str) -> std::io::Result<Vec<u8>> {
    let message_id = format!("{:032x}@{hostname}", rand::random::<u128>());
    let mut builder = MessageBuilder::new()
        .from(header_addresses(std::slice::from_ref(&outgoing.from)))
        .subject(outgoing.subject.clone())
        .message_id(message_id)
        .date(chrono::Utc::now().timestamp())
        .header("User-Agent", Text::new("Lifeboat web"))
        .text_body(outgoing.body.replace("\r\n", "\n"));
    if !outgoing.to.is_empty() {
        builder = builder.to(header_addresses(&outgoing.to));
    }
    if !outgoing.cc.is_empty() {
        builder = builder.cc(header_addresses(&outgoing.cc));
    }
    if outgoing.keep_bcc && !outgoing.bcc.is_empty() {
        builder = builder.bcc(header_addresses(&outgoing.bcc));
    }
    if let Some(id) = &outgoing.in_reply_to {
        builder = builder.in_reply_to(id.clone());
    }
    if !outgoing.references.is_empty() {
        builder = builder.references(outgoing.references.clone());
    }
    for file in &outgoing.attachments {
        builder = builder.attachment(
            file.media_type.clone(),
            file.filename.clone(),
            file.bytes.clone(),
        );
    }
    if let Some((bytes, subject)) = &outgoing.attached_message {
        let name = super::names::safe(&format!("{subject}.eml"), "message.eml");
        builder = builder.attachment("message/rfc822", name, bytes.clone());
    }
    builder.write_to_vec()
}

/// Message-IDs in a header value, without angle brackets.
fn ids(value: &str) -> Vec<String> {
    value
        .split(['<', '>', ' ', '\t', ',', '\r', '\n'])
        .filter(|s| s.contains('@'))
        .map(str::to_string)
        .collect()
}

fn first(message: &[u8], name: &str) -> String {
    header_field(message, name)
        .into_iter()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn join(list: &[Named]) -> String {
    list.iter()
        .map(Named::display)
        .collect::<Vec<_>>()
        .join(", ")
}

fn prefixed(prefix: &str, subject: &str) -> String {
    let lower = subject.to_ascii_lowercase();
    if lower.starts_with(&prefix.to_ascii_lowercase()) {
        subject.to_string()
    } else {
        format!("{prefix} {subject}")
    }
}

fn quoted_body(original: &[u8]) -> String {
    let view = view::view(original);
    let text = view
        .text
        .or_else(|| view.html.as_deref().map(super::sanitize::to_text))
        .unwrap_or_default();
    text.replace("\r\n", "\n")
}

/// A reply (`all`: to everyone the original went to, except the user's own
/// addresses). `own` holds the user's address and aliases, lower case.
pub fn reply(original: &[u8], own: &[String], all: bool) -> ComposeForm {
    let is_own = |n: &Named| own.contains(&n.address.to_ascii_lowercase());
    let reply_to = addresses::field(original, "Reply-To");
    let mut to = if reply_to.is_empty() {
        addresses::field(original, "From")
    } else {
        reply_to
    };
    let mut cc = Vec::new();
    if all {
        to.extend(addresses::field(original, "To"));
        cc = addresses::field(original, "Cc");
    }
    let mut seen: Vec<String> = Vec::new();
    let mut keep = |n: &Named| {
        let key = n.address.to_ascii_lowercase();
        let fresh = !is_own(n) && !seen.contains(&key);
        seen.push(key);
        fresh
    };
    to.retain(&mut keep);
    cc.retain(&mut keep);
    let message_id = first(original, "Message-ID");
    let mut references = ids(&first(original, "References"));
    references.extend(ids(&message_id));
    let sender = addresses::field(original, "From")
        .first()
        .map(Named::display)
        .unwrap_or_default();
    let date = first(original, "Date");
    let quoted: String = quoted_body(original)
        .lines()
        .map(|line| format!("> {line}\n"))
        .collect();
    ComposeForm {
        to: join(&to),
        cc: join(&cc),
        subject: prefixed("Re:", &view::subject(original)),
        body: format!("\n\nOn {date}, {sender} wrote:\n{quoted}"),
        in_reply_to: ids(&message_id).into_iter().next().unwrap_or_default(),
        references: references.join(" "),
        ..ComposeForm::default()
    }
}

/// A forward with the original's text quoted in the body (its attachments are
/// offered to keep by the caller).
pub fn forward_inline(original: &[u8]) -> ComposeForm {
    let mut header = String::from("\n\n---------- Forwarded message ----------\n");
    for (label, value) in view::headers(original) {
        header.push_str(&format!("{label}: {value}\n"));
    }
    header.push_str(&format!("Subject: {}\n\n", view::subject(original)));
    ComposeForm {
        subject: prefixed("Fwd:", &view::subject(original)),
        body: header + &quoted_body(original),
        ..ComposeForm::default()
    }
}

/// A forward with the original attached whole.
pub fn forward_attached(original: &[u8]) -> ComposeForm {
    ComposeForm {
        subject: prefixed("Fwd:", &view::subject(original)),
        ..ComposeForm::default()
    }
}

/// The form as a stored draft would refill it.
pub fn from_draft(draft: &[u8]) -> ComposeForm {
    let list = |name| join(&addresses::field(draft, name));
    let subject = first(draft, "Subject");
    ComposeForm {
        from: addresses::field(draft, "From")
            .first()
            .map(|n| n.address.clone())
            .unwrap_or_default(),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        subject,
        body: view::view(draft)
            .text
            .unwrap_or_default()
            .replace("\r\n", "\n"),
        in_reply_to: ids(&first(draft, "In-Reply-To"))
            .into_iter()
            .next()
            .unwrap_or_default(),
        references: ids(&first(draft, "References")).join(" "),
        ..ComposeForm::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &[u8] = b"From: Bob <bob@else.test>\r\nTo: alice@example.test, carol@example.test\r\nCc: dave@else.test, Alice Two <sales@example.test>\r\nSubject: Plans\r\nMessage-ID: <m1@else.test>\r\nReferences: <m0@else.test>\r\nDate: Wed, 25 Nov 2026 10:42:00 +0000\r\n\r\nLine one\r\nLine two\r\n";

    fn own() -> Vec<String> {
        vec!["alice@example.test".into(), "sales@example.test".into()]
    }

    #[test]
    fn reply_and_reply_all_address_the_right_people() {
        let one = reply(ORIGINAL, &own(), false);
        assert_eq!(one.to, "Bob <bob@else.test>");
        assert_eq!(one.cc, "");
        assert_eq!(one.subject, "Re: Plans");
        assert_eq!(one.in_reply_to, "m1@else.test");
        assert_eq!(one.references, "m0@else.test m1@else.test");
        assert!(one.body.contains("> Line two"));
        let all = reply(ORIGINAL, &own(), true);
        assert_eq!(all.to, "Bob <bob@else.test>, carol@example.test");
        assert_eq!(
            all.cc, "dave@else.test",
            "own addresses and aliases are left out"
        );
    }

    #[test]
    fn forwards_and_built_messages() {
        let inline = forward_inline(ORIGINAL);
        assert_eq!(inline.subject, "Fwd: Plans");
        assert!(
            inline.body.contains("From: Bob <bob@else.test>") && inline.body.contains("Line one")
        );
        let outgoing = Outgoing {
            from: Named {
                name: None,
                address: "alice@example.test".into(),
            },
            to: addresses::typed("Bob <bob@else.test>").unwrap(),
            bcc: addresses::typed("secret@else.test").unwrap(),
            subject: "Fwd: Plans".into(),
            body: "see attached\n".into(),
            attachments: vec![Attachment {
                filename: "Grüße.txt".into(),
                media_type: "text/plain".into(),
                bytes: b"hello".to_vec(),
            }],
            attached_message: Some((ORIGINAL.to_vec(), "Plans".into())),
            ..Outgoing::default()
        };
        let built = build(&outgoing, "lifeboat.test").unwrap();
        let text = String::from_utf8_lossy(&built);
        assert!(
            text.contains("From: <alice@example.test>")
                || text.contains("From: alice@example.test"),
            "{text}"
        );
        assert!(
            !text.contains("secret@else.test"),
            "Bcc never shows in a sent message"
        );
        assert!(text.contains("message/rfc822"));
        let view = view::view(&built);
        assert_eq!(view.attachments.len(), 2, "{:?}", view.attachments);
        assert_eq!(view.attachments[0].filename, "Grüße.txt");
        let draft = from_draft(
            &build(
                &Outgoing {
                    keep_bcc: true,
                    ..outgoing
                },
                "h",
            )
            .unwrap(),
        );
        assert_eq!(draft.bcc, "secret@else.test");
        assert_eq!(draft.to, "Bob <bob@else.test>");
    }
}
