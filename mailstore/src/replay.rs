//! The replay ledger as `lifeboat replay` sees it: which copies still have to go back to
//! their origin, in arrival order, and recording each delivery's outcome before the
//! next one is tried (docs/design.md §4.4).

use rusqlite::{OptionalExtension, params};

use crate::address::Address;
use crate::class::Class;
use crate::error::{Error, Result};
use crate::maildir::Flags;
use crate::outage::{OutageState, Transition};
use crate::reader::Reader;
use crate::store::{Store, now};

/// One copy waiting for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCopy {
    pub row: i64,
    /// Stable across attempts: the origin side can recognise a repeat.
    pub replay_id: String,
    pub owner: Address,
    pub folder: String,
    pub basename: String,
    pub flags: Flags,
    pub class: Class,
    /// The original envelope sender (empty for `<>`).
    pub envelope_from: String,
    /// The original envelope recipients (before alias resolution).
    pub envelope_to: Vec<String>,
    pub attempts: i64,
    /// Not to be tried before this time (backoff after a 4xx), seconds since the epoch.
    pub not_before: Option<i64>,
}

impl PendingCopy {
    /// Whom the origin must deliver it to: the original recipients for a diverted copy,
    /// the sender's own mailbox for a sent copy.
    pub fn recipients(&self) -> Vec<String> {
        if self.class == Class::Sent || self.envelope_to.is_empty() {
            vec![self.owner.to_string()]
        } else {
            self.envelope_to.clone()
        }
    }
}

/// How one replay attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The origin took it (its answer).
    Delivered(String),
    /// Try again after `retry_at` (a 4xx or a broken connection).
    Deferred { response: String, retry_at: i64 },
    /// The origin refused it for good (5xx): kept and shown, an admin decides.
    Rejected(String),
}

impl Reader {
    /// Copies of the users of `domains` whose replay is pending, per user in arrival
    /// order (users in address order).
    pub fn replay_queue(&self, domains: &[String]) -> Result<Vec<PendingCopy>> {
        let mut stmt = self.connection().prepare_cached(
            "SELECT m.id, l.replay_id, u.address, b.name, m.basename, m.flags, m.class,
                    m.envelope_from, m.envelope_to, l.attempts, l.next_attempt_at
             FROM replay_ledger l
             JOIN messages m ON m.id = l.message_row
             JOIN mailboxes b ON b.id = m.mailbox_id
             JOIN users u ON u.id = b.user_id
             WHERE l.state = 'pending'
               AND lower(substr(u.address, instr(u.address, '@') + 1)) = ?1
             ORDER BY u.address, m.id",
        )?;
        let mut queue = Vec::new();
        for domain in domains {
            let rows = stmt.query_map([domain.to_ascii_lowercase()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, u8>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                ))
            })?;
            for row in rows {
                let (
                    row,
                    replay_id,
                    owner,
                    folder,
                    basename,
                    flags,
                    class,
                    from,
                    to,
                    attempts,
                    not_before,
                ) = row?;
                queue.push(PendingCopy {
                    row,
                    replay_id,
                    owner: Address::parse(&owner)
                        .map_err(|e| Error::Refused(format!("index holds a bad address: {e}")))?,
                    folder,
                    basename,
                    flags: Flags::from_bits(flags),
                    class: class.parse().map_err(Error::Refused)?,
                    envelope_from: from.unwrap_or_default(),
                    envelope_to: to.lines().map(str::to_string).collect(),
                    attempts,
                    not_before,
                });
            }
        }
        Ok(queue)
    }
}

impl Store {
    /// Records the outcome of one replay attempt (committed before the caller moves on).
    pub fn record_replay(&self, row: i64, outcome: ReplayOutcome) -> Result<()> {
        self.write(move |conn| {
            let (state, response, next): (&str, String, Option<i64>) = match outcome {
                ReplayOutcome::Delivered(r) => ("delivered", r, None),
                ReplayOutcome::Deferred { response, retry_at } => {
                    ("pending", response, Some(retry_at))
                }
                ReplayOutcome::Rejected(r) => ("rejected", r, None),
            };
            let changed = conn.execute(
                "UPDATE replay_ledger SET state = ?2, last_response = ?3, next_attempt_at = ?4,
                        attempts = attempts + 1, updated_at = ?5
                 WHERE message_row = ?1 AND state = 'pending'",
                params![row, state, response, next, now()],
            )?;
            if changed == 0 {
                return Err(Error::Refused(format!(
                    "replay ledger row {row} is no longer pending"
                )));
            }
            Ok(())
        })
    }

    /// `recovering` → `normal` once nothing of `domains` waits for replay; the count and
    /// the change share one transaction, so no copy stored meanwhile slips through.
    pub fn finish_recovery(
        &self,
        origin: &str,
        domains: Vec<String>,
        reason: &str,
    ) -> Result<Option<Transition>> {
        let (origin, reason) = (origin.to_string(), reason.to_string());
        self.write(move |conn| {
            let state: Option<String> = conn
                .query_row(
                    "SELECT state FROM origin_state WHERE origin = ?1",
                    [&origin],
                    |r| r.get(0),
                )
                .optional()?;
            if state.as_deref() != Some(OutageState::Recovering.as_str()) {
                return Ok(None);
            }
            let pending = crate::outage::pending_count(conn, &domains)?;
            if pending > 0 {
                return Ok(None);
            }
            crate::outage::transition(conn, &origin, OutageState::Normal, &reason, false)
        })
    }
}

/// The bytes to hand the origin: the stored copy without the trace block Lifeboat put in
/// front of it.
pub fn replay_content(stored: &[u8]) -> &[u8] {
    crate::trace::strip(stored)
}
