//! The orchestrator of the Trusted Application API flow.
//!
//! This crate will drive [`ta_protocol`]'s state machines over a
//! [`ta_protocol::Transport`] (by default the one of `ta-hyper`), cache the
//! AAD token and the discovered capabilities, and carry the `ta-bootstrap`
//! command line and widget-token service. It exports nothing yet.
