//! Each listening socket's health, for `lifeboat status` and the metrics endpoint: how
//! many connections it accepted, how many accepts failed and why. An accept error never
//! ends a listener (it backs off and tries again, see [`ListenerHealth::accept_failed`]);
//! a listener whose task ends anyway is marked stopped, and `serve` exits so systemd
//! restarts it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long a listener waits after a failed accept (EMFILE, ENFILE, ENOBUFS …) before
/// trying again: long enough not to spin, short enough that capture resumes at once.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one log line per listener per this interval while accepts keep failing.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

pub struct ListenerHealth {
    /// e.g. `imap`, `milter`, `fallback`.
    pub kind: &'static str,
    pub address: String,
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    stopped: AtomicBool,
    last_error: Mutex<Option<(SystemTime, String)>>,
    last_logged: Mutex<Option<Instant>>,
}

/// What `status` and the metrics show of one listener.
#[derive(Clone, Debug)]
pub struct Report {
    pub kind: &'static str,
    pub address: String,
    pub accepted: u64,
    pub accept_errors: u64,
    pub stopped: bool,
    /// When the last accept failed (seconds since the epoch) and why.
    pub last_error: Option<(u64, String)>,
}

static REGISTRY: LazyLock<Mutex<Vec<Arc<ListenerHealth>>>> = LazyLock::new(Mutex::default);

/// A new listener's health record, listed by [`reports`] from now on.
pub fn register(kind: &'static str, address: impl ToString) -> Arc<ListenerHealth> {
    let health = Arc::new(ListenerHealth {
        kind,
        address: address.to_string(),
        accepted: AtomicU64::new(0),
        accept_errors: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        last_error: Mutex::new(None),
        last_logged: Mutex::new(None),
    });
    lock(&REGISTRY).push(health.clone());
    health
}

/// Every registered listener, in registration order.
pub fn reports() -> Vec<Report> {
    lock(&REGISTRY).iter().map(|h| h.report()).collect()
}

impl ListenerHealth {
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed accept and logs it, at most once a second per listener (a
    /// listener out of descriptors fails on every try). The caller backs off for
    /// [`ACCEPT_BACKOFF`] and tries again.
    pub fn accept_failed(&self, error: &std::io::Error) {
        let count = self.accept_errors.fetch_add(1, Ordering::Relaxed) + 1;
        *lock(&self.last_error) = Some((SystemTime::now(), error.to_string()));
        let mut last_logged = lock(&self.last_logged);
        if last_logged.is_none_or(|at| at.elapsed() >= LOG_INTERVAL) {
            *last_logged = Some(Instant::now());
            tracing::error!(
                listener = self.kind,
                address = %self.address,
                %error,
                accept_errors = count,
                "accept failed; retrying"
            );
        }
    }

    /// The listener's task ended: it no longer accepts anything.
    pub fn stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub fn report(&self) -> Report {
        let last_error = lock(&self.last_error).as_ref().map(|(at, why)| {
            let at = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            (at, why.clone())
        });
        Report {
            kind: self.kind,
            address: self.address.clone(),
            accepted: self.accepted.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
            stopped: self.stopped.load(Ordering::Relaxed),
            last_error,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_and_remembered() {
        let health = register("test", "127.0.0.1:1");
        health.accepted();
        health.accept_failed(&std::io::Error::from_raw_os_error(24));
        health.accept_failed(&std::io::Error::from_raw_os_error(24));
        let report = health.report();
        assert_eq!((report.accepted, report.accept_errors), (1, 2));
        assert!(report.last_error.unwrap().1.contains("Too many open files"));
        assert!(!report.stopped);
        health.stopped();
        assert!(reports().iter().any(|r| r.kind == "test" && r.stopped));
    }
}
