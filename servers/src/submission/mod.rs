//! SMTP submission (RFC 6409) for users during continuity: ports 587 (STARTTLS) and 465
//! (implicit TLS). An authenticated user's mail is handed to Postfix (`[submission]
//! relay`) transaction by transaction, so Postfix answers each recipient itself, a
//! colleague at the same origin gets the message through the milter (diverted during an
//! outage) and an outside recipient gets it as usual. Sent mail made during continuity is
//! recorded once as a sent copy, for replay to the user's mailbox at the origin.

pub mod relay;
pub mod session;
mod submit;

pub use submit::{Outgoing, SubmitError, submit};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Authenticator, plaintext_login_allowed};
use crate::connection::{Connection, ReadError};
use crate::limits::{ConnectionCounter, ConnectionLimits, Refusal};
use crate::listener::{Accepted, HANDSHAKE_TIMEOUT, LOGIN_TIMEOUT, Server};
use crate::smtp::{Data, read_data};
use crate::tls::Tls;
use lifeboat_mailstore::reader::UserRecord;
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::{Address, Class, NewMessage, Routes, Store};
use tokio::sync::watch;
use tokio::task::spawn_blocking;

use relay::Relay;
use session::{Policy, Session, Step};

/// RFC 5321 §4.5.3.2: at least 5 minutes for a command; 10 for the whole DATA.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
const DATA_TIMEOUT: Duration = Duration::from_secs(600);

/// Command lines and message lines (RFC 5321 allows 1000; clients exceed it).
const MAX_LINE: usize = 64 * 1024;

pub const DEFAULT_LIMITS: ConnectionLimits = ConnectionLimits {
    per_ip: 20,
    total: 500,
};

/// What the submission server takes from the configuration; replaced whole on reload.
#[derive(Clone, Debug)]
pub struct Settings {
    pub hostname: String,
    pub allow_plaintext: bool,
    /// Postfix's smtpd: host and port.
    pub relay: (String, u16),
    pub max_message_size: u64,
    /// Keep a visible copy of each sent message in the sender's Sent folder.
    pub save_sent: bool,
    pub routes: Routes,
}

pub struct Submission {
    store: Store,
    auth: Arc<Authenticator>,
    tls: Arc<Tls>,
    settings: Reloadable<Settings>,
    connections: ConnectionCounter,
}

impl Submission {
    pub fn new(
        store: Store,
        auth: Arc<Authenticator>,
        tls: Arc<Tls>,
        settings: Settings,
        limits: ConnectionLimits,
    ) -> Arc<Submission> {
        Arc::new(Submission {
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

impl Server for Submission {
    const NAME: &'static str = "submission";

    fn connections(&self) -> &ConnectionCounter {
        &self.connections
    }

    fn refusal(refusal: Refusal) -> &'static [u8] {
        match refusal {
            Refusal::TooManyFromAddress => b"421 4.7.0 too many connections from your address\r\n",
            Refusal::TooManyInTotal => b"421 4.3.2 too many connections\r\n",
        }
    }

    /// A session in progress finishes its transaction; shutdown waits for it.
    async fn handle(
        self: Arc<Self>,
        connection: Accepted,
        _shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        handle(connection, self).await
    }
}

/// The per-connection state besides the protocol session.
struct Client {
    peer: SocketAddr,
    /// As it logged in: the session ends once the account changes.
    user: Option<UserRecord>,
    helo: String,
    relay: Option<Relay>,
    sender: String,
}

async fn handle(connection: Accepted, submission: Arc<Submission>) -> std::io::Result<()> {
    let (peer, local, implicit_tls) = (connection.peer, connection.local, connection.implicit_tls);
    let Some(stream) = connection.open(&submission.tls, "submission").await? else {
        return Ok(());
    };
    let settings = submission.settings.get();
    let mut session = Session::new(Policy {
        hostname: settings.hostname.clone(),
        plaintext_login: plaintext_login_allowed(local, settings.allow_plaintext),
        tls_available: !implicit_tls && submission.tls.is_available(),
        tls: implicit_tls,
        max_message_size: settings.max_message_size,
    });
    let mut conn = Connection::new(stream, MAX_LINE);
    let mut client = Client {
        peer,
        user: None,
        helo: String::new(),
        relay: None,
        sender: String::new(),
    };
    send(&mut conn, &session.greeting()).await?;
    let login_deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;
    loop {
        let mut until = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        if client.user.is_none() {
            until = until.min(login_deadline);
        }
        let line = match tokio::time::timeout_at(until, conn.read_line()).await {
            Err(_) => {
                send(&mut conn, "421 4.4.2 idle too long, closing").await?;
                return Ok(());
            }
            Ok(Err(ReadError::TooLong)) => {
                send(&mut conn, "500 5.5.2 line too long").await?;
                continue;
            }
            Ok(Err(ReadError::Closed)) => return Ok(()),
            Ok(Err(ReadError::Io(e))) => return Err(e),
            Ok(Ok(line)) => line,
        };
        if let Some(user) = &client.user
            && !submission.auth.still_valid(user).await
        {
            tracing::info!(%peer, user = %user.address, "submission: account disabled or password changed; session ended");
            send(&mut conn, "421 4.7.0 your account changed; log in again").await?;
            return Ok(());
        }
        if let Some(helo) = greeting_host(&line) {
            client.helo = helo;
        }
        let answer = match session.handle_line(&line) {
            Step::Reply(text) => text,
            Step::Quit(text) => {
                send(&mut conn, &text).await?;
                conn.shutdown().await;
                return Ok(());
            }
            Step::StartTls => {
                send(&mut conn, "220 2.0.0 ready to start TLS").await?;
                // Commands sent before the handshake could come from a man in the
                // middle: never act on them.
                if conn.has_buffered_bytes() {
                    tracing::warn!(%peer, "submission: data after STARTTLS before the handshake; closing");
                    return Ok(());
                }
                let Some(acceptor) = submission.tls.acceptor() else {
                    return Ok(());
                };
                conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.start_tls(&acceptor))
                    .await
                    .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
                session.tls_started();
                client.relay = None;
                continue;
            }
            Step::Login { user, password } => {
                login(&submission, &mut session, &mut client, &user, &password).await
            }
            Step::Mail { sender, size } => {
                let settings = submission.settings.get();
                match Relay::open(&settings.relay, &settings.hostname, &sender, size).await {
                    Ok(relay) => {
                        client.relay = Some(relay);
                        client.sender = sender;
                        "250 2.1.0 ok".to_string()
                    }
                    Err(answer) => {
                        session.transaction_done();
                        answer.text
                    }
                }
            }
            Step::Rcpt { recipient } => match client.relay.as_mut() {
                Some(relay) => {
                    let answer = relay.rcpt(&recipient).await;
                    if answer.is_positive() {
                        session.recipient_accepted();
                    }
                    answer.text
                }
                None => "451 4.4.1 relay connection lost; start again".to_string(),
            },
            Step::Data => {
                send(&mut conn, "354 end data with <CR><LF>.<CR><LF>").await?;
                let max = submission.settings.get().max_message_size;
                let content =
                    match tokio::time::timeout(DATA_TIMEOUT, read_data(&mut conn, max)).await {
                        Err(_) => {
                            send(&mut conn, "421 4.4.2 DATA took too long, closing").await?;
                            return Ok(());
                        }
                        Ok(Err(ReadError::Io(e))) => return Err(e),
                        Ok(Err(_)) => return Ok(()), // closed in the middle of the message
                        Ok(Ok(content)) => content,
                    };
                let answer = match content {
                    Data::Message(content) => {
                        deliver(&submission, &session, &mut client, content).await
                    }
                    Data::TooBig => "552 5.3.4 message too big".to_string(),
                };
                session.transaction_done();
                client.relay = None;
                answer
            }
            Step::Reset(text) => {
                client.relay = None;
                text
            }
        };
        send(&mut conn, &answer).await?;
    }
}

async fn login(
    submission: &Submission,
    session: &mut Session,
    client: &mut Client,
    user: &str,
    password: &str,
) -> String {
    match submission
        .auth
        .login(client.peer.ip(), user, password)
        .await
    {
        Ok(record) => {
            tracing::info!(peer = %client.peer, user = %record.address, "submission: logged in");
            let mut addresses = vec![record.address.clone()];
            addresses.extend(record.aliases.iter().filter_map(|a| Address::parse(a).ok()));
            client.user = Some(record);
            session.login_succeeded(addresses)
        }
        Err(failure) => session.login_failed(&failure),
    }
}

/// Checks the header, adds the trace and Message-ID, hands the message to Postfix, and
/// records the sent copy.
async fn deliver(
    submission: &Submission,
    session: &Session,
    client: &mut Client,
    content: Vec<u8>,
) -> String {
    if let Err(answer) = session.check_header_from(&content) {
        return answer;
    }
    let Some(user) = session.user().cloned() else {
        return "530 5.7.0 authentication required".to_string();
    };
    let settings = submission.settings.get();
    let message = prepare(&content, client, &user, &settings.hostname);
    let Some(relay) = client.relay.as_mut() else {
        return "451 4.4.1 relay connection lost; start again".to_string();
    };
    let answer = relay.data(&message).await;
    if answer.is_positive() {
        tracing::info!(user = %user, sender = %client.sender, "submission: message handed to Postfix");
        let store = submission.store.clone();
        let settings = settings.clone();
        let recorded = spawn_blocking(move || record_sent(&store, &settings, &user, message)).await;
        let failure = match recorded {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = failure {
            tracing::error!(%error, "submission: the message was sent but its sent copy was not stored");
        }
    }
    answer.text
}

/// The message as Postfix gets it: our Received line on top, and a Message-ID if the
/// client did not write one (the sent copy is recognised by it).
fn prepare(content: &[u8], client: &Client, user: &Address, hostname: &str) -> Vec<u8> {
    let from = format!("{} ({})", client.helo, client.peer.ip());
    with_trace(
        content,
        &from,
        "Lifeboat submission",
        "ESMTPSA",
        user,
        hostname,
    )
}

/// `content` with a Received line (from `from`, by this host's `service` with
/// `protocol`, for `user`) on top and a Message-ID when it has none.
fn with_trace(
    content: &[u8],
    from: &str,
    service: &str,
    protocol: &str,
    user: &Address,
    hostname: &str,
) -> Vec<u8> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut message = format!(
        "Received: from {from}\r\n\tby {hostname} ({service}) with {protocol}\r\n\t(authenticated as {user}); {now}\r\n",
    )
    .into_bytes();
    if lifeboat_mailstore::deliver::header_value(content, "Message-ID").is_none() {
        message.extend_from_slice(
            format!(
                "Message-ID: <{:032x}@{hostname}>\r\n",
                rand::random::<u128>()
            )
            .as_bytes(),
        );
    }
    message.extend_from_slice(content);
    message
}

/// During continuity every sent message becomes a sent copy in the user's Sent folder,
/// once per Message-ID; without `save_sent` it is hidden (the client saves its own
/// visible copy by APPEND, which is then not recorded twice) but still replayed.
/// Outside continuity a copy is kept only with `save_sent`.
fn record_sent(
    store: &Store,
    settings: &Settings,
    user: &Address,
    message: Vec<u8>,
) -> lifeboat_mailstore::Result<()> {
    let message_id = lifeboat_mailstore::deliver::header_value(&message, "Message-ID");
    let found = store.with_reader(|reader| {
        let in_continuity = reader.in_continuity(&settings.routes, user)?;
        if !in_continuity && !settings.save_sent {
            return Ok(None);
        }
        let Some(owner) = reader.user(user.as_str())? else {
            return Ok(None);
        };
        let Some(sent) = reader.special_use_mailbox(owner.id, "\\Sent")? else {
            return Ok(None);
        };
        let already = match &message_id {
            Some(id) => reader.has_sent_copy(sent.id, id)?,
            None => false,
        };
        Ok(Some((in_continuity, sent, already)))
    })?;
    let Some((in_continuity, sent, already)) = found else {
        return Ok(());
    };
    let class = if in_continuity && !already {
        Class::Sent
    } else if settings.save_sent {
        Class::Other
    } else {
        return Ok(());
    };
    let mut copy = NewMessage::new(user.clone(), &sent.name, message, class);
    copy.flags = lifeboat_mailstore::Flags::SEEN;
    if class == Class::Sent {
        copy.envelope_from = Some(user.to_string());
        copy.envelope_to = vec![user.clone()];
    }
    let stored = store.deliver(copy)?;
    if class == Class::Sent && !settings.save_sent {
        store.expunge(sent.id, &[stored.uid])?;
    }
    Ok(())
}

/// The host name a client gave in EHLO/HELO, for the Received line.
fn greeting_host(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let (verb, host) = text.split_once(' ')?;
    (verb.eq_ignore_ascii_case("EHLO") || verb.eq_ignore_ascii_case("HELO")).then(|| {
        host.trim()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect()
    })
}

async fn send(conn: &mut Connection, text: &str) -> std::io::Result<()> {
    conn.write_all(format!("{text}\r\n").as_bytes()).await
}
