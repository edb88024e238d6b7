//! Logging users in, for every server (POP3 now, IMAP and submission later): password
//! check against the store, failure delay, and lockouts per client address and per user.
//!
//! Failures are counted with governor's GCRA limiters (a burst of failures, then one
//! more per interval). When a failure finds its limiter exhausted, that address or user
//! is locked out until the limiter has room again; a locked-out login is refused before
//! the password is even checked, correct or not. Successful logins cost nothing, so many
//! users behind one NAT address are not locked out by each other's successes.
//!
//! Password hashes are slow on purpose (argon2id: tens of milliseconds of CPU), and mail
//! clients log in again every few minutes, each time. Like Dovecot's auth cache, a
//! successful check is remembered for [`AuthLimits::cache_ttl`] as a keyed SHA-256 of the
//! password (key random per process, never stored), tied to the stored hash: a password
//! change, a wrong password or a disabled account never hits the cache.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use lifeboat_mailstore::password;
use lifeboat_mailstore::reader::UserRecord;
use lifeboat_mailstore::store::Store;

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

/// How hard failures are punished. [`AuthLimits::default`] is what the servers use.
#[derive(Clone, Copy, Debug)]
pub struct AuthLimits {
    /// Every failed login waits this long before its answer, so guessing over one
    /// connection is slow.
    pub failure_delay: Duration,
    /// Failures allowed per client address (IPv6: per /64).
    pub per_ip: Quota,
    /// Failures allowed per login name, from anywhere.
    pub per_user: Quota,
    /// How long a successful login is remembered (zero: never).
    pub cache_ttl: Duration,
}

impl Default for AuthLimits {
    fn default() -> AuthLimits {
        AuthLimits {
            failure_delay: Duration::from_secs(1),
            // 10 failures at once, then one per 6 s: a mistyped password or a client with
            // an old password retrying is fine; a dictionary attack is not.
            per_ip: Quota::with_period(Duration::from_secs(6))
                .expect("non-zero period")
                .allow_burst(NonZeroU32::new(10).expect("non-zero")),
            // 5 failures at once, then one per 30 s for the same user from anywhere.
            per_user: Quota::with_period(Duration::from_secs(30))
                .expect("non-zero period")
                .allow_burst(NonZeroU32::new(5).expect("non-zero")),
            cache_ttl: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum LockKey {
    Ip(IpAddr),
    User(String),
}

pub struct Authenticator {
    store: Store,
    limits: AuthLimits,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
    locked_until: Mutex<HashMap<LockKey, Instant>>,
    cache: Arc<LoginCache>,
}

/// Successful logins, by login name (see the module docs).
struct LoginCache {
    ttl: Duration,
    key: [u8; 32],
    entries: Mutex<HashMap<String, CachedLogin>>,
}

struct CachedLogin {
    stored_hash: String,
    digest: [u8; 32],
    expires: Instant,
}

/// Entries beyond this make an insert sweep out the expired ones first.
const CACHE_SWEEP_AT: usize = 10_000;

impl LoginCache {
    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(user.as_bytes());
        hasher.update([0u8]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn hit(&self, user: &str, stored_hash: &str, password: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let digest = self.digest(user, password);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(user).is_some_and(|entry| {
            entry.expires > Instant::now()
                && entry.stored_hash == stored_hash
                // Compared without an early exit, like a password.
                && entry.digest.iter().zip(digest).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        })
    }

    fn remember(&self, user: &str, stored_hash: &str, password: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let entry = CachedLogin {
            stored_hash: stored_hash.to_string(),
            digest: self.digest(user, password),
            expires: Instant::now() + self.ttl,
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_SWEEP_AT {
            let now = Instant::now();
            entries.retain(|_, e| e.expires > now);
        }
        entries.insert(user.to_string(), entry);
    }
}

impl Authenticator {
    pub fn new(store: Store, limits: AuthLimits) -> Arc<Authenticator> {
        Arc::new(Authenticator {
            store,
            limits,
            per_ip: RateLimiter::keyed(limits.per_ip),
            per_user: RateLimiter::keyed(limits.per_user),
            locked_until: Mutex::new(HashMap::new()),
            cache: Arc::new(LoginCache {
                ttl: limits.cache_ttl,
                key: rand::random(),
                entries: Mutex::new(HashMap::new()),
            }),
        })
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
        if self.is_locked(&[LockKey::Ip(ip), LockKey::User(name.clone())]) {
            tracing::warn!(%ip, user = %name, "login refused: locked out after failures");
            tokio::time::sleep(self.limits.failure_delay).await;
            return Err(AuthFailure::LockedOut);
        }
        let (store, cache) = (self.store.clone(), self.cache.clone());
        let (lookup_name, password) = (name.clone(), password.to_string());
        // SQLite and the password hash are blocking, and a hash is meant to be slow.
        let checked =
            tokio::task::spawn_blocking(move || check(&store, &cache, &lookup_name, &password))
                .await
                .unwrap_or_else(|e| Err(AuthFailure::Unavailable(e.to_string())));
        match checked {
            Ok(user) => Ok(user),
            Err(AuthFailure::Unavailable(why)) => {
                tracing::error!(error = %why, "login failed: store unavailable");
                Err(AuthFailure::Unavailable(why))
            }
            Err(failure) => {
                tracing::warn!(%ip, user = %name, reason = %failure, "login failed");
                self.record_failure(ip, name);
                tokio::time::sleep(self.limits.failure_delay).await;
                Err(AuthFailure::BadCredentials)
            }
        }
    }

    fn is_locked(&self, keys: &[LockKey]) -> bool {
        let mut locks = self.locked_until.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        locks.retain(|_, until| *until > now);
        keys.iter().any(|key| locks.contains_key(key))
    }

    fn record_failure(&self, ip: IpAddr, user: String) {
        let clock = DefaultClock::default();
        let mut locks = self.locked_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(not_until) = self.per_ip.check_key(&ip) {
            let wait = not_until.wait_time_from(clock.now());
            locks.insert(LockKey::Ip(ip), Instant::now() + wait);
            tracing::warn!(%ip, ?wait, "too many failed logins from this address: locked out");
        }
        if let Err(not_until) = self.per_user.check_key(&user) {
            let wait = not_until.wait_time_from(clock.now());
            tracing::warn!(user = %user, ?wait, "too many failed logins for this user: locked out");
            locks.insert(LockKey::User(user), Instant::now() + wait);
        }
        // Keyed limiters keep a cell per key they have seen; drop the ones at rest.
        if self.per_ip.len() > 10_000 {
            self.per_ip.retain_recent();
        }
        if self.per_user.len() > 10_000 {
            self.per_user.retain_recent();
        }
    }
}

/// The password check itself (blocking). Unknown users cost a hash too, so timing does
/// not tell which addresses exist.
fn check(
    store: &Store,
    cache: &LoginCache,
    user: &str,
    password: &str,
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

fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| password::hash("lifeboat-no-such-user"))
}

/// IPv4 clients as themselves (also when seen as `::ffff:a.b.c.d`); IPv6 clients by /64,
/// since one host usually owns a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
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
            per_ip: Quota::per_hour(NonZeroU32::new(100).unwrap()),
            per_user: Quota::per_hour(NonZeroU32::new(3).unwrap()),
            cache_ttl: Duration::from_secs(60),
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

    #[tokio::test]
    async fn too_many_failures_lock_out_the_user_even_with_the_right_password() {
        let (_dir, auth) = authenticator(quick());
        for _ in 0..4 {
            let _ = auth.login(IP, "alice@example.test", "wrong").await;
        }
        assert_eq!(
            auth.login(IP, "alice@example.test", "right").await,
            Err(AuthFailure::LockedOut)
        );
        let other_ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(
            auth.login(other_ip, "alice@example.test", "right").await,
            Err(AuthFailure::LockedOut),
            "the per-user limit holds from any address"
        );
    }

    #[tokio::test]
    async fn too_many_failures_lock_out_the_address() {
        let limits = AuthLimits {
            per_ip: Quota::per_hour(NonZeroU32::new(2).unwrap()),
            per_user: Quota::per_hour(NonZeroU32::new(100).unwrap()),
            ..quick()
        };
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

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), IP);
    }
}
