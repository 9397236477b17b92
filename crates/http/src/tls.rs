//! TLS termination for the listener: rustls (ring), ALPN `h2` then `http/1.1`, and certificate
//! files that are loaded again when they change on disk.
//!
//! [`TlsFiles::load`] reads the PEM certificate chain and key once at start (a bad file stops
//! the start with one line naming it). At every new connection [`ReloadingTls::config`] looks at
//! the files' modification times and sizes (two `stat` calls); when they changed it loads them
//! again and swaps the `ServerConfig` for the connections that follow. A pair that does not load
//! (half-written, mismatched) is logged once per change and the previous certificate stays.
//!
//! Never: fall back to plain HTTP on the TLS port; serve without a certificate.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Why the certificate files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_cert_file {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("tls_key_file {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("tls_cert_file and tls_key_file do not go together: {0}")]
    Pair(String),
}

/// What identifies one version of a file on disk.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// A TLS server configuration that follows its files.
pub struct ReloadingTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
    /// The stamps of the files last tried, loaded or not.
    seen: Mutex<(Stamp, Stamp)>,
}

impl ReloadingTls {
    /// Loads `cert` and `key` (PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let seen = (stamp(cert), stamp(key));
        let config = server_config(cert, key)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(config)),
            seen: Mutex::new(seen),
        })
    }

    /// The configuration for a new connection, loaded again first if the files changed.
    pub fn config(&self) -> Arc<ServerConfig> {
        let now = (stamp(&self.cert), stamp(&self.key));
        let changed = match self.seen.lock() {
            Ok(mut seen) if *seen != now => {
                *seen = now;
                true
            }
            _ => false,
        };
        if changed {
            match server_config(&self.cert, &self.key) {
                Ok(config) => {
                    if let Ok(mut current) = self.current.write() {
                        *current = Arc::new(config);
                    }
                    tracing::info!(tls.cert_file = %self.cert.display(), "TLS certificate loaded again");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate files changed but do not load; keeping the previous ones")
                }
            }
        }
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let cert_err = |message: String| TlsError::Cert { path: cert.to_owned(), message };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("holds no PEM certificate".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.to_owned(), message: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
