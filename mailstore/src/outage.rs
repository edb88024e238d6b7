//! Per-origin outage state (docs/design.md §3), persisted so it survives
//! restarts. Every change is recorded in `origin_transitions`.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::store::{Store, now};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutageState {
    /// The origin takes mail; Lifeboat only journals.
    Normal,
    /// The origin is down; protected recipients are diverted.
    Outage,
    /// The origin is back; diversion continues until replay has drained the backlog.
    Recovering,
}

impl OutageState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutageState::Normal => "normal",
            OutageState::Outage => "outage",
            OutageState::Recovering => "recovering",
        }
    }

    /// Whether mail for this origin's protected users is diverted.
    pub fn diverts(self) -> bool {
        !matches!(self, OutageState::Normal)
    }
}

impl fmt::Display for OutageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutageState {
    type Err = String;
    fn from_str(s: &str) -> Result<OutageState, String> {
        match s {
            "normal" => Ok(OutageState::Normal),
            "outage" => Ok(OutageState::Outage),
            "recovering" => Ok(OutageState::Recovering),
            _ => Err(format!("unknown outage state `{s}`")),
        }
    }
}

/// An origin's current state. An origin never recorded is `normal` since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginStatus {
    pub origin: String,
    pub state: OutageState,
    /// Seconds since the epoch.
    pub since: i64,
    pub reason: String,
    /// Set by an admin (`lifeboat outage begin`): held until `outage end`.
    pub manual: bool,
}

impl OriginStatus {
    fn initial(origin: &str) -> OriginStatus {
        OriginStatus {
            origin: origin.to_string(),
            state: OutageState::Normal,
            since: 0,
            reason: "never changed".to_string(),
            manual: false,
        }
    }
}

/// A recorded change of state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: OutageState,
    pub to: OriginStatus,
}

impl Store {
    /// Moves `origin` to `state`. Returns the transition, or `None` when it already was
    /// in that state (then nothing is written).
    pub fn set_origin_state(
        &self,
        origin: &str,
        state: OutageState,
        reason: &str,
        manual: bool,
    ) -> Result<Option<Transition>> {
        let (origin, reason) = (origin.to_string(), reason.to_string());
        self.write(move |conn| transition(conn, &origin, state, &reason, manual))
    }

    /// Ends an outage of `origin` (whose users live in `domains`): straight to `normal`
    /// when no copy waits for replay, else `recovering` until replay drains the backlog.
    /// The count and the change share one transaction, so no copy slips between them.
    pub fn end_outage(
        &self,
        origin: &str,
        domains: Vec<String>,
        reason: &str,
    ) -> Result<Option<Transition>> {
        let (origin, reason) = (origin.to_string(), reason.to_string());
        self.write(move |conn| {
            if load(conn, &origin)?.state == OutageState::Normal {
                return Ok(None);
            }
            let waiting = ReplayCounts::load(conn, &domains)?.pending;
            let state = if waiting == 0 {
                OutageState::Normal
            } else {
                OutageState::Recovering
            };
            transition(conn, &origin, state, &reason, false)
        })
    }
}

pub(crate) fn transition(
    conn: &Connection,
    origin: &str,
    state: OutageState,
    reason: &str,
    manual: bool,
) -> Result<Option<Transition>> {
    let current = load(conn, origin)?;
    if current.state == state && current.manual == manual {
        return Ok(None);
    }
    let at = now();
    conn.execute(
        "INSERT INTO origin_state (origin, state, since, reason, manual)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (origin) DO UPDATE SET state = excluded.state,
            since = excluded.since, reason = excluded.reason, manual = excluded.manual",
        params![origin, state.as_str(), at, reason, manual],
    )?;
    conn.execute(
        "INSERT INTO origin_transitions (origin, from_state, to_state, at, reason, manual)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            origin,
            current.state.as_str(),
            state.as_str(),
            at,
            reason,
            manual
        ],
    )?;
    Ok(Some(Transition {
        from: current.state,
        to: OriginStatus {
            origin: origin.to_string(),
            state,
            since: at,
            reason: reason.to_string(),
            manual,
        },
    }))
}

/// The result of an origin's last health probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRecord {
    /// Seconds since the epoch.
    pub at: i64,
    pub ok: bool,
    pub latency_ms: i64,
    /// What the probe saw: the failing step and reply, or the greeting on success.
    pub detail: String,
    /// How many probes in a row gave this result.
    pub streak: i64,
}

impl Store {
    /// Records the result of a health probe of `origin`.
    pub fn record_probe(&self, origin: &str, probe: ProbeRecord) -> Result<()> {
        let origin = origin.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO origin_probes (origin, at, ok, latency_ms, detail, streak)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (origin) DO UPDATE SET at = excluded.at, ok = excluded.ok,
                    latency_ms = excluded.latency_ms, detail = excluded.detail,
                    streak = excluded.streak",
                params![
                    origin,
                    probe.at,
                    probe.ok,
                    probe.latency_ms,
                    probe.detail,
                    probe.streak
                ],
            )?;
            Ok(())
        })
    }

    /// Claims the right to send `recipient` a notice of `kind`: true (and recorded) when
    /// none was sent in the last `min_interval_secs` seconds.
    pub fn claim_notice(
        &self,
        recipient: &str,
        kind: &str,
        min_interval_secs: i64,
    ) -> Result<bool> {
        let (recipient, kind) = (recipient.to_string(), kind.to_string());
        self.write(move |conn| {
            let at = now();
            let changed = conn.execute(
                "INSERT INTO notices (recipient, kind, last_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (recipient, kind) DO UPDATE SET last_at = excluded.last_at
                 WHERE notices.last_at <= ?3 - ?4",
                params![recipient, kind, at, min_interval_secs],
            )?;
            Ok(changed == 1)
        })
    }

    /// Gives back a claim whose notice could not be sent, so the next change may retry.
    pub fn release_notice(&self, recipient: &str, kind: &str) -> Result<()> {
        let (recipient, kind) = (recipient.to_string(), kind.to_string());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM notices WHERE recipient = ?1 AND kind = ?2",
                params![recipient, kind],
            )?;
            Ok(())
        })
    }
}

/// Copies of the users of `domains` still waiting for replay.
pub(crate) fn pending_count(conn: &Connection, domains: &[String]) -> Result<i64> {
    Ok(ReplayCounts::load(conn, domains)?.pending)
}

/// Copies held for the users of some domains, by class and replay state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayCounts {
    pub journal: i64,
    /// Diverted and sent copies not yet delivered to the origin.
    pub pending: i64,
    pub diverted_pending: i64,
    pub sent_pending: i64,
    pub delivered: i64,
    pub rejected: i64,
    /// Arrival time of the oldest pending copy.
    pub oldest_pending: Option<i64>,
}

impl ReplayCounts {
    fn load(conn: &Connection, domains: &[String]) -> Result<ReplayCounts> {
        let mut counts = ReplayCounts::default();
        let mut stmt = conn.prepare_cached(
            "SELECT m.class, l.state, count(*), min(m.internal_date)
             FROM messages m
             JOIN mailboxes b ON b.id = m.mailbox_id
             JOIN users u ON u.id = b.user_id
             LEFT JOIN replay_ledger l ON l.message_row = m.id
             WHERE lower(substr(u.address, instr(u.address, '@') + 1)) = ?1
             GROUP BY m.class, l.state",
        )?;
        for domain in domains {
            let rows = stmt.query_map([domain.to_ascii_lowercase()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?;
            for row in rows {
                let (class, state, count, oldest) = row?;
                match (class.as_str(), state.as_deref()) {
                    ("journal", _) => counts.journal += count,
                    (class, Some("pending")) => {
                        counts.pending += count;
                        if class == "sent" {
                            counts.sent_pending += count;
                        } else {
                            counts.diverted_pending += count;
                        }
                        counts.oldest_pending = match (counts.oldest_pending, oldest) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    (_, Some("delivered")) => counts.delivered += count,
                    (_, Some("rejected")) => counts.rejected += count,
                    _ => {}
                }
            }
        }
        Ok(counts)
    }
}

impl Reader {
    pub fn origin_status(&self, origin: &str) -> Result<OriginStatus> {
        load(self.connection(), origin)
    }

    /// Fallback deliveries seen for `origin`: (count, last time, last detail).
    pub fn deferrals(&self, origin: &str) -> Result<Option<(i64, i64, String)>> {
        Ok(self
            .connection()
            .query_row(
                "SELECT count, last_at, last_detail FROM deferrals WHERE origin = ?1",
                [origin],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    pub fn last_probe(&self, origin: &str) -> Result<Option<ProbeRecord>> {
        Ok(self
            .connection()
            .query_row(
                "SELECT at, ok, latency_ms, detail, streak FROM origin_probes WHERE origin = ?1",
                [origin],
                |r| {
                    Ok(ProbeRecord {
                        at: r.get(0)?,
                        ok: r.get(1)?,
                        latency_ms: r.get(2)?,
                        detail: r.get(3)?,
                        streak: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn replay_counts_for(&self, domains: &[String]) -> Result<ReplayCounts> {
        ReplayCounts::load(self.connection(), domains)
    }
}

fn load(conn: &Connection, origin: &str) -> Result<OriginStatus> {
    // Cached: the milter reads its origin's state for every message.
    let row: Option<(String, i64, String, bool)> = conn
        .prepare_cached("SELECT state, since, reason, manual FROM origin_state WHERE origin = ?1")?
        .query_row([origin], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((state, since, reason, manual)) = row else {
        return Ok(OriginStatus::initial(origin));
    };
    Ok(OriginStatus {
        origin: origin.to_string(),
        state: state.parse().map_err(Error::Refused)?,
        since,
        reason,
        manual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_reopen_and_logs_transitions() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), "h").unwrap();
            assert_eq!(
                store.reader().unwrap().origin_status("main").unwrap().state,
                OutageState::Normal
            );
            let t = store
                .set_origin_state("main", OutageState::Outage, "admin", true)
                .unwrap()
                .unwrap();
            assert_eq!(t.from, OutageState::Normal);
            assert!(
                store
                    .set_origin_state("main", OutageState::Outage, "again", true)
                    .unwrap()
                    .is_none()
            );
        }
        let store = Store::open(dir.path(), "h").unwrap();
        let status = store.reader().unwrap().origin_status("main").unwrap();
        assert_eq!(
            (status.state, status.manual, status.reason.as_str()),
            (OutageState::Outage, true, "admin")
        );
        let logged: i64 = store
            .reader()
            .unwrap()
            .connection()
            .query_row("SELECT count(*) FROM origin_transitions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(logged, 1);
    }

    #[test]
    fn notices_are_claimed_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "h").unwrap();
        assert!(store.claim_notice("a@x.test", "outage", 3600).unwrap());
        assert!(!store.claim_notice("A@x.test", "outage", 3600).unwrap());
        assert!(store.claim_notice("a@x.test", "recovered", 3600).unwrap());
        // An interval of 0 never holds a notice back.
        assert!(store.claim_notice("a@x.test", "outage", 0).unwrap());
        store.release_notice("a@x.test", "recovered").unwrap();
        assert!(store.claim_notice("a@x.test", "recovered", 3600).unwrap());
    }

    #[test]
    fn the_last_probe_is_kept_per_origin() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "h").unwrap();
        assert_eq!(store.reader().unwrap().last_probe("main").unwrap(), None);
        for (ok, streak) in [(true, 1), (false, 1), (false, 2)] {
            let probe = ProbeRecord {
                at: now(),
                ok,
                latency_ms: 3,
                detail: "x".into(),
                streak,
            };
            store.record_probe("main", probe).unwrap();
        }
        let last = store.reader().unwrap().last_probe("main").unwrap().unwrap();
        assert_eq!((last.ok, last.streak), (false, 2));
    }
}
