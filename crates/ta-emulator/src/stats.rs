//! Counters, readable in-process and at `GET /_emulator/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The emulator's routes, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Route {
    /// `GET /platformservice/discover`.
    Discovery,
    /// `POST /{tenant}/oauth2/v2.0/token` and `/oauth2/token`.
    AadToken,
    /// `GET …/v1/applications`.
    Applications,
    /// `GET …/v1/applications/{id}`.
    Application,
    /// `POST …/anonApplicationTokens`.
    Mint,
    /// `GET /platformservice/discover?anonymousContext=…`.
    AnonymousDiscovery,
    /// `OPTIONS` preflight of the anonymous discovery.
    Preflight,
    /// `GET /_emulator/stats`.
    Stats,
    /// The widget's anonymous application: created, signed out.
    UcwaApplication,
    /// The widget's event channel.
    UcwaEvents,
    /// The widget's chat calls (start, send, typing, stop, leave).
    UcwaMessaging,
    /// The SA's chat calls.
    ChatCall,
    /// The identity provider's keys document.
    Keys,
    /// The emulator's controls (callback URL, key rotation).
    Control,
    /// Anything else.
    NotFound,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: Mutex<BTreeMap<(Route, u16), u64>>,
    pub(crate) aad_tokens_issued: AtomicU64,
    pub(crate) psat_tokens_minted: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) tls_handshakes: AtomicU64,
    faults: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub(crate) fn count_request(&self, route: Route, status: u16) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((route, status)).or_default() += 1;
        }
    }

    pub(crate) fn count_fault(&self, name: &str) {
        if let Ok(mut map) = self.faults.lock() {
            *map.entry(name.to_owned()).or_default() += 1;
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, chat: ChatStats, network_round_trips: u64) -> StatsSnapshot {
        let requests = self
            .requests
            .lock()
            .map(|map| {
                map.iter()
                    .map(|(&(route, status), &count)| RequestCount {
                        route,
                        status,
                        count,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let faults = self.faults.lock().map(|m| m.clone()).unwrap_or_default();
        StatsSnapshot {
            requests,
            aad_tokens_issued: self.aad_tokens_issued.load(Ordering::Relaxed),
            psat_tokens_minted: self.psat_tokens_minted.load(Ordering::Relaxed),
            connections_accepted: self.connections_accepted.load(Ordering::Relaxed),
            tls_handshakes: self.tls_handshakes.load(Ordering::Relaxed),
            faults_fired: faults,
            chat,
            network_round_trips,
        }
    }
}

/// The chat world's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatStats {
    /// The SA's chat calls the platform accepted, in order
    /// (`startAdhocMeeting`, `acceptAndBridge`, …).
    pub calls: Vec<String>,
    /// Callback requests sent to the SA, retries included (each crosses
    /// the network distance once).
    pub callback_attempts: u64,
    /// Callbacks the SA answered with a 2xx.
    pub callbacks_delivered: u64,
    /// Callbacks the SA answered with another status.
    pub callbacks_refused: u64,
    /// Callback deliveries that got no answer (or had nowhere to go).
    pub callbacks_failed: u64,
    /// Conversations (the visitors' and the meetings) started.
    pub conversations_started: u64,
    /// Conversations ended.
    pub conversations_ended: u64,
    /// Conversations open now.
    pub conversations_open: u64,
    /// Anonymous applications alive now.
    pub applications: u64,
    /// How each conversation ended (`visitor:stopped`, `meeting:terminated`,
    /// …), in order.
    pub ended: Vec<String>,
    /// Messages the visitor was sent (the SA's and the agents').
    pub messages_to_visitor: u64,
    /// Messages the visitor sent.
    pub messages_from_visitor: u64,
    /// Typing notices the visitor sent.
    pub visitor_typing: u64,
    /// Messages to the visitor not fetched in time.
    pub undelivered_messages: u64,
    /// Agents who joined a meeting.
    pub agents_joined: u64,
}

/// Requests of one route answered with one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestCount {
    /// The route.
    pub route: Route,
    /// The status answered; 0 when the connection was closed without an
    /// answer (the `close_before_response` fault).
    pub status: u16,
    /// How many.
    pub count: u64,
}

/// The counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Requests per route and status.
    pub requests: Vec<RequestCount>,
    /// AAD access tokens issued.
    pub aad_tokens_issued: u64,
    /// psat tokens minted.
    pub psat_tokens_minted: u64,
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// Faults fired, by name.
    pub faults_fired: BTreeMap<String, u64>,
    /// The chat world.
    #[serde(default)]
    pub chat: ChatStats,
    /// Round trips of the [network distance](crate::NetworkDistance)
    /// begun: one per request, one or two per new connection, one per chat
    /// callback attempt (none while the distance is zero).
    #[serde(default)]
    pub network_round_trips: u64,
}

impl StatsSnapshot {
    /// Requests of `route`, whatever the status.
    pub fn requests(&self, route: Route) -> u64 {
        self.requests
            .iter()
            .filter(|c| c.route == route)
            .map(|c| c.count)
            .sum()
    }

    /// Requests of `route` answered with `status`.
    pub fn requests_with_status(&self, route: Route, status: u16) -> u64 {
        self.requests
            .iter()
            .filter(|c| c.route == route && c.status == status)
            .map(|c| c.count)
            .sum()
    }

    /// All requests.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().map(|c| c.count).sum()
    }
}
