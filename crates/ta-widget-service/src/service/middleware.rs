//! The service's own middleware, as plain tower services: each calls the
//! service inside it directly, where `axum::middleware::from_fn` clones the
//! whole stack below it for every request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::warn;

use crate::metrics::{Metrics, RouteLabels};

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Removes an `x-request-id` the client sent: the id is the service's.
#[derive(Debug, Clone, Copy)]
pub(super) struct DropClientRequestIdLayer;

impl<S> Layer<S> for DropClientRequestIdLayer {
    type Service = DropClientRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DropClientRequestId(inner)
    }
}

#[derive(Debug, Clone)]
pub(super) struct DropClientRequestId<S>(S);

impl<S: Service<Request>> Service<Request> for DropClientRequestId<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        request.headers_mut().remove("x-request-id");
        self.0.call(request)
    }
}

/// Counts every answer by route and status.
#[derive(Debug, Clone)]
pub(super) struct CountLayer(pub(super) Arc<Metrics>);

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Count {
            inner,
            metrics: Arc::clone(&self.0),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Count<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Count<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = match request.uri().path() {
            "/v1/widget-token" if request.method() == Method::OPTIONS => "preflight",
            "/v1/widget-token" => "widget_token",
            "/v1/client.js" => "client_js",
            "/v1/chat.js" => "chat_js",
            "/healthz" => "healthz",
            "/readyz" => "readyz",
            "/metrics" => "metrics",
            "/v1/callback" => "callback",
            _ => "other",
        };
        let answer = self.inner.call(request);
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            let response = answer.await?;
            metrics
                .requests
                .get_or_create(&RouteLabels {
                    route,
                    status: response.status().as_u16(),
                })
                .inc();
            Ok(response)
        })
    }
}

/// The request timeout: past the limit, 504 `timeout` in the same JSON
/// shape as every other error (tower-http's timeout answers an empty
/// body).
#[derive(Debug, Clone, Copy)]
pub(super) struct DeadlineLayer(pub(super) Duration);

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<Request> for Deadline<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Read only if the deadline passes (a cheap clone).
        let request_id = request.headers().get("x-request-id").cloned();
        let limit = self.limit;
        let answer = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, answer).await {
                Ok(response) => response,
                Err(_) => {
                    warn!(limit = ?limit, "request timed out");
                    Ok(super::answers::error(
                        StatusCode::GATEWAY_TIMEOUT,
                        "timeout",
                        "the request took too long; retry shortly",
                        request_id
                            .as_ref()
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default(),
                    ))
                }
            }
        })
    }
}
