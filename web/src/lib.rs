//! Lifeboat's web portal: during an outage users read, search and send their mail in a
//! browser, on the same store and under the same rules as IMAP, POP3 and submission.
//!
//! Layers, from the socket in:
//!
//! - [`server`]: the [`Web`] server plugs into `lifeboat_servers::listener` (binding,
//!   connection limits, implicit TLS, health, draining) and runs HTTP/1.1 with hyper on
//!   each connection, handing requests to one axum router.
//! - [`security`]: headers on every answer (CSP, HSTS on TLS, ...), cross-site request
//!   refusal, the client's connection facts ([`security::Client`]).
//! - [`session`]: logins kept server side (SQLite, hashed ids), cookies, CSRF tokens,
//!   timeouts and revocation through `Authenticator::still_valid`.
//! - [`routes`]: one file per area (login, folders, messages, compose, settings,
//!   password reset, autoconfiguration, static assets).
//! - [`mail`]: what a page needs from a message, without sockets or HTTP: reading the
//!   MIME tree through `lifeboat_servers::imap::mime`, sanitising HTML (ammonia),
//!   building replies and forwards (mail-builder), attachment names.
//! - [`pages`]: askama templates, checked at compile time, and [`assets`] embedded in
//!   the binary.

pub mod assets;
pub mod banner;
pub mod clientconfig;
pub mod error;
pub mod mail;
pub mod pages;
pub mod password_rule;
pub mod routes;
pub mod secrets;
pub mod security;
pub mod server;
pub mod session;

use std::sync::Arc;

use lifeboat_mailstore::Store;
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_servers::auth::Authenticator;
use lifeboat_servers::limits::{ConnectionCounter, ConnectionLimits};
use lifeboat_servers::submission;
use lifeboat_servers::tls::Tls;

pub use server::Web;

/// Browsers open several connections per user; a busy office behind one NAT address
/// opens many.
pub const DEFAULT_LIMITS: ConnectionLimits = ConnectionLimits {
    per_ip: 200,
    total: 2000,
};

/// Ports of this host's mail servers, for the "set up a mail app" page and
/// autoconfiguration (`None`: that listener is off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailPorts {
    pub imap: Option<u16>,
    pub imaps: Option<u16>,
    pub pop3: Option<u16>,
    pub pop3s: Option<u16>,
    pub submission: Option<u16>,
    pub submissions: Option<u16>,
}

/// What the portal takes from the configuration; replaced whole on SIGHUP.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where users reach the portal, with a trailing slash (`https://host/`): reset
    /// links and the setup page use it.
    pub base_url: String,
    /// `[auth] allow_plaintext`: logins over plain HTTP on a listener that is not
    /// loopback.
    pub allow_plaintext: bool,
    /// The submission path (relay, size limit, sent copies, routes, hostname).
    pub submission: submission::Settings,
    pub ports: MailPorts,
    /// The protected domains (autoconfiguration answers for these only).
    pub domains: Vec<String>,
    /// Envelope and From: address of password-reset mail.
    pub notice_from: String,
}

impl Settings {
    pub fn hostname(&self) -> &str {
        &self.submission.hostname
    }
}

/// What every request handler shares.
pub struct App {
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub tls: Arc<Tls>,
    pub settings: Reloadable<Settings>,
    pub resets: routes::reset::Limiter,
}

impl App {
    pub fn new(store: Store, auth: Arc<Authenticator>, tls: Arc<Tls>, settings: Settings) -> App {
        App {
            store,
            auth,
            tls,
            settings: Reloadable::new(settings),
            resets: routes::reset::Limiter::default(),
        }
    }
}

/// The connection counter type the listener uses (re-exported for `serve`).
pub type Connections = ConnectionCounter;
