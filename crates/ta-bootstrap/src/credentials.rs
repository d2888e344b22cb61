//! Client credentials: a secret, or a certificate whose key signs client
//! assertions (with `ring`).

use std::fmt;

use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use ta_protocol::ClientSecret;
use ta_protocol::aad::{AssertionSigner, SignerError};

/// Why a certificate credential could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// No `CERTIFICATE` block.
    #[error("{origin}: no certificate found (expected a PEM `CERTIFICATE` block)")]
    NoCertificate {
        /// Where the PEM came from.
        origin: String,
    },
    /// No `PRIVATE KEY` (PKCS#8) block.
    #[error(
        "{origin}: no PKCS#8 private key found (expected a PEM `PRIVATE KEY` block; convert an RSA key with `openssl pkcs8 -topk8 -nocrypt`)"
    )]
    NoKey {
        /// Where the PEM came from.
        origin: String,
    },
    /// The key is not an RSA key ring accepts.
    #[error("{origin}: the private key is not a usable RSA key ({reason})")]
    BadKey {
        /// Where the PEM came from.
        origin: String,
        /// What ring said.
        reason: String,
    },
    /// The file could not be read.
    #[error("{origin}: {reason}")]
    Read {
        /// The path.
        origin: String,
        /// The I/O error.
        reason: String,
    },
}

/// An application certificate and its RSA key, signing client assertions
/// (RS256) with `ring`. `Debug` shows the thumbprint, never the key.
pub struct CertificateSigner {
    key: RsaKeyPair,
    sha1: [u8; 20],
}

impl CertificateSigner {
    /// Reads the certificate and its PKCS#8 key from one PEM document (or
    /// two concatenated); `origin` names it in errors.
    pub fn from_pem(pem: &[u8], origin: &str) -> Result<Self, CredentialError> {
        let cert = CertificateDer::pem_slice_iter(pem)
            .find_map(Result::ok)
            .ok_or_else(|| CredentialError::NoCertificate {
                origin: origin.to_owned(),
            })?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|_| CredentialError::NoKey {
            origin: origin.to_owned(),
        })?;
        let key = RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).map_err(|e| {
            CredentialError::BadKey {
                origin: origin.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        let mut sha1 = [0u8; 20];
        sha1.copy_from_slice(digest.as_ref());
        Ok(Self { key, sha1 })
    }

    /// Reads a PEM file with the certificate and its key.
    pub fn from_file(path: &std::path::Path) -> Result<Self, CredentialError> {
        let origin = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| CredentialError::Read {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        Self::from_pem(&pem, &origin)
    }
}

impl fmt::Debug for CertificateSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.sha1.iter().map(|b| format!("{b:02X}")).collect();
        f.debug_struct("CertificateSigner")
            .field("thumbprint", &hex)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AssertionSigner for CertificateSigner {
    fn certificate_sha1(&self) -> [u8; 20] {
        self.sha1
    }

    fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|e| SignerError(e.to_string()))?;
        Ok(signature)
    }
}

/// How the application authenticates to Azure AD.
#[derive(Debug)]
#[non_exhaustive]
pub enum Credential {
    /// A client secret.
    Secret(ClientSecret),
    /// A certificate and its key (client assertions).
    Certificate(Box<CertificateSigner>),
}
