//! Mail addresses as the store knows them: `local@domain`, domain in lowercase.
//!
//! The local part keeps its case (RFC 5321 says it may be significant), but lookups in the
//! index are case-insensitive, so `Alice@Example.COM` and `alice@example.com` are one user.

use std::fmt;
use std::str::FromStr;

/// A normalised `local@domain` address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    text: String,
    at: usize,
}

/// Why a string is not an address Lifeboat accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid address: {reason}")]
pub struct AddressError {
    pub input: String,
    pub reason: &'static str,
}

impl Address {
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let fail = |reason| AddressError {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim();
        let trimmed = trimmed
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(trimmed);
        let at = trimmed.rfind('@').ok_or_else(|| fail("missing '@'"))?;
        let (local, domain) = (&trimmed[..at], &trimmed[at + 1..]);
        if local.is_empty() {
            return Err(fail("empty local part"));
        }
        if local.len() > 64 {
            return Err(fail("local part longer than 64 octets"));
        }
        // RFC 5322 dot-atom text (and UTF-8 for SMTPUTF8), but not '/', which would
        // escape the Maildir path. Quoted local parts are not accepted.
        if !local.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || "!#$%&'*+-=?^_`{|}~.".contains(c)
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
        }) {
            return Err(fail(
                "local part may hold only letters, digits, '.' and !#$%&'*+-=?^_`{|}~",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(fail("local part has a leading, trailing or double '.'"));
        }
        let domain = normalise_domain(domain).map_err(fail)?;
        Ok(Address {
            text: format!("{local}@{domain}"),
            at,
        })
    }

    pub fn local(&self) -> &str {
        &self.text[..self.at]
    }

    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Lowercases and checks a domain name (letters, digits, '-', dots between labels).
pub fn normalise_domain(domain: &str) -> Result<String, &'static str> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Err("empty domain");
    }
    if domain.len() > 253 {
        return Err("domain longer than 253 octets");
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("domain has an empty or over-long label");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("domain may hold only letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("domain label starts or ends with '-'");
        }
    }
    Ok(domain)
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_lowercased_local_part_kept() {
        let a = Address::parse(" <Alice.B@Example.COM> ").unwrap();
        assert_eq!(a.as_str(), "Alice.B@example.com");
        assert_eq!(a.local(), "Alice.B");
        assert_eq!(a.domain(), "example.com");
    }

    #[test]
    fn accepts_atext_and_utf8() {
        for good in [
            "o'brien+tag@example.com",
            "a.b-c_d=e@example.com",
            "jürgen@example.com",
        ] {
            assert!(Address::parse(good).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "al ice@example.com",
            "alice@exa_mple.com",
            "alice@-example.com",
            "alice@example..com",
            ".alice@example.com",
            "a/b@example.com",
            "a@b,c@example.com",
            "\"quoted\"@example.com",
            "a\\b@example.com",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
