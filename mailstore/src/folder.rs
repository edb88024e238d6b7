//! Folder names as the store keeps them.

/// INBOX is case-insensitive (RFC 3501); other names are exact.
pub fn canonical_folder(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}
