//! Readiness and warm-up: `/healthz`, `/readyz`, `/metrics`, and the loop
//! that keeps the caches warm so that no widget waits for AAD.

use super::*;

/// Whether the caches are warm, and why not.
#[derive(Debug, Clone, Default)]
pub(super) struct Readiness {
    pub(super) last_error: Option<String>,
    /// The last failed mint while the caches were cold, and its answer:
    /// requests within [`FAILURE_HOLD`] get that answer without asking
    /// upstream again (a wrong secret must not turn every widget request
    /// into an AAD request).
    pub(super) last_failure: Option<(std::time::Instant, StatusCode, &'static str)>,
}

/// How long a failure seen while the caches are cold is answered from
/// memory.
pub(super) const FAILURE_HOLD: Duration = Duration::from_secs(2);

pub(super) async fn healthz() -> &'static str {
    "ok"
}

pub(super) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(chat) = shared.chat.get() {
        let open = i64::try_from(chat.switchboard.open_chats()).unwrap_or(i64::MAX);
        shared.metrics.chat.open.set(open);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

pub(super) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.bootstrapper.is_warm() {
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({"ready": true})),
        )
            .into_response();
    }
    // Only the kind of failure: the details are in the service's logs.
    let reason = shared
        .readiness
        .lock()
        .ok()
        .and_then(|r| r.last_error.clone())
        .unwrap_or_else(|| "warming_up".to_owned());
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"ready": false, "reason": reason})),
    )
        .into_response()
}

impl WidgetService {
    /// Makes the warm-up loop ([`keep_warm`](Self::keep_warm)) try again now
    /// rather than after its backoff: after a credential was replaced, say.
    pub fn retry_warm_up_now(&self) {
        if let Ok(mut readiness) = self.shared.readiness.lock() {
            readiness.last_failure = None;
        }
        self.shared.wake.notify_one();
    }

    /// Keeps the caches warm ([`Bootstrapper::keep_warm`]: warms up at
    /// once, retries with backoff while that fails, renews the AAD token
    /// and the capabilities ahead of their expiry), so that no widget
    /// request waits for AAD, discovery or capabilities; `/readyz` tells
    /// the last failure's kind. Runs until dropped. Run this one, not also
    /// the bootstrapper's own loop (which would only warm up twice).
    ///
    /// [`Bootstrapper::keep_warm`]: ta_bootstrap::Bootstrapper::keep_warm
    pub async fn keep_warm(&self) {
        let shared = &self.shared;
        shared
            .bootstrapper
            .keep_warm_with(&shared.wake, |outcome| {
                if let Ok(mut readiness) = shared.readiness.lock() {
                    match outcome {
                        Ok(()) => {
                            readiness.last_error = None;
                            readiness.last_failure = None;
                        }
                        Err(failure) => {
                            readiness.last_error =
                                Some(format!("upstream_{}", failure.kind().code()));
                        }
                    }
                }
                // Forget clients whose rate-limit state is back to full.
                shared.per_client.retain_recent();
                if outcome.is_ok() {
                    shared.per_client.shrink_to_fit();
                }
            })
            .await;
    }
}
