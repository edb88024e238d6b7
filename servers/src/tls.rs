//! TLS for the user-facing servers (POP3, IMAP, submission): one certificate and key from
//! `[tls]`, loaded as PEM into a rustls server config (ring provider), replaced whole on
//! SIGHUP.
//!
//! Missing or broken files do not stop `lifeboat serve`: capture (milter, fallback) must
//! keep running whatever happens to a certificate. Without a certificate the servers
//! behave as if TLS were not offered: implicit-TLS listeners close new connections, plain
//! listeners do not offer STLS/STARTTLS, and logins there are allowed only where
//! plaintext is (loopback listeners, or `[auth] allow_plaintext`). The error is logged
//! at every (re)load that fails, and a later SIGHUP with good files turns TLS on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use lifeboat_mailstore::reloadable::Reloadable;

/// Why the certificate or key could not be used; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("{} and {}: {reason}", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Reads the certificate chain and key and builds a server config.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File {
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem = std::fs::read(cert).map_err(|e| file_error(cert, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(
            cert,
            "no CERTIFICATE block found (expected a PEM certificate chain)".into(),
        ));
    }
    let key_pem = std::fs::read(key).map_err(|e| file_error(key, e.to_string()))?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| file_error(key, format!("no usable PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, private_key)
        })
        .map_err(|e| TlsError::Pair {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(config))
}

/// The servers' TLS acceptor, or none while the files are missing or broken.
pub struct Tls {
    acceptor: Reloadable<Option<TlsAcceptor>>,
}

impl Tls {
    /// Loads the files; on failure logs the error and serves without TLS (module docs).
    pub fn load(cert: &Path, key: &Path) -> Arc<Tls> {
        let tls = Arc::new(Tls {
            acceptor: Reloadable::new(None),
        });
        let _ = tls.reload(cert, key);
        tls
    }

    /// A server without TLS (tests, and servers that only listen on loopback).
    pub fn disabled() -> Arc<Tls> {
        Arc::new(Tls {
            acceptor: Reloadable::new(None),
        })
    }

    /// Re-reads the files (SIGHUP, possibly with new paths). On failure the running
    /// acceptor stays, so a half-copied renewal never turns TLS off.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        match load_server_config(cert, key) {
            Ok(config) => {
                self.acceptor.replace(Some(TlsAcceptor::from(config)));
                tracing::info!(cert = %cert.display(), "TLS certificate loaded");
                Ok(())
            }
            Err(e) => {
                if self.acceptor.get().is_some() {
                    tracing::error!(error = %e, "TLS certificate not reloaded; keeping the running one");
                } else {
                    tracing::error!(
                        error = %e,
                        "NO TLS: cannot load the certificate; implicit-TLS listeners refuse \
                         connections and plaintext logins are allowed only on loopback \
                         listeners (or with [auth] allow_plaintext) until a reload succeeds"
                    );
                }
                Err(e)
            }
        }
    }

    /// The acceptor for a new connection, if TLS is available now.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.get().as_ref().clone()
    }

    pub fn is_available(&self) -> bool {
        self.acceptor.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) -> (PathBuf, PathBuf) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn loads_a_pem_pair_and_names_the_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path());
        assert!(load_server_config(&cert, &key).is_ok());

        let missing = dir.path().join("missing.pem");
        let error = load_server_config(&missing, &key).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not pem\n").unwrap();
        let error = load_server_config(&cert, &garbage).unwrap_err().to_string();
        assert!(error.contains("garbage.pem"), "{error}");
        let error = load_server_config(&garbage, &key).unwrap_err().to_string();
        assert!(error.contains("garbage.pem"), "{error}");
    }

    #[test]
    fn a_failed_reload_keeps_the_running_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let tls = Tls::load(&missing, &missing);
        assert!(!tls.is_available());
        let (cert, key) = write_pair(dir.path());
        tls.reload(&cert, &key).unwrap();
        assert!(tls.is_available());
        assert!(tls.reload(&missing, &key).is_err());
        assert!(tls.is_available());
    }
}
