//! The accept loop's metrics: connections open now, refused at accept (by
//! reason) and dropped once open (by reason).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    pub(crate) reason: &'static str,
}

/// The connection metrics; cheap to clone (each field is a shared handle).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionMetrics {
    pub(crate) open: Gauge,
    pub(crate) refused: Family<Reason, Counter>,
    pub(crate) dropped: Family<Reason, Counter>,
    pub(crate) accept_errors: Counter,
}

impl ConnectionMetrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "connections_open",
            "Connections open now",
            metrics.open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept, by reason (per_client, full)",
            metrics.refused.clone(),
        );
        registry.register(
            "connections_dropped",
            "Open connections closed by the service, by reason (no_request_head: none within the head timeout; evicted: the oldest unfinished or idle one, for a new connection at the cap)",
            metrics.dropped.clone(),
        );
        registry.register(
            "accept_errors",
            "Accepts that failed (out of file descriptors, say)",
            metrics.accept_errors.clone(),
        );
        metrics
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&Reason { reason }).inc();
    }

    pub(crate) fn dropped(&self, reason: &'static str) {
        self.dropped.get_or_create(&Reason { reason }).inc();
    }
}
