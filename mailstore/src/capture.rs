//! What happens to each recipient of inbound mail: shared by the milter and the fallback
//! listener, so both capture paths decide the same way (docs/design.md §5).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::address::{Address, normalise_domain};
use crate::class::Class;
use crate::deliver::{NewMessage, Stored, add_to_ledger, body_digest, stored_form};
use crate::error::{Result, refused};
use crate::maildir::{FileName, StagedFile};
use crate::store::{Store, now};

/// Which origin owns which domains (from the configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    origin_of_domain: HashMap<String, String>,
}

impl Routes {
    /// `origins`: (origin name, its domains).
    pub fn new<'a>(origins: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Routes {
        let mut origin_of_domain = HashMap::new();
        for (name, domains) in origins {
            for domain in domains {
                let domain =
                    normalise_domain(domain).unwrap_or_else(|_| domain.to_ascii_lowercase());
                origin_of_domain.insert(domain, name.to_string());
            }
        }
        Routes { origin_of_domain }
    }

    pub fn origin_of(&self, domain: &str) -> Option<&str> {
        self.origin_of_domain
            .get(&domain.trim_end_matches('.').to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// The decision for one envelope recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Not a domain of any origin: none of Lifeboat's business.
    OtherDomain,
    /// A protected domain, but no user or alias has this address.
    Unprotected { origin: String },
    /// The user exists but is disabled: left with Postfix, no copy.
    Inactive { origin: String, owner: Address },
    /// Stored for `owner`: a journal copy, or a diverted one while the origin is down.
    Capture {
        origin: String,
        owner: Address,
        divert: bool,
    },
}

impl Fate {
    pub fn as_str(&self) -> &'static str {
        match self {
            Fate::OtherDomain => "other-domain",
            Fate::Unprotected { .. } => "unprotected",
            Fate::Inactive { .. } => "inactive",
            Fate::Capture { divert: false, .. } => "journal",
            Fate::Capture { divert: true, .. } => "divert",
        }
    }
}

/// One copy to store: for one user, standing for one or more original recipients
/// (a message sent to two aliases of one user is stored once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedCopy {
    pub owner: Address,
    pub origin: String,
    pub class: Class,
    /// Indexes into the recipient list the plan was made from.
    pub recipients: Vec<usize>,
}

impl Store {
    /// Decides the fate of each recipient, reading users, aliases and origin states in
    /// one snapshot.
    pub fn classify(&self, routes: &Routes, recipients: &[Address]) -> Result<Vec<Fate>> {
        self.with_reader(|reader| {
            let mut states: HashMap<String, bool> = HashMap::new();
            recipients
                .iter()
                .map(|rcpt| {
                    let Some(origin) = routes.origin_of(rcpt.domain()) else {
                        return Ok(Fate::OtherDomain);
                    };
                    let origin = origin.to_string();
                    let Some(user) = reader.resolve(rcpt.as_str())? else {
                        return Ok(Fate::Unprotected { origin });
                    };
                    if !user.active {
                        return Ok(Fate::Inactive {
                            origin,
                            owner: user.address,
                        });
                    }
                    let divert = match states.get(&origin) {
                        Some(divert) => *divert,
                        None => {
                            let divert = reader.origin_status(&origin)?.state.diverts();
                            states.insert(origin.clone(), divert);
                            divert
                        }
                    };
                    Ok(Fate::Capture {
                        origin,
                        owner: user.address,
                        divert,
                    })
                })
                .collect()
        })
    }

    /// Delivers a diverted copy from the fallback listener, at most once per user and
    /// message: if the milter already stored a journal copy of this message, that copy
    /// becomes the diverted one (same UID); if a diverted copy exists (Postfix retrying
    /// after a lost reply), nothing new is stored. "This message" means the same
    /// verified `X-Lifeboat-ID` *and* the same body: a copy is never taken for one
    /// already stored unless its bytes match, so no message is dropped for carrying
    /// another's id.
    pub fn deliver_diverted(&self, message: NewMessage) -> Result<DivertOutcome> {
        self.require_delivery_lock()?;
        let Some(lifeboat_id) = message.lifeboat_id.clone() else {
            return Ok(DivertOutcome::Stored(self.deliver(message)?));
        };
        let digest = body_digest(&message.content);
        // The milter writes journal copies in the background, so one may land between
        // the lookup and the insert: `deliver_once` then stores nothing and the next
        // lookup finds the journal copy to upgrade. A copy is only removed by a user's
        // expunge, so a third lookup is not expected to be needed.
        for _ in 0..3 {
            let existing = self.with_reader(|r| {
                find_copy(
                    r.connection(),
                    message.owner.as_str(),
                    lifeboat_id.as_str(),
                    &digest,
                )
            })?;
            match existing {
                None => {
                    if let Some(stored) = self.deliver_once(message.clone())? {
                        return Ok(DivertOutcome::Stored(stored));
                    }
                }
                Some(copy) if copy.class == Class::Diverted => {
                    return self.merge_recipients(message, copy.row);
                }
                Some(copy) => return self.upgrade_journal_copy(message, copy),
            }
        }
        refused(format!(
            "copies of {lifeboat_id} for {} kept changing; Postfix will retry",
            message.owner
        ))
    }

    /// A diverted copy of this message exists. Recipients it does not cover yet join its
    /// replay envelope while it waits for replay; once it has been replayed, they get a
    /// copy of their own.
    fn merge_recipients(&self, message: NewMessage, row: i64) -> Result<DivertOutcome> {
        let recipients: Vec<String> = message.envelope_to.iter().map(|a| a.to_string()).collect();
        let still_missing = self.write(move |conn| {
            let (envelope_to, state): (String, Option<String>) = conn.query_row(
                "SELECT m.envelope_to, l.state FROM messages m
                 LEFT JOIN replay_ledger l ON l.message_row = m.id WHERE m.id = ?1",
                [row],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut known: Vec<String> = envelope_to.lines().map(str::to_string).collect();
            let missing: Vec<String> = recipients
                .iter()
                .filter(|r| !known.iter().any(|k| k.eq_ignore_ascii_case(r)))
                .cloned()
                .collect();
            if missing.is_empty() {
                return Ok(None);
            }
            if state.as_deref() != Some("pending") {
                return Ok(Some(missing));
            }
            known.extend(missing);
            conn.execute(
                "UPDATE messages SET envelope_to = ?2 WHERE id = ?1",
                params![row, known.join("\n")],
            )?;
            Ok(None)
        })?;
        match still_missing {
            None => Ok(DivertOutcome::AlreadyDiverted),
            Some(missing) => {
                let mut message = message;
                message
                    .envelope_to
                    .retain(|a| missing.iter().any(|m| m == a.as_str()));
                Ok(DivertOutcome::Stored(self.deliver(message)?))
            }
        }
    }

    /// Replaces the journal copy's file with a durable diverted copy of the message
    /// Postfix is handing over, then switches the row over in one transaction (same row
    /// and UID). Postfix's bytes are the authoritative ones: a journal file is not
    /// fsynced, and a crash can leave it with the right length and lost contents
    /// (zeros), which no length check notices.
    fn upgrade_journal_copy(
        &self,
        message: NewMessage,
        old: ExistingCopy,
    ) -> Result<DivertOutcome> {
        let folder_dir = self.folder_dir(&message.owner, &old.folder);
        let old_path = folder_dir
            .join("cur")
            .join(FileName::cur_name(&old.basename, old.flags));
        let rewritten = message;
        let content = stored_form(&rewritten, self.keyring());
        let staged = StagedFile::write(&folder_dir, self.hostname(), &content, old.flags, true)?;
        let (basename, size, row) = (staged.basename.clone(), content.len() as i64, old.row);
        let envelope_to = rewritten
            .envelope_to
            .iter()
            .map(Address::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        let envelope_from = rewritten.envelope_from.clone();
        let result = self.write_staged(&staged, move |conn| {
            let modseq: i64 = conn.query_row(
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1
                 WHERE id = (SELECT mailbox_id FROM messages WHERE id = ?1 AND class = 'journal')
                 RETURNING highestmodseq",
                [row],
                |r| r.get(0),
            )?;
            conn.execute(
                "UPDATE messages SET class = 'diverted', basename = ?2, size = ?3, modseq = ?4,
                        envelope_from = ?5, envelope_to = ?6
                 WHERE id = ?1",
                params![row, basename, size, modseq, envelope_from, envelope_to],
            )?;
            let replay_id = add_to_ledger(conn, row)?;
            let (mailbox_id, uid, uidvalidity): (i64, u32, u32) = conn.query_row(
                "SELECT m.mailbox_id, m.uid, b.uidvalidity FROM messages m
                 JOIN mailboxes b ON b.id = m.mailbox_id WHERE m.id = ?1",
                [row],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            Ok(Stored {
                message_row: row,
                mailbox_id,
                uid,
                uidvalidity,
                path: Default::default(),
                replay_id: Some(replay_id),
            })
        });
        match result {
            Ok(mut stored) => {
                stored.path = staged.cur_path.clone();
                staged.commit();
                if let Err(e) = std::fs::remove_file(&old_path) {
                    tracing::warn!(path = %old_path.display(), error = %e, "could not remove the replaced journal file");
                }
                Ok(DivertOutcome::Upgraded(stored))
            }
            Err(e) => {
                staged.discard();
                Err(e)
            }
        }
    }

    /// Records a delivery attempt Postfix made to the fallback listener for `origin`
    /// (the origin deferred or refused it). Shown in `lifeboat status`.
    pub fn record_deferral(&self, origin: &str, detail: &str) -> Result<()> {
        let (origin, detail) = (origin.to_string(), detail.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO deferrals (origin, count, last_at, last_detail) VALUES (?1, 1, ?2, ?3)
                 ON CONFLICT (origin) DO UPDATE SET count = count + 1, last_at = excluded.last_at,
                    last_detail = excluded.last_detail",
                params![origin, now(), detail],
            )?;
            Ok(())
        })
    }
}

impl crate::reader::Reader {
    /// Whether the origin that owns `user`'s domain is judged down (outage or
    /// recovering): what a user sends meanwhile is a sent copy, replayed later.
    pub fn in_continuity(&self, routes: &Routes, user: &Address) -> Result<bool> {
        match routes.origin_of(user.domain()) {
            Some(origin) => Ok(self.origin_status(origin)?.state.diverts()),
            None => Ok(false),
        }
    }
}

/// Groups captured recipients into one copy per user, in first-seen order.
pub fn plan(fates: &[Fate]) -> Vec<PlannedCopy> {
    let mut copies: Vec<PlannedCopy> = Vec::new();
    for (index, fate) in fates.iter().enumerate() {
        let Fate::Capture {
            origin,
            owner,
            divert,
        } = fate
        else {
            continue;
        };
        let class = if *divert {
            Class::Diverted
        } else {
            Class::Journal
        };
        match copies.iter_mut().find(|c| &c.owner == owner) {
            // One user, two recipients: divert wins, so the copy is replayed.
            Some(copy) => {
                copy.recipients.push(index);
                if class == Class::Diverted {
                    copy.class = Class::Diverted;
                }
            }
            None => copies.push(PlannedCopy {
                owner: owner.clone(),
                origin: origin.clone(),
                class,
                recipients: vec![index],
            }),
        }
    }
    copies
}

/// What [`Store::deliver_diverted`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DivertOutcome {
    Stored(Stored),
    Upgraded(Stored),
    AlreadyDiverted,
}

struct ExistingCopy {
    row: i64,
    class: Class,
    folder: String,
    basename: String,
    flags: crate::Flags,
}

/// `owner`'s journal or diverted copy of the message with this `X-Lifeboat-ID` and body.
fn find_copy(
    conn: &Connection,
    owner: &str,
    lifeboat_id: &str,
    digest: &str,
) -> Result<Option<ExistingCopy>> {
    let found = conn
        .query_row(
            "SELECT m.id, m.class, b.name, m.basename, m.flags FROM messages m
             JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id
             WHERE m.lifeboat_id = ?1 AND u.address = ?2 AND m.body_digest = ?3
               AND m.class IN ('journal', 'diverted')
             ORDER BY m.class = 'diverted' DESC LIMIT 1",
            params![lifeboat_id, owner, digest],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, u8>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((row, class, folder, basename, flags)) = found else {
        return Ok(None);
    };
    let Ok(class) = class.parse() else {
        return refused(format!("index row {row} has class {class}"));
    };
    Ok(Some(ExistingCopy {
        row,
        class,
        folder,
        basename,
        flags: crate::Flags::from_bits(flags),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(owner: &str, divert: bool) -> Fate {
        Fate::Capture {
            origin: "main".into(),
            owner: Address::parse(owner).unwrap(),
            divert,
        }
    }

    #[test]
    fn plan_stores_one_copy_per_user_and_divert_wins() {
        let fates = [
            capture("a@x.test", false),
            Fate::OtherDomain,
            capture("b@x.test", true),
            capture("a@x.test", true),
        ];
        let copies = plan(&fates);
        assert_eq!(copies.len(), 2);
        assert_eq!(
            (copies[0].owner.as_str(), copies[0].class),
            ("a@x.test", Class::Diverted)
        );
        assert_eq!(copies[0].recipients, [0, 3]);
        assert_eq!(copies[1].recipients, [2]);
    }

    #[test]
    fn routes_match_domains_without_case() {
        let domains = vec!["Example.TEST".to_string()];
        let routes = Routes::new([("main", domains.as_slice())]);
        assert_eq!(routes.origin_of("example.test."), Some("main"));
        assert_eq!(routes.origin_of("other.test"), None);
    }
}
