//! The AAD client-credentials grant as a state machine (`aad::TokenFlow`),
//! driven by the same harness as the API flows, on virtual time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use support::*;
use ta_protocol::aad::{AadError, ClientId, Proof, TokenEndpoint, TokenError, TokenFlow};
use ta_protocol::*;

const TOKEN: &str = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"aad-token-1"}"#;
const INVALID_CLIENT: &str = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;

fn audience() -> Audience {
    Audience::for_discover_url(&DISCOVER.parse().unwrap())
}

fn flow_with(proof: Proof, retry: RetryPolicy) -> TokenFlow {
    TokenFlow::new(
        TokenEndpoint::parse("https://login.example/contoso/oauth2/v2.0/token", false).unwrap(),
        ClientId::new("app-1").unwrap(),
        audience(),
        proof,
        retry,
        entropy(),
    )
}

fn secret_flow() -> TokenFlow {
    flow_with(
        Proof::Secret(ClientSecret::new("s3cret")),
        RetryPolicy::default(),
    )
}

fn certificate_flow() -> TokenFlow {
    flow_with(
        Proof::Certificate {
            certificate_sha1: [7; 20],
        },
        RetryPolicy::default(),
    )
}

fn form(seen: &Seen) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&seen.body)
        .into_owned()
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_secret_is_one_request_and_a_token() {
    let mut h = Harness::new(|_, _| json(200, TOKEN));
    let token = h.run(secret_flow()).unwrap();
    assert_eq!(token.access_token.expose(), "aad-token-1");
    assert_eq!(token.expires_in, Duration::from_secs(3599));
    assert_eq!(h.seen.len(), 1);
    let seen = &h.seen[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.url, "https://login.example/contoso/oauth2/v2.0/token");
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form = form(seen);
    assert_eq!(field(&form, "client_secret"), Some("s3cret"));
    assert_eq!(
        field(&form, "scope"),
        Some("https://api.example.com/.default")
    );
    assert!(h.assertion_jtis.is_empty(), "a secret needs no assertion");
}

#[test]
fn busy_answers_are_retried_after_retry_after() {
    let mut h = Harness::new(|_, n| {
        if n < 2 {
            status_with(503, &[("retry-after", "2")])
        } else {
            json(200, TOKEN)
        }
    });
    let token = h.run(secret_flow()).unwrap();
    assert_eq!(token.access_token.expose(), "aad-token-1");
    assert_eq!(h.seen.len(), 3);
    assert_eq!(h.timeouts, [Duration::from_secs(2), Duration::from_secs(2)]);
    assert_eq!(h.seen[2].at, Duration::from_secs(4));
    // A fresh client-request-id per attempt.
    assert_ne!(h.seen[0].request_id, h.seen[1].request_id);
}

#[test]
fn the_retry_policy_is_the_callers() {
    let busy = || json(429, r#"{"error":"temporarily_unavailable"}"#);
    // The default: 4 attempts.
    let mut h = Harness::new(|_, _| busy());
    let error = h.run(secret_flow()).unwrap_err();
    assert_eq!(h.seen.len(), 4);
    let TokenError::Aad(aad) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(aad.status().map(|s| s.as_u16()), Some(429));
    // Never: one attempt.
    let mut h = Harness::new(|_, _| busy());
    let never = flow_with(
        Proof::Secret(ClientSecret::new("s3cret")),
        RetryPolicy::never(),
    );
    assert!(h.run(never).is_err());
    assert_eq!(h.seen.len(), 1);
    // Two attempts, at most 1 s of waiting: a Retry-After of 5 s is over
    // the budget, so there is no retry.
    let tight = RetryPolicy::new(
        2,
        Duration::from_millis(100),
        Duration::from_secs(1),
        Duration::from_secs(1),
    )
    .unwrap();
    let mut h = Harness::new(|_, _| status_with(503, &[("retry-after", "5")]));
    let error = h
        .run(flow_with(Proof::Secret(ClientSecret::new("s")), tight))
        .unwrap_err();
    assert_eq!(h.seen.len(), 1);
    let TokenError::Aad(aad) = &error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(aad.as_ref(), AadError::Malformed { status, .. } if status.as_u16() == 503),
        "a 503 that is not AAD's is named as such: {error:?}"
    );
}

#[test]
fn a_refusal_is_not_retried() {
    let mut h = Harness::new(|_, _| json(401, INVALID_CLIENT));
    let error = h.run(secret_flow()).unwrap_err();
    assert_eq!(h.seen.len(), 1);
    let TokenError::Aad(aad) = &error else {
        panic!("{error:?}")
    };
    assert!(matches!(aad.as_ref(), AadError::Rejected { .. }));
    assert_eq!(aad.aadsts(), Some(7_000_215));
    assert!(!error.to_string().contains("s3cret"));
}

#[test]
fn transport_failures_are_retried_only_when_that_may_help() {
    let mut h = Harness::new(|_, n| {
        if n == 0 {
            Err(TransportError::new(TransportErrorKind::Connect, false))
        } else {
            json(200, TOKEN)
        }
    });
    assert!(h.run(secret_flow()).is_ok());
    assert_eq!(h.seen.len(), 2);

    let mut h = Harness::new(|_, _| Err(TransportError::new(TransportErrorKind::Tls, false)));
    let error = h.run(secret_flow()).unwrap_err();
    assert_eq!(h.seen.len(), 1, "a TLS failure is not retried");
    assert!(matches!(error, TokenError::Transport(e) if e.kind() == TransportErrorKind::Tls));
}

#[test]
fn a_certificate_asks_for_a_fresh_assertion_per_attempt() {
    let mut h = Harness::new(|_, n| {
        if n == 0 {
            status_with(503, &[("retry-after", "1")])
        } else {
            json(200, TOKEN)
        }
    });
    h.run(certificate_flow()).unwrap();
    assert_eq!(h.assertion_jtis.len(), 2);
    assert_ne!(h.assertion_jtis[0], h.assertion_jtis[1], "no jti twice");
    for (seen, jti) in h.seen.iter().zip(&h.assertion_jtis) {
        let form = form(seen);
        assert_eq!(field(&form, "client_secret"), None);
        assert_eq!(
            field(&form, "client_assertion_type"),
            Some(ta_protocol::aad::JWT_BEARER_ASSERTION_TYPE)
        );
        let assertion = field(&form, "client_assertion").unwrap();
        let parts: Vec<&str> = assertion.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["jti"], jti.as_str());
        assert_eq!(claims["iss"], "app-1");
        assert_eq!(
            claims["aud"],
            "https://login.example/contoso/oauth2/v2.0/token"
        );
        assert_eq!(claims["exp"], 1_700_000_000 + 300);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["x5t"], URL_SAFE_NO_PAD.encode([7u8; 20]));
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            format!("sig-{jti}").as_bytes()
        );
    }
}

#[test]
fn a_signing_failure_ends_the_flow_before_any_request() {
    let mut h = Harness::new(|_, _| json(200, TOKEN));
    h.signer_fails = true;
    let error = h.run(certificate_flow()).unwrap_err();
    assert!(matches!(error, TokenError::Signer(_)), "{error:?}");
    assert!(h.seen.is_empty());
}

#[test]
fn misuse_is_a_typed_error() {
    let now = Instant::now();
    let mut flow = certificate_flow();
    // Nothing asked yet.
    assert_eq!(
        flow.handle_assertion(Ok(ClientAssertion::new("a.b.c")), now),
        Err(UsageError::UnexpectedAssertion)
    );
    let Some(Output::NeedAssertion(need)) = flow.poll_output(now) else {
        panic!()
    };
    assert!(flow.poll_output(now).is_none(), "waiting for the assertion");
    assert_eq!(
        Driveable::handle_token(&mut flow, Ok(AccessToken::new("x")), now),
        Err(UsageError::UnexpectedToken)
    );
    let input = need.signing_input(1);
    flow.handle_assertion(need.finish(&input, b"sig"), now)
        .unwrap();
    let Some(Output::Transmit(transmit)) = flow.poll_output(now) else {
        panic!()
    };
    assert_eq!(transmit.step(), Step::AadToken);
    let (id, _) = transmit.into_parts();
    let ok = json(200, TOKEN).unwrap();
    flow.handle_response(id, ok.clone(), now).unwrap();
    assert!(flow.is_finished());
    assert!(matches!(flow.poll_output(now), Some(Output::Done(Ok(_)))));
    assert!(flow.poll_output(now).is_none(), "Done is returned once");
    assert_eq!(flow.handle_response(id, ok, now), Err(UsageError::Finished));
}

#[test]
fn debug_hides_the_secret() {
    let flow = secret_flow();
    let text = format!("{flow:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("login.example"), "{text}");
}

#[test]
fn an_api_flow_refuses_an_assertion() {
    let now = Instant::now();
    let mut flow = Flow::discovery(config(), entropy());
    let _ = flow.poll_output(now);
    assert_eq!(
        Driveable::handle_assertion(&mut flow, Ok(ClientAssertion::new("a.b.c")), now),
        Err(UsageError::UnexpectedAssertion)
    );
}
