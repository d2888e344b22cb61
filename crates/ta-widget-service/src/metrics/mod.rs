//! Prometheus metrics of the orchestrator and the widget-token service.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use ta_bootstrap::{CacheKind, Observer};
use ta_protocol::Step;

mod chat;
mod connections;
mod pool;

pub(crate) use chat::{ChatMetrics, Outcome as ChatOutcome, Reason as RefusalReason};
pub(crate) use connections::ConnectionMetrics;
pub(crate) use pool::PoolMetrics;

/// A request of the service, by route and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: &'static str,
    pub(crate) status: u16,
}

/// An upstream request, by step and status (0: no answer).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UpstreamLabels {
    pub(crate) step: &'static str,
    pub(crate) status: u16,
}

/// An outcome: `ok` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: &'static str,
}

/// A cache look-up.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    pub(crate) cache: &'static str,
    pub(crate) result: &'static str,
}

/// A refusal by the operator's check before the mint, by its code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CodeLabels {
    pub(crate) code: String,
}

/// A rate-limit rejection, by scope (`client` or `global`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    pub(crate) scope: &'static str,
}

/// The metrics, and the registry they are exported from.
///
/// Give one `Arc<Metrics>` to the [`WidgetService`](crate::WidgetService),
/// and as their [`Observer`] to the [`ta_bootstrap::Bootstrapper`] and the
/// [`ta_bootstrap::ClientCredentialsProvider`];
/// [`Metrics::encode`] writes the Prometheus text format.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub(crate) requests: Family<RouteLabels, Counter>,
    pub(crate) tokens_served: Counter,
    pub(crate) upstream: Family<UpstreamLabels, Counter>,
    pub(crate) aad_fetches: Family<OutcomeLabels, Counter>,
    pub(crate) cache: Family<CacheLabels, Counter>,
    pub(crate) rate_limited: Family<LimitLabels, Counter>,
    pub(crate) mint_check_refused: Family<CodeLabels, Counter>,
    /// The codes counted apart so far.
    mint_check_codes: Mutex<std::collections::HashSet<String>>,
    pub(crate) mint_seconds: Histogram,
    pub(crate) chat: ChatMetrics,
    pub(crate) connections: ConnectionMetrics,
    pub(crate) pool: PoolMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered under the `ta` prefix.
    pub fn new() -> Self {
        let requests = Family::<RouteLabels, Counter>::default();
        let tokens_served = Counter::default();
        let upstream = Family::<UpstreamLabels, Counter>::default();
        let aad_fetches = Family::<OutcomeLabels, Counter>::default();
        let cache = Family::<CacheLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        // 5 ms to ~20 s.
        let mint_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        let mut registry = Registry::with_prefix("ta");
        registry.register(
            "requests",
            "Requests served, by route and status",
            requests.clone(),
        );
        registry.register(
            "widget_tokens_served",
            "Widget tokens handed to browsers",
            tokens_served.clone(),
        );
        registry.register(
            "upstream_requests",
            "Requests to the API and to Azure AD, by step and status (0: no answer)",
            upstream.clone(),
        );
        registry.register(
            "aad_fetches",
            "Tokens fetched from Azure AD (retries of one fetch count once), by outcome",
            aad_fetches.clone(),
        );
        registry.register(
            "cache_lookups",
            "Cache look-ups, by cache and result",
            cache.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by scope",
            rate_limited.clone(),
        );
        registry.register(
            "mint_duration_seconds",
            "Time to mint a widget token, upstream included (successful mints)",
            mint_seconds.clone(),
        );
        let chat = ChatMetrics::new(&mut registry);
        let connections = ConnectionMetrics::new(&mut registry);
        let pool = PoolMetrics::new(&mut registry);
        let mint_check_refused = Family::<CodeLabels, Counter>::default();
        registry.register(
            "mint_check_refused",
            "Widget-token requests refused by the check before the mint, by code",
            mint_check_refused.clone(),
        );
        Self {
            chat,
            connections,
            pool,
            registry: Mutex::new(registry),
            requests,
            tokens_served,
            upstream,
            aad_fetches,
            cache,
            rate_limited,
            mint_check_refused,
            mint_check_codes: Mutex::default(),
            mint_seconds,
        }
    }

    /// Counts a refusal by the check before the mint, by the check's own
    /// code: the first 32 distinct codes (of at most 64 characters) are
    /// counted apart, any other as `other`.
    pub(crate) fn mint_check_refused(&self, code: &str) {
        let known = self.mint_check_codes.lock().is_ok_and(|mut codes| {
            codes.contains(code)
                || (code.len() <= 64 && codes.len() < 32 && codes.insert(code.to_owned()))
        });
        let code = if known { code } else { "other" };
        self.mint_check_refused
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }

    /// The Prometheus/OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

impl Observer for Metrics {
    fn upstream_request(&self, step: Step, status: Option<u16>) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                step: step.label(),
                status: status.unwrap_or(0),
            })
            .inc();
    }

    fn cache_lookup(&self, cache: CacheKind, hit: bool) {
        self.cache
            .get_or_create(&CacheLabels {
                cache: cache.label(),
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    fn aad_fetch(&self, ok: bool) {
        self.aad_fetches
            .get_or_create(&OutcomeLabels {
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    fn minted(&self, elapsed: Duration) {
        self.mint_seconds.observe(elapsed.as_secs_f64());
    }

    fn chat(&self, notice: &ta_protocol::chat::Notice) {
        self.chat.notice(notice);
    }
}
