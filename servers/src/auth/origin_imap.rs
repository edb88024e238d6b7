//! Checking a password at the origin's IMAP server (Dovecot, Exchange, Zimbra, …): a
//! tiny client that connects (`imaps://` with TLS from the first byte, `imap://` with
//! STARTTLS, the certificate always verified), authenticates once (AUTHENTICATE PLAIN
//! when offered, else LOGIN) and logs out. Only the tagged answer to the login matters.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::backend::Verdict;

/// Where the origin's IMAP server is: `imaps://host[:port]` (993) or `imap://host[:port]`
/// (143, STARTTLS required).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapServer {
    pub host: String,
    pub port: u16,
    pub implicit_tls: bool,
}

impl FromStr for ImapServer {
    type Err = String;

    fn from_str(text: &str) -> Result<ImapServer, String> {
        let expected = "expected imaps://host[:port] or imap://host[:port]";
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an IMAP server address; {expected}"))?;
        let implicit_tls = match scheme.to_ascii_lowercase().as_str() {
            "imaps" => true,
            "imap" => false,
            _ => return Err(format!("unknown scheme `{scheme}://`; {expected}")),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("port `{port}` is not a number from 1 to 65535"))?;
                (host, port)
            }
            _ => (rest, if implicit_tls { 993 } else { 143 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(format!("`{text}`: bad host; {expected}"));
        }
        Ok(ImapServer {
            host: host.to_ascii_lowercase(),
            port,
            implicit_tls,
        })
    }
}

impl fmt::Display for ImapServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.implicit_tls { "imaps" } else { "imap" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// How to reach the origin's IMAP server.
#[derive(Clone)]
pub struct OriginImap {
    pub server: ImapServer,
    pub tls: Arc<ClientConfig>,
}

impl OriginImap {
    /// Asks the origin whether `password` is right for `user`. Every failure to get an
    /// answer is [`Verdict::Unreachable`]; the caller bounds the whole exchange in time.
    pub async fn check(&self, user: &str, password: &str) -> Verdict {
        match self.exchange(user, password).await {
            Ok(verdict) => verdict,
            Err(e) => Verdict::Unreachable(format!("{}: {e}", self.server)),
        }
    }

    async fn exchange(&self, user: &str, password: &str) -> std::io::Result<Verdict> {
        let tcp = TcpStream::connect((self.server.host.as_str(), self.server.port)).await?;
        let name = ServerName::try_from(self.server.host.clone())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        if self.server.implicit_tls {
            let tls = connector.connect(name, tcp).await?;
            let mut session = Session::new(tls);
            session.greeting().await?;
            session.login(user, password).await
        } else {
            let mut plain = Session::new(tcp);
            plain.greeting().await?;
            if !plain.tagged("S", "STARTTLS").await?.ok {
                return Ok(Verdict::Unreachable(format!(
                    "{} refused STARTTLS",
                    self.server
                )));
            }
            let tls = connector.connect(name, plain.into_inner()).await?;
            Session::new(tls).login(user, password).await
        }
    }
}

/// A tagged answer: OK or not, and its text.
struct Answer {
    ok: bool,
    text: String,
}

struct Session<S> {
    stream: BufReader<S>,
}

/// Longest line read from the origin; more is a broken server.
const MAX_LINE: usize = 64 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(stream: S) -> Session<S> {
        Session {
            stream: BufReader::new(stream),
        }
    }

    fn into_inner(self) -> S {
        self.stream.into_inner()
    }

    async fn line(&mut self) -> std::io::Result<String> {
        let mut line = Vec::new();
        let read = (&mut self.stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    async fn greeting(&mut self) -> std::io::Result<()> {
        let line = self.line().await?;
        if line.starts_with("* OK") || line.starts_with("* PREAUTH") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("greeting: {line}")))
        }
    }

    async fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(line.as_bytes()).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await
    }

    /// Sends `tag command` and reads up to its tagged answer.
    async fn tagged(&mut self, tag: &str, command: &str) -> std::io::Result<Answer> {
        self.send(&format!("{tag} {command}")).await?;
        self.answer(tag, &mut Vec::new()).await
    }

    /// Reads up to the answer tagged `tag`, collecting the untagged lines before it.
    async fn answer(&mut self, tag: &str, untagged: &mut Vec<String>) -> std::io::Result<Answer> {
        loop {
            let line = self.line().await?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
                return Ok(Answer {
                    ok: status.eq_ignore_ascii_case("OK"),
                    text: text.to_string(),
                });
            }
            if line.starts_with("* BYE") {
                return Err(std::io::Error::other(line));
            }
            untagged.push(line);
        }
    }

    async fn login(mut self, user: &str, password: &str) -> std::io::Result<Verdict> {
        let mut untagged = Vec::new();
        self.send("C CAPABILITY").await?;
        self.answer("C", &mut untagged).await?;
        let capabilities = untagged.join(" ").to_ascii_uppercase();
        let answer = if capabilities.contains("AUTH=PLAIN") {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            if capabilities.contains("SASL-IR") {
                self.tagged("L", &format!("AUTHENTICATE PLAIN {token}"))
                    .await?
            } else {
                self.send("L AUTHENTICATE PLAIN").await?;
                let go_ahead = self.line().await?;
                if !go_ahead.starts_with('+') {
                    return Err(std::io::Error::other(format!("AUTHENTICATE: {go_ahead}")));
                }
                self.send(&token).await?;
                self.answer("L", &mut Vec::new()).await?
            }
        } else {
            let login = format!("LOGIN {} {}", quoted(user), quoted(password));
            self.tagged("L", &login).await?
        };
        if answer.ok {
            let _ = self.tagged("Z", "LOGOUT").await;
            return Ok(Verdict::Accepted);
        }
        // RFC 5530: UNAVAILABLE means the server could not check (its own backend is
        // down), which is not a "no".
        let text = answer.text;
        if text.to_ascii_uppercase().starts_with("[UNAVAILABLE]") {
            Ok(Verdict::Unreachable(format!(
                "the origin cannot check logins now: {text}"
            )))
        } else {
            Ok(Verdict::Rejected(text))
        }
    }
}

/// An IMAP quoted string; characters a quoted string cannot carry are refused by the
/// server like a wrong password, which is what they would be.
fn quoted(text: &str) -> String {
    let escaped: String = text
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        let s: ImapServer = "imaps://Mail.Example.test".parse().unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.implicit_tls),
            ("mail.example.test", 993, true)
        );
        let s: ImapServer = "imap://127.0.0.1:1143".parse().unwrap();
        assert_eq!((s.port, s.implicit_tls), (1143, false));
        assert_eq!(s.to_string(), "imap://127.0.0.1:1143");
        let s: ImapServer = "imaps://[::1]:993".parse().unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.to_string(), "imaps://[::1]:993");
        for bad in ["pop3://x", "imaps://", "imap://x:0", "x:993", "imaps://u@x"] {
            assert!(bad.parse::<ImapServer>().is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
