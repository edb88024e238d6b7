//! The SQLite index: connection settings and versioned schema migrations.
//!
//! `PRAGMA user_version` holds the schema version. Each migration runs once, in its own
//! transaction, in order; a newer index than this binary knows is refused rather than
//! guessed at.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    address         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash   TEXT NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1,
    alternate_email TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TABLE aliases (
    address TEXT PRIMARY KEY COLLATE NOCASE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE
);
CREATE INDEX aliases_by_user ON aliases(user_id);

CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    special_use   TEXT,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    subscribed    INTEGER NOT NULL DEFAULT 1,
    UNIQUE (user_id, name)
);

-- class: journal (Postfix also delivers it), diverted (Lifeboat holds the only copy),
-- sent (sent by the user during continuity), other (anything a client put there).
CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    mailbox_id        INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid               INTEGER NOT NULL,
    basename          TEXT NOT NULL,
    flags             INTEGER NOT NULL DEFAULT 0,
    keywords          TEXT NOT NULL DEFAULT '',
    modseq            INTEGER NOT NULL,
    internal_date     INTEGER NOT NULL,
    size              INTEGER NOT NULL,
    class             TEXT NOT NULL CHECK (class IN ('journal', 'diverted', 'sent', 'other')),
    envelope_from     TEXT,
    envelope_to       TEXT NOT NULL DEFAULT '',
    lifeboat_id       TEXT,
    header_message_id TEXT,
    created_at        INTEGER NOT NULL,
    UNIQUE (mailbox_id, uid),
    UNIQUE (mailbox_id, basename)
);
CREATE INDEX messages_by_lifeboat_id ON messages(lifeboat_id) WHERE lifeboat_id IS NOT NULL;

-- One row per copy that must go back to the origin (diverted and sent copies). No
-- cascade from messages: deleting a message that still has a ledger row fails, so
-- nothing removes a copy the origin has not received.
CREATE TABLE replay_ledger (
    message_row     INTEGER PRIMARY KEY REFERENCES messages(id),
    replay_id       TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'rejected')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_response   TEXT,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX replay_pending ON replay_ledger(state) WHERE state = 'pending';

CREATE TABLE origin_state (
    origin TEXT PRIMARY KEY,
    state  TEXT NOT NULL CHECK (state IN ('normal', 'outage', 'recovering')),
    since  INTEGER NOT NULL,
    reason TEXT NOT NULL,
    manual INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE origin_transitions (
    id         INTEGER PRIMARY KEY,
    origin     TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    manual     INTEGER NOT NULL
);
"#,
    r#"
-- Delivery attempts Postfix made to the fallback listener: the origin deferred or refused.
CREATE TABLE deferrals (
    origin      TEXT PRIMARY KEY,
    count       INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    last_detail TEXT NOT NULL
);
"#,
    r#"
-- The last health probe of each origin and the run of equal results it ends, for
-- `lifeboat status` (the watch itself keeps its counters in memory).
CREATE TABLE origin_probes (
    origin      TEXT PRIMARY KEY,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    latency_ms  INTEGER NOT NULL,
    detail      TEXT NOT NULL,
    streak      INTEGER NOT NULL
);

-- When each recipient last got a notice of each kind, so notices are rate-limited
-- across restarts.
CREATE TABLE notices (
    recipient TEXT NOT NULL COLLATE NOCASE,
    kind      TEXT NOT NULL,
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (recipient, kind)
);
"#,
    r#"
-- A copy the user deleted (POP3 DELE + QUIT, IMAP EXPUNGE) that must still go back to
-- the origin: hidden from every user-facing view, kept (file and row) until replay has
-- delivered it. See Store::expunge.
ALTER TABLE messages ADD COLUMN expunged_at INTEGER;
"#,
    r#"
-- SHA-256 of the message body as stored (hex): a copy with the same X-Lifeboat-ID is
-- "this message" only if its body matches too (capture.rs). NULL for older rows.
ALTER TABLE messages ADD COLUMN body_digest TEXT;
-- Postfix's queue id of the message the milter copied: a rejection Postfix logs after
-- the milter answered (a later milter) names it, and cancels the copy.
ALTER TABLE messages ADD COLUMN queue_id TEXT;
CREATE INDEX messages_by_queue_id ON messages(queue_id) WHERE queue_id IS NOT NULL;
"#,
    r#"
-- The web portal's logins. The session id and the reset token travel only in the
-- user's browser (cookie) or mail (link); the index keeps their SHA-256, so a copy of
-- the index lets nobody in. user_password_hash is the user's password hash as it was at
-- login: a new password (or a disabled user) ends the session, as it ends IMAP ones.
CREATE TABLE web_sessions (
    id_hash            TEXT PRIMARY KEY,
    user_id            INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_password_hash TEXT NOT NULL,
    csrf_token         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions(user_id);

CREATE TABLE web_password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- The portal pages a mailbox newest first and counts what is unread without reading
-- every row: only visible messages are in these indexes.
CREATE INDEX messages_visible ON messages(mailbox_id, uid) WHERE expunged_at IS NULL;
CREATE INDEX messages_visible_unseen ON messages(mailbox_id)
    WHERE expunged_at IS NULL AND (flags & 1) = 0;
"#,
    r#"
-- Where a user comes from: added by hand or CSV (`local`, left alone by directory sync)
-- or by `lifeboat directory sync` (`directory`, with the entry's DN). A directory user
-- gone from the directory is disabled, never deleted.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'
    CHECK (source IN ('local', 'directory'));
ALTER TABLE users ADD COLUMN directory_dn TEXT;
-- The argon2id verifier of the password the directory or origin IMAP server last
-- accepted, and when: what lets the user in while that source cannot be reached.
ALTER TABLE users ADD COLUMN cached_verifier TEXT;
ALTER TABLE users ADD COLUMN cached_at INTEGER;
ALTER TABLE users ADD COLUMN last_login_at INTEGER;

-- One row per directory sync (by hand or inside serve), for `lifeboat status`.
CREATE TABLE directory_syncs (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    changed     INTEGER NOT NULL,
    disabled    INTEGER NOT NULL,
    skipped     INTEGER NOT NULL,
    error       TEXT
);
"#,
    r#"
-- IMAP \Recent (RFC 3501 §2.3.2), as Dovecot keeps it: messages from UID
-- first_recent_uid up are recent for the next read-write session to see them, which
-- claims them by raising it (Store::claim_recent). Messages stored before this version
-- are not new to anyone.
ALTER TABLE mailboxes ADD COLUMN first_recent_uid INTEGER NOT NULL DEFAULT 1;
UPDATE mailboxes SET first_recent_uid = uidnext;
"#,
    r#"
-- IMAP QRESYNC (RFC 7162 §3.2): which UIDs left a mailbox after which modseq. One
-- tombstone per UID expunged (removed or hidden), written in the transaction that takes
-- the message away, with the modseq that change gave the mailbox. Expiry keeps only the
-- newest tombstones of a mailbox and raises tombstones_since to the highest modseq it
-- dropped: every expunge above tombstones_since has its tombstone, and a client asking
-- about an older modseq is told of every UID it names that is gone
-- (Reader::expunged_since). Nothing recorded the expunges before this version.
CREATE TABLE expunged_uids (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_uids_by_modseq ON expunged_uids(mailbox_id, modseq);
ALTER TABLE mailboxes ADD COLUMN tombstones_since INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET tombstones_since = highestmodseq;
"#,
];

pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // FULL: in WAL mode, NORMAL may lose the last commits on power loss, and a commit
    // is what tells Postfix the message is safe.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}

/// Opens the index for writing, creating it and applying migrations as needed.
pub fn open_writer(path: &Path) -> Result<Connection> {
    make_private(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Refused(format!(
            "{}: SQLite refused WAL mode (got {mode})",
            path.display()
        )));
    }
    configure(&conn)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// The index holds password hashes. SQLite creates its files with 0644 less the umask
/// (and its `-wal` and `-shm` files with the index's mode), so the index is created
/// here, empty and owner-only, before SQLite opens it; one made by an older version
/// loses its group and other permissions.
fn make_private(path: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        context: format!("creating {}", path.display()),
        source: e,
    };
    crate::private::open_file(path).map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        crate::private::restrict(Path::new(&name)).map_err(io)?;
    }
    Ok(())
}

/// Opens a read-only connection; WAL lets it read while the writer commits.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Each step reads the version inside an immediate (write-locked) transaction, so two
/// processes opening a new store at once (`serve` and `lifeboat status`) do not both
/// apply the same migration.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > CURRENT_VERSION {
            return Err(Error::Refused(format!(
                "{}: index schema version {version} is newer than this lifeboat understands ({CURRENT_VERSION})",
                path.display()
            )));
        }
        let Some(sql) = MIGRATIONS.get(version as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!(path = %path.display(), version = version + 1, "index schema migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        drop(open_writer(&path).unwrap());
        let conn = open_writer(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, CURRENT_VERSION);
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = open_writer(&path).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn mail_stored_before_recent_was_tracked_is_not_recent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..7] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 7;
             INSERT INTO users (id, address, password_hash, created_at) VALUES (1, 'a@x', '', 0);
             INSERT INTO mailboxes (user_id, name, uidvalidity, uidnext) VALUES (1, 'INBOX', 1, 7);",
        )
        .unwrap();
        drop(conn);
        let conn = open_writer(&path).unwrap();
        let first: i64 = conn
            .query_row("SELECT first_recent_uid FROM mailboxes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(first, 7);
    }

    #[test]
    fn expunges_before_tombstones_were_kept_are_not_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite");
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..8] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 8;
             INSERT INTO users (id, address, password_hash, created_at) VALUES (1, 'a@x', '', 0);
             INSERT INTO mailboxes (id, user_id, name, uidvalidity, uidnext, highestmodseq)
                 VALUES (1, 1, 'INBOX', 1, 7, 12);",
        )
        .unwrap();
        drop(conn);
        let conn = open_writer(&path).unwrap();
        let since: i64 = conn
            .query_row("SELECT tombstones_since FROM mailboxes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(since, 12);
        // Tombstones go with their mailbox.
        conn.execute_batch(
            "INSERT INTO expunged_uids (mailbox_id, uid, modseq) VALUES (1, 3, 13);
             INSERT INTO mailboxes (user_id, name, uidvalidity) VALUES (1, 'Archive', 2);",
        )
        .unwrap();
        let fresh: i64 = conn
            .query_row(
                "SELECT tombstones_since FROM mailboxes WHERE name = 'Archive'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(fresh, 0, "a new mailbox has had no expunges");
        conn.execute("DELETE FROM mailboxes WHERE id = 1", [])
            .unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM expunged_uids", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
