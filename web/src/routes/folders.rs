//! The folder view: a page of 50 messages, newest first, found through the index
//! (`Reader::message_page`) so a 100 000-message INBOX pages as fast as a small one;
//! each line reads only the first bytes of its file. Search runs the IMAP SEARCH keys
//! over the folder newest first, 50 results a page.

use std::io::Read;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use lifeboat_mailstore::maildir::Flags;
use lifeboat_mailstore::reader::{MailboxRecord, UserRecord};
use lifeboat_mailstore::{MessageRecord, Store};
use serde::Deserialize;

use super::{blocking, chrome, label, own_mailbox};
use crate::App;
use crate::error::{PageError, PageResult};
use crate::mail::search;
use crate::mail::summary::{HEADER_LIMIT, summary};
use crate::pages::{FolderLink, FolderPage, Row, SearchForm, render, size};
use crate::session::LoggedIn;

pub const PAGE_SIZE: u64 = 50;
/// Messages one search page looks through at most before it offers "older".
const SEARCH_SCAN: usize = 5000;

pub async fn home(State(app): State<Arc<App>>, logged: LoggedIn) -> PageResult {
    let inbox = blocking(&app.store, {
        let id = logged.user.id;
        move |store| store.with_reader(|reader| reader.mailbox(id, "INBOX"))
    })
    .await?
    .ok_or(PageError::NotFound)?;
    Ok(Redirect::to(&format!("/folder/{}", inbox.id)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    page: Option<u64>,
    notice: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path(folder): Path<i64>,
    Query(query): Query<ListQuery>,
) -> PageResult<Response> {
    let mailbox = own_mailbox(&app, &logged.user, folder).await?;
    let page = query.page.unwrap_or(1).max(1);
    let (user, name, id) = (logged.user.clone(), mailbox.name.clone(), mailbox.id);
    let rows = blocking(&app.store, move |store| {
        let records = store.with_reader(|reader| {
            reader.message_page(id, (page - 1).saturating_mul(PAGE_SIZE), PAGE_SIZE)
        })?;
        Ok(rows(store, &user, &name, &records))
    })
    .await?;
    let chrome = chrome(&app, &logged, Some(folder), query.notice.as_deref()).await?;
    let link = current(&chrome.folders, &mailbox);
    let pages = link.total.div_ceil(PAGE_SIZE).max(1);
    let position = format!("Page {page} of {pages}");
    let to_page = |n: u64| format!("/folder/{folder}?page={n}");
    Ok(render(&FolderPage {
        prev: (page > 1).then(|| to_page(page - 1)),
        next: (page < pages).then(|| to_page(page + 1)),
        chrome,
        folder: link,
        rows,
        search: SearchForm::default(),
        searching: false,
        position,
    }))
}

pub async fn search(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Path(folder): Path<i64>,
    Query(form): Query<SearchForm>,
) -> PageResult<Response> {
    let mailbox = own_mailbox(&app, &logged.user, folder).await?;
    let keys = search::criteria(&form).map_err(PageError::BadRequest)?;
    if keys.is_empty() {
        return Ok(Redirect::to(&format!("/folder/{folder}")).into_response());
    }
    let (user, name, id) = (logged.user.clone(), mailbox.name.clone(), mailbox.id);
    let below = form.below.unwrap_or(u32::MAX);
    let (rows, resume) = blocking(&app.store, move |store| {
        let mut hits = Vec::new();
        let mut scanned = 0usize;
        let mut offset = 0u64;
        let mut last_uid = None;
        'pages: loop {
            let records = store.with_reader(|reader| reader.message_page(id, offset, 500))?;
            if records.is_empty() {
                break;
            }
            offset += records.len() as u64;
            for record in records.into_iter().filter(|r| r.uid < below) {
                if hits.len() as u64 >= PAGE_SIZE || scanned >= SEARCH_SCAN {
                    break 'pages;
                }
                scanned += 1;
                last_uid = Some(record.uid);
                let Ok(bytes) = store.read_message(&user.address, &name, &record) else {
                    continue;
                };
                if search::matches_all(&keys, &record, &bytes) {
                    hits.push(record);
                }
            }
        }
        let stopped_early = hits.len() as u64 >= PAGE_SIZE || scanned >= SEARCH_SCAN;
        let resume = stopped_early.then_some(last_uid).flatten();
        Ok((rows(store, &user, &name, &hits), resume))
    })
    .await?;
    let chrome = chrome(&app, &logged, Some(folder), None).await?;
    let link = current(&chrome.folders, &mailbox);
    let next = resume.map(|uid| {
        let mut query: Vec<(&str, String)> = vec![
            ("from", form.from.clone()),
            ("to", form.to.clone()),
            ("subject", form.subject.clone()),
            ("text", form.text.clone()),
            ("since", form.since.clone()),
            ("before", form.before.clone()),
        ];
        query.push(("below", uid.to_string()));
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        format!("/folder/{folder}/search?{}", encoded.join("&"))
    });
    let position = format!("{} found", rows.len());
    Ok(render(&FolderPage {
        chrome,
        folder: link,
        rows,
        search: form,
        searching: true,
        position,
        prev: None,
        next,
    }))
}

fn current(folders: &[FolderLink], mailbox: &MailboxRecord) -> FolderLink {
    folders
        .iter()
        .find(|f| f.id == mailbox.id)
        .cloned()
        .unwrap_or(FolderLink {
            id: mailbox.id,
            label: label(&mailbox.name),
            unread: 0,
            total: 0,
            current: true,
        })
}

/// List lines for `records` (blocking: reads the start of each file).
fn rows(store: &Store, user: &UserRecord, folder: &str, records: &[MessageRecord]) -> Vec<Row> {
    let today = chrono::Utc::now().date_naive();
    records
        .iter()
        .map(|record| {
            let head = read_head(store, user, folder, record);
            let line = summary(&head, record.internal_date);
            let when = chrono::DateTime::from_timestamp(line.date, 0).unwrap_or_default();
            let date = if when.date_naive() == today {
                when.format("%H:%M").to_string()
            } else {
                when.format("%-d %b %Y").to_string()
            };
            Row {
                uid: record.uid,
                from: line.from,
                subject: line.subject,
                date,
                date_iso: when.to_rfc3339(),
                size: size(record.size),
                attachment: line.attachment,
                flagged: record.flags.contains(Flags::FLAGGED),
                unread: !record.flags.contains(Flags::SEEN),
            }
        })
        .collect()
}

/// The first [`HEADER_LIMIT`] bytes of a message (its whole file when the name moved
/// under a flag change: the store finds it by basename).
fn read_head(store: &Store, user: &UserRecord, folder: &str, record: &MessageRecord) -> Vec<u8> {
    let path = store.message_path(&user.address, folder, record);
    let mut head = Vec::with_capacity(4096);
    match std::fs::File::open(&path) {
        Ok(file) => {
            let _ = file.take(HEADER_LIMIT as u64).read_to_end(&mut head);
            head
        }
        Err(_) => store
            .read_message(&user.address, folder, record)
            .map(|mut bytes| {
                bytes.truncate(HEADER_LIMIT);
                bytes
            })
            .unwrap_or_default(),
    }
}
