//! `WWW-Authenticate` challenges, parsed per RFC 7235 / RFC 9110 §11.
//!
//! ```text
//! challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! Several challenges may share one header, separated by commas, and a
//! response may carry several headers. The parser works on bytes and never
//! panics, whatever the server sends.

use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Challenge {
    /// The scheme as sent (compare with [`Challenge::is_scheme`]).
    pub scheme: String,
    /// A token68 credential hint, if the challenge carries one.
    pub token68: Option<String>,
    /// The auth-params, in order, names as sent, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Whether the scheme is `scheme` (case-insensitive).
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first auth-param named `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a challenge list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate at byte {position}: {reason}")]
#[non_exhaustive]
pub struct ChallengeError {
    /// Byte offset in the header value.
    pub position: usize,
    /// What was expected.
    pub reason: &'static str,
}

/// Parses one `WWW-Authenticate` header value into its challenges.
pub fn parse_challenges(value: &[u8]) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Parser { s: value, i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_list_separators();
        if p.at_end() {
            return Ok(out);
        }
        let scheme = p.token().ok_or(p.error("expected an auth-scheme"))?;
        let mut challenge = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        let had_space = p.skip_spaces();
        if p.at_end() || p.peek() == Some(b',') {
            out.push(challenge);
            continue;
        }
        if !had_space {
            return Err(p.error("expected a space after the auth-scheme"));
        }
        // token68, if it is followed by the end or a comma.
        let start = p.i;
        if let Some(token68) = p.token68() {
            let after = p.i;
            p.skip_ows();
            if p.at_end() || p.peek() == Some(b',') {
                challenge.token68 = Some(token68);
                out.push(challenge);
                continue;
            }
            p.i = after;
        }
        p.i = start;
        // #auth-param
        loop {
            let name = p.token().ok_or(p.error("expected an auth-param name"))?;
            p.skip_ows();
            if p.peek() != Some(b'=') {
                return Err(p.error("expected `=` after an auth-param name"));
            }
            p.i += 1;
            p.skip_ows();
            let value = if p.peek() == Some(b'"') {
                p.quoted_string()?
            } else {
                p.token()
                    .ok_or(p.error("expected a token or a quoted string"))?
            };
            challenge.params.push((name, value));
            p.skip_ows();
            if p.at_end() {
                break;
            }
            if p.peek() != Some(b',') {
                return Err(p.error("expected `,` between auth-params"));
            }
            // Another param of this challenge, or the next challenge?
            let save = p.i;
            p.skip_list_separators();
            if p.at_end() {
                break;
            }
            let look = p.i;
            if p.token().is_some() {
                p.skip_ows();
                let is_param = p.peek() == Some(b'=');
                p.i = look;
                if is_param {
                    continue;
                }
            }
            p.i = save;
            break;
        }
        out.push(challenge);
    }
}

/// Every challenge of every `WWW-Authenticate` header of an answer.
pub fn challenges(headers: &HeaderMap) -> Result<Vec<Challenge>, ChallengeError> {
    let mut all = Vec::new();
    for value in headers.get_all(WWW_AUTHENTICATE) {
        all.extend(parse_challenges(value.as_bytes())?);
    }
    Ok(all)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn error(&self, reason: &'static str) -> ChallengeError {
        ChallengeError {
            position: self.i,
            reason,
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_spaces(&mut self) -> bool {
        let start = self.i;
        self.skip_ows();
        self.i > start
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or_default()
    }

    fn token(&mut self) -> Option<String> {
        let t = self.take_while(is_tchar);
        (!t.is_empty()).then(|| String::from_utf8_lossy(t).into_owned())
    }

    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        let body = self.take_while(is_token68_char).len();
        if body == 0 {
            self.i = start;
            return None;
        }
        self.take_while(|b| b == b'=');
        self.s
            .get(start..self.i)
            .map(|t| String::from_utf8_lossy(t).into_owned())
    }

    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let open = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ChallengeError {
                        position: open,
                        reason: "unterminated quoted string",
                    });
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                            out.push(b);
                            self.i += 1;
                        }
                        _ => return Err(self.error("invalid quoted-pair")),
                    }
                }
                Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                    out.push(b);
                    self.i += 1;
                }
                Some(_) => return Err(self.error("control character in a quoted string")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bearer_with_params() {
        let c = parse_challenges(
            br#"Bearer realm="api", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token""#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert!(c[0].is_scheme("bearer"));
        assert_eq!(c[0].param("REALM"), Some("api"));
        assert_eq!(
            c[0].param("authorization_uri"),
            Some("https://login.microsoftonline.com/common/oauth2/authorize")
        );
        assert_eq!(c[0].param("error"), Some("invalid_token"));
    }

    #[test]
    fn several_challenges_and_token68() {
        let c = parse_challenges(
            br#"Negotiate abc+/==, Bearer realm="a\"b", charset=UTF-8, Basic realm="x",MsRtcOAuth href="https://h/x",grant_type="urn:microsoft.rtc:windows""#,
        )
        .unwrap();
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Negotiate", "Bearer", "Basic", "MsRtcOAuth"]);
        assert_eq!(c[0].token68.as_deref(), Some("abc+/=="));
        assert_eq!(c[1].param("realm"), Some("a\"b"));
        assert_eq!(c[1].param("charset"), Some("UTF-8"));
        assert_eq!(c[3].param("grant_type"), Some("urn:microsoft.rtc:windows"));
    }

    #[test]
    fn bare_scheme_and_empty_elements() {
        let c = parse_challenges(b" , Bearer ,, Basic").unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].params.is_empty());
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for bad in [
            &b"Bearer a=b=c"[..],
            b"Bearer realm=\"open",
            b"Bearer x=\"1\", =2",
            b"=x",
            b"Bearer realm=\"a\" junk",
            b"Bearer\x01",
        ] {
            assert!(
                parse_challenges(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_challenges(&bytes);
        }

        #[test]
        fn well_formed_params_round_trip(
            scheme in "[A-Za-z][A-Za-z0-9]{0,10}",
            params in proptest::collection::vec(("[a-z_]{1,10}", "[ -~&&[^\"\\\\]]{0,20}"), 1..5),
        ) {
            let text = format!(
                "{scheme} {}",
                params.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect::<Vec<_>>().join(", ")
            );
            let parsed = parse_challenges(text.as_bytes()).unwrap();
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(&parsed[0].params, &params);
        }
    }
}
