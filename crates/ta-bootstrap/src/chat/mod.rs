//! The SA's side of the chat, driven: a [`Switchboard`] takes the
//! platform's callbacks (once the receiving server has authenticated
//! them), opens a chat for each visitor's invitation, asks a
//! [`ChatRouter`] what to do with it, and runs each chat's
//! [`Bridge`](ta_protocol::chat::Bridge) on its own task over the
//! bootstrapper's transport, AAD token and trusted hosts.
//!
//! The routing policy is the seam an SA developer plugs into: which agents
//! to invite, the welcome, what the visitor is told when no agent is free
//! or none joins in time ([`Plan`](ta_protocol::chat::Plan)), or whether to decline. A
//! [`StaticRouter`] invites the same agents every time.
//!
//! ```no_run
//! # async fn example(bootstrapper: ta_bootstrap::Bootstrapper, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ta_bootstrap::chat::{Delivery, StaticRouter, Switchboard, SwitchboardOptions};
//! use ta_protocol::chat::{Agent, Plan};
//!
//! let router = StaticRouter::new(Plan::new(vec![Agent::new("sip:anna@contoso.com", "Anna")]));
//! let switchboard = Switchboard::new(bootstrapper, Arc::new(router), SwitchboardOptions::default());
//! // In the callback handler, after the token was checked:
//! match switchboard.deliver(None, body)? {
//!     Delivery::Opened { context } => { /* answer 200 {"callbackContext": context} */ }
//!     _ => { /* answer 200 */ }
//! }
//! # Ok(()) }
//! ```

mod replica;
mod router;
mod switchboard;
mod task;

pub use replica::{InvalidReplicaName, ReplicaName};
#[cfg(feature = "mock")]
pub use router::MockChatRouter;
pub use router::{ChatRouter, Routing, StaticRouter};
pub use switchboard::{Delivery, Switchboard, SwitchboardOptions};
