//! Where a password is checked (`[auth] backend`):
//!
//! - `Local`: the store's own password hash (users added by hand or CSV);
//! - `Directory`: users that came from directory sync bind to the directory as
//!   themselves; users added by hand keep their local password;
//! - `OriginImap`: every user logs in at the origin's IMAP server.
//!
//! A source's answer is a [`Verdict`]. Only `Unreachable` lets a login fall back to the
//! password the source last accepted (its cached argon2id verifier): "wrong password"
//! from the source wins over any older cached one.

use lifeboat_mailstore::reader::{UserRecord, UserSource};

pub use super::origin_imap::{ImapServer, OriginImap};

/// A source's answer to a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The source said no (wrong password, no such account, locked).
    Rejected(String),
    /// The source could not be asked (connect error, TLS, timeout, "unavailable").
    Unreachable(String),
}

impl From<lifeboat_directory::Verdict> for Verdict {
    fn from(verdict: lifeboat_directory::Verdict) -> Verdict {
        match verdict {
            lifeboat_directory::Verdict::Accepted => Verdict::Accepted,
            lifeboat_directory::Verdict::Rejected(why) => Verdict::Rejected(why),
            lifeboat_directory::Verdict::Unreachable(why) => Verdict::Unreachable(why),
        }
    }
}

#[derive(Clone)]
pub enum Backend {
    Local,
    Directory(Box<lifeboat_directory::Settings>),
    OriginImap(OriginImap),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Directory(_) => "directory",
            Backend::OriginImap(_) => "origin-imap",
        }
    }

    /// Whether `user`'s password is checked at a source rather than in the store.
    pub fn is_remote_for(&self, user: &UserRecord) -> bool {
        match self {
            Backend::Local => false,
            Backend::Directory(_) => user.source == UserSource::Directory,
            Backend::OriginImap(_) => true,
        }
    }

    /// Asks the source (not bounded in time here: the caller is).
    pub async fn ask(&self, user: &str, password: &str) -> Verdict {
        match self {
            Backend::Local => Verdict::Unreachable("no remote source configured".into()),
            Backend::Directory(settings) => {
                lifeboat_directory::check_password(settings, user, password)
                    .await
                    .into()
            }
            Backend::OriginImap(origin) => origin.check(user, password).await,
        }
    }
}
