//! The routing policy: what the SA does with an incoming chat.

use async_trait::async_trait;
use ta_protocol::chat::{IncomingChat, Plan};

/// What to do with one chat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Routing {
    /// Accept it: the meeting, the bridge, these agents and texts.
    Accept(Plan),
    /// Refuse it (the visitor's invitation is declined).
    Decline,
}

/// Decides what to do with each incoming chat: a queue, a CRM look-up, a
/// rota. Called once per chat, before anything is sent upstream; a router
/// that takes longer than the chat's operation timeout is taken as a
/// decline.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ChatRouter: Send + Sync + std::fmt::Debug {
    /// The routing of `chat`.
    async fn route(&self, chat: &IncomingChat) -> Routing;
}

/// The same plan for every chat.
#[derive(Debug, Clone)]
pub struct StaticRouter {
    plan: Plan,
}

impl StaticRouter {
    /// Accepts every chat with `plan`.
    pub fn new(plan: Plan) -> Self {
        Self { plan }
    }
}

#[async_trait]
impl ChatRouter for StaticRouter {
    async fn route(&self, _chat: &IncomingChat) -> Routing {
        Routing::Accept(self.plan.clone())
    }
}
