//! A milter that does nothing, for bench/milter.sh's `noop` mode: the ceiling any milter
//! can reach on this Postfix.
//!
//! It negotiates exactly what Lifeboat's milter negotiates (`negotiate_with`): the same
//! actions, protocol options, macros and stages (MAIL, RCPT, DATA, header, body, EOM), so
//! Postfix sends it the same bytes. It keeps nothing and answers CONTINUE everywhere;
//! the difference between this mode and Lifeboat's is Lifeboat's own work, the
//! difference between this mode and no milter is the milter protocol.
//!
//! usage: noop_milter HOST:PORT

use std::ffi::CString;

use indymilter::{Callbacks, NegotiateContext, ProtoOpts, Status};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8891".to_string());
    let listener = TcpListener::bind(&address).await?;
    let callbacks: Callbacks<()> = Callbacks::new()
        .on_negotiate(|cx, _actions, offered| Box::pin(negotiate(cx, offered)))
        .on_mail(|_, _| Box::pin(async { Status::Continue }))
        .on_rcpt(|_, _| Box::pin(async { Status::Continue }))
        // Lifeboat answers DATA to avoid a Nagle/delayed-ACK stall; so does this.
        .on_data(|_| Box::pin(async { Status::Continue }))
        .on_header(|_, _: CString, _: CString| Box::pin(async { Status::Continue }))
        .on_body(|_, _| Box::pin(async { Status::Continue }))
        .on_eom(|_| Box::pin(async { Status::Continue }));
    let config = indymilter::Config {
        max_connections: 256,
        ..Default::default()
    };
    indymilter::run(listener, callbacks, config, tokio::signal::ctrl_c()).await
}

/// The same negotiation as Lifeboat's milter, by the same function.
async fn negotiate(cx: &mut NegotiateContext<()>, offered: ProtoOpts) -> Status {
    lifeboat_milter::negotiate_with(cx, offered);
    Status::Continue
}
