//! The widget-token service mounted in an existing axum app, beside the
//! app's own routes: `WidgetService::router()` is an ordinary `Router`.
//! The app here serves `/` and `/api/status` itself, and the service's
//! `POST /v1/widget-token` (with its CORS, rate limits and metrics) next to
//! them, over `axum::serve`.
//!
//! The service checks a ticket before each mint (`SignedTicketCheck`): the
//! app's page carries one, signed for the shop's origin with a key the app
//! and the service share, so a script that forges `Origin` without a
//! ticket gets `403 ticket_required` and nothing is minted for it. (A real
//! site hands tickets out behind what it knows of the visitor: a session,
//! a CAPTCHA; a public page's ticket is as easy to fetch as `Origin` is to
//! forge.)
//!
//! ```sh
//! cargo run -p ta-examples --example axum_mount
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use ta_bootstrap::hyper::HyperTransport;
use ta_bootstrap::{Bootstrapper, Credential, Observer};
use ta_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ENDPOINT, Emulator};
use ta_protocol::aad::{ClientId, TokenEndpoint};
use ta_protocol::bytes::Bytes;
use ta_protocol::{ClientSecret, Config, Origin, OriginPolicy, Transport, http};
use ta_widget_service::mint_check::{SignedTicketCheck, sign_ticket};
use ta_widget_service::{Metrics, ServiceConfig, WidgetService};

/// The key the shop's backend and the service share (in production: a
/// random secret of at least 32 bytes, from a file).
const TICKET_KEY: &[u8] = b"the shop's ticket key, 32+ bytes";
const SHOP: &str = "https://shop.example";

/// The app that was there before: its own routes. Its home page now
/// carries a widget ticket for the shop's origin, valid five minutes.
fn existing_app() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                let expires = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    + 300;
                // A nonce of the backend's choosing (random in production).
                let ticket = sign_ticket(TICKET_KEY, SHOP, expires, "page-view-0001")
                    .unwrap_or_default();
                format!(r#"<meta name="widget-ticket" content="{ticket}"><p>the shop's own home page</p>"#)
            }),
        )
        .route("/api/status", get(|| async { "ok" }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let emulator = Emulator::start(ta_emulator::EmulatorConfig::default()).await?;
    let ca = emulator.ca_pem().ok_or("the emulator has no CA")?;
    let upstream: Arc<dyn Transport> = Arc::new(
        HyperTransport::builder()
            .add_root_certificates_pem(ca.as_bytes())?
            .build()?,
    );

    // The orchestrator and its AAD token provider, both reporting to the
    // service's Prometheus metrics (set once, for both).
    let metrics = Arc::new(Metrics::new());
    let config = Config::builder(&emulator.discover_url(), DEFAULT_ENDPOINT)
        .build()?
        .into_shared();
    let bootstrapper = Bootstrapper::with_client_credentials(
        config,
        upstream,
        TokenEndpoint::parse(&emulator.token_url(), false)?,
        ClientId::new(DEFAULT_CLIENT_ID)?,
        Credential::Secret(ClientSecret::new(DEFAULT_CLIENT_SECRET)),
    )
    .observer(Arc::clone(&metrics) as Arc<dyn Observer>)
    .build();

    // The service, merged into the existing app.
    let allowlist = vec![Origin::parse(SHOP, OriginPolicy::default())?];
    let service = WidgetService::new(bootstrapper, ServiceConfig::new(allowlist), metrics)
        .with_mint_check(SignedTicketCheck::new(TICKET_KEY)?);
    let app = existing_app().merge(service.router());
    // Keeps the AAD token and the capabilities renewed ahead of their
    // expiry, so that a widget waits for its own mint only.
    let warm = service.clone();
    tokio::spawn(async move { warm.keep_warm().await });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        // The rate limits key on the client address: serve with it.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });

    // A browser's view: the app's routes, and a widget token for the shop.
    let client = HyperTransport::builder().build()?;
    let call = |method: http::Method, path: &str, origin: Option<&str>, body: String| {
        let mut request = http::Request::new(Bytes::from(body));
        *request.method_mut() = method;
        *request.uri_mut() = format!("{base}{path}").parse().unwrap_or_default();
        if let Some(origin) = origin {
            if let Ok(value) = http::HeaderValue::from_str(origin) {
                request.headers_mut().insert(http::header::ORIGIN, value);
            }
        }
        client.send(request)
    };
    let home = call(http::Method::GET, "/", None, String::new()).await?;
    let page = String::from_utf8_lossy(home.body()).into_owned();
    let ticket = page
        .split("content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    println!(
        "GET / → {}, a page with a widget ticket of {} characters",
        home.status(),
        ticket.len()
    );
    let status = call(http::Method::GET, "/api/status", None, String::new()).await?;
    println!("GET /api/status → {}", status.status());
    let minted = call(
        http::Method::POST,
        "/v1/widget-token",
        Some(SHOP),
        serde_json::json!({ "ticket": ticket }).to_string(),
    )
    .await?;
    // The token itself is never printed.
    let answer: serde_json::Value = serde_json::from_slice(minted.body())?;
    println!(
        "POST /v1/widget-token from {SHOP} with the page's ticket → {}, expires in {} s, CORS {:?}",
        minted.status(),
        answer
            .get("expiresIn")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        minted
            .headers()
            .get(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    );
    let refused = call(
        http::Method::POST,
        "/v1/widget-token",
        Some("https://elsewhere.example"),
        String::new(),
    )
    .await?;
    println!(
        "POST /v1/widget-token from another origin → {}",
        refused.status()
    );
    // A script that forges the shop's Origin, with no ticket.
    let forged = call(
        http::Method::POST,
        "/v1/widget-token",
        Some(SHOP),
        "{}".to_owned(),
    )
    .await?;
    let why: serde_json::Value = serde_json::from_slice(forged.body())?;
    println!(
        "POST /v1/widget-token with a forged Origin and no ticket → {} {}",
        forged.status(),
        why.get("error")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    );
    if home.status() != 200
        || status.status() != 200
        || minted.status() != 200
        || refused.status() != 403
        || forged.status() != 403
        || why.get("error").and_then(serde_json::Value::as_str) != Some("ticket_required")
    {
        return Err("the app and the service did not answer as expected".into());
    }
    Ok(())
}
