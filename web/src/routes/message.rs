//! Reading one message and acting on it. Opening it marks it `\Seen` (IMAP sessions
//! see the change through the store, IDLE at once); the HTML body is served on its own
//! URL into a sandboxed iframe under a strict CSP; parts are served as downloads.
//! Moving copies the message and expunges the original, as IMAP MOVE does, and
//! deleting goes through `Store::expunge`, so copies waiting for replay are hidden,
//! never destroyed.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use lifeboat_mailstore::flags::{FlagEdit, FlagOp};
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::{MailboxRecord, UserRecord};
use lifeboat_mailstore::{Class, MessageRecord, NewMessage};
use serde::Deserialize;

use super::{blocking, chrome, own_mailbox, own_message, special_mailbox};
use crate::App;
use crate::error::{PageError, PageResult};
use crate::mail::{names, sanitize, view};
use crate::pages::{AttachmentLink, MessagePage, render, size};
use crate::session::LoggedIn;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReadQuery {
    view: Option<String>,
    images: Option<u8>,
}

pub async fn read(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid)): Path<(i64, u32)>,
    Query(query): Query<ReadQuery>,
) -> PageResult {
    let (mailbox, record, bytes) = own_message(&app, &logged.user, folder, uid).await?;
    if !record.flags.contains(Flags::SEEN) {
        change_flags(&app, &logged.user, &mailbox, &record, Flags::SEEN, true).await?;
    }
    let show_images = query.images == Some(1);
    let view_text = query.view.as_deref() == Some("text");
    let (page_view, headers, subject) = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || {
            (
                view::view(&bytes),
                view::headers(&bytes),
                view::subject(&bytes),
            )
        })
        .await?
    };
    let has_html = page_view.html.is_some();
    let images_blocked = match (&page_view.html, view_text, show_images) {
        (Some(html), false, false) => sanitize::mentions_remote_content(html),
        _ => false,
    };
    // The text is shown only without the HTML frame; turning a large HTML mail into
    // text costs a sanitiser pass, so only then.
    let text = match (&page_view.text, &page_view.html) {
        (_, Some(_)) if !view_text => String::new(),
        (Some(text), _) => text.clone(),
        (None, Some(html)) => {
            let html = html.clone();
            tokio::task::spawn_blocking(move || sanitize::to_text(&html)).await?
        }
        (None, None) => String::new(),
    };
    let chrome = chrome(&app, &logged, Some(folder), None).await?;
    let current = chrome.folders.iter().find(|f| f.id == folder).cloned();
    let move_targets = chrome
        .folders
        .iter()
        .filter(|f| f.id != folder)
        .cloned()
        .collect();
    Ok(render(&MessagePage {
        folder: current.ok_or(PageError::NotFound)?,
        uid,
        subject,
        headers,
        text,
        has_html,
        view_text,
        show_images,
        images_blocked,
        attachments: page_view
            .attachments
            .into_iter()
            .map(|a| AttachmentLink {
                part: a.part,
                filename: a.filename,
                media_type: a.media_type,
                size: size(a.size),
            })
            .collect(),
        move_targets,
        flagged: record.flags.contains(Flags::FLAGGED),
        in_trash: mailbox.special_use.as_deref() == Some("\\Trash"),
        in_drafts: mailbox.special_use.as_deref() == Some("\\Drafts"),
        chrome,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BodyQuery {
    images: Option<u8>,
}

/// The sanitised HTML body, for the iframe.
pub async fn body(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid)): Path<(i64, u32)>,
    Query(query): Query<BodyQuery>,
) -> PageResult {
    let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
    let show_images = query.images == Some(1);
    let prefix = format!("/folder/{folder}/{uid}/cid/");
    let document = tokio::task::spawn_blocking(move || {
        let html = view::view(&bytes).html?;
        Some(sanitize::document(
            &sanitize::sanitize(&html, &prefix, show_images).html,
        ))
    })
    .await?
    .ok_or(PageError::NotFound)?;
    let policy = if show_images {
        sanitize::BODY_CSP_IMAGES
    } else {
        sanitize::BODY_CSP
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        document,
    )
        .into_response())
}

/// The message as stored, as text.
pub async fn source(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid)): Path<(i64, u32)>,
) -> PageResult {
    let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
        ],
        String::from_utf8_lossy(&bytes).into_owned(),
    )
        .into_response())
}

/// One part, as a download with its own name.
pub async fn part(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid, part)): Path<(i64, u32, String)>,
) -> PageResult {
    if !view::valid_part_id(&part) {
        return Err(PageError::NotFound);
    }
    let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
    let found = tokio::task::spawn_blocking(move || view::part(&bytes, &part)).await?;
    let part = found.ok_or(PageError::NotFound)?;
    Ok(download(part, false))
}

/// A part by Content-ID: images inline (for the HTML body), anything else a download.
pub async fn cid(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid, cid)): Path<(i64, u32, String)>,
) -> PageResult {
    if cid.len() > 998 {
        return Err(PageError::NotFound);
    }
    let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
    let found = tokio::task::spawn_blocking(move || view::part_by_cid(&bytes, &cid)).await?;
    let part = found.ok_or(PageError::NotFound)?;
    // SVG can carry script: never inline.
    let inline = part.kind == "image" && part.subtype != "svg+xml";
    Ok(download(part, inline))
}

fn download(part: view::Part, inline: bool) -> Response {
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let media = if is_token(&part.kind) && is_token(&part.subtype) {
        format!("{}/{}", part.kind, part.subtype)
    } else {
        "application/octet-stream".to_string()
    };
    let disposition = if inline {
        "inline".to_string()
    } else {
        names::attachment_disposition(&part.filename)
    };
    let mut response = part.bytes.into_response();
    let headers = response.headers_mut();
    let value = |s: &str| {
        HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(&media));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response
}

/// Sets or clears one flag of a message (the store renames the file and bumps the
/// modseq; IMAP sessions hear of it).
pub(super) async fn change_flags(
    app: &App,
    user: &UserRecord,
    mailbox: &MailboxRecord,
    record: &MessageRecord,
    flag: Flags,
    set: bool,
) -> PageResult<()> {
    let op = if set { FlagOp::Add } else { FlagOp::Remove };
    let edit = FlagEdit::new(op, flag, Vec::new());
    let (owner, name, id, row) = (
        user.address.clone(),
        mailbox.name.clone(),
        mailbox.id,
        record.row,
    );
    blocking(&app.store, move |store| {
        store
            .edit_flags(&owner, &name, id, vec![row], edit)
            .map(|_| ())
    })
    .await
}

/// What the flag buttons ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Read,
    Unread,
    Flag,
    Unflag,
}

impl Change {
    /// The flag and whether it is set.
    fn flag(self) -> (Flags, bool) {
        match self {
            Change::Read => (Flags::SEEN, true),
            Change::Unread => (Flags::SEEN, false),
            Change::Flag => (Flags::FLAGGED, true),
            Change::Unflag => (Flags::FLAGGED, false),
        }
    }
}

#[derive(Deserialize)]
pub struct FlagsForm {
    csrf: String,
    change: Change,
}

pub async fn flags(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid)): Path<(i64, u32)>,
    Form(form): Form<FlagsForm>,
) -> PageResult {
    logged.check_csrf(&form.csrf)?;
    let (flag, set) = form.change.flag();
    let (mailbox, record, _) = own_message(&app, &logged.user, folder, uid).await?;
    change_flags(&app, &logged.user, &mailbox, &record, flag, set).await?;
    // Back to the message would mark it read again.
    let to = if form.change == Change::Unread {
        format!("/folder/{folder}?notice=unread")
    } else {
        format!("/folder/{folder}/{uid}")
    };
    Ok(Redirect::to(&to).into_response())
}

#[derive(Deserialize)]
pub struct MoveForm {
    csrf: String,
    to: i64,
}

pub async fn move_to(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid)): Path<(i64, u32)>,
    Form(form): Form<MoveForm>,
) -> PageResult {
    logged.check_csrf(&form.csrf)?;
    let target = own_mailbox(&app, &logged.user, form.to).await?;
    if target.id == folder {
        return Ok(Redirect::to(&format!("/folder/{folder}/{uid}")).into_response());
    }
    let (source, record, bytes) = own_message(&app, &logged.user, folder, uid).await?;
    move_message(&app, &logged.user, &source, &record, bytes, &target).await?;
    Ok(Redirect::to(&format!("/folder/{folder}?notice=moved")).into_response())
}

/// Stores a copy in `target` (flags and date kept; class `other`, as IMAP COPY makes)
/// and expunges the original (a copy still owed to the origin is only hidden).
pub async fn move_message(
    app: &App,
    user: &UserRecord,
    source: &MailboxRecord,
    record: &MessageRecord,
    bytes: Vec<u8>,
    target: &MailboxRecord,
) -> PageResult<()> {
    let mut copy = NewMessage::new(user.address.clone(), &target.name, bytes, Class::Other);
    copy.flags = record.flags;
    copy.internal_date = Some(record.internal_date);
    let (source_id, uid) = (source.id, record.uid);
    blocking(&app.store, move |store| {
        store.deliver(copy)?;
        store.expunge(source_id, &[uid]).map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// To Trash; from Trash, for good (through `Store::expunge`).
pub async fn delete(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path((folder, uid)): Path<(i64, u32)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    logged.check_csrf(&form.csrf)?;
    let (source, record, bytes) = own_message(&app, &logged.user, folder, uid).await?;
    let trash = special_mailbox(&app, &logged.user, "\\Trash").await?;
    if source.id == trash.id {
        let id = source.id;
        blocking(&app.store, move |store| {
            store.expunge(id, &[uid]).map(|_| ())
        })
        .await?;
    } else {
        move_message(&app, &logged.user, &source, &record, bytes, &trash).await?;
    }
    Ok(Redirect::to(&format!("/folder/{folder}?notice=deleted")).into_response())
}
