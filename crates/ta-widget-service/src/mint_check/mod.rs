//! A check before any mint: the operator's own test of a widget-token
//! request, run after the origin and the rate limits and before anything
//! goes upstream.
//!
//! Anyone can forge an `Origin` header outside a browser, so the allowlist
//! alone lets a script get tokens for an allowlisted origin. An operator
//! whose endpoint is abused plugs in a [`MintCheck`]: a CAPTCHA
//! verification, the site's own session cookie, or a ticket that the
//! site's backend signs into the page ([`SignedTicketCheck`], which ships).
//! No check is the default.
//!
//! ```
//! use ta_widget_service::mint_check::{MintCheck, MintRefusal, MintRequest};
//!
//! // A closure is a check: here, only pages that send a cookie.
//! let check = |request: &MintRequest<'_>| {
//!     if request.headers.contains_key("cookie") {
//!         Ok(())
//!     } else {
//!         Err(MintRefusal::forbidden("session_required", "sign in on the site first"))
//!     }
//! };
//! let _: &dyn MintCheck = &check;
//! ```

use std::net::IpAddr;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};

mod ticket;

pub use ticket::{SignedTicketCheck, TicketError, sign_ticket};

/// What a check sees of a widget-token request. Its `Debug` shows the
/// headers' names and the body's length, not their values (a ticket or a
/// cookie may be among them).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct MintRequest<'a> {
    /// The page's origin, as on the allowlist.
    pub origin: &'a str,
    /// The client's address (after the trusted proxies).
    pub client: IpAddr,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The request's body (at most the service's body limit).
    pub body: &'a [u8],
}

impl std::fmt::Debug for MintRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintRequest")
            .field("origin", &self.origin)
            .field("client", &self.client)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl<'a> MintRequest<'a> {
    /// What a check sees (to test a check of one's own).
    pub fn new(origin: &'a str, client: IpAddr, headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Self {
            origin,
            client,
            headers,
            body,
        }
    }
}

/// Why a check refused a request: the status and the code the widget gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRefusal {
    status: StatusCode,
    code: String,
    message: String,
}

impl MintRefusal {
    /// A refusal with this status (a 4xx; anything else is answered 403),
    /// a stable `code` (`[a-z0-9_]`, others become `_`) and a message for
    /// the page's developer (never a secret).
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        let status = if status.is_client_error() {
            status
        } else {
            StatusCode::FORBIDDEN
        };
        let code: String = code
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            status,
            code: if code.is_empty() {
                "refused".to_owned()
            } else {
                code
            },
            message: message.into(),
        }
    }

    /// A 403 refusal.
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// The status the widget gets.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code the widget gets.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message the widget gets.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A check of each widget-token request before its mint.
#[async_trait]
pub trait MintCheck: Send + Sync + 'static {
    /// `Ok` lets the request go on to its mint; a refusal is answered as
    /// it says, and nothing goes upstream.
    async fn check(&self, request: &MintRequest<'_>) -> Result<(), MintRefusal>;
}

#[async_trait]
impl<F> MintCheck for F
where
    F: Fn(&MintRequest<'_>) -> Result<(), MintRefusal> + Send + Sync + 'static,
{
    async fn check(&self, request: &MintRequest<'_>) -> Result<(), MintRefusal> {
        self(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_form_shows_no_header_value_or_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            "session=SENTINEL"
                .parse()
                .unwrap_or(axum::http::HeaderValue::from_static("x")),
        );
        let body = br#"{"ticket":"SENTINEL"}"#;
        let request = MintRequest::new(
            "https://a.example",
            IpAddr::from([127, 0, 0, 1]),
            &headers,
            body,
        );
        let shown = format!("{request:?}");
        assert!(
            shown.contains("cookie") && shown.contains("body_bytes"),
            "{shown}"
        );
        assert!(!shown.contains("SENTINEL"), "{shown}");
    }

    #[test]
    fn refusals_keep_to_a_4xx_and_a_plain_code() {
        let r = MintRefusal::new(StatusCode::OK, "Bad Ticket!", "m");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.code(), "_ad__icket_");
        let r = MintRefusal::new(StatusCode::TOO_MANY_REQUESTS, "", "m");
        assert_eq!(
            (r.status(), r.code()),
            (StatusCode::TOO_MANY_REQUESTS, "refused")
        );
    }
}
