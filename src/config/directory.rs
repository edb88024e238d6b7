//! `[directory]` (users from LDAP / Active Directory) and the password sources of
//! `[auth]`: which one checks logins, and how long a login waits for it.

use std::path::PathBuf;
use std::time::Duration;

use lifeboat_servers::auth::backend::ImapServer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::value;
use super::watch::{at_least_one, duration};

/// `[directory]`: off until `url` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap://host[:port]` (StartTLS, always) or `ldaps://host[:port]`.
    #[serde(
        deserialize_with = "some_ldap_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    /// CA certificates (PEM) for the directory's certificate; default: the system's.
    #[serde(
        deserialize_with = "some_absolute_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_file: Option<PathBuf>,
    /// The service account that searches the directory.
    pub bind_dn: String,
    /// A file holding its password (one line), readable by the `user` account.
    #[serde(
        deserialize_with = "some_absolute_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched (subtree).
    pub base: String,
    pub kind: DirectoryKind,
    /// Which entries are users; default by `kind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Users that also match this are disabled (OpenLDAP; AD uses userAccountControl).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_filter: Option<String>,
    /// When set, only this group's members are protected; others are disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub address_attribute: String,
    /// Default by `kind`: `mailAlternateAddress` or `proxyAddresses`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_attribute: Option<String>,
    /// An outside address for notices, e.g. `otherMailbox`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternate_email_attribute: Option<String>,
    /// How often `serve` syncs.
    #[serde(with = "duration")]
    pub sync_interval: Duration,
    /// Limit on connecting and on each directory operation.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Entries per page of the paged search (RFC 2696).
    #[serde(deserialize_with = "at_least_one")]
    pub page_size: u32,
}

impl Default for DirectoryConfig {
    fn default() -> DirectoryConfig {
        DirectoryConfig {
            url: None,
            ca_file: None,
            bind_dn: String::new(),
            bind_password_file: None,
            base: String::new(),
            kind: DirectoryKind::Openldap,
            user_filter: None,
            disabled_filter: None,
            group: None,
            address_attribute: "mail".to_string(),
            alias_attribute: None,
            alternate_email_attribute: None,
            sync_interval: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(10),
            page_size: 500,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectoryKind {
    Openldap,
    ActiveDirectory,
}

impl DirectoryConfig {
    /// The client settings, when the directory is configured (`url` set; the checks at
    /// load time make sure the rest is there).
    pub fn settings(&self) -> Option<lifeboat_directory::Settings> {
        use lifeboat_directory::{Attributes, Kind, Settings};
        let url = self.url.clone()?;
        let kind = match self.kind {
            DirectoryKind::Openldap => Kind::OpenLdap,
            DirectoryKind::ActiveDirectory => Kind::ActiveDirectory,
        };
        Some(Settings {
            url,
            ca_file: self.ca_file.clone(),
            bind_dn: self.bind_dn.clone(),
            bind_password_file: self.bind_password_file.clone().unwrap_or_default(),
            base: self.base.clone(),
            user_filter: self
                .user_filter
                .clone()
                .unwrap_or_else(|| kind.default_user_filter().to_string()),
            disabled_filter: self.disabled_filter.clone(),
            group: self.group.clone(),
            kind,
            attributes: Attributes {
                address: self.address_attribute.clone(),
                aliases: self
                    .alias_attribute
                    .clone()
                    .unwrap_or_else(|| kind.default_alias_attribute().to_string()),
                alternate_email: self.alternate_email_attribute.clone(),
            },
            timeout: self.timeout,
            page_size: self.page_size,
        })
    }

    /// What `url` needs beside it: (key, why) of the first thing missing.
    pub(super) fn missing(&self) -> Option<(&'static str, &'static str)> {
        self.url.as_ref()?;
        if self.bind_dn.is_empty() {
            return Some(("bind_dn", "a service account is required with url"));
        }
        if self.bind_password_file.is_none() {
            return Some((
                "bind_password_file",
                "the service account's password file is required with url",
            ));
        }
        if self.base.is_empty() {
            return Some(("base", "a search base is required with url"));
        }
        None
    }
}

/// `[auth] backend`: where passwords are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthBackend {
    /// The store's own password hashes.
    Local,
    /// Directory users bind to `[directory]` as themselves (local users keep theirs).
    Directory,
    /// Every user logs in at `origin_imap`.
    OriginImap,
}

// ---- field deserializers ----

fn some_ldap_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    value::parse_string(d, parse_ldap_url).map(Some)
}

fn parse_ldap_url(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("ldaps://")
        .or_else(|| lower.strip_prefix("ldap://"))
        .ok_or_else(|| {
            format!("`{text}` is not ldap://host[:port] (StartTLS) or ldaps://host[:port]")
        })?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '@', ' ']) {
        return Err(format!(
            "`{text}`: expected only a host and a port, as in ldaps://ldap.example.com:636"
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

fn some_absolute_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    value::parse_string(d, value::parse_absolute_path).map(Some)
}

pub(super) fn some_imap_server<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<ImapServer>, D::Error> {
    value::parse_string(d, str::parse).map(Some)
}

pub(super) fn serialize_imap_server<S: Serializer>(
    server: &Option<ImapServer>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match server {
        Some(server) => s.collect_str(server),
        None => s.serialize_none(),
    }
}

pub(super) fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    some_absolute_path(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_urls() {
        assert!(parse_ldap_url("ldaps://ldap.example.com:636").is_ok());
        assert_eq!(
            parse_ldap_url("ldap://127.0.0.1:389/").unwrap(),
            "ldap://127.0.0.1:389"
        );
        for bad in ["http://x", "ldap://", "ldap://x/dc=example", "ldapi:///"] {
            assert!(parse_ldap_url(bad).is_err(), "{bad}");
        }
    }
}
