//! The store's secret key and the marks Lifeboat makes with it (docs/design.md §4.6).
//!
//! Header fields a sender writes reach Lifeboat unchanged whenever the milter is
//! bypassed (`milter_default_action = accept` while `serve` is down, mail Postfix
//! received without the milter), so nothing Lifeboat decides may rest on a field it
//! cannot tell from a forgery. Each of its marks therefore carries an HMAC-SHA256 tag
//! under a key only the store knows:
//!
//! - `X-Lifeboat-ID` (the milter's message id): `<128 random bits>.<tag>`;
//! - `X-Lifeboat-Sent` on replayed sent copies: the tag of the copy's replay id;
//! - the trace block's seal (`X-Lifeboat-Trace`): the tag of the trace fields and the
//!   digest of the message that follows them.
//!
//! The key is 32 random bytes in `<data_dir>/lifeboat.key` (hex, mode 0600), made by the
//! first process that opens the store. Back it up with the store: without it, trace
//! blocks cannot be verified and `store check --repair` treats every copy as a client's.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, IoContext, Result};
use crate::private;

/// The key's file name in the data directory.
pub const KEY_FILE: &str = "lifeboat.key";

const KEY_BYTES: usize = 32;
/// Tags are HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows half the output).
const TAG_BYTES: usize = 16;

/// What a tag is for. Each purpose has its own label in the MAC input, so a value made
/// for one purpose never verifies as another.
#[derive(Clone, Copy, Debug)]
enum Purpose {
    LifeboatId,
    Sent,
    Trace,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::LifeboatId => b"lifeboat-id",
            Purpose::Sent => b"lifeboat-sent",
            Purpose::Trace => b"lifeboat-trace",
        }
    }
}

/// The store's key, ready to make and check marks. Cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    key: hmac::Key,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// Reads `<data_dir>/lifeboat.key`, creating it first when the store has none.
    pub(crate) fn load_or_create(data_dir: &Path) -> Result<Keyring> {
        let path = data_dir.join(KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Keyring::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Keyring::create(data_dir)?;
                let text =
                    fs::read_to_string(&path).context(|| format!("reading {}", path.display()))?;
                Keyring::parse(&text, &path)
            }
            Err(e) => Err(e).context(|| format!("reading {}", path.display())),
        }
    }

    /// A key from known bytes (tests and fuzz targets).
    pub fn from_bytes(key: &[u8; KEY_BYTES]) -> Keyring {
        Keyring {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    fn parse(text: &str, path: &Path) -> Result<Keyring> {
        match unhex(text.trim()) {
            Some(bytes) if bytes.len() == KEY_BYTES => Ok(Keyring {
                key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            }),
            _ => Err(Error::Refused(format!(
                "{}: not a Lifeboat key ({KEY_BYTES} bytes in hex expected)",
                path.display()
            ))),
        }
    }

    /// Writes a new key under a temporary name and links it into place, so a process
    /// that opens the store at the same moment reads either no key or a whole one (the
    /// link fails for the slower of two creators, which then uses the winner's key).
    fn create(data_dir: &Path) -> Result<()> {
        let mut key = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| Error::Refused("no randomness for the store key".into()))?;
        let path = data_dir.join(KEY_FILE);
        let staging = data_dir.join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(private::FILE_MODE)
                .open(&staging)?;
            file.write_all(format!("{}\n", hex(&key)).as_bytes())?;
            file.sync_all()?;
            match fs::hard_link(&staging, &path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            crate::maildir::fsync_dir(data_dir)
        })();
        let _ = fs::remove_file(&staging);
        written.context(|| format!("creating {}", path.display()))?;
        tracing::info!(path = %path.display(), "created the store key (back it up with the store)");
        Ok(())
    }

    fn tag(&self, purpose: Purpose, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(purpose.label());
        // Length-prefixed parts: ("ab", "c") and ("a", "bc") give different tags.
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&context.sign().as_ref()[..TAG_BYTES]);
        tag
    }

    fn verify(&self, purpose: Purpose, parts: &[&[u8]], claimed: &str) -> bool {
        match unhex(claimed) {
            Some(claimed) if claimed.len() == TAG_BYTES => {
                constant_time_eq(&self.tag(purpose, parts), &claimed)
            }
            _ => false,
        }
    }

    /// A fresh `X-Lifeboat-ID` for a message the milter saw.
    pub fn new_lifeboat_id(&self) -> LifeboatId {
        let random = format!("{:032x}", rand::random::<u128>());
        let tag = hex(&self.tag(Purpose::LifeboatId, &[random.as_bytes()]));
        LifeboatId(format!("{random}.{tag}"))
    }

    /// The id in an `X-Lifeboat-ID` field, if this store's milter made it; `None` for
    /// anything else (a sender's forgery, another installation's id, garbage).
    pub fn lifeboat_id(&self, text: &str) -> Option<LifeboatId> {
        let text = text.trim();
        let (random, tag) = text.split_once('.')?;
        let well_formed = random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit());
        (well_formed && self.verify(Purpose::LifeboatId, &[random.as_bytes()], tag))
            .then(|| LifeboatId(text.to_ascii_lowercase()))
    }

    /// The `X-Lifeboat-ID` of `message` this store's milter made, if any: the first of its
    /// `X-Lifeboat-ID` fields that verifies (others are a sender's and are ignored).
    pub fn lifeboat_id_of(&self, message: &[u8]) -> Option<LifeboatId> {
        crate::deliver::header_values(message, crate::class::ID_HEADER)
            .iter()
            .find_map(|value| self.lifeboat_id(value))
    }

    /// The value of `X-Lifeboat-Sent` on a replayed sent copy: only the store's key
    /// makes it, and it differs for every copy (its replay id).
    pub fn sent_mark(&self, replay_id: &str) -> String {
        hex(&self.tag(Purpose::Sent, &[replay_id.as_bytes()]))
    }

    /// Whether `value` is the [`Keyring::sent_mark`] of `replay_id`.
    pub fn is_sent_mark(&self, replay_id: &str, value: &str) -> bool {
        self.verify(Purpose::Sent, &[replay_id.as_bytes()], value.trim())
    }

    /// The seal of a trace block: its fields and the digest of the message after it.
    pub(crate) fn trace_seal(&self, fields: &[u8], message_digest: &[u8]) -> String {
        hex(&self.tag(Purpose::Trace, &[fields, message_digest]))
    }

    pub(crate) fn trace_seal_matches(
        &self,
        fields: &[u8],
        message_digest: &[u8],
        seal: &str,
    ) -> bool {
        self.verify(Purpose::Trace, &[fields, message_digest], seal.trim())
    }
}

/// An `X-Lifeboat-ID` this store's milter made: only a [`Keyring`] creates one, by
/// making a new id or by verifying a field's value, so a copy's id is never a sender's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LifeboatId(String);

impl LifeboatId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LifeboatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Compares without stopping at the first difference, so timing does not tell an
/// attacker how much of a guessed tag was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_made_once_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = Keyring::load_or_create(dir.path()).unwrap();
        let id = first.new_lifeboat_id();
        assert_eq!(second.lifeboat_id(id.as_str()), Some(id));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the key file");
    }

    #[test]
    fn ids_verify_only_under_their_own_key_and_unchanged() {
        let ours = Keyring::from_bytes(&[1; 32]);
        let theirs = Keyring::from_bytes(&[2; 32]);
        let id = ours.new_lifeboat_id();
        assert_ne!(ours.new_lifeboat_id(), id, "ids are random");
        assert_eq!(ours.lifeboat_id(&format!(" {id} ")), Some(id.clone()));
        assert_eq!(theirs.lifeboat_id(id.as_str()), None);
        let (random, tag) = id.as_str().split_once('.').unwrap();
        let flipped = format!(
            "{}{}",
            &random[..31],
            if random.ends_with('0') { '1' } else { '0' }
        );
        assert_eq!(ours.lifeboat_id(&format!("{flipped}.{tag}")), None);
        for forged in [
            "abc",
            "",
            ".",
            "0123456789abcdef0123456789abcdef",
            &format!("{random}."),
        ] {
            assert_eq!(ours.lifeboat_id(forged), None, "{forged:?}");
        }
    }

    #[test]
    fn marks_of_one_purpose_do_not_verify_as_another() {
        let keyring = Keyring::from_bytes(&[7; 32]);
        let mark = keyring.sent_mark("replay-1");
        assert!(keyring.is_sent_mark("replay-1", &mark));
        assert!(!keyring.is_sent_mark("replay-2", &mark));
        assert!(!keyring.is_sent_mark("replay-1", "yes"));
        let seal = keyring.trace_seal(b"replay-1", b"");
        assert_ne!(seal, mark);
        assert!(keyring.trace_seal_matches(b"replay-1", b"", &seal));
        assert!(!keyring.trace_seal_matches(b"replay-", b"1", &seal));
    }
}
