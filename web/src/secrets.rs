//! Random secrets (session ids, CSRF and reset tokens) and the hashes the index keeps
//! of them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// 256 random bits, URL-safe: a session id, a CSRF token or a reset token.
pub fn token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the index stores of a secret: its SHA-256 in hex. The secret has 256 random
/// bits, so no salt or slow hash is needed.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two strings in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// Whether `text` could be a [`token`] (URL-safe base64 of 32 bytes): anything else is
/// refused before it reaches a query.
pub fn looks_like_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed_in_hex() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert!(!looks_like_token("../../etc/passwd"));
        assert_eq!(hash("x").len(), 64);
        assert_eq!(hash("x"), hash("x"));
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same("a", "ab"));
    }
}
