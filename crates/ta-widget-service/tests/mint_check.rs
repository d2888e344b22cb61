//! The check before any mint, over real HTTP in front of the emulator: a
//! refused request costs nothing upstream and gets the check's status and
//! code; signed tickets open their own origin only, until they expire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "service/harness.rs"]
mod harness;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use harness::*;
use ta_emulator::EmulatorConfig;
use ta_widget_service::mint_check::{MintRefusal, MintRequest, SignedTicketCheck, sign_ticket};

const KEY: &[u8] = b"a key the site's backend shares!";
const ORIGIN: &str = "https://contoso.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post(s: &Service, body: &str) -> http::Response<bytes::Bytes> {
    call(
        s,
        "POST",
        "/v1/widget-token",
        &[("origin", ORIGIN), ("content-type", "application/json")],
        body,
    )
    .await
}

#[tokio::test]
async fn signed_tickets_open_their_origin_until_they_expire() {
    let check = SignedTicketCheck::new(KEY).unwrap();
    let s = service_built(
        EmulatorConfig::default(),
        |_| {},
        |service| service.with_mint_check(check),
    )
    .await;
    let minted = || s.setup.emulator.stats().psat_tokens_minted;
    let ticket =
        |origin: &str, expires: u64| sign_ticket(KEY, origin, expires, "page-1234").unwrap();
    for (body, code) in [
        ("{}".to_owned(), "ticket_required"),
        (String::new(), "ticket_required"),
        (r#"{"ticket": 7}"#.to_owned(), "ticket_required"),
        (
            r#"{"ticket": "t1.1.nonce-123.AAAA"}"#.to_owned(),
            "bad_ticket",
        ),
        (
            format!(
                r#"{{"ticket": "{}"}}"#,
                ticket("https://litware.com:8443", now() + 300)
            ),
            "bad_ticket",
        ),
        (
            format!(r#"{{"ticket": "{}"}}"#, ticket(ORIGIN, now() - 120)),
            "ticket_expired",
        ),
    ] {
        let response = post(&s, &body).await;
        assert_eq!(response.status(), 403, "{body}");
        let answer = json(&response);
        assert_eq!(answer["error"], code, "{body}: {answer}");
        assert_eq!(
            answer["requestId"].as_str(),
            header(&response, "x-request-id")
        );
        // The page can read why: the CORS answer is the route's.
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            Some(ORIGIN)
        );
    }
    assert_eq!(minted(), 0, "a refused request went upstream");
    let response = post(
        &s,
        &format!(r#"{{"ticket": "{}"}}"#, ticket(ORIGIN, now() + 300)),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    assert_eq!(minted(), 1);
    let metrics = s.service.metrics().encode();
    for line in [
        "ta_mint_check_refused_total{code=\"ticket_required\"} 3",
        "ta_mint_check_refused_total{code=\"bad_ticket\"} 2",
        "ta_mint_check_refused_total{code=\"ticket_expired\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_check_of_ones_own_sees_the_request_and_chooses_the_answer() {
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let check = {
        let seen = Arc::clone(&seen);
        move |request: &MintRequest<'_>| {
            seen.lock().unwrap().push((
                request.origin.to_owned(),
                request.client.to_string(),
                String::from_utf8_lossy(request.body).into_owned(),
            ));
            if request.headers.contains_key("x-site-session") {
                Ok(())
            } else {
                Err(MintRefusal::new(
                    http::StatusCode::UNAUTHORIZED,
                    "session_required",
                    "sign in on the site first",
                ))
            }
        }
    };
    let s = service_built(
        EmulatorConfig::default(),
        |_| {},
        |service| service.with_mint_check(check),
    )
    .await;
    let refused = post(&s, r#"{"hello":1}"#).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(json(&refused)["error"], "session_required");
    assert_eq!(json(&refused)["message"], "sign in on the site first");
    let allowed = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", ORIGIN), ("x-site-session", "1")],
        "{}",
    )
    .await;
    assert_eq!(allowed.status(), 200, "{:?}", allowed.body());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (
                ORIGIN.to_owned(),
                "127.0.0.1".to_owned(),
                r#"{"hello":1}"#.to_owned()
            ),
            (ORIGIN.to_owned(), "127.0.0.1".to_owned(), "{}".to_owned()),
        ]
    );
    // Refused before the check: an origin off the allowlist never reaches it.
    let other = call(
        &s,
        "POST",
        "/v1/widget-token",
        &[("origin", "https://evil.example")],
        "{}",
    )
    .await;
    assert_eq!(other.status(), 403);
    assert_eq!(s.setup.emulator.stats().psat_tokens_minted, 1);
}
