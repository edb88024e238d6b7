//! The portal's pages: askama templates (`web/templates/`), checked when the crate
//! compiles, with HTML escaping of every value. Handlers fill these structs; nothing
//! else writes HTML.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::banner::Banner;

/// Renders a page (a template that fails to render is a bug: 500, logged).
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "web: a page did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What every logged-in page shows around its content.
pub struct Chrome {
    pub user: String,
    pub csrf: String,
    pub banner: Option<Banner>,
    pub notice: Option<&'static str>,
    pub folders: Vec<FolderLink>,
    /// The INBOX's id, where the brand link goes.
    pub inbox: i64,
}

#[derive(Clone, Debug)]
pub struct FolderLink {
    pub id: i64,
    pub label: String,
    pub unread: u64,
    pub total: u64,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub error: Option<String>,
    pub notice: Option<&'static str>,
    pub address: String,
    pub plaintext_refused: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub detail: String,
}

/// One line of the message list.
pub struct Row {
    pub uid: u32,
    pub from: String,
    pub subject: String,
    pub date: String,
    pub date_iso: String,
    pub size: String,
    pub attachment: bool,
    pub flagged: bool,
    pub unread: bool,
}

/// The search form's fields, as typed.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SearchForm {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub since: String,
    pub before: String,
    /// Continue below this UID (the next page of results).
    pub below: Option<u32>,
}

#[derive(Template)]
#[template(path = "folder.html")]
pub struct FolderPage {
    pub chrome: Chrome,
    pub folder: FolderLink,
    pub rows: Vec<Row>,
    pub search: SearchForm,
    pub searching: bool,
    pub position: String,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub struct AttachmentLink {
    pub part: String,
    pub filename: String,
    pub media_type: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub folder: FolderLink,
    pub uid: u32,
    pub subject: String,
    pub headers: Vec<(&'static str, String)>,
    pub text: String,
    pub has_html: bool,
    pub view_text: bool,
    pub show_images: bool,
    pub images_blocked: bool,
    pub attachments: Vec<AttachmentLink>,
    pub move_targets: Vec<FolderLink>,
    pub flagged: bool,
    pub in_trash: bool,
    /// A draft: the page offers to go on writing it.
    pub in_drafts: bool,
}

/// The compose form's fields, as the user left them (or as a reply starts them).
#[derive(Clone, Debug, Default)]
pub struct ComposeForm {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub in_reply_to: String,
    pub references: String,
    /// `folder/uid` of a message forwarded as an attachment.
    pub forward: String,
    /// `folder/uid` of the draft this was opened from (replaced when saved, removed
    /// when sent).
    pub draft: String,
    /// `folder/uid` of the message this replies to: marked `\Answered` once sent.
    pub answers: String,
}

/// An attachment carried over from a stored message (forward, draft).
pub struct KeptAttachment {
    /// `folder/uid/part`.
    pub reference: String,
    pub filename: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "compose.html")]
pub struct ComposePage {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub form: ComposeForm,
    pub from_choices: Vec<(String, bool)>,
    pub kept: Vec<KeptAttachment>,
    pub error: Option<String>,
    pub max_size: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub alternate: String,
    pub error: Option<String>,
    pub rule: &'static str,
    /// The password lives at the directory or the origin: no form to change it here.
    pub managed_elsewhere: bool,
}

pub struct SetupRow {
    pub what: &'static str,
    pub port: u16,
    pub security: &'static str,
}

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupPage {
    pub chrome: Chrome,
    pub host: String,
    pub address: String,
    pub rows: Vec<SetupRow>,
}

#[derive(Template)]
#[template(path = "reset_request.html")]
pub struct ResetRequestPage {
    pub sent: bool,
    pub error: Option<String>,
    pub minutes: u64,
}

#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage {
    pub token: String,
    pub error: Option<String>,
    pub rule: &'static str,
}

/// Human sizes: `812 B`, `14 KB`, `2.3 MB`.
pub fn size(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    match bytes {
        b if b < KB => format!("{b} B"),
        b if b < MB => format!("{} KB", b.div_ceil(KB)),
        b => format!("{:.1} MB", b as f64 / MB as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_mail_client_shows_them() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(14 * 1024 - 5), "14 KB");
        assert_eq!(size(2_411_725), "2.3 MB");
    }

    #[test]
    fn values_are_escaped() {
        let page = ErrorPage {
            title: "<script>alert(1)</script>".into(),
            detail: "\"quoted\" & 'single'".into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
            "{html}"
        );
    }
}
