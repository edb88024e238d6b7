//! Email notices about origin state changes: to the admins on every change, and to each
//! protected user's alternate address when continuity starts (with how to connect) and
//! when it ends. Sent through Postfix (`[submission] relay`), rate-limited per
//! recipient and kind in the store so a flapping origin or a restart floods nobody.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lifeboat_mailstore::reloadable::Reloadable;
use lifeboat_mailstore::{OriginStatus, OutageState, Store};
use lifeboat_servers::smtp::{Client, Reply};
use mail_builder::MessageBuilder;
use mail_builder::headers::text::Text;
use tokio::task::spawn_blocking;

use crate::config::{Config, Origin, fill_template};

/// Limit on each step of talking to the relay.
const RELAY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Notifier {
    store: Store,
    config: Reloadable<Config>,
}

/// One notice for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub recipient: String,
    /// For rate limiting: notices of the same kind to the same recipient are spaced out.
    pub kind: String,
    pub subject: String,
    pub body: String,
}

/// A protected user who gets notices, as the store knows them.
#[derive(Clone, Debug)]
pub struct UserContact {
    pub address: String,
    pub alternate_email: String,
}

impl Notifier {
    pub fn new(store: Store, config: Config) -> Notifier {
        Notifier {
            store,
            config: Reloadable::new(config),
        }
    }

    pub fn reload(&self, config: Config) {
        self.config.replace(config);
    }

    /// Tells whoever should know that `origin` went from `from` to `now`. Failures are
    /// logged; a notice that could not be sent may go out on the next change.
    pub async fn state_changed(&self, origin: &Origin, from: OutageState, now: &OriginStatus) {
        let config = self.config.get();
        let users = if config.notify.users {
            match self.user_contacts(&origin.domains).await {
                Ok(users) => users,
                Err(e) => {
                    tracing::error!(error = %e, "notices: cannot read the users; only admins are told");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let notices = match compose(&config, origin, from, now, &users) {
            Ok(notices) => notices,
            Err(e) => {
                tracing::error!(error = %e, "notices: a template does not fill; nothing sent");
                return;
            }
        };
        let min_interval = config.notify.min_interval.as_secs() as i64;
        for notice in notices {
            self.send_rate_limited(&config, notice, min_interval).await;
        }
    }

    /// Tells the admins something that is not a change of state (copies the origin
    /// refused during replay). Rate-limited per admin and `kind` like every notice.
    pub async fn tell_admins(&self, kind: &str, subject: String, body: String) {
        let config = self.config.get();
        let min_interval = config.notify.min_interval.as_secs() as i64;
        for admin in &config.notify.admins {
            let notice = Notice {
                recipient: admin.to_string(),
                kind: kind.to_string(),
                subject: subject.clone(),
                body: body.clone(),
            };
            self.send_rate_limited(&config, notice, min_interval).await;
        }
    }

    async fn user_contacts(
        &self,
        domains: &[String],
    ) -> lifeboat_mailstore::Result<Vec<UserContact>> {
        let store = self.store.clone();
        let domains = domains.to_vec();
        spawn_blocking(move || {
            let users = store.reader()?.users()?;
            Ok(users
                .into_iter()
                .filter(|u| u.active && domains.iter().any(|d| u.address.domain() == d))
                .filter_map(|u| {
                    Some(UserContact {
                        address: u.address.to_string(),
                        alternate_email: u.alternate_email?,
                    })
                })
                .collect())
        })
        .await
        .unwrap_or_else(|e| Err(lifeboat_mailstore::Error::Refused(e.to_string())))
    }

    async fn send_rate_limited(&self, config: &Config, notice: Notice, min_interval: i64) {
        let claim = {
            let (store, recipient, kind) = (
                self.store.clone(),
                notice.recipient.clone(),
                notice.kind.clone(),
            );
            spawn_blocking(move || store.claim_notice(&recipient, &kind, min_interval)).await
        };
        match claim {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::info!(recipient = %notice.recipient, kind = %notice.kind, "notice held back: one was sent recently");
                return;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "notices: cannot record the notice; not sent");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "notices: internal error");
                return;
            }
        }
        match send(config, &notice).await {
            Ok(()) => {
                tracing::info!(recipient = %notice.recipient, kind = %notice.kind, subject = %notice.subject, "notice sent")
            }
            Err(e) => {
                tracing::error!(recipient = %notice.recipient, kind = %notice.kind, relay = %config.submission.relay, error = %e, "notice not sent");
                let (store, recipient, kind) = (self.store.clone(), notice.recipient, notice.kind);
                let _ = spawn_blocking(move || store.release_notice(&recipient, &kind)).await;
            }
        }
    }
}

/// The notices a change calls for: one per admin, and for the start or end of an
/// outage one per protected user with an alternate address.
pub fn compose(
    config: &Config,
    origin: &Origin,
    from: OutageState,
    now: &OriginStatus,
    users: &[UserContact],
) -> Result<Vec<Notice>, String> {
    let notify = &config.notify;
    let fields = |username: &str, name: &str| -> Option<String> {
        if let Some(value) = connection_field(config, username, name) {
            return Some(value);
        }
        Some(match name {
            "origin" => origin.name.clone(),
            "address" => origin.address.to_string(),
            "domains" => origin.domains.join(", "),
            "from" => from.to_string(),
            "to" => now.state.to_string(),
            "at" => humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + Duration::from_secs(now.since.max(0) as u64),
            )
            .to_string(),
            "reason" => now.reason.clone(),
            _ => return None,
        })
    };
    let mut notices = Vec::new();
    for admin in &notify.admins {
        notices.push(Notice {
            recipient: admin.to_string(),
            kind: format!("admin:{}:{}", origin.name, now.state),
            subject: fill_template(&notify.admin_subject, |n| fields("", n))?,
            body: fill_template(&notify.admin_body, |n| fields("", n))?,
        });
    }
    let user_templates = match (from, now.state) {
        (_, OutageState::Outage) => Some((
            "user-outage",
            &notify.user_outage_subject,
            &notify.user_outage_body,
        )),
        (OutageState::Outage, _) => Some((
            "user-recovered",
            &notify.user_recovered_subject,
            &notify.user_recovered_body,
        )),
        _ => None,
    };
    if let Some((kind, subject, body)) = user_templates {
        for user in users {
            notices.push(Notice {
                recipient: user.alternate_email.clone(),
                kind: format!("{kind}:{}", origin.name),
                subject: fill_template(subject, |n| fields(&user.address, n))?,
                body: fill_template(body, |n| fields(&user.address, n))?,
            });
        }
    }
    Ok(notices)
}

/// The template fields that tell a user how to connect: `host`, `username` and the
/// ports (`(off)` for a server without listeners).
pub fn connection_field(config: &Config, username: &str, name: &str) -> Option<String> {
    let port = |list: &[std::net::SocketAddr]| {
        list.first()
            .map_or("(off)".to_string(), |a| a.port().to_string())
    };
    Some(match name {
        "host" => config.hostname.clone(),
        "username" => username.to_string(),
        "imap_port" => port(&config.imap.listen),
        "imaps_port" => port(&config.imap.tls_listen),
        "pop3_port" => port(&config.pop3.listen),
        "pop3s_port" => port(&config.pop3.tls_listen),
        "submission_port" => port(&config.submission.listen),
        "submissions_port" => port(&config.submission.tls_listen),
        "web_url" => config.web_base_url(),
        _ => return None,
    })
}

/// Hands one notice to the relay (Postfix's smtpd) over SMTP.
pub async fn send(config: &Config, notice: &Notice) -> Result<(), String> {
    let sender = match &config.notify.from {
        Some(from) => from.to_string(),
        None => format!("lifeboat@{}", config.hostname),
    };
    let message = MessageBuilder::new()
        .from(("Lifeboat", sender.as_str()))
        .to(notice.recipient.as_str())
        .subject(notice.subject.as_str())
        .message_id(message_id(&config.hostname))
        // RFC 3834: no vacation replies or other automatic answers to a notice.
        .header("Auto-Submitted", Text::new("auto-generated"))
        .text_body(notice.body.as_str())
        .write_to_vec()
        .map_err(|e| format!("building the message: {e}"))?;

    let relay = &config.submission.relay;
    let mut client = Client::connect(
        (relay.host.as_str(), relay.port),
        &config.hostname,
        false,
        RELAY_TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())?;
    let outcome = transaction(&mut client, &sender, &notice.recipient, &message).await;
    client.quit().await;
    outcome
}

/// One transaction; the first answer that is not a success is the error.
async fn transaction(
    client: &mut Client,
    sender: &str,
    recipient: &str,
    message: &[u8],
) -> Result<(), String> {
    let refused = |reply: Reply| Err(reply.text);
    let reply = client.mail(sender, None).await.map_err(|e| e.to_string())?;
    if !reply.is_positive() {
        return refused(reply);
    }
    let reply = client.rcpt(recipient).await.map_err(|e| e.to_string())?;
    if !reply.is_positive() {
        return refused(reply);
    }
    let mut replies = client.data(message, 1).await.map_err(|e| e.to_string())?;
    let reply = replies.remove(0);
    if reply.is_positive() {
        Ok(())
    } else {
        refused(reply)
    }
}

fn message_id(hostname: &str) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "lifeboat.{}.{}.{}.{}@{hostname}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        let text = format!(
            "data_dir = \"/srv/lb\"\nhostname = \"lifeboat.example.com\"\n\
             [[origin]]\nname = \"main\"\naddress = \"smtp://10.0.0.5\"\ndomains = [\"example.com\"]\n\
             [imap]\nlisten = []\n{extra}"
        );
        Config::parse(&text, Path::new("t.toml")).unwrap()
    }

    fn status(state: OutageState) -> OriginStatus {
        OriginStatus {
            origin: "main".into(),
            state,
            since: 1_764_043_200,
            reason: "3 failed probes in a row".into(),
            manual: false,
        }
    }

    fn alice() -> Vec<UserContact> {
        vec![UserContact {
            address: "alice@example.com".into(),
            alternate_email: "alice@home.example".into(),
        }]
    }

    #[test]
    fn an_outage_tells_admins_and_users_how_to_connect() {
        let config = config("[notify]\nadmins = [\"ops@example.net\"]\n");
        let origin = &config.origins[0];
        let notices = compose(
            &config,
            origin,
            OutageState::Normal,
            &status(OutageState::Outage),
            &alice(),
        )
        .unwrap();
        assert_eq!(notices.len(), 2);
        let admin = &notices[0];
        assert_eq!(admin.recipient, "ops@example.net");
        assert_eq!(admin.subject, "[lifeboat] origin main: normal -> outage");
        assert!(
            admin.body.contains("3 failed probes in a row"),
            "{}",
            admin.body
        );
        assert!(
            admin.body.contains("2025-11-25T04:00:00Z"),
            "{}",
            admin.body
        );
        let user = &notices[1];
        assert_eq!(user.recipient, "alice@home.example");
        assert_eq!(user.kind, "user-outage:main");
        assert!(
            user.body.contains("server:   lifeboat.example.com"),
            "{}",
            user.body
        );
        assert!(
            user.body.contains("username: alice@example.com"),
            "{}",
            user.body
        );
        assert!(
            user.body.contains("port 993 (TLS) or (off) (STARTTLS)"),
            "{}",
            user.body
        );
        assert!(
            user.body.contains("port 465 (TLS) or 587 (STARTTLS)"),
            "{}",
            user.body
        );
    }

    #[test]
    fn users_hear_when_the_outage_ends_but_not_of_recovering_to_normal() {
        let config = config("");
        let origin = &config.origins[0];
        let back = compose(
            &config,
            origin,
            OutageState::Outage,
            &status(OutageState::Recovering),
            &alice(),
        )
        .unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].kind, "user-recovered:main");
        assert_eq!(back[0].subject, "Your mail server is back");
        let drained = compose(
            &config,
            origin,
            OutageState::Recovering,
            &status(OutageState::Normal),
            &alice(),
        )
        .unwrap();
        assert!(drained.is_empty());
    }

    #[test]
    fn custom_templates_are_used() {
        let config = config(
            "[notify]\nadmins = [\"ops@example.net\"]\nadmin_subject = \"{origin} is {to} {{sic}}\"\n",
        );
        let notices = compose(
            &config,
            &config.origins[0],
            OutageState::Outage,
            &status(OutageState::Normal),
            &[],
        )
        .unwrap();
        assert_eq!(notices[0].subject, "main is normal {sic}");
    }
}
