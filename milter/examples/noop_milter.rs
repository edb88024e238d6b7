//! A milter that does nothing, for bench/milter.sh's `noop` mode: the ceiling any milter
//! can reach on this Postfix.
//!
//! It negotiates exactly what Lifeboat's milter negotiates (src/callbacks.rs): the same
//! actions, protocol options, macros and stages (MAIL, RCPT, DATA, header, body, EOM), so
//! Postfix sends it the same bytes. It keeps nothing and answers CONTINUE everywhere;
//! the difference between this mode and Lifeboat's is Lifeboat's own work, the
//! difference between this mode and no milter is the milter protocol.
//!
//! usage: noop_milter HOST:PORT

use std::ffi::CString;

use indymilter::{Actions, Callbacks, MacroStage, NegotiateContext, ProtoOpts, Status};
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

/// The same negotiation as Lifeboat's milter.
async fn negotiate(cx: &mut NegotiateContext<()>, offered: ProtoOpts) -> Status {
    cx.requested_actions = Actions::ADD_HEADER | Actions::DELETE_RCPT;
    cx.requested_opts |= ProtoOpts::NO_CONNECT | ProtoOpts::NO_HELO | ProtoOpts::NO_UNKNOWN;
    if offered.contains(ProtoOpts::LEADING_SPACE) {
        cx.requested_opts |= ProtoOpts::LEADING_SPACE;
    }
    cx.requested_macros
        .insert(MacroStage::Rcpt, c"{rcpt_mailer} {rcpt_host}".to_owned());
    cx.requested_macros.insert(MacroStage::Eom, c"i".to_owned());
    Status::Continue
}
