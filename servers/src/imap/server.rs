//! The tokio shell around [`Session`]: listeners, implicit TLS and STARTTLS, logins
//! through the shared [`Authenticator`] (delays and lockouts), IDLE, limits, autologout
//! and graceful shutdown. Wire format by imap-next, which splits literals from command
//! lines itself, so bytes of a rejected literal are never parsed as commands.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Tag, Text};
use imap_codec::imap_types::response::{
    Code, CommandContinuationRequest, Greeting, GreetingKind, Response, Status,
};
use imap_next::server::{Event, Options, ResponseHandle, Server};
use imap_next::types::CommandAuthenticate;
use imap_next::{Interrupt, Io, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::response::{After, NoCode, Rejection};
use super::session::{MAX_LITERAL, Session, SessionConfig};
use crate::auth::{Authenticator, plaintext_login_allowed};
use crate::limits::{ConnectionCounter, ConnectionLimits, Refusal};
use crate::listener::Stream;
use crate::listener::{self, Accepted, HANDSHAKE_TIMEOUT};
use crate::tls::Tls;
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::store::Store;

/// RFC 3501 §5.4: at least 30 minutes before an idle client is logged out.
const AUTOLOGOUT: Duration = Duration::from_secs(31 * 60);
/// RFC 2177: a server may drop an IDLE after 30 minutes; a keepalive every 2 minutes
/// stops NAT boxes and proxies from dropping the connection first.
const IDLE_KEEPALIVE: Duration = Duration::from_secs(120);
/// How often an IDLE session looks for changes other processes made (changes made in
/// this process wake it at once).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Largest command line accepted: an APPEND's literal and some.
const MAX_COMMAND: u32 = MAX_LITERAL + 64 * 1024;

pub const DEFAULT_LIMITS: ConnectionLimits = ConnectionLimits {
    per_ip: 50,
    total: 5000,
};

/// What the IMAP server takes from the configuration; replaced whole on reload.
#[derive(Clone, Debug)]
pub struct Settings {
    pub hostname: String,
    /// `[auth] allow_plaintext`.
    pub allow_plaintext: bool,
    pub routes: lifeboat_mailstore::capture::Routes,
}

pub struct Imap {
    store: Store,
    auth: Arc<Authenticator>,
    tls: Arc<Tls>,
    settings: Reloadable<Settings>,
    connections: ConnectionCounter,
}

impl Imap {
    pub fn new(
        store: Store,
        auth: Arc<Authenticator>,
        tls: Arc<Tls>,
        settings: Settings,
        limits: ConnectionLimits,
    ) -> Arc<Imap> {
        Arc::new(Imap {
            store,
            auth,
            tls,
            settings: Reloadable::new(settings),
            connections: ConnectionCounter::new(limits),
        })
    }

    pub fn reload(&self, settings: Settings) {
        self.settings.replace(settings);
    }
}

impl listener::Server for Imap {
    const NAME: &'static str = "imap";

    fn connections(&self) -> &ConnectionCounter {
        &self.connections
    }

    fn refusal(refusal: Refusal) -> &'static [u8] {
        match refusal {
            Refusal::TooManyFromAddress => {
                b"* BYE [UNAVAILABLE] too many connections from your address\r\n"
            }
            Refusal::TooManyInTotal => b"* BYE [UNAVAILABLE] too many connections\r\n",
        }
    }

    /// Open sessions are told the server is going away at shutdown.
    async fn handle(
        self: Arc<Self>,
        connection: Accepted,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        handle(connection, self, shutdown).await
    }
}

/// One connection's bytes and protocol state.
struct Connection {
    /// `None` only while STARTTLS swaps the plain stream for the TLS one.
    stream: Option<Stream>,
    server: Server,
    buffer: Vec<u8>,
}

enum Pumped {
    Event(Event),
    /// Everything queued is written; the protocol needs more bytes.
    NeedInput,
}

impl Connection {
    fn new(stream: Stream, greeting: Greeting<'static>) -> Connection {
        let mut options = Options::default();
        options.max_literal_size = MAX_LITERAL;
        options.max_command_size = MAX_COMMAND;
        options.crlf_relaxed = true;
        Connection {
            stream: Some(stream),
            server: Server::new(options, greeting),
            buffer: vec![0; 16 * 1024],
        }
    }

    /// Writes whatever the protocol state has to say, until it has an event or needs
    /// input.
    async fn pump(&mut self) -> std::io::Result<Result<Pumped, imap_next::server::Error>> {
        loop {
            match self.server.next() {
                Ok(event) => return Ok(Ok(Pumped::Event(event))),
                Err(Interrupt::Io(Io::Output(bytes))) => {
                    let stream = self.stream()?;
                    stream.write_all(&bytes).await?;
                    stream.flush().await?;
                }
                Err(Interrupt::Io(Io::NeedMoreInput)) => return Ok(Ok(Pumped::NeedInput)),
                Err(Interrupt::Error(e)) => return Ok(Err(e)),
            }
        }
    }

    fn stream(&mut self) -> std::io::Result<&mut Stream> {
        self.stream.as_mut().ok_or_else(closed)
    }

    /// Reads more bytes into the protocol state; false when the client closed.
    async fn read(&mut self) -> std::io::Result<bool> {
        let stream = self.stream.as_mut().ok_or_else(closed)?;
        let n = stream.read(&mut self.buffer).await?;
        if n > 0 {
            self.server.enqueue_input(&self.buffer[..n]);
        }
        Ok(n > 0)
    }
}

/// Per-session state the shell keeps besides the [`Session`].
#[derive(Default)]
struct Shell {
    /// Tag of the IDLE in progress.
    idling: Option<Tag<'static>>,
    /// Tag of an AUTHENTICATE waiting for the client's response.
    authenticating: Option<Tag<'static>>,
    /// Close the connection once this response is written.
    close_after: Option<ResponseHandle>,
    /// Start TLS once this response is written.
    tls_after: Option<ResponseHandle>,
    /// When the last keepalive (or the IDLE's start) was sent.
    last_keepalive: Option<std::time::Instant>,
}

impl Shell {
    fn keepalive_due(&mut self) -> bool {
        let due = self
            .last_keepalive
            .is_none_or(|at| at.elapsed() >= IDLE_KEEPALIVE);
        if due {
            self.last_keepalive = Some(std::time::Instant::now());
        }
        due
    }
}

async fn handle(
    connection: Accepted,
    imap: Arc<Imap>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (peer, local, implicit_tls) = (connection.peer, connection.local, connection.implicit_tls);
    let Some(stream) = connection.open(&imap.tls, "imap").await? else {
        return Ok(());
    };
    let (session, greeting) = new_session(&imap, local, implicit_tls);
    let mut session = Some(session);
    let mut conn = Connection::new(stream, greeting);
    let mut shell = Shell::default();
    let mut changes = imap.store.changes();

    loop {
        match conn.pump().await? {
            Ok(Pumped::Event(event)) => {
                let go_on =
                    on_event(event, &mut conn, &mut shell, &mut session, &imap, peer).await?;
                if !go_on {
                    break;
                }
                continue;
            }
            Ok(Pumped::NeedInput) => {}
            Err(error) => {
                protocol_error(&mut conn, &error);
                continue;
            }
        }
        if !wait(
            &mut conn,
            &mut shell,
            &mut session,
            &mut shutdown,
            &mut changes,
        )
        .await?
        {
            return Ok(());
        }
    }
    if let Some(stream) = conn.stream.as_mut() {
        let _ = stream.shutdown().await;
    }
    Ok(())
}

/// A session on the settings in force now, and the greeting that goes with it.
fn new_session(imap: &Imap, local: SocketAddr, implicit_tls: bool) -> (Session, Greeting<'static>) {
    let settings = imap.settings.get();
    let config = Arc::new(SessionConfig {
        hostname: settings.hostname.clone(),
        plaintext_login: plaintext_login_allowed(local, settings.allow_plaintext),
        starttls: !implicit_tls && imap.tls.is_available(),
        routes: settings.routes.clone(),
    });
    let session = Session::new(imap.store.clone(), config, implicit_tls);
    let greeting = Greeting {
        kind: GreetingKind::Ok,
        code: Some(Code::Capability(session.capabilities())),
        text: Text::try_from(format!("{} Lifeboat IMAP ready", settings.hostname))
            .unwrap_or_else(|_| Text::try_from("Lifeboat IMAP ready").expect("valid")),
    };
    (session, greeting)
}

/// Waits, with everything written, for the client, the shutdown, or (in IDLE) news:
/// this process's commits at once, other processes' at the next poll. False when the
/// connection is over: the client closed it, or the server said BYE (shutdown,
/// autologout).
async fn wait(
    conn: &mut Connection,
    shell: &mut Shell,
    session: &mut Option<Session>,
    shutdown: &mut watch::Receiver<bool>,
    changes: &mut watch::Receiver<u64>,
) -> std::io::Result<bool> {
    let wait = if shell.idling.is_some() {
        IDLE_POLL
    } else {
        AUTOLOGOUT
    };
    let read = tokio::select! {
        read = conn.read() => Some(read?),
        _ = shutdown.changed() => {
            bye(conn, "server shutting down");
            let _ = conn.pump().await;
            return Ok(false);
        }
        _ = changes.changed(), if shell.idling.is_some() => {
            idle_report(conn, session).await;
            None
        }
        _ = tokio::time::sleep(wait) => {
            if shell.idling.is_none() {
                bye(conn, "autologout: idle for too long");
                let _ = conn.pump().await;
                return Ok(false);
            }
            if shell.keepalive_due() {
                conn.server.enqueue_status(
                    Status::ok(None, None, "still here").expect("valid text"),
                );
            }
            idle_report(conn, session).await;
            None
        }
    };
    Ok(read != Some(false))
}

/// Handles one protocol event; false when the connection is to be closed.
async fn on_event(
    event: Event,
    conn: &mut Connection,
    shell: &mut Shell,
    session: &mut Option<Session>,
    imap: &Imap,
    peer: SocketAddr,
) -> std::io::Result<bool> {
    match event {
        Event::GreetingSent { .. } => {}
        Event::ResponseSent { handle, .. } => {
            if shell.close_after == Some(handle) {
                return Ok(false);
            }
            if shell.tls_after == Some(handle) {
                shell.tls_after = None;
                return start_tls(conn, imap, session, peer).await;
            }
        }
        Event::CommandReceived { command } => {
            on_command(command, conn, shell, session, imap, peer).await?;
        }
        Event::CommandAuthenticateReceived {
            command_authenticate,
        } => on_authenticate(command_authenticate, conn, shell, session, imap, peer).await,
        Event::AuthenticateDataReceived { authenticate_data } => {
            let tag = shell
                .authenticating
                .take()
                .unwrap_or_else(|| Tag::try_from("*").expect("valid"));
            let status = match authenticate_data {
                AuthenticateData::Continue(data) => {
                    sasl_plain(imap, session, &tag, data.declassify(), peer).await
                }
                AuthenticateData::Cancel => {
                    Status::bad(Some(tag), None, "AUTHENTICATE cancelled").expect("valid text")
                }
            };
            let _ = conn.server.authenticate_finish(status);
        }
        Event::IdleCommandReceived { tag } => on_idle(tag, conn, shell, session),
        Event::IdleDoneReceived => {
            if let Some(tag) = shell.idling.take() {
                idle_report(conn, session).await;
                conn.server.enqueue_status(
                    Status::ok(Some(tag), None, "IDLE terminated").expect("valid text"),
                );
            }
        }
    }
    Ok(true)
}

/// A command: LOGIN is checked here (asynchronously, with the shared rate limits),
/// everything else goes to the session on the blocking pool.
async fn on_command(
    command: Command<'static>,
    conn: &mut Connection,
    shell: &mut Shell,
    session: &mut Option<Session>,
    imap: &Imap,
    peer: SocketAddr,
) -> std::io::Result<()> {
    if let CommandBody::Login { username, password } = &command.body {
        let user = String::from_utf8_lossy(username.as_ref()).into_owned();
        let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
        let response = login(imap, session, &command.tag, &user, &password, peer).await;
        conn.server.enqueue_status(response);
        return Ok(());
    }
    let current = session.take().expect("session present");
    let (back, reply) = tokio::task::spawn_blocking(move || {
        let mut current = current;
        let reply = current.handle(command);
        (current, reply)
    })
    .await
    .map_err(std::io::Error::other)?;
    *session = Some(back);
    let count = reply.responses.len();
    for (index, response) in reply.responses.into_iter().enumerate() {
        let handle = enqueue(&mut conn.server, response);
        if index + 1 == count {
            match reply.after {
                After::Continue => {}
                After::Logout => shell.close_after = handle,
                After::StartTls => shell.tls_after = handle,
            }
        }
    }
    Ok(())
}

/// AUTHENTICATE: PLAIN only, with its initial response (SASL-IR) or after an empty
/// challenge.
async fn on_authenticate(
    command: CommandAuthenticate,
    conn: &mut Connection,
    shell: &mut Shell,
    session: &mut Option<Session>,
    imap: &Imap,
    peer: SocketAddr,
) {
    let tag = command.tag;
    let refusal = session.as_ref().and_then(Session::login_refusal);
    let finish = if let Some(why) = refusal {
        Some(why.status(&tag))
    } else if command.mechanism != AuthMechanism::Plain {
        Some(Rejection::new(None, "only AUTHENTICATE PLAIN is offered").status(&tag))
    } else if let Some(initial) = command.initial_response {
        Some(sasl_plain(imap, session, &tag, initial.declassify(), peer).await)
    } else {
        let _ = conn
            .server
            .authenticate_continue(Session::empty_challenge());
        shell.authenticating = Some(tag);
        None
    };
    if let Some(status) = finish {
        let _ = conn.server.authenticate_finish(status);
    }
}

/// IDLE (RFC 2177), only with a mailbox selected.
fn on_idle(tag: Tag<'static>, conn: &mut Connection, shell: &mut Shell, session: &Option<Session>) {
    let selected = session.as_ref().is_some_and(Session::is_selected);
    if selected {
        let _ = conn
            .server
            .idle_accept(CommandContinuationRequest::basic(None, "idling").expect("valid text"));
        shell.idling = Some(tag);
        shell.last_keepalive = Some(std::time::Instant::now());
    } else {
        let _ = conn.server.idle_reject(
            Status::bad(Some(tag), None, "select a mailbox first").expect("valid text"),
        );
    }
}

fn enqueue(server: &mut Server, response: Response<'static>) -> Option<ResponseHandle> {
    match response {
        Response::Data(data) => Some(server.enqueue_data(data)),
        Response::Status(status) => Some(server.enqueue_status(status)),
        Response::CommandContinuationRequest(request) => {
            Some(server.enqueue_continuation_request(request))
        }
    }
}

/// Untagged news for an IDLE (or a DONE) client.
async fn idle_report(conn: &mut Connection, session: &mut Option<Session>) {
    let Some(current) = session.take() else {
        return;
    };
    let result = tokio::task::spawn_blocking(move || {
        let mut current = current;
        let store = current.store().clone();
        let responses = store.with_reader(|reader| current.poll_changes(reader));
        (current, responses)
    })
    .await;
    let Ok((back, responses)) = result else {
        return;
    };
    *session = Some(back);
    match responses {
        Ok(responses) => {
            for response in responses {
                enqueue(&mut conn.server, response);
            }
        }
        Err(e) => tracing::warn!(error = %e, "imap: cannot look for changes"),
    }
}

async fn login(
    imap: &Imap,
    session: &mut Option<Session>,
    tag: &Tag<'static>,
    user: &str,
    password: &str,
    peer: SocketAddr,
) -> Status<'static> {
    let current = session.as_mut().expect("session present");
    if let Some(why) = current.login_refusal() {
        return why.status(tag);
    }
    match imap.auth.login(peer.ip(), user, password).await {
        Ok(record) => {
            tracing::info!(%peer, user = %record.address, "imap: logged in");
            current.logged_in(&record);
            match current.login_ok(tag, "logged in") {
                Response::Status(status) => status,
                _ => unreachable!("login_ok is a status"),
            }
        }
        Err(failure) => {
            let (code, text) = match failure {
                crate::auth::AuthFailure::Unavailable(_) => {
                    (NoCode::Unavailable, "try again later")
                }
                crate::auth::AuthFailure::LockedOut => (
                    NoCode::AuthenticationFailed,
                    "too many failed logins; try again later",
                ),
                _ => (NoCode::AuthenticationFailed, "wrong user name or password"),
            };
            Rejection::new(Some(code), text).status(tag)
        }
    }
}

async fn sasl_plain(
    imap: &Imap,
    session: &mut Option<Session>,
    tag: &Tag<'static>,
    response: &[u8],
    peer: SocketAddr,
) -> Status<'static> {
    // imap-next hands over the decoded bytes; a client may still send base64 text.
    let decoded = match base64::engine::general_purpose::STANDARD.decode(response) {
        Ok(bytes) if bytes.contains(&0) => bytes,
        _ => response.to_vec(),
    };
    match crate::sasl::plain(&decoded) {
        Ok((user, password)) => login(imap, session, tag, &user, &password, peer).await,
        Err(why) => Status::bad(Some(tag.clone()), None, why).expect("valid text"),
    }
}

async fn start_tls(
    conn: &mut Connection,
    imap: &Imap,
    session: &mut Option<Session>,
    peer: SocketAddr,
) -> std::io::Result<bool> {
    let Some(acceptor) = imap.tls.acceptor() else {
        return Ok(false);
    };
    let Some(Stream::Plain(tcp)) = conn.stream.take() else {
        return Ok(false);
    };
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
    conn.stream = Some(Stream::Tls(Box::new(tls)));
    if let Some(session) = session.as_mut() {
        session.tls_started();
    }
    tracing::debug!(%peer, "imap: STARTTLS done");
    Ok(true)
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")
}

fn bye(conn: &mut Connection, text: &'static str) {
    conn.server
        .enqueue_status(Status::bye(None, text).expect("valid text"));
}

/// A line imap-next could not take: answer BAD, tagged when the line began with a
/// usable tag (clients wait for their tag), and go on with the next one.
fn protocol_error(conn: &mut Connection, error: &imap_next::server::Error) {
    use imap_next::server::Error as E;
    let (text, discarded) = match error {
        E::LiteralTooLong { discarded_bytes } => ("[TOOBIG] literal too long", discarded_bytes),
        E::CommandTooLong { discarded_bytes } => ("command too long", discarded_bytes),
        E::ExpectedCrlfGotLf { discarded_bytes } => ("lines must end with CRLF", discarded_bytes),
        E::MalformedMessage { discarded_bytes } => {
            ("could not parse that command", discarded_bytes)
        }
    };
    let tag = discarded
        .declassify()
        .split(|&b| b == b' ')
        .next()
        .and_then(|word| Tag::try_from(word.to_vec()).ok());
    conn.server
        .enqueue_status(Status::bad(tag, None, text).expect("valid text"));
}
