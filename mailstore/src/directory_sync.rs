//! Applying a directory listing to the users table, in one transaction.
//!
//! The LDAP side (`lifeboat-directory`) turns entries into [`DirectoryUser`]s and drops
//! entries that conflict among themselves; this module compares them with the store and
//! changes only users whose `source` is `directory`:
//!
//! - a new address is added (with the standard folders and no local password: these
//!   users log in through the directory);
//! - a known one gets its DN, aliases, alternate address and active flag from the entry;
//! - a directory user the listing no longer has is **disabled, never deleted**: their
//!   stored mail, and anything waiting for replay, stays;
//! - an entry whose address or alias belongs to a user added by hand (or to another
//!   user as their own address) is skipped with its reason, and the rest go on.
//!
//! [`Store::sync_directory`] plans against what the index holds inside the writer's
//! transaction and, unless it is a dry run, applies the plan and records the run there
//! too, so a sync is all or nothing and never races a concurrent `user add`.
//!
//! New users' Maildirs are made *before* that transaction and their UIDVALIDITY files
//! after it: a first sync of tens of thousands of users creates hundreds of thousands
//! of directories, and the writer (which every delivery waits on) must not wait for
//! them. A Maildir left empty by a sync that then failed is taken over by the next one;
//! a Maildir holding mail but no index row is not (`store check --repair` first).

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

use crate::address::Address;
use crate::error::Result;
use crate::password;
use std::path::PathBuf;

use crate::maildir::{self, STANDARD_FOLDERS};
use crate::reader::UserSource;
use crate::store::{Store, now};
use crate::users::next_uidvalidity;

/// One user as the directory describes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    pub address: Address,
    pub aliases: Vec<Address>,
    pub alternate_email: Option<Address>,
    /// Why the directory says this user may not use mail; `None` when they may.
    pub disabled: Option<DisableReason>,
}

/// Why a directory user is disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisableReason {
    /// The entry is marked disabled (AD `userAccountControl`, or `disabled_filter`).
    DisabledInDirectory,
    /// A protected group is configured and the entry is not a member.
    NotInGroup,
    /// The entry is gone from the directory (or no longer matches `user_filter`).
    Gone,
}

impl DisableReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisableReason::DisabledInDirectory => "disabled in the directory",
            DisableReason::NotInGroup => "not in the protected group",
            DisableReason::Gone => "gone from the directory",
        }
    }
}

/// Why an entry was left out of a sync. The entry's user, if the store has one, is
/// left exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The entry has no value in the primary address attribute.
    NoAddress,
    /// A value is not an email address.
    BadAddress { value: String, why: String },
    /// The address's domain belongs to no configured origin.
    OutsideDomains { address: String },
    /// Another entry claims the same address (both are skipped).
    ClaimedTwice { address: String, other_dn: String },
    /// The address belongs to a user added by hand, or to another user as their own.
    OwnedByUser { address: String, owner: String },
    /// The user's Maildir exists without an index row (`store check --repair` first).
    MaildirWithoutUser { address: String },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NoAddress => f.write_str("no primary address"),
            SkipReason::BadAddress { value, why } => {
                write!(f, "`{value}` is not an address: {why}")
            }
            SkipReason::OutsideDomains { address } => {
                write!(f, "{address} is not in any [[origin]]'s domains")
            }
            SkipReason::ClaimedTwice { address, other_dn } => {
                write!(f, "{address} is also claimed by {other_dn}")
            }
            SkipReason::OwnedByUser { address, owner } => {
                write!(f, "{address} already belongs to {owner}")
            }
            SkipReason::MaildirWithoutUser { address } => write!(
                f,
                "the Maildir of {address} exists but the index has no such user \
                 (run `lifeboat store check --repair`)"
            ),
        }
    }
}

/// An entry left out, named by its DN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub dn: String,
    /// The address the entry would have had, when it has one: its user stays as is.
    pub address: Option<Address>,
    pub reason: SkipReason,
}

/// One change a sync makes (or, in a dry run, would make).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Added {
        address: Address,
        active: bool,
    },
    /// The fields that differ: `dn`, `aliases`, `alternate_email`.
    Updated {
        address: Address,
        fields: Vec<&'static str>,
    },
    Enabled {
        address: Address,
    },
    Disabled {
        address: Address,
        why: DisableReason,
    },
}

/// What a sync did, or would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncChanges {
    pub changes: Vec<Change>,
    pub skipped: Vec<Skipped>,
    pub unchanged: usize,
}

impl SyncChanges {
    pub fn added(&self) -> usize {
        self.count(|c| matches!(c, Change::Added { .. }))
    }

    /// Updated or enabled.
    pub fn changed(&self) -> usize {
        self.count(|c| matches!(c, Change::Updated { .. } | Change::Enabled { .. }))
    }

    pub fn disabled(&self) -> usize {
        self.count(|c| matches!(c, Change::Disabled { .. }))
    }

    fn count(&self, f: impl Fn(&Change) -> bool) -> usize {
        self.changes.iter().filter(|c| f(c)).count()
    }
}

/// The directory's answer, ready to apply.
#[derive(Clone, Debug, Default)]
pub struct SyncInput {
    pub users: Vec<DirectoryUser>,
    /// Entries the directory side already refused (conflicts among entries, addresses
    /// outside the origins' domains).
    pub skipped: Vec<Skipped>,
}

/// One recorded sync, for `lifeboat status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub at: i64,
    pub duration_ms: i64,
    pub ok: bool,
    pub entries: i64,
    pub added: i64,
    pub changed: i64,
    pub disabled: i64,
    pub skipped: i64,
    pub error: Option<String>,
}

/// Rows of `directory_syncs` kept; older ones are pruned.
const SYNC_RUNS_KEPT: i64 = 100;

impl Store {
    /// Plans the sync against the index and, with `apply`, makes every change and
    /// records the run, all in one transaction. `started` and `duration_ms` describe the
    /// directory side of the run, for the record.
    pub fn sync_directory(
        &self,
        input: SyncInput,
        apply: bool,
        started: i64,
        duration_ms: i64,
    ) -> Result<SyncChanges> {
        let occupied = self.maildirs_for(&input, apply)?;
        let store = self.clone();
        let (changes, folders) = self.write(move |conn| {
            let plan = plan(conn, input, &occupied)?;
            let mut folders = Vec::new();
            if apply {
                folders = execute(&store, conn, &plan)?;
                let changes = &plan.changes;
                record_run(
                    conn,
                    &SyncRun {
                        at: started,
                        duration_ms,
                        ok: true,
                        entries: (plan.entries) as i64,
                        added: changes.added() as i64,
                        changed: changes.changed() as i64,
                        disabled: changes.disabled() as i64,
                        skipped: changes.skipped.len() as i64,
                        error: None,
                    },
                )?;
            }
            Ok((plan.changes, folders))
        })?;
        for (dir, uidvalidity) in folders {
            // Only a guard for `store check --repair`; the index has the value.
            if let Err(e) = maildir::write_uidvalidity_file(&dir, uidvalidity) {
                tracing::warn!(error = %e, "directory sync: cannot record a UIDVALIDITY");
            }
        }
        Ok(changes)
    }

    /// For each listed user the index does not have: makes their Maildir's standard
    /// folders (with `create`), and returns the addresses whose Maildir already holds
    /// mail without an index row.
    fn maildirs_for(&self, input: &SyncInput, create: bool) -> Result<HashSet<String>> {
        let reader = self.reader()?;
        let known: HashSet<String> = reader
            .connection()
            .prepare("SELECT lower(address) FROM users")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut occupied = HashSet::new();
        for user in &input.users {
            if known.contains(&user.address.as_str().to_ascii_lowercase()) {
                continue;
            }
            let dir = self.user_dir(&user.address);
            let mut holds_mail = false;
            for (name, _) in STANDARD_FOLDERS {
                let folder = maildir::folder_dir(&dir, name);
                if folder.exists() {
                    holds_mail |= !maildir::list_messages(&folder)?.is_empty();
                } else if create {
                    maildir::create_folder(&folder, name != "INBOX")?;
                }
            }
            if holds_mail {
                occupied.insert(user.address.as_str().to_ascii_lowercase());
            }
        }
        Ok(occupied)
    }

    /// Records a sync that could not read the directory: nothing changed, the last good
    /// sync stands.
    pub fn record_failed_sync(&self, started: i64, duration_ms: i64, error: String) -> Result<()> {
        self.write(move |conn| {
            record_run(
                conn,
                &SyncRun {
                    at: started,
                    duration_ms,
                    ok: false,
                    entries: 0,
                    added: 0,
                    changed: 0,
                    disabled: 0,
                    skipped: 0,
                    error: Some(error),
                },
            )
        })
    }
}

impl crate::reader::Reader {
    /// The last sync, and the last one that read the directory (they differ after a
    /// failed one).
    pub fn directory_syncs(&self) -> Result<(Option<SyncRun>, Option<SyncRun>)> {
        let query = |filter: &str| -> Result<Option<SyncRun>> {
            Ok(self
                .connection()
                .query_row(
                    &format!(
                        "SELECT at, duration_ms, ok, entries, added, changed, disabled, skipped,
                                error
                         FROM directory_syncs {filter} ORDER BY id DESC LIMIT 1"
                    ),
                    [],
                    |r| {
                        Ok(SyncRun {
                            at: r.get(0)?,
                            duration_ms: r.get(1)?,
                            ok: r.get(2)?,
                            entries: r.get(3)?,
                            added: r.get(4)?,
                            changed: r.get(5)?,
                            disabled: r.get(6)?,
                            skipped: r.get(7)?,
                            error: r.get(8)?,
                        })
                    },
                )
                .optional()?)
        };
        Ok((query("")?, query("WHERE ok = 1")?))
    }
}

fn record_run(conn: &Connection, run: &SyncRun) -> Result<()> {
    conn.execute(
        "INSERT INTO directory_syncs
           (at, duration_ms, ok, entries, added, changed, disabled, skipped, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            run.at,
            run.duration_ms,
            run.ok,
            run.entries,
            run.added,
            run.changed,
            run.disabled,
            run.skipped,
            run.error
        ],
    )?;
    conn.execute(
        "DELETE FROM directory_syncs WHERE id <= (SELECT max(id) FROM directory_syncs) - ?1",
        [SYNC_RUNS_KEPT],
    )?;
    Ok(())
}

/// A directory user as the index holds them.
struct Known {
    id: i64,
    dn: Option<String>,
    active: bool,
    alternate_email: Option<String>,
    aliases: HashSet<String>,
}

/// Who holds an address now.
struct Holder {
    user_id: i64,
    owner: String,
    source: UserSource,
    /// As the user's own address (not an alias).
    own: bool,
}

struct Plan {
    changes: SyncChanges,
    entries: usize,
    /// Users to create.
    add: Vec<DirectoryUser>,
    /// Known users to rewrite: (id, entry).
    update: Vec<(i64, DirectoryUser)>,
    /// Known users to disable.
    disable: Vec<i64>,
}

fn plan(conn: &Connection, input: SyncInput, occupied: &HashSet<String>) -> Result<Plan> {
    let known = known_directory_users(conn)?;
    let holders = address_holders(conn)?;
    let kept: HashSet<String> = input
        .skipped
        .iter()
        .filter_map(|s| s.address.as_ref().map(|a| a.as_str().to_ascii_lowercase()))
        .collect();
    let mut plan = Plan {
        entries: input.users.len() + input.skipped.len(),
        changes: SyncChanges {
            skipped: input.skipped,
            ..SyncChanges::default()
        },
        add: Vec::new(),
        update: Vec::new(),
        disable: Vec::new(),
    };
    let mut seen: HashSet<String> = HashSet::new();
    for user in input.users {
        let key = user.address.as_str().to_ascii_lowercase();
        let me = known.get(&key).map(|k| k.id);
        if let Some(reason) = conflict(&user, me, &holders, &kept) {
            plan.changes.skipped.push(Skipped {
                dn: user.dn.clone(),
                address: Some(user.address.clone()),
                reason,
            });
            seen.insert(key);
            continue;
        }
        seen.insert(key.clone());
        match known.get(&key) {
            None => {
                if occupied.contains(&key) {
                    plan.changes.skipped.push(Skipped {
                        dn: user.dn.clone(),
                        address: Some(user.address.clone()),
                        reason: SkipReason::MaildirWithoutUser {
                            address: user.address.to_string(),
                        },
                    });
                    continue;
                }
                plan.changes.changes.push(Change::Added {
                    address: user.address.clone(),
                    active: user.disabled.is_none(),
                });
                plan.add.push(user);
            }
            Some(known) => {
                let before = plan.changes.changes.len();
                diff(known, &user, &mut plan.changes.changes);
                if plan.changes.changes.len() == before {
                    plan.changes.unchanged += 1;
                } else {
                    plan.update.push((known.id, user));
                }
            }
        }
    }
    for (key, user) in &known {
        if seen.contains(key) || kept.contains(key) {
            continue;
        }
        if user.active {
            plan.changes.changes.push(Change::Disabled {
                address: Address::parse(key).map_err(|e| {
                    crate::Error::Refused(format!("index holds a bad address: {e}"))
                })?,
                why: DisableReason::Gone,
            });
            plan.disable.push(user.id);
        } else {
            plan.changes.unchanged += 1;
        }
    }
    Ok(plan)
}

/// Why `user` cannot take its addresses, if it cannot. `me` is the user's id when the
/// store knows them. An address held by another user is free to take only when it is
/// a directory user's alias (aliases move with the directory) and that user is not
/// being left as it is this time.
fn conflict(
    user: &DirectoryUser,
    me: Option<i64>,
    holders: &HashMap<String, Holder>,
    kept: &HashSet<String>,
) -> Option<SkipReason> {
    for address in std::iter::once(&user.address).chain(&user.aliases) {
        let Some(holder) = holders.get(&address.as_str().to_ascii_lowercase()) else {
            continue;
        };
        let movable = holder.source == UserSource::Directory
            && !holder.own
            && !kept.contains(&holder.owner.to_ascii_lowercase());
        if Some(holder.user_id) != me && !movable {
            return Some(SkipReason::OwnedByUser {
                address: address.to_string(),
                owner: holder.owner.clone(),
            });
        }
    }
    None
}

/// Appends the changes that bring `known` to `user`.
fn diff(known: &Known, user: &DirectoryUser, changes: &mut Vec<Change>) {
    let mut fields = Vec::new();
    if known.dn.as_deref() != Some(user.dn.as_str()) {
        fields.push("dn");
    }
    let aliases: HashSet<String> = user
        .aliases
        .iter()
        .map(|a| a.as_str().to_ascii_lowercase())
        .collect();
    if aliases != known.aliases {
        fields.push("aliases");
    }
    let alternate = user.alternate_email.as_ref().map(Address::as_str);
    if known.alternate_email.as_deref() != alternate {
        fields.push("alternate_email");
    }
    if !fields.is_empty() {
        changes.push(Change::Updated {
            address: user.address.clone(),
            fields,
        });
    }
    match (known.active, user.disabled) {
        (true, Some(why)) => changes.push(Change::Disabled {
            address: user.address.clone(),
            why,
        }),
        (false, None) => changes.push(Change::Enabled {
            address: user.address.clone(),
        }),
        _ => {}
    }
}

/// Makes the planned changes; returns each new folder and its UIDVALIDITY, to record
/// beside the folder once the transaction has committed.
fn execute(store: &Store, conn: &Connection, plan: &Plan) -> Result<Vec<(PathBuf, u32)>> {
    // Aliases first: an alias moving between directory users must be free before its
    // new owner takes it.
    for (id, user) in &plan.update {
        conn.execute("DELETE FROM aliases WHERE user_id = ?1", [id])?;
        for alias in &user.aliases {
            conn.execute("DELETE FROM aliases WHERE address = ?1", [alias.as_str()])?;
        }
    }
    for user in &plan.add {
        for alias in &user.aliases {
            conn.execute("DELETE FROM aliases WHERE address = ?1", [alias.as_str()])?;
        }
        conn.execute(
            "DELETE FROM aliases WHERE address = ?1",
            [user.address.as_str()],
        )?;
    }
    for id in &plan.disable {
        conn.execute("UPDATE users SET active = 0 WHERE id = ?1", [id])?;
    }
    for (id, user) in &plan.update {
        conn.execute(
            "UPDATE users SET directory_dn = ?2, alternate_email = ?3, active = ?4
             WHERE id = ?1",
            params![
                id,
                user.dn,
                user.alternate_email.as_ref().map(Address::as_str),
                user.disabled.is_none()
            ],
        )?;
        for alias in &user.aliases {
            conn.execute(
                "INSERT INTO aliases (address, user_id) VALUES (?1, ?2)",
                params![alias.as_str(), id],
            )?;
        }
    }
    let mut folders = Vec::new();
    for user in &plan.add {
        conn.execute(
            "INSERT INTO users (address, password_hash, active, alternate_email, created_at,
                                source, directory_dn)
             VALUES (?1, ?2, ?3, ?4, ?5, 'directory', ?6)",
            params![
                user.address.as_str(),
                password::unusable(),
                user.disabled.is_none(),
                user.alternate_email.as_ref().map(Address::as_str),
                now(),
                user.dn
            ],
        )?;
        let user_id = conn.last_insert_rowid();
        for alias in &user.aliases {
            conn.execute(
                "INSERT INTO aliases (address, user_id) VALUES (?1, ?2)",
                params![alias.as_str(), user_id],
            )?;
        }
        let dir = store.user_dir(&user.address);
        for (name, special_use) in STANDARD_FOLDERS {
            let uidvalidity = next_uidvalidity(conn, None)?;
            conn.execute(
                "INSERT INTO mailboxes (user_id, name, special_use, uidvalidity)
                 VALUES (?1, ?2, ?3, ?4)",
                params![user_id, name, special_use, uidvalidity],
            )?;
            folders.push((maildir::folder_dir(&dir, name), uidvalidity));
        }
    }
    Ok(folders)
}

fn known_directory_users(conn: &Connection) -> Result<HashMap<String, Known>> {
    let mut users: HashMap<String, Known> = HashMap::new();
    let mut by_id: HashMap<i64, String> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT id, address, directory_dn, active, alternate_email FROM users
         WHERE source = 'directory'",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    for row in rows {
        let (id, address, dn, active, alternate_email) = row?;
        let key = address.to_ascii_lowercase();
        by_id.insert(id, key.clone());
        users.insert(
            key,
            Known {
                id,
                dn,
                active,
                alternate_email,
                aliases: HashSet::new(),
            },
        );
    }
    let mut stmt = conn.prepare(
        "SELECT a.user_id, a.address FROM aliases a JOIN users u ON u.id = a.user_id
         WHERE u.source = 'directory'",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, alias) = row?;
        if let Some(user) = by_id.get(&id).and_then(|key| users.get_mut(key)) {
            user.aliases.insert(alias.to_ascii_lowercase());
        }
    }
    Ok(users)
}

fn address_holders(conn: &Connection) -> Result<HashMap<String, Holder>> {
    let mut holders = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT u.address, u.id, u.address, u.source, 1 FROM users u
         UNION ALL
         SELECT a.address, u.id, u.address, u.source, 0 FROM aliases a
         JOIN users u ON u.id = a.user_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, bool>(4)?,
        ))
    })?;
    for row in rows {
        let (address, user_id, owner, source, own) = row?;
        let source = if source == "directory" {
            UserSource::Directory
        } else {
            UserSource::Local
        };
        holders.insert(
            address.to_ascii_lowercase(),
            Holder {
                user_id,
                owner,
                source,
                own,
            },
        );
    }
    Ok(holders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::Class;
    use crate::deliver::NewMessage;
    use crate::testing::store_with_user;

    fn a(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    fn entry(local: &str, aliases: &[&str]) -> DirectoryUser {
        DirectoryUser {
            dn: format!("uid={local},ou=people,dc=example,dc=test"),
            address: a(&format!("{local}@example.test")),
            aliases: aliases.iter().map(|x| a(x)).collect(),
            alternate_email: None,
            disabled: None,
        }
    }

    fn sync(store: &Store, users: Vec<DirectoryUser>) -> SyncChanges {
        let input = SyncInput {
            users,
            skipped: vec![],
        };
        store.sync_directory(input, true, 1, 5).unwrap()
    }

    fn user(store: &Store, address: &str) -> crate::reader::UserRecord {
        store.reader().unwrap().user(address).unwrap().unwrap()
    }

    #[test]
    fn adds_then_updates_then_disables_what_is_gone_and_keeps_its_mail() {
        let (_dir, store, _) = store_with_user("local@example.test");
        let changes = sync(
            &store,
            vec![entry("ann", &["sales@example.test"]), entry("bob", &[])],
        );
        assert_eq!((changes.added(), changes.changed()), (2, 0));
        let ann = user(&store, "ann@example.test");
        assert_eq!(ann.source, UserSource::Directory);
        assert_eq!(ann.aliases, ["sales@example.test"]);
        assert!(!password::is_usable(&ann.password_hash));

        // bob gets mail, then leaves the directory; the alias moves from ann to bob's
        // successor.
        let bob = a("bob@example.test");
        store
            .deliver(NewMessage::new(
                bob.clone(),
                "INBOX",
                b"Subject: x\r\n\r\nkeep me\r\n".to_vec(),
                Class::Diverted,
            ))
            .unwrap();
        let mut ann = entry("ann", &[]);
        ann.alternate_email = Some(a("ann@home.example"));
        let changes = sync(&store, vec![ann, entry("cy", &["sales@example.test"])]);
        assert!(changes.changes.contains(&Change::Disabled {
            address: bob.clone(),
            why: DisableReason::Gone
        }));
        assert!(changes.changes.contains(&Change::Updated {
            address: a("ann@example.test"),
            fields: vec!["aliases", "alternate_email"]
        }));
        let bob_now = user(&store, "bob@example.test");
        assert!(!bob_now.active, "disabled, not deleted");
        let reader = store.reader().unwrap();
        let inbox = reader.mailbox(bob_now.id, "INBOX").unwrap().unwrap();
        assert_eq!(reader.messages(inbox.id).unwrap().len(), 1, "mail kept");
        assert_eq!(
            user(&store, "cy@example.test").aliases,
            ["sales@example.test"]
        );

        // Back in the directory: enabled again, nothing else touched.
        let changes = sync(&store, vec![entry("ann", &[]), entry("bob", &[])]);
        assert!(changes.changes.contains(&Change::Enabled { address: bob }));
        assert!(user(&store, "bob@example.test").active);
        let (last, _) = store.reader().unwrap().directory_syncs().unwrap();
        assert_eq!(last.unwrap().entries, 2);
    }

    #[test]
    fn local_users_are_left_alone_and_their_addresses_are_not_taken() {
        let (_dir, store, _) = store_with_user("local@example.test");
        store
            .add_alias(&a("help@example.test"), &a("local@example.test"))
            .unwrap();
        let changes = sync(
            &store,
            vec![
                entry("local", &[]),
                entry("dan", &["help@example.test"]),
                entry("eve", &[]),
            ],
        );
        let reasons: Vec<String> = changes
            .skipped
            .iter()
            .map(|s| s.reason.to_string())
            .collect();
        assert_eq!(
            reasons,
            [
                "local@example.test already belongs to local@example.test",
                "help@example.test already belongs to local@example.test"
            ]
        );
        assert_eq!(changes.added(), 1, "one bad entry never stops the sync");
        let local = user(&store, "local@example.test");
        assert_eq!(local.source, UserSource::Local);
        assert!(password::verify(&local.password_hash, "pw"));
        // The next sync without them disables nobody local.
        let changes = sync(&store, vec![entry("eve", &[])]);
        assert!(changes.changes.is_empty(), "{changes:?}");
        assert!(user(&store, "local@example.test").active);
    }

    #[test]
    fn an_empty_maildir_left_by_a_failed_sync_is_taken_over_one_with_mail_is_not() {
        let (_dir, store, _) = store_with_user("local@example.test");
        let empty = store.user_dir(&a("ann@example.test"));
        crate::maildir::create_folder(&empty, false).unwrap();
        let full = store.user_dir(&a("bob@example.test"));
        crate::maildir::create_folder(&full, false).unwrap();
        std::fs::write(full.join("cur").join("1.M1P1.host,S=3:2,"), "x\r\n").unwrap();
        let changes = sync(&store, vec![entry("ann", &[]), entry("bob", &[])]);
        assert_eq!(changes.added(), 1);
        assert_eq!(
            changes.skipped[0].reason,
            SkipReason::MaildirWithoutUser {
                address: "bob@example.test".into()
            }
        );
        let ann = user(&store, "ann@example.test");
        let reader = store.reader().unwrap();
        let inbox = reader.mailbox(ann.id, "INBOX").unwrap().unwrap();
        assert_eq!(
            crate::maildir::read_uidvalidity_file(&empty),
            Some(inbox.uidvalidity),
            "recorded beside the folder after the commit"
        );
        assert!(store.folder_dir(&ann.address, "Sent").join("cur").is_dir());
    }

    #[test]
    fn a_dry_run_changes_nothing_and_a_skipped_entry_keeps_its_user() {
        let (_dir, store, _) = store_with_user("local@example.test");
        sync(&store, vec![entry("ann", &[])]);
        let input = SyncInput {
            users: vec![entry("new", &[])],
            skipped: vec![],
        };
        let would = store.sync_directory(input, false, 2, 5).unwrap();
        assert_eq!(would.added(), 1);
        assert_eq!(would.disabled(), 1);
        assert!(
            store
                .reader()
                .unwrap()
                .user("new@example.test")
                .unwrap()
                .is_none()
        );
        assert!(user(&store, "ann@example.test").active);
        assert!(!store.user_dir(&a("new@example.test")).exists());

        // ann's entry is skipped this time (a conflict): she stays as she is.
        let input = SyncInput {
            users: vec![],
            skipped: vec![Skipped {
                dn: "uid=ann".into(),
                address: Some(a("ann@example.test")),
                reason: SkipReason::NoAddress,
            }],
        };
        let changes = store.sync_directory(input, true, 3, 5).unwrap();
        assert_eq!(changes.disabled(), 0);
        assert!(user(&store, "ann@example.test").active);
    }
}
