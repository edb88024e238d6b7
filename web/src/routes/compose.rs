//! Writing: new messages, replies, forwards and drafts. Sending goes through
//! submission's own path (`lifeboat_servers::submission::submit`): the sender check,
//! Postfix, and the sent copy recorded once for replay. Uploads are counted as they
//! stream in; past `[milter] max_message_size` the answer is 413 and nothing is sent
//! or stored.

use std::sync::Arc;

use axum::extract::{Multipart, Query, State};
use axum::response::{IntoResponse, Redirect};
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::UserRecord;
use lifeboat_mailstore::{Address, Class, NewMessage};
use lifeboat_servers::submission::{self, SubmitError, submit as submit_message};
use serde::Deserialize;

use super::{blocking, chrome, own_message, parse_reference, special_mailbox};
use crate::App;
use crate::error::{PageError, PageResult};
use crate::mail::addresses::{self, Named};
use crate::mail::compose::{self, Attachment, Outgoing};
use crate::mail::view;
use crate::pages::{ComposeForm, ComposePage, KeptAttachment, render, size};
use crate::session::LoggedIn;

/// The body limit of the compose route: uploads are measured against the current
/// `max_message_size` as they arrive, so the router's own limit only has to be
/// larger (a reload may raise the setting).
pub fn upload_limit(app: &App) -> usize {
    let max = app.settings.get().submission.max_message_size as usize;
    max.saturating_mul(2).max(64 * 1024 * 1024)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ComposeQuery {
    reply: Option<String>,
    all: Option<u8>,
    forward: Option<String>,
    attach: Option<u8>,
    draft: Option<String>,
}

/// The user's own address first, then aliases: who they may write as.
fn identities(user: &UserRecord) -> Vec<String> {
    std::iter::once(user.address.to_string())
        .chain(user.aliases.iter().cloned())
        .collect()
}

pub async fn page(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Query(query): Query<ComposeQuery>,
) -> PageResult {
    let own: Vec<String> = identities(&logged.user)
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    let mut kept = Vec::new();
    let (heading, mut form) = if let Some(reference) = &query.reply {
        let (folder, uid) = parse_reference(reference).ok_or(PageError::NotFound)?;
        let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
        let mut form = compose::reply(&bytes, &own, query.all == Some(1));
        // Answer from the address the mail was sent to, when it is one of ours.
        form.from = addresses::field(&bytes, "To")
            .into_iter()
            .chain(addresses::field(&bytes, "Cc"))
            .map(|n| n.address)
            .find(|a| own.contains(&a.to_ascii_lowercase()))
            .unwrap_or_default();
        form.answers = format!("{folder}/{uid}");
        ("Reply", form)
    } else if let Some(reference) = &query.forward {
        let (folder, uid) = parse_reference(reference).ok_or(PageError::NotFound)?;
        let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
        if query.attach == Some(1) {
            let mut form = compose::forward_attached(&bytes);
            form.forward = format!("{folder}/{uid}");
            kept.push(KeptAttachment {
                reference: String::new(),
                filename: format!("{} (the whole message)", view::subject(&bytes)),
                size: size(bytes.len() as u64),
            });
            ("Forward as attachment", form)
        } else {
            kept = kept_attachments(folder, uid, &bytes);
            ("Forward", compose::forward_inline(&bytes))
        }
    } else if let Some(reference) = &query.draft {
        let (folder, uid) = parse_reference(reference).ok_or(PageError::NotFound)?;
        let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
        kept = kept_attachments(folder, uid, &bytes);
        let mut form = compose::from_draft(&bytes);
        form.draft = format!("{folder}/{uid}");
        ("Draft", form)
    } else {
        ("New message", ComposeForm::default())
    };
    // The forwarded message itself is attached by the hidden `forward` field.
    kept.retain(|k| !k.reference.is_empty());
    if form.from.is_empty() {
        form.from = logged.user.address.to_string();
    }
    compose_page(&app, &logged, heading, form, kept, None).await
}

fn kept_attachments(folder: i64, uid: u32, bytes: &[u8]) -> Vec<KeptAttachment> {
    view::view(bytes)
        .attachments
        .into_iter()
        .map(|a| KeptAttachment {
            reference: format!("{folder}/{uid}/{}", a.part),
            filename: a.filename,
            size: size(a.size),
        })
        .collect()
}

async fn compose_page(
    app: &App,
    logged: &LoggedIn,
    heading: &'static str,
    form: ComposeForm,
    kept: Vec<KeptAttachment>,
    error: Option<String>,
) -> PageResult {
    let chrome = chrome(app, logged, None, None).await?;
    let from_choices = identities(&logged.user)
        .into_iter()
        .map(|a| {
            let selected = a.eq_ignore_ascii_case(&form.from);
            (a, selected)
        })
        .collect();
    let mut response = render(&ComposePage {
        chrome,
        heading,
        form,
        from_choices,
        kept,
        max_size: size(app.settings.get().submission.max_message_size),
        error: error.clone(),
    });
    if error.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// What the compose form's submit buttons ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Action {
    #[default]
    Send,
    /// Save in Drafts.
    Draft,
}

/// The compose form as posted.
#[derive(Default)]
struct Posted {
    csrf: String,
    action: Action,
    form: ComposeForm,
    keep: Vec<String>,
    files: Vec<Attachment>,
}

/// Reads the multipart form, counting every byte against `max`.
async fn read_form(mut multipart: Multipart, max: u64) -> PageResult<Posted> {
    let mut posted = Posted::default();
    let mut total: u64 = 0;
    let too_large = |e: &axum::extract::multipart::MultipartError| {
        e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if too_large(&e) => return Err(PageError::TooLarge),
            Err(e) => {
                return Err(PageError::BadRequest(format!(
                    "The form did not arrive whole: {e}"
                )));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let media_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    total += chunk.len() as u64;
                    if total > max {
                        return Err(PageError::TooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if too_large(&e) => return Err(PageError::TooLarge),
                Err(e) => {
                    return Err(PageError::BadRequest(format!(
                        "The form did not arrive whole: {e}"
                    )));
                }
            }
        }
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        let form = &mut posted.form;
        match name.as_str() {
            "csrf" => posted.csrf = text(),
            "action" => {
                posted.action = match bytes.as_slice() {
                    b"send" => Action::Send,
                    b"draft" => Action::Draft,
                    _ => return Err(PageError::BadRequest("Unknown action.".into())),
                }
            }
            "from" => form.from = text(),
            "to" => form.to = text(),
            "cc" => form.cc = text(),
            "bcc" => form.bcc = text(),
            "subject" => form.subject = text(),
            "body" => form.body = text(),
            "in_reply_to" => form.in_reply_to = text(),
            "references" => form.references = text(),
            "forward" => form.forward = text(),
            "draft" => form.draft = text(),
            "answers" => form.answers = text(),
            "keep" => posted.keep.push(text()),
            "files" => {
                // A file input left empty still sends a part, without a name.
                if let Some(filename) = filename.filter(|n| !n.is_empty()) {
                    let fallback = format!("attachment-{}", posted.files.len() + 1);
                    posted.files.push(Attachment {
                        filename: crate::mail::names::safe(&filename, &fallback),
                        media_type: safe_media_type(&media_type),
                        bytes,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(posted)
}

fn safe_media_type(value: &str) -> String {
    let ok = value.split_once('/').is_some_and(|(t, s)| {
        let token = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        token(t) && token(s)
    });
    if ok {
        value.to_ascii_lowercase()
    } else {
        "application/octet-stream".to_string()
    }
}

pub async fn submit(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    multipart: Multipart,
) -> PageResult {
    let settings = app.settings.get();
    let max = settings.submission.max_message_size;
    let posted = read_form(multipart, max).await?;
    logged.check_csrf(&posted.csrf)?;
    let Posted {
        action,
        form,
        keep,
        files,
        ..
    } = posted;
    let invalid = |message: String, form: ComposeForm| {
        let app = app.clone();
        let logged = &logged;
        async move { compose_page(&app, logged, "Write", form, Vec::new(), Some(message)).await }
    };
    let identities = identities(&logged.user);
    let Some(from) = identities
        .iter()
        .find(|a| a.eq_ignore_ascii_case(form.from.trim()))
        .cloned()
    else {
        return invalid("Choose one of your own addresses as sender.".into(), form).await;
    };
    let parsed = (|| {
        Ok::<_, String>((
            addresses::typed(&form.to)?,
            addresses::typed(&form.cc)?,
            addresses::typed(&form.bcc)?,
        ))
    })();
    let (to, cc, bcc) = match parsed {
        Ok(lists) => lists,
        Err(message) => return invalid(message, form).await,
    };
    let mut attachments = Vec::new();
    for reference in &keep {
        attachments.push(kept_part(&app, &logged.user, reference).await?);
    }
    attachments.extend(files);
    let attached_message = match parse_reference(&form.forward) {
        Some((folder, uid)) => {
            let (_, _, bytes) = own_message(&app, &logged.user, folder, uid).await?;
            let subject = view::subject(&bytes);
            Some((bytes, subject))
        }
        None => None,
    };
    let outgoing = Outgoing {
        from: Named {
            name: None,
            address: from.clone(),
        },
        to,
        cc,
        bcc,
        subject: form.subject.clone(),
        body: form.body.clone(),
        in_reply_to: Some(form.in_reply_to.trim().to_string()).filter(|s| !s.is_empty()),
        references: form
            .references
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        attachments,
        attached_message,
        keep_bcc: action == Action::Draft,
    };
    let message = compose::build(&outgoing, settings.hostname())
        .map_err(|e| PageError::Internal(format!("building a message: {e}")))?;
    if message.len() as u64 > max {
        return Err(PageError::TooLarge);
    }
    let draft = parse_reference(&form.draft);
    if action == Action::Draft {
        let drafts = special_mailbox(&app, &logged.user, "\\Drafts").await?;
        let mut copy = NewMessage::new(
            logged.user.address.clone(),
            &drafts.name,
            message,
            Class::Other,
        );
        copy.flags = Flags::from_bits(Flags::DRAFT.bits() | Flags::SEEN.bits());
        blocking(&app.store, move |store| store.deliver(copy).map(|_| ())).await?;
        remove_draft(&app, &logged.user, draft).await?;
        return Ok(Redirect::to(&format!("/folder/{}?notice=draft", drafts.id)).into_response());
    }
    let sender = Address::parse(&from).map_err(|e| PageError::BadRequest(e.to_string()))?;
    let recipients: Vec<Address> = outgoing
        .to
        .iter()
        .chain(&outgoing.cc)
        .chain(&outgoing.bcc)
        .filter_map(|n| Address::parse(&n.address).ok())
        .collect();
    if recipients.is_empty() {
        return invalid("Add at least one recipient.".into(), form).await;
    }
    let sent = submit_message(
        &app.store,
        &settings.submission,
        submission::Outgoing {
            user: &logged.user,
            service: "Lifeboat web",
            peer: logged.peer.ip,
            sender: &sender,
            recipients: &recipients,
            content: &message,
        },
    )
    .await;
    match sent {
        Ok(()) => {
            remove_draft(&app, &logged.user, draft).await?;
            mark_answered(&app, &logged.user, &form.answers).await;
            let user_id = logged.user.id;
            let inbox = blocking(&app.store, move |store| {
                store.with_reader(|reader| reader.mailbox(user_id, "INBOX"))
            })
            .await?
            .map_or(0, |m| m.id);
            Ok(Redirect::to(&format!("/folder/{inbox}?notice=sent")).into_response())
        }
        Err(error) => {
            let text = match &error {
                SubmitError::NotYours(why) | SubmitError::Refused(why) => {
                    format!("Not sent: {why}")
                }
                SubmitError::Unavailable(why) => {
                    format!("Not sent, try again in a moment: {why}")
                }
            };
            tracing::warn!(user = %logged.user.address, %error, "web: message not sent");
            invalid(text, form).await
        }
    }
}

/// An attachment kept from a stored message (`folder/uid/part`).
async fn kept_part(app: &App, user: &UserRecord, reference: &str) -> PageResult<Attachment> {
    let mut pieces = reference.splitn(3, '/');
    let (Some(folder), Some(uid), Some(part)) = (pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(PageError::NotFound);
    };
    let (folder, uid) = parse_reference(&format!("{folder}/{uid}")).ok_or(PageError::NotFound)?;
    let (_, _, bytes) = own_message(app, user, folder, uid).await?;
    let part = part.to_string();
    let found = tokio::task::spawn_blocking(move || view::part(&bytes, &part)).await?;
    let part = found.ok_or(PageError::NotFound)?;
    Ok(Attachment {
        filename: part.filename,
        media_type: format!("{}/{}", part.kind, part.subtype),
        bytes: part.bytes,
    })
}

/// Marks the message a reply answered `\Answered`, as mail apps do. The reply is
/// sent either way: a message moved or deleted meanwhile is left alone.
async fn mark_answered(app: &App, user: &UserRecord, reference: &str) {
    let Some((folder, uid)) = parse_reference(reference) else {
        return;
    };
    let Ok((mailbox, record, _)) = own_message(app, user, folder, uid).await else {
        return;
    };
    if let Err(e) =
        super::message::change_flags(app, user, &mailbox, &record, Flags::ANSWERED, true).await
    {
        tracing::warn!(error = %e, "web: could not mark the original answered");
    }
}

/// Removes the draft a message was written from (after sending or saving anew).
async fn remove_draft(app: &App, user: &UserRecord, draft: Option<(i64, u32)>) -> PageResult<()> {
    let Some((folder, uid)) = draft else {
        return Ok(());
    };
    let drafts = special_mailbox(app, user, "\\Drafts").await?;
    if drafts.id != folder {
        return Ok(());
    }
    let id = drafts.id;
    blocking(&app.store, move |store| {
        store.expunge(id, &[uid]).map(|_| ())
    })
    .await
}
