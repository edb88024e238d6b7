//! One line of the message list, from the header alone: who it is from, its subject,
//! its date and whether it has attachments. The list reads at most [`HEADER_LIMIT`]
//! bytes of each file, so a page costs 50 short reads however large the mail.

use lifeboat_servers::imap::mime::header;
use lifeboat_servers::imap::mime::tree::content_type;

use super::addresses;
use super::view;

/// Bytes of a file read for its list line.
pub const HEADER_LIMIT: usize = 32 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub from: String,
    pub subject: String,
    /// Seconds since the epoch: the Date: header, or the arrival time.
    pub date: i64,
    pub attachment: bool,
}

/// The list line of a message whose first bytes are `head`; `arrived` stands in for a
/// missing or unreadable Date:.
pub fn summary(head: &[u8], arrived: i64) -> Summary {
    let end = header::body_start(head);
    let header_bytes = &head[..end];
    let from = addresses::field(header_bytes, "From")
        .first()
        .map(|n| n.short().to_string())
        .unwrap_or_else(|| "(unknown sender)".to_string());
    let date = header::first_value(header_bytes, "Date")
        .and_then(|v| mail_parser::DateTime::parse_rfc822(&String::from_utf8_lossy(&v)))
        .map(|d| d.to_timestamp())
        .filter(|t| *t > 0)
        .unwrap_or(arrived);
    // multipart/mixed is how mail with attachments is built; good enough for a mark.
    let attachment = content_type(header_bytes).is_some_and(|m| m.is("multipart", "mixed"));
    Summary {
        from,
        subject: view::subject(header_bytes),
        date,
        attachment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_line_from_the_header() {
        let head = b"From: \"Bob B.\" <bob@x.test>\r\nSubject: Lunch?\r\nDate: Wed, 25 Nov 2026 10:42:00 +0000\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x";
        let s = summary(head, 7);
        assert_eq!(s.from, "Bob B.");
        assert_eq!(s.subject, "Lunch?");
        assert_eq!(s.date, 1_795_603_320);
        assert!(s.attachment);
        let bare = summary(b"Subject:\r\n\r\n", 7);
        assert_eq!(bare.date, 7);
        assert_eq!(bare.subject, "(no subject)");
        assert_eq!(bare.from, "(unknown sender)");
    }
}
