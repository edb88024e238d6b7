//! Read-only views of the index. Each `Reader` has its own WAL connection, so readers see
//! a consistent snapshot per query and never wait for the writer.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::address::Address;
use crate::class::Class;
use crate::error::{Error, Result};
use crate::folder::canonical_folder;
use crate::maildir::Flags;
use crate::schema;

pub struct Reader {
    conn: Connection,
}

/// A protected user as the index knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub address: Address,
    pub password_hash: String,
    pub active: bool,
    pub alternate_email: Option<String>,
    pub aliases: Vec<String>,
    pub source: UserSource,
    /// The directory entry a `directory` user was synced from.
    pub directory_dn: Option<String>,
    /// The password the directory or origin IMAP server last accepted, as an argon2id
    /// verifier, and when (see `lifeboat_servers::auth`).
    pub cached_verifier: Option<String>,
    pub cached_at: Option<i64>,
    pub last_login_at: Option<i64>,
}

/// A user's facts that decide whether they could log in during an outage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginFacts {
    pub active: bool,
    pub source: UserSource,
    /// When the cached password was stored, if there is one.
    pub cached_at: Option<i64>,
    pub password_hash: String,
}

impl UserRecord {
    pub fn login_facts(&self) -> LoginFacts {
        LoginFacts {
            active: self.active,
            source: self.source,
            cached_at: self.cached_at.filter(|_| self.cached_verifier.is_some()),
            password_hash: self.password_hash.clone(),
        }
    }
}

/// Where a user comes from, and so who may change them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserSource {
    /// Added by hand or CSV import: directory sync leaves them alone.
    Local,
    /// Created and kept up to date by directory sync.
    Directory,
}

impl UserSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UserSource::Local => "local",
            UserSource::Directory => "directory",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<UserSource> {
        match text {
            "local" => Ok(UserSource::Local),
            "directory" => Ok(UserSource::Directory),
            other => Err(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("unknown user source `{other}`").into(),
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxRecord {
    pub id: i64,
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: i64,
    pub subscribed: bool,
    /// Messages from this UID up are `\Recent` for the next read-write IMAP session to
    /// see them, which claims them ([`Store::claim_recent`](crate::Store::claim_recent)).
    pub first_recent_uid: u32,
}

/// A mailbox's counts as IMAP's STATUS reports them ([`Reader::mailbox_status`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u64,
    pub unseen: u64,
    pub deleted: u64,
    pub recent: u64,
    pub size: u64,
}

/// A mailbox together with the user it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRef {
    pub mailbox_id: i64,
    pub owner: Address,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub row: i64,
    pub uid: u32,
    pub basename: String,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub modseq: i64,
    pub internal_date: i64,
    pub size: u64,
    pub class: Class,
    pub envelope_from: Option<String>,
    pub envelope_to: Vec<String>,
    pub lifeboat_id: Option<String>,
    pub replay_state: Option<String>,
    /// The user deleted it, but it waits for replay: hidden from users, kept on disk.
    pub expunged: bool,
}

impl Reader {
    pub(crate) fn open(index_path: &Path) -> Result<Reader> {
        Ok(Reader {
            conn: schema::open_reader(index_path)?,
        })
    }

    /// Runs `f` in one read transaction: every query in it sees the index as of one
    /// moment (a mailbox row and its messages that agree), whatever commits meanwhile.
    pub fn snapshot<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        let transaction = self.conn.unchecked_transaction()?;
        let result = f(self)?;
        transaction.finish()?;
        Ok(result)
    }

    /// The underlying connection, for modules that run their own queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The user owning `address`, as their own address or as an alias.
    pub fn resolve(&self, address: &str) -> Result<Option<UserRecord>> {
        // Cached statements: the milter resolves every recipient of every message.
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM users WHERE address = ?1
                 UNION ALL SELECT user_id FROM aliases WHERE address = ?1 LIMIT 1",
            )?
            .query_row([address], |r| r.get(0))
            .optional()?;
        match id {
            Some(id) => self.user_by_id(id).map(Some),
            None => Ok(None),
        }
    }

    /// The user whose own address is `address` (aliases do not match).
    pub fn user(&self, address: &str) -> Result<Option<UserRecord>> {
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM users WHERE address = ?1", [address], |r| {
                r.get(0)
            })
            .optional()?;
        match id {
            Some(id) => self.user_by_id(id).map(Some),
            None => Ok(None),
        }
    }

    pub fn users(&self) -> Result<Vec<UserRecord>> {
        let ids: Vec<i64> = self
            .conn
            .prepare("SELECT id FROM users ORDER BY address")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ids.into_iter().map(|id| self.user_by_id(id)).collect()
    }

    fn user_by_id(&self, id: i64) -> Result<UserRecord> {
        let mut record = self
            .conn
            .prepare_cached(
                "SELECT address, password_hash, active, alternate_email, source, directory_dn,
                        cached_verifier, cached_at, last_login_at
                 FROM users WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let address: String = r.get(0)?;
                Ok(UserRecord {
                    id,
                    address: Address::parse(&address).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            format!("index holds a bad address: {e}").into(),
                        )
                    })?,
                    password_hash: r.get(1)?,
                    active: r.get(2)?,
                    alternate_email: r.get(3)?,
                    aliases: Vec::new(),
                    source: UserSource::parse(&r.get::<_, String>(4)?)?,
                    directory_dn: r.get(5)?,
                    cached_verifier: r.get(6)?,
                    cached_at: r.get(7)?,
                    last_login_at: r.get(8)?,
                })
            })?;
        record.aliases = self
            .conn
            .prepare_cached("SELECT address FROM aliases WHERE user_id = ?1 ORDER BY address")?
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(record)
    }

    /// What the readiness count needs of every user, in one query (metrics read it at
    /// every scrape, and a directory may bring tens of thousands of users).
    pub fn login_facts(&self) -> Result<Vec<LoginFacts>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT active, source, cached_verifier IS NOT NULL AND cached_at IS NOT NULL,
                    cached_at, password_hash
             FROM users",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(LoginFacts {
                active: r.get(0)?,
                source: UserSource::parse(&r.get::<_, String>(1)?)?,
                cached_at: if r.get::<_, bool>(2)? {
                    r.get(3)?
                } else {
                    None
                },
                password_hash: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the oldest copy a user can read arrived (internal date), for the readiness
    /// report's "days of history held"; `None` for an empty mailbox.
    pub fn oldest_visible_copy(&self, user_id: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT min(m.internal_date) FROM messages m
                 JOIN mailboxes b ON b.id = m.mailbox_id
                 WHERE b.user_id = ?1 AND m.expunged_at IS NULL",
            )?
            .query_row([user_id], |r| r.get(0))?)
    }

    pub fn mailboxes(&self, user_id: i64) -> Result<Vec<MailboxRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed,
                    first_recent_uid
             FROM mailboxes WHERE user_id = ?1 ORDER BY name = 'INBOX' DESC, name",
        )?;
        let rows = stmt.query_map([user_id], mailbox_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mailbox(&self, user_id: i64, name: &str) -> Result<Option<MailboxRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed,
                    first_recent_uid
                 FROM mailboxes WHERE user_id = ?1 AND name = ?2",
                params![user_id, canonical_folder(name)],
                mailbox_from_row,
            )
            .optional()?)
    }

    /// The user's mailbox with this RFC 6154 attribute (`\\Sent`, ...).
    pub fn special_use_mailbox(
        &self,
        user_id: i64,
        special_use: &str,
    ) -> Result<Option<MailboxRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed,
                    first_recent_uid
                 FROM mailboxes WHERE user_id = ?1 AND special_use = ?2",
                params![user_id, special_use],
                mailbox_from_row,
            )
            .optional()?)
    }

    /// Whether the mailbox holds a sent copy (hidden or not) with this Message-ID: a
    /// message sent during continuity is recorded for replay once.
    pub fn has_sent_copy(&self, mailbox_id: i64, message_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM messages WHERE mailbox_id = ?1 AND class = 'sent'
                 AND header_message_id = ?2",
                params![mailbox_id, message_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Cached: every IMAP command with a mailbox selected reads its row to see whether
    /// anything changed.
    pub fn mailbox_by_id(&self, mailbox_id: i64) -> Result<Option<MailboxRecord>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, name, special_use, uidvalidity, uidnext, highestmodseq, subscribed,
                    first_recent_uid
                 FROM mailboxes WHERE id = ?1",
            )?
            .query_row([mailbox_id], mailbox_from_row)
            .optional()?)
    }

    /// Every mailbox of every user.
    pub fn all_folders(&self) -> Result<Vec<FolderRef>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.id, u.address, m.name FROM mailboxes m JOIN users u ON u.id = m.user_id
             ORDER BY u.address, m.name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(mailbox_id, owner, name)| {
                Ok(FolderRef {
                    mailbox_id,
                    owner: parse_stored_address(&owner)?,
                    name,
                })
            })
            .collect()
    }

    /// Every message row of a mailbox in UID order, including copies the user expunged
    /// that still wait for replay (see [`MessageRecord::expunged`]). For the store's own
    /// bookkeeping (check, replay); user-facing servers use [`Reader::visible_messages`].
    pub fn messages(&self, mailbox_id: i64) -> Result<Vec<MessageRecord>> {
        self.query_messages(mailbox_id, "")
    }

    /// The messages a user sees in a mailbox, in UID order.
    pub fn visible_messages(&self, mailbox_id: i64) -> Result<Vec<MessageRecord>> {
        self.query_messages(mailbox_id, "AND m.expunged_at IS NULL")
    }

    /// The UIDs expunged from a mailbox after modseq `since`, ascending, from their
    /// tombstones (see `Store::expunge`); `None` when expiry has dropped some of those
    /// tombstones, so the store cannot tell exactly: RFC 7162 §3.2.6 then has the
    /// server report every UID asked about that is not in the mailbox.
    pub fn expunged_since(&self, mailbox_id: i64, since: i64) -> Result<Option<Vec<u32>>> {
        let kept_above: Option<i64> = self
            .conn
            .prepare_cached("SELECT tombstones_since FROM mailboxes WHERE id = ?1")?
            .query_row([mailbox_id], |r| r.get(0))
            .optional()?;
        match kept_above {
            Some(kept_above) if since >= kept_above => {}
            _ => return Ok(None),
        }
        let uids = self
            .conn
            .prepare_cached(
                "SELECT uid FROM expunged_uids WHERE mailbox_id = ?1 AND modseq > ?2
                 ORDER BY uid",
            )?
            .query_map(params![mailbox_id, since], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(uids))
    }

    fn query_messages(&self, mailbox_id: i64, filter: &str) -> Result<Vec<MessageRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT m.id, m.uid, m.basename, m.flags, m.keywords, m.modseq, m.internal_date,
                    m.size, m.class, m.envelope_from, m.envelope_to, m.lifeboat_id, l.state,
                    m.expunged_at IS NOT NULL
             FROM messages m LEFT JOIN replay_ledger l ON l.message_row = m.id
             WHERE m.mailbox_id = ?1 {filter} ORDER BY m.uid"
        ))?;
        let rows = stmt.query_map([mailbox_id], message_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The flags the index has for message `row` now; `None` when it is gone.
    pub fn message_flags(&self, row: i64) -> Result<Option<Flags>> {
        Ok(self
            .conn
            .prepare_cached("SELECT flags FROM messages WHERE id = ?1")?
            .query_row([row], |r| r.get(0).map(Flags::from_bits))
            .optional()?)
    }

    /// One page of a mailbox's visible messages, newest (highest UID) first: what the
    /// web portal lists. Walks the `messages_visible` index, so a page of a 100 000
    /// message mailbox costs its own rows, not the mailbox's.
    pub fn message_page(
        &self,
        mailbox_id: i64,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<MessageRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.id, m.uid, m.basename, m.flags, m.keywords, m.modseq, m.internal_date,
                    m.size, m.class, m.envelope_from, m.envelope_to, m.lifeboat_id, l.state,
                    m.expunged_at IS NOT NULL
             FROM messages m INDEXED BY messages_visible
             LEFT JOIN replay_ledger l ON l.message_row = m.id
             WHERE m.mailbox_id = ?1 AND m.expunged_at IS NULL
             ORDER BY m.uid DESC LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(
            params![mailbox_id, limit as i64, offset as i64],
            message_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Visible messages in a mailbox and how many of them are not `\Seen`.
    pub fn mailbox_counts(&self, mailbox_id: i64) -> Result<(u64, u64)> {
        let total: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages INDEXED BY messages_visible
                 WHERE mailbox_id = ?1 AND expunged_at IS NULL",
            )?
            .query_row([mailbox_id], |r| r.get(0))?;
        let unseen: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages INDEXED BY messages_visible_unseen
                 WHERE mailbox_id = ?1 AND expunged_at IS NULL AND (flags & 1) = 0",
            )?
            .query_row([mailbox_id], |r| r.get(0))?;
        Ok((total as u64, unseen as u64))
    }

    /// What IMAP's STATUS tells of a mailbox, counted by SQLite in one pass over the
    /// mailbox's entries in the `messages_visible` index (no message record is built, no
    /// file is read): LIST-STATUS asks it of every mailbox at once. `recent`: messages
    /// no read-write session has claimed as `\Recent` yet (from `first_recent_uid` on);
    /// `size`: their octets, as RFC822.SIZE counts them (RFC 8438's STATUS SIZE).
    pub fn mailbox_status(&self, mailbox: &MailboxRecord) -> Result<MailboxStatus> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum(size), 0), coalesce(sum((flags & ?2) = 0), 0),
                        coalesce(sum((flags & ?3) != 0), 0), coalesce(sum(uid >= ?4), 0)
                 FROM messages INDEXED BY messages_visible
                 WHERE mailbox_id = ?1 AND expunged_at IS NULL",
            )?
            .query_row(
                params![
                    mailbox.id,
                    Flags::SEEN.bits(),
                    Flags::DELETED.bits(),
                    mailbox.first_recent_uid
                ],
                |r| {
                    let count = |i| r.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
                    Ok(MailboxStatus {
                        messages: count(0)?,
                        size: count(1)?,
                        unseen: count(2)?,
                        deleted: count(3)?,
                        recent: count(4)?,
                    })
                },
            )?)
    }

    /// The visible message with this UID in this mailbox, if any.
    pub fn visible_message(&self, mailbox_id: i64, uid: u32) -> Result<Option<MessageRecord>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT m.id, m.uid, m.basename, m.flags, m.keywords, m.modseq, m.internal_date,
                        m.size, m.class, m.envelope_from, m.envelope_to, m.lifeboat_id, l.state,
                        m.expunged_at IS NOT NULL
                 FROM messages m LEFT JOIN replay_ledger l ON l.message_row = m.id
                 WHERE m.mailbox_id = ?1 AND m.uid = ?2 AND m.expunged_at IS NULL",
            )?
            .query_row(params![mailbox_id, uid], message_from_row)
            .optional()?)
    }

    /// The user with this row id (e.g. from a web session or a reset token).
    pub fn user_with_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let exists = self
            .conn
            .query_row("SELECT 1 FROM users WHERE id = ?1", [id], |_| Ok(()))
            .optional()?;
        match exists {
            Some(()) => self.user_by_id(id).map(Some),
            None => Ok(None),
        }
    }

    pub fn has_basename(&self, mailbox_id: i64, basename: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM messages WHERE mailbox_id = ?1 AND basename = ?2",
                params![mailbox_id, basename],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

fn mailbox_from_row(r: &Row<'_>) -> rusqlite::Result<MailboxRecord> {
    Ok(MailboxRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        special_use: r.get(2)?,
        uidvalidity: r.get(3)?,
        uidnext: r.get(4)?,
        highest_modseq: r.get(5)?,
        subscribed: r.get(6)?,
        first_recent_uid: r.get(7)?,
    })
}

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<MessageRecord> {
    let keywords: String = r.get(4)?;
    let class: String = r.get(8)?;
    let envelope_to: String = r.get(10)?;
    Ok(MessageRecord {
        row: r.get(0)?,
        uid: r.get(1)?,
        basename: r.get(2)?,
        flags: Flags::from_bits(r.get(3)?),
        keywords: keywords.split_whitespace().map(str::to_string).collect(),
        modseq: r.get(5)?,
        internal_date: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
        class: class.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
        })?,
        envelope_from: r.get(9)?,
        envelope_to: envelope_to.lines().map(str::to_string).collect(),
        lifeboat_id: r.get(11)?,
        replay_state: r.get(12)?,
        expunged: r.get(13)?,
    })
}

fn parse_stored_address(address: &str) -> Result<Address> {
    Address::parse(address).map_err(|e| Error::Refused(format!("index holds a bad address: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::{Class, Flags, NewMessage};

    #[test]
    fn a_snapshot_sees_the_index_as_of_one_moment() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let deliver = || {
            let content = b"Subject: x\r\n\r\nbody\r\n".to_vec();
            store
                .deliver(NewMessage::new(
                    owner.clone(),
                    "INBOX",
                    content,
                    Class::Other,
                ))
                .unwrap()
        };
        let (uidnext, listed) = reader
            .snapshot(|r| {
                let inbox = r.mailbox(user.id, "INBOX")?.unwrap();
                // A commit between the two reads (SELECT read them apart) is not seen.
                deliver();
                Ok((inbox.uidnext, r.visible_messages(inbox.id)?.len()))
            })
            .unwrap();
        assert_eq!((uidnext, listed), (1, 0));
        let inbox = reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        assert_eq!(inbox.uidnext, 2);
        assert_eq!(reader.visible_messages(inbox.id).unwrap().len(), 1);
    }

    #[test]
    fn mailbox_status_counts_the_visible_messages_as_their_records_do() {
        let (_dir, store, owner) = crate::testing::store_with_user("a@x.test");
        let reader = store.reader().unwrap();
        let user = reader.user("a@x.test").unwrap().unwrap();
        let inbox = || reader.mailbox(user.id, "INBOX").unwrap().unwrap();
        assert_eq!(
            reader.mailbox_status(&inbox()).unwrap(),
            super::MailboxStatus::default()
        );
        for (n, flags) in [Flags::SEEN, Flags::DELETED, Flags::default(), Flags::SEEN]
            .into_iter()
            .enumerate()
        {
            let content = format!("Subject: {n}\r\n\r\n{}\r\n", "x".repeat(n * 100));
            let mut message = NewMessage::new(owner.clone(), "INBOX", content.into(), Class::Other);
            message.flags = flags;
            store.deliver(message).unwrap();
        }
        store.claim_recent(inbox().id, 3).unwrap();
        store.expunge(inbox().id, &[4]).unwrap();
        let visible = reader.visible_messages(inbox().id).unwrap();
        assert_eq!(visible.len(), 3);
        assert_eq!(
            reader.mailbox_status(&inbox()).unwrap(),
            super::MailboxStatus {
                messages: 3,
                unseen: 2,
                deleted: 1,
                recent: 1,
                size: visible.iter().map(|m| m.size).sum(),
            }
        );
    }
}
