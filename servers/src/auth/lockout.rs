//! Who may try a password now. Failures are counted with governor's GCRA limiters (a
//! burst, then one more per interval); a failure that finds its limiter exhausted locks
//! until the limiter has room again, and a locked login is refused before the password
//! is checked, right or not. Three limits, so that nobody can lock a user out of their
//! own account from somewhere else (as Dovecot's auth penalty is per client address):
//!
//! - per client address (IPv6: /64): an address guessing at many accounts;
//! - per user *and* address: one address guessing at one account;
//! - per user from anywhere: when it trips, the user is *guarded* — logins for them are
//!   refused only from addresses that failed a login recently (for anyone), so a
//!   distributed guesser gets about one try per fresh address while the user, from an
//!   address with no failures, still gets in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Clone, Copy, Debug)]
pub struct LockoutLimits {
    /// Failures allowed per client address.
    pub per_ip: Quota,
    /// Failures allowed per login name from one client address.
    pub per_user_and_ip: Quota,
    /// Failures allowed per login name from anywhere, before it is guarded.
    pub per_user: Quota,
    /// How long a failed login marks its address as "failing" for guarded users.
    pub failing_for: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Lock {
    Ip(IpAddr),
    UserFrom(String, IpAddr),
    /// Guarded: refused from failing addresses only.
    User(String),
}

/// Entries kept at most, per map: beyond it the expired ones are swept out, and if an
/// attack from very many addresses keeps them all fresh, the oldest memory is dropped
/// (bounded memory beats a perfect memory of every attacker).
const MAX_ENTRIES: usize = 100_000;

pub struct Lockouts {
    limits: LockoutLimits,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_user_and_ip: DefaultKeyedRateLimiter<(String, IpAddr)>,
    per_user: DefaultKeyedRateLimiter<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    locked_until: HashMap<Lock, Instant>,
    /// When each client address last failed a login.
    last_failure: HashMap<IpAddr, Instant>,
}

impl Lockouts {
    pub fn new(limits: LockoutLimits) -> Lockouts {
        Lockouts {
            limits,
            per_ip: RateLimiter::keyed(limits.per_ip),
            per_user_and_ip: RateLimiter::keyed(limits.per_user_and_ip),
            per_user: RateLimiter::keyed(limits.per_user),
            state: Mutex::default(),
        }
    }

    /// Whether a login for `user` from `ip` (already a client key) is refused unchecked.
    pub fn is_locked(&self, ip: IpAddr, user: &str) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let locked = |lock: &Lock| state.locked_until.get(lock).is_some_and(|&t| t > now);
        let failing = state
            .last_failure
            .get(&ip)
            .is_some_and(|&at| now.duration_since(at) < self.limits.failing_for);
        locked(&Lock::Ip(ip))
            || locked(&Lock::UserFrom(user.to_string(), ip))
            || (failing && locked(&Lock::User(user.to_string())))
    }

    /// Counts a failed login; locks what has failed too often.
    pub fn record_failure(&self, ip: IpAddr, user: &str) {
        let clock = DefaultClock::default();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        state.last_failure.insert(ip, now);
        let mut lock = |lock: Lock, wait: Duration| {
            tracing::warn!(?lock, ?wait, "too many failed logins: locked out");
            state.locked_until.insert(lock, now + wait);
        };
        if let Err(not_until) = self.per_ip.check_key(&ip) {
            lock(Lock::Ip(ip), not_until.wait_time_from(clock.now()));
        }
        if let Err(not_until) = self.per_user_and_ip.check_key(&(user.to_string(), ip)) {
            lock(
                Lock::UserFrom(user.to_string(), ip),
                not_until.wait_time_from(clock.now()),
            );
        }
        if let Err(not_until) = self.per_user.check_key(&user.to_string()) {
            lock(
                Lock::User(user.to_string()),
                not_until.wait_time_from(clock.now()),
            );
        }
        self.sweep(&mut state, now);
    }

    fn sweep(&self, state: &mut State, now: Instant) {
        if state.locked_until.len() > MAX_ENTRIES {
            state.locked_until.retain(|_, until| *until > now);
            if state.locked_until.len() > MAX_ENTRIES {
                state.locked_until.clear();
            }
        }
        if state.last_failure.len() > MAX_ENTRIES {
            let window = self.limits.failing_for;
            state
                .last_failure
                .retain(|_, at| now.duration_since(*at) < window);
            if state.last_failure.len() > MAX_ENTRIES {
                state.last_failure.clear();
            }
        }
        // Keyed limiters keep a cell per key they have seen; drop the ones at rest.
        if self.per_ip.len() > MAX_ENTRIES {
            self.per_ip.retain_recent();
        }
        if self.per_user_and_ip.len() > MAX_ENTRIES {
            self.per_user_and_ip.retain_recent();
        }
        if self.per_user.len() > MAX_ENTRIES {
            self.per_user.retain_recent();
        }
    }
}
