//! The client-credentials provider's cache: single flight, shared errors,
//! refresh ahead, and no busy loop on near-expiry tokens. Virtual time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ta_bootstrap::*;
use ta_protocol::aad::{ClientId, TokenEndpoint, TokenError};
use ta_protocol::{Audience, ClientSecret, Transport, TransportError};

/// A fake AAD: answers from a script, after a delay, counting requests.
struct FakeAad {
    calls: AtomicUsize,
    delay: Duration,
    script: Mutex<Vec<(u16, String)>>,
    last_body: Mutex<String>,
}

impl FakeAad {
    fn new(delay: Duration, script: Vec<(u16, String)>) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            delay,
            script: Mutex::new(script),
            last_body: Mutex::new(String::new()),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn ok(expires_in: u64, token: &str) -> (u16, String) {
    (
        200,
        format!(r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"{token}"}}"#),
    )
}

fn refused() -> (u16, String) {
    (401, r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#.to_owned())
}

#[async_trait::async_trait]
impl Transport for FakeAad {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last_body.lock().unwrap() = String::from_utf8_lossy(request.body()).into_owned();
        tokio::time::sleep(self.delay).await;
        let (status, body) = {
            let script = self.script.lock().unwrap();
            script.get(n).or(script.last()).cloned().unwrap()
        };
        Ok(http::Response::builder()
            .status(status)
            .body(Bytes::from(body))
            .unwrap())
    }
}

fn provider(aad: &Arc<FakeAad>) -> Arc<ClientCredentialsProvider> {
    Arc::new(
        ClientCredentialsProvider::builder(
            Arc::clone(aad) as Arc<dyn Transport>,
            TokenEndpoint::parse("https://login.example/t/oauth2/v2.0/token", false).unwrap(),
            ClientId::new("app").unwrap(),
            Credential::Secret(ClientSecret::new("sentinel-secret")),
        )
        .build(),
    )
}

fn audience() -> Audience {
    Audience::for_discover_url(
        &"https://api.example/platformservice/discover"
            .parse()
            .unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn many_callers_one_request() {
    let aad = FakeAad::new(Duration::from_millis(200), vec![ok(3600, "t1")]);
    let tokens = provider(&aad);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let tokens = Arc::clone(&tokens);
        tasks.spawn(async move { tokens.token(&audience()).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap().expose(), "t1");
    }
    assert_eq!(aad.calls(), 1);
    assert!(
        aad.last_body
            .lock()
            .unwrap()
            .contains("scope=https%3A%2F%2Fapi.example%2F.default")
    );
    assert_eq!(tokens.cached(&audience()).unwrap().expose(), "t1");
}

#[tokio::test(start_paused = true)]
async fn waiters_share_an_error_and_the_next_call_tries_again() {
    let aad = FakeAad::new(Duration::from_millis(200), vec![refused(), ok(3600, "t2")]);
    let tokens = provider(&aad);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let tokens = Arc::clone(&tokens);
        tasks.spawn(async move { tokens.token(&audience()).await });
    }
    while let Some(r) = tasks.join_next().await {
        let err = r.unwrap().unwrap_err();
        assert!(
            matches!(&err, TokenError::Aad(a) if a.aadsts() == Some(7_000_215)),
            "{err:?}"
        );
    }
    assert_eq!(aad.calls(), 1);
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t2");
    assert_eq!(aad.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_of_expiry_and_keep_the_old_token_if_that_fails() {
    let aad = FakeAad::new(
        Duration::ZERO,
        vec![ok(100, "t1"), refused(), ok(100, "t3")],
    );
    let tokens = provider(&aad);
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t1");
    // Within the first 80 s: cached.
    tokio::time::advance(Duration::from_secs(79)).await;
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t1");
    assert_eq!(aad.calls(), 1);
    // In the last fifth: refreshed; the refresh fails, the old one is kept.
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t1");
    assert_eq!(aad.calls(), 2);
    // AAD is left alone for 5 s: the old token is served meanwhile.
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t1");
    assert_eq!(aad.calls(), 2);
    // Then the next call refreshes again, and gets the new token.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t3");
    assert_eq!(aad.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_slow_refresh_does_not_hold_up_callers_with_a_valid_token() {
    let aad = FakeAad::new(Duration::from_secs(20), vec![ok(100, "t1"), ok(100, "t2")]);
    let tokens = provider(&aad);
    tokens.token(&audience()).await.unwrap();
    tokio::time::advance(Duration::from_secs(85)).await;
    // One caller starts the (slow) refresh.
    let refreshing = {
        let tokens = Arc::clone(&tokens);
        tokio::spawn(async move { tokens.token(&audience()).await })
    };
    tokio::task::yield_now().await;
    // Another gets the current token at once.
    let started = tokio::time::Instant::now();
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t1");
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(refreshing.await.unwrap().unwrap().expose(), "t2");
    assert_eq!(aad.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_never_served() {
    let aad = FakeAad::new(Duration::ZERO, vec![ok(60, "t1"), refused()]);
    let tokens = provider(&aad);
    tokens.token(&audience()).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(tokens.cached(&audience()).is_none());
    assert!(tokens.token(&audience()).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn near_expiry_tokens_back_off_then_error() {
    // AAD keeps issuing tokens that are already expired.
    let aad = FakeAad::new(Duration::ZERO, vec![ok(0, "dead")]);
    let tokens = provider(&aad);
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "dead");
    // Called in a tight loop: no request to AAD during the backoff; the
    // callers get an error at once.
    for _ in 0..1000 {
        assert!(tokens.token(&audience()).await.is_err());
    }
    assert_eq!(aad.calls(), 1);
    tokio::time::advance(Duration::from_millis(1001)).await;
    tokens.token(&audience()).await.unwrap();
    assert_eq!(aad.calls(), 2);
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert!(
        tokens.token(&audience()).await.is_err(),
        "still backing off (2 s)"
    );
    assert_eq!(aad.calls(), 2);
    tokio::time::advance(Duration::from_millis(1000)).await;
    let err = tokens.token(&audience()).await.unwrap_err();
    assert!(err.to_string().contains("in a row"), "{err}");
    assert_eq!(aad.calls(), 3);
    for _ in 0..100 {
        assert!(tokens.token(&audience()).await.is_err());
    }
    assert_eq!(aad.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn invalidate_drops_only_that_token() {
    let aad = FakeAad::new(Duration::ZERO, vec![ok(3600, "t1"), ok(3600, "t2")]);
    let tokens = provider(&aad);
    let t1 = tokens.token(&audience()).await.unwrap();
    tokens.invalidate(&audience(), &ta_protocol::AccessToken::new("other"));
    assert_eq!(tokens.cached(&audience()).unwrap(), t1);
    tokens.invalidate(&audience(), &t1);
    assert!(tokens.cached(&audience()).is_none());
    assert_eq!(tokens.token(&audience()).await.unwrap().expose(), "t2");
    // Tokens are cached per audience.
    let other = Audience::for_discover_url(&"https://other.example/d".parse().unwrap());
    tokens.token(&other).await.unwrap();
    assert_eq!(aad.calls(), 3);
    assert!(!format!("{tokens:?}").contains("sentinel-secret"));
}

/// A signer that never answers.
#[derive(Debug)]
struct Hanging;

#[async_trait::async_trait]
impl Signer for Hanging {
    fn certificate_sha1(&self) -> [u8; 20] {
        [1; 20]
    }
    async fn sign_rs256(&self, _: &[u8]) -> Result<Vec<u8>, ta_protocol::aad::SignerError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_signer_that_hangs_fails_the_fetch_instead_of_holding_it() {
    let aad = FakeAad::new(Duration::ZERO, vec![ok(3600, "never-sent")]);
    let tokens = ClientCredentialsProvider::builder(
        Arc::clone(&aad) as Arc<dyn Transport>,
        TokenEndpoint::parse("https://login.example/t/oauth2/v2.0/token", false).unwrap(),
        ClientId::new("app").unwrap(),
        Credential::signer(Hanging),
    )
    .build();
    let error = tokens.token(&audience()).await.unwrap_err();
    assert!(
        matches!(&error, TokenError::Signer(e) if e.reason().contains("within 10 s")),
        "{error:?}"
    );
    assert_eq!(aad.calls(), 0, "nothing was sent without an assertion");
}
