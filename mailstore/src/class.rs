//! Why a copy is in the store: its [`Class`], and the trace-block header that records it
//! in the file so an index rebuilt from the Maildirs still knows it.

use std::fmt;
use std::str::FromStr;

/// Why a copy is in the store (docs/design.md §2, "Words").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Postfix also delivers it to the origin; history only, never replayed.
    Journal,
    /// Lifeboat holds the only copy until replay.
    Diverted,
    /// Sent by the user during continuity; replayed to the user's own mailbox.
    Sent,
    /// Anything else a client stored.
    Other,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Journal => "journal",
            Class::Diverted => "diverted",
            Class::Sent => "sent",
            Class::Other => "other",
        }
    }

    /// Copies that must go back to the origin get a replay ledger row.
    pub fn is_replayed(self) -> bool {
        matches!(self, Class::Diverted | Class::Sent)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Class, String> {
        match s {
            "journal" => Ok(Class::Journal),
            "diverted" => Ok(Class::Diverted),
            "sent" => Ok(Class::Sent),
            "other" => Ok(Class::Other),
            _ => Err(format!("unknown message class `{s}`")),
        }
    }
}

/// Header naming a copy's class in its trace block, so an index rebuilt from the Maildirs
/// still knows which copies must be replayed.
pub const CLASS_HEADER: &str = "X-Lifeboat-Class";

/// The milter's keyed message id (`secret::Keyring::new_lifeboat_id`).
pub const ID_HEADER: &str = "X-Lifeboat-ID";

/// Marks a replayed sent copy for the origin's Sieve rule; its value is
/// `secret::Keyring::sent_mark` of the copy's replay id.
pub const SENT_HEADER: &str = "X-Lifeboat-Sent";

/// Every header field Lifeboat writes starts with this; the milter removes incoming ones
/// (docs/design.md §4.6).
pub const HEADER_PREFIX: &str = "X-Lifeboat-";
