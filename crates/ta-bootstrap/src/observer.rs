//! What the orchestrator reports as it works, for metrics of the user's
//! choosing.

use std::fmt::Debug;
use std::time::Duration;

use ta_protocol::Step;

/// A cache the orchestrator looks things up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheKind {
    /// The application's capabilities (discovery, applications, application).
    Capabilities,
    /// AAD access tokens, per audience.
    AadToken,
}

impl CacheKind {
    /// A stable, lower-case name, for a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Capabilities => "capabilities",
            Self::AadToken => "aad_token",
        }
    }
}

/// Told what the orchestrator does: each upstream request, each cache
/// look-up, each AAD fetch, each successful mint, and what each chat of a
/// [`Switchboard`](crate::chat::Switchboard) does. Every method has an
/// empty default, so an observer implements only what it counts.
///
/// Give one to [`BootstrapperBuilder::observer`](crate::BootstrapperBuilder::observer)
/// and [`ClientCredentialsProviderBuilder::observer`](crate::ClientCredentialsProviderBuilder::observer).
/// The methods are called on the request path: keep them cheap and never
/// block. The widget-token service's Prometheus metrics are one.
pub trait Observer: Send + Sync + Debug {
    /// A request of `step` was answered with `status`, or had no answer
    /// (`None`: a transport failure).
    fn upstream_request(&self, step: Step, status: Option<u16>) {
        let _ = (step, status);
    }

    /// A look-up in `cache` found a usable entry (`hit`) or not.
    fn cache_lookup(&self, cache: CacheKind, hit: bool) {
        let _ = (cache, hit);
    }

    /// A token fetch from Azure AD ended (its retries count as one fetch).
    fn aad_fetch(&self, ok: bool) {
        let _ = ok;
    }

    /// A widget token was minted, `elapsed` after the mint was asked for
    /// (upstream requests and any warm-up included).
    fn minted(&self, elapsed: Duration) {
        let _ = elapsed;
    }

    /// A chat run by a [`Switchboard`](crate::chat::Switchboard) moved on
    /// (bridged, an agent joined or left, a message, a failed call, its
    /// end).
    fn chat(&self, notice: &ta_protocol::chat::Notice) {
        let _ = notice;
    }
}
