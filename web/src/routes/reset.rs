//! "I can't sign in": a one-time link to choose a new password, mailed to the user's
//! alternate address (never to the mailbox they cannot reach). The token has 256
//! random bits, the index keeps only its hash, it works once and for
//! [`TOKEN_MINUTES`]. The answer is the same, and as quick, whether or not the address
//! exists or has an alternate address: the lookup and the mail happen after it. Asking
//! is limited per client address (in memory) and per account (one mail per
//! [`USER_INTERVAL`] seconds, recorded in the store like notices).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use lifeboat_mailstore::password;
use lifeboat_mailstore::store::now;
use lifeboat_servers::limits::client_key;
use lifeboat_servers::smtp::Client;
use mail_builder::MessageBuilder;
use mail_builder::headers::text::Text;
use serde::Deserialize;

use super::blocking;
use crate::error::{PageError, PageResult};
use crate::pages::{ResetPage, ResetRequestPage, render};
use crate::password_rule::{self, RULE};
use crate::security::Peer;
use crate::{App, Settings, secrets};

pub const TOKEN_MINUTES: u64 = 30;
/// At most one reset mail per account this often (seconds).
const USER_INTERVAL: i64 = 5 * 60;
/// Requests one client address may make per window.
const PER_CLIENT: u32 = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);
const RELAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reset requests per client address in the current window.
#[derive(Default)]
pub struct Limiter {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    /// Whether `ip` may ask once more (and counts it).
    pub fn allow(&self, ip: IpAddr) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        let entry = seen.entry(client_key(ip)).or_insert((now, 0));
        entry.1 += 1;
        entry.1 <= PER_CLIENT
    }
}

pub async fn request_page() -> impl IntoResponse {
    render(&ResetRequestPage {
        sent: false,
        error: None,
        minutes: TOKEN_MINUTES,
    })
}

#[derive(Deserialize)]
pub struct RequestForm {
    address: String,
}

pub async fn request(
    State(app): State<Arc<App>>,
    peer: Peer,
    Form(form): Form<RequestForm>,
) -> PageResult {
    if !app.resets.allow(peer.ip) {
        tracing::warn!(ip = %peer.ip, "web: password reset requests over the limit");
        let mut response = render(&ResetRequestPage {
            sent: false,
            error: Some("Too many requests from your address. Try again later.".into()),
            minutes: TOKEN_MINUTES,
        });
        *response.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(response);
    }
    let address = form.address.trim().to_ascii_lowercase();
    let app_for_mail = app.clone();
    // After the answer: its timing must not tell whether the account exists.
    tokio::spawn(async move {
        if let Err(e) = send_link(&app_for_mail, &address).await {
            tracing::error!(error = %e, "web: password reset link not sent");
        }
    });
    Ok(render(&ResetRequestPage {
        sent: true,
        error: None,
        minutes: TOKEN_MINUTES,
    }))
}

async fn send_link(app: &App, address: &str) -> Result<(), String> {
    let lookup = {
        let address = address.to_string();
        blocking(&app.store, move |store| {
            store.with_reader(|reader| reader.user(&address))
        })
        .await
        .map_err(|e| e.to_string())?
    };
    let Some(user) = lookup.filter(|u| u.active) else {
        tracing::info!(
            address,
            "web: password reset asked for an unknown or disabled account"
        );
        return Ok(());
    };
    if app.auth.password_managed_elsewhere(&user) {
        tracing::info!(user = %user.address, "web: password reset asked for a password the directory or origin keeps");
        return Ok(());
    }
    let Some(alternate) = user.alternate_email.clone() else {
        tracing::info!(user = %user.address, "web: password reset asked, but no alternate address is set");
        return Ok(());
    };
    let claimed = {
        let (alternate, kind) = (
            alternate.clone(),
            format!("password-reset:{}", user.address),
        );
        blocking(&app.store, move |store| {
            store.claim_notice(&alternate, &kind, USER_INTERVAL)
        })
        .await
        .map_err(|e| e.to_string())?
    };
    if !claimed {
        tracing::info!(user = %user.address, "web: password reset held back: one was sent recently");
        return Ok(());
    }
    let token = secrets::token();
    let at = now();
    let expires = at + TOKEN_MINUTES as i64 * 60;
    let (hash, id) = (secrets::hash(&token), user.id);
    blocking(&app.store, move |store| {
        store.create_password_reset(hash, id, at, expires)
    })
    .await
    .map_err(|e| e.to_string())?;
    let settings = app.settings.get();
    let link = format!("{}reset/{token}", settings.base_url);
    send(&settings, &alternate, user.address.as_str(), &link).await?;
    tracing::info!(user = %user.address, to = %alternate, "web: password reset link sent");
    Ok(())
}

async fn send(settings: &Settings, to: &str, account: &str, link: &str) -> Result<(), String> {
    let body = format!(
        "Someone (hopefully you) asked to choose a new password for {account} on the \
         continuity mail service at {host}.\n\nTo choose one, open this link within \
         {TOKEN_MINUTES} minutes. It works once:\n\n{link}\n\nIf it was not you, ignore \
         this message: your password stays as it is.\n",
        host = settings.hostname()
    );
    let message = MessageBuilder::new()
        .from(("Lifeboat", settings.notice_from.as_str()))
        .to(to)
        .subject("Choose a new password")
        .message_id(format!(
            "{:032x}@{}",
            rand::random::<u128>(),
            settings.hostname()
        ))
        .header("Auto-Submitted", Text::new("auto-generated"))
        .text_body(body)
        .write_to_vec()
        .map_err(|e| e.to_string())?;
    let (host, port) = &settings.submission.relay;
    let mut client = Client::connect(
        (host.as_str(), *port),
        settings.hostname(),
        false,
        RELAY_TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())?;
    let result = async {
        let reply = client
            .mail(&settings.notice_from, None)
            .await
            .map_err(|e| e.to_string())?;
        if !reply.is_positive() {
            return Err(reply.text);
        }
        let reply = client.rcpt(to).await.map_err(|e| e.to_string())?;
        if !reply.is_positive() {
            return Err(reply.text);
        }
        let mut replies = client.data(&message, 1).await.map_err(|e| e.to_string())?;
        let reply = replies.remove(0);
        if reply.is_positive() {
            Ok(())
        } else {
            Err(reply.text)
        }
    }
    .await;
    client.quit().await;
    result
}

/// A token from the URL that could be one of ours, and is still good.
async fn usable(app: &App, token: &str) -> PageResult<()> {
    if !secrets::looks_like_token(token) {
        return Err(PageError::NotFound);
    }
    let hash = secrets::hash(token);
    let user = blocking(&app.store, move |store| {
        store.with_reader(|reader| reader.password_reset_user(&hash, now()))
    })
    .await?;
    user.map(|_| ()).ok_or(PageError::NotFound)
}

pub async fn page(State(app): State<Arc<App>>, Path(token): Path<String>) -> PageResult {
    usable(&app, &token).await?;
    Ok(render(&ResetPage {
        token,
        error: None,
        rule: RULE,
    }))
}

#[derive(Deserialize)]
pub struct NewPassword {
    new: String,
    again: String,
}

pub async fn submit(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    Form(form): Form<NewPassword>,
) -> PageResult {
    usable(&app, &token).await?;
    let refuse = |error: &str| {
        let mut response = render(&ResetPage {
            token: token.clone(),
            error: Some(error.to_string()),
            rule: RULE,
        });
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
        Ok(response)
    };
    if form.new != form.again {
        return refuse("The two passwords differ.");
    }
    let hash = secrets::hash(&token);
    let user = {
        let hash = hash.clone();
        blocking(&app.store, move |store| {
            store.with_reader(|reader| {
                let Some(id) = reader.password_reset_user(&hash, now())? else {
                    return Ok(None);
                };
                reader.user_with_id(id)
            })
        })
        .await?
    };
    let Some(user) = user else {
        return Err(PageError::NotFound);
    };
    if let Err(why) = password_rule::check(user.address.as_str(), &form.new) {
        return refuse(why);
    }
    let new = form.new.clone();
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&new)).await?;
    let done = blocking(&app.store, move |store| {
        store.reset_password(hash, password_hash, now())
    })
    .await?;
    if done.is_none() {
        return Err(PageError::NotFound);
    }
    tracing::info!(user = %user.address, "web: password set with a reset link");
    Ok(Redirect::to("/login?notice=reset").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_address_may_ask_a_few_times_per_window() {
        let limiter = Limiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_CLIENT {
            assert!(limiter.allow(ip));
        }
        assert!(!limiter.allow(ip));
        assert!(limiter.allow("192.0.2.2".parse().unwrap()));
    }
}
