//! `lifeboat serve`: binds the listeners, switches to the service account, and runs the
//! milter, the fallback listener, the origin watch, the metrics endpoint and the
//! user-facing servers (POP3) in one tokio runtime until SIGTERM.
//!
//! SIGHUP reloads the configuration (routes, limits, allowed clients, the TLS certificate;
//! listener addresses need a restart). Users and aliases are read from the store per message, so changes to
//! them apply at once without a reload.

mod descriptors;
mod mailservers;
pub mod resilient;
mod supervisor;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use indymilter::EitherListener;
use ipnet::IpNet;
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::{Routes, Store};
use lifeboat_milter::Milter;
use lifeboat_servers::health;
use lifeboat_servers::listener::{self, ServerListener};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{Config, ListenSpec};
use crate::exit::{CommandResult, Failure};
use crate::fallback::{self, Fallback, FallbackServer};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::origin_watch::Watch;
use crate::origin_watch::postfix_log::{self, LogEvent};
use crate::serve_report::{self, ServeReport};
use resilient::Resilient;
use supervisor::Supervisor;

/// How long open sessions get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long work left on the blocking pool after the drain may keep the process: a
/// dropped runtime waits for it without end (a LIST that backtracked kept `serve` up
/// long after SIGTERM). Sessions cancel their commands at shutdown, so this is only a
/// backstop.
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(config_path: &Path) -> CommandResult {
    return_large_allocations();
    let config = Config::load(config_path)?;
    crate::logging::init_for_serve(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("starting the runtime: {e}")))?;
    let result = runtime.block_on(serve(config));
    runtime.shutdown_timeout(BLOCKING_TIMEOUT);
    if let Err(failure) = &result {
        tracing::error!(error = %failure, "lifeboat serve stopped");
    }
    result
}

/// Each password check (argon2id) allocates 19 MiB. glibc maps such blocks freshly and
/// unmaps them on free, but only until the first free: then it raises its threshold and
/// keeps later ones in its heaps, one per thread. After a login storm (an outage starts
/// and every phone and laptop logs in) the process stayed at 1.5 GB. A fixed threshold
/// keeps large blocks mapped, so their memory goes back to the system when freed.
fn return_large_allocations() {
    // SAFETY: mallopt only changes glibc's allocation parameters; no allocation is live
    // across the call in a way it could invalidate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

async fn serve(config: Config) -> CommandResult {
    // First of all: a SIGHUP or SIGTERM that comes while the listeners are being set up
    // (a test or an admin acting as soon as the ports answer) must wait for its turn,
    // not meet the default action, which ends the process.
    let signals = Signals::install()?;
    let budget = descriptors::raise_and_share();
    lifeboat_servers::limits::set_session_budget(budget.user_sessions);
    let account = crate::privileges::target(&config)?;
    let milter_clients = Arc::new(Reloadable::new(config.milter.allowed_clients.clone()));
    let milter_listener = bind_milter(&config, account.as_ref(), milter_clients.clone()).await?;
    let fallback_listener = TcpListener::bind(config.fallback.listen)
        .await
        .map_err(|e| bind_failure("fallback.listen", &config.fallback.listen.to_string(), e))?;
    let metrics_listener = match config.metrics.listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|e| bind_failure("metrics.listen", &address.to_string(), e))?,
        ),
        None => None,
    };
    let mailservers = mailservers::bind(&config).await?;
    if let Some(user) = &account {
        crate::privileges::become_user(&config, user)?;
    }

    let store = Store::open(&config.data_dir, &config.hostname)?;
    let recovery = store.lock_for_delivery()?;
    if recovery.completed + recovery.removed > 0 {
        tracing::warn!(
            completed = recovery.completed,
            removed = recovery.removed,
            "cleaned up deliveries interrupted by a crash (removed ones stayed with Postfix)"
        );
    }
    let metrics = Metrics::new();
    let notifier = Arc::new(Notifier::new(store.clone(), config.clone()));
    let origin_watch = Watch::new(config.clone(), store.clone(), metrics.clone(), notifier);
    let milter = Milter::new(store.clone(), milter_settings(&config));
    let fallback = Fallback::new(
        store.clone(),
        fallback_settings(&config),
        Some(origin_watch.clone()),
    );

    let (stop, stopped) = watch::channel(false);
    let mut supervisor = Supervisor::new(stopped.clone());
    let watch_tasks = origin_watch.spawn(stopped.clone());
    if let Some(source) = config.watch.postfix_log.clone() {
        let (origin_watch, store) = (origin_watch.clone(), store.clone());
        postfix_log::follow(source, move |event| match event {
            LogEvent::Deferred(domain) => origin_watch.deferred_domain(&domain),
            LogEvent::RefusedAfterMilter(queue_id) => cancel_capture(&store, &queue_id),
        });
    }
    if let Some(listener) = metrics_listener {
        tokio::spawn(crate::metrics::serve(
            listener,
            metrics.clone(),
            store.clone(),
            config.clone(),
            stopped.clone(),
        ));
    }
    if config.directory.url.is_some() {
        tokio::spawn(crate::directory_sync::run_periodically(
            store.clone(),
            config.clone(),
            stopped.clone(),
        ));
    }
    let mut milter_stopped = stopped.clone();
    let milter_health = health::register("milter", &config.milter.listen);
    let milter_task = supervisor.spawn(
        "milter",
        lifeboat_milter::run(
            Resilient::new(milter_listener, milter_health),
            milter.clone(),
            budget.milter,
            async move {
                let _ = milter_stopped.changed().await;
            },
        ),
    );
    let mailservers = mailservers.start(&store, &config, &supervisor, stopped.clone())?;
    // Expiry needs the delivery lock this process holds, so serve runs it (daily).
    let expiry_task = tokio::spawn(crate::commands::expire::run_daily(
        store.clone(),
        config.history_days,
        stopped.clone(),
    ));
    let fallback_task = supervisor.spawn(
        "fallback",
        listener::serve(
            vec![ServerListener {
                listener: fallback_listener,
                address: config.fallback.listen,
                implicit_tls: false,
            }],
            FallbackServer::new(fallback.clone(), budget.fallback),
            stopped.clone(),
        ),
    );
    // After every listener registered its health.
    tokio::spawn(report_health(config.data_dir.clone(), budget, stopped));

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(
        milter = %config.milter.listen,
        fallback = %config.fallback.listen,
        metrics = ?config.metrics.listen,
        data_dir = %config.data_dir.display(),
        "lifeboat serve ready"
    );

    let running = Running {
        milter: milter.clone(),
        milter_clients,
        fallback: fallback.clone(),
        watch: origin_watch,
        mailservers,
    };
    let ended_early = tokio::select! {
        () = signals.wait(&config, &running) => None,
        name = supervisor.ended_early() => Some(name),
    };
    if let Some(name) = ended_early {
        tracing::error!(
            listener = name,
            "a listener stopped; shutting down so the service is restarted"
        );
    }

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("shutting down: draining open sessions");
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        if let Ok(Err(e)) = milter_task.await {
            tracing::error!(error = %e, "milter listener failed");
        }
        // Journal copies the milter already answered for are still worth keeping.
        milter.journal_flushed().await;
        let _ = fallback_task.await;
        for task in watch_tasks {
            let _ = task.await;
        }
        running.mailservers.join().await;
        let _ = expiry_task.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("sessions still open after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    if let ListenSpec::Unix(path) = &config.milter.listen {
        let _ = std::fs::remove_file(path);
    }
    if let Some(name) = ended_early {
        return Err(Failure::failed(format!(
            "the {name} listener stopped; exiting so it can be restarted"
        )));
    }
    tracing::info!("lifeboat serve stopped");
    Ok(())
}

/// Writes `serve`'s own report for `lifeboat status` every few seconds until shutdown,
/// then removes it (a missing file reads as "serve is not running").
async fn report_health(
    data_dir: std::path::PathBuf,
    budget: descriptors::Budget,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let report = ServeReport {
            pid: std::process::id(),
            updated_at: serve_report::now(),
            descriptor_limit: budget.limit,
            session_budget: budget.user_sessions,
            sessions_open: lifeboat_servers::limits::sessions_open(),
            listeners: health::reports().into_iter().map(Into::into).collect(),
        };
        if let Err(e) = report.write(&data_dir) {
            tracing::warn!(error = %e, "cannot write {}", serve_report::FILE);
        }
        tokio::select! {
            _ = stopped.changed() => break,
            () = tokio::time::sleep(serve_report::INTERVAL) => {}
        }
    }
    let _ = std::fs::remove_file(serve_report::path(&data_dir));
}

/// Postfix did not take the message with this queue id after all (a milter after
/// Lifeboat's refused it at end of message): copies the milter made of it must not be
/// replayed as if it had been accepted (docs/design.md §5.1).
fn cancel_capture(store: &Store, queue_id: &str) {
    match store.cancel_capture(queue_id) {
        Ok(0) => {}
        Ok(cancelled) => {
            tracing::warn!(
                queue_id,
                cancelled,
                "Postfix refused a message after the milter stored it: its copies are removed, not replayed"
            )
        }
        Err(e) => {
            tracing::error!(queue_id, error = %e, "Postfix refused a message after the milter stored it, and its copies could not be removed: they will be replayed")
        }
    }
}

/// The parts a reload reaches.
struct Running {
    milter: Arc<Milter>,
    milter_clients: Arc<Reloadable<Vec<IpNet>>>,
    fallback: Arc<Fallback>,
    watch: Arc<Watch>,
    mailservers: mailservers::Running,
}

/// SIGTERM, SIGINT and SIGHUP, caught from the start of `serve` on: a signal that
/// arrives while it sets up, or right after systemd (or a test) hears READY, must not
/// meet the default action. Signals that came early are handled once `serve` waits.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, Failure> {
        let listen = |kind| {
            signal(kind).map_err(|e| Failure::failed(format!("installing a signal handler: {e}")))
        };
        Ok(Signals {
            term: listen(SignalKind::terminate())?,
            int: listen(SignalKind::interrupt())?,
            hup: listen(SignalKind::hangup())?,
        })
    }

    /// Returns on SIGTERM or SIGINT; reloads on SIGHUP.
    async fn wait(mut self, config: &Config, running: &Running) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => reload(config, running),
            }
        }
    }
}

fn reload(current: &Config, running: &Running) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
    match Config::load(&current.path) {
        Ok(config) => {
            running.milter.reload(milter_settings(&config));
            running
                .milter_clients
                .replace(config.milter.allowed_clients.clone());
            running.fallback.reload(fallback_settings(&config));
            running.watch.reload(config.clone());
            running.mailservers.reload(&config);
            if config.milter.listen != current.milter.listen
                || config.fallback.listen != current.fallback.listen
                || config.metrics.listen != current.metrics.listen
                || config.watch.postfix_log != current.watch.postfix_log
                || config.pop3 != current.pop3
                || config.imap != current.imap
                || config.submission.listen != current.submission.listen
                || config.submission.tls_listen != current.submission.tls_listen
                || config.web.listen != current.web.listen
                || config.web.tls_listen != current.web.tls_listen
                || config.data_dir != current.data_dir
            {
                tracing::warn!(
                    "listener addresses, postfix_log and data_dir change only on restart"
                );
            }
            tracing::info!(file = %config.path.display(), "configuration reloaded");
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration not reloaded; keeping the running one")
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}

fn routes(config: &Config) -> Routes {
    Routes::new(
        config
            .origins
            .iter()
            .map(|o| (o.name.as_str(), o.domains.as_slice())),
    )
}

fn milter_settings(config: &Config) -> lifeboat_milter::Settings {
    lifeboat_milter::Settings {
        routes: routes(config),
        max_message_size: config.milter.max_message_size,
    }
}

fn fallback_settings(config: &Config) -> fallback::Settings {
    fallback::Settings {
        hostname: config.hostname.clone(),
        routes: routes(config),
        max_message_size: config.milter.max_message_size,
        allowed_clients: config.fallback.allowed_clients.clone(),
    }
}

async fn bind_milter(
    config: &Config,
    account: Option<&nix::unistd::User>,
    allowed_clients: Arc<Reloadable<Vec<IpNet>>>,
) -> Result<EitherListener<MilterTcpListener, UnixListener>, Failure> {
    match &config.milter.listen {
        ListenSpec::Inet(addr) => TcpListener::bind(addr)
            .await
            .map(|listener| {
                EitherListener::Tcp(MilterTcpListener {
                    listener,
                    allowed_clients,
                })
            })
            .map_err(|e| bind_failure("milter.listen", &config.milter.listen.to_string(), e)),
        ListenSpec::Unix(path) => {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // A socket left by a crashed run would make bind fail.
            if std::fs::symlink_metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                let _ = std::fs::remove_file(path);
            }
            let listener = UnixListener::bind(path)
                .map_err(|e| bind_failure("milter.listen", &config.milter.listen.to_string(), e))?;
            socket_access(path, account)?;
            Ok(EitherListener::Unix(listener))
        }
    }
}

/// The milter socket is for Postfix (group `postfix`) and the service account only: a
/// local user who could talk to it could put mail in anyone's mailbox, with any envelope
/// sender, and have it replayed to the origin. Never world-writable: without a `postfix`
/// group the socket gets the service account's group, and Postfix needs to be given
/// access (or the milter an `inet:` address on loopback).
fn socket_access(path: &Path, account: Option<&nix::unistd::User>) -> Result<(), Failure> {
    let postfix_group = nix::unistd::Group::from_name("postfix")
        .ok()
        .flatten()
        .map(|g| g.gid);
    give_socket(path, account, postfix_group)
}

fn give_socket(
    path: &Path,
    account: Option<&nix::unistd::User>,
    postfix_group: Option<nix::unistd::Gid>,
) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    if postfix_group.is_none() {
        tracing::warn!(socket = %path.display(), "no `postfix` group: the milter socket is only for the service account's group; give Postfix access to it or use an inet: address");
    }
    if nix::unistd::geteuid().is_root() {
        let group = postfix_group.or(account.map(|u| u.gid));
        nix::unistd::chown(path, account.map(|u| u.uid), group)
            .map_err(|e| Failure::failed(format!("chown {}: {e}", path.display())))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| Failure::failed(format!("chmod {}: {e}", path.display())))
}

/// The milter socket's mode: owner and group, never others.
const SOCKET_MODE: u32 = 0o660;

/// The milter's TCP listener: refuses clients outside `[milter] allowed_clients`
/// (reloaded on SIGHUP), and makes accepted connections send small replies at once. The
/// milter protocol is many small request/reply exchanges per message; with Nagle's
/// algorithm each one can wait for a delayed ACK (tens of milliseconds).
pub struct MilterTcpListener {
    listener: TcpListener,
    allowed_clients: Arc<Reloadable<Vec<IpNet>>>,
}

impl indymilter::Listener for MilterTcpListener {
    type Io = tokio::net::TcpStream;

    fn poll_accept(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<Self::Io>> {
        loop {
            let (stream, peer) = std::task::ready!(self.listener.poll_accept(cx))?;
            if crate::config::allowed(&self.allowed_clients.get(), peer.ip()) {
                let _ = stream.set_nodelay(true);
                return std::task::Poll::Ready(Ok(stream));
            }
            // Closed without a word: the milter protocol has no greeting to refuse with.
            tracing::warn!(%peer, "milter: connection from a client not in milter.allowed_clients");
        }
    }
}

fn bind_failure(key: &str, address: &str, e: std::io::Error) -> Failure {
    Failure::failed(format!("{key}: cannot listen on {address}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Issue 12, item 10: without a `postfix` group the socket used to be 0666, so every
    /// local user could talk to the milter.
    #[test]
    fn the_milter_socket_is_never_world_writable() {
        let dir = tempfile::tempdir().unwrap();
        for postfix_group in [None, Some(nix::unistd::getgid())] {
            let path = dir.path().join("milter.sock");
            let _ = std::fs::remove_file(&path);
            let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            give_socket(&path, None, postfix_group).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o660, "group {postfix_group:?}");
        }
    }
}
