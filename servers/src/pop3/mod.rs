//! The POP3 server (RFC 1939 + CAPA, UIDL, TOP, USER/PASS, SASL PLAIN, STLS): users
//! download their INBOX during an outage.
//!
//! - [`command`] parses lines, [`session`] is the protocol state machine (no I/O),
//!   [`message`] formats messages for the wire; this module is the tokio shell around
//!   them: one task per connection, limits, timeouts, TLS and shutdown.
//! - The maildrop is the user's INBOX as the index lists it at login (copies the user
//!   expunged are hidden). Sizes are the stored sizes: files are kept with CRLF.
//! - UIDL is UIDVALIDITY + UID of INBOX, which the store never reuses.
//! - DELE takes effect at QUIT only, through [`Store::expunge`]: a copy that still waits
//!   for replay to the origin is hidden, not destroyed (see `lifeboat_mailstore::expunge`). A session
//!   that ends any other way (dropped connection, timeout, shutdown) deletes nothing.
//! - One POP3 session per maildrop at a time (a second login gets `-ERR [IN-USE]`).

pub mod command;
pub mod message;
pub mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::{Authenticator, plaintext_login_allowed};
use crate::connection::{Connection, ReadError};
use crate::limits::{ConnectionCounter, ConnectionLimits, Refusal};
use crate::listener::{Accepted, HANDSHAKE_TIMEOUT, LOGIN_TIMEOUT, Server};
use crate::tls::Tls;
use lifeboat_mailstore::address::Address;
use lifeboat_mailstore::reader::{MessageRecord, UserRecord};
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::store::Store;
use session::{Listing, LoginRefusal, Maildrop, Next, Policy, Session};

/// RFC 1939 §3: the autologout timer must be at least 10 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest command line. RFC 2449 allows 255 octets for commands; SASL responses (a
/// base64 user name and password) may be longer.
pub const MAX_LINE: usize = 4096;
/// Answers are written once this much is buffered even while the client pipelines.
const WRITE_BATCH: usize = 64 * 1024;

pub const DEFAULT_LIMITS: ConnectionLimits = ConnectionLimits {
    per_ip: 50,
    total: 1000,
};

/// What the POP3 server takes from the configuration; replaced whole on reload.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Named in the greeting.
    pub hostname: String,
    /// `[auth] allow_plaintext`: logins without TLS on listeners that are not loopback.
    pub allow_plaintext: bool,
}

pub struct Pop3 {
    store: Store,
    auth: Arc<Authenticator>,
    tls: Arc<Tls>,
    settings: Reloadable<Settings>,
    connections: ConnectionCounter,
    idle_timeout: Duration,
    /// Users with a POP3 session in TRANSACTION state (RFC 1939 §4: exclusive access).
    maildrops_in_use: Arc<Mutex<HashSet<i64>>>,
}

impl Pop3 {
    pub fn new(
        store: Store,
        auth: Arc<Authenticator>,
        tls: Arc<Tls>,
        settings: Settings,
        limits: ConnectionLimits,
    ) -> Arc<Pop3> {
        Arc::new(Pop3 {
            store,
            auth,
            tls,
            settings: Reloadable::new(settings),
            connections: ConnectionCounter::new(limits),
            idle_timeout: IDLE_TIMEOUT,
            maildrops_in_use: Arc::default(),
        })
    }

    pub fn reload(&self, settings: Settings) {
        self.settings.replace(settings);
    }

    fn lock_maildrop(&self, user_id: i64) -> Option<MaildropLock> {
        let mut in_use = self
            .maildrops_in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        in_use.insert(user_id).then(|| MaildropLock {
            user_id,
            in_use: self.maildrops_in_use.clone(),
        })
    }
}

/// Held while a session is in TRANSACTION state; released however the session ends.
struct MaildropLock {
    user_id: i64,
    in_use: Arc<Mutex<HashSet<i64>>>,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.user_id);
    }
}

impl Server for Pop3 {
    const NAME: &'static str = "pop3";

    fn connections(&self) -> &ConnectionCounter {
        &self.connections
    }

    fn refusal(refusal: Refusal) -> &'static [u8] {
        match refusal {
            Refusal::TooManyFromAddress => {
                b"-ERR [SYS/TEMP] too many connections from your address\r\n"
            }
            Refusal::TooManyInTotal => b"-ERR [SYS/TEMP] too many connections\r\n",
        }
    }

    /// Idle sessions are told the server is going away at shutdown (nothing is
    /// deleted); busy ones finish their command first.
    async fn handle(
        self: Arc<Self>,
        connection: Accepted,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        handle(connection, self, shutdown).await
    }
}

/// What the connection knows once the user is logged in.
struct LoggedIn {
    /// As it logged in: the session ends once the account changes.
    user: UserRecord,
    owner: Address,
    mailbox_id: i64,
    messages: Vec<MessageRecord>,
    _lock: MaildropLock,
}

async fn handle(
    connection: Accepted,
    pop3: Arc<Pop3>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (peer, local, implicit_tls) = (connection.peer, connection.local, connection.implicit_tls);
    let Some(stream) = connection.open(&pop3.tls, "pop3").await? else {
        return Ok(());
    };
    let settings = pop3.settings.get();
    let policy = Policy {
        plaintext_allowed: plaintext_login_allowed(local, settings.allow_plaintext),
        tls_available: !implicit_tls && pop3.tls.is_available(),
        tls: implicit_tls,
    };
    let mut conn = Connection::new(stream, MAX_LINE);
    let mut out = Vec::with_capacity(4096);
    let mut session = Session::new(policy, &settings.hostname, &mut out);
    let mut logged_in: Option<LoggedIn> = None;
    let idle = pop3.idle_timeout;
    let login_deadline = tokio::time::Instant::now() + LOGIN_TIMEOUT;

    loop {
        // Answers wait while the client has pipelined more commands.
        if !conn.has_buffered_line() || out.len() >= WRITE_BATCH {
            write(&mut conn, &mut out, idle).await?;
        }
        let line = tokio::select! {
            _ = shutdown.changed() => {
                out.extend_from_slice(b"-ERR [SYS/TEMP] server shutting down; nothing was deleted\r\n");
                write(&mut conn, &mut out, idle).await?;
                break;
            }
            () = tokio::time::sleep_until(login_deadline), if logged_in.is_none() => {
                out.extend_from_slice(b"-ERR [SYS/TEMP] took too long to log in\r\n");
                write(&mut conn, &mut out, idle).await?;
                break;
            }
            read = tokio::time::timeout(idle, conn.read_line()) => read,
        };
        let line = match line {
            Err(_) => {
                out.extend_from_slice(
                    b"-ERR autologout: idle for too long; nothing was deleted\r\n",
                );
                write(&mut conn, &mut out, idle).await?;
                break;
            }
            Ok(Err(ReadError::TooLong)) => {
                out.extend_from_slice(b"-ERR line too long\r\n");
                continue;
            }
            Ok(Err(ReadError::Closed)) => break,
            Ok(Err(ReadError::Io(e))) => return Err(e),
            Ok(Ok(line)) => line,
        };
        if let Some(user) = &logged_in
            && !pop3.auth.still_valid(&user.user).await
        {
            tracing::info!(%peer, user = %user.owner, "pop3: account disabled or password changed; session ended");
            out.extend_from_slice(
                b"-ERR [AUTH] your account changed; log in again (nothing was deleted)\r\n",
            );
            write(&mut conn, &mut out, idle).await?;
            break;
        }
        match session.handle_line(&line, &mut out) {
            Next::Continue => {}
            Next::Authenticate { user, password } => {
                let refusal = match pop3.auth.login(peer.ip(), &user, &password).await {
                    Ok(record) => match pop3.lock_maildrop(record.id) {
                        None => Some(LoginRefusal::InUse),
                        Some(lock) => match open_maildrop(&pop3.store, record.id).await {
                            Ok((mailbox_id, maildrop, messages)) => {
                                tracing::info!(%peer, user = %record.address, messages = messages.len(), "pop3: logged in");
                                session.login_succeeded(maildrop, &mut out);
                                logged_in = Some(LoggedIn {
                                    owner: record.address.clone(),
                                    user: record,
                                    mailbox_id,
                                    messages,
                                    _lock: lock,
                                });
                                None
                            }
                            Err(e) => {
                                tracing::error!(%peer, error = %e, "pop3: cannot open the maildrop");
                                Some(LoginRefusal::Store)
                            }
                        },
                    },
                    Err(failure) => Some(LoginRefusal::Auth(failure)),
                };
                if let Some(refusal) = refusal
                    && session.login_failed(refusal, &mut out) == Next::Close
                {
                    write(&mut conn, &mut out, idle).await?;
                    break;
                }
            }
            Next::StartTls => {
                write(&mut conn, &mut out, idle).await?;
                // Commands pipelined behind STLS were sent in clear and could have been
                // injected by a man in the middle: never act on them.
                if conn.has_buffered_bytes() {
                    tracing::warn!(%peer, "pop3: data after STLS before the handshake; closing");
                    break;
                }
                let Some(acceptor) = pop3.tls.acceptor() else {
                    break;
                };
                conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.start_tls(&acceptor))
                    .await
                    .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
                session.tls_started();
            }
            Next::Send { index, top_lines } => {
                let Some(user) = &logged_in else { break };
                let record = user.messages[index].clone();
                let size = record.size;
                // read_message finds the file even if IMAP renamed it (flags) since login.
                let (store, owner) = (pop3.store.clone(), user.owner.clone());
                let read = tokio::task::spawn_blocking(move || {
                    store.read_message(&owner, "INBOX", &record)
                })
                .await;
                match read {
                    Ok(Ok(content)) => {
                        out.extend_from_slice(format!("+OK {size} octets\r\n").as_bytes());
                        message::write_message(&mut out, &content, top_lines);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "pop3: message file unreadable");
                        out.extend_from_slice(
                            b"-ERR [SYS/TEMP] message not available right now\r\n",
                        );
                    }
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "pop3: message file unreadable");
                        out.extend_from_slice(
                            b"-ERR [SYS/TEMP] message not available right now\r\n",
                        );
                    }
                }
            }
            Next::Update { deleted } => {
                let ok = match &logged_in {
                    Some(user) if !deleted.is_empty() => {
                        let uids: Vec<u32> =
                            deleted.iter().map(|&i| user.messages[i].uid).collect();
                        let (store, mailbox_id) = (pop3.store.clone(), user.mailbox_id);
                        let expunged =
                            tokio::task::spawn_blocking(move || store.expunge(mailbox_id, &uids))
                                .await;
                        match expunged {
                            Ok(Ok(report)) => {
                                tracing::info!(%peer, user = %user.owner, removed = report.removed.len(), kept_for_replay = report.kept_for_replay.len(), "pop3: deleted messages");
                                true
                            }
                            Ok(Err(e)) => {
                                tracing::error!(%peer, error = %e, "pop3: deleting messages failed");
                                false
                            }
                            Err(e) => {
                                tracing::error!(%peer, error = %e, "pop3: deleting messages failed");
                                false
                            }
                        }
                    }
                    _ => true,
                };
                // The maildrop is free before the client hears +OK: a client that logs in
                // again right after QUIT must not find its own old session holding it.
                drop(logged_in.take());
                session.update_finished(ok, &mut out);
                write(&mut conn, &mut out, idle).await?;
                break;
            }
            Next::Close => {
                write(&mut conn, &mut out, idle).await?;
                break;
            }
        }
    }
    conn.shutdown().await;
    Ok(())
}

async fn write(conn: &mut Connection, out: &mut Vec<u8>, timeout: Duration) -> std::io::Result<()> {
    let written = tokio::time::timeout(timeout, conn.write_all(out))
        .await
        .map_err(|_| std::io::Error::other("client stopped reading"))?;
    out.clear();
    written
}

/// Reads the user's INBOX listing (blocking SQLite, so off the async threads).
async fn open_maildrop(
    store: &Store,
    user_id: i64,
) -> lifeboat_mailstore::Result<(i64, Maildrop, Vec<MessageRecord>)> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        store.with_reader(|reader| {
            let inbox = reader.mailbox(user_id, "INBOX")?.ok_or_else(|| {
                lifeboat_mailstore::Error::Refused("the user has no INBOX".into())
            })?;
            let messages = reader.visible_messages(inbox.id)?;
            let maildrop = Maildrop {
                uidvalidity: inbox.uidvalidity,
                messages: messages
                    .iter()
                    .map(|m| Listing {
                        uid: m.uid,
                        size: m.size,
                    })
                    .collect(),
            };
            Ok((inbox.id, maildrop, messages))
        })
    })
    .await
    .map_err(|e| lifeboat_mailstore::Error::Refused(format!("maildrop task failed: {e}")))?
}
