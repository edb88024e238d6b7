//! Prometheus text metrics on `[metrics] listen`, at `GET /metrics`.
//!
//! Event counters (transitions, probes, deferrals, captures) count in this process.
//! States and copy counts are read from the store at scrape time, so they are right even
//! when another process (`lifeboat outage`, `lifeboat replay`) changed them.

use std::sync::Arc;
use std::time::Duration;

use lifeboat_mailstore::{OutageState, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::Config;
use crate::readiness::{LoginReadiness, login_readiness};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    origin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    origin: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    origin: String,
    from: &'static str,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    origin: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeferralLabels {
    origin: String,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
    address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UserLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CopyLabels {
    origin: String,
    kind: &'static str,
}

type HistogramFamily = Family<OriginLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    state: Family<StateLabels, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    probes: Family<ProbeLabels, Counter>,
    probe_seconds: HistogramFamily,
    deferrals: Family<DeferralLabels, Counter>,
    copies: Family<CopyLabels, Gauge>,
    users: Family<UserLabels, Gauge>,
    listener_up: Family<ListenerLabels, Gauge>,
    accepted: Family<ListenerLabels, Counter>,
    accept_errors: Family<ListenerLabels, Counter>,
    sessions: Gauge,
}

const STATES: [OutageState; 3] = [
    OutageState::Normal,
    OutageState::Outage,
    OutageState::Recovering,
];

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("lifeboat");
        let state = Family::<StateLabels, Gauge>::default();
        let transitions = Family::<TransitionLabels, Counter>::default();
        let probes = Family::<ProbeLabels, Counter>::default();
        let probe_seconds: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14)));
        let deferrals = Family::<DeferralLabels, Counter>::default();
        let copies = Family::<CopyLabels, Gauge>::default();
        let users = Family::<UserLabels, Gauge>::default();
        let listener_up = Family::<ListenerLabels, Gauge>::default();
        let accepted = Family::<ListenerLabels, Counter>::default();
        let accept_errors = Family::<ListenerLabels, Counter>::default();
        let sessions = Gauge::default();
        registry.register(
            "listener_up",
            "1 while a listener accepts connections, 0 once it stopped",
            listener_up.clone(),
        );
        registry.register(
            "listener_accepted",
            "Connections each listener accepted",
            accepted.clone(),
        );
        registry.register(
            "listener_accept_errors",
            "Failed accepts (e.g. out of file descriptors), each retried",
            accept_errors.clone(),
        );
        registry.register(
            "user_sessions",
            "IMAP, POP3 and submission sessions open",
            sessions.clone(),
        );
        registry.register(
            "origin_state",
            "1 for the state each origin is in, 0 for the others",
            state.clone(),
        );
        registry.register(
            "origin_transitions",
            "Changes of an origin's state seen by this process",
            transitions.clone(),
        );
        registry.register("probes", "Health probes by result", probes.clone());
        registry.register(
            "probe_duration_seconds",
            "How long health probes took",
            probe_seconds.clone(),
        );
        registry.register(
            "deferrals",
            "Deferrals Postfix reported (fallback deliveries, log lines)",
            deferrals.clone(),
        );
        registry.register(
            "captures",
            "Recipients handled by the capture paths, by outcome",
            lifeboat_mailstore::metrics::CAPTURES.clone(),
        );
        registry.register(
            "copies",
            "Stored copies by kind: journal, diverted_pending, sent_pending, delivered (replayed), rejected",
            copies.clone(),
        );
        registry.register(
            "users",
            "Protected users by how they could log in during an outage: local_password, \
             cached_password, no_password (never logged in through the directory or origin), \
             disabled",
            users.clone(),
        );
        Arc::new(Metrics {
            registry,
            state,
            transitions,
            probes,
            probe_seconds,
            deferrals,
            copies,
            users,
            listener_up,
            accepted,
            accept_errors,
            sessions,
        })
    }

    /// One health probe: its result (`up`, `down`, …) and how long it took.
    pub fn probed(&self, origin: &str, result: &'static str, latency: Duration) {
        self.probes
            .get_or_create(&ProbeLabels {
                origin: origin.to_string(),
                result,
            })
            .inc();
        self.probe_seconds
            .get_or_create(&OriginLabels {
                origin: origin.to_string(),
            })
            .observe(latency.as_secs_f64());
    }

    pub fn transition(&self, origin: &str, from: OutageState, to: OutageState) {
        self.transitions
            .get_or_create(&TransitionLabels {
                origin: origin.to_string(),
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
    }

    pub fn deferral(&self, origin: &str, source: &'static str) {
        self.deferrals
            .get_or_create(&DeferralLabels {
                origin: origin.to_string(),
                source,
            })
            .inc();
    }

    /// The whole exposition, with states and copies read from the store now.
    pub fn render(&self, store: &Store, config: &Config) -> String {
        if let Err(e) = self.refresh(store, config) {
            tracing::warn!(error = %e, "metrics: cannot read the store; states and copies may be stale");
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        text
    }

    /// Listener counts live in `lifeboat_servers::health`; counters catch up to them.
    fn refresh_listeners(&self) {
        for report in lifeboat_servers::health::reports() {
            let labels = ListenerLabels {
                listener: report.kind,
                address: report.address.clone(),
            };
            self.listener_up
                .get_or_create(&labels)
                .set(i64::from(!report.stopped));
            let catch_up = |counter: &Counter, total: u64| {
                counter.inc_by(total.saturating_sub(counter.get()));
            };
            catch_up(&self.accepted.get_or_create(&labels), report.accepted);
            catch_up(
                &self.accept_errors.get_or_create(&labels),
                report.accept_errors,
            );
        }
        self.sessions
            .set(lifeboat_servers::limits::sessions_open() as i64);
    }

    fn refresh(&self, store: &Store, config: &Config) -> lifeboat_mailstore::Result<()> {
        self.refresh_listeners();
        let reader = store.reader()?;
        let mut users = [0i64; LoginReadiness::LABELS.len()];
        for user in reader.login_facts()? {
            let label = login_readiness(config.auth.backend, &user).label();
            if let Some(at) = LoginReadiness::LABELS.iter().position(|l| *l == label) {
                users[at] += 1;
            }
        }
        for (state, count) in LoginReadiness::LABELS.iter().zip(users) {
            self.users.get_or_create(&UserLabels { state }).set(count);
        }
        for origin in &config.origins {
            let current = reader.origin_status(&origin.name)?.state;
            for state in STATES {
                self.state
                    .get_or_create(&StateLabels {
                        origin: origin.name.clone(),
                        state: state.as_str(),
                    })
                    .set(i64::from(state == current));
            }
            let counts = reader.replay_counts_for(&origin.domains)?;
            for (kind, count) in [
                ("journal", counts.journal),
                ("diverted_pending", counts.diverted_pending),
                ("sent_pending", counts.sent_pending),
                ("delivered", counts.delivered),
                ("rejected", counts.rejected),
            ] {
                self.copies
                    .get_or_create(&CopyLabels {
                        origin: origin.name.clone(),
                        kind,
                    })
                    .set(count);
            }
        }
        Ok(())
    }
}

/// Serves `GET /metrics` until `shutdown` turns true. One request per connection.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    store: Store,
    config: Config,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let health = lifeboat_servers::health::register("metrics", address);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        health.accept_failed(&e);
                        tokio::time::sleep(lifeboat_servers::health::ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                health.accepted();
                let (metrics, store, config) = (metrics.clone(), store.clone(), config.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        answer(stream, &metrics, &store, &config),
                    )
                    .await;
                });
            }
        }
    }
}

async fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    store: &Store,
    config: &Config,
) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let request_line = String::from_utf8_lossy(&request);
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, content_type, body) = if method == "GET" && path == "/metrics" {
        let body = tokio::task::block_in_place(|| metrics.render(store, config));
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only GET /metrics is served here\n".to_string(),
        )
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
