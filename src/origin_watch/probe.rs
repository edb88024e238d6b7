//! The active health probe: talk to the origin the way Postfix would, stopping before
//! any mail is sent.
//!
//! connect → banner → EHLO (LHLO for LMTP) → [MAIL FROM:<> → RCPT TO:<probe_address>]
//! → RSET → QUIT, each step with its own timeout. A refused connection, a timeout, or a
//! 4xx (421 included) at any step means the origin cannot take mail now. A 5xx at the
//! banner means it refuses service to everybody; a 5xx to our greeting, MAIL or RCPT
//! means it is up but does not like the probe: a configuration error, not an outage.

use std::fmt;
use std::time::{Duration, Instant};

use mail_send::SmtpClient;
use smtp_proto::Response;
use tokio::net::TcpStream;
use tokio::time::timeout;

use lifeboat_servers::smtp::{Reply, ReplyClass};

use crate::config::{Origin, Protocol};

/// What a probe needs to know about its origin.
#[derive(Clone, Debug)]
pub struct Target {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub probe_address: Option<String>,
    /// Our name in EHLO/LHLO.
    pub helo_name: String,
    pub step_timeout: Duration,
}

impl Target {
    pub fn new(origin: &Origin, helo_name: &str, step_timeout: Duration) -> Target {
        Target {
            protocol: origin.address.protocol,
            host: origin.address.host.clone(),
            port: origin.address.port,
            probe_address: origin.probe_address.as_ref().map(|a| a.to_string()),
            helo_name: helo_name.to_string(),
            step_timeout,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// The origin takes mail (the detail is its banner).
    Up,
    /// The origin cannot take mail now.
    Down,
    /// The origin answers but refuses the probe for good (5xx): an admin must look at
    /// `probe_address` or the origin's policy. Counts as up: it is not an outage.
    Misconfigured,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Misconfigured => "misconfigured",
        }
    }

    /// Whether the origin counts as able to take mail.
    pub fn is_up(&self) -> bool {
        !matches!(self, Health::Down)
    }
}

/// One probe's result.
#[derive(Clone, Debug)]
pub struct Probe {
    pub health: Health,
    /// The failing step and what was seen there, or the banner on success.
    pub detail: String,
    pub latency: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Connect,
    Banner,
    Greeting,
    Mail,
    Rcpt,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Banner => "banner",
            Step::Greeting => "EHLO",
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
        })
    }
}

/// A step that did not go well.
struct Failure {
    health: Health,
    detail: String,
}

impl Failure {
    fn down(step: Step, what: impl fmt::Display) -> Failure {
        Failure {
            health: Health::Down,
            detail: format!("{step}: {what}"),
        }
    }

    /// Judges a reply that is not 2xx/3xx at `step`.
    fn reply(step: Step, reply: &Response<String>) -> Failure {
        let what = Reply::from(reply.clone());
        let refuses_for_good =
            what.class() == ReplyClass::Permanent && !matches!(step, Step::Banner);
        Failure {
            health: if refuses_for_good {
                Health::Misconfigured
            } else {
                Health::Down
            },
            detail: format!("{step}: {what}"),
        }
    }
}

pub async fn probe(target: &Target) -> Probe {
    let started = Instant::now();
    let (health, detail) = match converse(target).await {
        Ok(banner) => (Health::Up, banner),
        Err(failure) => (failure.health, failure.detail),
    };
    Probe {
        health,
        detail,
        latency: started.elapsed(),
    }
}

async fn converse(target: &Target) -> Result<String, Failure> {
    let limit = target.step_timeout;
    let address = (target.host.as_str(), target.port);
    let stream = match timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(Failure::down(Step::Connect, e)),
        Err(_) => return Err(Failure::down(Step::Connect, timed_out(limit))),
    };
    let _ = stream.set_nodelay(true);
    let mut client = SmtpClient {
        stream,
        timeout: limit,
    };

    let banner = match timeout(limit, client.read()).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Err(Failure::down(Step::Banner, describe(e))),
        Err(_) => return Err(Failure::down(Step::Banner, timed_out(limit))),
    };
    if banner.code != 220 {
        return Err(Failure::reply(Step::Banner, &banner));
    }

    let greeting = match target.protocol {
        Protocol::Smtp => client.ehlo(&target.helo_name).await,
        Protocol::Lmtp => client.lhlo(&target.helo_name).await,
    };
    if let Err(e) = greeting {
        return Err(failure(Step::Greeting, e, limit));
    }

    if let Some(recipient) = &target.probe_address {
        expect_ok(&mut client, Step::Mail, "MAIL FROM:<>\r\n".to_string()).await?;
        expect_ok(
            &mut client,
            Step::Rcpt,
            format!("RCPT TO:<{recipient}>\r\n"),
        )
        .await?;
        // Not judged: the origin has already shown it takes mail for the probe address.
        let _ = client.cmd(b"RSET\r\n").await;
    }
    let _ = client.cmd(b"QUIT\r\n").await;
    Ok(Reply::from(banner).text)
}

async fn expect_ok(
    client: &mut SmtpClient<TcpStream>,
    step: Step,
    command: String,
) -> Result<(), Failure> {
    let limit = client.timeout;
    match client.cmd(command.as_bytes()).await {
        Ok(reply) if (200..300).contains(&reply.code) => Ok(()),
        Ok(reply) => Err(Failure::reply(step, &reply)),
        Err(e) => Err(failure(step, e, limit)),
    }
}

fn failure(step: Step, error: mail_send::Error, limit: Duration) -> Failure {
    match error {
        mail_send::Error::UnexpectedReply(reply) => Failure::reply(step, &reply),
        mail_send::Error::Timeout => Failure::down(step, timed_out(limit)),
        other => Failure::down(step, describe(other)),
    }
}

fn describe(error: mail_send::Error) -> String {
    match error {
        mail_send::Error::Io(e) => e.to_string(),
        mail_send::Error::UnparseableReply => "connection closed or unreadable reply".into(),
        other => format!("{other:?}"),
    }
}

fn timed_out(limit: Duration) -> String {
    format!("no answer within {}", humantime::format_duration(limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A one-connection server on loopback that answers each command with the next
    /// scripted reply (the first reply is the banner); `None` means stay silent.
    async fn server(
        replies: Vec<Option<&'static str>>,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut commands = Vec::new();
            for (index, reply) in replies.into_iter().enumerate() {
                if index > 0 {
                    match lines.next_line().await {
                        Ok(Some(line)) => commands.push(line),
                        _ => break,
                    }
                }
                match reply {
                    Some(reply) => write.write_all(reply.as_bytes()).await.unwrap(),
                    None => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        break;
                    }
                }
            }
            commands
        });
        (port, task)
    }

    fn target(port: u16, probe_address: Option<&str>) -> Target {
        Target {
            protocol: Protocol::Smtp,
            host: "127.0.0.1".into(),
            port,
            probe_address: probe_address.map(str::to_string),
            helo_name: "lifeboat.test".into(),
            step_timeout: Duration::from_millis(300),
        }
    }

    const BANNER: &str = "220 origin.test ESMTP\r\n";
    const EHLO: &str = "250-origin.test\r\n250 8BITMIME\r\n";

    #[tokio::test]
    async fn a_healthy_origin_is_up_and_the_probe_sends_no_mail() {
        let (port, server) = server(vec![
            Some(BANNER),
            Some(EHLO),
            Some("250 2.1.0 ok\r\n"),
            Some("250 2.1.5 ok\r\n"),
            Some("250 2.0.0 ok\r\n"),
            Some("221 2.0.0 bye\r\n"),
        ])
        .await;
        let probe = probe(&target(port, Some("postmaster@example.test"))).await;
        assert_eq!(probe.health, Health::Up, "{}", probe.detail);
        assert!(probe.detail.contains("origin.test ESMTP"));
        let commands = server.await.unwrap();
        assert_eq!(
            commands,
            [
                "EHLO lifeboat.test",
                "MAIL FROM:<>",
                "RCPT TO:<postmaster@example.test>",
                "RSET",
                "QUIT"
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_down() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let probe = probe(&target(port, None)).await;
        assert_eq!(probe.health, Health::Down);
        assert!(probe.detail.starts_with("connect:"), "{}", probe.detail);
    }

    #[tokio::test]
    async fn a_silent_banner_is_down_after_the_step_timeout() {
        let (port, _server) = server(vec![None]).await;
        let probe = probe(&target(port, None)).await;
        assert_eq!(probe.health, Health::Down);
        assert!(
            probe.detail.starts_with("banner: no answer"),
            "{}",
            probe.detail
        );
    }

    #[tokio::test]
    async fn a_421_banner_or_4xx_rcpt_is_down() {
        let (port, _server) = server(vec![Some("421 4.3.2 busy\r\n")]).await;
        let probe_421 = probe(&target(port, None)).await;
        assert_eq!(probe_421.health, Health::Down);
        assert!(probe_421.detail.contains("421"), "{}", probe_421.detail);

        let (port, _server) = server(vec![
            Some(BANNER),
            Some(EHLO),
            Some("250 ok\r\n"),
            Some("450 4.2.0 try later\r\n"),
        ])
        .await;
        let probe_450 = probe(&target(port, Some("postmaster@example.test"))).await;
        assert_eq!(probe_450.health, Health::Down);
        assert!(
            probe_450.detail.starts_with("RCPT TO: 450"),
            "{}",
            probe_450.detail
        );
    }

    #[tokio::test]
    async fn a_5xx_to_the_probe_address_is_a_configuration_error_not_an_outage() {
        let (port, _server) = server(vec![
            Some(BANNER),
            Some(EHLO),
            Some("250 ok\r\n"),
            Some("550 5.1.1 no such user\r\n"),
        ])
        .await;
        let probe = probe(&target(port, Some("nobody@example.test"))).await;
        assert_eq!(probe.health, Health::Misconfigured);
        assert!(probe.health.is_up());
        assert!(probe.detail.contains("550 5.1.1"), "{}", probe.detail);
    }

    #[tokio::test]
    async fn a_5xx_banner_refuses_everybody_and_is_down() {
        let (port, _server) = server(vec![Some("554 5.3.2 no service\r\n")]).await;
        assert_eq!(probe(&target(port, None)).await.health, Health::Down);
    }

    #[tokio::test]
    async fn lmtp_origins_are_greeted_with_lhlo() {
        let (port, server) = server(vec![Some(BANNER), Some(EHLO), Some("221 bye\r\n")]).await;
        let mut target = target(port, None);
        target.protocol = Protocol::Lmtp;
        assert_eq!(probe(&target).await.health, Health::Up);
        assert_eq!(server.await.unwrap(), ["LHLO lifeboat.test", "QUIT"]);
    }
}
