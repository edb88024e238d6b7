//! The user-facing servers inside `lifeboat serve` (IMAP, POP3, submission and the web
//! portal): binding
//! before the privilege drop, the shared TLS certificate and authenticator, reload on
//! SIGHUP, and draining on shutdown.
//!
//! The certificate is read before the privilege drop too, so a key readable only by root
//! works at start; a reload runs as the service account and needs the files readable by
//! it (a failed reload keeps the running certificate). A missing certificate does not
//! stop `serve` (capture must go on): see `lifeboat_servers::tls`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lifeboat_mailstore::Store;
use lifeboat_servers::auth::backend::OriginImap;
use lifeboat_servers::auth::{AuthLimits, Authenticator, Backend};
use lifeboat_servers::imap::server::{self as imap, Imap};
use lifeboat_servers::listener::{self, ServerListener};
use lifeboat_servers::pop3::{self, Pop3};
use lifeboat_servers::tls::Tls;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::supervisor::Supervisor;
use crate::config::{AuthBackend, Config};
use crate::exit::Failure;
use lifeboat_servers::submission::{self, Submission};
use lifeboat_web::{MailPorts, Web};

/// Listeners bound and certificate loaded, not serving yet.
pub struct Bound {
    imap: Vec<ServerListener>,
    pop3: Vec<ServerListener>,
    submission: Vec<ServerListener>,
    web: Vec<ServerListener>,
    tls: Arc<Tls>,
}

/// Binds the `[imap]`, `[pop3]`, `[submission]` and `[web]` listeners and loads `[tls]` (as root,
/// before the privilege drop).
pub async fn bind(config: &Config) -> Result<Bound, Failure> {
    let imap = bind_section("imap", &config.imap.listen, &config.imap.tls_listen).await?;
    let pop3 = bind_section("pop3", &config.pop3.listen, &config.pop3.tls_listen).await?;
    let submission = bind_section(
        "submission",
        &config.submission.listen,
        &config.submission.tls_listen,
    )
    .await?;
    let web = bind_section("web", &config.web.listen, &config.web.tls_listen).await?;
    // Without user-facing listeners there is nothing to use a certificate for, and
    // nothing to warn about.
    let tls = if imap.is_empty() && pop3.is_empty() && submission.is_empty() && web.is_empty() {
        Tls::disabled()
    } else {
        Tls::load(&config.tls.cert, &config.tls.key)
    };
    Ok(Bound {
        imap,
        pop3,
        submission,
        web,
        tls,
    })
}

async fn bind_section(
    section: &str,
    listen: &[SocketAddr],
    tls_listen: &[SocketAddr],
) -> Result<Vec<ServerListener>, Failure> {
    listener::bind(listen, tls_listen)
        .await
        .map_err(|(address, e)| {
            let key = if tls_listen.contains(&address) {
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
    auth: Arc<Authenticator>,
    imap: Arc<Imap>,
    pop3: Arc<Pop3>,
    submission: Arc<Submission>,
    web: Arc<Web>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bound {
    pub fn start(
        self,
        store: &Store,
        config: &Config,
        supervisor: &Supervisor,
        stopped: watch::Receiver<bool>,
    ) -> Result<Running, Failure> {
        let limits = AuthLimits {
            cache_ttl: Duration::from_secs(config.auth.login_cache_seconds),
            source_timeout: config.auth.source_timeout,
            source_retry_after: config.auth.source_retry_after,
            ..AuthLimits::default()
        };
        let auth = Authenticator::with_backend(store.clone(), limits, auth_backend(config)?);
        let imap = Imap::new(
            store.clone(),
            auth.clone(),
            self.tls.clone(),
            imap_settings(config),
            imap::DEFAULT_LIMITS,
        );
        let submission = Submission::new(
            store.clone(),
            auth.clone(),
            self.tls.clone(),
            submission_settings(config),
            submission::DEFAULT_LIMITS,
        );
        let web = Web::new(
            store.clone(),
            auth.clone(),
            self.tls.clone(),
            web_settings(config),
            lifeboat_web::DEFAULT_LIMITS,
        );
        let pop3 = Pop3::new(
            store.clone(),
            auth.clone(),
            self.tls.clone(),
            pop3_settings(config),
            pop3::DEFAULT_LIMITS,
        );
        let mut tasks = Vec::new();
        if !self.imap.is_empty() {
            for listener in &self.imap {
                tracing::info!(address = %listener.address, implicit_tls = listener.implicit_tls, "imap listening");
            }
            tasks.push(supervisor.spawn(
                "imap",
                listener::serve(self.imap, imap.clone(), stopped.clone()),
            ));
        }
        if !self.submission.is_empty() {
            for listener in &self.submission {
                tracing::info!(address = %listener.address, implicit_tls = listener.implicit_tls, "submission listening");
            }
            tasks.push(supervisor.spawn(
                "submission",
                listener::serve(self.submission, submission.clone(), stopped.clone()),
            ));
        }
        if !self.pop3.is_empty() {
            for listener in &self.pop3 {
                tracing::info!(address = %listener.address, implicit_tls = listener.implicit_tls, "pop3 listening");
            }
            tasks.push(supervisor.spawn(
                "pop3",
                listener::serve(self.pop3, pop3.clone(), stopped.clone()),
            ));
        }
        if !self.web.is_empty() {
            for listener in &self.web {
                tracing::info!(address = %listener.address, tls = listener.implicit_tls, "web listening");
            }
            tokio::spawn(web.clone().sweep_sessions(stopped.clone()));
            tasks.push(supervisor.spawn("web", listener::serve(self.web, web.clone(), stopped)));
        }
        Ok(Running {
            tls: self.tls,
            auth,
            imap,
            pop3,
            submission,
            web,
            tasks,
        })
    }
}

/// The password source `[auth] backend` names. Fails on a CA file that cannot be used,
/// since every login at the origin would fail with it.
pub fn auth_backend(config: &Config) -> Result<Backend, Failure> {
    Ok(match config.auth.backend {
        AuthBackend::Local => Backend::Local,
        AuthBackend::Directory => match config.directory.settings() {
            Some(settings) => Backend::Directory(Box::new(settings)),
            None => Backend::Local,
        },
        AuthBackend::OriginImap => {
            let Some(server) = config.auth.origin_imap.clone() else {
                return Ok(Backend::Local);
            };
            let tls =
                lifeboat_directory::tls::client_config(config.auth.origin_imap_ca_file.as_deref())
                    .map_err(|e| Failure::failed(format!("auth.origin_imap_ca_file: {e}")))?;
            Backend::OriginImap(OriginImap { server, tls })
        }
    })
}

impl Running {
    /// SIGHUP: new settings and a fresh read of the certificate files.
    pub fn reload(&self, config: &Config) {
        self.imap.reload(imap_settings(config));
        self.pop3.reload(pop3_settings(config));
        self.submission.reload(submission_settings(config));
        self.web.reload(web_settings(config));
        match auth_backend(config) {
            Ok(backend) => self.auth.set_backend(backend),
            Err(e) => {
                tracing::error!(error = %e, "password source not reloaded; keeping the running one")
            }
        }
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

fn submission_settings(config: &Config) -> submission::Settings {
    submission::Settings {
        hostname: config.hostname.clone(),
        allow_plaintext: config.auth.allow_plaintext,
        relay: (
            config.submission.relay.host.clone(),
            config.submission.relay.port,
        ),
        max_message_size: config.milter.max_message_size,
        save_sent: config.submission.save_sent,
        routes: super::routes(config),
    }
}

fn pop3_settings(config: &Config) -> pop3::Settings {
    pop3::Settings {
        hostname: config.hostname.clone(),
        allow_plaintext: config.auth.allow_plaintext,
    }
}

fn web_settings(config: &Config) -> lifeboat_web::Settings {
    let port = |list: &[SocketAddr]| list.first().map(SocketAddr::port);
    lifeboat_web::Settings {
        base_url: config.web_base_url(),
        allow_plaintext: config.auth.allow_plaintext,
        submission: submission_settings(config),
        ports: MailPorts {
            imap: port(&config.imap.listen),
            imaps: port(&config.imap.tls_listen),
            pop3: port(&config.pop3.listen),
            pop3s: port(&config.pop3.tls_listen),
            submission: port(&config.submission.listen),
            submissions: port(&config.submission.tls_listen),
        },
        domains: config
            .origins
            .iter()
            .flat_map(|origin| origin.domains.iter().cloned())
            .collect(),
        notice_from: config.notify.from.as_ref().map_or_else(
            || format!("lifeboat@{}", config.hostname),
            ToString::to_string,
        ),
    }
}
