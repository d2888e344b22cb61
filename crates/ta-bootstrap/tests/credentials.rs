//! Loading a certificate credential: every way a PEM can be wrong gets its
//! own typed error, and a key that is not the certificate's is refused at
//! load time, not by Azure AD later.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use ta_bootstrap::{CertificateSigner, CredentialError};

/// Another RSA-2048 key (the emulator's token-signing development key): a
/// valid key, but not the development certificate's.
const OTHER_RSA_KEY: &str = include_str!("../../ta-emulator/keys/dev-token-signing-key.pem");

fn dev_cert() -> &'static str {
    ta_emulator::dev_client_certificate_pem().unwrap()
}

#[test]
fn a_certificate_with_its_own_key_loads() {
    let pem = format!("{}{}", dev_cert(), ta_emulator::DEV_CLIENT_CERTIFICATE_KEY);
    let signer = CertificateSigner::from_pem(pem.as_bytes(), "app.pem").unwrap();
    let debug = format!("{signer:?}");
    assert!(debug.contains("thumbprint"), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[test]
fn another_rsa_key_is_refused_as_a_mismatch() {
    let pem = format!("{}{}", dev_cert(), OTHER_RSA_KEY);
    let err = CertificateSigner::from_pem(pem.as_bytes(), "app.pem").unwrap_err();
    assert_eq!(
        err,
        CredentialError::KeyMismatch {
            origin: "app.pem".to_owned()
        }
    );
    let message = err.to_string();
    assert!(message.starts_with("app.pem: "), "{message}");
    assert!(message.contains("does not belong"), "{message}");
    assert!(!message.contains("PRIVATE"), "{message}");
}

#[test]
fn an_rsa_key_with_an_ecdsa_certificate_is_a_mismatch() {
    let ecdsa = rcgen::generate_simple_self_signed(vec!["app.example".to_owned()]).unwrap();
    let pem = format!(
        "{}{}",
        ecdsa.cert.pem(),
        ta_emulator::DEV_CLIENT_CERTIFICATE_KEY
    );
    let err = CertificateSigner::from_pem(pem.as_bytes(), "app.pem").unwrap_err();
    assert!(
        matches!(err, CredentialError::KeyMismatch { .. }),
        "{err:?}"
    );
}

#[test]
fn a_certificate_block_that_is_not_x509_is_named() {
    // Well-formed PEM, base64 of bytes that are no certificate.
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n{}",
        ta_emulator::DEV_CLIENT_CERTIFICATE_KEY
    );
    let err = CertificateSigner::from_pem(pem.as_bytes(), "app.pem").unwrap_err();
    assert!(
        matches!(err, CredentialError::BadCertificate { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("app.pem: the certificate"),
        "{err}"
    );
}

#[test]
fn a_missing_half_is_named() {
    let err = CertificateSigner::from_pem(dev_cert().as_bytes(), "app.pem").unwrap_err();
    assert!(matches!(err, CredentialError::NoKey { .. }), "{err:?}");
    let err = CertificateSigner::from_pem(
        ta_emulator::DEV_CLIENT_CERTIFICATE_KEY.as_bytes(),
        "app.pem",
    )
    .unwrap_err();
    assert!(
        matches!(err, CredentialError::NoCertificate { .. }),
        "{err:?}"
    );
}

#[test]
fn an_unreadable_file_is_named() {
    let path = std::path::Path::new("/nonexistent/ta-bootstrap/app.pem");
    let err = CertificateSigner::from_file(path).unwrap_err();
    assert!(matches!(err, CredentialError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/ta-bootstrap/app.pem: "),
        "{err}"
    );
}
