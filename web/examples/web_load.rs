//! Load generator for `bench/web.sh`. Modes:
//!
//! - `prepare DATA_DIR USER COUNT`: stores COUNT synthetic messages in USER's INBOX
//!   (unsynced batches: a benchmark fixture) and then one 1 MB HTML message, the
//!   newest. Run before `serve` starts (it takes the delivery lock).
//! - `run HOST:PORT USER PASSWORD INBOX_ID UID SESSIONS SECONDS PID`: logs SESSIONS
//!   sessions in, then
//!   1. one client alone: REPEAT requests each of the message list (page 1 of the
//!      INBOX) and of the opened HTML message (its page, then its sanitised body), and
//!      prints median and p99 times;
//!   2. memory: the server's RSS before and after 1000 more logins (sessions kept in
//!      the index) and with SESSIONS open connections;
//!   3. SESSIONS clients at once, each with its own session and keep-alive connection,
//!      asking for list pages for SECONDS, then for read pages; prints pages per
//!      second, the server's CPU seconds (from /proc/PID/stat) and pages per
//!      CPU-second, and the latency percentiles under that load.
//!
//! Times are measured by the client on loopback: the server's time plus a loopback
//! round trip. Not a test: nothing asserts a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lifeboat_mailstore::{Address, Class, NewMessage, Store, synthetic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

const REPEAT: usize = 200;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("prepare") if args.len() == 4 => prepare(&args[1], &args[2], args[3].parse()?),
        Some("run") if args.len() == 9 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(&args[1..])),
        _ => {
            eprintln!(
                "usage: web_load prepare DATA_DIR USER COUNT\n       \
                 web_load run HOST:PORT USER PASSWORD INBOX_ID UID SESSIONS SECONDS PID"
            );
            std::process::exit(2);
        }
    }
}

fn prepare(data_dir: &str, user: &str, count: u64) -> Result<(), Error> {
    let store = Store::open(std::path::Path::new(data_dir), "bench.test")?;
    store.lock_for_delivery()?;
    let owner = Address::parse(user)?;
    let mut seq = 0;
    while seq < count {
        let batch: Vec<NewMessage> = (seq..(seq + 500).min(count))
            .map(|n| NewMessage::new(owner.clone(), "INBOX", synthetic::message(n), Class::Other))
            .collect();
        seq += batch.len() as u64;
        for result in store.deliver_journal(batch) {
            result?;
        }
    }
    store.deliver(NewMessage::new(owner, "INBOX", big_html(), Class::Other))?;
    Ok(())
}

/// A 1 MB HTML newsletter: tables, inline styles, links and remote images.
fn big_html() -> Vec<u8> {
    let mut html = String::from("<html><body><table width=\"100%\">");
    let mut n = 0;
    while html.len() < 1024 * 1024 {
        html.push_str(&format!(
            "<tr><td style=\"color:#333;font-family:Arial;padding:8px\"><h2>Story {n}</h2>\
             <p>Lorem ipsum dolor sit amet, <b>consectetur</b> adipiscing elit, sed do eiusmod \
             tempor incididunt ut labore et dolore magna aliqua. <a href=\"https://news.example/{n}\">Read more</a></p>\
             <img src=\"https://cdn.example/{n}.jpg\" width=\"600\" alt=\"picture {n}\"></td></tr>\n"
        ));
        n += 1;
    }
    html.push_str("</table></body></html>");
    format!(
        "From: News <news@else.test>\r\nTo: big@example.test\r\nSubject: The big newsletter\r\n\
         Message-ID: <big@else.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection with a session cookie.
struct Client {
    stream: TcpStream,
    cookie: String,
    buffer: Vec<u8>,
}

impl Client {
    async fn connect(server: SocketAddr, cookie: String) -> Result<Client, Error> {
        let stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            cookie,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    /// GETs `path`; returns the status and the body's length.
    async fn get(&mut self, path: &str) -> Result<(u16, usize), Error> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nCookie: lifeboat_session={}\r\n\r\n",
            self.cookie
        );
        self.stream.write_all(request.as_bytes()).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> Result<(u16, usize), Error> {
        let mut chunk = [0u8; 65536];
        let header_end = loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("closed".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buffer[..header_end]).to_ascii_lowercase();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("status")?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("no content-length")?;
        while self.buffer.len() < header_end + length {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("closed in a body".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        self.buffer.drain(..header_end + length);
        Ok((status, length))
    }
}

/// Logs in over a fresh connection; returns the session cookie.
async fn login(server: SocketAddr, user: &str, password: &str) -> Result<String, Error> {
    let body = format!("address={}&password={password}", user.replace('@', "%40"));
    let mut stream = TcpStream::connect(server).await?;
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let start = text.find("lifeboat_session=").ok_or("login refused")? + "lifeboat_session=".len();
    Ok(text[start..].chars().take_while(|c| *c != ';').collect())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label:<34} median {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.len()
    );
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn run(args: &[String]) -> Result<(), Error> {
    let server: SocketAddr = args[0].parse()?;
    let (user, password) = (&args[1], &args[2]);
    let (inbox, uid): (i64, u32) = (args[3].parse()?, args[4].parse()?);
    let (sessions, seconds, pid): (usize, u64, u32) =
        (args[5].parse()?, args[6].parse()?, args[7].parse()?);
    let list = format!("/folder/{inbox}");
    let read = format!("/folder/{inbox}/{uid}");
    let body = format!("/folder/{inbox}/{uid}/body");

    // 1. One client alone.
    let cookie = login(server, user, password).await?;
    let mut client = Client::connect(server, cookie).await?;
    for path in [&list, &read, &body] {
        let (status, _) = client.get(path).await?;
        if status != 200 {
            return Err(format!("{path}: HTTP {status}").into());
        }
    }
    for (label, path) in [
        ("list page (100k INBOX, page 1)", &list),
        (
            "list page (100k INBOX, page 1000)",
            &format!("{list}?page=1000"),
        ),
        ("read page (1 MB HTML message)", &read),
        ("sanitised body (1 MB HTML)", &body),
    ] {
        let mut times = Vec::with_capacity(REPEAT);
        for _ in 0..REPEAT {
            let started = Instant::now();
            client.get(path).await?;
            times.push(started.elapsed());
        }
        summary(label, times);
    }

    // 2. Memory: the server's RSS with one session, after 1000 more logins (sessions
    //    live in the index), and with SESSIONS open keep-alive connections.
    let rss_start = rss_kb(pid);
    let mut cookies = Vec::new();
    for _ in 0..1000 {
        cookies.push(login(server, user, password).await?);
    }
    let rss_sessions = rss_kb(pid);
    let mut open = Vec::new();
    for cookie in cookies.iter().take(sessions) {
        let mut client = Client::connect(server, cookie.clone()).await?;
        client.get(&list).await?;
        open.push(client);
    }
    let rss_connections = rss_kb(pid);
    println!(
        "memory: RSS {rss_start} kB; +1000 stored sessions: {:+} kB ({:.2} kB per session); \
         +{sessions} open keep-alive connections (one list page each): {:+} kB ({:.1} kB per connection)",
        rss_sessions as i64 - rss_start as i64,
        (rss_sessions as f64 - rss_start as f64) / 1000.0,
        rss_connections as i64 - rss_sessions as i64,
        (rss_connections as f64 - rss_sessions as f64) / sessions as f64
    );

    // 3. SESSIONS clients at once, list pages only, then read pages only.
    for (label, path) in [("list page", &list), ("read page", &read)] {
        let stop = Arc::new(AtomicBool::new(false));
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for client in open.drain(..) {
            let (stop, path) = (stop.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let mut client = client;
                let mut times = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let at = Instant::now();
                    client.get(&path).await?;
                    times.push(at.elapsed());
                }
                Ok::<_, Error>((client, times))
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut times = Vec::new();
        for task in tasks {
            let (client, t) = task.await??;
            open.push(client);
            times.extend(t);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid) - cpu_before;
        println!(
            "{label}, {sessions} sessions at once for {elapsed:.1} s: {} pages, {:.1} pages/s, server CPU {cpu:.2} s, {:.1} pages per server CPU-second",
            times.len(),
            times.len() as f64 / elapsed,
            times.len() as f64 / cpu.max(0.001)
        );
        summary(&format!("  {label} under load"), times);
    }
    Ok(())
}
