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

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::{Routes, Store};
use lifeboat_servers::limits::{ConnectionCounter, ConnectionLimits, Refusal};
use lifeboat_servers::listener::{Accepted, Server};
use tokio::sync::watch;

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
        crate::config::allowed(&self.settings().allowed_clients, ip)
    }
}

/// The fallback listener behind the accept loop every server shares (limits, back-off
/// on accept errors, health, drain on shutdown).
pub struct FallbackServer {
    fallback: Arc<Fallback>,
    connections: ConnectionCounter,
}

impl FallbackServer {
    /// At most `max_sessions` at once (Postfix opens a few per destination): capture's
    /// own share of descriptors, outside the budget the user-facing servers share.
    pub fn new(fallback: Arc<Fallback>, max_sessions: usize) -> Arc<FallbackServer> {
        let limits = ConnectionLimits {
            per_ip: max_sessions,
            total: max_sessions,
        };
        Arc::new(FallbackServer {
            fallback,
            connections: ConnectionCounter::outside_budget(limits),
        })
    }
}

impl Server for FallbackServer {
    const NAME: &'static str = "fallback";

    fn connections(&self) -> &ConnectionCounter {
        &self.connections
    }

    fn refusal(_: Refusal) -> &'static [u8] {
        b"421 4.3.2 too many sessions; try again later\r\n"
    }

    /// A session in progress finishes its transaction; shutdown waits for it.
    async fn handle(
        self: Arc<Self>,
        connection: Accepted,
        _shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let (stream, peer) = (connection.stream, connection.peer);
        let _ = stream.set_nodelay(true);
        if !self.fallback.allows(peer.ip()) {
            tracing::warn!(%peer, "fallback: connection from a client not in fallback.allowed_clients");
            let mut stream = stream;
            return tokio::io::AsyncWriteExt::write_all(
                &mut stream,
                b"554 5.7.1 not an allowed client\r\n",
            )
            .await;
        }
        run_session(stream, &self.fallback, IDLE_TIMEOUT).await
    }
}
