//! Logging in and out. The password check is the one IMAP, POP3 and submission use
//! (`Authenticator::login`): the same lockouts, failure delay and login cache, so a
//! failure in the browser counts against the same limits.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use lifeboat_servers::auth::AuthFailure;
use serde::Deserialize;

use crate::App;
use crate::error::PageResult;
use crate::pages::{LoginPage, render};
use crate::security::Peer;
use crate::session::{self, LoggedIn};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginQuery {
    notice: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    peer: Peer,
    Query(query): Query<LoginQuery>,
) -> Response {
    let allowed = peer.may_log_in(app.settings.get().allow_plaintext);
    render(&LoginPage {
        error: None,
        notice: match query.notice.as_deref() {
            Some("reset") => Some("Your new password is set. Sign in with it."),
            Some("out") => Some("You are signed out."),
            _ => None,
        },
        address: String::new(),
        plaintext_refused: !allowed,
    })
}

#[derive(Deserialize)]
pub struct Credentials {
    address: String,
    password: String,
}

pub async fn submit(
    State(app): State<Arc<App>>,
    peer: Peer,
    Form(form): Form<Credentials>,
) -> PageResult {
    if !peer.may_log_in(app.settings.get().allow_plaintext) {
        tracing::warn!(ip = %peer.ip, "web: login over plain HTTP refused");
        let mut response = render(&LoginPage {
            error: None,
            notice: None,
            address: String::new(),
            plaintext_refused: true,
        });
        *response.status_mut() = axum::http::StatusCode::FORBIDDEN;
        return Ok(response);
    }
    match app.auth.login(peer.ip, &form.address, &form.password).await {
        Ok(user) => {
            tracing::info!(ip = %peer.ip, user = %user.address, "web: logged in");
            let cookie = session::start(&app, &user, peer).await?;
            let mut response = Redirect::to("/").into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie.parse().expect("cookie is ASCII"));
            Ok(response)
        }
        Err(failure) => {
            let (status, error) = match failure {
                AuthFailure::LockedOut => (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts. Wait a few minutes and try again.",
                ),
                AuthFailure::Unavailable(_) => (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Signing in is not possible just now. Try again in a moment.",
                ),
                AuthFailure::BadCredentials | AuthFailure::Inactive => (
                    axum::http::StatusCode::UNAUTHORIZED,
                    "That address and password do not match.",
                ),
            };
            let mut response = render(&LoginPage {
                error: Some(error.to_string()),
                notice: None,
                address: form.address.chars().take(320).collect(),
                plaintext_refused: false,
            });
            *response.status_mut() = status;
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(app): State<Arc<App>>,
    logged: LoggedIn,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    logged.check_csrf(&form.csrf)?;
    let secure = logged.peer.secure;
    tracing::info!(user = %logged.user.address, "web: logged out");
    logged.end(&app).await?;
    let mut response = Redirect::to("/login?notice=out").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::cookie("", secure, 0)
            .parse()
            .expect("cookie is ASCII"),
    );
    Ok(response)
}
