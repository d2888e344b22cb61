//! The listener's TLS: a certificate chain and key from PEM files, read
//! again on reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS certificate or key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The certificate file holds no PEM `CERTIFICATE` block.
    #[error("{path}: no certificate found (expected PEM `CERTIFICATE` blocks, the leaf first)")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// The key file holds no PEM private key.
    #[error(
        "{path}: no private key found (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
    )]
    NoKey {
        /// The file.
        path: String,
    },
    /// rustls refused the pair (the key does not match the certificate, or
    /// its algorithm is not supported).
    #[error("the certificate and key cannot be used together: {reason}")]
    Rejected {
        /// What rustls said.
        reason: String,
    },
}

/// The listener's TLS settings, read from a certificate chain and a key
/// (PEM files), and read again on [`reload`](Self::reload): connections
/// accepted after a reload use the new pair; open connections keep theirs.
#[derive(Debug)]
pub struct ServerTls {
    cert_path: PathBuf,
    key_path: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Reads the certificate chain (leaf first) and the private key.
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let config = Self::load(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            config: RwLock::new(config),
        })
    }

    /// Builds a rustls configuration from PEM text (`h2` and `http/1.1`
    /// offered by ALPN).
    pub fn config_from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_origin: &str,
        key_origin: &str,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert_origin.to_owned(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey {
            path: key_origin.to_owned(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rejected {
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Rejected {
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| TlsError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let cert = read(cert_path)?;
        let key = read(key_path)?;
        Self::config_from_pem(
            &cert,
            &key,
            &cert_path.display().to_string(),
            &key_path.display().to_string(),
        )
    }

    /// Reads the two files again; on an error the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Self::load(&self.cert_path, &self.key_path)?;
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    /// The certificate and key files.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.cert_path, &self.key_path)
    }

    pub(super) fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
