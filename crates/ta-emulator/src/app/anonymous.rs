//! The chat widget's anonymous discovery: the discover link with its
//! `anonymousContext` (the psat token), and its CORS.

use super::*;

impl State {
    /// Decodes the `anonymousContext` value as the link carries it:
    /// percent-encoded twice (`psat%253d…`).
    pub(super) fn psat_from_context(raw: &str) -> Option<String> {
        let once = percent_decode_str(raw).decode_utf8().ok()?;
        if !once.to_ascii_lowercase().starts_with("psat%3d") {
            return None;
        }
        let twice = percent_decode_str(&once).decode_utf8().ok()?;
        twice.strip_prefix("psat=").map(str::to_owned)
    }

    pub(super) fn valid_psat(&self, raw_context: &str) -> Result<PsatClaims, &'static str> {
        let jwt = Self::psat_from_context(raw_context)
            .ok_or("anonymousContext must carry the psat token as the link gave it (percent-encoded twice)")?;
        let keys = keys().map_err(|_| "the emulator has no signing key")?;
        let claims: PsatClaims = keys
            .verify(&jwt)
            .ok_or("the anonymous token's signature or format is invalid")?;
        let now = self.now_u64();
        if claims.exp <= now {
            return Err("the anonymous token has expired");
        }
        if claims.nbf > now.saturating_add(300) {
            return Err("the anonymous token is not valid yet");
        }
        Ok(claims)
    }

    /// The CORS rule: only origins that were in `allowedOrigins` at mint.
    pub(super) fn psat_allows_origin(&self, query: Option<&str>, origin: &HeaderValue) -> bool {
        let Some(raw) = raw_query_param(query, "anonymousContext") else {
            return false;
        };
        let Ok(claims) = self.valid_psat(&raw) else {
            return false;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        claims.ao.split(';').any(|allowed| allowed == origin)
    }

    pub(super) fn anonymous_discovery(&self, raw_context: &str, headers: &HeaderMap) -> Response {
        if let Err(reason) = self.valid_psat(raw_context) {
            return self.error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("InvalidAnonymousToken"),
                reason,
            );
        }
        let _ = headers.get(ORIGIN);
        let resource = Resource::new()
            .with_link(
                Rel::parse(names::SELF),
                Link::new(format!("/{}/discover", self.ps())),
            )
            .with_link(
                Rel::parse(names::ANON_APPLICATIONS),
                Link::new("/ucwa/psanon/v1/applications"),
            )
            .with_rel(self.rel(names::DISCOVER));
        self.body(StatusCode::OK, &resource)
    }
}
