//! Exit statuses of `lifeboat`, documented in lifeboat(8). Scripts and systemd rely on
//! them, so each has one meaning.

use std::fmt;

/// Success, or nothing to do.
pub const OK: u8 = 0;
/// The command failed (store error, refused request, I/O error).
pub const FAILED: u8 = 1;
/// Bad usage or a bad configuration file (clap also exits 2 for usage errors).
pub const CONFIG: u8 = 2;
/// `store check` found the index and the Maildirs disagree (and did not repair).
pub const INCONSISTENT: u8 = 3;
/// The subcommand is not available in this version.
pub const UNAVAILABLE: u8 = 69;
/// A temporary failure: try again later (sysexits EX_TEMPFAIL).
pub const TEMPFAIL: u8 = 75;

/// A command's failure: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Failure {
        Failure::new(FAILED, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::config::ConfigError> for Failure {
    fn from(e: crate::config::ConfigError) -> Failure {
        Failure::new(CONFIG, e.to_string())
    }
}

impl From<lifeboat_mailstore::Error> for Failure {
    fn from(e: lifeboat_mailstore::Error) -> Failure {
        Failure::failed(e.to_string())
    }
}

impl From<lifeboat_mailstore::address::AddressError> for Failure {
    fn from(e: lifeboat_mailstore::address::AddressError) -> Failure {
        Failure::failed(e.to_string())
    }
}

pub type CommandResult = Result<(), Failure>;
