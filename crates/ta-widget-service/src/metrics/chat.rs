//! The chat's metrics: callbacks by outcome and refusals by reason, chats
//! started, open, bridged and ended (by whom), agents' join time, messages each
//! way, failed chat calls.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use ta_protocol::chat::Notice;

/// A label of one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Outcome {
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct By {
    pub(crate) by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct From {
    pub(crate) from: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Call {
    pub(crate) call: &'static str,
}

#[derive(Debug)]
pub(crate) struct ChatMetrics {
    pub(crate) callbacks: Family<Outcome, Counter>,
    pub(crate) refused: Family<Reason, Counter>,
    pub(crate) started: Counter,
    /// Set from the switchboard at each scrape.
    pub(crate) open: Gauge,
    pub(crate) bridged: Counter,
    pub(crate) ended: Family<By, Counter>,
    pub(crate) agent_join_seconds: Histogram,
    pub(crate) messages: Family<From, Counter>,
    pub(crate) calls_failed: Family<Call, Counter>,
}

impl ChatMetrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            callbacks: Family::default(),
            refused: Family::default(),
            started: Counter::default(),
            open: Gauge::default(),
            bridged: Counter::default(),
            ended: Family::default(),
            // 100 ms to ~7 min.
            agent_join_seconds: Histogram::new(exponential_buckets(0.1, 2.0, 12)),
            messages: Family::default(),
            calls_failed: Family::default(),
        };
        registry.register(
            "chat_callbacks",
            "Callbacks from the platform, by outcome",
            metrics.callbacks.clone(),
        );
        registry.register(
            "chat_callbacks_refused",
            "Callbacks refused before any work, by reason",
            metrics.refused.clone(),
        );
        registry.register(
            "chats_started",
            "Visitors' chats opened",
            metrics.started.clone(),
        );
        registry.register(
            "chats_open",
            "Chats open now (the switchboard's count at this scrape)",
            metrics.open.clone(),
        );
        registry.register(
            "chats_bridged",
            "Chats bridged into their meeting",
            metrics.bridged.clone(),
        );
        registry.register(
            "chats_ended",
            "Chats ended, by who or what ended them",
            metrics.ended.clone(),
        );
        registry.register(
            "chat_agent_join_seconds",
            "Time from an agent's invitation to joining",
            metrics.agent_join_seconds.clone(),
        );
        registry.register(
            "chat_messages",
            "Messages in chats, by sender (visitor, agent, service)",
            metrics.messages.clone(),
        );
        registry.register(
            "chat_calls_failed",
            "Chat calls to the platform that failed, by call",
            metrics.calls_failed.clone(),
        );
        metrics
    }

    pub(crate) fn notice(&self, notice: &Notice) {
        match notice {
            Notice::Bridged { .. } => {
                self.bridged.inc();
            }
            Notice::AgentJoined { after, .. } => {
                self.agent_join_seconds.observe(after.as_secs_f64())
            }
            Notice::Message { from } => {
                self.messages
                    .get_or_create(&From { from: from.label() })
                    .inc();
            }
            Notice::CallFailed { kind, .. } => {
                self.calls_failed
                    .get_or_create(&Call { call: kind.label() })
                    .inc();
            }
            Notice::Ended { by, .. } => {
                self.ended.get_or_create(&By { by: by.label() }).inc();
            }
            _ => {}
        }
    }
}
