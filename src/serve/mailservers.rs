//! The user-facing servers inside `lifeboat serve` (IMAP and POP3; submission will join
//! here): binding before the privilege drop, the shared TLS certificate and
//! authenticator, reload on SIGHUP, and draining on shutdown.
//!
//! The certificate is read before the privilege drop too, so a key readable only by root
//! works at start; a reload runs as the service account and needs the files readable by
//! it (a failed reload keeps the running certificate). A missing certificate does not
//! stop `serve` (capture must go on): see `lifeboat_mailstore::tls`.

use std::sync::Arc;
use std::time::Duration;

use lifeboat_mailstore::Store;
use lifeboat_mailstore::auth::{AuthLimits, Authenticator};
use lifeboat_mailstore::imap::server::{self as imap, Imap};
use lifeboat_mailstore::pop3::{self, Pop3, Pop3Listener};
use lifeboat_mailstore::tls::Tls;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ServerListeners};
use crate::exit::Failure;

/// Listeners bound and certificate loaded, not serving yet.
pub struct Bound {
    imap: Vec<Pop3Listener>,
    pop3: Vec<Pop3Listener>,
    tls: Arc<Tls>,
}

/// Binds the `[imap]` and `[pop3]` listeners and loads `[tls]` (as root, before the
/// privilege drop).
pub async fn bind(config: &Config) -> Result<Bound, Failure> {
    let imap = bind_section("imap", &config.imap).await?;
    let pop3 = bind_section("pop3", &config.pop3).await?;
    // Without user-facing listeners there is nothing to use a certificate for, and
    // nothing to warn about.
    let tls = if imap.is_empty() && pop3.is_empty() {
        Tls::disabled()
    } else {
        Tls::load(&config.tls.cert, &config.tls.key)
    };
    Ok(Bound { imap, pop3, tls })
}

async fn bind_section(
    section: &str,
    listeners: &ServerListeners,
) -> Result<Vec<Pop3Listener>, Failure> {
    pop3::bind(&listeners.listen, &listeners.tls_listen)
        .await
        .map_err(|(address, e)| {
            let key = if listeners.tls_listen.contains(&address) {
                "tls_listen"
            } else {
                "listen"
            };
            Failure::failed(format!("{section}.{key}: cannot listen on {address}: {e}"))
        })
}

/// The running servers.
pub struct Running {
    tls: Arc<Tls>,
    imap: Arc<Imap>,
    pop3: Arc<Pop3>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bound {
    pub fn start(self, store: &Store, config: &Config, stopped: watch::Receiver<bool>) -> Running {
        let limits = AuthLimits {
            cache_ttl: Duration::from_secs(config.auth.login_cache_seconds),
            ..AuthLimits::default()
        };
        let auth = Authenticator::new(store.clone(), limits);
        let imap = Imap::new(
            store.clone(),
            auth.clone(),
            self.tls.clone(),
            imap_settings(config),
            imap::DEFAULT_LIMITS,
        );
        let pop3 = Pop3::new(
            store.clone(),
            auth,
            self.tls.clone(),
            pop3_settings(config),
            pop3::DEFAULT_LIMITS,
        );
        let mut tasks = Vec::new();
        if !self.imap.is_empty() {
            for listener in &self.imap {
                tracing::info!(address = %listener.address, implicit_tls = listener.implicit_tls, "imap listening");
            }
            tasks.push(tokio::spawn(imap::serve(
                self.imap,
                imap.clone(),
                stopped.clone(),
            )));
        }
        if !self.pop3.is_empty() {
            for listener in &self.pop3 {
                tracing::info!(address = %listener.address, implicit_tls = listener.implicit_tls, "pop3 listening");
            }
            tasks.push(tokio::spawn(pop3::serve(self.pop3, pop3.clone(), stopped)));
        }
        Running {
            tls: self.tls,
            imap,
            pop3,
            tasks,
        }
    }
}

impl Running {
    /// SIGHUP: new settings and a fresh read of the certificate files.
    pub fn reload(&self, config: &Config) {
        self.imap.reload(imap_settings(config));
        self.pop3.reload(pop3_settings(config));
        if !self.tasks.is_empty() {
            let _ = self.tls.reload(&config.tls.cert, &config.tls.key);
        }
    }

    /// Waits until every server has drained after shutdown.
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn imap_settings(config: &Config) -> imap::Settings {
    imap::Settings {
        hostname: config.hostname.clone(),
        allow_plaintext: config.auth.allow_plaintext,
        routes: super::routes(config),
    }
}

fn pop3_settings(config: &Config) -> pop3::Settings {
    pop3::Settings {
        hostname: config.hostname.clone(),
        allow_plaintext: config.auth.allow_plaintext,
    }
}
