//! The widget-token service over real HTTP, in front of the emulator: the
//! service on the accept loop `serve` runs, and requests to it.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use bytes::Bytes;
use ta_emulator::EmulatorConfig;
use ta_protocol::{OriginPolicy, Transport};
use ta_test_support::*;
use ta_widget_service::{Metrics, ServiceConfig, WidgetService};

pub struct Service {
    pub setup: Setup,
    pub service: WidgetService,
    pub addr: SocketAddr,
    pub client: ta_hyper::HyperTransport,
}

pub async fn service(config: EmulatorConfig) -> Service {
    service_with(config, |_| {}).await
}

pub async fn service_with(
    config: EmulatorConfig,
    tweak: impl FnOnce(&mut ServiceConfig),
) -> Service {
    service_built(config, tweak, |service| service).await
}

/// The service, configured by `tweak`, and then by `build` (a check before
/// the mint, say).
pub async fn service_built(
    config: EmulatorConfig,
    tweak: impl FnOnce(&mut ServiceConfig),
    build: impl FnOnce(WidgetService) -> WidgetService,
) -> Service {
    let metrics = std::sync::Arc::new(Metrics::new());
    let setup = setup_observed(config, std::sync::Arc::clone(&metrics) as _).await;
    service_over(setup, metrics, tweak, build).await
}

/// The service over `setup`'s bootstrapper (one built with its own clock,
/// say), reporting to `metrics`.
pub async fn service_over(
    setup: Setup,
    metrics: std::sync::Arc<Metrics>,
    tweak: impl FnOnce(&mut ServiceConfig),
    build: impl FnOnce(WidgetService) -> WidgetService,
) -> Service {
    let allowlist = WidgetService::allowlist(
        &[
            "https://contoso.com".to_owned(),
            "https://LITWARE.com:8443".to_owned(),
        ],
        OriginPolicy::default(),
    )
    .unwrap();
    let mut service_config = ServiceConfig::new(allowlist);
    service_config.max_body_bytes = 256;
    tweak(&mut service_config);
    let service = build(WidgetService::new(
        setup.bootstrapper.clone(),
        service_config,
        metrics,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = service.router();
    // The accept loop `serve` runs (bounded heads, ConnectInfo, drain).
    tokio::spawn(ta_widget_service::server::serve(
        listener,
        router,
        None,
        ta_widget_service::server::ServerLimits::default(),
        std::future::pending(),
    ));
    let client = ta_hyper::HyperTransport::builder().build().unwrap();
    Service {
        setup,
        service,
        addr,
        client,
    }
}

/// A widget token for `origin`, which must be answered 200.
pub async fn mint_for(s: &Service, origin: &str) -> http::Response<Bytes> {
    let response = call(s, "POST", "/v1/widget-token", &[("origin", origin)], "{}").await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
    response
}

pub async fn call(
    s: &Service,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<Bytes> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", s.addr));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    s.client
        .send(request.body(Bytes::from(body.to_owned())).unwrap())
        .await
        .unwrap()
}

/// Whether a `Vary` header names `Origin`.
pub fn varies_on_origin(response: &http::Response<Bytes>) -> bool {
    response
        .headers()
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
}

pub fn json(response: &http::Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap()
}

pub fn header<'a>(response: &'a http::Response<Bytes>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// A metric's value from the service's Prometheus text, by the start of its
/// line (name and labels); 0 when absent.
pub fn metric(s: &Service, line_start: &str) -> u64 {
    s.service
        .metrics()
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse::<u64>().ok())
        .unwrap_or(0)
}
