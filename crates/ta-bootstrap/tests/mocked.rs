//! The orchestrator alone: transport and token provider mocked (mockall).
//! Needs the `mock` feature (`cargo xtask ci` enables every feature).
#![cfg(feature = "mock")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::Arc;

use bytes::Bytes;
use mockall::predicate::always;
use ta_bootstrap::*;
use ta_protocol::aad::TokenError;
use ta_protocol::{
    AccessToken, AllowedOrigins, Config, MockTransport, OriginPolicy, Transport, TransportError,
};

const DISCOVER: &str = "https://api.example/platformservice/discover";

fn respond(status: u16, body: &str) -> Result<http::Response<Bytes>, TransportError> {
    Ok(http::Response::builder()
        .status(status)
        .body(Bytes::from(body.to_owned()))
        .unwrap())
}

/// A server with the whole flow; the mint answers 401 to `tok-old`.
fn api(request: &http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
    let auth = request
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    match (request.method().as_str(), request.uri().path()) {
        ("GET", "/platformservice/discover") => respond(
            200,
            r#"{"_links":{"service:applications":{"href":"https://api.example/platformservice/v1/applications"}}}"#,
        ),
        ("GET", "/platformservice/v1/applications") => respond(
            200,
            r#"{"_links":{"service:application":{"href":"/platformservice/v1/applications/1?endpointId=sip%3ahelp%40contoso.com"}}}"#,
        ),
        ("GET", "/platformservice/v1/applications/1") => respond(
            200,
            r#"{"_links":{"service:anonApplicationTokens":{"href":"/platformservice/v1/applications/1/anonApplicationTokens?endpointId=sip:help@contoso.com"}}}"#,
        ),
        ("POST", _) if auth.as_deref() == Some("Bearer tok-old") => {
            respond(401, r#"{"code":"Unauthorized"}"#)
        }
        ("POST", _) => respond(
            200,
            r#"{"token":"psat=x","expiryTime":"2030-01-01T00:00:00.000Z","_links":{"service:discover":{"href":"https://api.example/platformservice/discover?anonymousContext=psat%253dx"}}}"#,
        ),
        _ => respond(404, "{}"),
    }
}

fn bootstrapper(transport: MockTransport, tokens: MockTokenProvider) -> Bootstrapper {
    let config = Config::builder(DISCOVER, "sip:help@contoso.com")
        .build()
        .unwrap()
        .into_shared();
    Bootstrapper::builder(
        config,
        Arc::new(transport) as Arc<dyn Transport>,
        Arc::new(tokens),
    )
    .build()
}

fn origins() -> AllowedOrigins {
    AllowedOrigins::parse_list("https://contoso.com", OriginPolicy::default()).unwrap()
}

#[tokio::test]
async fn a_refused_token_is_invalidated_and_replaced() {
    let mut transport = MockTransport::new();
    transport.expect_send().times(5).returning(|r| api(&r));
    let mut tokens = MockTokenProvider::new();
    let mut handed = vec!["tok-new", "tok-old", "tok-old"];
    tokens
        .expect_token()
        .times(3)
        .returning(move |_| Ok(AccessToken::new(handed.pop().unwrap())));
    tokens
        .expect_invalidate()
        .withf(|_, token| token.expose() == "tok-old")
        .times(1)
        .return_const(());
    let b = bootstrapper(transport, tokens);
    let minted = b.mint(origins()).await.unwrap();
    assert_eq!(minted.token.expose(), "psat=x");
}

#[tokio::test]
async fn no_token_means_no_api_request() {
    let mut transport = MockTransport::new();
    // Discovery only.
    transport.expect_send().times(1).returning(|r| api(&r));
    let mut tokens = MockTokenProvider::new();
    tokens
        .expect_token()
        .with(always())
        .times(1)
        .returning(|_| Err(TokenError::Other("AAD is down".into())));
    let b = bootstrapper(transport, tokens);
    let err = b.mint(origins()).await.unwrap_err();
    assert!(matches!(err, BootstrapError::Token(_)), "{err:?}");
}

#[tokio::test]
async fn capabilities_are_fetched_once_for_many_mints() {
    let mut transport = MockTransport::new();
    // discovery + applications + application + 10 mints
    transport.expect_send().times(13).returning(|r| api(&r));
    let mut tokens = MockTokenProvider::new();
    tokens
        .expect_token()
        .returning(|_| Ok(AccessToken::new("tok-new")));
    let b = bootstrapper(transport, tokens);
    for _ in 0..10 {
        b.mint(origins()).await.unwrap();
    }
}
