//! Maildir layout, Dovecot-compatible file names, and the durable file step of a delivery.
//!
//! A message file is named `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>:2,<flags>`.
//! The part before `:2,` (the *basename*) never changes; flag changes only rewrite the
//! suffix. Files are stored with CRLF line ends, the form every protocol serves, so
//! `S=` and `W=` are equal and nothing is converted on the way out.
//!
//! Delivery links the file into `cur/` rather than renaming it, and removes the `tmp/`
//! name only after the index has committed. A name left in `tmp/` therefore marks a
//! delivery that may have been interrupted; [`recover_interrupted`] resolves each one
//! (see `Store::lock_for_delivery`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};
use crate::private;

/// The folders every protected user gets, with their RFC 6154 special-use attribute.
pub const STANDARD_FOLDERS: [(&str, Option<&str>); 6] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// File holding a folder's last UIDVALIDITY, so an index rebuilt from scratch can pick a
/// larger one (RFC 3501: UIDs may only be reassigned under a new UIDVALIDITY).
pub const UIDVALIDITY_FILE: &str = "lifeboat-uidvalidity";

/// IMAP system flags, stored as Maildir info letters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);

    /// Maildir letters in the ASCII order the spec asks for.
    const LETTERS: [(char, Flags); 5] = [
        ('D', Flags::DRAFT),
        ('F', Flags::FLAGGED),
        ('R', Flags::ANSWERED),
        ('S', Flags::SEEN),
        ('T', Flags::DELETED),
    ];

    pub const fn empty() -> Flags {
        Flags(0)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits & 31)
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// Every set of flags (32 of them): every name a file with one basename can have.
    pub fn all_sets() -> impl Iterator<Item = Flags> {
        (0..32).map(Flags::from_bits)
    }

    /// Reads the letters after `:2,`; letters Lifeboat does not map (e.g. `P`) are ignored.
    pub fn from_maildir_info(info: &str) -> Flags {
        Self::LETTERS
            .iter()
            .filter(|(letter, _)| info.contains(*letter))
            .fold(Flags::empty(), |acc, (_, flag)| acc.union(*flag))
    }

    pub fn maildir_info(self) -> String {
        Self::LETTERS
            .iter()
            .filter(|(_, flag)| self.contains(*flag))
            .map(|(letter, _)| *letter)
            .collect()
    }
}

/// A message file name split into its stable basename and its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName {
    pub basename: String,
    pub size: Option<u64>,
    pub flags: Flags,
    /// The file is an IMAP COPY/MOVE of a stored message ([`COPY_FIELD`] in its name).
    pub copy: bool,
}

/// The field in the basename of a file IMAP COPY or MOVE made: a copy keeps the bytes
/// of its original, trace block included, so clients see the same message; the mark
/// tells `store check --repair` that the block is not this file's own (only the store
/// names files, so no client can mark or unmark one).
pub const COPY_FIELD: &str = "X=copy";

impl FileName {
    pub fn parse(name: &str) -> Option<FileName> {
        if name.starts_with('.') {
            return None;
        }
        let (basename, info) = match name.split_once(":2,") {
            Some((base, info)) => (base, info),
            None => (name, ""),
        };
        let fields = || basename.split(',').skip(1);
        let size = fields()
            .find_map(|field| field.strip_prefix("S="))
            .and_then(|s| s.parse().ok());
        Some(FileName {
            basename: basename.to_string(),
            size,
            flags: Flags::from_maildir_info(info),
            copy: fields().any(|field| field == COPY_FIELD),
        })
    }

    /// The name of the file in `cur/`.
    pub fn cur_name(basename: &str, flags: Flags) -> String {
        format!("{basename}:2,{}", flags.maildir_info())
    }
}

/// [`new_basename`] for an IMAP COPY/MOVE of a stored message ([`COPY_FIELD`]).
pub fn new_copy_basename(hostname: &str, size: u64) -> String {
    format!("{},{COPY_FIELD}", new_basename(hostname, size))
}

/// Makes a basename unique within this host: time, pid and a per-process counter.
pub fn new_basename(hostname: &str, size: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Maildir reserves '/' and ':' in names; Dovecot escapes them the same way.
    let host = hostname.replace('/', "\\057").replace(':', "\\072");
    format!(
        "{}.M{}P{}Q{}.{},S={size},W={size}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
        host
    )
}

/// The directory of a folder inside a user's Maildir (Maildir++: INBOX is the root,
/// other folders are `.Name`).
pub fn folder_dir(user_dir: &Path, folder: &str) -> PathBuf {
    if folder.eq_ignore_ascii_case("INBOX") {
        user_dir.to_path_buf()
    } else {
        user_dir.join(format!(".{folder}"))
    }
}

/// The folder name a Maildir++ directory entry stands for, if it is one.
pub fn folder_name(entry: &str) -> Option<&str> {
    entry
        .strip_prefix('.')
        .filter(|n| !n.is_empty() && *n != ".")
}

/// Creates `cur/`, `new/`, `tmp/` (and the `maildirfolder` marker for subfolders).
pub fn create_folder(dir: &Path, is_subfolder: bool) -> Result<()> {
    for sub in ["cur", "new", "tmp"] {
        let path = dir.join(sub);
        private::create_dir_all(&path).context(|| format!("creating {}", path.display()))?;
    }
    if is_subfolder {
        let marker = dir.join("maildirfolder");
        if !marker.exists() {
            private::open_file(&marker).context(|| format!("creating {}", marker.display()))?;
        }
    }
    Ok(())
}

pub fn read_uidvalidity_file(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join(UIDVALIDITY_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub fn write_uidvalidity_file(dir: &Path, uidvalidity: u32) -> Result<()> {
    let path = dir.join(UIDVALIDITY_FILE);
    private::write(&path, format!("{uidvalidity}\n").as_bytes())
        .context(|| format!("writing {}", path.display()))
}

/// A message file made durable in `cur/`, whose index row is not committed yet.
#[derive(Debug)]
pub struct StagedFile {
    pub basename: String,
    pub cur_path: PathBuf,
    tmp_path: PathBuf,
}

impl StagedFile {
    /// Writes `bytes` to `tmp/`, fsyncs (when `fsync`), and links it into `cur/`. The link
    /// is durable only once `cur/` is fsynced: the index writer does that (once per
    /// directory per group commit) before it commits the row, see [`StagedFile::dir`].
    pub fn write(
        folder: &Path,
        hostname: &str,
        bytes: &[u8],
        flags: Flags,
        fsync: bool,
    ) -> Result<StagedFile> {
        let basename = new_basename(hostname, bytes.len() as u64);
        StagedFile::write_named(folder, basename, bytes, flags, fsync)
    }

    /// [`StagedFile::write`] under a basename the caller made (unique, as
    /// [`new_basename`] makes them).
    pub fn write_named(
        folder: &Path,
        basename: String,
        bytes: &[u8],
        flags: Flags,
        fsync: bool,
    ) -> Result<StagedFile> {
        let tmp_path = folder.join("tmp").join(&basename);
        let cur_path = folder
            .join("cur")
            .join(FileName::cur_name(&basename, flags));
        let staged = StagedFile {
            basename,
            cur_path,
            tmp_path,
        };
        let written = (|| -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(private::FILE_MODE)
                .open(&staged.tmp_path)?;
            file.write_all(bytes)?;
            if fsync {
                file.sync_all()?;
            }
            fs::hard_link(&staged.tmp_path, &staged.cur_path)
        })();
        match written {
            Ok(()) => Ok(staged),
            Err(e) => {
                staged.discard();
                Err(e).context(|| format!("writing message file in {}", folder.display()))
            }
        }
    }

    /// The directory whose fsync makes the link durable.
    pub fn dir(&self) -> PathBuf {
        self.cur_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The index has the row: drop the `tmp/` marker.
    pub fn commit(self) {
        if let Err(e) = fs::remove_file(&self.tmp_path) {
            tracing::warn!(path = %self.tmp_path.display(), error = %e, "could not remove delivery marker");
        }
    }

    /// The index refused the row: remove both names, so no orphan is left behind.
    pub fn discard(&self) {
        let _ = fs::remove_file(&self.cur_path);
        let _ = fs::remove_file(&self.tmp_path);
    }
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Files in a folder's `cur/` and `new/`, with their directory.
pub fn list_messages(folder: &Path) -> Result<Vec<(PathBuf, FileName)>> {
    let mut found = Vec::new();
    for sub in ["cur", "new"] {
        let dir = folder.join(sub);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.context(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name();
            if let Some(parsed) = name.to_str().and_then(FileName::parse) {
                found.push((entry.path(), parsed));
            }
        }
    }
    Ok(found)
}

/// Names left in a folder's `tmp/`: deliveries that were interrupted (or are in flight
/// in a process that holds the delivery lock).
pub fn interrupted_deliveries(folder: &Path) -> Result<Vec<String>> {
    let dir = folder.join("tmp");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(|| format!("listing {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_in_spec_order() {
        let flags = Flags::SEEN.union(Flags::DRAFT).union(Flags::DELETED);
        assert_eq!(flags.maildir_info(), "DST");
        assert_eq!(Flags::from_maildir_info("DST"), flags);
        assert_eq!(Flags::from_maildir_info("PS"), Flags::SEEN);
    }

    #[test]
    fn file_names_parse_like_dovecot_writes_them() {
        let name = "1700000000.M12P34Q5.host,S=1234,W=1234:2,FS";
        let parsed = FileName::parse(name).unwrap();
        assert_eq!(parsed.basename, "1700000000.M12P34Q5.host,S=1234,W=1234");
        assert_eq!(parsed.size, Some(1234));
        assert_eq!(parsed.flags, Flags::FLAGGED.union(Flags::SEEN));
        assert_eq!(FileName::cur_name(&parsed.basename, parsed.flags), name);
        let new_name = FileName::parse("1700000000.M1P2.host").unwrap();
        assert_eq!(new_name.size, None);
        assert_eq!(new_name.flags, Flags::empty());
        assert!(!new_name.copy && !parsed.copy);
        let copy = FileName::parse(&format!("{}:2,S", new_copy_basename("h", 12))).unwrap();
        assert_eq!(
            (copy.size, copy.flags, copy.copy),
            (Some(12), Flags::SEEN, true)
        );
    }

    #[test]
    fn basenames_are_unique_and_escape_reserved_characters() {
        let a = new_basename("a/b:c", 10);
        let b = new_basename("a/b:c", 10);
        assert_ne!(a, b);
        assert!(a.contains("a\\057b\\072c,S=10,W=10"), "{a}");
    }

    #[test]
    fn staged_file_is_in_cur_and_marked_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        create_folder(dir.path(), false).unwrap();
        let staged = StagedFile::write(
            dir.path(),
            "h",
            b"Subject: x\r\n\r\nhi\r\n",
            Flags::SEEN,
            true,
        )
        .unwrap();
        assert_eq!(
            fs::read(&staged.cur_path).unwrap(),
            b"Subject: x\r\n\r\nhi\r\n"
        );
        assert_eq!(
            interrupted_deliveries(dir.path()).unwrap(),
            vec![staged.basename.clone()]
        );
        let cur = staged.cur_path.clone();
        staged.commit();
        assert!(interrupted_deliveries(dir.path()).unwrap().is_empty());
        assert!(cur.exists());
    }
}
