//! The portal as one of `lifeboat_servers::listener`'s servers: the shared accept loop
//! binds, limits connections, does implicit TLS and drains; each connection here runs
//! HTTP/1.1 (hyper) into the axum router, with the connection's facts attached to every
//! request as a [`Client`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use lifeboat_mailstore::Store;
use lifeboat_servers::auth::{Authenticator, is_loopback_listener};
use lifeboat_servers::limits::{ConnectionCounter, ConnectionLimits, Refusal};
use lifeboat_servers::listener::{Accepted, Server};
use lifeboat_servers::tls::Tls;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::security::Client;
use crate::{App, Settings};

/// How long a client may take to send a request's header (and how long an idle
/// keep-alive connection is kept).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Web {
    pub app: Arc<App>,
    router: Router,
    connections: ConnectionCounter,
}

impl Web {
    pub fn new(
        store: Store,
        auth: Arc<Authenticator>,
        tls: Arc<Tls>,
        settings: Settings,
        limits: ConnectionLimits,
    ) -> Arc<Web> {
        let app = Arc::new(App::new(store, auth, tls, settings));
        Arc::new(Web {
            router: crate::routes::router(app.clone()),
            app,
            connections: ConnectionCounter::new(limits),
        })
    }

    pub fn reload(&self, settings: Settings) {
        self.app.settings.replace(settings);
    }

    /// Removes ended sessions from the index every few minutes until shutdown.
    pub async fn sweep_sessions(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        use crate::session::{IDLE_TIMEOUT, LIFETIME};
        loop {
            let now = lifeboat_mailstore::store::now();
            let store = self.app.store.clone();
            let swept = tokio::task::spawn_blocking(move || {
                store.delete_stale_web_sessions(now - IDLE_TIMEOUT, now - LIFETIME)
            })
            .await;
            match swept {
                Ok(Ok(n)) if n > 0 => tracing::debug!(sessions = n, "web: ended sessions removed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "web: cannot remove ended sessions"),
                _ => {}
            }
            tokio::select! {
                _ = stopped.changed() => return,
                () = tokio::time::sleep(Duration::from_secs(600)) => {}
            }
        }
    }

    /// The router alone, for tests that need no socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }
}

impl Server for Web {
    const NAME: &'static str = "web";

    fn connections(&self) -> &ConnectionCounter {
        &self.connections
    }

    fn refusal(refusal: Refusal) -> &'static [u8] {
        match refusal {
            Refusal::TooManyFromAddress => {
                b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            Refusal::TooManyInTotal => {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
        }
    }

    async fn handle(
        self: Arc<Self>,
        connection: Accepted,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let client = Client {
            ip: connection.peer.ip(),
            tls: connection.implicit_tls,
            loopback_listener: is_loopback_listener(connection.local),
        };
        let Some(stream) = connection.open(&self.app.tls, Self::NAME).await? else {
            return Ok(());
        };
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(client);
            router.clone().oneshot(request)
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(64 * 1024);
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => return result.map_err(std::io::Error::other),
            _ = shutdown.changed() => connection.as_mut().graceful_shutdown(),
        }
        // The request in progress finishes; the connection then closes.
        connection.await.map_err(std::io::Error::other)
    }
}
