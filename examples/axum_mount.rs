//! The widget-token service mounted in an existing axum app, beside the
//! app's own routes: `WidgetService::router()` is an ordinary `Router`.
//! The app here serves `/` and `/api/status` itself, and the service's
//! `POST /v1/widget-token` (with its CORS, rate limits and metrics) next to
//! them, over `axum::serve`.
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
use ta_widget_service::{Metrics, ServiceConfig, WidgetService};

/// The app that was there before: its own routes.
fn existing_app() -> Router {
    Router::new()
        .route("/", get(|| async { "the shop's own home page" }))
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
    let allowlist = vec![Origin::parse(
        "https://shop.example",
        OriginPolicy::default(),
    )?];
    let service = WidgetService::new(bootstrapper, ServiceConfig::new(allowlist), metrics);
    let app = existing_app().merge(service.router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        // The rate limits key on the client address: serve with it.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });

    // A browser's view: the app's routes, and a widget token for the shop.
    let client = HyperTransport::builder().build()?;
    let call = |method: http::Method, path: &str, origin: Option<&str>| {
        let mut request = http::Request::new(Bytes::new());
        *request.method_mut() = method;
        *request.uri_mut() = format!("{base}{path}").parse().unwrap_or_default();
        if let Some(origin) = origin {
            if let Ok(value) = http::HeaderValue::from_str(origin) {
                request.headers_mut().insert(http::header::ORIGIN, value);
            }
        }
        client.send(request)
    };
    let home = call(http::Method::GET, "/", None).await?;
    println!(
        "GET / → {} {:?}",
        home.status(),
        String::from_utf8_lossy(home.body())
    );
    let status = call(http::Method::GET, "/api/status", None).await?;
    println!("GET /api/status → {}", status.status());
    let minted = call(
        http::Method::POST,
        "/v1/widget-token",
        Some("https://shop.example"),
    )
    .await?;
    // The token itself is never printed.
    let answer: serde_json::Value = serde_json::from_slice(minted.body())?;
    println!(
        "POST /v1/widget-token from https://shop.example → {}, expires in {} s, CORS {:?}",
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
    )
    .await?;
    println!(
        "POST /v1/widget-token from another origin → {}",
        refused.status()
    );
    if home.status() != 200
        || status.status() != 200
        || minted.status() != 200
        || refused.status() != 403
    {
        return Err("the app and the service did not answer as expected".into());
    }
    Ok(())
}
