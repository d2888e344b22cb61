//! A signed ticket: the site's backend proves that it served the page.
//!
//! The backend that renders the page signs a short-lived ticket for the
//! page's origin with a key it shares with the service, and puts it into
//! the page; the widget sends it with each token request (the token
//! client's `ticket` option: `{"ticket": "…"}` in the body). A script that
//! forges `Origin` then needs a ticket too, which lives minutes: this helps
//! as far as the site gates who gets one (a signed-in session, a CAPTCHA, a
//! rate limit per session); a ticket anyone can fetch from a public page
//! proves little.
//!
//! The ticket is `t1.<expiry>.<nonce>.<signature>`: the expiry in Unix
//! seconds, a nonce of the signer's choosing (base64url, 8 to 64
//! characters), and the base64url (unpadded) HMAC-SHA256, under the shared
//! key, of `t1.<expiry>.<nonce>.<origin>`. The origin is signed, not
//! carried: a ticket for one site does not open another. A ticket may be
//! used until it expires (the widget renews with it); it may not be made to
//! live longer than the check's longest lifetime.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use super::{MintCheck, MintRefusal, MintRequest};

/// The shortest key taken.
const MIN_KEY_BYTES: usize = 32;
/// The version prefix.
const VERSION: &str = "t1";

/// Why a key or a ticket cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The shared key is shorter than 32 bytes.
    #[error("the ticket key must be at least {MIN_KEY_BYTES} bytes (it has {0})")]
    ShortKey(usize),
    /// The nonce is not 8 to 64 base64url characters.
    #[error("a ticket's nonce must be 8 to 64 base64url characters")]
    BadNonce,
}

/// Signs a ticket for `origin` (the page's serialized origin, such as
/// `https://www.contoso.com`) that expires at `expires` (Unix seconds),
/// with a `nonce` of 8 to 64 base64url characters: what the site's backend
/// puts into the page.
pub fn sign_ticket(
    key: &[u8],
    origin: &str,
    expires: u64,
    nonce: &str,
) -> Result<String, TicketError> {
    if key.len() < MIN_KEY_BYTES {
        return Err(TicketError::ShortKey(key.len()));
    }
    if !nonce_ok(nonce) {
        return Err(TicketError::BadNonce);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, signed_text(expires, nonce, origin).as_bytes());
    Ok(format!(
        "{VERSION}.{expires}.{nonce}.{}",
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    ))
}

fn nonce_ok(nonce: &str) -> bool {
    (8..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn signed_text(expires: u64, nonce: &str, origin: &str) -> String {
    format!("{VERSION}.{expires}.{nonce}.{origin}")
}

/// The clock a check reads (tests pass their own).
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The [`MintCheck`] of signed tickets: a request must carry a valid,
/// unexpired ticket for its origin (`{"ticket": "…"}` in its JSON body).
///
/// It refuses with 403 and the code `ticket_required` (none), `bad_ticket`
/// (malformed, signed with another key or for another origin, or living
/// longer than allowed) or `ticket_expired`.
pub struct SignedTicketCheck {
    key: hmac::Key,
    max_lifetime: Duration,
    leeway: Duration,
    clock: Clock,
}

impl std::fmt::Debug for SignedTicketCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedTicketCheck")
            .field("key", &"<not shown>")
            .field("max_lifetime", &self.max_lifetime)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl SignedTicketCheck {
    /// Checks tickets signed with `key` (at least 32 bytes), living at most
    /// 15 minutes, with 30 s of leeway for the clocks.
    pub fn new(key: &[u8]) -> Result<Self, TicketError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(TicketError::ShortKey(key.len()));
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            max_lifetime: Duration::from_secs(15 * 60),
            leeway: Duration::from_secs(30),
            clock: Arc::new(SystemTime::now),
        })
    }

    /// The longest life a ticket may have from now.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// Reads the time from `clock` (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether `ticket` is valid for `origin` now.
    pub fn verify(&self, ticket: &str, origin: &str) -> Result<(), MintRefusal> {
        let bad =
            |why: &str| MintRefusal::forbidden("bad_ticket", format!("the widget ticket {why}"));
        let mut parts = ticket.split('.');
        let (Some(version), Some(expires), Some(nonce), Some(signature), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("is not one (t1.<expiry>.<nonce>.<signature>)"));
        };
        if version != VERSION {
            return Err(bad("has an unknown version"));
        }
        // Digits as `sign_ticket` writes them: one ticket string per
        // signature (no sign, no leading zero).
        let canonical = !expires.is_empty()
            && expires.bytes().all(|b| b.is_ascii_digit())
            && (expires == "0" || !expires.starts_with('0'));
        let expires: u64 = expires
            .parse()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| bad("has an unreadable expiry"))?;
        if !nonce_ok(nonce) {
            return Err(bad("has an unreadable nonce"));
        }
        let tag = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| bad("has an unreadable signature"))?;
        // The signature first: nothing else about a forged ticket is told.
        hmac::verify(
            &self.key,
            signed_text(expires, nonce, origin).as_bytes(),
            &tag,
        )
        .map_err(|_| bad("is not signed for this origin with the service's key"))?;
        let now = (self.clock)()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let leeway = self.leeway.as_secs();
        if expires.saturating_add(leeway) <= now {
            return Err(MintRefusal::forbidden(
                "ticket_expired",
                "the widget ticket has expired: the page needs a new one",
            ));
        }
        let longest = now
            .saturating_add(self.max_lifetime.as_secs())
            .saturating_add(leeway);
        if expires > longest {
            return Err(bad("lives longer than the service allows"));
        }
        Ok(())
    }
}

#[async_trait]
impl MintCheck for SignedTicketCheck {
    async fn check(&self, request: &MintRequest<'_>) -> Result<(), MintRefusal> {
        let ticket = serde_json::from_slice::<serde_json::Value>(request.body)
            .ok()
            .and_then(|body| body.get("ticket")?.as_str().map(str::to_owned));
        match ticket {
            Some(ticket) => self.verify(&ticket, request.origin),
            None => Err(MintRefusal::forbidden(
                "ticket_required",
                "a widget ticket from the site is required (`{\"ticket\": \"…\"}`)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;
    const ORIGIN: &str = "https://www.contoso.com";

    fn check() -> SignedTicketCheck {
        SignedTicketCheck::new(KEY)
            .unwrap()
            .with_clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
    }

    fn code(result: Result<(), MintRefusal>) -> String {
        result
            .err()
            .map(|r| r.code().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_ticket_opens_its_origin_until_it_expires() {
        let check = check();
        let ticket = sign_ticket(KEY, ORIGIN, NOW + 300, "n0nce-abc_123").unwrap();
        assert!(check.verify(&ticket, ORIGIN).is_ok());
        assert_eq!(
            code(check.verify(&ticket, "https://evil.example")),
            "bad_ticket"
        );
        let other_key = sign_ticket(&[7; 32], ORIGIN, NOW + 300, "n0nce-abc_123").unwrap();
        assert_eq!(code(check.verify(&other_key, ORIGIN)), "bad_ticket");
        let expired = sign_ticket(KEY, ORIGIN, NOW - 31, "n0nce-abc_123").unwrap();
        assert_eq!(code(check.verify(&expired, ORIGIN)), "ticket_expired");
        // Within the leeway it still works.
        let just = sign_ticket(KEY, ORIGIN, NOW - 29, "n0nce-abc_123").unwrap();
        assert!(check.verify(&just, ORIGIN).is_ok());
        let forever = sign_ticket(KEY, ORIGIN, NOW + 3600, "n0nce-abc_123").unwrap();
        assert_eq!(code(check.verify(&forever, ORIGIN)), "bad_ticket");
    }

    #[test]
    fn a_tampered_or_malformed_ticket_is_refused() {
        let check = check();
        let ticket = sign_ticket(KEY, ORIGIN, NOW + 300, "n0nce-abc_123").unwrap();
        let later = ticket.replacen(&(NOW + 300).to_string(), &(NOW + 600).to_string(), 1);
        assert_eq!(code(check.verify(&later, ORIGIN)), "bad_ticket");
        let padded = ticket.replacen(&(NOW + 300).to_string(), &format!("0{}", NOW + 300), 1);
        assert_eq!(code(check.verify(&padded, ORIGIN)), "bad_ticket");
        for junk in [
            "t1.+1.abcdefgh.x",
            "",
            "t1",
            "t1.1.2",
            "t2.1.abcdefgh.x",
            "t1.x.abcdefgh.x",
            "t1.1.short.x",
            "t1.1.abcdefgh.!!",
            "t1.1.abcdefgh.AAAA.more",
        ] {
            assert_eq!(code(check.verify(junk, ORIGIN)), "bad_ticket", "{junk:?}");
        }
        assert_eq!(
            sign_ticket(b"short", ORIGIN, NOW, "abcdefgh"),
            Err(TicketError::ShortKey(5))
        );
        assert_eq!(
            sign_ticket(KEY, ORIGIN, NOW, "a.b"),
            Err(TicketError::BadNonce)
        );
        assert!(SignedTicketCheck::new(b"short").is_err());
        assert!(!format!("{check:?}").contains("0123456789"));
    }
}
