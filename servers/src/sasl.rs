//! SASL PLAIN (RFC 4616), shared by the servers that offer it.

/// The login name and password from a decoded PLAIN response
/// (`[authzid] NUL authcid NUL password`). Logging in as somebody else (a proxy
/// authorisation identity other than the user) is refused.
pub fn plain(decoded: &[u8]) -> Result<(String, String), &'static str> {
    let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
    let [authzid, authcid, password] = parts.as_slice() else {
        return Err("malformed PLAIN response");
    };
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
        return Err("authorization identity must be empty or the user");
    }
    match (std::str::from_utf8(authcid), std::str::from_utf8(password)) {
        (Ok(user), Ok(password)) if !user.is_empty() => {
            Ok((user.to_string(), password.to_string()))
        }
        _ => Err("malformed PLAIN response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        assert_eq!(
            plain(b"\0alice@x.test\0secret"),
            Ok(("alice@x.test".into(), "secret".into()))
        );
        assert_eq!(
            plain(b"Alice@x.test\0alice@x.test\0pw"),
            Ok(("alice@x.test".into(), "pw".into()))
        );
        assert!(plain(b"bob@x.test\0alice@x.test\0pw").is_err());
        assert!(plain(b"\0\0pw").is_err());
        assert!(plain(b"no separators").is_err());
        assert!(plain(b"\0a\0b\0c").is_err());
    }
}
