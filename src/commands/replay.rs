//! `lifeboat replay`: delivers every copy waiting for replay back to its origin, one run
//! (the timer repeats it).
//!
//! - One run at a time (a lock file); an origin in `outage`, or whose probe fails, is
//!   left for a later run (exit 0, saying why: nothing went wrong).
//! - Directly to the origin's address over SMTP or LMTP, never through Postfix (no
//!   loop through the milter), per user in arrival order, with the original envelope
//!   sender and recipients, a trace line and a stable `X-Lifeboat-Replay-ID`.
//! - Each outcome is committed before the next copy is sent: 2xx `delivered`, 4xx stays
//!   `pending` with a backoff (and the user's later copies wait, to keep the order), 5xx
//!   `rejected` (kept, shown in `status`).
//! - When an origin in `recovering` has nothing left, it becomes `normal` in the same
//!   transaction that saw the backlog empty.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeboat_mailstore::class::SENT_HEADER;
use lifeboat_mailstore::replay::{PendingCopy, ReplayOutcome, replay_content};
use lifeboat_mailstore::{Class, Keyring};
use lifeboat_mailstore::{OutageState, Store};
use nix::fcntl::{Flock, FlockArg};

use crate::config::{Config, Origin, Protocol};
use crate::exit::{self, CommandResult, Failure};
use crate::origin_watch::probe::{self, Target};
use lifeboat_servers::smtp::{Broken, Client, Reply, ReplyClass};

const LOCK_FILE: &str = "replay.lock";
/// Limit on each exchange with the origin.
const TIMEOUT: Duration = Duration::from_secs(60);
/// First retry after a 4xx; doubles per attempt up to an hour.
const BACKOFF: i64 = 60;
const MAX_BACKOFF: i64 = 3600;

/// What one run did for one origin.
#[derive(Default, Debug)]
struct Tally {
    delivered: usize,
    deferred: usize,
    rejected: usize,
    /// One line per rejected copy, for the admins' notice.
    refusals: Vec<String>,
}

pub fn run(config: &Config, store: Store, dry_run: bool) -> CommandResult {
    let lock_path = config.data_dir.join(LOCK_FILE);
    let file = lifeboat_mailstore::private::open_file(&lock_path)
        .map_err(|e| Failure::failed(format!("{}: {e}", lock_path.display())))?;
    let Ok(_lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
        println!("another `lifeboat replay` is running; nothing to do");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("starting the runtime: {e}")))?;
    let mut try_later = false;
    for origin in &config.origins {
        let done = runtime.block_on(replay_origin(config, &store, origin, dry_run))?;
        try_later |= done;
    }
    if try_later {
        return Err(Failure::new(
            exit::TEMPFAIL,
            "some copies wait for a later run (see above)",
        ));
    }
    Ok(())
}

/// Replays one origin's queue; true when something is left for a later run.
async fn replay_origin(
    config: &Config,
    store: &Store,
    origin: &Origin,
    dry_run: bool,
) -> Result<bool, Failure> {
    let reader = store.reader()?;
    let status = reader.origin_status(&origin.name)?;
    let queue = reader.replay_queue(&origin.domains)?;
    drop(reader);
    if status.state == OutageState::Outage {
        println!(
            "{}: in outage; {} copies wait for the origin to recover",
            origin.name,
            queue.len()
        );
        return Ok(false);
    }
    if dry_run {
        println!("{}: {} copies would be replayed", origin.name, queue.len());
        for copy in &queue {
            println!(
                "  {} {} from <{}> to {} (replay id {}, {} attempts)",
                copy.owner,
                copy.class,
                copy.envelope_from,
                copy.recipients().join(", "),
                copy.replay_id,
                copy.attempts
            );
        }
        return Ok(false);
    }
    if !queue.is_empty() {
        let target = Target::new(origin, &config.hostname, config.watch.probe_timeout);
        let probe = probe::probe(&target).await;
        if !probe.health.is_up() {
            // Nothing failed here: the origin is not ready yet. The next run tries again.
            println!(
                "{}: the origin does not take mail ({}); {} copies wait for a later run",
                origin.name,
                probe.detail,
                queue.len()
            );
            return Ok(false);
        }
    }
    let tally = deliver_queue(config, store, origin, queue).await?;
    if tally.delivered + tally.deferred + tally.rejected > 0 {
        println!(
            "{}: {} delivered, {} deferred, {} rejected",
            origin.name, tally.delivered, tally.deferred, tally.rejected
        );
    }
    if !tally.refusals.is_empty() {
        let notifier = crate::notify::Notifier::new(store.clone(), config.clone());
        let subject = format!(
            "[lifeboat] origin {}: {} replayed copies refused",
            origin.name,
            tally.refusals.len()
        );
        let body = format!(
            "The origin {} ({}) refused these copies for good. Lifeboat keeps them (shown \
             as rejected in `lifeboat status`); deliver or remove them by hand.\n\n{}\n",
            origin.name,
            origin.address,
            tally.refusals.join("\n")
        );
        notifier
            .tell_admins(&format!("admin:{}:rejected", origin.name), subject, body)
            .await;
    }
    if status.state == OutageState::Recovering
        && let Some(change) = store.finish_recovery(
            &origin.name,
            origin.domains.clone(),
            "replay delivered every waiting copy",
        )?
    {
        // `serve`'s origin watch announces the change (log line, metric, notices) when
        // it next reads the state; announcing it here too would make it two.
        tracing::info!(origin = %origin.name, from = %change.from, to = %change.to.state, "replay: the backlog is empty, so the origin is normal again");
        println!("{}: {} -> {}", origin.name, change.from, change.to.state);
    }
    Ok(tally.deferred > 0)
}

/// Delivers the queue over up to `[replay] connections` connections: each worker takes
/// one user's copies at a time and sends them in order; a shared pacer holds the rate
/// to `max_rate`, climbing to it over `slow_start`.
async fn deliver_queue(
    config: &Config,
    store: &Store,
    origin: &Origin,
    queue: Vec<PendingCopy>,
) -> Result<Tally, Failure> {
    let total = queue.len();
    let mut by_user: Vec<Vec<PendingCopy>> = Vec::new();
    for copy in queue {
        match by_user.last_mut() {
            Some(group) if group[0].owner == copy.owner => group.push(copy),
            _ => by_user.push(vec![copy]),
        }
    }
    let workers = (config.replay.connections as usize).min(by_user.len());
    let shared = Arc::new(Shared {
        users: Mutex::new(by_user.into_iter().collect()),
        tally: Mutex::new(Tally::default()),
        pacer: Pacer::new(config.replay.max_rate, config.replay.slow_start),
        progress: Progress::new(total),
        store: store.clone(),
        origin: origin.clone(),
        hostname: config.hostname.clone(),
        sent_subject_tag: config.replay.sent_subject_tag.clone(),
        now: lifeboat_mailstore::store::now(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let shared = shared.clone();
        tasks.spawn(async move { shared.work().await });
    }
    let mut failure = None;
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(Failure::failed(format!("replay worker: {e}"))),
        }
    }
    shared.progress.finish();
    if let Some(failure) = failure {
        return Err(failure);
    }
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(tally)
}

/// What the workers of one origin share.
struct Shared {
    /// Users still to do, each with their copies in arrival order.
    users: Mutex<std::collections::VecDeque<Vec<PendingCopy>>>,
    tally: Mutex<Tally>,
    pacer: Pacer,
    progress: Progress,
    store: Store,
    origin: Origin,
    hostname: String,
    sent_subject_tag: String,
    now: i64,
}

impl Shared {
    async fn work(self: Arc<Self>) -> Result<(), Failure> {
        let mut connection: Option<Client> = None;
        loop {
            let next = self
                .users
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            let Some(copies) = next else { break };
            for copy in copies {
                // A copy in backoff holds the user's later ones: order per recipient.
                if copy.not_before.is_some_and(|at| at > self.now) {
                    self.count(&ReplayOutcome::Deferred {
                        response: String::new(),
                        retry_at: 0,
                    });
                    break;
                }
                self.pacer.wait().await;
                let outcome = self.deliver(&mut connection, &copy).await?;
                log_outcome(&self.origin, &copy, &outcome);
                let held = matches!(outcome, ReplayOutcome::Deferred { .. });
                self.count(&outcome);
                if let ReplayOutcome::Rejected(response) = &outcome {
                    self.tally
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .refusals
                        .push(format!(
                            "{} (replay id {}, to {}): {response}",
                            copy.owner,
                            copy.replay_id,
                            copy.recipients().join(", ")
                        ));
                }
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || store.record_replay(copy.row, outcome))
                    .await
                    .map_err(|e| Failure::failed(format!("replay: {e}")))??;
                self.progress.step();
                if held {
                    break;
                }
            }
        }
        if let Some(client) = connection {
            client.quit().await;
        }
        Ok(())
    }

    async fn deliver(
        &self,
        connection: &mut Option<Client>,
        copy: &PendingCopy,
    ) -> Result<ReplayOutcome, Failure> {
        let (store, read) = (self.store.clone(), copy.clone());
        let stored = tokio::task::spawn_blocking(move || {
            store.read_file(&read.owner, &read.folder, &read.basename, read.flags)
        })
        .await
        .map_err(|e| Failure::failed(format!("replay: {e}")))??;
        let message = with_trace(
            &self.hostname,
            &self.sent_subject_tag,
            self.store.keyring(),
            copy,
            replay_content(&stored),
        );
        if connection.is_none() {
            *connection = connect(&self.origin, &self.hostname).await.ok();
        }
        let sent = match connection.as_mut() {
            Some(client) => send(client, self.origin.address.protocol, copy, &message)
                .await
                .map_err(|e| e.to_string()),
            None => Err("cannot connect to the origin".to_string()),
        };
        let retry_at = self.now + backoff(copy.attempts);
        Ok(match sent {
            Ok(ReplayOutcome::Deferred { response, .. }) => {
                ReplayOutcome::Deferred { response, retry_at }
            }
            Ok(other) => other,
            Err(why) => {
                *connection = None;
                ReplayOutcome::Deferred {
                    response: why,
                    retry_at,
                }
            }
        })
    }

    fn count(&self, outcome: &ReplayOutcome) {
        let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            ReplayOutcome::Delivered(_) => tally.delivered += 1,
            ReplayOutcome::Deferred { .. } => tally.deferred += 1,
            ReplayOutcome::Rejected(_) => tally.rejected += 1,
        }
    }
}

/// Spaces sends so the rate never exceeds `max_rate`, starting at a tenth of it and
/// climbing linearly over `slow_start`: an origin that has just recovered is not hit
/// with the whole backlog at once.
struct Pacer {
    started: Instant,
    max_rate: f64,
    slow_start: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(max_rate: u32, slow_start: Duration) -> Pacer {
        let now = Instant::now();
        Pacer {
            started: now,
            max_rate: f64::from(max_rate.max(1)),
            slow_start,
            next: Mutex::new(now),
        }
    }

    /// Messages per second allowed `elapsed` into the run.
    fn rate(&self, elapsed: Duration) -> f64 {
        let ramp = if self.slow_start.is_zero() {
            1.0
        } else {
            (elapsed.as_secs_f64() / self.slow_start.as_secs_f64()).min(1.0)
        };
        self.max_rate * (0.1 + 0.9 * ramp)
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = (*next).max(now);
            let interval = Duration::from_secs_f64(1.0 / self.rate(slot - self.started));
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// done/total, rate and ETA: a line rewritten in place on a terminal, a log line every
/// 100 copies otherwise (so the slow start is visible in the log).
struct Progress {
    total: usize,
    done: Mutex<(usize, Instant)>,
    started: Instant,
    terminal: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            done: Mutex::new((0, now)),
            started: now,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    fn step(&self) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.0 += 1;
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done.0 as f64 / elapsed;
        let eta = (self.total - done.0.min(self.total)) as f64 / rate.max(0.001);
        if self.terminal {
            if done.1.elapsed() >= Duration::from_millis(200) || done.0 == self.total {
                eprint!(
                    "\rreplay: {}/{} copies, {rate:.0}/s, ETA {eta:.0} s   ",
                    done.0, self.total
                );
                done.1 = Instant::now();
            }
        } else if done.0.is_multiple_of(100) {
            tracing::info!(
                done = done.0,
                total = self.total,
                rate = format!("{rate:.0}/s"),
                "replay progress"
            );
        }
    }

    fn finish(&self) {
        if self.terminal && self.total > 0 {
            eprintln!();
        }
    }
}

fn backoff(attempts: i64) -> i64 {
    (BACKOFF << attempts.clamp(0, 10)).min(MAX_BACKOFF)
}

fn log_outcome(origin: &Origin, copy: &PendingCopy, outcome: &ReplayOutcome) {
    let recipients = copy.recipients().join(",");
    match outcome {
        ReplayOutcome::Delivered(response) => tracing::info!(
            origin = %origin.name, user = %copy.owner, replay_id = %copy.replay_id,
            %recipients, %response, "replay: delivered"
        ),
        ReplayOutcome::Deferred { response, .. } => tracing::warn!(
            origin = %origin.name, user = %copy.owner, replay_id = %copy.replay_id,
            %recipients, %response, "replay: deferred"
        ),
        ReplayOutcome::Rejected(response) => tracing::error!(
            origin = %origin.name, user = %copy.owner, replay_id = %copy.replay_id,
            %recipients, %response, "replay: rejected by the origin; kept for an admin"
        ),
    }
}

/// The message as the origin gets it: a trace line, the replay id (and for sent copies
/// the marker an origin-side rule can file into Sent) on top of the original.
///
/// The marker's value is keyed ([`Keyring::sent_mark`] of the replay id), so nobody
/// without the store's key can make one that verifies. An origin's Sieve rule cannot
/// check it, though: what makes the rule safe is that the milter removes every
/// `X-Lifeboat-*` field from incoming mail (docs/design.md §4.6).
fn with_trace(
    hostname: &str,
    tag: &str,
    keyring: &Keyring,
    copy: &PendingCopy,
    original: &[u8],
) -> Vec<u8> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut message = format!(
        "Received: by {hostname} (Lifeboat replay); {now}\r\nX-Lifeboat-Replay-ID: {}\r\n",
        copy.replay_id
    )
    .into_bytes();
    if copy.class == Class::Sent {
        let mark = keyring.sent_mark(&copy.replay_id);
        message.extend_from_slice(format!("{SENT_HEADER}: {mark}\r\n").as_bytes());
    }
    match (copy.class, tag) {
        (Class::Sent, tag) if !tag.is_empty() => message.extend(tag_subject(original, tag)),
        _ => message.extend_from_slice(original),
    }
    message
}

/// The message with `tag` in front of its Subject (a Subject is added when it has
/// none). Only the header section is touched.
fn tag_subject(message: &[u8], tag: &str) -> Vec<u8> {
    let header_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |i| i + 2);
    let mut at = 0;
    while at < header_end {
        let line_end = message[at..header_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header_end, |i| at + i + 1);
        let line = &message[at..line_end];
        if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"Subject:") {
            let value_start = at + 8 + line[8..].iter().take_while(|&&b| b == b' ').count();
            let mut out = message[..value_start].to_vec();
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(&message[value_start..]);
            return out;
        }
        at = line_end;
    }
    let mut out = format!("Subject: {tag}\r\n").into_bytes();
    out.extend_from_slice(message);
    out
}

async fn connect(origin: &Origin, hostname: &str) -> Result<Client, String> {
    let address = (origin.address.host.as_str(), origin.address.port);
    let lmtp = origin.address.protocol == Protocol::Lmtp;
    Client::connect(address, hostname, lmtp, TIMEOUT)
        .await
        .map_err(|e| e.to_string())
}

/// One copy, one transaction. `Err` means the connection is unusable (the copy is
/// deferred and the next one reconnects).
async fn send(
    client: &mut Client,
    protocol: Protocol,
    copy: &PendingCopy,
    message: &[u8],
) -> Result<ReplayOutcome, Broken> {
    let reply = client.mail(&copy.envelope_from, None).await?;
    if !reply.is_positive() {
        let _ = client.rset().await;
        return Ok(judge(&reply, reply.text.clone()));
    }
    let mut accepted = 0;
    let mut refusals = Vec::new();
    let mut temporary = false;
    for recipient in copy.recipients() {
        let reply = client.rcpt(&recipient).await?;
        match reply.class() {
            ReplyClass::Positive => accepted += 1,
            class => {
                temporary |= class == ReplyClass::Transient;
                refusals.push(format!("<{recipient}>: {reply}"));
            }
        }
    }
    // A recipient that may accept later keeps the whole copy back: sending to the others
    // now would mean sending it to them twice later.
    if temporary || accepted == 0 {
        let _ = client.rset().await;
        let response = refusals.join("; ");
        return Ok(if temporary {
            ReplayOutcome::Deferred {
                response,
                retry_at: 0,
            }
        } else {
            ReplayOutcome::Rejected(response)
        });
    }
    // LMTP answers once per accepted recipient; the copy is delivered when all took it.
    let expected = match protocol {
        Protocol::Smtp => 1,
        Protocol::Lmtp => accepted,
    };
    let replies = client.data(message, expected).await?;
    let worst = replies
        .iter()
        .max_by_key(|r| r.code)
        .expect("at least one reply");
    if !worst.is_positive() {
        // Harmless after a finished transaction, needed after a refused DATA.
        let _ = client.rset().await;
    }
    let mut response = worst.text.clone();
    if !refusals.is_empty() {
        response.push_str(&format!(" (refused: {})", refusals.join("; ")));
    }
    Ok(judge(worst, response))
}

fn judge(reply: &Reply, response: String) -> ReplayOutcome {
    match reply.class() {
        ReplyClass::Positive => ReplayOutcome::Delivered(response),
        ReplyClass::Transient => ReplayOutcome::Deferred {
            response,
            retry_at: 0,
        },
        ReplyClass::Intermediate | ReplyClass::Permanent => ReplayOutcome::Rejected(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_climbs_from_a_tenth_to_the_full_rate() {
        let pacer = Pacer::new(1000, Duration::from_secs(30));
        assert_eq!(pacer.rate(Duration::ZERO), 100.0);
        assert_eq!(pacer.rate(Duration::from_secs(15)), 550.0);
        assert_eq!(pacer.rate(Duration::from_secs(30)), 1000.0);
        assert_eq!(pacer.rate(Duration::from_secs(300)), 1000.0);
        let at_once = Pacer::new(50, Duration::ZERO);
        assert_eq!(at_once.rate(Duration::ZERO), 50.0);
    }

    #[test]
    fn the_sent_tag_goes_in_front_of_the_subject_or_makes_one() {
        let tagged = tag_subject(
            b"From: a\r\nSubject: hello\r\n\r\nSubject: body\r\n",
            "[sent]",
        );
        assert_eq!(
            tagged,
            b"From: a\r\nSubject: [sent] hello\r\n\r\nSubject: body\r\n"
        );
        let added = tag_subject(b"From: a\r\n\r\nbody\r\n", "[sent]");
        assert_eq!(added, b"Subject: [sent]\r\nFrom: a\r\n\r\nbody\r\n");
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), 60);
        assert_eq!(backoff(1), 120);
        assert_eq!(backoff(5), 1920);
        assert_eq!(backoff(6), 3600);
        assert_eq!(backoff(100), 3600);
    }
}
