//! AAD client assertions (certificate credentials) against the emulator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use support::*;
use ta_emulator::*;
use ta_protocol::aad::{
    AssertionClaims, AssertionSigner, ClientCredential, ClientId, SignerError, TokenEndpoint,
    client_assertion, parse_token_response, token_request,
};
use ta_protocol::{Audience, ClientRequestId};

/// Signs with the development key, as an SA would with its own key.
struct DevSigner {
    key: ring::signature::RsaKeyPair,
    sha1: [u8; 20],
}

impl DevSigner {
    fn new() -> Self {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(
            DEV_CLIENT_CERTIFICATE_KEY.as_bytes(),
        )
        .unwrap();
        let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
        let cert = CertificateDer::from_pem_slice(dev_client_certificate_pem().unwrap().as_bytes())
            .unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        Self {
            key,
            sha1: digest.as_ref().try_into().unwrap(),
        }
    }
}

impl AssertionSigner for DevSigner {
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

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn ask(
    emu: &Emulator,
    client: &HttpClient,
    endpoint: &TokenEndpoint,
    client_id: &str,
    assertion: ta_protocol::ClientAssertion,
) -> Result<ta_protocol::aad::TokenResponse, ta_protocol::aad::AadError> {
    let audience = Audience::for_discover_url(&emu.discover_url().parse().unwrap());
    let request = token_request(
        endpoint,
        &ClientId::new(client_id).unwrap(),
        &audience,
        &ClientCredential::Assertion(assertion),
        &ClientRequestId::new("t").unwrap(),
    );
    let response = TestTransport(client.clone());
    let response = ta_protocol::Transport::send(&response, request)
        .await
        .unwrap();
    parse_token_response(&response)
}

fn assertion_for(
    signer: &dyn AssertionSigner,
    endpoint: &TokenEndpoint,
    client_id: &str,
    jti: &str,
    issued_at: u64,
) -> ta_protocol::ClientAssertion {
    let client_id = ClientId::new(client_id).unwrap();
    client_assertion(
        signer,
        &AssertionClaims::new(
            &client_id,
            endpoint,
            jti,
            issued_at,
            Duration::from_secs(300),
        ),
    )
    .unwrap()
}

#[tokio::test]
async fn a_signed_assertion_gets_a_token_on_v2_and_v1() {
    let (emu, client) = start(
        EmulatorConfig::default()
            .with_dev_client_certificate()
            .unwrap(),
    )
    .await;
    let signer = DevSigner::new();
    for url in [emu.token_url(), emu.token_url_v1()] {
        let endpoint = TokenEndpoint::parse(&url, false).unwrap();
        let assertion = assertion_for(
            &signer,
            &endpoint,
            DEFAULT_CLIENT_ID,
            &format!("jti-{url}"),
            now(),
        );
        let token = ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, assertion)
            .await
            .unwrap();
        assert!(token.access_token.expose().starts_with("eyJ"));
    }
    assert_eq!(emu.stats().aad_tokens_issued, 2);
}

#[tokio::test]
async fn bad_assertions_get_their_aadsts_codes() {
    let (emu, client) = start(
        EmulatorConfig::default()
            .with_dev_client_certificate()
            .unwrap(),
    )
    .await;
    let signer = DevSigner::new();
    let endpoint = TokenEndpoint::parse(&emu.token_url(), false).unwrap();
    let code = |r: Result<_, ta_protocol::aad::AadError>| r.unwrap_err().aadsts().unwrap();

    // A broken signature.
    let good = assertion_for(&signer, &endpoint, DEFAULT_CLIENT_ID, "a", now());
    // Change one character well inside the signature (the last one only
    // carries padding bits, and changing it may make bad base64 instead).
    let mut chars: Vec<char> = good.expose().chars().collect();
    let at = chars.len() - 10;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let text: String = chars.into_iter().collect();
    assert_eq!(
        code(
            ask(
                &emu,
                &client,
                &endpoint,
                DEFAULT_CLIENT_ID,
                ta_protocol::ClientAssertion::new(text)
            )
            .await
        ),
        700_027
    );

    // Another certificate's thumbprint.
    struct OtherThumbprint(DevSigner);
    impl AssertionSigner for OtherThumbprint {
        fn certificate_sha1(&self) -> [u8; 20] {
            [7; 20]
        }
        fn sign_rs256(&self, m: &[u8]) -> Result<Vec<u8>, SignerError> {
            self.0.sign_rs256(m)
        }
    }
    let wrong = assertion_for(
        &OtherThumbprint(DevSigner::new()),
        &endpoint,
        DEFAULT_CLIENT_ID,
        "b",
        now(),
    );
    assert_eq!(
        code(ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, wrong).await),
        700_027
    );

    // Made for another token endpoint.
    let elsewhere = TokenEndpoint::parse(
        "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
        false,
    )
    .unwrap();
    let aud = assertion_for(&signer, &elsewhere, DEFAULT_CLIENT_ID, "c", now());
    assert_eq!(
        code(ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, aud).await),
        50_027
    );

    // Expired.
    let old = assertion_for(&signer, &endpoint, DEFAULT_CLIENT_ID, "d", now() - 3600);
    assert_eq!(
        code(ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, old).await),
        700_024
    );

    // For another client id than the one in the form.
    let other = assertion_for(&signer, &endpoint, "someone-else", "e", now());
    assert_eq!(
        code(ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, other).await),
        700_021
    );

    // Replayed.
    let once = assertion_for(&signer, &endpoint, DEFAULT_CLIENT_ID, "f", now());
    ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, once.clone())
        .await
        .unwrap();
    assert_eq!(
        code(ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, once).await),
        700_025
    );
    assert_eq!(emu.stats().aad_tokens_issued, 1);
}

#[tokio::test]
async fn an_application_without_a_certificate_cannot_use_assertions() {
    let (emu, client) = start(EmulatorConfig::default()).await;
    let endpoint = TokenEndpoint::parse(&emu.token_url(), false).unwrap();
    let assertion = assertion_for(&DevSigner::new(), &endpoint, DEFAULT_CLIENT_ID, "g", now());
    let err = ask(&emu, &client, &endpoint, DEFAULT_CLIENT_ID, assertion)
        .await
        .unwrap_err();
    assert_eq!(err.aadsts(), Some(700_027));
    assert!(
        err.to_string().contains("no registered certificate"),
        "{err}"
    );
}
