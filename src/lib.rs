//! Lifeboat: email continuity for Postfix. This crate holds the configuration, the
//! `lifeboat` command line and the admin commands; the store and its servers live in
//! `lifeboat-mailstore`, the milter in `lifeboat-milter`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod fallback;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod replay;
pub mod serve;
pub mod watch;
