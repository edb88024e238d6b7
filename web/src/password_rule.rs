//! The password rule for passwords chosen in the portal (settings and reset). Admins
//! setting one with `lifeboat user passwd` are not held to it.

/// Shown beside every new-password field, and in the README.
pub const RULE: &str = "A new password needs at least 10 characters (at most 1024), \
    must not contain your address or its name part, must not be one character repeated, \
    and must not be a well-known password such as password123.";

const MIN_CHARS: usize = 10;
const MAX_BYTES: usize = 1024;

/// Passwords that meet the length rule but are the first any guesser tries.
const WELL_KNOWN: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "1234567890",
    "0123456789",
    "12345678910",
    "qwertyuiop",
    "qwerty1234",
    "qwerty123456",
    "iloveyou123",
    "welcome123",
    "letmein123",
    "abc1234567",
    "administrator",
    "changeme123",
    "trustno1234",
    "1q2w3e4r5t",
    "asdfghjkl1",
    "zaq12wsxcde",
    "football123",
    "monkey12345",
    "summer2024!",
    "winter2024!",
    "lifeboat123",
];

/// Why `password` is refused for `address`, or `Ok`.
pub fn check(address: &str, password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_CHARS {
        return Err("The new password is too short: use at least 10 characters.");
    }
    if password.len() > MAX_BYTES {
        return Err("The new password is too long: use at most 1024 characters.");
    }
    let lower = password.to_lowercase();
    let address = address.to_lowercase();
    let local = address.split('@').next().unwrap_or_default();
    if lower.contains(&address) || (local.chars().count() >= 3 && lower.contains(local)) {
        return Err("The new password must not contain your address or its name part.");
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("The new password must not be one character repeated.");
    }
    if WELL_KNOWN.contains(&lower.as_str()) {
        return Err("That password is one of the first any guesser tries; choose another.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_rule_is_the_one_applied() {
        let me = "alice@example.com";
        assert!(check(me, "short").is_err());
        assert!(check(me, "aaaaaaaaaaaa").is_err());
        assert!(check(me, "Password123").is_err());
        assert!(check(me, "xx-Alice-2024-yy").is_err());
        assert!(check(me, "alice@example.com!").is_err());
        assert!(check(me, &"x".repeat(1025)).is_err());
        assert!(check(me, "correct horse battery").is_ok());
        assert!(
            check("al@example.com", "my pal is here").is_ok(),
            "short names are not words"
        );
    }
}
