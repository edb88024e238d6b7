//! POP3 load generator for `bench/pop3.sh`: CONCURRENCY clients, each with its own user
//! (`user1@DOMAIN` … , one password for all), run whole sessions back to back for
//! SECONDS: greeting, USER, PASS, STAT, LIST, UIDL, RETR of RETR messages, QUIT. Every
//! answer is checked (`+OK`, multi-line bodies read to the final dot). Prints sessions
//! per second. Not a test: nothing asserts a time.
//!
//! usage: pop3_load HOST:PORT CONCURRENCY SECONDS DOMAIN PASSWORD [RETR]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    line: String,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Result<Client, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(reader),
            writer,
            line: String::new(),
        };
        client.status().await?;
        Ok(client)
    }

    async fn status(&mut self) -> Result<(), Error> {
        self.line.clear();
        self.reader.read_line(&mut self.line).await?;
        if !self.line.starts_with("+OK") {
            return Err(format!("unexpected answer: {:?}", self.line).into());
        }
        Ok(())
    }

    async fn command(&mut self, command: &str) -> Result<(), Error> {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await?;
        self.status().await
    }

    /// A multi-line answer; returns its byte count.
    async fn multi(&mut self, command: &str) -> Result<usize, Error> {
        self.command(command).await?;
        let mut bytes = 0;
        loop {
            self.line.clear();
            let n = self.reader.read_line(&mut self.line).await?;
            if n == 0 {
                return Err("connection closed in a multi-line answer".into());
            }
            if self.line == ".\r\n" {
                return Ok(bytes);
            }
            bytes += n;
        }
    }
}

async fn session(addr: SocketAddr, user: &str, password: &str, retr: usize) -> Result<(), Error> {
    let mut client = Client::connect(addr).await?;
    client.command(&format!("USER {user}")).await?;
    client.command(&format!("PASS {password}")).await?;
    client.command("STAT").await?;
    let count = client
        .line
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse::<usize>()?;
    client.multi("LIST").await?;
    client.multi("UIDL").await?;
    for n in 1..=retr.min(count) {
        client.multi(&format!("RETR {n}")).await?;
    }
    client.command("QUIT").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: pop3_load HOST:PORT CONCURRENCY SECONDS DOMAIN PASSWORD [RETR]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse()?;
    let concurrency: usize = args[2].parse()?;
    let seconds: u64 = args[3].parse()?;
    let domain = args[4].clone();
    let password = Arc::new(args[5].clone());
    let retr: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(3);

    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 1..=concurrency {
        let user = format!("user{n}@{domain}");
        let (done, failed, stop, password) =
            (done.clone(), failed.clone(), stop.clone(), password.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match session(addr, &user, &password, retr).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("pop3_load: {user}: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        0
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sessions = done.load(Ordering::Relaxed);
    println!(
        "sessions={sessions} failed={} seconds={elapsed:.2} rate={:.1}",
        failed.load(Ordering::Relaxed),
        sessions as f64 / elapsed
    );
    Ok(())
}
