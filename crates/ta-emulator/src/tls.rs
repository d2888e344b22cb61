//! A fresh CA and a leaf certificate for the loopback names, made at start.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("generating the emulator's certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the material.
    #[error("configuring TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The emulator's TLS material.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

/// The names the leaf certificate covers.
pub const LEAF_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl TlsMaterial {
    /// A new CA (ECDSA P-256) and a leaf for `localhost`, `127.0.0.1` and
    /// `::1`, valid for a day.
    pub(crate) fn generate() -> Result<Self, TlsError> {
        let ca = Authority::generate("ta-emulator development CA")?;
        let server_config = ca.server_config(&LEAF_NAMES, &[b"h2", b"http/1.1"])?;
        Ok(Self {
            ca_pem: ca.pem().to_owned(),
            server_config,
        })
    }
}

/// A certificate authority made at start, valid for a day, and the server
/// configurations of the leaves it signs.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// A new CA (ECDSA P-256) named `name`.
    pub(crate) fn generate(name: &str) -> Result<Self, TlsError> {
        let now = time::OffsetDateTime::now_utc();
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = now - time::Duration::minutes(5);
        ca_params.not_after = now + time::Duration::days(1);
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        Ok(Self {
            issuer: Issuer::new(ca_params, ca_key),
            cert: ca_cert.der().clone(),
            pem: ca_cert.pem(),
        })
    }

    /// The CA certificate, PEM.
    pub(crate) fn pem(&self) -> &str {
        &self.pem
    }

    /// A rustls server configuration presenting a new leaf for `names`
    /// (host names or IP addresses), offering `alpn`.
    pub(crate) fn server_config(
        &self,
        names: &[&str],
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let now = time::OffsetDateTime::now_utc();
        let mut leaf_params = CertificateParams::default();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "ta-emulator");
        leaf_params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*name).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.not_before = now - time::Duration::minutes(5);
        leaf_params.not_after = now + time::Duration::days(1);
        let leaf_key = KeyPair::generate()?;
        let leaf = leaf_params.signed_by(&leaf_key, &self.issuer)?;

        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), self.cert.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server_config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        server_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(server_config))
    }
}
