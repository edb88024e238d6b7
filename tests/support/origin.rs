//! A small SMTP server on loopback that tests control while it runs.
//!
//! It plays the origin mail server behind the Postfix gateway and, as further instances,
//! the "outside world" sink and a fallback relay. It speaks just enough SMTP for Postfix's
//! and swaks's clients: EHLO/HELO, MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP and
//! QUIT, one command at a time. EHLO advertises only 8BITMIME, so clients never pipeline.
//!
//! Each connection runs on its own thread; the mode is read at every decision, so
//! [`Origin::set_mode`] also affects connections Postfix keeps open in its connection
//! cache.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How the server answers; switch with [`Origin::set_mode`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Accept every recipient and message.
    #[default]
    Accept,
    /// `450 4.2.0` for every RCPT (an origin that is up but refuses to take mail).
    TempFailRcpt,
    /// `450 4.2.2` (mailbox full) for these recipients only, compared without regard to
    /// ASCII case; everybody else is accepted.
    TempFailFor(HashSet<String>),
    /// `550 5.1.1` (no such user) for these recipients; everybody else is accepted.
    RejectFor(HashSet<String>),
    /// Accept the TCP connection but never send a banner (a wedged server). Applies to
    /// connections made after the switch.
    Hang,
}

/// One message the server accepted (250 after DATA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Envelope sender without angle brackets or parameters; empty for the null sender.
    pub mail_from: String,
    /// Envelope recipients accepted in this transaction, in order.
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, without the terminating `.` line; line endings
    /// are kept as they arrived (CRLF from Postfix).
    pub data: Vec<u8>,
}

impl Received {
    /// The message as text (lossy UTF-8), for `contains` checks.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// State shared by the controlling test and the server threads.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a message is recorded.
    message_arrived: Condvar,
}

#[derive(Default)]
struct State {
    mode: Mode,
    messages: Vec<Received>,
    /// Open connections (clones of the streams), so `stop` can cut them.
    connections: HashMap<u64, TcpStream>,
    next_connection: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the whole test down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The listening half while the server runs.
struct Acceptor {
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A test-controlled SMTP server on 127.0.0.1. Stops on drop.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<Acceptor>,
}

impl Origin {
    /// Starts a server in [`Mode::Accept`] on a fresh loopback port.
    pub fn new() -> Origin {
        Origin::with_mode(Mode::Accept)
    }

    /// Starts a server in `mode` on a fresh loopback port.
    pub fn with_mode(mode: Mode) -> Origin {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind origin");
        let addr = listener.local_addr().expect("origin local_addr");
        let shared = Arc::new(Shared::default());
        shared.lock().mode = mode;
        let mut origin = Origin {
            addr,
            shared,
            acceptor: None,
        };
        origin.run(listener);
        origin
    }

    /// The address the server listens on (the same across `stop`/`start`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes how the server answers from the next decision on.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().mode = mode;
    }

    /// Simulates the server going down: closes the listening socket (new connections are
    /// refused) and cuts every open connection. Does nothing when already stopped.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        acceptor.stopping.store(true, Ordering::SeqCst);
        // `accept` cannot be interrupted; a throwaway connection wakes it up to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = acceptor.thread.join();
        let connections: Vec<TcpStream> = self
            .shared
            .lock()
            .connections
            .drain()
            .map(|(_, s)| s)
            .collect();
        for stream in connections {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Brings a stopped server back on the same port. Panics if the port was taken
    /// meanwhile. Does nothing when already running.
    pub fn start(&mut self) {
        if self.acceptor.is_some() {
            return;
        }
        // std sets SO_REUSEADDR on Unix, so connections in TIME_WAIT do not block this.
        let listener = TcpListener::bind(self.addr)
            .unwrap_or_else(|e| panic!("re-bind origin on {}: {e}", self.addr));
        self.run(listener);
    }

    /// Every message accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// Waits until at least `n` messages were accepted; false on timeout.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.messages.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .message_arrived
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        true
    }

    fn run(&mut self, listener: TcpListener) {
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Arc::clone(&self.shared);
        let flag = Arc::clone(&stopping);
        let thread = thread::Builder::new()
            .name(format!("origin-{}", self.addr.port()))
            .spawn(move || accept_loop(listener, shared, flag))
            .expect("spawn origin acceptor");
        self.acceptor = Some(Acceptor { stopping, thread });
    }
}

impl Default for Origin {
    fn default() -> Self {
        Origin::new()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stopping: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break; // the listener is dropped here: further connects are refused
        }
        let Ok(stream) = stream else { continue };
        let id = {
            let mut state = shared.lock();
            let id = state.next_connection;
            state.next_connection += 1;
            if let Ok(clone) = stream.try_clone() {
                state.connections.insert(id, clone);
            }
            id
        };
        let shared = Arc::clone(&shared);
        let _ = thread::Builder::new()
            .name(format!("origin-conn-{id}"))
            .spawn(move || {
                // I/O errors just end the session, like a real server's would.
                let _ = serve(&stream, &shared);
                let _ = stream.shutdown(Shutdown::Both);
                shared.lock().connections.remove(&id);
            });
    }
}

/// One SMTP session.
fn serve(stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    let mode = shared.lock().mode.clone();
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    if mode == Mode::Hang {
        // Swallow whatever the client sends until it gives up (or `stop` cuts us off).
        io::copy(&mut reader, &mut io::sink())?;
        return Ok(());
    }
    out.write_all(b"220 origin.test ESMTP lifeboat test origin\r\n")?;

    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(()); // client went away
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match text.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
            None => (text.to_ascii_uppercase(), ""),
        };
        let reply: String = match verb.as_str() {
            "EHLO" => {
                mail_from = None;
                rcpt_to.clear();
                "250-origin.test\r\n250 8BITMIME".into()
            }
            "HELO" => {
                mail_from = None;
                rcpt_to.clear();
                "250 origin.test".into()
            }
            "MAIL" => match path_argument(arg, "FROM:") {
                _ if mail_from.is_some() => "503 5.5.1 Error: nested MAIL command".into(),
                Some(sender) => {
                    mail_from = Some(sender);
                    "250 2.1.0 Ok".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
            },
            "RCPT" => match path_argument(arg, "TO:") {
                _ if mail_from.is_none() => "503 5.5.1 Error: need MAIL command".into(),
                None => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
                Some(rcpt) => match &shared.lock().mode {
                    Mode::TempFailRcpt => {
                        format!("450 4.2.0 <{rcpt}>: Recipient temporarily unavailable")
                    }
                    Mode::TempFailFor(full)
                        if full.iter().any(|f| f.eq_ignore_ascii_case(&rcpt)) =>
                    {
                        format!("450 4.2.2 <{rcpt}>: Mailbox full, try again later")
                    }
                    Mode::RejectFor(unknown)
                        if unknown.iter().any(|u| u.eq_ignore_ascii_case(&rcpt)) =>
                    {
                        format!("550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown")
                    }
                    _ => {
                        rcpt_to.push(rcpt);
                        "250 2.1.5 Ok".into()
                    }
                },
            },
            "DATA" => {
                if mail_from.is_none() || rcpt_to.is_empty() {
                    "503 5.5.1 Error: need MAIL and RCPT commands".into()
                } else {
                    out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                    let data = read_data(&mut reader)?;
                    let mut state = shared.lock();
                    state.messages.push(Received {
                        mail_from: mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                    });
                    let n = state.messages.len();
                    drop(state);
                    shared.message_arrived.notify_all();
                    format!("250 2.0.0 Ok: queued as M{n}")
                }
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => "502 5.5.2 Error: command not recognized".into(),
        };
        out.write_all(reply.as_bytes())?;
        out.write_all(b"\r\n")?;
    }
}

/// The address in `FROM:<a@b> PARAMS` / `TO:<a@b>`, without brackets; None if malformed.
fn path_argument(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_string())
}

/// Reads the DATA section up to the lone `.` line and undoes dot-stuffing.
fn read_data(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(unstuffed);
    }
}
