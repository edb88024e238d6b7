//! Protected users and their aliases. An address belongs to one user only, as its own
//! address or as an alias; every user gets the standard folders at creation.

use std::fs;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use crate::address::Address;
use crate::error::{Error, IoContext, Result, refused};
use crate::maildir::{self, STANDARD_FOLDERS};
use crate::store::{Store, now};

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub address: Address,
    /// Stored form, see [`crate::password`].
    pub password_hash: String,
    pub aliases: Vec<Address>,
    pub active: bool,
    pub alternate_email: Option<Address>,
}

impl Store {
    pub fn add_user(&self, user: NewUser) -> Result<()> {
        self.add_users(vec![user]).map_err(|failure| failure.error)
    }

    /// Creates all `users` in one transaction: if any is refused, none is created.
    pub fn add_users(&self, users: Vec<NewUser>) -> Result<(), RowFailure> {
        let store = self.clone();
        self.write(move |conn| {
            for (row, user) in users.iter().enumerate() {
                insert_user(&store, conn, user).map_err(|error| Error::RowRefused {
                    row,
                    message: error.to_string(),
                })?;
            }
            Ok(())
        })
        .map_err(|error| match error {
            Error::RowRefused { row, message } => RowFailure {
                row: Some(row),
                error: Error::Refused(message),
            },
            error => RowFailure { row: None, error },
        })
    }

    pub fn set_password(&self, address: &Address, password_hash: String) -> Result<()> {
        let address = address.to_string();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE users SET password_hash = ?2 WHERE address = ?1",
                params![address, password_hash],
            )?;
            expect_user(changed, &address)
        })
    }

    /// Records a successful login: its time, and with `verifier` the argon2id verifier
    /// of the password the directory or origin just accepted (the cached credential).
    pub fn record_login(&self, user_id: i64, verifier: Option<String>) -> Result<()> {
        self.write(move |conn| {
            let at = now();
            match verifier {
                Some(verifier) => conn.execute(
                    "UPDATE users SET last_login_at = ?2, cached_verifier = ?3, cached_at = ?2
                     WHERE id = ?1",
                    params![user_id, at, verifier],
                )?,
                None => conn.execute(
                    "UPDATE users SET last_login_at = ?2 WHERE id = ?1",
                    params![user_id, at],
                )?,
            };
            Ok(())
        })
    }

    /// Drops a cached credential the source has just refused, so a changed or revoked
    /// password does not come back while the source is unreachable. Only when the
    /// verifier is still `verifier` (a newer login may have replaced it meanwhile).
    pub fn forget_cached_password(&self, user_id: i64, verifier: String) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE users SET cached_verifier = NULL, cached_at = NULL
                 WHERE id = ?1 AND cached_verifier = ?2",
                params![user_id, verifier],
            )?;
            Ok(())
        })
    }

    pub fn set_active(&self, address: &Address, active: bool) -> Result<()> {
        let address = address.to_string();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE users SET active = ?2 WHERE address = ?1",
                params![address, active],
            )?;
            expect_user(changed, &address)
        })
    }

    /// Removes the user from the index and moves their Maildir to
    /// `<data_dir>/deleted/<domain>/<local>.<time>` (mail is never deleted outright).
    /// Refuses while copies still wait for replay, unless `force`.
    pub fn delete_user(&self, address: &Address, force: bool) -> Result<PathBuf> {
        let key = address.to_string();
        let stored_address: String = self.write(move |conn| {
            let Some((user_id, stored_address)) = conn
                .query_row(
                    "SELECT id, address FROM users WHERE address = ?1",
                    [&key],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?
            else {
                return refused(format!("no user {key}"));
            };
            let unreplayed: i64 = conn.query_row(
                "SELECT count(*) FROM replay_ledger l JOIN messages m ON m.id = l.message_row
                 JOIN mailboxes b ON b.id = m.mailbox_id
                 WHERE b.user_id = ?1 AND l.state IN ('pending', 'rejected')",
                [user_id],
                |r| r.get(0),
            )?;
            if unreplayed > 0 && !force {
                return refused(format!(
                    "{key} has {unreplayed} copies not yet replayed to the origin; \
                     wait for replay or pass --force"
                ));
            }
            conn.execute(
                "DELETE FROM replay_ledger WHERE message_row IN (
                   SELECT m.id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
                   WHERE b.user_id = ?1)",
                [user_id],
            )?;
            conn.execute("DELETE FROM users WHERE id = ?1", [user_id])?;
            Ok(stored_address)
        })?;
        // The Maildir is named after the address as stored, whatever case was typed.
        let address = Address::parse(&stored_address)
            .map_err(|e| Error::Refused(format!("index holds a bad address: {e}")))?;
        let from = self.user_dir(&address);
        let to = self
            .data_dir()
            .join("deleted")
            .join(address.domain())
            .join(format!("{}.{}", address.local(), now()));
        if from.exists() {
            if let Some(parent) = to.parent() {
                crate::private::create_dir_all(parent)
                    .context(|| format!("creating {}", parent.display()))?;
            }
            fs::rename(&from, &to)
                .context(|| format!("moving {} to {}", from.display(), to.display()))?;
        }
        Ok(to)
    }

    pub fn add_alias(&self, alias: &Address, owner: &Address) -> Result<()> {
        let (alias, owner) = (alias.to_string(), owner.to_string());
        self.write(move |conn| {
            let Some(user_id) = user_id(conn, &owner)? else {
                return refused(format!("no user {owner}"));
            };
            ensure_address_free(conn, &alias)?;
            conn.execute(
                "INSERT INTO aliases (address, user_id) VALUES (?1, ?2)",
                params![alias, user_id],
            )?;
            Ok(())
        })
    }

    pub fn delete_alias(&self, alias: &Address) -> Result<()> {
        let alias = alias.to_string();
        self.write(move |conn| {
            if conn.execute("DELETE FROM aliases WHERE address = ?1", [&alias])? == 0 {
                return refused(format!("no alias {alias}"));
            }
            Ok(())
        })
    }
}

/// Which row of a batch was refused (when one was), and why.
#[derive(Debug)]
pub struct RowFailure {
    pub row: Option<usize>,
    pub error: Error,
}

fn insert_user(store: &Store, conn: &Connection, user: &NewUser) -> Result<()> {
    ensure_address_free(conn, user.address.as_str())?;
    for alias in &user.aliases {
        if alias == &user.address {
            return refused(format!("{alias} is both the address and an alias"));
        }
        ensure_address_free(conn, alias.as_str())?;
    }
    let user_dir = store.user_dir(&user.address);
    if user_dir.exists() {
        return refused(format!(
            "{} already exists on disk but not in the index (run `lifeboat store check --repair`)",
            user_dir.display()
        ));
    }
    conn.execute(
        "INSERT INTO users (address, password_hash, active, alternate_email, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            user.address.as_str(),
            user.password_hash,
            user.active,
            user.alternate_email.as_ref().map(Address::as_str),
            now()
        ],
    )?;
    let user_id = conn.last_insert_rowid();
    for alias in &user.aliases {
        conn.execute(
            "INSERT INTO aliases (address, user_id) VALUES (?1, ?2)",
            params![alias.as_str(), user_id],
        )?;
    }
    for (name, special_use) in STANDARD_FOLDERS {
        let dir = maildir::folder_dir(&user_dir, name);
        maildir::create_folder(&dir, name != "INBOX")?;
        create_mailbox(conn, user_id, name, special_use, &dir)?;
    }
    Ok(())
}

/// Adds a mailbox row with a fresh UIDVALIDITY, and records it beside the folder.
pub(crate) fn create_mailbox(
    conn: &Connection,
    user_id: i64,
    name: &str,
    special_use: Option<&str>,
    dir: &std::path::Path,
) -> Result<i64> {
    let uidvalidity = next_uidvalidity(conn, maildir::read_uidvalidity_file(dir))?;
    conn.execute(
        "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, name, special_use, uidvalidity],
    )?;
    maildir::write_uidvalidity_file(dir, uidvalidity)?;
    Ok(conn.last_insert_rowid())
}

/// A UIDVALIDITY larger than any this store (or this folder, per `previous`) handed out:
/// based on the clock like Dovecot's, but never repeating even within one second.
pub(crate) fn next_uidvalidity(conn: &Connection, previous: Option<u32>) -> Result<u32> {
    let last: Option<u32> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_uidvalidity'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok());
    let floor = last.max(previous).map_or(0, |v| v.saturating_add(1));
    let next = (now().clamp(1, u32::MAX as i64) as u32).max(floor);
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('last_uidvalidity', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [next.to_string()],
    )?;
    Ok(next)
}

fn ensure_address_free(conn: &Connection, address: &str) -> Result<()> {
    let owner: Option<String> = conn
        .query_row(
            "SELECT address FROM users WHERE address = ?1
             UNION ALL SELECT u.address FROM aliases a JOIN users u ON u.id = a.user_id
                       WHERE a.address = ?1 LIMIT 1",
            [address],
            |r| r.get(0),
        )
        .optional()?;
    match owner {
        Some(owner) if owner.eq_ignore_ascii_case(address) => {
            refused(format!("{address} is already a user"))
        }
        Some(owner) => refused(format!("{address} is already an alias of {owner}")),
        None => Ok(()),
    }
}

pub(crate) fn user_id(conn: &Connection, address: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT id FROM users WHERE address = ?1", [address], |r| {
            r.get(0)
        })
        .optional()?)
}

fn expect_user(changed: usize, address: &str) -> Result<()> {
    if changed == 0 {
        refused(format!("no user {address}"))
    } else {
        Ok(())
    }
}
