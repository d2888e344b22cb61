//! Client credentials: a secret, or a certificate whose key signs client
//! assertions: in this process with `ring` ([`CertificateSigner`]), or
//! wherever the key lives ([`Signer`]).

use std::fmt;
use std::sync::Arc;

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
    /// The certificate is not a well-formed X.509 certificate.
    #[error("{origin}: the certificate could not be parsed ({reason})")]
    BadCertificate {
        /// Where the PEM came from.
        origin: String,
        /// What the parser said.
        reason: String,
    },
    /// The private key is not the certificate's: Azure AD would refuse
    /// every assertion it signs.
    #[error(
        "{origin}: the private key does not belong to the certificate (its public key is another one)"
    )]
    KeyMismatch {
        /// Where the PEM came from.
        origin: String,
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
    /// two concatenated); `origin` names it in errors. The key must be the
    /// certificate's: it signs a probe that the certificate's public key
    /// must verify, so a mismatched pair is refused here rather than by
    /// Azure AD at the first token request.
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
        matches_certificate(&key, &cert, origin)?;
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

/// Checks that `key` is the private half of `cert`'s public key: a probe
/// signed with the key must verify with the certificate.
fn matches_certificate(
    key: &RsaKeyPair,
    cert: &CertificateDer<'_>,
    origin: &str,
) -> Result<(), CredentialError> {
    let parsed =
        webpki::EndEntityCert::try_from(cert).map_err(|e| CredentialError::BadCertificate {
            origin: origin.to_owned(),
            reason: e.to_string(),
        })?;
    const PROBE: &[u8] = b"ta-bootstrap: does this key belong to this certificate?";
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        PROBE,
        &mut signature,
    )
    .map_err(|e| CredentialError::BadKey {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })?;
    parsed
        .verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, PROBE, &signature)
        .map_err(|_| CredentialError::KeyMismatch {
            origin: origin.to_owned(),
        })
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
            .map_err(|e| SignerError::new(e.to_string()))?;
        Ok(signature)
    }
}

/// Signs the client assertions of a certificate credential, wherever its
/// key is: in this process ([`CertificateSigner`]), or in a hardware module
/// or a cloud key service that the process reaches over the network and
/// never reads the key of. Asynchronous, so a remote signature blocks no
/// thread: the token fetch waits for it (the sans-IO core asks for it with
/// [`ta_protocol::Output::NeedAssertion`]), for 10 s at most; a signature
/// that takes longer fails the fetch with a
/// [`SignerError`](ta_protocol::aad::SignerError).
///
/// ```
/// use ta_bootstrap::{Credential, Signer};
/// use ta_protocol::aad::SignerError;
///
/// /// Asks a key service for each signature.
/// #[derive(Debug)]
/// struct KeyService { thumbprint: [u8; 20] }
///
/// #[async_trait::async_trait]
/// impl Signer for KeyService {
///     fn certificate_sha1(&self) -> [u8; 20] {
///         self.thumbprint
///     }
///     async fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
///         // Send `message` to the service, await its signature.
///         # let _ = message;
///         Err(SignerError::new("the key service is unreachable"))
///     }
/// }
///
/// let credential = Credential::signer(KeyService { thumbprint: [0; 20] });
/// # let _ = credential;
/// ```
#[async_trait::async_trait]
pub trait Signer: Send + Sync + fmt::Debug {
    /// The SHA-1 digest of the certificate's DER encoding (its thumbprint,
    /// the assertion's `x5t`).
    fn certificate_sha1(&self) -> [u8; 20];
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message` (RS256).
    async fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

#[async_trait::async_trait]
impl Signer for CertificateSigner {
    fn certificate_sha1(&self) -> [u8; 20] {
        self.sha1
    }

    async fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        AssertionSigner::sign_rs256(self, message)
    }
}

/// How the application authenticates to Azure AD.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credential {
    /// A client secret.
    Secret(ClientSecret),
    /// A certificate whose key signs client assertions: a
    /// [`CertificateSigner`] in this process, or any [`Signer`].
    Certificate(Arc<dyn Signer>),
}

impl Credential {
    /// A certificate credential signed by `signer`.
    pub fn signer(signer: impl Signer + 'static) -> Self {
        Self::Certificate(Arc::new(signer))
    }
}
