//! Settings: a new password (old one required, the documented rule), the alternate
//! address outage notices and reset links go to, and the mail-app settings page.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use lifeboat_mailstore::Address;
use lifeboat_mailstore::password;
use serde::Deserialize;

use super::{blocking, chrome};
use crate::error::PageResult;
use crate::pages::{SettingsPage, SetupPage, SetupRow, render};
use crate::password_rule::{self, RULE};
use crate::session::{self, LoggedIn};
use crate::{App, MailPorts};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    settings_page(&app, &logged, query.notice.as_deref(), None).await
}

async fn settings_page(
    app: &App,
    logged: &LoggedIn,
    notice: Option<&str>,
    error: Option<String>,
) -> PageResult {
    let chrome = chrome(app, logged, None, notice).await?;
    let mut response = render(&SettingsPage {
        chrome,
        alternate: logged.user.alternate_email.clone().unwrap_or_default(),
        error: error.clone(),
        rule: RULE,
        managed_elsewhere: app.auth.password_managed_elsewhere(&logged.user),
    });
    if error.is_some() {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// Said instead of changing a password that lives at the directory or the origin.
pub const MANAGED_ELSEWHERE: &str = "Your password is your organisation's: change it where you always do (it works here as soon as you have logged in with it once).";

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    old: String,
    new: String,
    again: String,
}

pub async fn password(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    logged.check_csrf(&form.csrf)?;
    if app.auth.password_managed_elsewhere(&logged.user) {
        return settings_page(&app, &logged, None, Some(MANAGED_ELSEWHERE.into())).await;
    }
    let address = logged.user.address.to_string();
    // The old password through the same check as a login: wrong guesses here count
    // against the same lockouts.
    if app
        .auth
        .login(logged.peer.ip, &address, &form.old)
        .await
        .is_err()
    {
        return settings_page(
            &app,
            &logged,
            None,
            Some("The current password is not right.".into()),
        )
        .await;
    }
    if form.new != form.again {
        return settings_page(
            &app,
            &logged,
            None,
            Some("The two new passwords differ.".into()),
        )
        .await;
    }
    if let Err(why) = password_rule::check(&address, &form.new) {
        return settings_page(&app, &logged, None, Some(why.into())).await;
    }
    let user = logged.user.clone();
    let new = form.new.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&new)).await?;
    let stored_hash = hash.clone();
    blocking(&app.store, move |store| {
        store.set_password(&user.address, stored_hash)?;
        // Every web session of the user ends (IMAP, POP3 and submission sessions end
        // at their next command through the same check).
        store.delete_web_sessions_of(user.id)
    })
    .await?;
    tracing::info!(user = %logged.user.address, "web: password changed");
    // This browser keeps going with a fresh session.
    let mut user = logged.user.clone();
    user.password_hash = hash;
    let cookie = session::start(&app, &user, logged.peer).await?;
    let mut response = Redirect::to("/settings?notice=password").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie.parse().expect("cookie is ASCII"));
    Ok(response)
}

#[derive(Deserialize)]
pub struct AlternateForm {
    csrf: String,
    alternate: String,
}

pub async fn alternate(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Form(form): Form<AlternateForm>,
) -> PageResult {
    logged.check_csrf(&form.csrf)?;
    let typed = form.alternate.trim();
    let alternate = if typed.is_empty() {
        None
    } else {
        match Address::parse(typed) {
            Ok(address) => Some(address),
            Err(e) => return settings_page(&app, &logged, None, Some(e.to_string())).await,
        }
    };
    let own = alternate.as_ref().is_some_and(|a| {
        a == &logged.user.address
            || logged
                .user
                .aliases
                .iter()
                .any(|x| x.eq_ignore_ascii_case(a.as_str()))
    });
    if own {
        return settings_page(
            &app,
            &logged,
            None,
            Some("The alternate address must be elsewhere: during an outage this mailbox is the one you cannot reach.".into()),
        )
        .await;
    }
    let user = logged.user.address.clone();
    blocking(&app.store, move |store| {
        store.set_alternate_email(&user, alternate.as_ref())
    })
    .await?;
    Ok(Redirect::to("/settings?notice=alternate").into_response())
}

/// The table rows of the setup page: each listener that is on.
pub fn setup_rows(ports: &MailPorts) -> Vec<SetupRow> {
    let mut rows = Vec::new();
    let mut add = |what, port: Option<u16>, security| {
        if let Some(port) = port {
            rows.push(SetupRow {
                what,
                port,
                security,
            });
        }
    };
    add("Incoming mail (IMAP)", ports.imaps, "SSL/TLS");
    add("Incoming mail (IMAP)", ports.imap, "STARTTLS");
    add("Incoming mail (POP3)", ports.pop3s, "SSL/TLS");
    add("Incoming mail (POP3)", ports.pop3, "STARTTLS");
    add("Outgoing mail (SMTP)", ports.submissions, "SSL/TLS");
    add("Outgoing mail (SMTP)", ports.submission, "STARTTLS");
    rows
}

pub async fn setup(State(app): State<Arc<App>>, logged: LoggedIn) -> PageResult<Response> {
    let settings = app.settings.get();
    let chrome = chrome(&app, &logged, None, None).await?;
    Ok(render(&SetupPage {
        chrome,
        host: settings.hostname().to_string(),
        address: logged.user.address.to_string(),
        rows: setup_rows(&settings.ports),
    }))
}
