//! Logging users in, for every server (IMAP, POP3, submission): the password check
//! against the store, a delay after each failure, lockouts (`lockout.rs`), the login
//! cache (`cache.rs`), and a bound on password checks running at once.
//!
//! Password hashes are slow on purpose (argon2id: tens of milliseconds of CPU and 19 MiB
//! of memory each), and when an outage starts every user's phone and laptop log in
//! within the same minute; unknown users cost a check too, so an attacker can ask for
//! them at will. So at most [`AuthLimits::concurrent_checks`] run at once (about one per
//! core) and the rest queue, each for at most [`AuthLimits::check_queue_timeout`].
//!
//! A session stays valid only while its user's record does: [`Authenticator::still_valid`]
//! tells a server to end the session of a user who was disabled, deleted or given a new
//! password since logging in.
//!
//! With a remote [`Backend`] (directory or origin IMAP) the source is asked first, at
//! most [`AuthLimits::concurrent_source_checks`] at once and for at most
//! [`AuthLimits::source_timeout`], outside the password-check turns (a source that is
//! slow to answer must not hold a core's turn). Its verdict decides: accepted → the
//! password's argon2id verifier is cached in the store; rejected → the login fails, and
//! a cached verifier that matches this very password is dropped (it is stale); only
//! unreachable → the cached verifier (or a local password) is tried. After a source
//! could not be reached, logins use the cache at once for
//! [`AuthLimits::source_retry_after`] instead of each waiting out the timeout.

pub mod backend;
mod cache;
mod lockout;
pub mod origin_imap;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use governor::Quota;
use tokio::sync::Semaphore;

use lifeboat_mailstore::password;
use lifeboat_mailstore::reader::UserRecord;
use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::store::Store;

use crate::limits::client_key;
pub use backend::{Backend, Verdict};
use cache::LoginCache;
pub use lockout::LockoutLimits;
use lockout::Lockouts;

/// Why a login failed. Clients hear less than the log: an unknown user, a wrong
/// password and a disabled account all look the same from outside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("unknown user or wrong password")]
    BadCredentials,
    #[error("the account is disabled")]
    Inactive,
    #[error("too many failed logins; try again later")]
    LockedOut,
    #[error("the user store is not available: {0}")]
    Unavailable(String),
}

/// How logins are limited. [`AuthLimits::default`] is what the servers use.
#[derive(Clone, Copy, Debug)]
pub struct AuthLimits {
    /// Every failed login waits this long before its answer, so guessing over one
    /// connection is slow.
    pub failure_delay: Duration,
    pub lockouts: LockoutLimits,
    /// How long a successful login is remembered (zero: never).
    pub cache_ttl: Duration,
    /// Password checks running at once.
    pub concurrent_checks: usize,
    /// How long a login waits for its turn before it is told to try again later.
    pub check_queue_timeout: Duration,
    /// How long a login waits for the directory or origin before the cached password is
    /// used instead.
    pub source_timeout: Duration,
    /// After the source could not be reached, how long logins use the cache at once.
    pub source_retry_after: Duration,
    /// Questions to the source at once (they wait on the network, not on a core).
    pub concurrent_source_checks: usize,
}

impl Default for AuthLimits {
    fn default() -> AuthLimits {
        let quota = |period: u64, burst: u32| {
            Quota::with_period(Duration::from_secs(period))
                .expect("non-zero period")
                .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
        };
        AuthLimits {
            failure_delay: Duration::from_secs(1),
            lockouts: LockoutLimits {
                // 10 failures at once, then one per 6 s from one address: a mistyped
                // password or a client retrying an old one is fine; a dictionary is not.
                per_ip: quota(6, 10),
                // 5 at once, then one per 30 s, for one user from one address.
                per_user_and_ip: quota(30, 5),
                // 20 at once, then one per 30 s, for one user from anywhere: then only
                // addresses without recent failures may try.
                per_user: quota(30, 20),
                failing_for: Duration::from_secs(15 * 60),
            },
            cache_ttl: Duration::from_secs(15 * 60),
            concurrent_checks: std::thread::available_parallelism().map_or(2, |n| n.get()),
            check_queue_timeout: Duration::from_secs(30),
            source_timeout: Duration::from_secs(5),
            source_retry_after: Duration::from_secs(30),
            concurrent_source_checks: 64,
        }
    }
}

pub struct Authenticator {
    store: Store,
    limits: AuthLimits,
    lockouts: Lockouts,
    cache: Arc<LoginCache>,
    checks: Semaphore,
    backend: Reloadable<Backend>,
    source_checks: Semaphore,
    /// Until when the source is taken as unreachable without asking it.
    source_down_until: Mutex<Option<Instant>>,
}

/// A successful login refreshes the user's last-login time at most this often (it is
/// for the readiness report, not an audit log; a client polling every minute must not
/// cost a store write each time).
const LAST_LOGIN_RESOLUTION: i64 = 300;

impl Authenticator {
    /// Passwords checked in the store only.
    pub fn new(store: Store, limits: AuthLimits) -> Arc<Authenticator> {
        Authenticator::with_backend(store, limits, Backend::Local)
    }

    pub fn with_backend(store: Store, limits: AuthLimits, backend: Backend) -> Arc<Authenticator> {
        Arc::new(Authenticator {
            store,
            limits,
            lockouts: Lockouts::new(limits.lockouts),
            cache: Arc::new(LoginCache::new(limits.cache_ttl)),
            checks: Semaphore::new(limits.concurrent_checks.max(1)),
            backend: Reloadable::new(backend),
            source_checks: Semaphore::new(limits.concurrent_source_checks.max(1)),
            source_down_until: Mutex::new(None),
        })
    }

    /// Whether `user`'s password lives at a source (the directory, the origin's IMAP
    /// server) rather than here: then only that source can change it, and a password
    /// set here would be a second one.
    pub fn password_managed_elsewhere(&self, user: &UserRecord) -> bool {
        self.backend.get().is_remote_for(user)
    }

    /// SIGHUP: logins from now on use `backend`.
    pub fn set_backend(&self, backend: Backend) {
        self.backend.replace(backend);
        *self
            .source_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Checks `password` for the user whose own address is `user` (case does not
    /// matter). Failures answer only after [`AuthLimits::failure_delay`].
    pub async fn login(
        &self,
        ip: IpAddr,
        user: &str,
        password: &str,
    ) -> Result<UserRecord, AuthFailure> {
        let ip = client_key(ip);
        let name = user.trim().to_ascii_lowercase();
        if self.lockouts.is_locked(ip, &name) {
            tracing::warn!(%ip, user = %name, "login refused: locked out after failures");
            tokio::time::sleep(self.limits.failure_delay).await;
            return Err(AuthFailure::LockedOut);
        }
        let checked = self.check_in_turn(&name, password).await;
        match checked {
            Ok(user) => Ok(user),
            Err(AuthFailure::Unavailable(why)) => {
                tracing::error!(error = %why, "login failed: store unavailable or busy");
                Err(AuthFailure::Unavailable(why))
            }
            Err(failure) => {
                tracing::warn!(%ip, user = %name, reason = %failure, "login failed");
                self.lockouts.record_failure(ip, &name);
                tokio::time::sleep(self.limits.failure_delay).await;
                Err(AuthFailure::BadCredentials)
            }
        }
    }

    /// Asks the source when the user's password lives there, then waits for a free
    /// password checker (at most the queue timeout) and checks.
    async fn check_in_turn(&self, name: &str, password: &str) -> Result<UserRecord, AuthFailure> {
        let verdict = self.source_verdict(name, password).await?;
        let turn = tokio::time::timeout(self.limits.check_queue_timeout, self.checks.acquire());
        let Ok(Ok(_permit)) = turn.await else {
            return Err(AuthFailure::Unavailable(
                "too many logins at once; try again".into(),
            ));
        };
        let (store, cache) = (self.store.clone(), self.cache.clone());
        let (name, password) = (name.to_string(), password.to_string());
        // SQLite and the password hash are blocking, and a hash is meant to be slow.
        tokio::task::spawn_blocking(move || check(&store, &cache, &name, &password, verdict))
            .await
            .unwrap_or_else(|e| Err(AuthFailure::Unavailable(e.to_string())))
    }

    /// The source's verdict, or `None` when this user's password is not checked at a
    /// source (local backend, local user, or no such active user: the local check then
    /// spends a hash and fails).
    async fn source_verdict(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<Verdict>, AuthFailure> {
        let backend = self.backend.get();
        if matches!(*backend, Backend::Local) {
            return Ok(None);
        }
        let store = self.store.clone();
        let key = name.to_string();
        let record = tokio::task::spawn_blocking(move || store.with_reader(|r| r.user(&key)))
            .await
            .map_err(|e| AuthFailure::Unavailable(e.to_string()))?
            .map_err(|e| AuthFailure::Unavailable(e.to_string()))?;
        // The source is asked for the address as stored (the directory or origin may
        // care about case; the login name was lowercased for the lookups here).
        let login = match record {
            Some(user) if user.active && backend.is_remote_for(&user) => user.address.to_string(),
            _ => return Ok(None),
        };
        if let Some(until) = *self
            .source_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            && Instant::now() < until
        {
            return Ok(Some(Verdict::Unreachable(format!(
                "{} backend unreachable at the last try; asking again in {:?}",
                backend.name(),
                until - Instant::now()
            ))));
        }
        let turn = tokio::time::timeout(
            self.limits.check_queue_timeout,
            self.source_checks.acquire(),
        );
        let Ok(Ok(_permit)) = turn.await else {
            return Err(AuthFailure::Unavailable(
                "too many logins at once; try again".into(),
            ));
        };
        let asked =
            tokio::time::timeout(self.limits.source_timeout, backend.ask(&login, password)).await;
        let verdict = asked.unwrap_or_else(|_| {
            Verdict::Unreachable(format!(
                "{} backend: no answer within {:?}",
                backend.name(),
                self.limits.source_timeout
            ))
        });
        let mut down = self
            .source_down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *down = match &verdict {
            Verdict::Unreachable(_) => Some(Instant::now() + self.limits.source_retry_after),
            _ => None,
        };
        Ok(Some(verdict))
    }

    /// Whether the session of `user` (as it logged in) may go on: the account still
    /// exists, is active and has the same password. A failure to read the store keeps
    /// the session (the next command checks again).
    pub async fn still_valid(&self, user: &UserRecord) -> bool {
        let (store, user) = (self.store.clone(), user.clone());
        tokio::task::spawn_blocking(move || unchanged(&store, &user))
            .await
            .unwrap_or(true)
    }
}

fn unchanged(store: &Store, user: &UserRecord) -> bool {
    match store.with_reader(|reader| reader.user(user.address.as_str())) {
        Ok(Some(now)) => now.active && now.id == user.id && now.password_hash == user.password_hash,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot re-check a session's user; keeping it");
            true
        }
    }
}

/// The password check itself (blocking). Unknown users cost a hash too, so timing does
/// not tell which addresses exist. `verdict` is the source's answer when the user's
/// password lives at a source.
fn check(
    store: &Store,
    cache: &LoginCache,
    user: &str,
    password: &str,
    verdict: Option<Verdict>,
) -> Result<UserRecord, AuthFailure> {
    let record = store
        .with_reader(|reader| reader.user(user))
        .map_err(|e| AuthFailure::Unavailable(e.to_string()))?;
    let Some(record) = record else {
        let _ = password::verify(dummy_hash(), password);
        return Err(AuthFailure::BadCredentials);
    };
    if !record.active {
        // Checked after the hash would be, by time: spend it anyway.
        let _ = password::verify(&record.password_hash, password);
        return Err(AuthFailure::Inactive);
    }
    let record = match verdict {
        None => check_local(store, cache, user, password, record)?,
        Some(Verdict::Accepted) => accepted_by_source(store, cache, user, password, record),
        Some(Verdict::Rejected(why)) => {
            tracing::info!(user = %record.address, reason = %why, "the password source refused the login");
            if let Some(verifier) = &record.cached_verifier
                && password::verify(verifier, password)
            {
                // The cached password is the one the source now refuses: changed or
                // revoked. It must not come back while the source is unreachable.
                if let Err(e) = store.forget_cached_password(record.id, verifier.clone()) {
                    tracing::warn!(user = %record.address, error = %e, "could not drop a stale cached password");
                }
            }
            return Err(AuthFailure::BadCredentials);
        }
        Some(Verdict::Unreachable(why)) => {
            tracing::warn!(user = %record.address, reason = %why, "password source unreachable; checking the cached password");
            let cached = record.cached_verifier.as_deref().is_some_and(|verifier| {
                cache.hit(user, verifier, password) || password::verify(verifier, password)
            });
            if cached {
                let verifier = record.cached_verifier.clone().unwrap_or_default();
                cache.remember(user, &verifier, password);
            } else if !password::verify(&record.password_hash, password) {
                return Err(AuthFailure::BadCredentials);
            }
            record
        }
    };
    note_login(store, &record);
    Ok(record)
}

/// A password checked against the store's own hash.
fn check_local(
    store: &Store,
    cache: &LoginCache,
    user: &str,
    password: &str,
    record: UserRecord,
) -> Result<UserRecord, AuthFailure> {
    if cache.hit(user, &record.password_hash, password) {
        return Ok(record);
    }
    if !password::verify(&record.password_hash, password) {
        return Err(AuthFailure::BadCredentials);
    }
    let mut record = record;
    if password::needs_rehash(&record.password_hash) {
        // An imported hash (Dovecot's SHA512-CRYPT, bcrypt, …): now that the password is
        // known to be right, store it as argon2id. Failing to is not a failed login.
        let upgraded = password::hash(password);
        match store.set_password(&record.address, upgraded.clone()) {
            Ok(()) => {
                tracing::info!(user = %record.address, "password hash upgraded to argon2id");
                record.password_hash = upgraded;
            }
            Err(e) => {
                tracing::warn!(user = %record.address, error = %e, "could not upgrade the password hash")
            }
        }
    }
    cache.remember(user, &record.password_hash, password);
    Ok(record)
}

/// The source accepted the password: make sure the store's cached verifier is this
/// password's (a new argon2id hash only when it is not already), so it works while the
/// source is unreachable.
fn accepted_by_source(
    store: &Store,
    cache: &LoginCache,
    user: &str,
    password: &str,
    mut record: UserRecord,
) -> UserRecord {
    let current = record
        .cached_verifier
        .as_deref()
        .is_some_and(|verifier| cache.hit(user, verifier, password));
    if current {
        return record;
    }
    let verifier = password::hash(password);
    match store.record_login(record.id, Some(verifier.clone())) {
        Ok(()) => {
            tracing::info!(user = %record.address, "password accepted by the source and cached");
            cache.remember(user, &verifier, password);
            record.cached_verifier = Some(verifier);
            record.cached_at = Some(lifeboat_mailstore::store::now());
            record.last_login_at = record.cached_at;
        }
        Err(e) => {
            tracing::warn!(user = %record.address, error = %e, "could not cache the password")
        }
    }
    record
}

/// Refreshes the last-login time when it is older than [`LAST_LOGIN_RESOLUTION`].
fn note_login(store: &Store, record: &UserRecord) {
    let now = lifeboat_mailstore::store::now();
    if record
        .last_login_at
        .is_some_and(|at| now - at < LAST_LOGIN_RESOLUTION)
    {
        return;
    }
    if let Err(e) = store.record_login(record.id, None) {
        tracing::warn!(user = %record.address, error = %e, "could not record the login time");
    }
}

fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| password::hash("lifeboat-no-such-user"))
}

/// Whether a listener's own address is loopback: connections to it cannot come from
/// another host, so a password sent in clear there never crosses a network.
pub fn is_loopback_listener(listener: std::net::SocketAddr) -> bool {
    listener.ip().to_canonical().is_loopback()
}

/// Whether a login without TLS is allowed on a listener bound to `listener`.
pub fn plaintext_login_allowed(listener: std::net::SocketAddr, allow_plaintext: bool) -> bool {
    allow_plaintext || is_loopback_listener(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_mailstore::address::Address;
    use lifeboat_mailstore::users::NewUser;

    fn authenticator(limits: AuthLimits) -> (tempfile::TempDir, Arc<Authenticator>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "test.host").unwrap();
        for (address, active) in [("alice@example.test", true), ("bob@example.test", false)] {
            store
                .add_user(NewUser {
                    address: Address::parse(address).unwrap(),
                    password_hash: password::hash("right"),
                    aliases: vec![Address::parse(&format!("x{address}")).unwrap()],
                    active,
                    alternate_email: None,
                })
                .unwrap();
        }
        (dir, Authenticator::new(store, limits))
    }

    fn quick() -> AuthLimits {
        AuthLimits {
            failure_delay: Duration::ZERO,
            lockouts: LockoutLimits {
                per_ip: Quota::per_hour(NonZeroU32::new(100).unwrap()),
                per_user_and_ip: Quota::per_hour(NonZeroU32::new(3).unwrap()),
                per_user: Quota::per_hour(NonZeroU32::new(6).unwrap()),
                failing_for: Duration::from_secs(60),
            },
            cache_ttl: Duration::from_secs(60),
            concurrent_checks: 2,
            check_queue_timeout: Duration::from_secs(30),
            ..AuthLimits::default()
        }
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[tokio::test]
    async fn logs_in_by_address_only_and_refuses_inactive_users() {
        let (_dir, auth) = authenticator(quick());
        let user = auth.login(IP, "Alice@Example.test", "right").await.unwrap();
        assert_eq!(user.address.as_str(), "alice@example.test");
        assert_eq!(
            auth.login(IP, "alice@example.test", "wrong").await,
            Err(AuthFailure::BadCredentials)
        );
        assert_eq!(
            auth.login(IP, "xalice@example.test", "right").await,
            Err(AuthFailure::BadCredentials),
            "aliases are not login names"
        );
        assert_eq!(
            auth.login(IP, "bob@example.test", "right").await,
            Err(AuthFailure::BadCredentials),
            "inactive users are refused like bad passwords"
        );
        assert_eq!(
            auth.login(IP, "nobody@example.test", "right").await,
            Err(AuthFailure::BadCredentials)
        );
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, n))
    }

    #[tokio::test]
    async fn failures_from_one_address_lock_that_address_out_of_the_account_only() {
        let (_dir, auth) = authenticator(quick());
        for _ in 0..4 {
            let _ = auth.login(IP, "alice@example.test", "wrong").await;
        }
        assert_eq!(
            auth.login(IP, "alice@example.test", "right").await,
            Err(AuthFailure::LockedOut),
            "the failing address is locked out of this account, right password or not"
        );
        assert!(
            auth.login(ip(7), "alice@example.test", "right")
                .await
                .is_ok(),
            "the user, from an address that did not fail, still gets in"
        );
    }

    #[tokio::test]
    async fn failures_from_many_addresses_guard_the_account_against_failing_addresses() {
        let (_dir, auth) = authenticator(quick());
        // Two tries each from four addresses: 8 failures for alice, over her limit of 6.
        for n in 1..=4 {
            for _ in 0..2 {
                let _ = auth.login(ip(n), "alice@example.test", "wrong").await;
            }
        }
        assert_eq!(
            auth.login(ip(1), "alice@example.test", "right").await,
            Err(AuthFailure::LockedOut),
            "an address that failed recently may not try a guarded account"
        );
        assert!(
            auth.login(ip(100), "alice@example.test", "right")
                .await
                .is_ok(),
            "an address without failures may"
        );
        // A fresh address gets its one try; after failing, it is refused too.
        let _ = auth.login(ip(101), "alice@example.test", "wrong").await;
        assert_eq!(
            auth.login(ip(101), "alice@example.test", "right").await,
            Err(AuthFailure::LockedOut)
        );
    }

    #[tokio::test]
    async fn too_many_failures_lock_out_the_address() {
        let mut limits = quick();
        limits.lockouts.per_ip = Quota::per_hour(NonZeroU32::new(2).unwrap());
        let (_dir, auth) = authenticator(limits);
        for n in 0..3 {
            let _ = auth.login(IP, &format!("u{n}@example.test"), "x").await;
        }
        assert_eq!(
            auth.login(IP, "alice@example.test", "right").await,
            Err(AuthFailure::LockedOut)
        );
        let other_ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
        assert!(
            auth.login(other_ip, "alice@example.test", "right")
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn password_checks_run_at_most_n_at_once_and_a_long_queue_is_told_to_come_back() {
        let mut limits = quick();
        limits.cache_ttl = Duration::ZERO;
        limits.concurrent_checks = 1;
        limits.check_queue_timeout = Duration::from_millis(1);
        let (_dir, auth) = authenticator(limits);
        let logins: Vec<_> = (0..8)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.login(IP, "alice@example.test", "right").await })
            })
            .collect();
        let mut results = Vec::new();
        for login in logins {
            results.push(login.await.unwrap());
        }
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(AuthFailure::Unavailable(_))))
            .count();
        assert!(results.iter().any(Result::is_ok));
        assert!(
            busy > 0,
            "with one checker and no patience some are turned away"
        );
        assert_eq!(
            auth.checks.available_permits(),
            1,
            "every turn was given back"
        );
    }

    #[tokio::test]
    async fn a_session_ends_when_its_user_is_disabled_deleted_or_given_a_new_password() {
        let (_dir, auth) = authenticator(quick());
        let alice = Address::parse("alice@example.test").unwrap();
        let session = auth.login(IP, "alice@example.test", "right").await.unwrap();
        assert!(auth.still_valid(&session).await);
        auth.store
            .set_password(&alice, password::hash("new"))
            .unwrap();
        assert!(
            !auth.still_valid(&session).await,
            "a new password ends old sessions"
        );
        let session = auth.login(IP, "alice@example.test", "new").await.unwrap();
        auth.store.set_active(&alice, false).unwrap();
        assert!(!auth.still_valid(&session).await, "disabling ends sessions");
        auth.store.set_active(&alice, true).unwrap();
        let session = auth.login(IP, "alice@example.test", "new").await.unwrap();
        assert!(auth.still_valid(&session).await);
        auth.store.delete_user(&alice, true).unwrap();
        assert!(!auth.still_valid(&session).await, "deleting ends sessions");
    }

    #[tokio::test]
    async fn the_login_cache_never_accepts_a_changed_or_wrong_password() {
        let (_dir, auth) = authenticator(quick());
        assert!(auth.login(IP, "alice@example.test", "right").await.is_ok());
        assert!(auth.login(IP, "alice@example.test", "right").await.is_ok());
        assert_eq!(
            auth.login(IP, "alice@example.test", "wrong").await,
            Err(AuthFailure::BadCredentials)
        );
        // A new password: the cached old one no longer works.
        let alice = Address::parse("alice@example.test").unwrap();
        auth.store
            .set_password(&alice, password::hash("new"))
            .unwrap();
        assert_eq!(
            auth.login(IP, "alice@example.test", "right").await,
            Err(AuthFailure::BadCredentials)
        );
        assert!(auth.login(IP, "alice@example.test", "new").await.is_ok());
        // Disabled: refused even though the password is cached.
        auth.store.set_active(&alice, false).unwrap();
        assert_eq!(
            auth.login(IP, "alice@example.test", "new").await,
            Err(AuthFailure::BadCredentials)
        );
    }

    #[tokio::test]
    async fn an_imported_hash_is_upgraded_to_argon2id_at_login() {
        let (_dir, auth) = authenticator(quick());
        let carol = Address::parse("carol@example.test").unwrap();
        // `doveadm pw -s SHA512-CRYPT -p x`
        let imported = "{SHA512-CRYPT}$6$8D9UqVIaAdMe9hMx$/F9vJVQZjnDF2ncLOWGL1SCughI4kP2RVcN5h5NrPUlwyiFQY/JF6Z5mWmoKVHpQQiUSiYE3O7UtZKiB.LplD/";
        auth.store
            .add_user(NewUser {
                address: carol.clone(),
                password_hash: imported.to_string(),
                aliases: vec![],
                active: true,
                alternate_email: None,
            })
            .unwrap();
        let user = auth.login(IP, "carol@example.test", "x").await.unwrap();
        assert!(user.password_hash.starts_with("{ARGON2ID}$argon2id$"));
        let stored = auth
            .store
            .with_reader(|r| r.user("carol@example.test"))
            .unwrap()
            .unwrap();
        assert_eq!(stored.password_hash, user.password_hash);
        assert!(password::verify(&stored.password_hash, "x"));
    }

    #[test]
    fn loopback_listeners_allow_plaintext() {
        let addr = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert!(is_loopback_listener(addr("127.0.0.1:110")));
        assert!(is_loopback_listener(addr("127.0.0.2:110")));
        assert!(is_loopback_listener(addr("[::1]:110")));
        assert!(is_loopback_listener(addr("[::ffff:127.0.0.1]:110")));
        assert!(!is_loopback_listener(addr("0.0.0.0:110")));
        assert!(!is_loopback_listener(addr("[::]:110")));
        assert!(!is_loopback_listener(addr("192.0.2.1:110")));
        assert!(!plaintext_login_allowed(addr("0.0.0.0:110"), false));
        assert!(plaintext_login_allowed(addr("0.0.0.0:110"), true));
        assert!(plaintext_login_allowed(addr("127.0.0.1:110"), false));
    }
}
