//! Azure AD's token endpoint answers, v1 (`expires_in` a string) and v2 (a
//! number), and its error answers: a token only from a success with a
//! bearer token, a lifetime that fits, and an error that never quotes the
//! access token.

use bytes::Bytes;
use http::StatusCode;
use ta_protocol::aad::parse_token_response;

use crate::json::json_text;

const STATUSES: [u16; 10] = [200, 201, 204, 400, 401, 403, 429, 500, 502, 503];

/// The first byte picks the status; the rest is the body.
pub fn aad_token_response(data: &[u8]) {
    let Some((&status, body)) = data.split_first() else {
        return;
    };
    check(status, body);
}

/// The first byte picks the status; the rest builds a JSON body
/// ([`crate::json`]).
pub fn aad_structured(data: &[u8]) {
    let Some((&status, rest)) = data.split_first() else {
        return;
    };
    if let Some(body) = json_text(rest) {
        check(status, body.as_bytes());
    }
}

fn check(status: u8, body: &[u8]) {
    let status = STATUSES
        .get(usize::from(status) % STATUSES.len())
        .copied()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let Ok(response) = http::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Bytes::copy_from_slice(body))
    else {
        return;
    };
    match parse_token_response(&response) {
        Ok(token) => {
            assert!(status.is_success());
            assert!(!token.access_token.expose().is_empty());
        }
        Err(error) => {
            let shown = format!("{error} {error:?}");
            let _ = (error.aadsts(), error.status(), error.error_code());
            if let Some(token) = access_token(body) {
                assert!(
                    !shown.contains(&token),
                    "the error shows the access token: {shown}"
                );
            }
        }
    }
}

/// The body's `access_token`, when it is a string long enough to be told
/// apart and written only once in the body.
fn access_token(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = value.get("access_token")?.as_str()?.to_owned();
    let text = std::str::from_utf8(body).ok()?;
    (token.len() >= 12 && text.matches(token.as_str()).count() == 1).then_some(token)
}
