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

/// How often the warm-up loop looks at the caches once they are warm.
pub(super) const WARM_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// The shortest wait of the warm-up loop once the caches are warm.
pub(super) const MIN_WARM_WAIT: Duration = Duration::from_secs(1);

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

    /// Keeps the caches warm: warms up at once, retries with backoff (1 s
    /// doubling to 60 s) while that fails, then looks again every 30 s, and
    /// at the AAD token's or the capabilities' refresh-ahead time when that
    /// comes sooner ([`Bootstrapper::refresh_due`]), so that no widget
    /// request waits for AAD, discovery or capabilities. Runs until dropped.
    ///
    /// [`Bootstrapper::refresh_due`]: ta_bootstrap::Bootstrapper::refresh_due
    pub async fn keep_warm(&self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.shared.bootstrapper.warm_up().await {
                Ok(()) => {
                    if let Ok(mut readiness) = self.shared.readiness.lock() {
                        readiness.last_error = None;
                        readiness.last_failure = None;
                    }
                    backoff = Duration::from_secs(1);
                    // Forget clients whose rate-limit state is back to full.
                    self.shared.per_client.retain_recent();
                    self.shared.per_client.shrink_to_fit();
                    // The refresh-ahead time is on the bootstrapper's clock.
                    let mut wait = WARM_CHECK_INTERVAL;
                    if let Some(due) = self.shared.bootstrapper.refresh_due() {
                        let now = self.shared.bootstrapper.clock().now();
                        // At least a second: a refresh due now or in the
                        // past is under way in another caller, or its token
                        // has expired and the next warm-up fetches anew.
                        wait = wait.min(due.saturating_duration_since(now).max(MIN_WARM_WAIT));
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.shared.wake.notified() => {}
                    }
                }
                Err(failure) => {
                    warn!(error = %failure.report_line(), retry_in = ?backoff, "warm-up failed");
                    if let Ok(mut readiness) = self.shared.readiness.lock() {
                        readiness.last_error = Some(format!("upstream_{}", failure.kind().code()));
                    }
                    self.shared.per_client.retain_recent();
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.shared.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}
