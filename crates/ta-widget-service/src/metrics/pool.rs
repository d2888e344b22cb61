//! The token pool's metrics: hits, misses, tokens thrown away unused (by
//! reason), refills (by outcome) and the depth per origin.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::OutcomeLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OriginLabels {
    pub(crate) origin: String,
}

/// The pool metrics; cheap to clone (each field is a shared handle).
#[derive(Debug, Clone, Default)]
pub(crate) struct PoolMetrics {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    discarded: Family<Reason, Counter>,
    refills: Family<OutcomeLabels, Counter>,
    depth: Family<OriginLabels, Gauge>,
}

impl PoolMetrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "pool_hits",
            "Widget tokens handed out from the pool",
            metrics.hits.clone(),
        );
        registry.register(
            "pool_misses",
            "Widget-token requests the pool had no token for (a direct mint followed)",
            metrics.misses.clone(),
        );
        registry.register(
            "pool_discarded",
            "Pooled tokens thrown away unused, by reason (age, origin_removed, reload, short_life)",
            metrics.discarded.clone(),
        );
        registry.register(
            "pool_refills",
            "Mints for the pool, by outcome",
            metrics.refills.clone(),
        );
        registry.register(
            "pool_depth",
            "Tokens in the pool now, by origin",
            metrics.depth.clone(),
        );
        metrics
    }

    pub(crate) fn discarded(&self, reason: &'static str, count: usize) {
        if count > 0 {
            let count = u64::try_from(count).unwrap_or(u64::MAX);
            self.discarded
                .get_or_create(&Reason { reason })
                .inc_by(count);
        }
    }

    pub(crate) fn refill(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.refills.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn depth(&self, origin: &str, depth: usize) {
        let labels = OriginLabels {
            origin: origin.to_owned(),
        };
        self.depth
            .get_or_create(&labels)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// An origin left the allowlist: its gauge goes.
    pub(crate) fn forget(&self, origin: &str) {
        self.depth.remove(&OriginLabels {
            origin: origin.to_owned(),
        });
    }
}
