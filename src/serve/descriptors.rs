//! File descriptors: `serve` raises its soft limit to the hard one at start and shares
//! what it has out, so no kind of connection can take the descriptors capture needs.
//! Seen before this existed: ~1,100 idle IMAP connections under the usual 1,024 limit
//! made the milter's accept fail, and capture stopped while `serve` kept running.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// How the descriptor limit is shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit after raising it.
    pub limit: u64,
    /// Milter connections at once (Postfix opens one per smtpd process).
    pub milter: usize,
    /// Fallback sessions at once.
    pub fallback: usize,
    /// IMAP, POP3 and submission sessions together.
    pub user_sessions: usize,
}

/// Capture's shares never exceed these: Postfix's default process limit is 100.
const MILTER_MAX: usize = 256;
const FALLBACK_MAX: usize = 64;
/// Kept for the store (SQLite connections, Maildir files being written or read), the
/// origin watch's probes, notices, the metrics endpoint and logging.
const RESERVED_MAX: usize = 128;

impl Budget {
    /// Shares out `limit` descriptors of which `in_use` are open already (the log, the
    /// runtime, the listening sockets). Each user session may hold two (its socket, and a
    /// relay connection to Postfix or a message file it reads).
    pub fn for_limit(limit: u64, in_use: usize) -> Budget {
        let total = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(1 << 20)
            .saturating_sub(in_use);
        let reserved = RESERVED_MAX.min(total / 8);
        let milter = MILTER_MAX.min(total / 4).max(1);
        let fallback = FALLBACK_MAX.min(total / 16).max(1);
        let user_sessions = total.saturating_sub(reserved + milter + fallback) / 2;
        Budget {
            limit,
            milter,
            fallback,
            user_sessions,
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the unit sets `LimitNOFILE`) and
/// returns how it is shared out.
pub fn raise_and_share() -> Budget {
    let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "cannot raise the file descriptor limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file descriptor limit; assuming 1024");
            1024
        }
    };
    let in_use = std::fs::read_dir("/proc/self/fd").map_or(32, |dir| dir.count());
    let budget = Budget::for_limit(limit, in_use);
    tracing::info!(
        limit = budget.limit,
        milter = budget.milter,
        fallback = budget.fallback,
        user_sessions = budget.user_sessions,
        "file descriptors shared out"
    );
    budget
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_its_share_and_users_get_the_rest() {
        let usual = Budget::for_limit(1024, 24);
        assert_eq!((usual.milter, usual.fallback), (250, 62));
        assert_eq!(usual.user_sessions, (1000 - 125 - 250 - 62) / 2);
        let big = Budget::for_limit(524_288, 24);
        assert_eq!((big.milter, big.fallback), (256, 64));
        assert!(big.user_sessions > 200_000);
        let tiny = Budget::for_limit(64, 20);
        assert_eq!((tiny.milter, tiny.fallback), (11, 2));
        let used = 20 + tiny.milter + tiny.fallback + 2 * tiny.user_sessions + 44 / 8;
        assert!(used <= 64, "{tiny:?} uses {used}");
    }
}
