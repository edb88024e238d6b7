//! Which users could log in during an outage, and what else they need: the readiness
//! report (`lifeboat user list --readiness`) and the `lifeboat_users{state}` metric.
//! Something an admin checks before the outage, not during it.

use lifeboat_mailstore::reader::{LoginFacts, Reader, UserRecord, UserSource};
use lifeboat_mailstore::{password, store::now};

use crate::config::{AuthBackend, Config};

/// How a user could log in while the origin (and with it, usually, the directory) is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginReadiness {
    /// A password kept by Lifeboat itself (added by hand, imported, or `user passwd`).
    LocalPassword,
    /// The password the directory or origin last accepted, cached at this time.
    CachedPassword {
        cached_at: i64,
    },
    /// Never logged in through the directory or origin: no password to check.
    NoPassword,
    Disabled,
}

impl LoginReadiness {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            LoginReadiness::LocalPassword => "local_password",
            LoginReadiness::CachedPassword { .. } => "cached_password",
            LoginReadiness::NoPassword => "no_password",
            LoginReadiness::Disabled => "disabled",
        }
    }

    pub const LABELS: [&'static str; 4] = [
        "local_password",
        "cached_password",
        "no_password",
        "disabled",
    ];

    pub fn ready(self) -> bool {
        matches!(
            self,
            LoginReadiness::LocalPassword | LoginReadiness::CachedPassword { .. }
        )
    }
}

#[derive(Clone, Debug)]
pub struct UserReadiness {
    pub user: UserRecord,
    pub login: LoginReadiness,
    /// Days since the oldest copy the user can read arrived.
    pub history_days: Option<i64>,
}

/// Whether logins of a user from `source` are checked at the directory or origin under
/// `backend`.
pub fn remote(backend: AuthBackend, source: UserSource) -> bool {
    match backend {
        AuthBackend::Local => false,
        AuthBackend::Directory => source == UserSource::Directory,
        AuthBackend::OriginImap => true,
    }
}

pub fn login_readiness(backend: AuthBackend, user: &LoginFacts) -> LoginReadiness {
    if !user.active {
        return LoginReadiness::Disabled;
    }
    match user.cached_at {
        Some(cached_at) if remote(backend, user.source) => {
            LoginReadiness::CachedPassword { cached_at }
        }
        _ if password::is_usable(&user.password_hash) => LoginReadiness::LocalPassword,
        _ => LoginReadiness::NoPassword,
    }
}

/// Every user's readiness, in address order.
pub fn report(config: &Config, reader: &Reader) -> lifeboat_mailstore::Result<Vec<UserReadiness>> {
    let today = now();
    reader
        .users()?
        .into_iter()
        .map(|user| {
            let history_days = reader
                .oldest_visible_copy(user.id)?
                .map(|oldest| (today - oldest).max(0) / 86_400);
            Ok(UserReadiness {
                login: login_readiness(config.auth.backend, &user.login_facts()),
                user,
                history_days,
            })
        })
        .collect()
}

/// "312 of 340 users ready; 28 have never logged in (no cached password); 51 without an
/// alternate address" (disabled users are not counted).
pub fn summary(users: &[UserReadiness]) -> String {
    let active: Vec<&UserReadiness> = users
        .iter()
        .filter(|u| u.login != LoginReadiness::Disabled)
        .collect();
    let ready = active.iter().filter(|u| u.login.ready()).count();
    let unready = active.len() - ready;
    let no_alternate = active
        .iter()
        .filter(|u| u.user.alternate_email.is_none())
        .count();
    let mut line = format!(
        "{ready} of {} users ready; {unready} have never logged in (no cached password); \
         {no_alternate} without an alternate address",
        active.len()
    );
    let disabled = users.len() - active.len();
    if disabled > 0 {
        line.push_str(&format!(" ({disabled} disabled users not counted)"));
    }
    line
}
