//! The login cache: a successful password check is remembered for a while (like
//! Dovecot's auth cache) as a keyed SHA-256 of the password (key random per process,
//! never stored), tied to the stored hash: a password change, a wrong password or a
//! disabled account never hits it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Successful logins, by login name (see the module docs).
pub struct LoginCache {
    ttl: Duration,
    key: [u8; 32],
    entries: Mutex<HashMap<String, CachedLogin>>,
}

impl LoginCache {
    /// `ttl` zero: nothing is remembered.
    pub fn new(ttl: Duration) -> LoginCache {
        LoginCache {
            ttl,
            key: rand::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }
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

    pub fn hit(&self, user: &str, stored_hash: &str, password: &str) -> bool {
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

    pub fn remember(&self, user: &str, stored_hash: &str, password: &str) {
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
