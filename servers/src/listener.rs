//! The listening side every user-facing server shares: binding its addresses, accepting
//! connections within the connection limits, and draining on shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;

use crate::health;
use crate::limits::{ConnectionCounter, ConnectionSlot, Refusal};
use crate::tls::Tls;

/// Limit on a TLS handshake (implicit TLS, or after STARTTLS/STLS).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection may stay without logging in, however busy it keeps itself:
/// unauthenticated clients must not hold a place (and a descriptor) for ever.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A bound listening socket: plain (STARTTLS/STLS offered) or implicit TLS.
pub struct ServerListener {
    pub listener: TcpListener,
    pub address: SocketAddr,
    pub implicit_tls: bool,
}

/// Binds every address (before the privilege drop: the default ports are privileged).
/// The error names the address.
pub async fn bind(
    listen: &[SocketAddr],
    tls_listen: &[SocketAddr],
) -> Result<Vec<ServerListener>, (SocketAddr, std::io::Error)> {
    let mut bound = Vec::new();
    let all = listen
        .iter()
        .map(|a| (*a, false))
        .chain(tls_listen.iter().map(|a| (*a, true)));
    for (address, implicit_tls) in all {
        let listener = TcpListener::bind(address).await.map_err(|e| (address, e))?;
        bound.push(ServerListener {
            listener,
            address,
            implicit_tls,
        });
    }
    Ok(bound)
}

/// A new connection and where it came in.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// The listener's own address (loopback listeners may allow plaintext logins).
    pub local: SocketAddr,
    pub implicit_tls: bool,
}

impl Accepted {
    /// The connection's byte stream: TLS from the first byte on an implicit-TLS listener
    /// (`None`, logged, when no certificate is loaded: the client cannot be served).
    pub async fn open(self, tls: &Tls, server: &str) -> io::Result<Option<Stream>> {
        let _ = self.stream.set_nodelay(true);
        if !self.implicit_tls {
            return Ok(Some(Stream::Plain(self.stream)));
        }
        let Some(acceptor) = tls.acceptor() else {
            tracing::warn!(server, peer = %self.peer, local = %self.local,
                "no TLS certificate loaded; closing an implicit-TLS connection");
            return Ok(None);
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(self.stream))
            .await
            .map_err(|_| io::Error::other("TLS handshake timed out"))??;
        Ok(Some(Stream::Tls(Box::new(tls))))
    }
}

/// A connection's bytes: plain TCP, or TLS (from the start, or after STARTTLS).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A protocol server behind [`serve`].
pub trait Server: Send + Sync + 'static {
    /// For log lines: `imap`, `pop3`, `submission`.
    const NAME: &'static str;

    fn connections(&self) -> &ConnectionCounter;

    /// What a plain client turned away by a limit is told, in the protocol's words.
    fn refusal(refusal: Refusal) -> &'static [u8];

    /// Runs one connection to its end; it should wind down when `shutdown` turns true.
    fn handle(
        self: Arc<Self>,
        connection: Accepted,
        shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Accepts connections on every listener until `shutdown` turns true, then waits for
/// the open ones. The listeners' health records exist from the call on, before the
/// future first runs.
pub fn serve<S: Server>(
    listeners: Vec<ServerListener>,
    server: Arc<S>,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send {
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let health = health::register(S::NAME, listener.address);
            accept_loop(listener, health, server.clone(), shutdown.clone())
        })
        .collect();
    async move {
        let mut running = JoinSet::new();
        for accept in loops {
            running.spawn(accept);
        }
        while running.join_next().await.is_some() {}
    }
}

async fn accept_loop<S: Server>(
    listener: ServerListener,
    health: Arc<health::ListenerHealth>,
    server: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, or the peer gave up before accept: never a
                        // reason to stop listening.
                        health.accept_failed(&e);
                        tokio::time::sleep(health::ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                health.accepted();
                while sessions.try_join_next().is_some() {}
                let slot = match server.connections().admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        tracing::warn!(server = S::NAME, %peer, ?refusal, "connection refused");
                        if !listener.implicit_tls {
                            // A TLS client would not understand plain words.
                            let text = S::refusal(refusal);
                            tokio::spawn(async move { { stream }.write_all(text).await });
                        }
                        continue;
                    }
                };
                let connection = Accepted {
                    stream,
                    peer,
                    local: listener.address,
                    implicit_tls: listener.implicit_tls,
                };
                let (server, shutdown) = (server.clone(), shutdown.clone());
                sessions.spawn(async move {
                    let _slot: ConnectionSlot = slot;
                    if let Err(e) = server.handle(connection, shutdown).await {
                        tracing::debug!(server = S::NAME, %peer, error = %e, "session ended");
                    }
                });
            }
        }
    }
    health.stopped();
    drop(listener);
    while sessions.join_next().await.is_some() {}
}
