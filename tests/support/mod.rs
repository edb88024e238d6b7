//! Shared helpers for Lifeboat's end-to-end tests.
//!
//! Use from an integration test with `mod support;`, then:
//! - [`origin::Origin`]: a scriptable SMTP server playing the origin mail server (or the
//!   outside world, or a fallback relay);
//! - [`postfix::Postfix`]: a private, real Postfix instance routing protected domains to
//!   an origin and everything else to an outside sink (built by the `postfix-instance`
//!   script next to this file, which benchmarks use too);
//! - [`free_port`]: a loopback port nobody listens on right now;
//! - [`lifeboat`]: a real `lifeboat serve` process (written alongside the product code).
//!
//! Each test binary compiles this module separately and most use only part of it.
#![allow(dead_code)]

pub mod lifeboat;
pub mod origin;
pub mod postfix;

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read the port,
/// close). Another process may take it before the caller binds it; callers that can
/// should bind port 0 themselves and keep the socket.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}
