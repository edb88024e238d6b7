//! The origin watch: one task per origin probes it, turns the results into state changes
//! (docs/design.md §3, "The origin state machine"), and announces every change: a log line, a
//! metric, and email notices.
//!
//! Deferrals (a fallback delivery, a `status=deferred` log line) wake the origin's task
//! for a probe at once, so an outage is detected in seconds while mail is flowing; they
//! never change the state by themselves. The state lives in the store: `lifeboat outage`
//! and `lifeboat replay` change it from other processes, and the task announces those
//! changes too when it next looks.

pub mod postfix_log;
pub mod probe;
pub mod verdict;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::{OriginStatus, OutageState, ProbeRecord, Store, Transition};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, spawn_blocking};

use crate::config::{Config, Origin};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use probe::{Health, Probe, Target};
use verdict::{Judgement, Thresholds, Verdict};

pub struct Watch {
    store: Store,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
    config: Reloadable<Config>,
    /// Per origin name; the set of origins is fixed until restart.
    signals: HashMap<String, Arc<Signals>>,
    /// A replay started by this watch is running.
    replaying: Arc<std::sync::atomic::AtomicBool>,
}

/// How the rest of `serve` talks to one origin's task.
#[derive(Default)]
struct Signals {
    /// Probe now.
    wake: Notify,
    /// Bumped whenever the task has a settled view of the origin: a good probe, a
    /// judgement, or any probe while the origin is already judged down.
    settled: watch::Sender<u64>,
}

impl Watch {
    pub fn new(
        config: Config,
        store: Store,
        metrics: Arc<Metrics>,
        notifier: Arc<Notifier>,
    ) -> Arc<Watch> {
        let signals = config
            .origins
            .iter()
            .map(|o| (o.name.clone(), Arc::new(Signals::default())))
            .collect();
        Arc::new(Watch {
            store,
            metrics,
            notifier,
            config: Reloadable::new(config),
            signals,
            replaying: Arc::default(),
        })
    }

    /// Starts one task per origin; they end when `shutdown` turns true.
    pub fn spawn(self: &Arc<Self>, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        self.signals
            .keys()
            .map(|name| {
                let (watch, name, shutdown) = (self.clone(), name.clone(), shutdown.clone());
                tokio::spawn(async move { watch.watch_origin(name, shutdown).await })
            })
            .collect()
    }

    /// Applies a reloaded configuration (timings, thresholds, origin addresses,
    /// templates). Origins added or removed need a restart.
    pub fn reload(&self, config: Config) {
        let names: Vec<&str> = config.origins.iter().map(|o| o.name.as_str()).collect();
        if names.len() != self.signals.len() || names.iter().any(|n| !self.signals.contains_key(*n))
        {
            tracing::warn!("origins added or removed: the watch picks them up on restart");
        }
        self.notifier.reload(config.clone());
        self.config.replace(config);
    }

    /// Postfix could not deliver to `origin` (`source`: `fallback` or `log`): probe now.
    pub fn deferred(&self, origin: &str, source: &'static str) {
        if let Some(signals) = self.signals.get(origin) {
            self.metrics.deferral(origin, source);
            signals.wake.notify_one();
        }
    }

    /// A deferral line for a recipient at `domain`: probe that domain's origin now.
    pub fn deferred_domain(&self, domain: &str) {
        let config = self.config.get();
        if let Some(origin) = config.origin_for_domain(domain) {
            tracing::debug!(origin = %origin.name, domain, "postfix log: deferral");
            self.deferred(&origin.name, "log");
        }
    }

    /// Reports a deferral for `origin` and waits (at most the time a full failure run
    /// takes) until the watch has judged the origin, so the caller can act on a fresh
    /// state instead of the one from before the origin failed.
    pub async fn await_verdict(&self, origin: &str) {
        let Some(signals) = self.signals.get(origin) else {
            return;
        };
        let mut settled = signals.settled.subscribe();
        settled.borrow_and_update();
        self.deferred(origin, "fallback");
        let watch = self.config.get().watch.clone();
        // Each failed probe may use a timeout for connect, banner, EHLO, MAIL and RCPT.
        let run = (watch.probe_timeout * 5 + watch.retry_interval) * watch.failures_before_outage;
        let _ = tokio::time::timeout(run.min(Duration::from_secs(120)), settled.changed()).await;
    }

    async fn watch_origin(self: Arc<Self>, name: String, mut shutdown: watch::Receiver<bool>) {
        let signals = self.signals[&name].clone();
        let mut verdict = Verdict::default();
        let mut known: Option<OriginStatus> = None;
        let mut last_health: Option<Health> = None;
        loop {
            let config = self.config.get();
            let Some(origin) = config.origin(&name).cloned() else {
                tracing::warn!(origin = %name, "origin no longer configured; its watch stops");
                return;
            };
            let limits = Thresholds::from_config(&config.watch);
            let target = Target::new(&origin, &config.hostname, config.watch.probe_timeout);
            let started = Instant::now();
            let probe = probe::probe(&target).await;
            self.metrics
                .probed(&name, probe.health.as_str(), probe.latency);
            log_probe(&name, &probe, last_health.as_ref());
            last_health = Some(probe.health.clone());

            let status = match self.read_status(&name).await {
                Ok(status) => status,
                Err(e) => {
                    tracing::error!(origin = %name, error = %e, "watch: cannot read the origin's state");
                    if wait(&mut shutdown, &signals, config.watch.retry_interval).await {
                        return;
                    }
                    continue;
                }
            };
            if let Some(before) = &known
                && (before.state, before.manual, before.since)
                    != (status.state, status.manual, status.since)
            {
                // Changed by another process: an admin, or replay finishing.
                self.announce(&origin, before.state, &status).await;
            }
            known = Some(status.clone());

            let judgement =
                verdict.observe(probe.health.is_up(), Instant::now(), status.state, limits);
            self.record_probe(&name, &probe, verdict.streak().max(1));
            if let Some(judgement) = judgement {
                if status.manual {
                    tracing::info!(origin = %name, state = %status.state, judgement = ?judgement, "origin state is held by an admin (`lifeboat outage end` releases it)");
                } else if let Some(change) = self.apply(&origin, judgement, &limits, &probe).await {
                    self.announce(&origin, change.from, &change.to).await;
                    known = Some(change.to);
                }
            }
            let state = known.as_ref().map_or(OutageState::Normal, |s| s.state);
            // Mail goes on being diverted while recovering: replay again until a run
            // finds the backlog empty and turns the origin normal.
            if state == OutageState::Recovering && probe.health.is_up() {
                self.start_replay();
            }
            let undecided = verdict.undecided(state, limits);
            if !undecided {
                signals.settled.send_modify(|generation| *generation += 1);
            }
            let delay = if undecided {
                config.watch.retry_interval
            } else if state.diverts() {
                config.watch.outage_probe_interval
            } else {
                config.watch.probe_interval
            };
            // Intervals count from the start of a probe, so slow store writes on a busy
            // machine do not stretch detection.
            if wait(
                &mut shutdown,
                &signals,
                delay.saturating_sub(started.elapsed()),
            )
            .await
            {
                return;
            }
        }
    }

    /// Makes a judgement the origin's state; `None` when nothing changed.
    async fn apply(
        &self,
        origin: &Origin,
        judgement: Judgement,
        limits: &Thresholds,
        probe: &Probe,
    ) -> Option<Transition> {
        let store = self.store.clone();
        let name = origin.name.clone();
        let domains = origin.domains.clone();
        let reason = match judgement {
            Judgement::Down => format!(
                "{} failed probes in a row; last: {}",
                limits.failures, probe.detail
            ),
            Judgement::Up => format!(
                "{} good probes in a row over at least {}",
                limits.successes,
                humantime::format_duration(limits.min_up)
            ),
        };
        let result = spawn_blocking(move || match judgement {
            Judgement::Down => store.set_origin_state(&name, OutageState::Outage, &reason, false),
            // Straight to normal when nothing waits for replay, else recovering.
            Judgement::Up => store.end_outage(&name, domains, &reason),
        })
        .await;
        match result {
            Ok(Ok(change)) => change,
            Ok(Err(e)) => {
                tracing::error!(origin = %origin.name, error = %e, "watch: cannot record the origin's new state");
                None
            }
            Err(e) => {
                tracing::error!(origin = %origin.name, error = %e, "watch: internal error");
                None
            }
        }
    }

    /// Every change of state: a log line, a metric, notices.
    async fn announce(&self, origin: &Origin, from: OutageState, now: &OriginStatus) {
        if from == now.state {
            return; // only `manual` changed
        }
        tracing::warn!(
            origin = %origin.name,
            from = %from,
            to = %now.state,
            manual = now.manual,
            reason = %now.reason,
            "origin state changed"
        );
        self.metrics.transition(&origin.name, from, now.state);
        self.notifier.state_changed(origin, from, now).await;
        if now.state == OutageState::Recovering {
            self.start_replay();
        }
    }

    /// The origin is back: replay at once instead of waiting for the timer (which stays
    /// the backstop), and again after each probe while recovering, one run at a time.
    /// `lifeboat replay` takes its own lock, so a timer run at the same moment simply
    /// finds it busy.
    fn start_replay(&self) {
        use std::sync::atomic::Ordering;
        if self.replaying.swap(true, Ordering::SeqCst) {
            return;
        }
        let config = self.config.get();
        let program = match std::env::current_exe() {
            Ok(program) => program,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a replay (the timer will)");
                return;
            }
        };
        let mut command = tokio::process::Command::new(program);
        command
            .arg("--config")
            .arg(&config.path)
            .arg("replay")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        match command.spawn() {
            Ok(mut child) => {
                tracing::info!("origin recovering: replay started");
                let replaying = self.replaying.clone();
                tokio::spawn(async move {
                    match child.wait().await {
                        Ok(status) => tracing::info!(%status, "replay finished"),
                        Err(e) => tracing::warn!(error = %e, "replay could not be waited for"),
                    }
                    replaying.store(false, Ordering::SeqCst);
                });
            }
            Err(e) => {
                self.replaying.store(false, Ordering::SeqCst);
                tracing::warn!(error = %e, "cannot start a replay (the timer will)");
            }
        }
    }

    async fn read_status(&self, origin: &str) -> lifeboat_mailstore::Result<OriginStatus> {
        let (store, origin) = (self.store.clone(), origin.to_string());
        spawn_blocking(move || store.reader()?.origin_status(&origin))
            .await
            .unwrap_or_else(|e| Err(lifeboat_mailstore::Error::Refused(e.to_string())))
    }

    /// Stores the probe result for `lifeboat status`, in the background: the next probe
    /// must not wait for an fsync.
    fn record_probe(&self, origin: &str, probe: &Probe, streak: u32) {
        let record = ProbeRecord {
            at: lifeboat_mailstore::store::now(),
            ok: probe.health.is_up(),
            latency_ms: probe.latency.as_millis() as i64,
            detail: probe.detail.clone(),
            streak: i64::from(streak),
        };
        let (store, origin) = (self.store.clone(), origin.to_string());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.record_probe(&origin, record) {
                tracing::warn!(error = %e, "watch: cannot record the probe result");
            }
        });
    }
}

/// Sleeps for `delay` or until woken; true when it is time to stop.
async fn wait(shutdown: &mut watch::Receiver<bool>, signals: &Signals, delay: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => true,
        _ = signals.wake.notified() => false,
        _ = tokio::time::sleep(delay) => false,
    }
}

/// Probe results are logged at info/warn when they change, so a steady origin does not
/// fill the log;
/// a 5xx to the probe is a configuration error and is logged every time.
fn log_probe(origin: &str, probe: &Probe, last: Option<&Health>) {
    let ms = probe.latency.as_secs_f64() * 1000.0;
    match probe.health {
        Health::Misconfigured => tracing::error!(
            origin, detail = %probe.detail, ms,
            "probe refused for good (5xx): check the origin's probe_address and policy; not treated as an outage"
        ),
        Health::Down if last != Some(&Health::Down) => {
            tracing::warn!(origin, detail = %probe.detail, ms, "probe failed")
        }
        Health::Down => tracing::debug!(origin, detail = %probe.detail, ms, "probe failed"),
        Health::Up if last != Some(&Health::Up) => {
            tracing::info!(origin, detail = %probe.detail, ms, "probe succeeded")
        }
        Health::Up => tracing::debug!(origin, ms, "probe succeeded"),
    }
}
