//! The hyper 1.x + hyper-rustls transport for [`ta_protocol`].
//!
//! This crate will implement [`ta_protocol::Transport`] over a pooled
//! `hyper-util` client with rustls (ring provider), HTTP/1.1 and HTTP/2 by
//! ALPN, connect/request/call timeouts and a response-body size limit. It is
//! part of the workspace layout from the start so that the direction of the
//! dependencies is fixed: `hal-model ← ta-protocol ← ta-hyper ← ta-bootstrap`.
//! It exports nothing yet.
