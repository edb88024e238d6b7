//! A login checked against the directory: find the user's entry with the service
//! account, then bind as that entry with the password.

use ldap3::{Scope, SearchEntry, ldap_escape};

use crate::connection::{DirectoryError, is_connection_failure, result_code, service_connection};
use crate::settings::{Kind, Settings};

/// The directory's answer to a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The directory said no: wrong password, no such entry, account locked. A cached
    /// password must not be used instead.
    Rejected(String),
    /// The directory could not be asked: only now may a cached password be used.
    Unreachable(String),
}

/// Checks `password` for the user whose own address is `address`.
pub async fn check_password(settings: &Settings, address: &str, password: &str) -> Verdict {
    // An empty password is an "unauthenticated bind" that many servers accept as
    // anonymous: it must never count as a successful login.
    if password.is_empty() {
        return Verdict::Rejected("empty password".to_string());
    }
    let mut ldap = match service_connection(settings).await {
        Ok(ldap) => ldap,
        Err(error) => return Verdict::Unreachable(error.to_string()),
    };
    let verdict = match find_entry(&mut ldap, settings, address).await {
        Ok(Some(dn)) => {
            let bound = ldap
                .with_timeout(settings.timeout)
                .simple_bind(&dn, password)
                .await;
            match bound.and_then(|result| result.success()) {
                Ok(_) => Verdict::Accepted,
                Err(e) if is_connection_failure(&e) => Verdict::Unreachable(e.to_string()),
                Err(e) => Verdict::Rejected(match result_code(&e) {
                    Some(49) => "wrong password".to_string(),
                    _ => e.to_string(),
                }),
            }
        }
        Ok(None) => Verdict::Rejected("no directory entry for this address".to_string()),
        Err(DirectoryError::Search(why)) => Verdict::Rejected(why),
        Err(error) => Verdict::Unreachable(error.to_string()),
    };
    let _ = ldap.unbind().await;
    verdict
}

/// The DN of the one entry matching the user filter with this address.
async fn find_entry(
    ldap: &mut ldap3::Ldap,
    settings: &Settings,
    address: &str,
) -> Result<Option<String>, DirectoryError> {
    let escaped = ldap_escape(address);
    let by_address = match settings.kind {
        Kind::OpenLdap => format!("({}={escaped})", settings.attributes.address),
        Kind::ActiveDirectory => format!(
            "(|({}={escaped})({}=SMTP:{escaped}))",
            settings.attributes.address, settings.attributes.aliases
        ),
    };
    let filter = format!("(&{}{by_address})", settings.user_filter);
    let found = ldap
        .with_timeout(settings.timeout)
        .search(&settings.base, Scope::Subtree, &filter, vec!["1.1"])
        .await
        .and_then(|result| result.success());
    let (entries, _) = match found {
        Ok(found) => found,
        Err(e) if is_connection_failure(&e) => {
            return Err(crate::connection::unreachable(settings, e));
        }
        Err(e) => return Err(DirectoryError::Search(e.to_string())),
    };
    match entries.len() {
        0 => Ok(None),
        1 => Ok(Some(
            SearchEntry::construct(entries.into_iter().next().expect("one")).dn,
        )),
        n => Err(DirectoryError::Search(format!(
            "{n} directory entries have the address {address}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Attributes, Kind};
    use std::time::Duration;

    /// Many servers take a bind with an empty password as anonymous and say "success":
    /// that must never log anyone in. (No server is needed: nothing is sent.)
    #[tokio::test]
    async fn an_empty_password_is_refused_without_asking() {
        let settings = Settings {
            url: "ldap://192.0.2.1:389".into(),
            ca_file: None,
            bind_dn: "cn=x".into(),
            bind_password_file: "/nonexistent".into(),
            base: "dc=example".into(),
            user_filter: Kind::OpenLdap.default_user_filter().into(),
            disabled_filter: None,
            group: None,
            kind: Kind::OpenLdap,
            attributes: Attributes {
                address: "mail".into(),
                aliases: "mailAlternateAddress".into(),
                alternate_email: None,
            },
            timeout: Duration::from_millis(1),
            page_size: 10,
        };
        assert_eq!(
            check_password(&settings, "ann@example.test", "").await,
            Verdict::Rejected("empty password".into())
        );
    }
}
