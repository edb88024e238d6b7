//! Opening a connection to the directory: TLS always (StartTLS on `ldap://`, implicit on
//! `ldaps://`), the server's certificate verified, every step limited by the timeout.

use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};

use crate::settings::Settings;
use crate::tls;

/// Why the directory could not be read. Every variant leaves the store as it was (a
/// sync changes nothing) and lets a login fall back to its cached password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Connecting, TLS or a timeout.
    #[error("cannot reach the directory at {url}: {why}")]
    Unreachable { url: String, why: String },
    /// The service account could not bind.
    #[error("the directory refused the service account {bind_dn}: {why}")]
    ServiceBind { bind_dn: String, why: String },
    /// A search failed (e.g. no such base, or the server gave up).
    #[error("searching the directory failed: {0}")]
    Search(String),
    /// A local file the settings name (password file, CA file) cannot be used.
    #[error("{0}")]
    Settings(String),
}

/// A connection bound as the service account.
pub(crate) async fn service_connection(settings: &Settings) -> Result<Ldap, DirectoryError> {
    let password = read_bind_password(settings)?;
    let mut ldap = connect(settings).await?;
    let bound = ldap
        .with_timeout(settings.timeout)
        .simple_bind(&settings.bind_dn, &password)
        .await
        .and_then(|result| result.success());
    match bound {
        Ok(_) => Ok(ldap),
        Err(e) if is_connection_failure(&e) => Err(unreachable(settings, e)),
        Err(e) => Err(DirectoryError::ServiceBind {
            bind_dn: settings.bind_dn.clone(),
            why: e.to_string(),
        }),
    }
}

/// A connection over TLS, not bound yet.
pub(crate) async fn connect(settings: &Settings) -> Result<Ldap, DirectoryError> {
    let tls = tls::client_config(settings.ca_file.as_deref()).map_err(DirectoryError::Settings)?;
    let options = LdapConnSettings::new()
        .set_conn_timeout(settings.timeout)
        .set_config(tls)
        .set_starttls(!settings.implicit_tls());
    // The connect timeout covers TCP only; StartTLS and the handshake get one too.
    let opened = tokio::time::timeout(
        settings.timeout + Duration::from_millis(100),
        LdapConnAsync::with_settings(options, &settings.url),
    )
    .await;
    let (connection, ldap) = match opened {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(unreachable(settings, e)),
        Err(_) => {
            return Err(DirectoryError::Unreachable {
                url: settings.url.clone(),
                why: format!("no answer within {:?}", settings.timeout),
            });
        }
    };
    ldap3::drive!(connection);
    Ok(ldap)
}

fn read_bind_password(settings: &Settings) -> Result<String, DirectoryError> {
    let path = &settings.bind_password_file;
    let text = std::fs::read_to_string(path).map_err(|e| {
        DirectoryError::Settings(format!("bind_password_file {}: {e}", path.display()))
    })?;
    // One line; the newline an editor adds is not part of the password.
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// Whether an error means the server could not be talked to at all (as opposed to an
/// answer it gave).
pub(crate) fn is_connection_failure(error: &LdapError) -> bool {
    matches!(
        error,
        LdapError::Io { .. }
            | LdapError::Timeout { .. }
            | LdapError::EndOfStream
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::Rustls { .. }
            | LdapError::DNSName { .. }
    ) || result_code(error).is_some_and(is_unavailable_code)
}

/// The LDAP result code of an error that is an answer from the server.
pub(crate) fn result_code(error: &LdapError) -> Option<u32> {
    match error {
        LdapError::LdapResult { result } => Some(result.rc),
        _ => None,
    }
}

/// Result codes that say "cannot answer now" rather than "no": timeLimitExceeded (3),
/// busy (51), unavailable (52), other (80).
pub(crate) fn is_unavailable_code(rc: u32) -> bool {
    matches!(rc, 3 | 51 | 52 | 80)
}

pub(crate) fn unreachable(settings: &Settings, error: LdapError) -> DirectoryError {
    DirectoryError::Unreachable {
        url: settings.url.clone(),
        why: error.to_string(),
    }
}
