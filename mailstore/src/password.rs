//! Password hashes as Lifeboat stores them: Dovecot passwd-file style `{SCHEME}hash`.
//!
//! New passwords are always hashed with argon2id. Hashes imported from an existing mail
//! system (Dovecot, a Unix `shadow` file, an htpasswd file, …) are kept as they are, so users
//! keep their passwords, and [`needs_rehash`] tells the login path when to upgrade one to
//! argon2id after a successful login.
//!
//! Every stored value goes through the same parser ([`StoredHash::parse`]) before it is
//! trusted, whether it is being imported or verified, so a value that import would reject is
//! never verified either.

use argon2::password_hash::phc::PasswordHash as PhcHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use sha_crypt::ShaCrypt;

/// The stored value of an account that has no password: no scheme of that name exists, so
/// [`verify`] refuses it like any unknown scheme.
const DISABLED: &str = "{DISABLED}";

/// The schemes [`normalise_imported`] accepts, for error messages.
const ACCEPTED_SCHEMES: &str = "{ARGON2ID}, {ARGON2I}, {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}";

// Upper bounds on the cost parameters of an imported hash. Every login verifies the stored
// hash, so a hash with an absurd cost (a typo, or a hostile import file) would let anyone who
// knows the address tie up the server with a few login attempts, or make it abort on a failed
// allocation. The limits are far above what any real system generates.

/// Argon2 memory per verification, in KiB (1 GiB).
const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;
/// Argon2 memory × passes, in KiB (the work of 1 GiB × 4 passes).
const MAX_ARGON2_WORK_KIB: u64 = 4 * 1024 * 1024;
/// SHA-crypt rounds (glibc's default is 5000; `mkpasswd -R` users rarely exceed a million).
const MAX_SHA_CRYPT_ROUNDS: u32 = 10_000_000;
/// bcrypt cost, log2 of the rounds (htpasswd and Dovecot default to 5–12).
const MAX_BCRYPT_COST: u32 = 18;

/// Argon2 version 0x13 (19), the current one; 0x10 (16) is the original.
const ARGON2_VERSION_CURRENT: u32 = 0x13;
const ARGON2_VERSION_ORIGINAL: u32 = 0x10;

/// Why a password hash is not accepted.
///
/// Messages name the scheme and the problem but never repeat the hash itself: a plaintext
/// password pasted into the hash column must not end up in a log or terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password hash is empty")]
    Empty,
    #[error(
        "not a recognised password hash: expected `{{SCHEME}}hash` or a crypt string starting \
         with `$argon2id$`, `$argon2i$`, `$6$`, `$5$`, `$2y$`, `$2b$` or `$2a$`"
    )]
    Unrecognised,
    #[error("password scheme {scheme} is not accepted; accepted schemes are {ACCEPTED_SCHEMES}")]
    UnknownScheme {
        /// The scheme as written in the hash, e.g. `{PLAIN}` or `$1$ (MD5-CRYPT)`.
        scheme: String,
    },
    #[error("malformed {{{scheme}}} hash: {reason}")]
    Malformed {
        scheme: &'static str,
        reason: String,
    },
}

/// The hash schemes Lifeboat verifies, named as Dovecot names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Argon2id,
    Argon2i,
    Sha512Crypt,
    Sha256Crypt,
    BlfCrypt,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Argon2id => "ARGON2ID",
            Scheme::Argon2i => "ARGON2I",
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::Sha256Crypt => "SHA256-CRYPT",
            Scheme::BlfCrypt => "BLF-CRYPT",
        }
    }

    /// Dovecot scheme names are case-insensitive (`{sha512-crypt}` works there too).
    fn from_name(name: &str) -> Option<Scheme> {
        [
            Scheme::Argon2id,
            Scheme::Argon2i,
            Scheme::Sha512Crypt,
            Scheme::Sha256Crypt,
            Scheme::BlfCrypt,
        ]
        .into_iter()
        .find(|scheme| scheme.name().eq_ignore_ascii_case(name))
    }

    /// The scheme of a bare crypt string, from its `$id$` prefix.
    fn from_crypt(crypt: &str) -> Result<Scheme, PasswordError> {
        let id = crypt
            .strip_prefix('$')
            .and_then(|rest| rest.split('$').next())
            .ok_or(PasswordError::Unrecognised)?;
        match id {
            "argon2id" => Ok(Scheme::Argon2id),
            "argon2i" => Ok(Scheme::Argon2i),
            "6" => Ok(Scheme::Sha512Crypt),
            "5" => Ok(Scheme::Sha256Crypt),
            "2y" | "2b" | "2a" => Ok(Scheme::BlfCrypt),
            "2x" => Err(malformed(
                Scheme::BlfCrypt,
                "`$2x$` hashes come from the pre-2011 crypt_blowfish bug and cannot be verified \
                 safely; the user needs a new password",
            )),
            "1" => Err(unknown_scheme("$1$ (MD5-CRYPT)")),
            "argon2d" => Err(unknown_scheme("$argon2d$ (ARGON2D)")),
            _ if is_scheme_like(id) => Err(unknown_scheme(&format!("${id}$"))),
            _ => Err(PasswordError::Unrecognised),
        }
    }
}

fn unknown_scheme(scheme: &str) -> PasswordError {
    PasswordError::UnknownScheme {
        scheme: scheme.to_string(),
    }
}

fn malformed(scheme: Scheme, reason: impl Into<String>) -> PasswordError {
    PasswordError::Malformed {
        scheme: scheme.name(),
        reason: reason.into(),
    }
}

/// True for text that looks like a scheme name rather than, say, a plaintext password that
/// happens to start with `{` (which must not be echoed in an error).
fn is_scheme_like(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A stored value split into its scheme and crypt string, checked to be well-formed.
#[derive(Debug, Clone, Copy)]
struct StoredHash<'a> {
    scheme: Scheme,
    /// The hash after the `{SCHEME}` prefix, e.g. `$6$salt$…`.
    crypt: &'a str,
    /// Argon2 version (`v=`), for [`needs_rehash`]; `None` for other schemes.
    argon2_version: Option<u32>,
}

impl<'a> StoredHash<'a> {
    /// Parses a stored value, which always carries a `{SCHEME}` prefix.
    fn parse(stored: &'a str) -> Result<StoredHash<'a>, PasswordError> {
        let (name, crypt) = split_prefix(stored)?;
        let scheme =
            Scheme::from_name(name).ok_or_else(|| unknown_scheme(&format!("{{{name}}}")))?;
        Self::check(scheme, crypt)
    }

    /// Checks that `crypt` is a well-formed hash of `scheme` with sane costs.
    fn check(scheme: Scheme, crypt: &'a str) -> Result<StoredHash<'a>, PasswordError> {
        let argon2_version = match scheme {
            Scheme::Argon2id | Scheme::Argon2i => Some(check_argon2(scheme, crypt)?),
            Scheme::Sha512Crypt | Scheme::Sha256Crypt => {
                check_sha_crypt(scheme, crypt)?;
                None
            }
            Scheme::BlfCrypt => {
                check_bcrypt(crypt)?;
                None
            }
        };
        Ok(StoredHash {
            scheme,
            crypt,
            argon2_version,
        })
    }

    fn canonical(&self) -> String {
        format!("{{{}}}{}", self.scheme.name(), self.crypt)
    }
}

/// Splits `{NAME}rest` into `NAME` and `rest`.
fn split_prefix(stored: &str) -> Result<(&str, &str), PasswordError> {
    let (name, crypt) = stored
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
        .ok_or(PasswordError::Unrecognised)?;
    if !is_scheme_like(name) {
        return Err(PasswordError::Unrecognised);
    }
    Ok((name, crypt))
}

/// Parses a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) and returns its version.
fn check_argon2(scheme: Scheme, crypt: &str) -> Result<u32, PasswordError> {
    let phc = PhcHash::new(crypt)
        .map_err(|err| malformed(scheme, format!("not a valid PHC string ({err})")))?;
    let expected_algorithm = match scheme {
        Scheme::Argon2i => "argon2i",
        _ => "argon2id",
    };
    let algorithm = phc.algorithm.as_str();
    if algorithm != expected_algorithm {
        return Err(malformed(
            scheme,
            format!("the hash is `${algorithm}$`, not `${expected_algorithm}$`"),
        ));
    }
    // Without `v=` the reference implementation assumes 0x10 but the argon2 crate assumes
    // 0x13, so such a hash could never verify; refuse it here rather than at every login.
    let version = match phc.version {
        Some(version @ (ARGON2_VERSION_CURRENT | ARGON2_VERSION_ORIGINAL)) => version,
        Some(other) => return Err(malformed(scheme, format!("unknown version v={other}"))),
        None => return Err(malformed(scheme, "the version field (v=19) is missing")),
    };
    let params = argon2::Params::try_from(&phc)
        .map_err(|err| malformed(scheme, format!("bad parameters ({err})")))?;
    match &phc.salt {
        None => return Err(malformed(scheme, "the salt field is missing")),
        Some(salt) if salt.len() < argon2::MIN_SALT_LEN => {
            return Err(malformed(
                scheme,
                format!("the salt is shorter than {} bytes", argon2::MIN_SALT_LEN),
            ));
        }
        Some(_) => {}
    }
    if phc.hash.is_none() {
        return Err(malformed(scheme, "the hash field is missing"));
    }
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB
        || u64::from(params.m_cost()) * u64::from(params.t_cost()) > MAX_ARGON2_WORK_KIB
    {
        return Err(malformed(
            scheme,
            format!(
                "cost m={},t={} is above Lifeboat's limit (m ≤ {MAX_ARGON2_MEMORY_KIB} KiB, \
                 m×t ≤ {MAX_ARGON2_WORK_KIB})",
                params.m_cost(),
                params.t_cost()
            ),
        ));
    }
    Ok(version)
}

/// Checks `$6$[rounds=N$]salt$hash` (or `$5$…`) the way glibc writes it.
///
/// The sha-crypt crate reads a `rounds=` field it cannot parse as part of the salt, so a bad
/// one would verify nothing without saying why; this parse makes it an import error instead.
fn check_sha_crypt(scheme: Scheme, crypt: &str) -> Result<(), PasswordError> {
    let (prefix, hash_len) = match scheme {
        // 64 and 32 digest bytes in crypt's base64: ceil(bytes × 8 / 6) characters.
        Scheme::Sha512Crypt => ("$6$", 86),
        _ => ("$5$", 43),
    };
    let body = crypt
        .strip_prefix(prefix)
        .ok_or_else(|| malformed(scheme, format!("it does not start with `{prefix}`")))?;
    let fields: Vec<&str> = body.split('$').collect();
    let (salt, hash) = match fields.as_slice() {
        [rounds, salt, hash] => {
            let rounds = rounds
                .strip_prefix("rounds=")
                .ok_or_else(|| malformed(scheme, "expected `rounds=N` before the salt"))?;
            let rounds: u32 = rounds
                .parse()
                .map_err(|_| malformed(scheme, "the rounds value is not a number"))?;
            let valid = sha_crypt::Params::ROUNDS_MIN..=MAX_SHA_CRYPT_ROUNDS;
            if !valid.contains(&rounds) {
                return Err(malformed(
                    scheme,
                    format!(
                        "rounds={rounds} is outside {}..={}",
                        valid.start(),
                        valid.end()
                    ),
                ));
            }
            (*salt, *hash)
        }
        [salt, hash] => (*salt, *hash),
        _ => {
            return Err(malformed(
                scheme,
                format!("expected `{prefix}[rounds=N$]salt$hash`"),
            ));
        }
    };
    // glibc uses at most 16 salt characters; the crate's MCF parser allows this alphabet.
    if salt.is_empty()
        || salt.len() > 16
        || !salt.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'+' | b'=' | b',' | b'-')
        })
    {
        return Err(malformed(
            scheme,
            "the salt must be 1 to 16 characters of [A-Za-z0-9./+=,-]",
        ));
    }
    if hash.len() != hash_len || !hash.bytes().all(is_crypt_base64) {
        return Err(malformed(
            scheme,
            format!("the hash part must be {hash_len} characters of [A-Za-z0-9./]"),
        ));
    }
    Ok(())
}

/// Checks `$2y$NN$<22 salt chars><31 hash chars>`.
fn check_bcrypt(crypt: &str) -> Result<(), PasswordError> {
    let scheme = Scheme::BlfCrypt;
    let version = crypt.get(..4).unwrap_or_default();
    if !matches!(version, "$2y$" | "$2b$" | "$2a$") {
        return Err(malformed(
            scheme,
            "it must start with `$2y$`, `$2b$` or `$2a$`",
        ));
    }
    // The crate parses the cost with `str::parse`, which would also take `+5`; insist on the
    // two digits every implementation writes.
    let cost_digits = crypt.get(4..6).unwrap_or_default();
    if cost_digits.len() != 2 || !cost_digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            scheme,
            "the cost must be two digits, as in `$2y$10$`",
        ));
    }
    let parts: bcrypt::HashParts = crypt
        .parse()
        .map_err(|err| malformed(scheme, format!("{err}")))?;
    let cost = parts.get_cost();
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(malformed(
            scheme,
            format!("cost {cost} is outside 4..={MAX_BCRYPT_COST}"),
        ));
    }
    Ok(())
}

fn is_crypt_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// Hashes a new password with argon2id (the argon2 crate's defaults, which are OWASP's
/// recommendation: 19 MiB, 2 passes, 1 lane) and a random 16-byte salt.
///
/// Returns `{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
pub fn hash(password: &str) -> String {
    // The only failure is the operating system's random number generator failing, after
    // which no secure salt (or TLS session) can be made; there is nothing sensible to return.
    let phc = Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2id hashing failed: the system random number generator is unavailable");
    format!("{{{}}}{}", Scheme::Argon2id.name(), phc)
}

/// Checks a password against a stored value. False for a wrong password, an unknown scheme
/// (including [`unusable`]), or a malformed or over-costly hash; never panics.
pub fn verify(stored: &str, password: &str) -> bool {
    let Ok(hash) = StoredHash::parse(stored) else {
        return false;
    };
    let password = password.as_bytes();
    match hash.scheme {
        Scheme::Argon2id | Scheme::Argon2i => PhcHash::new(hash.crypt)
            .is_ok_and(|phc| Argon2::default().verify_password(password, &phc).is_ok()),
        // The crate picks SHA-512 or SHA-256 from the hash's own `$6$`/`$5$`, which
        // StoredHash::parse has checked agrees with the scheme.
        Scheme::Sha512Crypt | Scheme::Sha256Crypt => ShaCrypt::default()
            .verify_password(password, hash.crypt)
            .is_ok(),
        Scheme::BlfCrypt => bcrypt::verify(password, hash.crypt).unwrap_or(false),
    }
}

/// Checks a hash brought in from another system and returns it in stored form.
///
/// Accepts `{ARGON2ID}`, `{ARGON2I}`, `{SHA512-CRYPT}`, `{SHA256-CRYPT}` and `{BLF-CRYPT}`
/// (any case), Dovecot's `{CRYPT}` when it holds one of those, and the bare crypt strings
/// `$argon2id$…`, `$argon2i$…`, `$6$…`, `$5$…`, `$2y$…`, `$2b$…`, `$2a$…`. Surrounding
/// whitespace is ignored.
pub fn normalise_imported(hash: &str) -> Result<String, PasswordError> {
    let hash = hash.trim();
    if hash.is_empty() {
        return Err(PasswordError::Empty);
    }
    let (scheme, crypt) = if hash.starts_with('{') {
        let (name, crypt) = split_prefix(hash)?;
        match Scheme::from_name(name) {
            Some(scheme) => (scheme, crypt),
            // Dovecot's {CRYPT} means "whatever libc crypt() makes of it"; the crypt string
            // says which algorithm that is.
            None if name.eq_ignore_ascii_case("CRYPT") => match Scheme::from_crypt(crypt) {
                Ok(scheme) => (scheme, crypt),
                Err(PasswordError::Unrecognised) => {
                    return Err(unknown_scheme("{CRYPT} with a DES or other legacy hash"));
                }
                Err(err) => return Err(err),
            },
            None => {
                return Err(unknown_scheme(&format!(
                    "{{{}}}",
                    name.to_ascii_uppercase()
                )));
            }
        }
    } else {
        (Scheme::from_crypt(hash)?, hash)
    };
    Ok(StoredHash::check(scheme, crypt)?.canonical())
}

/// True when a stored hash should be replaced by [`hash`] the next time its password is
/// verified: any scheme other than argon2id, or argon2id of the original 0x10 version.
///
/// False for argon2id, and for values no password verifies (such as [`unusable`]): there is
/// no login on which to upgrade them.
pub fn needs_rehash(stored: &str) -> bool {
    match StoredHash::parse(stored) {
        Ok(hash) => {
            hash.scheme != Scheme::Argon2id || hash.argon2_version != Some(ARGON2_VERSION_CURRENT)
        }
        Err(_) => false,
    }
}

/// A stored value that no password verifies, for accounts created without one.
pub fn unusable() -> String {
    DISABLED.to_string()
}

/// Whether some password can verify against `stored`: false for [`unusable`] and for
/// anything malformed. Used to tell whether a user has a local password at all.
pub fn is_usable(stored: &str) -> bool {
    StoredHash::parse(stored).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known vectors, each made by an independent implementation (not the crates used above).
    // The command that produced each is noted next to it.

    /// `openssl passwd -6 -salt 'Lifeboat.Salt16' 'correct horse battery'` (OpenSSL 3)
    const SHA512_OPENSSL: &str = "$6$Lifeboat.Salt16$eRjx8xoTOt7OO7t0tN9yVd6GGrv9lVW2E6LH/L/zHVjjlQG4dLRn48w14eq4sqLvrGH7aS5oMlBxfao9crGZc.";
    /// `openssl passwd -6 -salt 'xyz' 'pässwörd ünicode'` (UTF-8 password)
    const SHA512_OPENSSL_UNICODE: &str = "$6$xyz$OE16RFJTOi4Q/r8gHuVuA50Vi6d3vQ4amozHyatd9SjKC8gyk2uiUH79KU7c1sDvj8rm9E/KW7RmLAQclB0rB0";
    /// glibc: `python3 -c 'import crypt; print(crypt.crypt("rounds test", "$6$rounds=10000$roundsalt$"))'`
    const SHA512_GLIBC_ROUNDS: &str = "$6$rounds=10000$roundsalt$EoU5p32.IPRxBLU4OIbLxzneoI3UnXcqVjDPXLQgEeS2t1en.zF2np1SStGK3PL8yM.IQuKwsjPEO6iWI1P4B.";
    /// `openssl passwd -5 -salt 'Sha256Salt' 'correct horse battery'`
    const SHA256_OPENSSL: &str = "$5$Sha256Salt$bUzD9ny1srLvzDlQzwgL0oFqh9HeLt0.OhIeSeMO1F6";
    /// glibc: `python3 -c 'import crypt; print(crypt.crypt("rounds test", "$5$rounds=2000$roundsalt$"))'`
    const SHA256_GLIBC_ROUNDS: &str =
        "$5$rounds=2000$roundsalt$lOsN14FiRwqo25E7X6a9FPGcWAFcIddJjpoeTModGZ5";
    /// `htpasswd -bnBC 5 "" 'tr0ub4dor&3'` (apache2-utils 2.4, leading `:` removed)
    const BCRYPT_2Y_HTPASSWD: &str = "$2y$05$Whb.eoMUsB.9CsejQKZcwetcJiCZKkWh8d/vFC2b/yYwFfB5m/UXi";
    /// `python3 -c 'import bcrypt; print(bcrypt.hashpw(b"bcrypt via python", bcrypt.gensalt(rounds=4)).decode())'` (bcrypt 5.0.0)
    const BCRYPT_2B_PYTHON: &str = "$2b$04$U02iwLx5DqUuEwtIkOcqzeeQHRdR0KqroajDv4Pqey5ZSVfEFYhYa";
    /// `python3 -c 'import bcrypt; print(bcrypt.hashpw(b"two-a prefix", bcrypt.gensalt(rounds=4, prefix=b"2a")).decode())'`
    const BCRYPT_2A_PYTHON: &str = "$2a$04$0mgK25cKDo.OMR0.tE.WO.Tw0AlsyWTlF/oxUM0iJDlDEubKTDKQC";
    /// `echo -n 'argon two id' | argon2 somesaltvalue -id -t 2 -m 12 -p 1 -e` (Debian argon2 CLI)
    const ARGON2ID_CLI: &str = "$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHR2YWx1ZQ$NE/t9sTbq4kgnfatBKxxCxYHBxiUt/XMyvqtxIcKlX0";
    /// `python3 -c 'import argon2; print(argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2).hash("cffi password"))'` (argon2-cffi 25.1.0)
    const ARGON2ID_CFFI: &str = "$argon2id$v=19$m=8192,t=1,p=2$d/YVmEKNP0/AtgvY8JusCw$xst4gFXiIg3hes5U07iZ1pSZYCExTF7aRWm/ScAqnXQ";
    /// `echo -n 'argon two i' | argon2 othersaltvalue -i -t 3 -m 12 -p 1 -e`
    const ARGON2I_CLI: &str = "$argon2i$v=19$m=4096,t=3,p=1$b3RoZXJzYWx0dmFsdWU$VMvBAO0jqsARGqNF3RqU5sQFFwbCg+00GBot+6OHsak";

    /// Every vector with its scheme and password.
    const VECTORS: &[(&str, &str, &str)] = &[
        ("SHA512-CRYPT", SHA512_OPENSSL, "correct horse battery"),
        ("SHA512-CRYPT", SHA512_OPENSSL_UNICODE, "pässwörd ünicode"),
        ("SHA512-CRYPT", SHA512_GLIBC_ROUNDS, "rounds test"),
        ("SHA256-CRYPT", SHA256_OPENSSL, "correct horse battery"),
        ("SHA256-CRYPT", SHA256_GLIBC_ROUNDS, "rounds test"),
        ("BLF-CRYPT", BCRYPT_2Y_HTPASSWD, "tr0ub4dor&3"),
        ("BLF-CRYPT", BCRYPT_2B_PYTHON, "bcrypt via python"),
        ("BLF-CRYPT", BCRYPT_2A_PYTHON, "two-a prefix"),
        ("ARGON2ID", ARGON2ID_CLI, "argon two id"),
        ("ARGON2ID", ARGON2ID_CFFI, "cffi password"),
        ("ARGON2I", ARGON2I_CLI, "argon two i"),
    ];

    fn stored(scheme: &str, crypt: &str) -> String {
        format!("{{{scheme}}}{crypt}")
    }

    #[test]
    fn hash_then_verify_round_trip() {
        let stored = hash("s3cret pass");
        assert!(
            stored.starts_with("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(&stored, "s3cret pass"));
        assert!(!verify(&stored, "s3cret pas"));
        assert!(!verify(&stored, "S3cret pass"));
        assert!(!verify(&stored, ""));
        assert!(!needs_rehash(&stored));
    }

    #[test]
    fn same_password_gets_a_fresh_salt() {
        assert_ne!(hash("same"), hash("same"));
    }

    #[test]
    fn known_vectors_verify_with_prefix() {
        for (scheme, crypt, password) in VECTORS {
            let stored = stored(scheme, crypt);
            assert!(verify(&stored, password), "{stored} rejected {password:?}");
            assert!(
                !verify(&stored, "wrong password"),
                "{stored} accepted a wrong password"
            );
            assert!(
                !verify(&stored, &format!("{password} ")),
                "{stored} accepted a trailing space"
            );
        }
    }

    #[test]
    fn known_vectors_import_bare_and_prefixed() {
        for (scheme, crypt, password) in VECTORS {
            let expected = stored(scheme, crypt);
            assert_eq!(
                normalise_imported(crypt).as_ref(),
                Ok(&expected),
                "bare {crypt}"
            );
            assert_eq!(normalise_imported(&expected).as_ref(), Ok(&expected));
            let lowercase_scheme = stored(&scheme.to_ascii_lowercase(), crypt);
            assert_eq!(
                normalise_imported(&lowercase_scheme).as_ref(),
                Ok(&expected)
            );
            let padded = format!("  {expected}\t");
            assert_eq!(normalise_imported(&padded).as_ref(), Ok(&expected));
            assert!(verify(&expected, password));
        }
    }

    #[test]
    fn dovecot_crypt_scheme_is_resolved_from_the_crypt_string() {
        assert_eq!(
            normalise_imported(&format!("{{CRYPT}}{SHA512_OPENSSL}")),
            Ok(stored("SHA512-CRYPT", SHA512_OPENSSL))
        );
        assert_eq!(
            normalise_imported(&format!("{{CRYPT}}{BCRYPT_2Y_HTPASSWD}")),
            Ok(stored("BLF-CRYPT", BCRYPT_2Y_HTPASSWD))
        );
        // Traditional DES crypt.
        assert!(matches!(
            normalise_imported("{CRYPT}abJnggxhB/yWI"),
            Err(PasswordError::UnknownScheme { .. })
        ));
    }

    #[test]
    fn needs_rehash_for_everything_but_current_argon2id() {
        assert!(!needs_rehash(&stored("ARGON2ID", ARGON2ID_CLI)));
        assert!(!needs_rehash(&stored("ARGON2ID", ARGON2ID_CFFI)));
        for scheme_and_crypt in [
            ("ARGON2I", ARGON2I_CLI),
            ("SHA512-CRYPT", SHA512_OPENSSL),
            ("SHA256-CRYPT", SHA256_OPENSSL),
            ("BLF-CRYPT", BCRYPT_2Y_HTPASSWD),
        ] {
            let (scheme, crypt) = scheme_and_crypt;
            assert!(needs_rehash(&stored(scheme, crypt)), "{scheme}");
        }
        let original_version = ARGON2ID_CLI.replace("v=19", "v=16");
        assert!(needs_rehash(&stored("ARGON2ID", &original_version)));
        assert!(!needs_rehash(&unusable()));
        assert!(!needs_rehash("garbage"));
    }

    #[test]
    fn unusable_verifies_nothing() {
        let disabled = unusable();
        for password in ["", "{DISABLED}", "DISABLED", "password"] {
            assert!(!verify(&disabled, password));
        }
        assert!(normalise_imported(&disabled).is_err());
        assert!(!is_usable(&disabled));
        assert!(is_usable(&hash("x")));
    }

    #[test]
    fn unknown_schemes_are_named_and_never_verified() {
        for (input, named) in [
            ("{PLAIN}secret", "{PLAIN}"),
            ("{plain}secret", "{PLAIN}"),
            ("{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", "{MD5}"),
            ("{SSHA512}abc", "{SSHA512}"),
            ("$1$saltsalt$XCxPFuPt5DfrxbX1r6.bw1", "MD5-CRYPT"),
            ("$argon2d$v=19$m=4096,t=2,p=1$c29tZXNhbHQ$aGFzaA", "ARGON2D"),
            ("$7$CU..../....abc$def", "$7$"),
        ] {
            let err = normalise_imported(input).expect_err(input);
            let message = err.to_string();
            assert!(message.contains(named), "{message}");
            assert!(message.contains("{SHA512-CRYPT}"), "{message}");
            assert!(!verify(input, "secret"), "{input}");
        }
        assert!(
            !normalise_imported("{PLAIN}secret")
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
    }

    #[test]
    fn malformed_hashes_are_rejected_and_never_verified() {
        let truncated_sha512 = &SHA512_OPENSSL[..SHA512_OPENSSL.len() - 1];
        let truncated_bcrypt = &BCRYPT_2Y_HTPASSWD[..BCRYPT_2Y_HTPASSWD.len() - 1];
        let bad_bcrypt_char = BCRYPT_2Y_HTPASSWD.replace('W', "!");
        let argon2_no_version = ARGON2ID_CLI.replace("v=19$", "");
        let argon2_short_salt = ARGON2ID_CLI.replace("c29tZXNhbHR2YWx1ZQ", "c2FsdA");
        let argon2_huge_memory = ARGON2ID_CLI.replace("m=4096", "m=4194304");
        let argon2_huge_passes = ARGON2ID_CLI.replace("t=2", "t=2000");
        let argon2_unknown_param = ARGON2ID_CLI.replace("p=1", "p=1,x=2");
        let sha512_low_rounds = SHA512_GLIBC_ROUNDS.replace("rounds=10000", "rounds=999");
        let sha512_huge_rounds = SHA512_GLIBC_ROUNDS.replace("rounds=10000", "rounds=999999999");
        let sha512_bad_rounds = SHA512_GLIBC_ROUNDS.replace("rounds=10000", "rounds=many");
        let bcrypt_huge_cost = BCRYPT_2Y_HTPASSWD.replace("$05$", "$31$");
        let bcrypt_plus_cost = BCRYPT_2Y_HTPASSWD.replace("$05$", "$+5$");
        let bcrypt_2x = BCRYPT_2Y_HTPASSWD.replace("$2y$", "$2x$");
        let cases: Vec<(&str, String)> = vec![
            ("SHA512-CRYPT", truncated_sha512.to_string()),
            ("SHA512-CRYPT", format!("{SHA512_OPENSSL}$extra")),
            ("SHA512-CRYPT", "$6$$".to_string()),
            ("SHA512-CRYPT", "$6$salt".to_string()),
            ("SHA512-CRYPT", SHA256_OPENSSL.to_string()),
            ("SHA512-CRYPT", sha512_low_rounds),
            ("SHA512-CRYPT", sha512_huge_rounds),
            ("SHA512-CRYPT", sha512_bad_rounds),
            ("SHA256-CRYPT", SHA512_OPENSSL.to_string()),
            ("BLF-CRYPT", truncated_bcrypt.to_string()),
            ("BLF-CRYPT", bad_bcrypt_char),
            ("BLF-CRYPT", bcrypt_huge_cost),
            ("BLF-CRYPT", bcrypt_plus_cost),
            ("BLF-CRYPT", bcrypt_2x),
            ("BLF-CRYPT", format!("{BCRYPT_2Y_HTPASSWD}ü")),
            ("ARGON2ID", ARGON2I_CLI.to_string()),
            ("ARGON2I", ARGON2ID_CLI.to_string()),
            ("ARGON2ID", argon2_no_version),
            ("ARGON2ID", argon2_short_salt),
            ("ARGON2ID", argon2_huge_memory),
            ("ARGON2ID", argon2_huge_passes),
            ("ARGON2ID", argon2_unknown_param),
            (
                "ARGON2ID",
                "$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHR2YWx1ZQ".to_string(),
            ),
            ("ARGON2ID", "not a hash".to_string()),
            ("ARGON2ID", String::new()),
        ];
        for (scheme, crypt) in &cases {
            let prefixed = stored(scheme, crypt);
            let err = normalise_imported(&prefixed).expect_err(&prefixed);
            assert!(
                matches!(err, PasswordError::Malformed { .. }),
                "{prefixed}: {err:?}"
            );
            assert!(!verify(&prefixed, "argon two id"), "{prefixed}");
            assert!(!verify(&prefixed, ""), "{prefixed}");
        }
    }

    #[test]
    fn unrecognised_input_is_not_echoed() {
        for input in [
            "hunter2",
            "{not a scheme}hunter2",
            "{PLAIN",
            "$",
            "$$",
            "$6",
            "{}$6$",
            "{ARGON2ID}",
        ] {
            let err = normalise_imported(input).expect_err(input);
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(!verify(input, ""), "{input}");
            assert!(!verify(input, "hunter2"), "{input}");
        }
        assert_eq!(normalise_imported(" \t"), Err(PasswordError::Empty));
        assert_eq!(
            normalise_imported("hunter2"),
            Err(PasswordError::Unrecognised)
        );
    }

    #[test]
    fn verify_never_panics_on_odd_input() {
        let odd = [
            "",
            "{",
            "}",
            "{}",
            "{ARGON2ID}$argon2id$",
            "{ARGON2ID}$argon2id$v=19$m=0,t=0,p=0$$",
            "{ARGON2ID}$argon2id$v=4294967296$m=1,t=1,p=1$c29tZXNhbHQ$aGFzaA",
            "{SHA512-CRYPT}$6$rounds=$salt$hash",
            "{SHA512-CRYPT}$6$ü$ü",
            "{BLF-CRYPT}$2y$ü5$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "{BLF-CRYPT}$2y$",
            "{SHA256-CRYPT}\u{0}",
        ];
        for input in odd {
            assert!(!verify(input, "x"), "{input:?}");
            assert!(!needs_rehash(input) || StoredHash::parse(input).is_ok());
            let _ = normalise_imported(input);
        }
    }
}
