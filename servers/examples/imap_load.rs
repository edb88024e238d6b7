//! IMAP load generator for `bench/imap.sh`. Three modes:
//!
//! - `load`: CONCURRENCY clients, each with its own user (`user1@DOMAIN` …, one password
//!   for all), run whole sessions back to back for SECONDS: greeting, LOGIN, SELECT
//!   INBOX, then the operations of OPS in this order — `list` (LIST "" "*"), `status`
//!   (STATUS INBOX (MESSAGES UNSEEN UIDNEXT)), `fetch` (FETCH 1:* (FLAGS
//!   ENVELOPE)), `body` (FETCH n BODY.PEEK[] for BODIES messages), `store` (STORE n
//!   +FLAGS (\Seen)), `append` (APPEND a small message to INBOX), `expunge` (UID STORE
//!   +FLAGS.SILENT (\Deleted) on what this session appended, then EXPUNGE) — and
//!   LOGOUT. Every answer is checked (tagged OK). Prints sessions and commands per second;
//!   given the server's SERVER_PID, also the CPU its process tree used, commands per
//!   server CPU-second and the tree's peak RSS/PSS during the run.
//! - `idle`: opens N connections spread over USERS users, each logs in and SELECTs
//!   INBOX, then all sit idle; prints the server's RSS (and PSS) before and after, read
//!   from /proc for the processes named COMM under PID (`*`: every process in the tree).
//! - `select`: one user SELECTs INBOX REPEAT times; prints the median time.
//!
//! Connections from loopback are spread over source addresses 127.0.0.2… (at most 40
//! per address) so per-IP connection limits do not get in the way. Not a test: nothing
//! asserts a time.
//!
//! usage: imap_load load HOST:PORT CONCURRENCY SECONDS DOMAIN PASSWORD [OPS] [BODIES] [SERVER_PID]
//!        imap_load idle HOST:PORT N USERS DOMAIN PASSWORD PID COMM [HOLD_SECONDS]
//!        imap_load select HOST:PORT USER PASSWORD REPEAT

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: imap_load load HOST:PORT CONCURRENCY SECONDS DOMAIN PASSWORD [OPS] [BODIES] [SERVER_PID]\n\
       imap_load idle HOST:PORT N USERS DOMAIN PASSWORD PID COMM [HOLD_SECONDS]\n\
       imap_load select HOST:PORT USER PASSWORD REPEAT";

/// Connections per source address (servers limit connections per IP).
const PER_SOURCE: usize = 40;

struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    next_tag: u32,
    /// Commands sent (LOGIN and LOGOUT included).
    commands: u64,
}

/// One response, literals inlined.
fn line_literal(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

impl Client {
    async fn connect(addr: SocketAddr, index: usize) -> Result<Client, Error> {
        let stream = if addr.ip().is_loopback() && addr.is_ipv4() {
            let socket = TcpSocket::new_v4()?;
            let source = Ipv4Addr::new(127, 0, (2 + index / PER_SOURCE / 250) as u8, {
                (2 + (index / PER_SOURCE) % 250) as u8
            });
            socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
            socket.connect(addr).await?
        } else {
            TcpStream::connect(addr).await?
        };
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(reader),
            writer,
            next_tag: 0,
            commands: 0,
        };
        let greeting = client.response().await?;
        if !greeting.starts_with(b"* OK") {
            return Err(format!("greeting: {}", String::from_utf8_lossy(&greeting)).into());
        }
        Ok(client)
    }

    /// Reads one response (a line, with any literals it announces).
    async fn response(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = self.reader.read_until(b'\n', &mut out).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            match line_literal(&out[start..]) {
                Some(size) => {
                    let at = out.len();
                    out.resize(at + size, 0);
                    self.reader.read_exact(&mut out[at..]).await?;
                }
                None => return Ok(out),
            }
        }
    }

    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("a{}", self.next_tag)
    }

    /// Sends a command; returns the untagged responses and the tagged one (which must be
    /// OK).
    async fn command(&mut self, command: &str) -> Result<(Vec<Vec<u8>>, Vec<u8>), Error> {
        let tag = self.tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.commands += 1;
        self.until_tagged(&tag, command).await
    }

    async fn until_tagged(
        &mut self,
        tag: &str,
        what: &str,
    ) -> Result<(Vec<Vec<u8>>, Vec<u8>), Error> {
        let mut untagged = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let response = self.response().await?;
            if response.starts_with(prefix.as_bytes()) {
                if !response[prefix.len()..].starts_with(b"OK") {
                    return Err(format!(
                        "{}: {}",
                        what.split(' ').next().unwrap_or(what),
                        String::from_utf8_lossy(&response).trim_end()
                    )
                    .into());
                }
                return Ok((untagged, response));
            }
            untagged.push(response);
        }
    }

    /// APPEND with a synchronizing literal; returns the tagged response.
    async fn append(&mut self, mailbox: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        let tag = self.tag();
        self.writer
            .write_all(
                format!("{tag} APPEND {mailbox} (\\Seen) {{{}}}\r\n", message.len()).as_bytes(),
            )
            .await?;
        self.commands += 1;
        let go = self.response().await?;
        if !go.starts_with(b"+") {
            return Err(format!("APPEND: {}", String::from_utf8_lossy(&go).trim_end()).into());
        }
        self.writer.write_all(message).await?;
        self.writer.write_all(b"\r\n").await?;
        Ok(self.until_tagged(&tag, "APPEND").await?.1)
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        self.command(&format!("LOGIN \"{user}\" \"{password}\""))
            .await?;
        Ok(())
    }

    /// SELECT INBOX; returns EXISTS.
    async fn select(&mut self) -> Result<u32, Error> {
        let (untagged, _) = self.command("SELECT INBOX").await?;
        Ok(exists(&untagged).unwrap_or(0))
    }
}

fn exists(untagged: &[Vec<u8>]) -> Option<u32> {
    untagged.iter().rev().find_map(|r| {
        let text = std::str::from_utf8(r).ok()?;
        let rest = text
            .strip_prefix("* ")?
            .trim_end()
            .strip_suffix(" EXISTS")?;
        rest.parse().ok()
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    List,
    Status,
    Fetch,
    Body,
    Store,
    Append,
    Expunge,
}

fn parse_ops(text: &str) -> Result<Vec<Op>, Error> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "list" => Ok(Op::List),
            "status" => Ok(Op::Status),
            "fetch" => Ok(Op::Fetch),
            "body" => Ok(Op::Body),
            "store" => Ok(Op::Store),
            "append" => Ok(Op::Append),
            "expunge" => Ok(Op::Expunge),
            other => Err(format!("unknown op {other:?}").into()),
        })
        .collect()
}

fn small_message(n: u64) -> Vec<u8> {
    format!(
        "From: bench@else.test\r\nTo: someone@example.test\r\nSubject: appended {n}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <append{n}@else.test>\r\n\r\n\
         A small message appended by imap_load.\r\n"
    )
    .into_bytes()
}

/// The UID in `[APPENDUID validity uid]`.
fn append_uid(tagged: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(tagged).ok()?;
    let rest = &text[text.find("[APPENDUID ")? + 11..];
    let rest = &rest[..rest.find(']')?];
    rest.split(' ').nth(1)?.parse().ok()
}

struct Counters {
    sessions: AtomicU64,
    commands: AtomicU64,
    failed: AtomicU64,
    per_op: std::sync::Mutex<HashMap<Op, u64>>,
}

/// What every session of a `load` run does.
struct Job {
    addr: SocketAddr,
    password: String,
    ops: Vec<Op>,
    bodies: u32,
}

async fn session(
    job: &Job,
    index: usize,
    user: &str,
    counters: &Counters,
    seq: u64,
) -> Result<(), Error> {
    let (password, ops, bodies) = (&job.password, &job.ops[..], job.bodies);
    let mut client = Client::connect(job.addr, index).await?;
    let result = async {
        client.login(user, password).await?;
        let mut count = client.select().await?;
        let mut appended = None;
        let mut done = Vec::new();
        for &op in ops {
            match op {
                Op::List => {
                    client.command("LIST \"\" \"*\"").await?;
                }
                Op::Status => {
                    client
                        .command("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
                        .await?;
                }
                Op::Fetch if count > 0 => {
                    client.command("FETCH 1:* (FLAGS ENVELOPE)").await?;
                }
                Op::Body if count > 0 => {
                    for k in 0..bodies.min(count) {
                        // Spread over the mailbox, different ones each session.
                        let n = 1 + ((seq as u32).wrapping_mul(7).wrapping_add(k * 13)) % count;
                        client.command(&format!("FETCH {n} BODY.PEEK[]")).await?;
                    }
                }
                Op::Store if count > 0 => {
                    let n = 1 + (seq as u32 % count);
                    client
                        .command(&format!("STORE {n} +FLAGS (\\Seen)"))
                        .await?;
                }
                Op::Append => {
                    let tagged = client.append("INBOX", &small_message(seq)).await?;
                    appended = append_uid(&tagged);
                    if appended.is_none() {
                        // No UIDPLUS: the last message after a NOOP is ours.
                        let (untagged, _) = client.command("NOOP").await?;
                        count = exists(&untagged).unwrap_or(count);
                        let (untagged, _) = client.command(&format!("FETCH {count} (UID)")).await?;
                        appended = untagged.iter().find_map(|r| {
                            let text = String::from_utf8_lossy(r);
                            let at = text.find("UID ")? + 4;
                            text[at..]
                                .split(|c: char| !c.is_ascii_digit())
                                .next()?
                                .parse()
                                .ok()
                        });
                    }
                }
                Op::Expunge => {
                    let Some(uid) = appended.take() else { continue };
                    client
                        .command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
                        .await?;
                    client.command("EXPUNGE").await?;
                }
                _ => continue,
            }
            done.push(op);
        }
        client.command("LOGOUT").await?;
        let mut per_op = counters.per_op.lock().unwrap();
        for op in done {
            *per_op.entry(op).or_default() += 1;
        }
        Ok::<(), Error>(())
    }
    .await;
    counters
        .commands
        .fetch_add(client.commands, Ordering::Relaxed);
    result
}

async fn load(args: &[String]) -> Result<(), Error> {
    if args.len() < 6 {
        return Err(USAGE.into());
    }
    let addr: SocketAddr = args[0].parse()?;
    let concurrency: usize = args[1].parse()?;
    let seconds: u64 = args[2].parse()?;
    let domain = args[3].clone();
    let ops = parse_ops(
        args.get(5)
            .map_or("fetch,body,store,append,expunge", String::as_str),
    )?;
    let bodies: u32 = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let server: Option<u32> = args.get(7).map(|s| s.parse()).transpose()?;
    let job = Arc::new(Job {
        addr,
        password: args[4].clone(),
        ops,
        bodies,
    });

    let counters = Arc::new(Counters {
        sessions: AtomicU64::new(0),
        commands: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        per_op: Default::default(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = server.map(tree_cpu_seconds);
    let memory = server.map(|pid| tokio::spawn(peak_memory(pid, stop.clone())));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 1..=concurrency {
        let user = format!("user{n}@{domain}");
        let (counters, stop, job) = (counters.clone(), stop.clone(), job.clone());
        tasks.push(tokio::spawn(async move {
            let mut seq = n as u64 * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                match session(&job, n - 1, &user, &counters, seq).await {
                    Ok(()) => counters.sessions.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if counters.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("imap_load: {user}: {e}");
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
    let server_cpu = server
        .zip(cpu_before)
        .map(|(pid, before)| tree_cpu_seconds(pid) - before);
    let peak = match memory {
        Some(task) => Some(task.await?),
        None => None,
    };
    let sessions = counters.sessions.load(Ordering::Relaxed);
    let commands = counters.commands.load(Ordering::Relaxed);
    let per_op = counters.per_op.lock().unwrap();
    let ran: Vec<String> = job
        .ops
        .iter()
        .filter(|op| per_op.get(op).copied().unwrap_or(0) > 0)
        .map(|op| format!("{op:?}").to_lowercase())
        .collect();
    // The server's side, when its pid was given: CPU seconds and commands per
    // CPU-second (fair whatever else runs on the machine), and memory under this load.
    let server_side = match (server_cpu, peak) {
        (Some(cpu), Some((rss, pss))) => format!(
            " server_cpu_s={cpu:.2} commands_per_cpu_s={:.1} peak_rss_kb={rss} peak_pss_kb={pss}",
            commands as f64 / cpu.max(0.01)
        ),
        _ => String::new(),
    };
    println!(
        "sessions={sessions} failed={} commands={commands} seconds={elapsed:.2} ops={} commands/s={:.1}{server_side} rate={:.1}",
        counters.failed.load(Ordering::Relaxed),
        if ran.is_empty() {
            "-".into()
        } else {
            ran.join(",")
        },
        commands as f64 / elapsed,
        sessions as f64 / elapsed
    );
    Ok(())
}

/// One process under the measured server, read from /proc.
struct Process {
    pid: u32,
    ppid: u32,
    name: String,
    /// CPU time in clock ticks: its own (utime + stime) and that of its children it has
    /// waited for (cutime + cstime), so processes that came and went (Dovecot's imap
    /// and login processes) still count, through their parent.
    cpu_ticks: u64,
}

/// The processes under `root` (itself included).
fn process_tree(root: u32) -> Vec<Process> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        // After the name: state ppid … utime(14) stime cutime cstime (proc(5) fields).
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        let number = |i: usize| rest.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        all.push(Process {
            pid,
            ppid: number(1) as u32,
            name: stat[open + 1..close].to_string(),
            cpu_ticks: number(11) + number(12) + number(13) + number(14),
        });
    }
    let parent: HashMap<u32, u32> = all.iter().map(|p| (p.pid, p.ppid)).collect();
    let in_tree = |mut pid: u32| loop {
        if pid == root {
            return true;
        }
        match parent.get(&pid) {
            Some(&p) if p != 0 && p != pid => pid = p,
            _ => return false,
        }
    };
    all.retain(|p| in_tree(p.pid));
    all
}

/// Seconds of CPU the server under `root` has used so far.
fn tree_cpu_seconds(root: u32) -> f64 {
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space on every
    // architecture it runs on (sysconf(_SC_CLK_TCK)).
    const TICKS_PER_SECOND: f64 = 100.0;
    let ticks: u64 = process_tree(root).iter().map(|p| p.cpu_ticks).sum();
    ticks as f64 / TICKS_PER_SECOND
}

/// (RSS, PSS) in KiB summed over the processes under `root` (itself included) whose
/// name is `comm` (`*`: all), and how many there were.
fn tree_memory(root: u32, comm: &str) -> (u64, u64, usize) {
    let field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let (mut rss, mut pss, mut count) = (0, 0, 0);
    for process in process_tree(root) {
        if comm == "*" || process.name == comm {
            let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", process.pid))
                .unwrap_or_default();
            rss += field(&rollup, "Rss:");
            pss += field(&rollup, "Pss:");
            count += 1;
        }
    }
    (rss, pss, count)
}

/// The largest (RSS, PSS) of the server's whole tree seen every 250 ms until `stop`.
async fn peak_memory(root: u32, stop: Arc<AtomicBool>) -> (u64, u64) {
    let (mut rss, mut pss) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let (r, p, _) = tree_memory(root, "*");
        (rss, pss) = (rss.max(r), pss.max(p));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (rss, pss)
}

async fn idle(args: &[String]) -> Result<(), Error> {
    if args.len() < 7 {
        return Err(USAGE.into());
    }
    let addr: SocketAddr = args[0].parse()?;
    let n: usize = args[1].parse()?;
    let users: usize = args[2].parse()?;
    let domain = &args[3];
    let password = &args[4];
    let pid: u32 = args[5].parse()?;
    let comm = args[6].clone();
    let hold: u64 = args.get(7).map(|s| s.parse()).transpose()?.unwrap_or(2);

    let (rss0, pss0, procs0) = tree_memory(pid, &comm);
    let (tree0, _, _) = tree_memory(pid, "*");
    let mut clients = Vec::with_capacity(n);
    // A few at a time: a burst of hundreds of logins is not what this measures.
    let mut pending = tokio::task::JoinSet::new();
    for index in 0..n {
        let user = format!("user{}@{domain}", index % users + 1);
        let password = password.clone();
        pending.spawn(async move {
            let mut client = Client::connect(addr, index).await?;
            client.login(&user, &password).await?;
            client.select().await?;
            Ok::<Client, Error>(client)
        });
        if pending.len() >= 16 {
            clients.push(pending.join_next().await.expect("some")??);
        }
    }
    while let Some(client) = pending.join_next().await {
        clients.push(client??);
    }
    // Let the servers settle (Dovecot's login processes exit, allocators return memory).
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let (rss1, pss1, procs1) = tree_memory(pid, &comm);
    let (tree1, _, _) = tree_memory(pid, "*");
    let kb = |a: u64, b: u64| (b as f64 - a as f64) / n as f64;
    println!(
        "connections={n} processes={procs0}->{procs1} rss_kb={rss0}->{rss1} pss_kb={pss0}->{pss1} rss_per_conn_kb={:.1} pss_per_conn_kb={:.1} tree_rss_per_conn_kb={:.1}",
        kb(rss0, rss1),
        kb(pss0, pss1),
        kb(tree0, tree1)
    );
    for mut client in clients {
        let _ = client.command("LOGOUT").await;
    }
    Ok(())
}

async fn select(args: &[String]) -> Result<(), Error> {
    if args.len() < 4 {
        return Err(USAGE.into());
    }
    let addr: SocketAddr = args[0].parse()?;
    let repeat: usize = args[3].parse()?;
    let mut client = Client::connect(addr, 0).await?;
    client.login(&args[1], &args[2]).await?;
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        count = client.select().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    client.command("LOGOUT").await?;
    let first = times[0];
    times.sort_by(f64::total_cmp);
    println!(
        "messages={count} selects={} first_ms={first:.1} median_ms={:.1} min_ms={:.1} max_ms={:.1}",
        times.len(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("load") => load(&args[1..]).await,
        Some("idle") => idle(&args[1..]).await,
        Some("select") => select(&args[1..]).await,
        _ => Err(USAGE.into()),
    };
    if let Err(e) = result {
        eprintln!("imap_load: {e}");
        std::process::exit(1);
    }
}
