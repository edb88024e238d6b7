//! The typed values a configuration holds, parsed from their TOML strings.
//!
//! Each parser is a plain `fn(&str) -> Result<T, String>`; the serde glue at the bottom turns
//! its message into a deserialization error so it is reported with its key path.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use lifeboat_mailstore::address::normalise_domain;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The protocol Lifeboat speaks to a mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Smtp,
    Lmtp,
}

impl Protocol {
    pub fn scheme(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Lmtp => "lmtp",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Smtp => 25,
            Protocol::Lmtp => 24,
        }
    }
}

/// A mail server to deliver to: `smtp://host[:port]` or `lmtp://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginAddress {
    pub protocol: Protocol,
    /// A host name or an IP address; an IPv6 address is held without brackets, so
    /// `(host.as_str(), port)` can be handed to a resolver or connect call as is.
    pub host: String,
    pub port: u16,
}

impl FromStr for OriginAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<OriginAddress, String> {
        let expected = "expected smtp://host[:port] or lmtp://host[:port]";
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not a server address; {expected}"))?;
        let protocol = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => Protocol::Smtp,
            "lmtp" => Protocol::Lmtp,
            _ => return Err(format!("unknown scheme `{scheme}://`; {expected}")),
        };
        let (host, port) = split_host_port(rest)?;
        Ok(OriginAddress {
            protocol,
            host,
            port: port.unwrap_or(protocol.default_port()),
        })
    }
}

impl fmt::Display for OriginAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.protocol.scheme();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Splits `host[:port]` or `[ipv6][:port]`, checking the host and the port.
fn split_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("`[{bracketed}` lacks its closing `]`"))?;
        let address: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("`{inside}` in brackets is not an IPv6 address"))?;
        let port =
            match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    format!("expected `:port` after `[{inside}]`, found `{after}`")
                })?),
            };
        (address.to_string(), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        if port.is_some_and(|port| port.contains(':')) {
            return Err(format!(
                "`{text}`: an IPv6 address must be written in brackets, as in [2001:db8::1]:25"
            ));
        }
        (parse_host_name(host)?, port)
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

/// A host name or IPv4 address, lowercased.
fn parse_host_name(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("the host name is missing".to_string());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // All-numeric names are never host names, so this must be meant as an IPv4 address.
        return host
            .parse::<Ipv4Addr>()
            .map(|address| address.to_string())
            .map_err(|_| format!("`{host}` is not an IPv4 address"));
    }
    normalise_domain(host).map_err(|reason| format!("`{host}` is not a host name: {reason}"))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("port `{text}` is not a number from 1 to 65535")),
    }
}

/// Where a server listens: a Unix socket or a TCP address, written Postfix style as
/// `unix:/path` or `inet:ip:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenSpec {
    Unix(PathBuf),
    Inet(SocketAddr),
}

impl FromStr for ListenSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<ListenSpec, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = parse_absolute_path(path)?;
            return Ok(ListenSpec::Unix(path));
        }
        if let Some(address) = text.strip_prefix("inet:") {
            return address.parse().map(ListenSpec::Inet).map_err(|_| {
                format!(
                    "`{address}` is not an IP address and port, such as inet:127.0.0.1:8891 \
                     or inet:[::1]:8891 (host names are not accepted)"
                )
            });
        }
        Err(format!(
            "`{text}` is not a listen address; expected unix:/path/to/socket or inet:ip:port"
        ))
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSpec::Unix(path) => write!(f, "unix:{}", path.display()),
            ListenSpec::Inet(address) => write!(f, "inet:{address}"),
        }
    }
}

pub(super) fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("`{text}` is not an IP address and port, such as 0.0.0.0:143 or [::]:143")
    })
}

/// An IP network in CIDR notation; a bare address is a network of that one address.
/// Host bits below the prefix are cleared, as the network is what matters.
pub(super) fn parse_network(text: &str) -> Result<IpNet, String> {
    let network = if text.contains('/') {
        text.parse::<IpNet>().map(|network| network.trunc()).ok()
    } else {
        text.parse::<IpAddr>().map(IpNet::from).ok()
    };
    network.ok_or_else(|| {
        format!("`{text}` is not an IP address or network, such as 127.0.0.0/8 or ::1")
    })
}

/// Paths must be absolute: the service runs from `/`, so a relative path would depend on
/// whoever started it.
pub(super) fn parse_absolute_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!("`{text}` must be an absolute path"))
    }
}

pub(super) fn parse_domain(text: &str) -> Result<String, String> {
    normalise_domain(text).map_err(|reason| format!("`{text}` is not a domain: {reason}"))
}

/// Origin names appear in commands (`--origin NAME`) and logs, so they are kept plain.
pub(super) fn parse_origin_name(text: &str) -> Result<String, String> {
    let mut bytes = text.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if first_ok && rest_ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`{text}` is not a valid origin name: use lowercase letters, digits, '_' and '-', \
             starting with a letter or digit"
        ))
    }
}

/// A system account name, as useradd and systemd-sysusers accept it.
pub(super) fn parse_user_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 32
        && !text.starts_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!("`{text}` is not a valid system user name"))
    }
}

// ---- serde glue ----

/// Deserializes a string and converts it with `parse`; the parser's message becomes the
/// error, reported with the key path like any other.
pub(super) fn parse_string<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(de::Error::custom)
}

/// An `http://` or `https://` URL with a host and no query, normalised to end with `/`.
pub(super) fn parse_base_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("names no host".into());
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '"' | '<' | '>'))
    {
        return Err("may not hold blanks, a query (?) or a fragment (#)".into());
    }
    Ok(if text.ends_with('/') {
        text.to_string()
    } else {
        format!("{text}/")
    })
}

/// Deserializes a list of strings, each converted with `parse`; element errors keep their
/// index in the key path.
pub(super) fn parse_list<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_seq(ListVisitor { parse })
}

struct ListVisitor<T> {
    parse: fn(&str) -> Result<T, String>,
}

impl<'de, T> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(Element { parse: self.parse })? {
            values.push(value);
        }
        Ok(values)
    }
}

struct Element<T> {
    parse: fn(&str) -> Result<T, String>,
}

impl<'de, T> DeserializeSeed<'de> for Element<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        parse_string(deserializer, self.parse)
    }
}

impl<'de> Deserialize<'de> for OriginAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, str::parse)
    }
}

impl Serialize for OriginAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ListenSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_string(deserializer, str::parse)
    }
}

impl Serialize for ListenSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> OriginAddress {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn origin_addresses_with_default_ports() {
        let smtp = address("smtp://Mail.Internal.Example.com");
        assert_eq!(smtp.protocol, Protocol::Smtp);
        assert_eq!(smtp.host, "mail.internal.example.com");
        assert_eq!(smtp.port, 25);
        assert_eq!(smtp.to_string(), "smtp://mail.internal.example.com:25");

        let lmtp = address("lmtp://dovecot");
        assert_eq!((lmtp.protocol, lmtp.port), (Protocol::Lmtp, 24));
        assert_eq!(address("LMTP://10.0.0.5:2424").port, 2424);
    }

    #[test]
    fn origin_addresses_with_ip_literals() {
        let v4 = address("smtp://192.0.2.10:2525");
        assert_eq!((v4.host.as_str(), v4.port), ("192.0.2.10", 2525));

        let v6 = address("lmtp://[2001:DB8::1]:24");
        assert_eq!(v6.host, "2001:db8::1");
        assert_eq!(v6.to_string(), "lmtp://[2001:db8::1]:24");
        assert_eq!(address("smtp://[::1]").port, 25);
        // Display gives back a form that parses to the same address.
        assert_eq!(address(&v6.to_string()), v6);
    }

    #[test]
    fn bad_origin_addresses() {
        for bad in [
            "mail.example.com:25",
            "http://mail.example.com",
            "smtp://",
            "smtp://mail.example.com:0",
            "smtp://mail.example.com:70000",
            "smtp://mail.example.com:25/",
            "smtp://user@mail.example.com",
            "smtp://2001:db8::1",
            "smtp://[2001:db8::1",
            "smtp://[mail.example.com]:25",
            "smtp://[::1]25",
            "smtp://300.1.1.1",
            "smtp://mail_1.example.com",
        ] {
            assert!(bad.parse::<OriginAddress>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn listen_specs() {
        assert_eq!(
            "unix:/run/lifeboat/milter.sock".parse(),
            Ok(ListenSpec::Unix(PathBuf::from("/run/lifeboat/milter.sock")))
        );
        let inet: ListenSpec = "inet:127.0.0.1:8891".parse().unwrap();
        assert_eq!(inet, ListenSpec::Inet("127.0.0.1:8891".parse().unwrap()));
        assert_eq!(inet.to_string(), "inet:127.0.0.1:8891");
        let v6: ListenSpec = "inet:[::1]:8891".parse().unwrap();
        assert_eq!(v6.to_string(), "inet:[::1]:8891");
        for bad in [
            "unix:run/milter.sock",
            "unix:",
            "inet:localhost:8891",
            "inet:127.0.0.1",
            "127.0.0.1:8891",
            "/run/milter.sock",
        ] {
            assert!(bad.parse::<ListenSpec>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn networks() {
        let net = |text| parse_network(text).map(|n| n.to_string());
        assert_eq!(net("127.0.0.0/8"), Ok("127.0.0.0/8".into()));
        assert_eq!(net("10.1.2.3/8"), Ok("10.0.0.0/8".into()));
        assert_eq!(net("192.0.2.7"), Ok("192.0.2.7/32".into()));
        assert_eq!(net("::1"), Ok("::1/128".into()));
        assert_eq!(net("2001:db8::/32"), Ok("2001:db8::/32".into()));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0/8", "::1/129", ""] {
            assert!(parse_network(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse_domain("Example.COM."), Ok("example.com".into()));
        assert!(parse_domain("exa mple.com").is_err());
        assert!(parse_origin_name("main-2_b").is_ok());
        for bad in ["", "Main", "-main", "_main", "ma in", "mäin"] {
            assert!(parse_origin_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_user_name("lifeboat").is_ok());
        assert!(parse_user_name("").is_err());
        assert!(parse_user_name("life boat").is_err());
        assert!(parse_absolute_path("var/lib/lifeboat").is_err());
    }
}
