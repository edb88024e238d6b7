//! One fallback SMTP session over any byte stream.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use lifeboat_mailstore::capture::plan;
use lifeboat_mailstore::deliver::header_value;
use lifeboat_mailstore::metrics;
use lifeboat_mailstore::{Address, Class, DivertOutcome, Fate, NewMessage};
use smtp_proto::Request;
use smtp_proto::request::receiver::DataReceiver;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::task::spawn_blocking;
use tokio::time::timeout;

use super::Fallback;

/// RFC 5321 allows 512 octets per command line; Postfix stays far below.
const MAX_LINE: usize = 4096;

/// The current transaction.
#[derive(Default)]
struct Transaction {
    sender: Option<String>,
    /// Accepted recipients and what the store decided for each.
    recipients: Vec<(Address, Fate)>,
}

pub async fn run_session<R, W>(
    reader: R,
    mut writer: W,
    fallback: &Fallback,
    idle: Duration,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(reader);
    let settings = fallback.settings();
    reply(
        &mut writer,
        &format!("220 {} ESMTP Lifeboat fallback", settings.hostname),
    )
    .await?;
    let mut transaction = Transaction::default();
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let complete = match timeout(idle, read_line(&mut reader, &mut line)).await {
            Ok(result) => result?,
            Err(_) => {
                reply(&mut writer, "421 4.4.2 idle too long, closing").await?;
                return Ok(());
            }
        };
        if line.is_empty() {
            return Ok(()); // the client closed the connection
        }
        if !complete {
            reply(&mut writer, "500 5.5.2 line too long").await?;
            continue;
        }
        let request = Request::parse(&mut line.iter());
        let answer: Cow<str> = match request {
            Ok(Request::Ehlo { .. }) => {
                transaction = Transaction::default();
                let settings = fallback.settings();
                format!(
                    "250-{}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES",
                    settings.hostname, settings.max_message_size
                )
                .into()
            }
            Ok(Request::Helo { .. }) => {
                transaction = Transaction::default();
                format!("250 {}", fallback.settings().hostname).into()
            }
            Ok(Request::Mail { from }) => {
                if from.size as u64 > fallback.settings().max_message_size {
                    "452 4.3.4 message too big for the fallback store".into()
                } else {
                    transaction = Transaction {
                        sender: Some(from.address.into_owned()),
                        recipients: Vec::new(),
                    };
                    "250 2.1.0 ok".into()
                }
            }
            Ok(Request::Rcpt { to }) if transaction.sender.is_some() => {
                recipient(fallback, &mut transaction, &to.address)
                    .await
                    .into()
            }
            Ok(Request::Rcpt { .. }) => "503 5.5.1 MAIL first".into(),
            Ok(Request::Data) if transaction.recipients.is_empty() => {
                "503 5.5.1 no valid recipients".into()
            }
            Ok(Request::Data) => {
                reply(&mut writer, "354 end data with <CR><LF>.<CR><LF>").await?;
                let Some(content) =
                    read_data(&mut reader, fallback.settings().max_message_size, idle).await?
                else {
                    reply(
                        &mut writer,
                        "452 4.3.4 message too big for the fallback store",
                    )
                    .await?;
                    transaction = Transaction::default();
                    continue;
                };
                let answer = store(fallback, std::mem::take(&mut transaction), content).await;
                answer.into()
            }
            Ok(Request::Rset) => {
                transaction = Transaction::default();
                "250 2.0.0 ok".into()
            }
            Ok(Request::Noop { .. }) => "250 2.0.0 ok".into(),
            Ok(Request::Quit) => {
                reply(&mut writer, "221 2.0.0 bye").await?;
                return Ok(());
            }
            Ok(Request::Vrfy { .. }) => "252 2.5.0 cannot verify".into(),
            Ok(_) => "502 5.5.1 command not implemented".into(),
            Err(_) => "500 5.5.2 syntax error".into(),
        };
        reply(&mut writer, &answer).await?;
    }
}

/// RCPT: accepted only for protected, active users whose origin is judged down.
async fn recipient(fallback: &Fallback, transaction: &mut Transaction, raw: &str) -> String {
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
    if !matches!(fate, Fate::Capture { divert: true, .. }) {
        metrics::count_capture(metrics::FALLBACK, "left");
    }
    let answer = match &fate {
        Fate::Capture { divert: true, .. } => "250 2.1.5 ok",
        Fate::Capture { divert: false, .. } => "450 4.4.3 origin is not in outage; keep it queued",
        Fate::Inactive { .. } => "450 4.2.1 user is disabled in Lifeboat; keep it queued",
        Fate::Unprotected { .. } => "450 4.1.1 not a protected user; keep it queued",
        Fate::OtherDomain => "450 4.1.2 not a domain of any origin; keep it queued",
    };
    tracing::debug!(recipient = %address, fate = fate.as_str(), "fallback: recipient");
    if matches!(fate, Fate::Capture { divert: true, .. }) {
        transaction.recipients.push((address, fate));
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
async fn store(fallback: &Fallback, transaction: Transaction, content: Vec<u8>) -> String {
    let lifeboat_id = header_value(&content, "X-Lifeboat-ID");
    let message_id = header_value(&content, "Message-ID");
    let sender = transaction.sender.unwrap_or_default();
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
        message.envelope_from = Some(sender.clone());
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
            Ok(Ok(DivertOutcome::Stored(s))) => format!("diverted(uid {})", s.uid),
            Ok(Ok(DivertOutcome::Upgraded(s))) => format!("upgraded-journal(uid {})", s.uid),
            Ok(Ok(DivertOutcome::AlreadyDiverted)) => "already-diverted".to_string(),
            Ok(Err(e)) => {
                failed = true;
                format!("failed({e})")
            }
            Err(e) => {
                failed = true;
                format!("failed({e})")
            }
        };
        let counted = if outcome.starts_with("failed") {
            "failed"
        } else {
            "diverted"
        };
        metrics::count_capture(metrics::FALLBACK, counted);
        outcomes.push(format!("{rcpts}={outcome}"));
    }
    tracing::info!(
        lifeboat_id = lifeboat_id.as_deref().unwrap_or("-"),
        message_id = message_id.as_deref().unwrap_or("-"),
        %sender,
        recipients = %outcomes.join(" "),
        "fallback decision"
    );
    if failed {
        "451 4.3.0 could not store the message; keep it queued".into()
    } else {
        "250 2.0.0 stored by Lifeboat".into()
    }
}

/// Reads one line into `line`, at most [`MAX_LINE`] bytes. Returns false when the line
/// was longer (the rest of it is consumed and dropped).
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!too_long);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if line.len() + used <= MAX_LINE {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            if line.is_empty() {
                line.push(b'\n'); // not empty: empty means the peer closed
            }
        }
        reader.consume(used);
        if done {
            return Ok(!too_long);
        }
    }
}

/// Reads the DATA section up to the lone dot. `None` when it exceeded `max` (read to
/// the end anyway, so the session stays in step).
async fn read_data<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    max: u64,
    idle: Duration,
) -> io::Result<Option<Vec<u8>>> {
    let mut receiver = DataReceiver::new();
    let mut content = Vec::with_capacity(64 * 1024);
    let mut oversize = false;
    loop {
        let available = timeout(idle, reader.fill_buf())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle in DATA"))??;
        if available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in DATA",
            ));
        }
        let mut bytes = available.iter();
        let done = receiver.ingest(&mut bytes, &mut content);
        let used = available.len() - bytes.as_slice().len();
        reader.consume(used);
        if content.len() as u64 > max {
            oversize = true;
            content.clear();
        }
        if done {
            return Ok((!oversize).then_some(content));
        }
    }
}

async fn reply<W: AsyncWrite + Unpin>(writer: &mut W, text: &str) -> io::Result<()> {
    writer.write_all(text.as_bytes()).await?;
    writer.write_all(b"\r\n").await?;
    writer.flush().await
}
