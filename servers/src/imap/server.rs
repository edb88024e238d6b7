//! The tokio shell around [`Session`]: listeners, implicit TLS and STARTTLS, logins
//! through the shared [`Authenticator`] (delays and lockouts), IDLE, time limits and
//! graceful shutdown.
//!
//! The client's bytes become messages in [`Input`] (small limits before login, APPEND
//! literals spooled to a file after, literal bytes never parsed as commands); responses
//! are encoded by imap-codec and written as they are made: a command runs on the
//! blocking pool and sends its untagged responses through a small channel, waiting
//! while the client is slow to read, so a long FETCH never sits in memory whole.
//!
//! Every connection is bounded in time: [`LOGIN_TIMEOUT`] to log in, a command line
//! with its literals within [`COMMAND_TIMEOUT`] of its first byte (the idle timer used
//! to restart on every byte), [`AUTOLOGOUT`] without a command. A session ends at its
//! next command, or within [`USER_RECHECK`] in IDLE, once its user was disabled,
//! deleted or given a new password. At shutdown a running command is cancelled and a
//! write the client does not take is abandoned.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use imap_codec::encode::{Encoder, Fragment};
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{
    Code, CommandContinuationRequest, Greeting, GreetingKind, Response, Status, StatusKind,
};
use imap_codec::{GreetingCodec, ResponseCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::input::{Expect, Input, Received, Refusal, Step};
use super::preparse::Request;
use super::response::{After, Gone, NoCode, Outbox, Outgoing, Rejection, bye_status, status, text};
use super::session::{Session, SessionConfig};
use super::upload::Append;
use crate::auth::{AuthFailure, Authenticator, plaintext_login_allowed};
use crate::limits::{ConnectionCounter, ConnectionLimits, Refusal as LimitRefusal};
use crate::listener::{self, Accepted, HANDSHAKE_TIMEOUT, LOGIN_TIMEOUT, Stream};
use crate::tls::Tls;
use lifeboat_mailstore::reader::UserRecord;
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
/// How often an IDLE session checks that its user may still be in (the account could
/// have been disabled, deleted or given a new password meanwhile).
const USER_RECHECK: Duration = Duration::from_secs(10);
/// A command line and its literals must all arrive within this of its first byte, so a
/// client trickling a byte at a time keeps no place for ever. As long as the
/// autologout: a 50 MiB APPEND over a slow link (30 KB/s) still fits.
const COMMAND_TIMEOUT: Duration = AUTOLOGOUT;
/// A write that makes no progress for this long ends the connection: the client
/// stopped reading.
const WRITE_STALL: Duration = Duration::from_secs(120);
/// Bytes handed to the socket at a time (each within [`WRITE_STALL`]).
const WRITE_CHUNK: usize = 64 * 1024;
/// Responses a running command may have made ahead of what is written: with a FETCH
/// response at most a message or about a MiB of items, what one command holds in
/// memory stays a few of those.
const IN_FLIGHT: usize = 2;
/// How long the last words (a `* BYE`) may take to write.
const LAST_WORDS: Duration = Duration::from_secs(5);

/// One APPEND at a time reads its messages back from the spool (a MULTIAPPEND one
/// message at a time): the store takes a message as bytes (held twice while it is
/// written), so ten 50 MiB uploads finishing together would need a gigabyte. The
/// others wait their turn.
static SPOOLED_APPENDS: Mutex<()> = Mutex::new(());

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

    fn refusal(refusal: LimitRefusal) -> &'static [u8] {
        match refusal {
            LimitRefusal::TooManyFromAddress => {
                b"* BYE [UNAVAILABLE] too many connections from your address\r\n"
            }
            LimitRefusal::TooManyInTotal => b"* BYE [UNAVAILABLE] too many connections\r\n",
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

/// Per-connection state besides the [`Session`]: what the shell drives itself.
struct Shell {
    peer: SocketAddr,
    /// The user as they logged in: the session lasts as long as this record does.
    user: Option<UserRecord>,
    /// Tag of the IDLE in progress.
    idling: Option<Tag<'static>>,
    /// Tag of an AUTHENTICATE waiting for the client's response.
    authenticating: Option<Tag<'static>>,
    connected: Instant,
    last_command: Instant,
    /// When the last keepalive (or the IDLE's start) was sent.
    last_keepalive: Instant,
    last_user_check: Instant,
}

/// What the shell waits for besides the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Login,
    Command,
    Autologout,
    /// In IDLE: news from other processes, keepalives, the user check.
    IdleTick,
}

impl Shell {
    fn new(peer: SocketAddr) -> Shell {
        let now = Instant::now();
        Shell {
            peer,
            user: None,
            idling: None,
            authenticating: None,
            connected: now,
            last_command: now,
            last_keepalive: now,
            last_user_check: now,
        }
    }

    /// The next timer to go off, and when. A command being read is bounded from its
    /// first byte, so bytes that trickle in never push the end further out; between
    /// commands the autologout runs from the last one.
    fn timer(&self, input: &Input) -> (Instant, Timer) {
        let mut timers = Vec::with_capacity(3);
        if self.user.is_none() {
            timers.push((self.connected + LOGIN_TIMEOUT, Timer::Login));
        }
        if let Some(started) = input.started() {
            timers.push((Instant::from_std(started) + COMMAND_TIMEOUT, Timer::Command));
        } else if self.idling.is_none() {
            timers.push((self.last_command + AUTOLOGOUT, Timer::Autologout));
        }
        if self.idling.is_some() {
            timers.push((Instant::now() + IDLE_POLL, Timer::IdleTick));
        }
        timers
            .into_iter()
            .min_by_key(|(at, _)| *at)
            .unwrap_or((Instant::now() + AUTOLOGOUT, Timer::Autologout))
    }

    fn keepalive_due(&mut self) -> bool {
        let due = self.last_keepalive.elapsed() >= IDLE_KEEPALIVE;
        if due {
            self.last_keepalive = Instant::now();
        }
        due
    }

    fn user_check_due(&mut self) -> bool {
        let due = self.last_user_check.elapsed() >= USER_RECHECK;
        if due {
            self.last_user_check = Instant::now();
        }
        due
    }
}

/// Whether the connection goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Go,
    /// Write what is queued, then close.
    Close,
    /// The server is shutting down: say so if the client is listening, then close.
    Stop,
}

/// The server's shutdown signal.
struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Resolves once shutdown was asked for (at once if it already was, or if the
    /// sender is gone).
    async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// One connection's bytes both ways.
struct Connection {
    /// `None` only while STARTTLS swaps the plain stream for the TLS one.
    stream: Option<Stream>,
    input: Input,
    /// Encoded responses; those from `written` on are still to be sent.
    out: Vec<u8>,
    written: usize,
    buffer: Vec<u8>,
}

impl Connection {
    fn new(stream: Stream) -> Connection {
        Connection {
            stream: Some(stream),
            input: Input::new(),
            out: Vec::new(),
            written: 0,
            buffer: vec![0; 16 * 1024],
        }
    }

    fn queue(&mut self, response: Response<'static>) {
        let encoded = ResponseCodec::default().encode(&response);
        drop(response);
        for fragment in encoded {
            match fragment {
                Fragment::Line { data } | Fragment::Literal { data, .. } => {
                    self.out.extend_from_slice(&data)
                }
            }
        }
    }

    /// A response encoded already (what a command sent ahead).
    fn queue_encoded(&mut self, response: Vec<u8>) {
        if self.out.is_empty() {
            self.out = response;
        } else {
            self.out.extend_from_slice(&response);
        }
    }

    fn queue_status(&mut self, status: Status<'static>) {
        self.queue(Response::Status(status));
    }

    fn queue_greeting(&mut self, greeting: &Greeting<'static>) {
        let bytes = GreetingCodec::default().encode(greeting).dump();
        self.out.extend_from_slice(&bytes);
    }

    fn has_output(&self) -> bool {
        self.written < self.out.len()
    }

    fn discard_output(&mut self) {
        self.out = Vec::new();
        self.written = 0;
    }

    /// Writes what is queued, a chunk at a time; a chunk the client does not take
    /// within [`WRITE_STALL`] ends the connection. Progress survives cancellation.
    async fn write_out(&mut self) -> std::io::Result<()> {
        let stream = self.stream.as_mut().ok_or_else(closed)?;
        while self.written < self.out.len() {
            let end = self.out.len().min(self.written + WRITE_CHUNK);
            let n = tokio::time::timeout(WRITE_STALL, stream.write(&self.out[self.written..end]))
                .await
                .map_err(|_| stalled())??;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.written += n;
        }
        tokio::time::timeout(WRITE_STALL, stream.flush())
            .await
            .map_err(|_| stalled())??;
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Reads more bytes into the input; false when the client closed.
    async fn read(&mut self) -> std::io::Result<bool> {
        let stream = self.stream.as_mut().ok_or_else(closed)?;
        let n = stream.read(&mut self.buffer).await?;
        if n > 0 {
            self.input
                .push(&self.buffer[..n], std::time::Instant::now());
        }
        Ok(n > 0)
    }

    /// Writes the last words (within [`LAST_WORDS`]) and closes.
    async fn close(&mut self) {
        let _ = tokio::time::timeout(LAST_WORDS, self.write_out()).await;
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(LAST_WORDS, stream.shutdown()).await;
        }
    }
}

/// What woke a waiting connection.
enum Woke {
    Read(std::io::Result<bool>),
    Stop,
    News,
    Timer(Timer),
}

/// One connection: the shell's state, the session, and the signals it listens to.
struct Client {
    imap: Arc<Imap>,
    conn: Connection,
    /// `None` only while a command runs on the blocking pool.
    session: Option<Session>,
    shell: Shell,
    stop: Stop,
    changes: watch::Receiver<u64>,
}

async fn handle(
    connection: Accepted,
    imap: Arc<Imap>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (peer, local, implicit_tls) = (connection.peer, connection.local, connection.implicit_tls);
    let Some(stream) = connection.open(&imap.tls, "imap").await? else {
        return Ok(());
    };
    let (session, greeting) = new_session(&imap, local, implicit_tls);
    let mut conn = Connection::new(stream);
    conn.queue_greeting(&greeting);
    let changes = imap.store.changes();
    let mut client = Client {
        imap,
        conn,
        session: Some(session),
        shell: Shell::new(peer),
        stop: Stop(shutdown),
        changes,
    };
    let result = client.serve().await;
    client.conn.close().await;
    result
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
        text: text(format!("{} Lifeboat IMAP ready", settings.hostname)),
    };
    (session, greeting)
}

impl Client {
    /// Runs the connection until it ends; the caller writes the last words and closes.
    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            while let Some(step) = self.conn.input.next_step() {
                let flow = self.on_step(step).await?;
                if !self.go_on(flow).await? {
                    return Ok(());
                }
            }
            // The greeting, or what a step left unwritten.
            if self.conn.has_output() && !self.go_on(Flow::Go).await? {
                return Ok(());
            }
            let flow = self.wait().await?;
            if !self.go_on(flow).await? {
                return Ok(());
            }
        }
    }

    /// Writes what a step queued; false when the connection is to end.
    async fn go_on(&mut self, flow: Flow) -> std::io::Result<bool> {
        match flow {
            Flow::Go => {}
            Flow::Close => return Ok(false),
            Flow::Stop => {
                self.shutting_down();
                return Ok(false);
            }
        }
        let written = tokio::select! {
            written = self.conn.write_out() => Some(written),
            () = self.stop.requested() => None,
        };
        match written {
            Some(written) => written.map(|()| true),
            None => {
                self.shutting_down();
                Ok(false)
            }
        }
    }

    /// Shutdown: `* BYE` if nothing is half written; a client that stopped reading hears
    /// nothing more, and shutdown does not wait for it.
    fn shutting_down(&mut self) {
        if self.conn.has_output() {
            self.conn.discard_output();
        } else {
            self.conn
                .queue_status(bye_status(None, "server shutting down"));
        }
    }

    /// Waits, with everything written, for the client, the shutdown, a timer, or (in
    /// IDLE) news: this process's commits at once, other processes' at the next tick.
    async fn wait(&mut self) -> std::io::Result<Flow> {
        let (at, timer) = self.shell.timer(&self.conn.input);
        let idling = self.shell.idling.is_some();
        let woke = tokio::select! {
            read = self.conn.read() => Woke::Read(read),
            () = self.stop.requested() => Woke::Stop,
            _ = self.changes.changed(), if idling => Woke::News,
            () = tokio::time::sleep_until(at) => Woke::Timer(timer),
        };
        match woke {
            Woke::Read(read) => Ok(if read? { Flow::Go } else { Flow::Close }),
            Woke::Stop => Ok(Flow::Stop),
            Woke::News => {
                self.idle_report().await;
                Ok(Flow::Go)
            }
            Woke::Timer(timer) => self.timer_due(timer).await,
        }
    }

    async fn timer_due(&mut self, timer: Timer) -> std::io::Result<Flow> {
        let words = match timer {
            Timer::IdleTick => {
                if self.shell.user_check_due() && !self.user_still_valid().await {
                    return Ok(self.revoked());
                }
                if self.shell.keepalive_due() {
                    self.conn
                        .queue_status(status(None, StatusKind::Ok, None, "still here"));
                }
                self.idle_report().await;
                return Ok(Flow::Go);
            }
            Timer::Login => "took too long to log in",
            Timer::Command => "command took too long",
            Timer::Autologout => "autologout: idle for too long",
        };
        tracing::debug!(peer = %self.shell.peer, ?timer, "imap: time is up");
        self.conn.queue_status(bye_status(None, words));
        Ok(Flow::Close)
    }

    async fn on_step(&mut self, step: Step) -> std::io::Result<Flow> {
        match step {
            Step::GoAhead => {
                self.conn
                    .queue(Response::CommandContinuationRequest(continuation("...")));
                Ok(Flow::Go)
            }
            Step::Refused(refusal) => Ok(self.refused(refusal)),
            Step::Received(Received::Command(request)) => self.command(request).await,
            Step::Received(Received::Append(append)) => {
                if self.user_revoked().await {
                    return Ok(self.revoked());
                }
                self.run(Job::Append(append)).await
            }
            Step::Received(Received::AuthenticateData(data)) => {
                self.authenticate_data(data).await;
                Ok(Flow::Go)
            }
            Step::Received(Received::IdleDone) => {
                self.idle_done().await;
                Ok(Flow::Go)
            }
        }
    }

    /// A message the input refused: answer (the AUTHENTICATE it was meant for, if one
    /// waits), and end the connection if the refusal says so.
    fn refused(&mut self, refusal: Refusal) -> Flow {
        tracing::debug!(peer = %self.shell.peer, ?refusal.why, close = refusal.close, "imap: message refused");
        if !refusal.close
            && let Some(tag) = self.shell.authenticating.take()
        {
            self.conn.input.expect(Expect::Command);
            self.conn.queue_status(status(
                Some(tag),
                StatusKind::Bad,
                None,
                "could not parse that response",
            ));
            return Flow::Go;
        }
        self.conn.queue_status(refusal.status());
        if refusal.close {
            tracing::info!(peer = %self.shell.peer, ?refusal.why, "imap: closing a connection over a limit");
            Flow::Close
        } else {
            Flow::Go
        }
    }

    /// A command: LOGIN, AUTHENTICATE and IDLE are driven here, everything else goes to
    /// the session on the blocking pool.
    async fn command(&mut self, request: Request) -> std::io::Result<Flow> {
        if self.user_revoked().await {
            return Ok(self.revoked());
        }
        let command = match request {
            Request::Command(command) => command,
            request => return self.run(Job::Command(request)).await,
        };
        match command.body {
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                let answer = self.login(&command.tag, &user, &password).await;
                self.conn.queue_status(answer);
                Ok(Flow::Go)
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let initial = initial_response.map(|r| r.declassify().to_vec());
                self.authenticate(command.tag, mechanism, initial).await;
                Ok(Flow::Go)
            }
            CommandBody::Idle => {
                self.idle(command.tag);
                Ok(Flow::Go)
            }
            body => {
                let command = Command {
                    tag: command.tag,
                    body,
                };
                self.run(Job::Command(command.into())).await
            }
        }
    }

    /// Runs a command on the blocking pool, writing the responses it sends ahead as
    /// they come; at shutdown the command is cancelled and the client told.
    async fn run(&mut self, job: Job) -> std::io::Result<Flow> {
        let mut session = self.session.take().ok_or_else(closed)?;
        let cancel = CancelOnDrop(Some(session.cancel()));
        let (sender, mut responses) = mpsc::channel(IN_FLIGHT);
        let outbox =
            Outbox::streaming(move |response| sender.blocking_send(response).map_err(|_| Gone));
        let task = tokio::task::spawn_blocking(move || {
            let reply = match job {
                Job::Append(append) if append.is_spooled() => {
                    let _turn = SPOOLED_APPENDS
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    session.handle_append(append, outbox)
                }
                Job::Append(append) => session.handle_append(append, outbox),
                Job::Command(command) => session.handle_with(command, outbox),
            };
            (session, reply)
        });
        let mut stopped = false;
        loop {
            let next = tokio::select! {
                response = responses.recv() => response,
                () = self.stop.requested() => {
                    stopped = true;
                    None
                }
            };
            let Some(response) = next else { break };
            self.conn.queue_encoded(response);
            let written = tokio::select! {
                written = self.conn.write_out() => Some(written),
                () = self.stop.requested() => None,
            };
            match written {
                Some(written) => written?,
                None => {
                    stopped = true;
                    break;
                }
            }
        }
        if stopped {
            drop(cancel);
        } else {
            cancel.disarm();
        }
        drop(responses);
        let (session, reply) = task.await.map_err(std::io::Error::other)?;
        self.session = Some(session);
        if stopped {
            return Ok(Flow::Stop);
        }
        for response in reply.responses {
            match response {
                Outgoing::Imap(response) => self.conn.queue(response),
                Outgoing::Line(line) => self.conn.queue_encoded(line),
            }
        }
        match reply.after {
            After::Continue => Ok(Flow::Go),
            After::Logout => Ok(Flow::Close),
            After::StartTls => self.start_tls().await,
        }
    }

    async fn start_tls(&mut self) -> std::io::Result<Flow> {
        // The tagged OK is the last plaintext.
        self.conn.write_out().await?;
        // Commands pipelined behind STARTTLS were sent in clear and could have been
        // injected by a man in the middle: never act on them (CVE-2011-0411's class).
        if self.conn.input.has_unread() {
            tracing::warn!(peer = %self.shell.peer, "imap: data after STARTTLS before the handshake; closing");
            return Ok(Flow::Close);
        }
        let Some(acceptor) = self.imap.tls.acceptor() else {
            return Ok(Flow::Close);
        };
        let Some(Stream::Plain(tcp)) = self.conn.stream.take() else {
            return Ok(Flow::Close);
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
            .await
            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
        self.conn.stream = Some(Stream::Tls(Box::new(tls)));
        if let Some(session) = self.session.as_mut() {
            session.tls_started();
        }
        tracing::debug!(peer = %self.shell.peer, "imap: STARTTLS done");
        Ok(Flow::Go)
    }

    /// AUTHENTICATE: PLAIN only, with its initial response (SASL-IR) or after an empty
    /// challenge.
    async fn authenticate(
        &mut self,
        tag: Tag<'static>,
        mechanism: AuthMechanism<'static>,
        initial: Option<Vec<u8>>,
    ) {
        let refusal = self.session.as_ref().and_then(Session::login_refusal);
        let answer = if let Some(why) = refusal {
            why.status(&tag)
        } else if mechanism != AuthMechanism::Plain {
            Rejection::new(None, "only AUTHENTICATE PLAIN is offered").status(&tag)
        } else if let Some(initial) = initial {
            self.sasl_plain(&tag, &initial).await
        } else {
            self.conn.queue(Response::CommandContinuationRequest(
                Session::empty_challenge(),
            ));
            self.shell.authenticating = Some(tag);
            self.conn.input.expect(Expect::AuthenticateData);
            return;
        };
        self.conn.queue_status(answer);
    }

    async fn authenticate_data(&mut self, data: AuthenticateData<'static>) {
        self.conn.input.expect(Expect::Command);
        let Some(tag) = self.shell.authenticating.take() else {
            return;
        };
        let answer = match data {
            AuthenticateData::Continue(data) => {
                let data = data.declassify().to_vec();
                self.sasl_plain(&tag, &data).await
            }
            AuthenticateData::Cancel => {
                status(Some(tag), StatusKind::Bad, None, "AUTHENTICATE cancelled")
            }
        };
        self.conn.queue_status(answer);
    }

    async fn sasl_plain(&mut self, tag: &Tag<'static>, response: &[u8]) -> Status<'static> {
        // The codec hands over the decoded bytes; a client may still send base64 text.
        let decoded = match base64::engine::general_purpose::STANDARD.decode(response) {
            Ok(bytes) if bytes.contains(&0) => bytes,
            _ => response.to_vec(),
        };
        match crate::sasl::plain(&decoded) {
            Ok((user, password)) => self.login(tag, &user, &password).await,
            Err(why) => status(Some(tag.clone()), StatusKind::Bad, None, why),
        }
    }

    async fn login(&mut self, tag: &Tag<'static>, user: &str, password: &str) -> Status<'static> {
        let Some(session) = self.session.as_mut() else {
            return status(Some(tag.clone()), StatusKind::No, None, "try again");
        };
        if let Some(why) = session.login_refusal() {
            return why.status(tag);
        }
        let peer = self.shell.peer;
        match self.imap.auth.login(peer.ip(), user, password).await {
            Ok(record) => {
                tracing::info!(%peer, user = %record.address, "imap: logged in");
                session.logged_in(&record);
                let answer = match session.login_ok(tag, "logged in") {
                    Response::Status(status) => status,
                    _ => unreachable!("login_ok is a status"),
                };
                let spool = spool_dir(&self.imap.store, &record);
                self.conn.input.logged_in(spool);
                self.shell.user = Some(record);
                answer
            }
            Err(failure) => {
                let (code, words) = match failure {
                    AuthFailure::Unavailable(_) => (NoCode::Unavailable, "try again later"),
                    AuthFailure::LockedOut => (
                        NoCode::AuthenticationFailed,
                        "too many failed logins; try again later",
                    ),
                    _ => (NoCode::AuthenticationFailed, "wrong user name or password"),
                };
                Rejection::new(Some(code), words).status(tag)
            }
        }
    }

    /// IDLE (RFC 2177), only with a mailbox selected.
    fn idle(&mut self, tag: Tag<'static>) {
        let selected = self.session.as_ref().is_some_and(Session::is_selected);
        if selected {
            self.conn
                .queue(Response::CommandContinuationRequest(continuation("idling")));
            self.shell.idling = Some(tag);
            self.shell.last_keepalive = Instant::now();
            self.shell.last_user_check = Instant::now();
            self.conn.input.expect(Expect::IdleDone);
        } else {
            self.conn.queue_status(status(
                Some(tag),
                StatusKind::Bad,
                None,
                "select a mailbox first",
            ));
        }
    }

    async fn idle_done(&mut self) {
        self.conn.input.expect(Expect::Command);
        if let Some(tag) = self.shell.idling.take() {
            self.idle_report().await;
            self.conn
                .queue_status(status(Some(tag), StatusKind::Ok, None, "IDLE terminated"));
        }
    }

    /// Untagged news for an IDLE (or a DONE) client.
    async fn idle_report(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || {
            let mut session = session;
            let store = session.store().clone();
            let responses = store.with_reader(|reader| session.poll_changes(reader));
            (session, responses)
        })
        .await;
        let Ok((session, responses)) = result else {
            return;
        };
        self.session = Some(session);
        match responses {
            Ok(responses) => {
                for response in responses {
                    self.conn.queue(response);
                }
            }
            Err(e) => tracing::warn!(error = %e, "imap: cannot look for changes"),
        }
    }

    /// A command came (the autologout starts again): whether its user lost the right to
    /// run it meanwhile.
    async fn user_revoked(&mut self) -> bool {
        self.shell.last_command = Instant::now();
        self.shell.user.is_some() && !self.user_still_valid().await
    }

    /// Whether the logged-in user is still who logged in (active, same password).
    async fn user_still_valid(&mut self) -> bool {
        match &self.shell.user {
            Some(user) => self.imap.auth.still_valid(user).await,
            None => true,
        }
    }

    /// The user was disabled, deleted or given a new password: the session ends.
    fn revoked(&mut self) -> Flow {
        if let Some(user) = &self.shell.user {
            tracing::info!(peer = %self.shell.peer, user = %user.address,
                "imap: account disabled or password changed; session ended");
        }
        self.conn.queue_status(bye_status(
            Some(Code::Alert),
            "your account was changed or disabled; log in again",
        ));
        Flow::Close
    }
}

/// Cancels the command unless disarmed: whatever way the shell leaves a running
/// command (shutdown, a failed write), the command stops at its next look.
struct CancelOnDrop(Option<super::session::Cancel>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel.cancel();
        }
    }
}

/// What runs on the blocking pool: a command, or an APPEND the input framed.
enum Job {
    Command(Request),
    Append(Append),
}

/// Where a user's APPEND literals are spooled: their INBOX's `tmp/`, on the store's
/// filesystem (the files have no name, so nothing there ever sees them).
fn spool_dir(store: &Store, user: &UserRecord) -> PathBuf {
    store.folder_dir(&user.address, "INBOX").join("tmp")
}

/// A continuation request with words (total: words that could pass for base64 make an
/// empty one).
fn continuation(words: &'static str) -> CommandContinuationRequest<'static> {
    CommandContinuationRequest::basic(None, words)
        .unwrap_or(CommandContinuationRequest::Base64(Cow::Borrowed(b"")))
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")
}

fn stalled() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell() -> Shell {
        Shell::new("127.0.0.1:1143".parse().unwrap())
    }

    fn user() -> UserRecord {
        UserRecord {
            id: 1,
            address: lifeboat_mailstore::Address::parse("a@example.test").unwrap(),
            password_hash: String::new(),
            active: true,
            alternate_email: None,
            aliases: Vec::new(),
            source: lifeboat_mailstore::UserSource::Local,
            directory_dn: None,
            cached_verifier: None,
            cached_at: None,
            last_login_at: None,
        }
    }

    #[test]
    fn before_login_the_login_deadline_holds_however_busy_the_client_is() {
        let shell = shell();
        let mut input = Input::new();
        let (at, timer) = shell.timer(&input);
        assert_eq!(timer, Timer::Login);
        assert_eq!(at, shell.connected + LOGIN_TIMEOUT);
        // A command under way does not move it.
        input.push(b"a1 NOO", std::time::Instant::now());
        assert!(input.next_step().is_none());
        assert_eq!(shell.timer(&input), (at, Timer::Login));
    }

    #[test]
    fn a_command_must_arrive_within_its_own_deadline_and_trickling_does_not_extend_it() {
        let mut shell = shell();
        shell.user = Some(user());
        let mut input = Input::new();
        assert_eq!(shell.timer(&input).1, Timer::Autologout);
        let first_byte = std::time::Instant::now();
        input.push(b"a1 NOOP", first_byte);
        assert!(input.next_step().is_none());
        let deadline = Instant::from_std(first_byte) + COMMAND_TIMEOUT;
        assert_eq!(shell.timer(&input), (deadline, Timer::Command));
        // Long ago last command: a command under way is not idleness.
        shell.last_command = Instant::now() - AUTOLOGOUT;
        input.push(b"\r", first_byte + Duration::from_secs(60));
        assert!(input.next_step().is_none());
        assert_eq!(shell.timer(&input), (deadline, Timer::Command));
        input.push(b"\n", first_byte + Duration::from_secs(120));
        assert!(matches!(input.next_step(), Some(Step::Received(_))));
        assert_eq!(shell.timer(&input).1, Timer::Autologout);
    }

    #[test]
    fn idling_wakes_for_news_keepalives_and_the_user_check() {
        let mut shell = shell();
        shell.user = Some(user());
        shell.idling = Some(Tag::try_from("i1").unwrap());
        let (at, timer) = shell.timer(&Input::new());
        assert_eq!(timer, Timer::IdleTick);
        assert!(at <= Instant::now() + IDLE_POLL);
        assert!(!shell.user_check_due());
        shell.last_user_check = Instant::now() - USER_RECHECK;
        assert!(shell.user_check_due());
        assert!(!shell.user_check_due(), "checked: the next one is later");
    }
}
