//! Sending a whole message for a logged-in user from outside an SMTP session (the web
//! portal): the same rules and the same path as submission. The sender check is the
//! submission session's own ([`Session::check_header_from`]), the message goes through
//! [`Relay`] to Postfix with a Received line and a Message-ID when missing, and after
//! Postfix's 250 the sent copy is recorded by [`record_sent`], once per Message-ID.

use std::net::IpAddr;

use lifeboat_mailstore::reader::UserRecord;
use lifeboat_mailstore::{Address, Store};
use tokio::task::spawn_blocking;

use super::relay::Relay;
use super::session::{Policy, Session};
use super::{Settings, record_sent, with_trace};

/// Why a message was not sent. The text is the SMTP answer, for the user to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The user may not send this (From:, Sender: or the envelope sender).
    #[error("{0}")]
    NotYours(String),
    /// Postfix refused the sender, a recipient or the message (5xx).
    #[error("{0}")]
    Refused(String),
    /// Postfix cannot be reached or answered 4xx: try again later.
    #[error("{0}")]
    Unavailable(String),
}

/// A whole message a logged-in user sends.
pub struct Outgoing<'a> {
    pub user: &'a UserRecord,
    /// Who handed it over, for the Received line (e.g. `Lifeboat web`).
    pub service: &'a str,
    /// The client's address.
    pub peer: IpAddr,
    /// The envelope sender: the user's own address or an alias.
    pub sender: &'a Address,
    pub recipients: &'a [Address],
    pub content: &'a [u8],
}

/// Sends a message with submission's rules. All or nothing: if Postfix refuses any
/// recipient, nothing is sent.
pub async fn submit(
    store: &Store,
    settings: &Settings,
    outgoing: Outgoing<'_>,
) -> Result<(), SubmitError> {
    let Outgoing {
        user,
        service,
        peer,
        sender,
        recipients,
        content,
    } = outgoing;
    let mut session = Session::new(Policy {
        hostname: settings.hostname.clone(),
        plaintext_login: true,
        tls_available: false,
        tls: true,
        max_message_size: settings.max_message_size,
    });
    let mut addresses = vec![user.address.clone()];
    addresses.extend(user.aliases.iter().filter_map(|a| Address::parse(a).ok()));
    session.login_succeeded(addresses);
    if !session.may_send_as(sender.as_str()) {
        return Err(SubmitError::NotYours(format!(
            "553 5.7.1 <{sender}> is not yours to send as"
        )));
    }
    session
        .check_header_from(content)
        .map_err(SubmitError::NotYours)?;
    if recipients.is_empty() {
        return Err(SubmitError::Refused("554 5.5.1 no recipients".into()));
    }
    let message = with_trace(
        content,
        &format!("web ({peer})"),
        service,
        "HTTPS",
        &user.address,
        &settings.hostname,
    );
    let size = message.len() as u64;
    if size > settings.max_message_size {
        return Err(SubmitError::Refused("552 5.3.4 message too big".into()));
    }
    let mut relay = Relay::open(&settings.relay, &settings.hostname, sender.as_str(), size)
        .await
        .map_err(|reply| refusal(reply.code, reply.text))?;
    for recipient in recipients {
        let reply = relay.rcpt(recipient.as_str()).await;
        if !reply.is_positive() {
            // Dropping the relay ends the transaction before DATA: nothing is sent.
            return Err(refusal(
                reply.code,
                format!("<{recipient}>: {}", reply.text),
            ));
        }
    }
    let reply = relay.data(&message).await;
    if !reply.is_positive() {
        return Err(refusal(reply.code, reply.text));
    }
    tracing::info!(user = %user.address, %sender, recipients = recipients.len(), service, "message handed to Postfix");
    let (store, settings, owner) = (store.clone(), settings.clone(), user.address.clone());
    let recorded = spawn_blocking(move || record_sent(&store, &settings, &owner, message)).await;
    match recorded {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the message was sent but its sent copy was not stored")
        }
        Err(e) => {
            tracing::error!(error = %e, "the message was sent but its sent copy was not stored")
        }
    }
    Ok(())
}

fn refusal(code: u16, text: String) -> SubmitError {
    if (400..500).contains(&code) {
        SubmitError::Unavailable(text)
    } else {
        SubmitError::Refused(text)
    }
}
