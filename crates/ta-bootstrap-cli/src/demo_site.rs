//! The demo site `serve --emulator` serves on its own origins: a chat
//! widget page (vanilla HTML/JS/CSS, shipped in the binary) built on the
//! widget's token and chat clients, which it loads from the widget-token
//! service (`/v1/client.js`, `/v1/chat.js`). On each token the page
//! performs the chat client's anonymous discovery against the API (the
//! emulator's plain-http widget side) and shows the session counting down;
//! the client renews it. Its chat panel talks with the help desk (named in
//! the page as a `<meta>` element): the visitor types, the agents answer.
//!
//! The page never shows the token in full and never logs it. The service's
//! token URL is written into the page as a `<meta>` element (escaped), so
//! the page runs no inline script. Its Content-Security-Policy admits
//! exactly what it needs: scripts from its own origin and the service's
//! (the client module), styles and images from its own, and connections to
//! the service and to the API's widget-facing origin (`https:` when that is
//! not known).
//!
//! | path | content |
//! |---|---|
//! | `/` (also `/index.html`) | the page |
//! | `/widget.js` | the widget's script |
//! | `/chat-panel.js` | its chat panel |
//! | `/style.css` | its style sheet |
//! | `/favicon.ico` | 204, so that browsers log no 404 |
//!
//! Every answer carries `Cache-Control: no-store`,
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("demo_site/index.html");
const WIDGET_JS: &str = include_str!("demo_site/widget.js");
const CHAT_PANEL_JS: &str = include_str!("demo_site/chat-panel.js");
const STYLE_CSS: &str = include_str!("demo_site/style.css");

/// The path the page posts to, under the service's base URL.
const TOKEN_PATH: &str = "/v1/widget-token";

/// One demo site: the page and its script, pointed at a widget-token
/// service.
#[derive(Debug, Clone)]
pub(crate) struct DemoSite {
    service_url: String,
    api_origin: Option<String>,
    helpdesk: String,
    note: String,
    title: String,
}

impl DemoSite {
    /// A site whose widget calls the service at `service_url` (its base,
    /// such as `http://127.0.0.1:8080`; the page posts to
    /// `{service_url}/v1/widget-token`).
    pub(crate) fn new(service_url: impl Into<String>) -> Self {
        Self {
            service_url: service_url.into(),
            api_origin: None,
            helpdesk: String::new(),
            note: String::new(),
            title: "Chat widget demo".to_owned(),
        }
    }

    /// The origin the widget calls for its anonymous discovery (the
    /// emulator's widget-facing side): the page may connect there, and
    /// nowhere else but the service.
    #[must_use]
    pub(crate) fn with_api_origin(mut self, origin: impl Into<String>) -> Self {
        self.api_origin = Some(origin.into());
        self
    }

    /// The help desk's SIP URI, which the page's chat invites (no chat
    /// without it).
    #[must_use]
    pub(crate) fn with_helpdesk(mut self, uri: impl Into<String>) -> Self {
        self.helpdesk = uri.into();
        self
    }

    /// A line shown at the top of the page (for example, "this origin is
    /// not on the allowlist").
    #[must_use]
    pub(crate) fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// The URL the page posts to: the service's base URL (trailing slashes
    /// removed) followed by `/v1/widget-token`.
    pub(crate) fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.service_url.trim_end_matches('/'))
    }

    /// The page's Content-Security-Policy: scripts from the page's origin
    /// and the service's (the client module), styles and images from the
    /// page's own, no inline script, and connections to the service and to
    /// the API's widget-facing origin (`https:` when it is not known: its
    /// host then comes with the token).
    pub(crate) fn content_security_policy(&self) -> String {
        let service = origin_of(&self.service_url)
            .map(|origin| format!(" {origin}"))
            .unwrap_or_default();
        let api = self
            .api_origin
            .as_deref()
            .and_then(origin_of)
            .unwrap_or_else(|| "https:".to_owned());
        format!(
            "default-src 'none'; script-src 'self'{service}; style-src 'self'; img-src 'self'; \
             connect-src{service} {api}; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    }

    /// The page, with the token URL, the title and the note filled in.
    fn page(&self) -> String {
        let note_hidden = if self.note.trim().is_empty() {
            " hidden"
        } else {
            ""
        };
        INDEX_HTML
            .replace("{{TOKEN_URL}}", &escape_html(&self.token_url()))
            .replace("{{HELPDESK}}", &escape_html(&self.helpdesk))
            .replace("{{TITLE}}", &escape_html(&self.title))
            .replace("{{NOTE_HIDDEN}}", note_hidden)
            .replace("{{NOTE}}", &escape_html(&self.note))
    }

    /// The routes of the site.
    pub(crate) fn router(&self) -> Router {
        let csp = HeaderValue::from_str(&self.content_security_policy())
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        let page: Arc<str> = Arc::from(self.page());
        let index = {
            let page = Arc::clone(&page);
            let csp = csp.clone();
            move || {
                let page = Arc::clone(&page);
                let csp = csp.clone();
                async move { asset("text/html; charset=utf-8", page.to_string(), Some(csp)) }
            }
        };
        Router::new()
            .route("/", get(index.clone()))
            .route("/index.html", get(index))
            .route(
                "/widget.js",
                get(|| async { asset("text/javascript; charset=utf-8", WIDGET_JS, None) }),
            )
            .route(
                "/chat-panel.js",
                get(|| async { asset("text/javascript; charset=utf-8", CHAT_PANEL_JS, None) }),
            )
            .route(
                "/style.css",
                get(|| async { asset("text/css; charset=utf-8", STYLE_CSS, None) }),
            )
            .route(
                "/favicon.ico",
                get(|| async { with_common_headers(StatusCode::NO_CONTENT.into_response()) }),
            )
            .fallback(|| async {
                with_common_headers(
                    (
                        StatusCode::NOT_FOUND,
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/plain; charset=utf-8"),
                        )],
                        "not found\n",
                    )
                        .into_response(),
                )
            })
    }
}

/// An asset with its type, the common headers and, for the page, its CSP.
fn asset(
    content_type: &'static str,
    body: impl IntoResponse,
    csp: Option<HeaderValue>,
) -> Response {
    let mut response = with_common_headers(
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response(),
    );
    if let Some(csp) = csp {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

fn with_common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The serialized origin of an `http` or `https` URL.
fn origin_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .map(|url| url.origin())
        .filter(url::Origin::is_tuple)
        .map(|origin| origin.ascii_serialization())
}

/// Escapes text for an HTML text node or a quoted attribute value.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use tower::ServiceExt as _;

    async fn get(site: &DemoSite, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = site
            .router()
            .oneshot(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn page_carries_the_escaped_token_url_and_note() {
        let site = DemoSite::new("http://127.0.0.1:8080/")
            .with_note("a <b> & \"c\"")
            .with_helpdesk("sip:help\"desk@contoso.com");
        let (status, headers, body) = get(&site, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(r#"content="http://127.0.0.1:8080/v1/widget-token""#));
        assert!(
            body.contains(r#"<meta name="ta-helpdesk" content="sip:help&quot;desk@contoso.com">"#),
            "{body}"
        );
        assert!(body.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(!body.contains("{{"), "a placeholder is left: {body}");
        assert!(!body.contains("<script>"), "no inline script");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self' http://127.0.0.1:8080;"),
            "{csp}"
        );
        assert!(
            csp.contains("connect-src http://127.0.0.1:8080 https:;"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(body.contains(r#"<script type="module" src="/widget.js"></script>"#));
        // With the API's widget-facing origin known, exactly that.
        let site = DemoSite::new("http://127.0.0.1:8080").with_api_origin("http://127.0.0.1:9000/");
        let csp = site.content_security_policy();
        assert!(
            csp.contains("connect-src http://127.0.0.1:8080 http://127.0.0.1:9000;"),
            "{csp}"
        );
        assert!(!csp.contains("https:"), "{csp}");
    }

    #[tokio::test]
    async fn a_hostile_service_url_cannot_break_out() {
        let site = DemoSite::new("http://x\"><script>alert(1)</script>; script-src *");
        let (_, headers, body) = get(&site, "/").await;
        assert!(!body.contains("<script>alert"));
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(!csp.contains("script-src *"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("connect-src https:;"), "{csp}");
    }

    #[tokio::test]
    async fn empty_note_is_hidden() {
        let (_, _, body) = get(&DemoSite::new("http://127.0.0.1:1"), "/").await;
        assert!(body.contains(r#"id="note" hidden"#), "{body}");
    }

    #[tokio::test]
    async fn assets_and_unknown_paths() {
        let site = DemoSite::new("http://127.0.0.1:8080");
        let (status, headers, widget) = get(&site, "/widget.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(widget.contains("anonApplications"));
        assert!(
            widget.contains("/v1/client.js"),
            "it loads the client from the service"
        );
        let (status, headers, panel) = get(&site, "/chat-panel.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(
            panel.contains("/v1/chat.js") && panel.contains("tokens: this.tokens"),
            "the chat client from the service, on the page's token client"
        );
        for body in [&widget, &panel] {
            for own_logic in [
                "setTimeout(connect",
                "renewAtMs",
                "Retry-After",
                "retry-after",
                "ack=",
                "events?",
            ] {
                assert!(
                    !body.contains(own_logic),
                    "renewal or polling logic of its own: {own_logic}"
                );
            }
            assert!(!body.contains("console."), "the widget logs nothing");
            assert!(!body.contains("innerHTML"), "the widget writes text only");
        }
        let (status, headers, _) = get(&site, "/style.css").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(get(&site, "/favicon.ico").await.0, StatusCode::NO_CONTENT);
        let (status, headers, _) = get(&site, "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }
}
