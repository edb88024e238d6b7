//! `[watch]`, `[notify]`, `[replay]` and `[metrics]`: how Lifeboat judges an origin's
//! health, whom it tells about changes, how hard replay pushes a recovered origin, and
//! where it publishes metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lifeboat_mailstore::address::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::value;

/// `[watch]`: active probes and the hysteresis that turns their results into states.
///
/// With the defaults a dead origin is declared down about 1–6 s after it fails (at once
/// when Postfix reports a deferral, else at the next probe, then two quick retries), and
/// back after three good probes spread over at least 10 s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Between probes while the origin is `normal`.
    #[serde(with = "duration")]
    pub probe_interval: Duration,
    /// Between probes while the origin is in `outage` or `recovering`.
    #[serde(with = "duration")]
    pub outage_probe_interval: Duration,
    /// After a failed probe, until the failures reach `failures_before_outage`.
    #[serde(with = "duration")]
    pub retry_interval: Duration,
    /// Limit on each step of a probe: connect, banner, EHLO, MAIL, RCPT.
    #[serde(with = "duration")]
    pub probe_timeout: Duration,
    /// Consecutive failed probes that declare an outage.
    #[serde(deserialize_with = "at_least_one")]
    pub failures_before_outage: u32,
    /// Consecutive good probes that end one (see `recovery_min_duration`).
    #[serde(deserialize_with = "at_least_one")]
    pub successes_before_recovery: u32,
    /// The good probes that end an outage must span at least this long, so an origin
    /// that flaps does not flip the state back and forth.
    #[serde(with = "duration")]
    pub recovery_min_duration: Duration,
    /// Postfix's log to follow for `status=deferred` lines about the origins' domains
    /// (each one triggers a probe at once): a file (`maillog_file`), or `journald`.
    #[serde(
        default,
        deserialize_with = "postfix_log",
        serialize_with = "serialize_postfix_log",
        skip_serializing_if = "Option::is_none"
    )]
    pub postfix_log: Option<PostfixLog>,
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            probe_interval: Duration::from_secs(5),
            outage_probe_interval: Duration::from_secs(5),
            retry_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_secs(3),
            failures_before_outage: 3,
            successes_before_recovery: 3,
            recovery_min_duration: Duration::from_secs(10),
            postfix_log: None,
        }
    }
}

/// Where Postfix's log lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostfixLog {
    File(PathBuf),
    Journald,
}

impl std::fmt::Display for PostfixLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostfixLog::File(path) => write!(f, "{}", path.display()),
            PostfixLog::Journald => f.write_str("journald"),
        }
    }
}

/// `[notify]`: email notices on every change of an origin's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Addresses told of every change of state.
    #[serde(deserialize_with = "addresses", serialize_with = "serialize_addresses")]
    pub admins: Vec<Address>,
    /// Tell each protected user, at their alternate address, when continuity starts (with
    /// how to connect) and when it ends.
    pub users: bool,
    /// Envelope and header sender; default `lifeboat@<hostname>`.
    #[serde(
        deserialize_with = "some_address",
        serialize_with = "serialize_some_address",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<Address>,
    /// At most one notice of a kind (outage, recovered) per recipient within this time.
    #[serde(with = "duration")]
    pub min_interval: Duration,
    pub admin_subject: String,
    pub admin_body: String,
    pub user_outage_subject: String,
    pub user_outage_body: String,
    pub user_recovered_subject: String,
    pub user_recovered_body: String,
    /// `lifeboat user invite`: asks a user (at their own address, before any outage) to
    /// log in once, so their password is cached, and to give an alternate address.
    pub invite_subject: String,
    pub invite_body: String,
    /// A user is invited at most once within this time (`--force` overrides).
    #[serde(with = "duration")]
    pub invite_min_interval: Duration,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            admins: Vec::new(),
            users: true,
            from: None,
            min_interval: Duration::from_secs(3600),
            admin_subject: "[lifeboat] origin {origin}: {from} -> {to}".to_string(),
            admin_body: "Origin {origin} ({address}; domains {domains}) changed from {from} to \
                         {to} at {at}.\nReason: {reason}\n\nLifeboat on {host}.\n"
                .to_string(),
            user_outage_subject: "Your mail is running on the continuity service".to_string(),
            user_outage_body: "Your mail server is not reachable at the moment. New mail to \
                               {username} is kept safe by the continuity service. Read and send \
                               it in your browser at {web_url} (sign in with your address and \
                               usual password), or with any mail program:\n\n  server:   \
                               {host}\n  username: {username}\n  password: your usual \
                               password\n  IMAP:     port {imaps_port} (TLS) or {imap_port} \
                               (STARTTLS)\n  POP3:     port {pop3s_port} (TLS) or {pop3_port} \
                               (STARTTLS)\n  sending:  port {submissions_port} (TLS) or \
                               {submission_port} (STARTTLS)\n\nWhen your mail server is back, \
                               everything you received and sent meanwhile is put back into \
                               your normal mailbox.\n"
                .to_string(),
            user_recovered_subject: "Your mail server is back".to_string(),
            user_recovered_body: "Your normal mail server is working again. Mail received and \
                                  sent through the continuity service is being put back into \
                                  your mailbox at {origin}.\n"
                .to_string(),
            invite_subject: "Please log in once to the mail continuity service".to_string(),
            invite_body: "If your mail server ever fails, you can go on reading and sending \
                          mail through the continuity service. So that your usual password \
                          works there when it counts, please log in once now, with any mail \
                          program:\n\n  server:   {host}\n  username: {username}\n  \
                          password: your usual password\n  IMAP:     port {imaps_port} (TLS) \
                          or {imap_port} (STARTTLS)\n\nAlso reply to your administrator with \
                          an address outside this mail system (a private one, say) where you \
                          can be told when an outage starts.\n"
                .to_string(),
            invite_min_interval: Duration::from_secs(24 * 3600),
        }
    }
}

/// The placeholders a notice template may use.
pub const TEMPLATE_FIELDS: &[&str] = &[
    "origin",
    "address",
    "domains",
    "from",
    "to",
    "at",
    "reason",
    "host",
    "username",
    "imap_port",
    "imaps_port",
    "pop3_port",
    "pop3s_port",
    "submission_port",
    "submissions_port",
    "web_url",
];

/// Fills `{name}` placeholders from `field`; `{{` and `}}` are literal braces. Fails on
/// a name `field` does not know, or an unclosed brace, with a message for the config.
pub fn fill_template(
    template: &str,
    field: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let (brace, after) = (rest.as_bytes()[at], &rest[at + 1..]);
        if after.as_bytes().first() == Some(&brace) {
            out.push(brace as char);
            rest = &after[1..];
            continue;
        }
        if brace == b'}' {
            return Err("a lone `}` (write `}}` for a brace)".to_string());
        }
        let end = after
            .find('}')
            .ok_or_else(|| "a `{` without its `}` (write `{{` for a brace)".to_string())?;
        let name = &after[..end];
        let value = field(name).ok_or_else(|| {
            format!(
                "unknown placeholder `{{{name}}}`; known: {}",
                TEMPLATE_FIELDS.join(", ")
            )
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl NotifyConfig {
    /// The templates by key name, for checking them when the config loads.
    pub fn templates(&self) -> [(&'static str, &str); 8] {
        [
            ("admin_subject", &self.admin_subject),
            ("admin_body", &self.admin_body),
            ("user_outage_subject", &self.user_outage_subject),
            ("user_outage_body", &self.user_outage_body),
            ("user_recovered_subject", &self.user_recovered_subject),
            ("user_recovered_body", &self.user_recovered_body),
            ("invite_subject", &self.invite_subject),
            ("invite_body", &self.invite_body),
        ]
    }
}

/// `[replay]`: how hard `lifeboat replay` may push an origin that has just recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayConfig {
    /// Connections to an origin at once (each carries one user's copies, in order).
    #[serde(deserialize_with = "at_least_one")]
    pub connections: u32,
    /// Messages per second at most, once the slow start is over.
    #[serde(deserialize_with = "at_least_one")]
    pub max_rate: u32,
    /// The rate climbs from a tenth of `max_rate` to all of it over this long.
    #[serde(with = "duration")]
    pub slow_start: Duration,
    /// Put in front of the Subject of replayed sent copies (empty: none), for origins
    /// without a rule on `X-Lifeboat-Sent`.
    pub sent_subject_tag: String,
}

impl Default for ReplayConfig {
    fn default() -> ReplayConfig {
        ReplayConfig {
            connections: 4,
            max_rate: 1000,
            slow_start: Duration::from_secs(30),
            sent_subject_tag: String::new(),
        }
    }
}

/// `[metrics]`: Prometheus text metrics over HTTP; off unless `listen` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(
        deserialize_with = "some_socket_addr",
        skip_serializing_if = "Option::is_none"
    )]
    pub listen: Option<SocketAddr>,
}

// ---- field deserializers ----

pub(super) mod duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        value::parse_string(d, |text| {
            let duration = humantime::parse_duration(text)
                .map_err(|e| format!("`{text}` is not a duration like \"5s\" or \"1h\": {e}"))?;
            if duration.is_zero() {
                return Err("must be longer than 0".to_string());
            }
            Ok(duration)
        })
    }

    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*duration))
    }
}

pub(super) fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

fn postfix_log<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PostfixLog>, D::Error> {
    value::parse_string(d, |text| {
        if text == "journald" {
            Ok(PostfixLog::Journald)
        } else {
            value::parse_absolute_path(text)
                .map(PostfixLog::File)
                .map_err(|e| format!("{e} (or \"journald\")"))
        }
    })
    .map(Some)
}

fn serialize_postfix_log<S: Serializer>(log: &Option<PostfixLog>, s: S) -> Result<S::Ok, S::Error> {
    match log {
        Some(log) => s.collect_str(log),
        None => s.serialize_none(),
    }
}

fn parse_address(text: &str) -> Result<Address, String> {
    Address::parse(text).map_err(|e| e.to_string())
}

fn addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Address>, D::Error> {
    value::parse_list(d, parse_address)
}

fn serialize_addresses<S: Serializer>(list: &[Address], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(Address::as_str))
}

fn some_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
    value::parse_string(d, parse_address).map(Some)
}

fn serialize_some_address<S: Serializer>(a: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_some(a.as_str()),
        None => s.serialize_none(),
    }
}

fn some_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    value::parse_string(d, value::parse_socket_addr).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> Option<String> {
        match name {
            "origin" => Some("main".to_string()),
            "to" => Some("outage".to_string()),
            _ => None,
        }
    }

    #[test]
    fn templates_fill_known_fields_and_keep_escaped_braces() {
        assert_eq!(
            fill_template("{origin} is {to} {{not}} }}", fields).unwrap(),
            "main is outage {not} }"
        );
        assert_eq!(fill_template("plain", fields).unwrap(), "plain");
    }

    #[test]
    fn templates_reject_unknown_fields_and_stray_braces() {
        let error = fill_template("{nope}", fields).unwrap_err();
        assert!(
            error.contains("`{nope}`") && error.contains("origin"),
            "{error}"
        );
        assert!(fill_template("{origin", fields).is_err());
        assert!(fill_template("a } b", fields).is_err());
    }

    #[test]
    fn default_templates_use_only_known_fields() {
        let known = |name: &str| TEMPLATE_FIELDS.contains(&name).then(String::new);
        for (key, template) in NotifyConfig::default().templates() {
            fill_template(template, known).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }
}
