//! The SA's side of the customer chat, sans-IO.
//!
//! Once the widget has its token, the visitor's chat reaches the SA as
//! callbacks (the platform's webhooks). For each chat the SA starts an ad
//! hoc meeting, bridges the visitor's conversation into it, lets the
//! agents' messages through, invites the agents, welcomes the visitor, and
//! ends it all when someone leaves:
//!
//! 1. [`read_callback`] reads a callback's body into [`Fact`]s, its links
//!    resolved against the callback's `baseuri`.
//! 2. A [`Fact::Invited`] is a new chat: a routing policy (the driver's)
//!    answers with a [`Plan`], and [`Bridge::accept`] starts it (or
//!    [`Bridge::decline`] refuses it).
//! 3. Each [`Bridge`] turns later facts into [`ChatCall`]s, which
//!    [`Flow::chat_call`](crate::Flow::chat_call) sends with the AAD
//!    token, and tells its driver what happened as [`Notice`]s.
//!
//! Nothing here reads a clock or a socket: time is passed in, and the
//! chat's id ([`ChatId`]) is made by the driver.
//!
//! The callback's *authentication* (an RS256 token checked against the
//! identity provider's keys) is the receiving server's job, not this
//! crate's: it needs a signature library this crate does not depend on.

mod apply;
mod bridge;
mod calls;
mod ending;
mod facts;
mod plan;
mod read;

pub use bridge::{Bridge, CallId, Phase};
pub use calls::{CallFailure, ChatCall, ChatCallKind, TEXT_UTF8};
pub use facts::{Callback, CallbackError, ConversationKey, Fact, IncomingChat};
pub use plan::{Agent, ChatId, EndedBy, InvalidChatId, MessageFrom, Notice, Plan, Timers};
pub use read::read_callback;
