//! The `inspect` command's reader: a psat token's claims, as written (the
//! signature is not checked).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A psat token's claims, each made safe to print on a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// The application session id (`asi`).
    pub session_id: Option<String>,
    /// The application endpoint (`aeu`).
    pub endpoint: Option<String>,
    /// The allowed origins (`ao`, `;`-separated in the token).
    pub allowed_origins: Option<String>,
    /// Not before (`nbf`), in RFC 3339, when it is a time.
    pub not_before: Option<String>,
    /// The expiry (`exp`), in RFC 3339, when it is a time.
    pub expires: Option<String>,
    /// The expiry in seconds since the epoch, when it is a number.
    pub expires_unix: Option<i64>,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenClaimsError {
    /// A discover link whose `anonymousContext` is not percent-encoded text.
    BadContext,
    /// Not three dot-separated parts.
    NotAJwt {
        /// How many parts there were.
        parts: usize,
    },
    /// The claims part is not base64url-encoded JSON.
    BadClaims(String),
}

impl std::fmt::Display for TokenClaimsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadContext => {
                f.write_str("the anonymousContext value is not percent-encoded text")
            }
            Self::NotAJwt { parts } => write!(
                f,
                "not a JWT: expected three dot-separated parts, found {parts}"
            ),
            Self::BadClaims(e) => write!(f, "the token's claims could not be read: {e}"),
        }
    }
}

impl std::error::Error for TokenClaimsError {}

/// Reads the claims of `input`: `psat=<JWT>`, the JWT alone, or a discover
/// link carrying it (`…?anonymousContext=psat%253D…`, encoded twice).
///
/// # Errors
///
/// [`TokenClaimsError`] names what is not as expected.
pub fn read_token(input: &str) -> Result<TokenClaims, TokenClaimsError> {
    let jwt = jwt_of(input).ok_or(TokenClaimsError::BadContext)?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(TokenClaimsError::NotAJwt { parts: parts.len() });
    };
    let claims: Value = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| TokenClaimsError::BadClaims(printable(&e)))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(printable);
    Ok(TokenClaims {
        session_id: text("asi"),
        endpoint: text("aeu"),
        allowed_origins: text("ao"),
        not_before: time_of(claims.get("nbf")),
        expires: time_of(claims.get("exp")),
        expires_unix: claims.get("exp").and_then(Value::as_i64),
    })
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

/// `%XX` decoded, `XX` two hex digits exactly.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let high = hex_digit(*bytes.get(i + 1)?)?;
            let low = hex_digit(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn time_of(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_i64)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// `text` safe to write to a terminal: control characters, and the
/// invisible characters that reorder or hide text (bidirectional controls,
/// zero-width and other format characters), are shown escaped.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() || is_format(c) {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Unicode's format characters (category Cf) that a terminal would act on
/// or hide: the bidirectional controls and isolates, the zero-width
/// characters, the word joiner and invisible operators, the byte order mark,
/// the interlinear annotation controls and the tag characters.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::{TokenClaimsError, printable, read_token};

    fn jwt(claims: &str) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn a_token_is_read_however_it_is_given() {
        let token = jwt(r#"{"asi":"s-1","ao":"https://a.test;https://b.test","exp":1800000000}"#);
        let link = format!(
            "https://x.test/discover?anonymousContext={}&x=1",
            format!("psat%3D{token}").replace('%', "%25")
        );
        for input in [token.clone(), format!("psat={token}"), link] {
            let claims = read_token(&input).unwrap();
            assert_eq!(claims.session_id.as_deref(), Some("s-1"));
            assert_eq!(
                claims.allowed_origins.as_deref(),
                Some("https://a.test;https://b.test")
            );
            assert_eq!(claims.expires.as_deref(), Some("2027-01-15T08:00:00Z"));
            assert_eq!(claims.expires_unix, Some(1_800_000_000));
            assert_eq!(claims.endpoint, None);
        }
    }

    #[test]
    fn percent_escapes_are_two_hex_digits() {
        // `from_str_radix` would take `+f`; an escape is two hex digits.
        let input = "https://x.test/?anonymousContext=%+f";
        assert_eq!(read_token(input), Err(TokenClaimsError::BadContext));
    }

    #[test]
    fn what_a_terminal_would_act_on_is_escaped() {
        let claims = read_token(&jwt(r#"{"asi":"a\u001b[31mb\u202ec\u200bd"}"#)).unwrap();
        assert_eq!(
            claims.session_id.as_deref(),
            Some(r"a\u{1b}[31mb\u{202e}c\u{200b}d")
        );
        assert_eq!(printable("plain — text"), "plain — text");
    }

    #[test]
    fn not_a_token_is_named() {
        assert_eq!(
            read_token("a.b"),
            Err(TokenClaimsError::NotAJwt { parts: 2 })
        );
        assert!(matches!(
            read_token("a.!.c"),
            Err(TokenClaimsError::BadClaims(_))
        ));
    }
}
