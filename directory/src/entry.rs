//! One directory entry to one [`DirectoryUser`], or the reason it is left out. No I/O.

use std::collections::{HashMap, HashSet};

use lifeboat_mailstore::Address;
use lifeboat_mailstore::directory_sync::{DirectoryUser, DisableReason, SkipReason, Skipped};

use crate::settings::{Kind, Settings};

/// An entry as the search returned it, attribute names lowercased.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawEntry {
    pub dn: String,
    pub attrs: HashMap<String, Vec<String>>,
}

impl RawEntry {
    fn values(&self, attribute: &str) -> &[String] {
        self.attrs
            .get(&attribute.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// AD's `userAccountControl` flag ACCOUNTDISABLE.
const ACCOUNT_DISABLED: u32 = 0x2;

/// The attributes a user search asks for.
pub(crate) fn wanted_attributes(settings: &Settings) -> Vec<String> {
    let attributes = &settings.attributes;
    let mut wanted = vec![attributes.address.clone(), attributes.aliases.clone()];
    wanted.extend(attributes.alternate_email.clone());
    if settings.kind == Kind::ActiveDirectory {
        wanted.push("userAccountControl".to_string());
    }
    wanted
}

/// Maps one entry. `disabled` is what the searches around it found (disabled filter,
/// group membership); the entry's own flags are read here.
pub(crate) fn map_entry(
    entry: &RawEntry,
    settings: &Settings,
    disabled: Option<DisableReason>,
) -> Result<DirectoryUser, Skipped> {
    let skip = |address: Option<Address>, reason| Skipped {
        dn: entry.dn.clone(),
        address,
        reason,
    };
    let (primary, alias_values) = addresses(entry, settings);
    let primary = primary.ok_or_else(|| skip(None, SkipReason::NoAddress))?;
    let address = parse(&primary).map_err(|reason| skip(None, reason))?;
    let mut seen = HashSet::from([address.as_str().to_ascii_lowercase()]);
    let mut aliases = Vec::new();
    for value in alias_values {
        let alias = parse(&value).map_err(|reason| skip(Some(address.clone()), reason))?;
        if seen.insert(alias.as_str().to_ascii_lowercase()) {
            aliases.push(alias);
        }
    }
    let alternate_email = match &settings.attributes.alternate_email {
        Some(attribute) => entry
            .values(attribute)
            .first()
            .map(|value| parse(value))
            .transpose()
            .map_err(|reason| skip(Some(address.clone()), reason))?,
        None => None,
    };
    let disabled = disabled.or_else(|| {
        let flags = entry.values("userAccountControl").first()?;
        let flags: u32 = flags.trim().parse().ok()?;
        (settings.kind == Kind::ActiveDirectory && flags & ACCOUNT_DISABLED != 0)
            .then_some(DisableReason::DisabledInDirectory)
    });
    Ok(DirectoryUser {
        dn: entry.dn.clone(),
        address,
        aliases,
        alternate_email,
        disabled,
    })
}

/// The primary address and the alias values. Active Directory's `proxyAddresses` holds
/// `SMTP:primary` and `smtp:alias` (and other types, e.g. `X500:`, which are ignored);
/// the uppercase `SMTP:` value is the primary address, else `mail` is.
fn addresses(entry: &RawEntry, settings: &Settings) -> (Option<String>, Vec<String>) {
    let attributes = &settings.attributes;
    let mail = entry.values(&attributes.address).first().cloned();
    if settings.kind != Kind::ActiveDirectory {
        return (mail, entry.values(&attributes.aliases).to_vec());
    }
    let mut primary = None;
    let mut aliases = Vec::new();
    for value in entry.values(&attributes.aliases) {
        if let Some(address) = value.strip_prefix("SMTP:") {
            primary.get_or_insert_with(|| address.to_string());
        } else if let Some(address) = value.strip_prefix("smtp:") {
            aliases.push(address.to_string());
        }
    }
    let primary = primary.or(mail.clone());
    // `mail` differing from the SMTP: primary still lands in the same mailbox.
    if let Some(mail) = mail.filter(|m| primary.as_ref() != Some(m)) {
        aliases.push(mail);
    }
    (primary, aliases)
}

fn parse(value: &str) -> Result<Address, SkipReason> {
    Address::parse(value.trim()).map_err(|e| SkipReason::BadAddress {
        value: value.to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Attributes;
    use std::time::Duration;

    fn settings(kind: Kind) -> Settings {
        Settings {
            url: "ldap://127.0.0.1".into(),
            ca_file: None,
            bind_dn: String::new(),
            bind_password_file: "/dev/null".into(),
            base: String::new(),
            user_filter: kind.default_user_filter().into(),
            disabled_filter: None,
            group: None,
            kind,
            attributes: Attributes {
                address: "mail".into(),
                aliases: kind.default_alias_attribute().into(),
                alternate_email: Some("otherMailbox".into()),
            },
            timeout: Duration::from_secs(1),
            page_size: 10,
        }
    }

    fn entry(attrs: &[(&str, &[&str])]) -> RawEntry {
        RawEntry {
            dn: "cn=x,dc=example,dc=test".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        v.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn active_directory_proxy_addresses_give_the_primary_and_the_aliases() {
        let e = entry(&[
            ("mail", &["old@example.test"]),
            (
                "proxyAddresses",
                &[
                    "smtp:sales@example.test",
                    "SMTP:Jo@Example.test",
                    "X500:/o=ExchangeLabs/cn=jo",
                    "smtp:jo@example.test",
                ],
            ),
            ("userAccountControl", &["514"]),
        ]);
        let user = map_entry(&e, &settings(Kind::ActiveDirectory), None).unwrap();
        assert_eq!(user.address.as_str(), "Jo@example.test");
        let aliases: Vec<&str> = user.aliases.iter().map(Address::as_str).collect();
        assert_eq!(aliases, ["sales@example.test", "old@example.test"]);
        assert_eq!(user.disabled, Some(DisableReason::DisabledInDirectory));

        let enabled = entry(&[
            ("mail", &["a@example.test"]),
            ("userAccountControl", &["512"]),
        ]);
        let user = map_entry(&enabled, &settings(Kind::ActiveDirectory), None).unwrap();
        assert_eq!(user.disabled, None);
        assert_eq!(user.address.as_str(), "a@example.test");
    }

    #[test]
    fn openldap_entries_and_their_faults() {
        let s = settings(Kind::OpenLdap);
        let e = entry(&[
            ("mail", &["ann@example.test"]),
            (
                "mailAlternateAddress",
                &["a@example.test", "ANN@example.test"],
            ),
            ("otherMailbox", &["ann@home.example"]),
            // Not an OpenLDAP flag: ignored.
            ("userAccountControl", &["514"]),
        ]);
        let user = map_entry(&e, &s, None).unwrap();
        assert_eq!(user.aliases.len(), 1, "the primary is not its own alias");
        assert_eq!(user.alternate_email.unwrap().as_str(), "ann@home.example");
        assert_eq!(user.disabled, None);
        let in_group = map_entry(&e, &s, Some(DisableReason::NotInGroup)).unwrap();
        assert_eq!(in_group.disabled, Some(DisableReason::NotInGroup));

        let none = map_entry(&entry(&[]), &s, None).unwrap_err();
        assert_eq!(none.reason, SkipReason::NoAddress);
        let bad = map_entry(
            &entry(&[
                ("mail", &["ann@example.test"]),
                ("mailAlternateAddress", &["no at sign"]),
            ]),
            &s,
            None,
        )
        .unwrap_err();
        assert!(
            matches!(bad.reason, SkipReason::BadAddress { .. }),
            "{bad:?}"
        );
        assert_eq!(bad.address.unwrap().as_str(), "ann@example.test");
    }
}
