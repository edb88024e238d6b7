//! What the web portal keeps in the index: login sessions and password-reset tokens.
//!
//! Both secrets live only in the user's browser (the session cookie) or mailbox (the
//! reset link); the index keeps their SHA-256, computed by the portal, so a copy of the
//! index lets nobody in. Rows go when the user is deleted (cascade).

use rusqlite::{OptionalExtension, params};

use crate::address::Address;
use crate::error::{Result, refused};
use crate::reader::Reader;
use crate::store::Store;

/// A web login as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    pub user_id: i64,
    /// The user's password hash when they logged in: a new one ends the session.
    pub user_password_hash: String,
    /// Sent with every form and checked on every state-changing request.
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    pub fn create_web_session(&self, id_hash: String, session: WebSession) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO web_sessions
                 (id_hash, user_id, user_password_hash, csrf_token, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id_hash,
                    session.user_id,
                    session.user_password_hash,
                    session.csrf_token,
                    session.created_at,
                    session.last_seen_at
                ],
            )?;
            Ok(())
        })
    }

    /// Records activity (for the idle timeout).
    pub fn touch_web_session(&self, id_hash: String, at: i64) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE web_sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                params![id_hash, at],
            )?;
            Ok(())
        })
    }

    pub fn delete_web_session(&self, id_hash: String) -> Result<()> {
        self.write(move |conn| {
            conn.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash])?;
            Ok(())
        })
    }

    /// Ends every web login of a user (after a password change or reset).
    pub fn delete_web_sessions_of(&self, user_id: i64) -> Result<()> {
        self.write(move |conn| {
            conn.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user_id])?;
            Ok(())
        })
    }

    /// Removes sessions idle since before `idle_before` or created before
    /// `created_before`; returns how many went.
    pub fn delete_stale_web_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> Result<usize> {
        self.write(move |conn| {
            let sessions = conn.execute(
                "DELETE FROM web_sessions WHERE last_seen_at < ?1 OR created_at < ?2",
                params![idle_before, created_before],
            )?;
            let now = crate::store::now();
            conn.execute(
                "DELETE FROM web_password_resets WHERE expires_at < ?1",
                [now - 86_400],
            )?;
            Ok(sessions)
        })
    }

    pub fn create_password_reset(
        &self,
        token_hash: String,
        user_id: i64,
        created_at: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO web_password_resets (token_hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, user_id, created_at, expires_at],
            )?;
            Ok(())
        })
    }

    /// Sets a new password with a reset token, once: the token must be unused and not
    /// expired at `now`. Marking it used, setting the password and ending the user's
    /// web sessions share one transaction. Returns the user's id, or `None` when the
    /// token is not (or no longer) good.
    pub fn reset_password(
        &self,
        token_hash: String,
        password_hash: String,
        now: i64,
    ) -> Result<Option<i64>> {
        self.write(move |conn| {
            let user_id: Option<i64> = conn
                .query_row(
                    "UPDATE web_password_resets SET used_at = ?2
                     WHERE token_hash = ?1 AND used_at IS NULL AND expires_at >= ?2
                     RETURNING user_id",
                    params![token_hash, now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(user_id) = user_id else {
                return Ok(None);
            };
            conn.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user_id, password_hash],
            )?;
            conn.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user_id])?;
            // Any other link sent before is void now.
            conn.execute(
                "UPDATE web_password_resets SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
                params![user_id, now],
            )?;
            Ok(Some(user_id))
        })
    }

    /// Sets (or with `None` clears) the address outage notices go to.
    pub fn set_alternate_email(
        &self,
        address: &Address,
        alternate: Option<&Address>,
    ) -> Result<()> {
        let address = address.to_string();
        let alternate = alternate.map(|a| a.to_string());
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE users SET alternate_email = ?2 WHERE address = ?1",
                params![address, alternate],
            )?;
            if changed == 0 {
                return refused(format!("no user {address}"));
            }
            Ok(())
        })
    }
}

impl Reader {
    pub fn web_session(&self, id_hash: &str) -> Result<Option<WebSession>> {
        Ok(self
            .connection()
            .prepare_cached(
                "SELECT user_id, user_password_hash, csrf_token, created_at, last_seen_at
                 FROM web_sessions WHERE id_hash = ?1",
            )?
            .query_row([id_hash], |r| {
                Ok(WebSession {
                    user_id: r.get(0)?,
                    user_password_hash: r.get(1)?,
                    csrf_token: r.get(2)?,
                    created_at: r.get(3)?,
                    last_seen_at: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// The user a reset token is for, while it is unused and not expired at `now`.
    pub fn password_reset_user(&self, token_hash: &str, now: i64) -> Result<Option<i64>> {
        Ok(self
            .connection()
            .query_row(
                "SELECT user_id FROM web_password_resets
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at >= ?2",
                params![token_hash, now],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// How many web sessions are open (for `status` and the benchmark).
    pub fn web_session_count(&self) -> Result<u64> {
        let n: i64 = self
            .connection()
            .query_row("SELECT count(*) FROM web_sessions", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::NewUser;

    fn store() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "test.host").unwrap();
        store
            .add_user(NewUser {
                address: Address::parse("alice@example.test").unwrap(),
                password_hash: "old".into(),
                aliases: vec![],
                active: true,
                alternate_email: None,
            })
            .unwrap();
        let id = store
            .with_reader(|r| r.user("alice@example.test"))
            .unwrap()
            .unwrap()
            .id;
        (dir, store, id)
    }

    #[test]
    fn sessions_are_found_by_hash_and_go_when_stale_or_deleted() {
        let (_dir, store, id) = store();
        let session = WebSession {
            user_id: id,
            user_password_hash: "old".into(),
            csrf_token: "t".into(),
            created_at: 100,
            last_seen_at: 100,
        };
        store
            .create_web_session("h1".into(), session.clone())
            .unwrap();
        store
            .create_web_session(
                "h2".into(),
                WebSession {
                    created_at: 500,
                    last_seen_at: 500,
                    ..session.clone()
                },
            )
            .unwrap();
        assert_eq!(
            store.with_reader(|r| r.web_session("h1")).unwrap(),
            Some(session)
        );
        store.touch_web_session("h1".into(), 200).unwrap();
        assert_eq!(store.delete_stale_web_sessions(150, 0).unwrap(), 0);
        assert_eq!(store.delete_stale_web_sessions(300, 0).unwrap(), 1);
        assert!(
            store
                .with_reader(|r| r.web_session("h1"))
                .unwrap()
                .is_none()
        );
        store.delete_web_sessions_of(id).unwrap();
        assert_eq!(store.with_reader(|r| r.web_session_count()).unwrap(), 0);
    }

    #[test]
    fn a_reset_token_works_once_before_it_expires_and_ends_sessions() {
        let (_dir, store, id) = store();
        store
            .create_password_reset("tok".into(), id, 0, 1000)
            .unwrap();
        store
            .create_password_reset("old-link".into(), id, 0, 1000)
            .unwrap();
        store
            .create_password_reset("late".into(), id, 0, 10)
            .unwrap();
        let session = WebSession {
            user_id: id,
            user_password_hash: "old".into(),
            csrf_token: "t".into(),
            created_at: 0,
            last_seen_at: 0,
        };
        store.create_web_session("s".into(), session).unwrap();
        assert_eq!(
            store
                .reset_password("late".into(), "new".into(), 11)
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .with_reader(|r| r.password_reset_user("tok", 5))
                .unwrap(),
            Some(id)
        );
        assert_eq!(
            store.reset_password("tok".into(), "new".into(), 5).unwrap(),
            Some(id)
        );
        assert_eq!(
            store
                .reset_password("tok".into(), "newer".into(), 6)
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .reset_password("old-link".into(), "newer".into(), 6)
                .unwrap(),
            None,
            "using one link voids the others"
        );
        let user = store.with_reader(|r| r.user_with_id(id)).unwrap().unwrap();
        assert_eq!(user.password_hash, "new");
        assert!(store.with_reader(|r| r.web_session("s")).unwrap().is_none());
    }

    #[test]
    fn pages_run_newest_first_and_counts_skip_hidden_and_seen_mail() {
        let (_dir, store, id) = store();
        store.lock_for_delivery().unwrap();
        let alice = Address::parse("alice@example.test").unwrap();
        for n in 0..5 {
            let mut message = crate::NewMessage::new(
                alice.clone(),
                "INBOX",
                format!("Subject: {n}\r\n\r\nbody\r\n").into_bytes(),
                crate::Class::Other,
            );
            if n == 0 {
                message.flags = crate::Flags::SEEN;
            }
            store.deliver(message).unwrap();
        }
        let inbox = store
            .with_reader(|r| r.mailbox(id, "INBOX"))
            .unwrap()
            .unwrap();
        store.expunge(inbox.id, &[5]).unwrap();
        let page: Vec<u32> = store
            .with_reader(|r| r.message_page(inbox.id, 1, 2))
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(page, [3, 2], "newest first, the expunged one left out");
        assert_eq!(
            store.with_reader(|r| r.mailbox_counts(inbox.id)).unwrap(),
            (4, 3)
        );
        assert!(
            store
                .with_reader(|r| r.visible_message(inbox.id, 5))
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .with_reader(|r| r.visible_message(inbox.id, 4))
                .unwrap()
                .is_some()
        );
    }
}
