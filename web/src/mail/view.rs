//! A stored message as the reading page shows it: the body text, the HTML body (not
//! yet sanitised), the attachments, and the parts addressed by number (`1.2`, IMAP's
//! numbering) or by Content-ID. Built on the IMAP server's MIME tree.

use lifeboat_servers::imap::mime::tree::{Content, Entity, parse};
use lifeboat_servers::imap::mime::{decode_text, decode_transfer, header_field};

use super::addresses;
use super::names;

/// An attachment as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Its part number (`2`, `1.3`).
    pub part: String,
    /// Safe to save under.
    pub filename: String,
    /// `type/subtype`.
    pub media_type: String,
    /// Decoded size (estimated from the transfer encoding).
    pub size: u64,
}

#[derive(Clone, Debug, Default)]
pub struct View {
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// Reads what the page shows from a whole message.
pub fn view(message: &[u8]) -> View {
    let root = parse(message);
    let mut view = View::default();
    walk(&root, "", &mut view);
    view
}

/// The header fields the page shows, decoded, in order (missing ones left out).
pub fn headers(message: &[u8]) -> Vec<(&'static str, String)> {
    let list = |name| {
        let named = addresses::field(message, name);
        (!named.is_empty()).then(|| {
            named
                .iter()
                .map(addresses::Named::display)
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let text = |name| header_field(message, name).into_iter().next();
    [
        ("From", list("From")),
        ("To", list("To")),
        ("Cc", list("Cc")),
        ("Reply-To", list("Reply-To")),
        ("Date", text("Date")),
    ]
    .into_iter()
    .filter_map(|(label, value)| Some((label, value?)))
    .collect()
}

/// The subject, decoded (or a placeholder).
pub fn subject(message: &[u8]) -> String {
    header_field(message, "Subject")
        .into_iter()
        .next()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no subject)".to_string())
}

fn child_id(parent: &str, index: usize) -> String {
    if parent.is_empty() {
        (index + 1).to_string()
    } else {
        format!("{parent}.{}", index + 1)
    }
}

fn walk(entity: &Entity<'_>, id: &str, view: &mut View) {
    match &entity.content {
        Content::Multipart(children) => {
            for (index, child) in children.iter().enumerate() {
                walk(child, &child_id(id, index), view);
            }
        }
        // An attached message is one attachment (saved as .eml), as mail apps show it.
        Content::Message(_) | Content::Leaf => {
            let part = if id.is_empty() { "1" } else { id };
            leaf(entity, part, view);
        }
    }
}

fn leaf(entity: &Entity<'_>, part: &str, view: &mut View) {
    let media = &entity.media;
    let declared = names::declared(entity);
    let disposition = lifeboat_servers::imap::mime::tree::content_disposition(entity.header)
        .map(|(kind, _)| kind);
    let is_attachment = disposition.as_deref() == Some("attachment") || declared.is_some();
    if !is_attachment && media.is("text", "plain") && view.text.is_none() {
        view.text = Some(decode_text(entity));
        return;
    }
    if !is_attachment && media.is("text", "html") && view.html.is_none() {
        view.html = Some(decode_text(entity));
        return;
    }
    let inline_image = media.kind == "image"
        && disposition.as_deref() != Some("attachment")
        && content_id(entity).is_some();
    if inline_image {
        // Shown in the HTML through its cid: URL, not listed.
        return;
    }
    let fallback = names::fallback(part, &media.kind, &media.subtype);
    let filename = match declared {
        Some(name) => names::safe(&name, &fallback),
        None if media.is("message", "rfc822") => {
            let inner_subject = subject(entity.body);
            names::safe(&format!("{inner_subject}.eml"), &fallback)
        }
        None => fallback,
    };
    view.attachments.push(Attachment {
        part: part.to_string(),
        filename,
        media_type: format!("{}/{}", media.kind, media.subtype),
        size: decoded_size(entity),
    });
}

fn decoded_size(entity: &Entity<'_>) -> u64 {
    let encoding = lifeboat_servers::imap::mime::header::first_value(
        entity.header,
        "Content-Transfer-Encoding",
    )
    .map(|v| String::from_utf8_lossy(&v).to_ascii_lowercase());
    let stored = entity.body.len() as u64;
    match encoding.as_deref() {
        Some("base64") => stored * 3 / 4,
        _ => stored,
    }
}

/// A part's Content-ID without its angle brackets.
pub fn content_id(entity: &Entity<'_>) -> Option<String> {
    let value = lifeboat_servers::imap::mime::header::first_value(entity.header, "Content-ID")?;
    let text = String::from_utf8_lossy(&value);
    let id = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Whether `id` is a part number this portal hands out (`1`, `2.3`): digits and dots,
/// nothing else, bounded in length and depth.
pub fn valid_part_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.split('.').count() <= 32
        && id.split('.').all(|n| {
            !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()) && n != "0"
        })
}

/// The bytes of part `id` of `message`, transfer encoding undone, with its media
/// type and the name to save it under. `None` for an unknown or malformed id.
pub fn part(message: &[u8], id: &str) -> Option<Part> {
    if !valid_part_id(id) {
        return None;
    }
    let root = parse(message);
    let entity = find(&root, id)?;
    Some(Part::of(entity, id))
}

/// The part whose Content-ID is `cid` (for `cid:` URLs in HTML mail).
pub fn part_by_cid(message: &[u8], cid: &str) -> Option<Part> {
    let root = parse(message);
    let mut found = None;
    search_cid(&root, "", cid, &mut found);
    found
}

fn search_cid(entity: &Entity<'_>, id: &str, cid: &str, found: &mut Option<Part>) {
    if found.is_some() {
        return;
    }
    match &entity.content {
        Content::Multipart(children) => {
            for (index, child) in children.iter().enumerate() {
                search_cid(child, &child_id(id, index), cid, found);
            }
        }
        _ => {
            if content_id(entity).as_deref() == Some(cid) {
                *found = Some(Part::of(entity, if id.is_empty() { "1" } else { id }));
            }
        }
    }
}

/// One decoded part.
#[derive(Clone, Debug)]
pub struct Part {
    pub bytes: Vec<u8>,
    pub kind: String,
    pub subtype: String,
    pub filename: String,
}

impl Part {
    fn of(entity: &Entity<'_>, id: &str) -> Part {
        let media = &entity.media;
        let fallback = names::fallback(id, &media.kind, &media.subtype);
        let filename = names::declared(entity)
            .map(|name| names::safe(&name, &fallback))
            .unwrap_or(fallback);
        let bytes = match &entity.content {
            // An attached message is saved as it is (no transfer encoding allowed).
            Content::Message(_) => entity.body.to_vec(),
            _ => decode_transfer(entity.header, entity.body),
        };
        Part {
            bytes,
            kind: media.kind.clone(),
            subtype: media.subtype.clone(),
            filename,
        }
    }
}

/// The entity part number `id` names (the message itself is part 1 when it is not
/// multipart, as in IMAP).
fn find<'e, 'a>(root: &'e Entity<'a>, id: &str) -> Option<&'e Entity<'a>> {
    let mut current = root;
    let mut numbers = id.split('.').map(|n| n.parse::<usize>().ok());
    let first = numbers.next()??;
    current = match &current.content {
        Content::Multipart(children) => children.get(first.checked_sub(1)?)?,
        _ if first == 1 => current,
        _ => return None,
    };
    for number in numbers {
        let index = number?.checked_sub(1)?;
        current = match &current.content {
            Content::Multipart(children) => children.get(index)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: A <a@x.test>\r\nTo: b@x.test\r\nSubject: =?UTF-8?Q?H=C3=A9llo?=\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain text\r\n\
--b2\r\nContent-Type: multipart/related; boundary=\"b3\"\r\n\r\n\
--b3\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html <img src=\"cid:logo@x\"></p>\r\n\
--b3\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n\
--b3--\r\n--b2--\r\n\
--b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n\
--b1--\r\n";

    #[test]
    fn a_usual_message_reads_as_text_html_and_one_attachment() {
        let view = view(MIXED);
        assert_eq!(view.text.as_deref().map(str::trim), Some("plain text"));
        assert!(view.html.as_deref().unwrap().contains("cid:logo@x"));
        assert_eq!(view.attachments.len(), 1, "{:?}", view.attachments);
        assert_eq!(view.attachments[0].part, "2");
        assert_eq!(view.attachments[0].filename, "report.pdf");
        assert_eq!(subject(MIXED), "Héllo");
        let part = part(MIXED, "2").unwrap();
        assert_eq!(part.bytes, b"%PDF-");
        let logo = part_by_cid(MIXED, "logo@x").unwrap();
        assert_eq!(logo.bytes, b"hello");
        assert_eq!(logo.kind, "image");
    }

    #[test]
    fn part_ids_are_validated() {
        assert!(valid_part_id("1") && valid_part_id("1.2.3"));
        for bad in ["", "0", "1..2", "a", "1.-1", "../1", "1/2", "99999", "1.2."] {
            assert!(!valid_part_id(bad), "{bad}");
            assert!(part(MIXED, bad).is_none());
        }
        assert!(part(MIXED, "7").is_none());
        assert!(part(b"Subject: x\r\n\r\nbody", "1").is_some());
        assert!(part(b"Subject: x\r\n\r\nbody", "2").is_none());
    }
}
