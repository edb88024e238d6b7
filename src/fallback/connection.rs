//! One fallback connection: reads command lines and DATA, runs the [`Session`], and
//! performs the steps that need the store (classifying recipients, storing copies).

use std::time::Duration;

use lifeboat_mailstore::capture::plan;
use lifeboat_mailstore::deliver::header_value;
use lifeboat_mailstore::metrics;
use lifeboat_mailstore::outcome::{FailedStage, Left};
use lifeboat_mailstore::{Address, CaptureOutcome, Class, Fate, LifeboatId, NewMessage};
use lifeboat_servers::connection::{Connection, ReadError};
use lifeboat_servers::smtp::{Data, read_data};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::spawn_blocking;
use tokio::time::timeout;

use super::Fallback;
use super::session::{Session, Step, Transaction};

/// RFC 5321 allows 512 octets per command line; Postfix stays far below.
const MAX_LINE: usize = 4096;

/// Runs one session until the client quits, closes, or stays silent for `idle`.
pub async fn run_session<S>(stream: S, fallback: &Fallback, idle: Duration) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = fallback.settings();
    let mut session = Session::new(settings.hostname.clone(), settings.max_message_size);
    let mut conn = Connection::new(stream, MAX_LINE);
    send(&mut conn, &session.greeting()).await?;
    loop {
        let line = match timeout(idle, conn.read_line()).await {
            Err(_) => return send(&mut conn, "421 4.4.2 idle too long, closing").await,
            Ok(Err(ReadError::TooLong)) => {
                send(&mut conn, "500 5.5.2 line too long").await?;
                continue;
            }
            Ok(Err(ReadError::Closed)) => return Ok(()),
            Ok(Err(ReadError::Io(e))) => return Err(e),
            Ok(Ok(line)) => line,
        };
        let answer = match session.handle_line(&line) {
            Step::Reply(text) => text,
            Step::Quit(text) => return send(&mut conn, &text).await,
            Step::Rcpt(raw) => recipient(fallback, &mut session, &raw).await,
            Step::Data => {
                send(&mut conn, "354 end data with <CR><LF>.<CR><LF>").await?;
                let transaction = session.take_transaction();
                match timeout(idle, read_data(&mut conn, session.max_message_size())).await {
                    Err(_) => return send(&mut conn, "421 4.4.2 idle too long, closing").await,
                    Ok(Err(ReadError::Io(e))) => return Err(e),
                    Ok(Err(_)) => return Ok(()), // closed in the middle of the message
                    Ok(Ok(Data::TooBig)) => {
                        "452 4.3.4 message too big for the fallback store".to_string()
                    }
                    Ok(Ok(Data::Message(content))) => store(fallback, transaction, content).await,
                }
            }
        };
        send(&mut conn, &answer).await?;
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    text: &str,
) -> std::io::Result<()> {
    conn.write_all(format!("{text}\r\n").as_bytes()).await
}

/// RCPT: accepted only for protected, active users whose origin is judged down.
async fn recipient(fallback: &Fallback, session: &mut Session, raw: &str) -> String {
    let Ok(address) = Address::parse(raw) else {
        return "450 4.1.3 not an address Lifeboat protects; keep it queued".into();
    };
    let mut fate = match classify(fallback, &address).await {
        Ok(fate) => fate,
        Err(answer) => return answer.into(),
    };
    if let Fate::Unprotected { origin }
    | Fate::Inactive { origin, .. }
    | Fate::Capture { origin, .. } = &fate
    {
        record_deferral(fallback, origin, &address).await;
        // The origin has just failed this delivery but is not judged down yet: have it
        // judged now, so mail that arrives as an outage begins is captured at once
        // instead of waiting in Postfix's queue for its next retry.
        match (&fate, &fallback.watch) {
            (Fate::Capture { divert: false, .. }, Some(watch)) => {
                watch.await_verdict(origin).await;
                fate = match classify(fallback, &address).await {
                    Ok(fate) => fate,
                    Err(answer) => return answer.into(),
                };
            }
            (_, Some(watch)) => watch.deferred(origin, "fallback"),
            (_, None) => {}
        }
    }
    tracing::debug!(recipient = %address, fate = fate.as_str(), "fallback: recipient");
    let answer = match &fate {
        Fate::Capture { divert: true, .. } => "250 2.1.5 ok",
        Fate::Capture { divert: false, .. } => "450 4.4.3 origin is not in outage; keep it queued",
        Fate::Inactive { .. } => "450 4.2.1 user is disabled in Lifeboat; keep it queued",
        Fate::Unprotected { .. } => "450 4.1.1 not a protected user; keep it queued",
        Fate::OtherDomain => "450 4.1.2 not a domain of any origin; keep it queued",
    };
    if matches!(fate, Fate::Capture { divert: true, .. }) {
        session.recipient(address, fate);
    } else {
        metrics::count_capture(metrics::FALLBACK, &CaptureOutcome::Left(Left::Refused));
    }
    answer.into()
}

/// What the store says about one recipient now; the 4xx answer when it cannot say.
async fn classify(fallback: &Fallback, address: &Address) -> Result<Fate, &'static str> {
    let store = fallback.store.clone();
    let routes = fallback.settings().routes.clone();
    let rcpt = address.clone();
    match spawn_blocking(move || store.classify(&routes, std::slice::from_ref(&rcpt))).await {
        Ok(Ok(mut fates)) => Ok(fates.remove(0)),
        Ok(Err(e)) => {
            tracing::error!(recipient = %address, error = %e, "fallback: could not read the index");
            Err("451 4.3.0 store unavailable; keep it queued")
        }
        Err(e) => {
            tracing::error!(recipient = %address, error = %e, "fallback: internal error");
            Err("451 4.3.0 internal error; keep it queued")
        }
    }
}

/// The origin deferred or refused this recipient, or Postfix would not be here.
async fn record_deferral(fallback: &Fallback, origin: &str, address: &Address) {
    let store = fallback.store.clone();
    let (origin, detail) = (
        origin.to_string(),
        format!("fallback delivery for {address}"),
    );
    if let Ok(Err(e)) = spawn_blocking(move || store.record_deferral(&origin, &detail)).await {
        tracing::warn!(error = %e, "fallback: could not record a deferral event");
    }
}

/// Stores one diverted copy per user. 250 only when every copy is durable; otherwise
/// 451, and Postfix retries (copies already stored are recognised by `X-Lifeboat-ID`).
/// Only an id this store's milter made counts (checked with the store's key): one a
/// sender wrote is ignored, so it can never make this message pass for another.
async fn store(fallback: &Fallback, transaction: Transaction, content: Vec<u8>) -> String {
    let lifeboat_id = fallback.store.keyring().lifeboat_id_of(&content);
    let message_id = header_value(&content, "Message-ID");
    let fates: Vec<Fate> = transaction
        .recipients
        .iter()
        .map(|(_, f)| f.clone())
        .collect();
    let mut outcomes = Vec::new();
    let mut failed = false;
    for copy in plan(&fates) {
        let mut message = NewMessage::new(
            copy.owner.clone(),
            "INBOX",
            content.clone(),
            Class::Diverted,
        );
        message.envelope_from = Some(transaction.sender.clone());
        message.envelope_to = copy
            .recipients
            .iter()
            .map(|&i| transaction.recipients[i].0.clone())
            .collect();
        message.lifeboat_id = lifeboat_id.clone();
        let rcpts = message
            .envelope_to
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let store = fallback.store.clone();
        let outcome = match spawn_blocking(move || store.deliver_diverted(message)).await {
            Ok(result) => CaptureOutcome::of_divert(result),
            Err(e) => CaptureOutcome::Failed {
                stage: FailedStage::Internal,
                error: e.to_string(),
            },
        };
        failed |= !outcome.is_diverted();
        metrics::count_capture(metrics::FALLBACK, &outcome);
        outcomes.push(format!("{rcpts}={outcome}"));
    }
    tracing::info!(
        lifeboat_id = lifeboat_id.as_ref().map_or("-", LifeboatId::as_str),
        message_id = message_id.as_deref().unwrap_or("-"),
        sender = %transaction.sender,
        recipients = %outcomes.join(" "),
        "fallback decision"
    );
    if failed {
        "451 4.3.0 could not store the message; keep it queued".into()
    } else {
        "250 2.0.0 stored by Lifeboat".into()
    }
}
