//! The callback verifier: every refusal the chat's callbacks can meet, and
//! a key rotation, with tokens signed by the emulator's platform keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use ta_emulator::signing::{SigningKey, dev_callback_keys, jwks};
use ta_protocol::bytes::Bytes;
use ta_protocol::http::HeaderValue;
use ta_widget_service::callback::{CallbackAuth, CallbackVerifier, KeySource, Refusal};

const AUD: &str = "https://sa.contoso.com";
const ISS: &str = "https://sts.windows.net/72f988bf-0000-4000-8000-00000000c0de/";

#[derive(Debug)]
struct Source {
    doc: Mutex<Result<Value, String>>,
    fetches: AtomicUsize,
}

#[async_trait::async_trait]
impl KeySource for Source {
    async fn fetch(&self) -> Result<Bytes, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.doc
            .lock()
            .unwrap()
            .clone()
            .map(|d| Bytes::from(d.to_string()))
    }
}

fn keys() -> &'static [SigningKey; 2] {
    dev_callback_keys().unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    let t = now();
    json!({"aud": AUD, "iss": ISS, "idp": ISS, "tid": "72f988bf-0000-4000-8000-00000000c0de",
           "appid": "00000004-0000-0ff1-ce00-000000000000", "appidacr": "2",
           "iat": t - 10, "nbf": t - 10, "exp": t + 3900, "ver": "1.0"})
}

fn with(key: &SigningKey, f: impl FnOnce(&mut Value)) -> String {
    let mut c = claims();
    f(&mut c);
    key.sign_jwt(&c).unwrap()
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

fn verifier(doc: Result<Value, String>) -> (CallbackVerifier, Arc<Source>) {
    let source = Arc::new(Source {
        doc: Mutex::new(doc),
        fetches: AtomicUsize::new(0),
    });
    let auth = CallbackAuth::new(AUD, ISS).with_min_key_refetch(Duration::from_secs(30));
    (CallbackVerifier::new(auth, source.clone()), source)
}

async fn check(
    v: &CallbackVerifier,
    header: Option<HeaderValue>,
    at: Instant,
) -> Result<(), Refusal> {
    v.verify(header.as_ref(), SystemTime::now(), at)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_genuine_token_passes_and_every_bad_one_is_refused_by_reason() {
    let (v, _) = verifier(Ok(jwks([&keys()[0]])));
    let at = Instant::now();
    let good = with(&keys()[0], |_| {});
    let verified = v
        .verify(Some(&bearer(&good)), SystemTime::now(), at)
        .await
        .unwrap();
    assert_eq!(
        verified.tenant.as_deref(),
        Some("72f988bf-0000-4000-8000-00000000c0de")
    );

    assert_eq!(check(&v, None, at).await, Err(Refusal::Missing));
    assert_eq!(
        check(&v, Some(HeaderValue::from_static("Basic abc")), at).await,
        Err(Refusal::Missing)
    );
    assert_eq!(
        check(&v, Some(HeaderValue::from_static("Bearer ")), at).await,
        Err(Refusal::Missing)
    );
    assert_eq!(
        check(&v, Some(bearer("a.b")), at).await,
        Err(Refusal::Malformed)
    );
    assert_eq!(
        check(&v, Some(bearer("!!.??.**")), at).await,
        Err(Refusal::Malformed)
    );

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(
        check(&v, Some(bearer(&unsigned)), at).await,
        Err(Refusal::Unsigned)
    );
    let hs = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, keys()[0].kid())),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(
        check(&v, Some(bearer(&hs)), at).await,
        Err(Refusal::Unsigned)
    );

    // The claims changed after signing.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut forged = claims();
    forged["aud"] = json!("https://attacker.example");
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    assert_eq!(
        check(&v, Some(bearer(&parts.join("."))), at).await,
        Err(Refusal::BadSignature)
    );
    // Signed by another key under this key's name.
    let other = keys()[1].sign_jwt(&claims()).unwrap();
    let mut parts: Vec<String> = other.split('.').map(str::to_owned).collect();
    parts[0] = good.split('.').next().unwrap().to_owned();
    assert_eq!(
        check(&v, Some(bearer(&parts.join("."))), at).await,
        Err(Refusal::BadSignature)
    );

    let cases: [(&str, Value, Refusal); 7] = [
        (
            "aud",
            json!("https://other.example"),
            Refusal::WrongAudience,
        ),
        ("aud", Value::Null, Refusal::WrongAudience),
        (
            "iss",
            json!("https://sts.windows.net/another-tenant/"),
            Refusal::WrongIssuer,
        ),
        (
            "appid",
            json!("11111111-0000-0000-0000-000000000000"),
            Refusal::WrongApplication,
        ),
        ("exp", json!(now() - 120), Refusal::Expired),
        ("exp", Value::Null, Refusal::Expired),
        ("nbf", json!(now() + 600), Refusal::NotYetValid),
    ];
    for (claim, value, refusal) in cases {
        let token = with(&keys()[0], |c| {
            if value.is_null() {
                c.as_object_mut().unwrap().remove(claim);
            } else {
                c[claim] = value.clone();
            }
        });
        assert_eq!(
            check(&v, Some(bearer(&token)), at).await,
            Err(refusal),
            "{claim} = {value}"
        );
    }
    // Within the leeway is still fine; an audience list holding ours too.
    let skewed = with(&keys()[0], |c| c["nbf"] = json!(now() + 30));
    assert_eq!(check(&v, Some(bearer(&skewed)), at).await, Ok(()));
    let listed = with(&keys()[0], |c| c["aud"] = json!(["https://x.example", AUD]));
    assert_eq!(check(&v, Some(bearer(&listed)), at).await, Ok(()));
    assert_eq!(Refusal::WrongAudience.label(), "wrong_audience");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_again_at_most_once_per_interval() {
    let (v, source) = verifier(Ok(jwks([&keys()[0]])));
    let at = Instant::now();
    let old = with(&keys()[0], |_| {});
    let new = with(&keys()[1], |_| {});
    assert_eq!(check(&v, Some(bearer(&old)), at).await, Ok(()));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    // The provider rotates; a token with the new key arrives within the
    // interval: no fetch, refused.
    *source.doc.lock().unwrap() = Ok(jwks(keys().iter()));
    let soon = at + Duration::from_secs(5);
    assert_eq!(
        check(&v, Some(bearer(&new)), soon).await,
        Err(Refusal::UnknownKey)
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    // After it: fetched once, accepted; known keys need no fetch.
    let later = at + Duration::from_secs(31);
    assert_eq!(check(&v, Some(bearer(&new)), later).await, Ok(()));
    assert_eq!(check(&v, Some(bearer(&old)), later).await, Ok(()));
    assert_eq!(check(&v, Some(bearer(&new)), later).await, Ok(()));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_refuse_as_unavailable_and_are_tried_again_each_second() {
    let (v, source) = verifier(Err("connection refused".to_owned()));
    let at = Instant::now();
    let token = with(&keys()[0], |_| {});
    assert_eq!(
        check(&v, Some(bearer(&token)), at).await,
        Err(Refusal::KeysUnavailable)
    );
    assert_eq!(
        check(&v, Some(bearer(&token)), at + Duration::from_millis(500)).await,
        Err(Refusal::KeysUnavailable)
    );
    assert_eq!(
        source.fetches.load(Ordering::SeqCst),
        1,
        "at most one try a second"
    );
    *source.doc.lock().unwrap() =
        Ok(json!({"keys": [{"kty": "EC", "kid": "x", "n": "", "e": ""}]}));
    assert_eq!(
        check(&v, Some(bearer(&token)), at + Duration::from_secs(40)).await,
        Err(Refusal::KeysUnavailable)
    );
    *source.doc.lock().unwrap() = Ok(jwks([&keys()[0]]));
    assert_eq!(
        check(&v, Some(bearer(&token)), at + Duration::from_secs(80)).await,
        Ok(())
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn keys_are_fetched_again_when_old_so_a_withdrawn_key_stops_working() {
    let (v, source) = verifier(Ok(jwks([&keys()[0]])));
    let at = Instant::now();
    let token = with(&keys()[0], |_| {});
    assert_eq!(check(&v, Some(bearer(&token)), at).await, Ok(()));
    // The provider withdraws the key.
    *source.doc.lock().unwrap() = Ok(jwks([&keys()[1]]));
    let hour = Duration::from_secs(3600);
    assert_eq!(
        check(&v, Some(bearer(&token)), at + hour).await,
        Ok(()),
        "still in hand"
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
    assert_eq!(
        check(&v, Some(bearer(&token)), at + 25 * hour).await,
        Err(Refusal::UnknownKey)
    );
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
}
