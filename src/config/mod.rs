//! The configuration file, `/etc/lifeboat/lifeboat.toml` by default.
//!
//! Loading is strict: an unknown key, a wrong type or a bad value is an error that names the
//! file, the key path and the line, because a silently ignored typo in a continuity product
//! shows up only during the outage it was meant to cover. `contrib/lifeboat.toml` documents
//! every key with its default; a test keeps it in step with the structs below.

mod directory;
mod error;
mod value;
mod watch;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use lifeboat_mailstore::address::{Address, normalise_domain};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use directory::{AuthBackend, DirectoryConfig, DirectoryKind};
pub use error::ConfigError;
use error::KeyPath;
pub use value::{ListenSpec, OriginAddress, Protocol};
pub use watch::{
    MetricsConfig, NotifyConfig, PostfixLog, ReplayConfig, TEMPLATE_FIELDS, WatchConfig,
    fill_template,
};

/// Where the configuration is read from unless `--config` or `LIFEBOAT_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/lifeboat/lifeboat.toml";

/// A loaded and checked configuration. Build it with [`Config::load`] or [`Config::parse`],
/// which check what serde alone cannot (unique origins and domains, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file this configuration came from.
    #[serde(skip)]
    pub path: PathBuf,
    /// Root of the store: Maildirs and the SQLite index.
    #[serde(deserialize_with = "absolute_path")]
    pub data_dir: PathBuf,
    /// Name used in protocol greetings, notices and Maildir file names.
    #[serde(default = "machine_hostname")]
    pub hostname: String,
    /// Days of journal and replayed mail kept for users to read during an outage.
    #[serde(default = "default_history_days", deserialize_with = "days")]
    pub history_days: u32,
    /// System account `lifeboat serve` drops privileges to when started as root.
    #[serde(default = "default_user", deserialize_with = "user_name")]
    pub user: String,
    #[serde(default)]
    pub log: LogConfig,
    /// The origin servers, each owning its domains; at least one.
    #[serde(rename = "origin", default)]
    pub origins: Vec<Origin>,
    #[serde(default)]
    pub milter: MilterConfig,
    #[serde(default)]
    pub fallback: FallbackConfig,
    #[serde(default = "ServerListeners::imap", deserialize_with = "imap_listeners")]
    pub imap: ServerListeners,
    #[serde(default = "ServerListeners::pop3", deserialize_with = "pop3_listeners")]
    pub pop3: ServerListeners,
    #[serde(default)]
    pub submission: SubmissionConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub watch: WatchConfig,
    #[serde(default)]
    pub notify: NotifyConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub replay: ReplayConfig,
    #[serde(default)]
    pub directory: DirectoryConfig,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ConfigError::unreadable(path, &error))?;
        Config::parse(&text, path)
    }

    /// Parses `text` as the contents of the file at `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|error| ConfigError::from_toml(path, text, error))?;
        config.path = path.to_path_buf();
        config
            .check()
            .map_err(|(key, message)| ConfigError::at_key(path, text, key, None, message))?;
        Ok(config)
    }

    /// The origin that owns `domain` (compared without regard to case or a trailing dot).
    /// Subdomains are not included: each protected domain is listed by itself.
    pub fn origin_for_domain(&self, domain: &str) -> Option<&Origin> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.origins
            .iter()
            .find(|origin| origin.domains.contains(&domain))
    }

    pub fn origin(&self, name: &str) -> Option<&Origin> {
        self.origins.iter().find(|origin| origin.name == name)
    }

    /// The checks that involve more than one value, or a default serde cannot check.
    fn check(&mut self) -> Result<(), (KeyPath, String)> {
        let hostname_key = KeyPath::root().key("hostname");
        self.hostname = normalise_domain(&self.hostname).map_err(|reason| {
            let message = if self.hostname.is_empty() {
                "cannot tell this machine's hostname; set hostname".to_string()
            } else {
                format!("`{}` is not a valid host name: {reason}", self.hostname)
            };
            (hostname_key, message)
        })?;

        if self.origins.is_empty() {
            return Err((
                KeyPath::root().key("origin"),
                "at least one [[origin]] is required".to_string(),
            ));
        }
        let mut name_owners: HashMap<&str, usize> = HashMap::new();
        let mut domain_owners: HashMap<&str, &str> = HashMap::new();
        for (index, origin) in self.origins.iter().enumerate() {
            let origin_key = KeyPath::root().key("origin").index(index);
            if let Some(first) = name_owners.insert(&origin.name, index) {
                return Err((
                    origin_key.key("name"),
                    format!(
                        "origin name `{}` is already used by origin[{first}]",
                        origin.name
                    ),
                ));
            }
            for (domain_index, domain) in origin.domains.iter().enumerate() {
                if let Some(owner) = domain_owners.insert(domain, &origin.name) {
                    return Err((
                        origin_key.key("domains").index(domain_index),
                        format!("domain `{domain}` is already listed for origin `{owner}`"),
                    ));
                }
            }
        }
        self.check_listeners_distinct()?;
        self.check_templates()?;
        self.check_password_sources()
    }

    /// A backend or a directory that lacks what it needs would fail only at the first
    /// login or sync.
    fn check_password_sources(&self) -> Result<(), (KeyPath, String)> {
        if let Some((key, why)) = self.directory.missing() {
            return Err((KeyPath::root().key("directory").key(key), why.to_string()));
        }
        let backend = KeyPath::root().key("auth").key("backend");
        match self.auth.backend {
            AuthBackend::Directory if self.directory.url.is_none() => Err((
                backend,
                "backend = \"directory\" needs [directory] url".to_string(),
            )),
            AuthBackend::OriginImap if self.auth.origin_imap.is_none() => Err((
                backend,
                "backend = \"origin-imap\" needs [auth] origin_imap".to_string(),
            )),
            _ => Ok(()),
        }
    }

    /// A misspelt placeholder would otherwise surface only in the first real outage.
    fn check_templates(&self) -> Result<(), (KeyPath, String)> {
        let known = |name: &str| TEMPLATE_FIELDS.contains(&name).then(String::new);
        for (key, template) in self.notify.templates() {
            fill_template(template, known)
                .map_err(|message| (KeyPath::root().key("notify").key(key), message))?;
        }
        Ok(())
    }

    /// Two listeners on one address would fail only when `serve` binds them; say so now.
    fn check_listeners_distinct(&self) -> Result<(), (KeyPath, String)> {
        let mut seen: Vec<(SocketAddr, KeyPath)> = Vec::new();
        let mut listeners: Vec<(SocketAddr, KeyPath)> = Vec::new();
        if let ListenSpec::Inet(address) = self.milter.listen {
            listeners.push((address, KeyPath::root().key("milter").key("listen")));
        }
        listeners.push((
            self.fallback.listen,
            KeyPath::root().key("fallback").key("listen"),
        ));
        if let Some(address) = self.metrics.listen {
            listeners.push((address, KeyPath::root().key("metrics").key("listen")));
        }
        let lists = [
            ("imap", "listen", &self.imap.listen),
            ("imap", "tls_listen", &self.imap.tls_listen),
            ("pop3", "listen", &self.pop3.listen),
            ("pop3", "tls_listen", &self.pop3.tls_listen),
            ("submission", "listen", &self.submission.listen),
            ("submission", "tls_listen", &self.submission.tls_listen),
            ("web", "listen", &self.web.listen),
            ("web", "tls_listen", &self.web.tls_listen),
        ];
        for (section, key, addresses) in lists {
            for (index, address) in addresses.iter().enumerate() {
                let path = KeyPath::root().key(section).key(key).index(index);
                listeners.push((*address, path));
            }
        }
        for (address, path) in listeners {
            if let Some((_, first)) = seen.iter().find(|(seen, _)| *seen == address) {
                return Err((path, format!("`{address}` is already used by {first}")));
            }
            seen.push((address, path));
        }
        Ok(())
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: LogLevel::Info,
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name as `tracing` filters spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[[origin]]`: one origin mail server and the domains it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    #[serde(deserialize_with = "origin_name")]
    pub name: String,
    pub address: OriginAddress,
    /// Lowercase, without a trailing dot.
    #[serde(deserialize_with = "domains")]
    pub domains: Vec<String>,
    /// Recipient used in probes, so a probe also proves the origin accepts mail for it.
    #[serde(
        default,
        deserialize_with = "probe_address",
        serialize_with = "serialize_probe_address",
        skip_serializing_if = "Option::is_none"
    )]
    pub probe_address: Option<Address>,
}

/// `[milter]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MilterConfig {
    pub listen: ListenSpec,
    /// Bytes; bigger mail is left to Postfix alone (neither journaled nor diverted).
    pub max_message_size: u64,
    /// Networks allowed to connect to an `inet:` listener (a unix socket is guarded by
    /// its mode and group instead). Whoever talks to the milter decides what is stored
    /// and replayed, envelope sender included, so only Postfix should.
    #[serde(deserialize_with = "networks")]
    pub allowed_clients: Vec<IpNet>,
}

impl MilterConfig {
    /// Whether a client at `ip` may connect (IPv4 seen on an IPv6 socket as IPv4).
    pub fn allows(&self, ip: IpAddr) -> bool {
        allowed(&self.allowed_clients, ip)
    }
}

impl Default for MilterConfig {
    fn default() -> MilterConfig {
        MilterConfig {
            listen: ListenSpec::Unix(PathBuf::from("/run/lifeboat/milter.sock")),
            max_message_size: 50 * 1024 * 1024,
            allowed_clients: loopback(),
        }
    }
}

/// 127.0.0.0/8 and ::1: Postfix on the same machine.
fn loopback() -> Vec<IpNet> {
    vec![
        IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
        IpNet::new_assert(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    ]
}

/// Whether `ip` is in one of `networks`; an IPv4 client seen on an IPv6 socket
/// (`::ffff:127.0.0.1`) is matched as IPv4.
pub fn allowed(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    networks.iter().any(|network| network.contains(&ip))
}

/// `[fallback]`: the SMTP listener Postfix uses as `smtp_fallback_relay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FallbackConfig {
    #[serde(deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Networks allowed to connect; bare addresses are single-address networks.
    #[serde(deserialize_with = "networks")]
    pub allowed_clients: Vec<IpNet>,
}

impl FallbackConfig {
    /// Whether a client at `ip` may connect; an IPv4 client seen on an IPv6 socket
    /// (`::ffff:127.0.0.1`) is matched as IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        allowed(&self.allowed_clients, ip)
    }
}

impl Default for FallbackConfig {
    fn default() -> FallbackConfig {
        FallbackConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 10026)),
            allowed_clients: loopback(),
        }
    }
}

/// `[imap]` and `[pop3]`: where the server listens. An empty list turns that listener off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerListeners {
    /// Plain listeners, offering STARTTLS (IMAP) or STLS (POP3).
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners.
    pub tls_listen: Vec<SocketAddr>,
}

impl ServerListeners {
    fn imap() -> ServerListeners {
        ServerListeners::on_all_interfaces(143, 993)
    }

    fn pop3() -> ServerListeners {
        ServerListeners::on_all_interfaces(110, 995)
    }

    fn on_all_interfaces(port: u16, tls_port: u16) -> ServerListeners {
        ServerListeners {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], port))],
            tls_listen: vec![SocketAddr::from(([0, 0, 0, 0], tls_port))],
        }
    }
}

/// The `[imap]` or `[pop3]` table as written: which keys it sets, so the defaults of the
/// right server fill the rest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenersSection {
    #[serde(default, deserialize_with = "some_socket_addrs")]
    listen: Option<Vec<SocketAddr>>,
    #[serde(default, deserialize_with = "some_socket_addrs")]
    tls_listen: Option<Vec<SocketAddr>>,
}

impl ListenersSection {
    fn or(self, defaults: ServerListeners) -> ServerListeners {
        ServerListeners {
            listen: self.listen.unwrap_or(defaults.listen),
            tls_listen: self.tls_listen.unwrap_or(defaults.tls_listen),
        }
    }
}

/// `[submission]`: SMTP submission for users during continuity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubmissionConfig {
    /// Plain listeners, offering STARTTLS.
    #[serde(deserialize_with = "socket_addrs")]
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners.
    #[serde(deserialize_with = "socket_addrs")]
    pub tls_listen: Vec<SocketAddr>,
    /// Where authenticated users' mail is handed to Postfix (SMTP only).
    #[serde(deserialize_with = "smtp_relay")]
    pub relay: OriginAddress,
    /// Store a copy of each submitted message in the sender's Sent folder, for clients
    /// that do not save their own.
    pub save_sent: bool,
}

impl Default for SubmissionConfig {
    fn default() -> SubmissionConfig {
        SubmissionConfig {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 587))],
            tls_listen: vec![SocketAddr::from(([0, 0, 0, 0], 465))],
            relay: OriginAddress {
                protocol: Protocol::Smtp,
                host: "127.0.0.1".to_string(),
                port: 25,
            },
            save_sent: false,
        }
    }
}

/// `[web]`: the web portal. An empty list turns that listener off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Plain HTTP listeners: loopback only by default, for a reverse proxy in front.
    #[serde(deserialize_with = "socket_addrs")]
    pub listen: Vec<SocketAddr>,
    /// HTTPS listeners with the `[tls]` certificate.
    #[serde(deserialize_with = "socket_addrs")]
    pub tls_listen: Vec<SocketAddr>,
    /// Where users reach the portal (reset links, notices); `https://<hostname>/` when
    /// unset. Always ends with `/`.
    #[serde(deserialize_with = "base_url", skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl Default for WebConfig {
    fn default() -> WebConfig {
        WebConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            tls_listen: vec![SocketAddr::from(([0, 0, 0, 0], 443))],
            base_url: None,
        }
    }
}

impl Config {
    /// `[web] base_url`, or `https://<hostname>/`.
    pub fn web_base_url(&self) -> String {
        self.web
            .base_url
            .clone()
            .unwrap_or_else(|| format!("https://{}/", self.hostname))
    }
}

/// `[tls]`: certificate chain and key in PEM, read by the servers (not by config loading).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(deserialize_with = "absolute_path")]
    pub cert: PathBuf,
    #[serde(deserialize_with = "absolute_path")]
    pub key: PathBuf,
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            cert: PathBuf::from("/etc/lifeboat/tls/fullchain.pem"),
            key: PathBuf::from("/etc/lifeboat/tls/privkey.pem"),
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Allow login without TLS on listeners that are not loopback.
    pub allow_plaintext: bool,
    /// Seconds a successful login is remembered, so clients that log in every few
    /// minutes do not cost a password hash each time; 0 turns the cache off.
    pub login_cache_seconds: u64,
    /// Where passwords are checked: `local`, `directory` or `origin-imap`.
    pub backend: AuthBackend,
    /// The origin's IMAP server for `backend = "origin-imap"`: `imaps://host[:port]` or
    /// `imap://host[:port]` (STARTTLS).
    #[serde(
        deserialize_with = "directory::some_imap_server",
        serialize_with = "directory::serialize_imap_server",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_imap: Option<lifeboat_servers::auth::backend::ImapServer>,
    /// CA certificates (PEM) for the origin IMAP server; default: the system's.
    #[serde(
        deserialize_with = "directory::optional_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_imap_ca_file: Option<PathBuf>,
    /// How long a login waits for the directory or origin before the cached password is
    /// used.
    #[serde(with = "watch::duration")]
    pub source_timeout: std::time::Duration,
    /// After the source could not be reached, logins use the cached password at once
    /// for this long before the source is asked again.
    #[serde(with = "watch::duration")]
    pub source_retry_after: std::time::Duration,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            allow_plaintext: false,
            login_cache_seconds: 900,
            backend: AuthBackend::Local,
            origin_imap: None,
            origin_imap_ca_file: None,
            source_timeout: std::time::Duration::from_secs(5),
            source_retry_after: std::time::Duration::from_secs(30),
        }
    }
}

// ---- defaults ----

fn default_history_days() -> u32 {
    30
}

fn default_user() -> String {
    "lifeboat".to_string()
}

/// This machine's hostname, or "" when it cannot be read (reported by [`Config::check`]).
fn machine_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|file| std::fs::read_to_string(file).ok())
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

// ---- field deserializers (value checks with serde's key path) ----

fn absolute_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    value::parse_string(d, value::parse_absolute_path)
}

fn days<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let days = u32::deserialize(d)?;
    if days == 0 {
        return Err(serde::de::Error::custom("must be at least 1 (day)"));
    }
    Ok(days)
}

fn user_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    value::parse_string(d, value::parse_user_name)
}

fn origin_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    value::parse_string(d, value::parse_origin_name)
}

fn domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let domains = value::parse_list(d, value::parse_domain)?;
    if domains.is_empty() {
        return Err(serde::de::Error::custom("at least one domain is required"));
    }
    Ok(domains)
}

fn probe_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
    value::parse_string(d, |text| Address::parse(text).map_err(|e| e.to_string())).map(Some)
}

fn serialize_probe_address<S: Serializer>(
    address: &Option<Address>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match address {
        Some(address) => serializer.serialize_some(address.as_str()),
        None => serializer.serialize_none(),
    }
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    value::parse_string(d, value::parse_socket_addr)
}

fn socket_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    value::parse_list(d, value::parse_socket_addr)
}

fn some_socket_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<SocketAddr>>, D::Error> {
    socket_addrs(d).map(Some)
}

fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let networks = value::parse_list(d, value::parse_network)?;
    if networks.is_empty() {
        // The milter's and fallback listener's only client is Postfix; an empty list
        // refuses it too.
        return Err(serde::de::Error::custom(
            "at least one network is required (Postfix must be allowed to connect)",
        ));
    }
    Ok(networks)
}

fn smtp_relay<'de, D: Deserializer<'de>>(d: D) -> Result<OriginAddress, D::Error> {
    let relay = OriginAddress::deserialize(d)?;
    if relay.protocol != Protocol::Smtp {
        return Err(serde::de::Error::custom(
            "the relay must be an smtp:// address (Postfix's smtpd)",
        ));
    }
    Ok(relay)
}

fn base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    value::parse_string(d, value::parse_base_url).map(Some)
}

fn imap_listeners<'de, D: Deserializer<'de>>(d: D) -> Result<ServerListeners, D::Error> {
    ListenersSection::deserialize(d).map(|section| section.or(ServerListeners::imap()))
}

fn pop3_listeners<'de, D: Deserializer<'de>>(d: D) -> Result<ServerListeners, D::Error> {
    ListenersSection::deserialize(d).map(|section| section.or(ServerListeners::pop3()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALLEST: &str = r#"
data_dir = "/var/lib/lifeboat"

[[origin]]
name = "main"
address = "smtp://mail.internal.example.com"
domains = ["Example.COM", "example.org."]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    fn parse_err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(error) => error,
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn smallest_config_gets_the_documented_defaults() {
        let config = parse(SMALLEST).unwrap();
        assert_eq!(config.path, Path::new("test.toml"));
        assert_eq!(config.data_dir, Path::new("/var/lib/lifeboat"));
        assert_eq!(
            config.hostname,
            normalise_domain(&machine_hostname()).unwrap()
        );
        assert_eq!(config.history_days, 30);
        assert_eq!(config.user, "lifeboat");
        assert_eq!(config.log.level, LogLevel::Info);
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(
            config.milter.listen,
            ListenSpec::Unix("/run/lifeboat/milter.sock".into())
        );
        assert_eq!(config.milter.max_message_size, 52_428_800);
        let milter_clients: Vec<String> = config
            .milter
            .allowed_clients
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(milter_clients, ["127.0.0.0/8", "::1/128"]);
        assert!(config.milter.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!config.milter.allows("192.0.2.1".parse().unwrap()));
        assert_eq!(config.fallback.listen, "127.0.0.1:10026".parse().unwrap());
        let clients: Vec<String> = config
            .fallback
            .allowed_clients
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(clients, ["127.0.0.0/8", "::1/128"]);
        assert_eq!(config.imap.listen, addrs(&["0.0.0.0:143"]));
        assert_eq!(config.imap.tls_listen, addrs(&["0.0.0.0:993"]));
        assert_eq!(config.pop3.listen, addrs(&["0.0.0.0:110"]));
        assert_eq!(config.pop3.tls_listen, addrs(&["0.0.0.0:995"]));
        assert_eq!(config.submission.listen, addrs(&["0.0.0.0:587"]));
        assert_eq!(config.submission.tls_listen, addrs(&["0.0.0.0:465"]));
        assert_eq!(config.submission.relay.to_string(), "smtp://127.0.0.1:25");
        assert_eq!(config.web.listen, addrs(&["127.0.0.1:8080"]));
        assert_eq!(config.web.tls_listen, addrs(&["0.0.0.0:443"]));
        assert_eq!(
            config.web_base_url(),
            format!("https://{}/", config.hostname)
        );
        assert!(!config.submission.save_sent);
        assert_eq!(
            config.tls.cert,
            Path::new("/etc/lifeboat/tls/fullchain.pem")
        );
        assert_eq!(config.tls.key, Path::new("/etc/lifeboat/tls/privkey.pem"));
        assert!(!config.auth.allow_plaintext);
        assert_eq!(config.auth.login_cache_seconds, 900);
        assert_eq!(config.auth.backend, AuthBackend::Local);
        assert_eq!(
            config.auth.source_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(
            config.auth.source_retry_after,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(config.directory.url, None);
        assert!(config.directory.settings().is_none());
        assert_eq!(
            config.directory.sync_interval,
            std::time::Duration::from_secs(900)
        );

        let origin = &config.origins[0];
        assert_eq!(
            origin.address.to_string(),
            "smtp://mail.internal.example.com:25"
        );
        assert_eq!(origin.probe_address, None);
    }

    #[test]
    fn a_partial_section_keeps_that_sections_defaults() {
        let config = parse(&format!(
            "{SMALLEST}\n[pop3]\nlisten = []\n[imap]\ntls_listen = [\"[::]:993\"]\n"
        ))
        .unwrap();
        assert_eq!(config.pop3.listen, []);
        assert_eq!(config.pop3.tls_listen, addrs(&["0.0.0.0:995"]));
        assert_eq!(config.imap.listen, addrs(&["0.0.0.0:143"]));
        assert_eq!(config.imap.tls_listen, addrs(&["[::]:993"]));
    }

    #[test]
    fn domains_and_probe_address_are_normalised() {
        let text = SMALLEST.replace(
            "domains =",
            "probe_address = \"PostMaster@Example.COM\"\ndomains =",
        );
        let config = parse(&text).unwrap();
        let origin = &config.origins[0];
        assert_eq!(origin.domains, ["example.com", "example.org"]);
        let probe = origin.probe_address.as_ref().unwrap();
        assert_eq!(probe.as_str(), "PostMaster@example.com");
    }

    #[test]
    fn origins_are_found_by_domain_without_regard_to_case() {
        let text = format!(
            "{SMALLEST}\n[[origin]]\nname = \"second\"\naddress = \"lmtp://[::1]:24\"\n\
             domains = [\"second.example\"]\n"
        );
        let config = parse(&text).unwrap();
        let name = |domain| config.origin_for_domain(domain).map(|o| o.name.as_str());
        assert_eq!(name("EXAMPLE.com"), Some("main"));
        assert_eq!(name("example.org."), Some("main"));
        assert_eq!(name("Second.Example"), Some("second"));
        assert_eq!(name("sub.example.com"), None);
        assert_eq!(name("example.net"), None);
        assert_eq!(config.origin("second").unwrap().address.port, 24);
        assert!(config.origin("Main").is_none());
    }

    #[test]
    fn fallback_clients_match_networks_and_mapped_addresses() {
        let fallback = FallbackConfig::default();
        assert!(fallback.allows("127.0.0.1".parse().unwrap()));
        assert!(fallback.allows("127.8.9.10".parse().unwrap()));
        assert!(fallback.allows("::1".parse().unwrap()));
        assert!(fallback.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!fallback.allows("192.0.2.1".parse().unwrap()));
        assert!(!fallback.allows("::2".parse().unwrap()));
    }

    #[test]
    fn errors_carry_key_and_line() {
        let error = parse_err(&format!("{SMALLEST}[log]\nlevel = \"verbose\"\n"));
        assert_eq!(error.key.as_deref(), Some("log.level"));
        assert_eq!(error.line, Some(9));
        assert!(error.message.contains("`debug`"), "{error}");

        let error = parse_err("data_dir = \"/srv\"\n[origin]\nname = \"main\"\n");
        assert_eq!(error.key.as_deref(), Some("origin"));
        assert_eq!(error.line, Some(2));
        assert!(error.message.contains("[[origin]]"), "{error}");

        let error = parse_err(&format!("log = 5\n{SMALLEST}"));
        assert_eq!(error.key.as_deref(), Some("log"));
        assert_eq!(error.line, Some(1));
        assert_eq!(error.message, "invalid type: integer `5`, expected a table");

        let error = parse_err(&format!(
            "{SMALLEST}[submission]\nrelay = \"lmtp://h:24\"\n"
        ));
        assert_eq!(error.key.as_deref(), Some("submission.relay"));
        assert_eq!(error.line, Some(9));

        let error = parse_err(&format!("hostname = \"a b\"{SMALLEST}"));
        assert_eq!(error.key.as_deref(), Some("hostname"));
        assert_eq!(error.line, Some(1));

        // After `[[origin]]`, a top-level key name belongs to the origin table.
        let error = parse_err(&format!("{SMALLEST}hostname = \"mx.example.com\"\n"));
        assert_eq!(error.key.as_deref(), Some("origin[0].hostname"));
        assert_eq!(error.line, Some(8));
        assert!(
            error
                .message
                .starts_with("unknown key, expected one of `name`"),
            "{error}"
        );
    }

    #[test]
    fn the_same_listen_address_twice_is_refused() {
        let error = parse_err(&format!(
            "{SMALLEST}[submission]\nlisten = [\"0.0.0.0:587\", \"0.0.0.0:143\"]\n"
        ));
        assert_eq!(error.key.as_deref(), Some("submission.listen[1]"));
        assert!(error.message.contains("imap.listen[0]"), "{error}");
    }

    #[test]
    fn a_password_source_must_have_what_it_needs() {
        let error = parse_err(&format!("{SMALLEST}[auth]\nbackend = \"directory\"\n"));
        assert_eq!(error.key.as_deref(), Some("auth.backend"));
        assert_eq!(error.line, Some(9));
        assert!(error.message.contains("[directory] url"), "{error}");

        let error = parse_err(&format!("{SMALLEST}[auth]\nbackend = \"origin-imap\"\n"));
        assert!(error.message.contains("origin_imap"), "{error}");

        let error = parse_err(&format!(
            "{SMALLEST}[directory]\nurl = \"ldaps://ldap.example.com\"\nbase = \"dc=example\"\n"
        ));
        assert_eq!(error.key.as_deref(), Some("directory.bind_dn"));
        assert_eq!(error.line, Some(8), "placed at the section");

        let error = parse_err(&format!("{SMALLEST}[directory]\nurl = \"http://x\"\n"));
        assert_eq!(error.key.as_deref(), Some("directory.url"));
        assert_eq!(error.line, Some(9));
        let error = parse_err(&format!("{SMALLEST}[auth]\norigin_imap = \"pop3://x\"\n"));
        assert_eq!(error.key.as_deref(), Some("auth.origin_imap"));
        let error = parse_err(&format!("{SMALLEST}[directory]\nkind = \"novell\"\n"));
        assert_eq!(error.key.as_deref(), Some("directory.kind"));

        let config = parse(&format!(
            "{SMALLEST}[auth]\nbackend = \"origin-imap\"\norigin_imap = \"imap://mail.example.com\"\n\
             [directory]\nurl = \"ldap://dc1.example.com\"\nkind = \"active-directory\"\n\
             bind_dn = \"CN=svc,DC=example\"\nbind_password_file = \"/etc/lifeboat/ldap.pw\"\n\
             base = \"DC=example\"\n"
        ))
        .unwrap();
        assert_eq!(config.auth.origin_imap.unwrap().port, 143);
        let settings = config.directory.settings().unwrap();
        assert_eq!(settings.attributes.aliases, "proxyAddresses");
        assert_eq!(
            settings.user_filter,
            "(&(objectCategory=person)(objectClass=user)(mail=*))"
        );
        assert_eq!(settings.page_size, 500);
    }

    #[test]
    fn the_same_domain_twice_in_one_origin_is_refused() {
        let error = parse_err(&SMALLEST.replace("\"example.org.\"", "\"example.com\""));
        assert_eq!(error.key.as_deref(), Some("origin[0].domains[1]"));
    }

    #[test]
    fn empty_lists_that_would_disable_a_required_part_are_refused() {
        let error = parse_err(&SMALLEST.replace("[\"Example.COM\", \"example.org.\"]", "[]"));
        assert_eq!(error.key.as_deref(), Some("origin[0].domains"));
        let error = parse_err(&format!("{SMALLEST}[fallback]\nallowed_clients = []\n"));
        assert_eq!(error.key.as_deref(), Some("fallback.allowed_clients"));
        let error = parse_err(&format!("{SMALLEST}[milter]\nallowed_clients = []\n"));
        assert_eq!(error.key.as_deref(), Some("milter.allowed_clients"));
    }

    #[test]
    fn web_base_url_is_checked_and_ends_with_a_slash() {
        let config = parse(&format!(
            "{SMALLEST}\n[web]\nlisten = []\nbase_url = \"https://mail.example.com/portal\"\n"
        ))
        .unwrap();
        assert!(config.web.listen.is_empty());
        assert_eq!(config.web.tls_listen, addrs(&["0.0.0.0:443"]));
        assert_eq!(config.web_base_url(), "https://mail.example.com/portal/");
        let error = parse_err(&format!(
            "{SMALLEST}\n[web]\nbase_url = \"mail.example.com\"\n"
        ));
        assert!(error.to_string().contains("web.base_url"), "{error}");
        let error = parse_err(&format!(
            "{SMALLEST}\n[imap]\nlisten = [\"127.0.0.1:8080\"]\n"
        ));
        assert!(error.to_string().contains("web.listen[0]"), "{error}");
        assert!(error.message.contains("imap.listen[0]"), "{error}");
    }
}
