//! Web logins: kept server side in the index (`web_sessions`), found by the SHA-256 of
//! a 256-bit random id the browser holds in a cookie (`HttpOnly`, `SameSite=Strict`,
//! `Secure` unless the request came over a loopback listener without TLS).
//!
//! A session ends after [`IDLE_TIMEOUT`] without a request, after [`LIFETIME`] however
//! busy, at logout, and as soon as the user is disabled, deleted or gets a new password
//! ([`Authenticator::still_valid`], the check IMAP, POP3 and submission make). Each
//! session has its own CSRF token, sent with every form that changes something.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use lifeboat_mailstore::reader::UserRecord;
use lifeboat_mailstore::store::now;
use lifeboat_mailstore::web::WebSession;
use tokio::task::spawn_blocking;

use crate::App;
use crate::error::PageError;
use crate::secrets;
use crate::security::Peer;

pub const COOKIE: &str = "lifeboat_session";
/// A session unused this long ends (seconds).
pub const IDLE_TIMEOUT: i64 = 60 * 60;
/// No session lasts longer than this (seconds).
pub const LIFETIME: i64 = 12 * 60 * 60;
/// Activity is recorded at most this often per session: every request would otherwise
/// be a durable write.
const TOUCH_EVERY: i64 = 60;

/// A logged-in request: the user as the store knows them now, and the session.
pub struct LoggedIn {
    pub user: UserRecord,
    pub csrf: String,
    pub peer: Peer,
    id_hash: String,
}

impl LoggedIn {
    /// Refuses a state-changing request whose form does not carry this session's token.
    pub fn check_csrf(&self, token: &str) -> Result<(), PageError> {
        if secrets::same(token, &self.csrf) {
            Ok(())
        } else {
            tracing::warn!(user = %self.user.address, "web: form with a wrong CSRF token refused");
            Err(PageError::BadToken)
        }
    }

    /// Ends this session (logout).
    pub async fn end(self, app: &App) -> Result<(), PageError> {
        let store = app.store.clone();
        spawn_blocking(move || store.delete_web_session(self.id_hash)).await??;
        Ok(())
    }
}

/// Starts a session for `user` (just logged in); returns the `Set-Cookie` value.
pub async fn start(app: &App, user: &UserRecord, peer: Peer) -> Result<String, PageError> {
    let id = secrets::token();
    let at = now();
    let session = WebSession {
        user_id: user.id,
        user_password_hash: user.password_hash.clone(),
        csrf_token: secrets::token(),
        created_at: at,
        last_seen_at: at,
    };
    let (store, id_hash) = (app.store.clone(), secrets::hash(&id));
    spawn_blocking(move || store.create_web_session(id_hash, session)).await??;
    Ok(cookie(&id, peer.secure, LIFETIME))
}

/// A `Set-Cookie` value for the session id (`max_age` 0 removes it).
pub fn cookie(id: &str, secure: bool, max_age: i64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The session id the browser sent, if it looks like one.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| secrets::looks_like_token(value))
}

/// Why a request is not logged in: the browser goes to the login page.
pub struct NotLoggedIn {
    secure: bool,
    had_cookie: bool,
}

impl IntoResponse for NotLoggedIn {
    fn into_response(self) -> Response {
        let mut response = Redirect::to("/login").into_response();
        if self.had_cookie {
            // A stale cookie goes, so the login page does not keep meeting it.
            if let Ok(value) = cookie("", self.secure, 0).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
        }
        response
    }
}

impl FromRequestParts<Arc<App>> for LoggedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<LoggedIn, Response> {
        let peer = Peer::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let not_logged_in = |had_cookie| {
            NotLoggedIn {
                secure: peer.secure,
                had_cookie,
            }
            .into_response()
        };
        let Some(id) = session_id(&parts.headers) else {
            return Err(not_logged_in(false));
        };
        let id_hash = secrets::hash(id);
        let store = app.store.clone();
        let lookup = {
            let id_hash = id_hash.clone();
            spawn_blocking(move || {
                store.with_reader(|reader| {
                    let Some(session) = reader.web_session(&id_hash)? else {
                        return Ok(None);
                    };
                    let user = reader.user_with_id(session.user_id)?;
                    Ok(user.map(|user| (session, user)))
                })
            })
            .await
        };
        let (session, user) = match lookup {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => return Err(not_logged_in(true)),
            Ok(Err(e)) => return Err(PageError::from(e).into_response()),
            Err(e) => return Err(PageError::from(e).into_response()),
        };
        let at = now();
        let expired =
            at - session.last_seen_at > IDLE_TIMEOUT || at - session.created_at > LIFETIME;
        // The user as they logged in: a new password or a disabled account differs.
        let as_logged_in = UserRecord {
            password_hash: session.user_password_hash.clone(),
            ..user.clone()
        };
        if expired || !app.auth.still_valid(&as_logged_in).await {
            tracing::info!(user = %user.address, expired, "web: session ended");
            let (store, hash) = (app.store.clone(), id_hash.clone());
            let _ = spawn_blocking(move || store.delete_web_session(hash)).await;
            return Err(not_logged_in(true));
        }
        if at - session.last_seen_at >= TOUCH_EVERY {
            let (store, hash) = (app.store.clone(), id_hash.clone());
            let _ = spawn_blocking(move || store.touch_web_session(hash, at)).await;
        }
        Ok(LoggedIn {
            user,
            csrf: session.csrf_token,
            peer,
            id_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_http_only_strict_and_secure_when_the_browser_used_tls() {
        let c = cookie("abc", true, 60);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("; Secure"));
        assert!(!cookie("abc", false, 60).contains("Secure"));
    }

    #[test]
    fn only_a_token_shaped_cookie_is_looked_up() {
        let token = secrets::token();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={token}")).unwrap(),
        );
        assert_eq!(session_id(&headers), Some(token.as_str()));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("lifeboat_session=' OR 1=1"),
        );
        assert_eq!(session_id(&headers), None);
    }
}
