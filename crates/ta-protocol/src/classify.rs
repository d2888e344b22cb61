//! Sorting a transport's failure into a [`TransportError`]: the error-chain
//! walk every transport over a TLS stack needs, written once.
//!
//! HTTP stacks wrap their causes several layers deep, and tokio-rustls hides
//! a rustls error inside an `io::Error` whose `source()` skips it. An
//! [`ErrorChain`] walks every layer (looking inside `io::Error`s), so a
//! transport can ask whether a rustls error, an `io::ErrorKind` or a
//! timeout is anywhere below, and [`classify`] turns that into the kind the
//! retry policy reads:
//!
//! | phase | TLS below | timed out | otherwise | may have been sent |
//! |---|---|---|---|---|
//! | [`FailurePhase::Connecting`] | `Tls` | `Timeout` | `Connect` | no |
//! | [`FailurePhase::Exchanging`] | `Tls` | `Timeout` | `Io` | yes |
//!
//! ```
//! use ta_protocol::classify::{ErrorChain, FailurePhase, classify};
//! use ta_protocol::TransportErrorKind;
//!
//! let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
//! let error = classify(&refused, FailurePhase::Connecting, false);
//! assert_eq!(error.kind(), TransportErrorKind::Connect);
//! assert!(!error.may_have_been_sent());
//! // A transport over rustls asks for the TLS cause by its type:
//! // `ErrorChain::new(&e).find::<rustls::Error>().is_some()`.
//! assert!(ErrorChain::new(&refused).find::<std::fmt::Error>().is_none());
//! ```

use std::error::Error as StdError;
use std::io;

use crate::transport::{TransportError, TransportErrorKind};

/// When a transport failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailurePhase {
    /// Before the connection was up (DNS, TCP connect, TLS handshake): no
    /// byte of the request reached the server.
    Connecting,
    /// On a connection that was up: the request may have been written.
    Exchanging,
}

/// An error and every error below it, `io::Error` wrappers looked into.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a> {
    top: &'a (dyn StdError + 'static),
}

impl<'a> ErrorChain<'a> {
    /// The chain that starts at `error`.
    pub fn new(error: &'a (dyn StdError + 'static)) -> Self {
        Self { top: error }
    }

    /// Every error of the chain, `error` first. An `io::Error` that wraps
    /// another error is followed into it (its `source()` would skip it).
    pub fn iter(&self) -> impl Iterator<Item = &'a (dyn StdError + 'static)> + 'a {
        let mut current = Some(self.top);
        std::iter::from_fn(move || {
            let error = current?;
            current = match error
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
            {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => error.source(),
            };
            Some(error)
        })
        .take(64)
    }

    /// The first error of type `T` in the chain.
    pub fn find<T: StdError + 'static>(&self) -> Option<&'a T> {
        self.iter().find_map(|e| e.downcast_ref::<T>())
    }

    /// The kind of the first `io::Error` in the chain.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        self.find::<io::Error>().map(io::Error::kind)
    }

    /// Whether something in the chain timed out: an `io::Error` of kind
    /// `TimedOut`, or a message that says so (stacks that time out with an
    /// error of their own type).
    pub fn timed_out(&self) -> bool {
        self.iter().any(|e| {
            e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
                || {
                    let text = e.to_string();
                    text.contains("timed out")
                        || text.contains("timeout")
                        || text.contains("deadline has elapsed")
                }
        })
    }

    /// The messages of the whole chain, joined by `: ` (each layer once).
    pub fn text(&self) -> String {
        let mut text = String::new();
        for error in self.iter() {
            let message = error.to_string();
            if text.ends_with(&message) {
                continue;
            }
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        text
    }
}

/// A transport failure as the retry policy reads it (see the table above),
/// with the chain's text as its source, token-bearing URL parts masked. `tls` says whether a TLS error is
/// in the chain (for a rustls stack:
/// `ErrorChain::new(e).find::<rustls::Error>().is_some()`).
pub fn classify(
    error: &(dyn StdError + 'static),
    phase: FailurePhase,
    tls: bool,
) -> TransportError {
    let chain = ErrorChain::new(error);
    let kind = if tls {
        TransportErrorKind::Tls
    } else if chain.timed_out() {
        TransportErrorKind::Timeout
    } else {
        match phase {
            FailurePhase::Connecting => TransportErrorKind::Connect,
            FailurePhase::Exchanging => TransportErrorKind::Io,
        }
    };
    let sent = phase == FailurePhase::Exchanging;
    // A stack may quote the URL, and the anonymous discover link carries a
    // token: the text is masked.
    TransportError::new(kind, sent).with_source(Cause(crate::secret::redact(&chain.text())))
}

/// A cause kept as text (stacks' errors are rarely `Clone`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Cause(String);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("bad certificate")]
    struct FakeTls;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] io::Error);

    #[test]
    fn the_walk_looks_inside_io_errors() {
        // As tokio-rustls does: the TLS error inside an io::Error.
        let error = Outer(io::Error::new(io::ErrorKind::InvalidData, FakeTls));
        let chain = ErrorChain::new(&error);
        assert!(chain.find::<FakeTls>().is_some());
        assert_eq!(chain.io_kind(), Some(io::ErrorKind::InvalidData));
        assert_eq!(chain.text(), "client error (Connect): bad certificate");
        let tls = chain.find::<FakeTls>().is_some();
        let classified = classify(&error, FailurePhase::Connecting, tls);
        assert_eq!(classified.kind(), TransportErrorKind::Tls);
        assert!(!classified.may_have_been_sent());
    }

    #[test]
    fn a_token_in_a_stacks_message_is_masked() {
        #[derive(Debug, thiserror::Error)]
        #[error(
            "error sending request for url (https://api.example/discover?anonymousContext=psat%253deyJhbGciOi.eyJzdWIi.c2ln)"
        )]
        struct Quoting;
        let error = classify(&Quoting, FailurePhase::Exchanging, false);
        let text = error.to_string();
        assert!(!text.contains("eyJ"), "{text}");
        // A transport that attaches such an error itself is masked too.
        let own = TransportError::new(TransportErrorKind::Io, true).with_source(Quoting);
        assert!(!own.to_string().contains("eyJ"), "{own}");
    }

    #[test]
    fn phases_and_timeouts() {
        let reset = Outer(io::Error::from(io::ErrorKind::ConnectionReset));
        let e = classify(&reset, FailurePhase::Exchanging, false);
        assert_eq!(e.kind(), TransportErrorKind::Io);
        assert!(e.may_have_been_sent());
        let slow = Outer(io::Error::from(io::ErrorKind::TimedOut));
        let e = classify(&slow, FailurePhase::Connecting, false);
        assert_eq!(e.kind(), TransportErrorKind::Timeout);
        assert!(!e.may_have_been_sent());
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            classify(&refused, FailurePhase::Connecting, false).kind(),
            TransportErrorKind::Connect
        );
    }
}
