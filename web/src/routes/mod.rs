//! The router, and what the page handlers share: the page frame (folders with unread
//! counts, the origin banner), and looking up a folder or message by the ids in the
//! URL, always among the logged-in user's own (anything else is 404).
//!
//! No GET changes anything, with one deliberate exception: opening a message marks it
//! `\Seen`, as IMAP's FETCH does. The session cookie is `SameSite=Strict`, so only a
//! page of this site can make a browser do that.

pub mod assets;
pub mod autoconfig;
pub mod compose;
pub mod folders;
pub mod login;
pub mod message;
pub mod reset;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use lifeboat_mailstore::reader::{MailboxRecord, UserRecord};
use lifeboat_mailstore::{MessageRecord, Store};
use tokio::task::spawn_blocking;
use tower_http::compression::CompressionLayer;

use crate::App;
use crate::banner;
use crate::error::{PageError, PageResult};
use crate::pages::{Chrome, FolderLink};
use crate::session::LoggedIn;

/// Forms other than compose are small.
const FORM_LIMIT: usize = 64 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let upload_limit = compose::upload_limit(&app);
    Router::new()
        .route("/", get(folders::home))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/folder/{folder}", get(folders::list))
        .route("/folder/{folder}/search", get(folders::search))
        .route("/folder/{folder}/{uid}", get(message::read))
        .route("/folder/{folder}/{uid}/body", get(message::body))
        .route("/folder/{folder}/{uid}/source", get(message::source))
        .route("/folder/{folder}/{uid}/part/{part}", get(message::part))
        .route("/folder/{folder}/{uid}/cid/{cid}", get(message::cid))
        .route("/folder/{folder}/{uid}/flags", post(message::flags))
        .route("/folder/{folder}/{uid}/move", post(message::move_to))
        .route("/folder/{folder}/{uid}/delete", post(message::delete))
        .route(
            "/compose",
            get(compose::page)
                .post(compose::submit)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/settings", get(settings::page))
        .route("/settings/password", post(settings::password))
        .route("/settings/alternate", post(settings::alternate))
        .route("/settings/mail-app", get(settings::setup))
        .route(
            "/settings/mail-app/lifeboat.mobileconfig",
            get(autoconfig::mobileconfig),
        )
        .route("/reset", get(reset::request_page).post(reset::request))
        .route("/reset/{token}", get(reset::page).post(reset::submit))
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(autoconfig::thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(autoconfig::thunderbird))
        .route("/autodiscover/autodiscover.xml", post(autoconfig::outlook))
        .route("/Autodiscover/Autodiscover.xml", post(autoconfig::outlook))
        // Only the embedded assets are compressed: pages carry the CSRF token and echo
        // what the user typed (search), which compressed over TLS is what BREACH reads.
        .route(
            "/static/{name}",
            get(assets::serve).layer(CompressionLayer::new()),
        )
        .fallback(|| async { PageError::NotFound })
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::from_fn(crate::security::guard))
        .with_state(app)
}

/// Runs store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    store: &Store,
    work: impl FnOnce(&Store) -> lifeboat_mailstore::Result<T> + Send + 'static,
) -> PageResult<T> {
    let store = store.clone();
    Ok(spawn_blocking(move || work(&store)).await??)
}

/// How a folder is called on screen.
pub fn label(name: &str) -> String {
    match name {
        "INBOX" => "Inbox".to_string(),
        other => other.replace('.', " / "),
    }
}

/// Where a folder sits in the list: INBOX, then the usual folders in the order mail
/// apps show them, then the user's own.
fn shelf(name: &str, special_use: Option<&str>) -> u8 {
    match (name, special_use) {
        ("INBOX", _) => 0,
        (_, Some("\\Drafts")) => 1,
        (_, Some("\\Sent")) => 2,
        (_, Some("\\Archive")) => 3,
        (_, Some("\\Junk")) => 4,
        (_, Some("\\Trash")) => 5,
        _ => 6,
    }
}

/// Short texts shown after an action (`?notice=`); only these, never text from the URL.
pub fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "sent" => "Your message was sent.",
        "draft" => "Draft saved in Drafts.",
        "moved" => "Message moved.",
        "deleted" => "Message deleted.",
        "password" => "Your password was changed.",
        "alternate" => "Your alternate address was saved.",
        "unread" => "Marked as unread.",
        _ => return None,
    })
}

/// The user's folders with their counts, and the banner: the frame of every page.
pub async fn chrome(
    app: &App,
    logged: &LoggedIn,
    current: Option<i64>,
    notice_key: Option<&str>,
) -> PageResult<Chrome> {
    let user = logged.user.clone();
    let routes = app.settings.get().submission.routes.clone();
    let (folders, banner) = blocking(&app.store, move |store| {
        store.with_reader(|reader| {
            let mut mailboxes = reader.mailboxes(user.id)?;
            mailboxes.sort_by_key(|m| (shelf(&m.name, m.special_use.as_deref()), m.name.clone()));
            let mut folders = Vec::new();
            for mailbox in mailboxes {
                let (total, unread) = reader.mailbox_counts(mailbox.id)?;
                folders.push(FolderLink {
                    id: mailbox.id,
                    label: label(&mailbox.name),
                    unread,
                    total,
                    current: Some(mailbox.id) == current,
                });
            }
            let banner = banner::for_user(reader, &routes, &user.address)?;
            Ok((folders, banner))
        })
    })
    .await?;
    // INBOX sorts first.
    let inbox = folders.first().map_or(0, |f| f.id);
    Ok(Chrome {
        user: logged.user.address.to_string(),
        csrf: logged.csrf.clone(),
        banner,
        notice: notice(notice_key),
        folders,
        inbox,
    })
}

/// The user's mailbox with this id, or 404 (someone else's, or none).
pub async fn own_mailbox(app: &App, user: &UserRecord, id: i64) -> PageResult<MailboxRecord> {
    let user_id = user.id;
    let found = blocking(&app.store, move |store| {
        store.with_reader(|reader| {
            Ok(reader
                .mailboxes(user_id)?
                .into_iter()
                .find(|mailbox| mailbox.id == id))
        })
    })
    .await?;
    found.ok_or(PageError::NotFound)
}

/// The user's mailbox with this special use (`\\Sent`, `\\Drafts`, `\\Trash`).
pub async fn special_mailbox(
    app: &App,
    user: &UserRecord,
    special_use: &'static str,
) -> PageResult<MailboxRecord> {
    let user_id = user.id;
    blocking(&app.store, move |store| {
        store.with_reader(|reader| reader.special_use_mailbox(user_id, special_use))
    })
    .await?
    .ok_or_else(|| PageError::Internal(format!("the user has no {special_use} mailbox")))
}

/// A visible message of the user's mailbox `folder`, with its bytes; 404 otherwise.
pub async fn own_message(
    app: &App,
    user: &UserRecord,
    folder: i64,
    uid: u32,
) -> PageResult<(MailboxRecord, MessageRecord, Vec<u8>)> {
    let mailbox = own_mailbox(app, user, folder).await?;
    let (owner, name, id) = (user.address.clone(), mailbox.name.clone(), mailbox.id);
    let found = blocking(&app.store, move |store| {
        let Some(record) = store.with_reader(|reader| reader.visible_message(id, uid))? else {
            return Ok(None);
        };
        let bytes = store.read_message(&owner, &name, &record)?;
        Ok(Some((record, bytes)))
    })
    .await?;
    let (record, bytes) = found.ok_or(PageError::NotFound)?;
    Ok((mailbox, record, bytes))
}

/// `folder/uid` as the compose form carries references to stored messages.
pub fn parse_reference(text: &str) -> Option<(i64, u32)> {
    let (folder, uid) = text.split_once('/')?;
    Some((folder.parse().ok()?, uid.parse().ok()?))
}
