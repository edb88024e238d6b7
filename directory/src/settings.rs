//! What the directory client needs to know, filled from `[directory]` by the `lifeboat`
//! configuration.

use std::path::PathBuf;
use std::time::Duration;

/// Which directory server this is: it sets the attribute defaults and how a disabled
/// account is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    OpenLdap,
    /// Active Directory: aliases in `proxyAddresses` (`SMTP:` primary, `smtp:` others),
    /// disabled accounts by bit 2 of `userAccountControl`.
    ActiveDirectory,
}

impl Kind {
    pub fn default_user_filter(self) -> &'static str {
        match self {
            Kind::OpenLdap => "(&(objectClass=inetOrgPerson)(mail=*))",
            Kind::ActiveDirectory => "(&(objectCategory=person)(objectClass=user)(mail=*))",
        }
    }

    pub fn default_alias_attribute(self) -> &'static str {
        match self {
            Kind::OpenLdap => "mailAlternateAddress",
            Kind::ActiveDirectory => "proxyAddresses",
        }
    }
}

/// Which attributes hold what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// The user's own address (`mail`).
    pub address: String,
    /// More addresses that land in the same mailbox.
    pub aliases: String,
    /// An outside address for notices (e.g. `otherMailbox`), if any.
    pub alternate_email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `ldap://host[:port]` (StartTLS is always used) or `ldaps://host[:port]`.
    pub url: String,
    /// CA certificates (PEM) that sign the server's certificate; default: the system's.
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    /// Read at each use, so a changed password needs no restart.
    pub bind_password_file: PathBuf,
    pub base: String,
    pub user_filter: String,
    /// Entries that also match this are disabled (for OpenLDAP, e.g. `(pwdAccountLockedTime=*)`).
    pub disabled_filter: Option<String>,
    /// When set, only members of this group (its `member`/`uniqueMember` values) are
    /// protected; other entries count as disabled.
    pub group: Option<String>,
    pub kind: Kind,
    pub attributes: Attributes,
    /// Limit on connecting and on each operation.
    pub timeout: Duration,
    pub page_size: u32,
}

impl Settings {
    /// Whether the URL asks for TLS from the first byte.
    pub(crate) fn implicit_tls(&self) -> bool {
        self.url.to_ascii_lowercase().starts_with("ldaps://")
    }
}
