//! `inspect`: decodes a psat token's claims, without verifying it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config_error;

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The token: `psat=<JWT>`, the JWT alone, or a discover link carrying it.
    token: String,
}

/// The JWT inside what was given.
fn jwt_of(input: &str) -> Option<String> {
    let input = input.trim();
    if let Some((_, query)) = input.split_once("anonymousContext=") {
        let value = query.split('&').next().unwrap_or_default();
        let once = percent_decode(value)?;
        let twice = percent_decode(&once)?;
        return twice.strip_prefix("psat=").map(str::to_owned);
    }
    Some(input.strip_prefix("psat=").unwrap_or(input).to_owned())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn time_of(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_i64)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "(absent)".to_owned())
}

pub(crate) fn run(args: &InspectArgs) -> u8 {
    let Some(jwt) = jwt_of(&args.token) else {
        return config_error("the anonymousContext value is not percent-encoded text");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return config_error(format!(
            "not a JWT: expected three dot-separated parts, found {}",
            parts.len()
        ));
    };
    let claims: Value = match URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(claims) => claims,
        Err(e) => return config_error(format!("the token's claims could not be read: {e}")),
    };
    // The claims are untrusted: control characters (terminal escapes) are
    // shown escaped, never written raw.
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("(absent)")
            .chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect::<String>()
    };
    let expired = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp <= OffsetDateTime::now_utc().unix_timestamp());
    out!("NOT VERIFIED: the signature was not checked; these are the claims as written.");
    out!("application session id (asi): {}", text("asi"));
    out!("application endpoint  (aeu): {}", text("aeu"));
    out!(
        "allowed origins        (ao): {}",
        text("ao").replace(';', ", ")
    );
    out!(
        "not before            (nbf): {}",
        time_of(claims.get("nbf"))
    );
    out!(
        "expires               (exp): {}{}",
        time_of(claims.get("exp")),
        if expired { " (expired)" } else { "" }
    );
    0
}
