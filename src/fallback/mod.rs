//! The fallback listener: the SMTP server Postfix's `smtp_fallback_relay` points at.
//!
//! Postfix hands it every message the origin deferred or refused. While the recipient's
//! origin is judged down (outage or recovering) and the recipient is protected and
//! active, it stores a diverted copy and answers 250 only after the durable write;
//! otherwise it answers 4xx so the mail stays in Postfix's queue. It never answers 5xx
//! to a delivery, so it can never make Postfix bounce mail. Every attempt is recorded
//! as a deferral event for the origin watch.

mod connection;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::{Routes, Store};
use lifeboat_servers::health::{self, ListenerHealth};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::origin_watch::Watch;

pub use connection::run_session;

/// What the fallback listener needs from the configuration; replaced whole on reload.
#[derive(Clone, Debug)]
pub struct Settings {
    pub hostname: String,
    pub routes: Routes,
    pub max_message_size: u64,
    pub allowed_clients: Vec<IpNet>,
}

pub struct Fallback {
    store: Store,
    settings: Reloadable<Settings>,
    /// Judges the origin when Postfix brings a deferred message; `None` in tests that
    /// drive sessions without an origin watch.
    watch: Option<Arc<Watch>>,
}

/// Longest a client may stay silent before the session is dropped (RFC 5321 §4.5.3.2
/// asks for at least 5 minutes).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

impl Fallback {
    pub fn new(store: Store, settings: Settings, watch: Option<Arc<Watch>>) -> Arc<Fallback> {
        Arc::new(Fallback {
            store,
            settings: Reloadable::new(settings),
            watch,
        })
    }

    pub fn reload(&self, settings: Settings) {
        self.settings.replace(settings);
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.settings()
            .allowed_clients
            .iter()
            .any(|net| net.contains(&ip))
    }
}

/// Accepts sessions until `shutdown` turns true, then waits for open sessions to end.
/// At most `max_sessions` at once (Postfix opens a few per destination); an accept error
/// never ends the loop.
pub async fn serve(
    listener: TcpListener,
    health: Arc<ListenerHealth>,
    fallback: Arc<Fallback>,
    max_sessions: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        health.accept_failed(&e);
                        tokio::time::sleep(health::ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                health.accepted();
                while sessions.try_join_next().is_some() {}
                if sessions.len() >= max_sessions {
                    tracing::warn!(%peer, "fallback: too many sessions, refusing one");
                    continue;
                }
                let fallback = fallback.clone();
                sessions.spawn(async move { handle(stream, peer, fallback).await });
            }
        }
    }
    health.stopped();
    drop(listener);
    while sessions.join_next().await.is_some() {}
}

async fn handle(stream: tokio::net::TcpStream, peer: SocketAddr, fallback: Arc<Fallback>) {
    let _ = stream.set_nodelay(true);
    if !fallback.allows(peer.ip()) {
        tracing::warn!(%peer, "fallback: connection from a client not in fallback.allowed_clients");
        let (_, mut writer) = stream.into_split();
        let _ = tokio::io::AsyncWriteExt::write_all(
            &mut writer,
            b"554 5.7.1 not an allowed client\r\n",
        )
        .await;
        return;
    }
    if let Err(e) = run_session(stream, &fallback, IDLE_TIMEOUT).await {
        tracing::debug!(%peer, error = %e, "fallback: session ended");
    }
}
