//! Lifeboat's user-facing servers, side by side on the store core
//! (`lifeboat-mailstore`): [`imap`], [`pop3`] and [`submission`], with what they share —
//! one accept loop ([`listener`]), certificates and reload ([`tls`]), connection
//! [`limits`], logins with lockouts and the login cache ([`auth`], [`sasl`]) — and
//! Lifeboat's SMTP client ([`smtp`]) used by replay, the submission relay and notices.
//!
//! The design is described in `docs/design.md`.

pub mod auth;
pub mod connection;
pub mod health;
pub mod imap;
pub mod limits;
pub mod listener;
pub mod pop3;
pub mod sasl;
pub mod smtp;
pub mod submission;
pub mod tls;
