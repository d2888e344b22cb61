//! The widget's JavaScript modules (`clients/js/`), served by the service a
//! page talks to, so that the page loads them from there:
//!
//! | path | module |
//! |---|---|
//! | `GET /v1/client.js` | the token client (`widget-client.js`) |
//! | `GET /v1/chat.js` | the chat client (`chat-client.js`) |
//!
//! (`import('https://sa.example/v1/client.js')`). Cacheable, with a strong
//! `ETag` per module (a conditional request gets 304); CORS for allowlisted
//! origins comes from the router's layer, as for the token (a module script
//! is fetched in CORS mode).

use super::*;

/// A module as built into the service, with its entity tag.
pub(super) struct Module {
    pub(super) source: &'static str,
    hash: u64,
}

impl Module {
    const fn new(source: &'static str) -> Self {
        Self {
            source,
            hash: fnv1a(source),
        }
    }

    /// The module's entity tag.
    pub(super) fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }
}

/// The token client.
pub(super) static CLIENT: Module =
    Module::new(include_str!("../../../../clients/js/widget-client.js"));
/// The chat client.
pub(super) static CHAT: Module = Module::new(include_str!("../../../../clients/js/chat-client.js"));

/// How long browsers and caches may keep a module without asking again.
const MAX_AGE_SECS: u32 = 300;

/// 64-bit FNV-1a of `text`, computed when the service is built.
const fn fnv1a(text: &str) -> u64 {
    let mut rest = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    while let [byte, tail @ ..] = rest {
        // `as` widens a byte; const code has no `From`.
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        rest = tail;
    }
    hash
}

/// Whether an `If-None-Match` value names `tag` (or is `*`).
fn matches(if_none_match: &str, tag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag)
}

/// `GET /v1/client.js`.
pub(super) async fn client_js(headers: HeaderMap) -> Response {
    serve(&CLIENT, &headers)
}

/// `GET /v1/chat.js`.
pub(super) async fn chat_js(headers: HeaderMap) -> Response {
    serve(&CHAT, &headers)
}

fn serve(module: &Module, headers: &HeaderMap) -> Response {
    let tag = module.etag();
    let common = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECS}"))
                .unwrap_or(HeaderValue::from_static("no-cache")),
        ),
        (
            header::ETAG,
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"0\"")),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches(v, &tag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        module.source,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let tag = CLIENT.etag();
        assert!(matches(&tag, &tag));
        assert!(matches(&format!("\"other\", W/{tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"other\"", &tag));
        assert_eq!(tag.len(), 18);
    }

    #[test]
    fn each_module_has_its_own_tag() {
        assert_ne!(CLIENT.etag(), CHAT.etag());
        assert!(!matches(&CLIENT.etag(), &CHAT.etag()));
    }
}
