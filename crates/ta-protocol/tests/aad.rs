//! AAD client credentials: request builders and response parsers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use ta_protocol::aad::*;
use ta_protocol::*;

fn audience() -> Audience {
    Audience::for_discover_url(
        &"https://api.skypeforbusiness.com/platformservice/discover"
            .parse()
            .unwrap(),
    )
}

fn response(status: u16, body: &str) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

fn form(req: &http::Request<Bytes>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.body())
        .into_owned()
        .collect()
}

#[test]
fn v2_with_a_secret() {
    let endpoint = TokenEndpoint::for_tenant("contoso.onmicrosoft.com").unwrap();
    assert_eq!(endpoint.version(), AadVersion::V2);
    let req = token_request(
        &endpoint,
        &ClientId::new("app-id").unwrap(),
        &audience(),
        &ClientCredential::Secret(ClientSecret::new("s3cret&=")),
        &ClientRequestId::new("req-1").unwrap(),
    );
    assert_eq!(req.method(), "POST");
    assert_eq!(
        req.uri(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(
        req.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(req.headers()["client-request-id"], "req-1");
    assert_eq!(
        form(&req),
        [
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), "app-id".into()),
            (
                "scope".into(),
                "https://api.skypeforbusiness.com/.default".into()
            ),
            ("client_secret".into(), "s3cret&=".into()),
        ]
    );
}

#[test]
fn v1_with_an_assertion() {
    let endpoint =
        TokenEndpoint::parse("https://login.microsoftonline.com/t/oauth2/token", false).unwrap();
    assert_eq!(endpoint.version(), AadVersion::V1);
    let req = token_request(
        &endpoint,
        &ClientId::new("app-id").unwrap(),
        &audience(),
        &ClientCredential::Assertion(ClientAssertion::new("a.b.c")),
        &ClientRequestId::new("req-1").unwrap(),
    );
    let f = form(&req);
    assert!(f.contains(&("resource".into(), "https://api.skypeforbusiness.com".into())));
    assert!(f.contains(&(
        "client_assertion_type".into(),
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()
    )));
    assert!(f.contains(&("client_assertion".into(), "a.b.c".into())));
    assert!(!f.iter().any(|(k, _)| k == "scope" || k == "client_secret"));
}

#[test]
fn token_endpoints_are_checked() {
    assert!(TokenEndpoint::parse("http://login.example/t/oauth2/token", true).is_err());
    assert!(TokenEndpoint::parse("http://127.0.0.1:9/t/oauth2/v2.0/token", false).is_err());
    assert!(TokenEndpoint::parse("http://127.0.0.1:9/t/oauth2/v2.0/token", true).is_ok());
    assert!(TokenEndpoint::parse("https://login.example/t/oauth2/authorize", false).is_err());
    assert!(TokenEndpoint::for_tenant("a/b").is_err());
    assert!(TokenEndpoint::for_tenant("").is_err());
    // Folded away by the URL (found by the `urls` fuzz target).
    assert!(TokenEndpoint::for_tenant(".").is_err());
    assert!(TokenEndpoint::for_tenant("..").is_err());
    let dotted = TokenEndpoint::for_tenant("contoso.").unwrap();
    assert_eq!(dotted.tenant(), Some("contoso."));
    assert!(ClientId::new("").is_err());
}

#[test]
fn a_token_endpoint_names_its_tenant() {
    let tenant = |url: &str| {
        TokenEndpoint::parse(url, false)
            .unwrap()
            .tenant()
            .map(str::to_owned)
    };
    assert_eq!(
        TokenEndpoint::for_tenant("contoso.onmicrosoft.com")
            .unwrap()
            .tenant(),
        Some("contoso.onmicrosoft.com")
    );
    assert_eq!(
        tenant("https://login.microsoftonline.us/fabrikam/oauth2/token").as_deref(),
        Some("fabrikam")
    );
    assert_eq!(
        tenant("https://sts.example/adfs/x/fabrikam/oauth2/v2.0/token/").as_deref(),
        Some("fabrikam")
    );
    // No segment before `oauth2`: no tenant.
    assert_eq!(tenant("https://sts.example/oauth2/v2.0/token"), None);
}

#[test]
fn expires_in_as_number_or_string() {
    let v2 = parse_token_response(&response(200, r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0.x.y"}"#)).unwrap();
    assert_eq!(v2.expires_in, Duration::from_secs(3599));
    assert_eq!(v2.access_token.expose(), "eyJ0.x.y");
    let v1 = parse_token_response(&response(200, r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","expires_on":"1488872625","not_before":"1488868725","resource":"https://api.skypeforbusiness.com","access_token":"eyJ0.x.y"}"#)).unwrap();
    assert_eq!(v1.expires_in, Duration::from_secs(3599));
    assert_eq!(v1.ext_expires_in, Some(Duration::from_secs(3599)));
    // With a BOM, as some answers had.
    let bom = parse_token_response(&response(
        200,
        "\u{feff}{\"token_type\":\"bearer\",\"expires_in\":60,\"access_token\":\"t\"}",
    ))
    .unwrap();
    assert_eq!(bom.expires_in, Duration::from_secs(60));
}

#[test]
fn bad_token_answers_are_typed_and_hide_the_token() {
    let e = parse_token_response(&response(
        200,
        r#"{"token_type":"Bearer","expires_in":"soon","access_token":"eyJsecret.x.y"}"#,
    ))
    .unwrap_err();
    assert!(matches!(e, AadError::Malformed { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("eyJsecret"));
    let e = parse_token_response(&response(
        200,
        r#"{"token_type":"pop","expires_in":1,"access_token":"t"}"#,
    ))
    .unwrap_err();
    assert!(matches!(e, AadError::UnsupportedTokenType { .. }));
    let e = parse_token_response(&response(
        200,
        r#"{"token_type":"Bearer","expires_in":1,"access_token":""}"#,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("empty"));
    let e = parse_token_response(&response(502, "<html>bad gateway</html>")).unwrap_err();
    assert!(matches!(e, AadError::Malformed { status, .. } if status == 502));
}

#[test]
fn aad_errors_carry_the_aadsts_code() {
    let e = parse_token_response(&response(401, r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000215],"timestamp":"2017-03-07 07:43:45Z","trace_id":"trace","correlation_id":"corr"}"#)).unwrap_err();
    assert_eq!(e.aadsts(), Some(7_000_215));
    assert_eq!(e.error_code(), Some("invalid_client"));
    let text = e.to_string();
    assert_eq!(
        text,
        "Azure AD refused the token request (401 Unauthorized): invalid_client: AADSTS7000215: Invalid client secret provided. (correlation id corr)"
    );
    // The code from the description when error_codes is absent.
    let e = parse_token_response(&response(400, r#"{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal was not found."}"#)).unwrap_err();
    assert_eq!(e.aadsts(), Some(500_011));
    let e =
        parse_token_response(&response(400, r#"{"error":"unsupported_grant_type"}"#)).unwrap_err();
    assert_eq!(e.aadsts(), None);
}

#[test]
fn aad_busy_is_not_a_refusal_and_a_redirect_is_named() {
    let e = parse_token_response(&response(
        503,
        r#"{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred.","error_codes":[90033]}"#,
    ))
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Azure AD could not answer the token request (503 Service Unavailable): temporarily_unavailable: AADSTS90033: A transient error has occurred."
    );
    let mut redirect = response(307, "");
    redirect.headers_mut().insert(
        http::header::LOCATION,
        http::HeaderValue::from_static("https://login.contoso-proxy.example/signin"),
    );
    let e = parse_token_response(&redirect).unwrap_err();
    assert!(matches!(e, AadError::Malformed { status, .. } if status == 307));
    assert!(
        e.to_string()
            .contains("a redirect to https://login.contoso-proxy.example/signin, which a token request does not follow"),
        "{e}"
    );
    // Without a Location, still a redirect.
    let e = parse_token_response(&response(302, "")).unwrap_err();
    assert!(e.to_string().contains("a redirect, which"), "{e}");
}

struct FakeSigner;

impl AssertionSigner for FakeSigner {
    fn certificate_sha1(&self) -> [u8; 20] {
        [0xAB; 20]
    }
    fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(message.iter().rev().copied().take(8).collect())
    }
}

#[test]
fn client_assertions_have_the_claims_aad_checks() {
    let endpoint = TokenEndpoint::for_tenant("contoso").unwrap();
    let client_id = ClientId::new("app-id").unwrap();
    let claims = AssertionClaims::new(
        &client_id,
        &endpoint,
        "jti-1",
        1_700_000_000,
        Duration::from_secs(300),
    );
    let assertion = client_assertion(&FakeSigner, &claims).unwrap();
    let parts: Vec<&str> = assertion.expose().split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], URL_SAFE_NO_PAD.encode([0xAB; 20]));
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        payload["aud"],
        "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
    );
    assert_eq!(payload["iss"], "app-id");
    assert_eq!(payload["sub"], "app-id");
    assert_eq!(payload["jti"], "jti-1");
    assert_eq!(payload["nbf"], 1_700_000_000);
    assert_eq!(payload["exp"], 1_700_000_300);
    // The signature is over `header.payload`.
    let input = format!("{}.{}", parts[0], parts[1]);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        FakeSigner.sign_rs256(input.as_bytes()).unwrap()
    );
    assert!(!format!("{assertion:?}").contains(parts[1]));
}

#[test]
fn a_failing_signer_is_an_error() {
    struct Broken;
    impl AssertionSigner for Broken {
        fn certificate_sha1(&self) -> [u8; 20] {
            [0; 20]
        }
        fn sign_rs256(&self, _: &[u8]) -> Result<Vec<u8>, SignerError> {
            Ok(Vec::new())
        }
    }
    let endpoint = TokenEndpoint::for_tenant("contoso").unwrap();
    let client_id = ClientId::new("app-id").unwrap();
    let claims = AssertionClaims::new(&client_id, &endpoint, "j", 0, Duration::from_secs(60));
    assert!(client_assertion(&Broken, &claims).is_err());
}
