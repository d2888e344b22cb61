//! A conformance kit for [`Transport`]s: run it against yours, with this
//! crate's servers as the peer, to check that it does what the protocol
//! relies on (the `conformance` feature).
//!
//! A transport follows no redirect, retries nothing, adds no credential and
//! no header but what HTTP needs, enforces its body limit, and sorts its
//! failures so that the retry policy can read them. The checks:
//!
//! | check | what it proves |
//! |---|---|
//! | `http1`, `http2` | it speaks HTTP/1.1 to a server that speaks only that, and HTTP/2 (by ALPN) to one that speaks only HTTP/2 |
//! | `post_body` | a POST's body goes out and the answer's comes back whole |
//! | `no_added_headers` | the server sees the request's headers as sent, plus `Host` and `Content-Length` at most, over both versions |
//! | `redirect_returned` | a 307 is returned, not followed |
//! | `body_limit` | a body at the limit is read whole; one byte more (announced, or streamed without a length) is `BodyTooLarge` |
//! | `untrusted_ca`, `name_mismatch` | a certificate from an unknown CA, or for another name, is `Tls` with `may_have_been_sent() == false` |
//! | `refused` | a refused connection is `Connect` with `may_have_been_sent() == false` |
//! | `timeout` | a server that never answers is `Timeout` |
//! | `reset_mid_body` | a connection reset in the middle of the body is a retryable failure that may have been sent |
//! | `relative_uri` | a request whose URI is not absolute is `InvalidRequest`, unsent |
//!
//! Build the transport under test to trust [`Peer::ca_pem`] (and no other
//! test CA), with a short timeout, and tell the kit its limits:
//!
//! ```no_run
//! # async fn example(transport: &dyn ta_protocol::Transport) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use ta_emulator::conformance::{Expectations, Peer};
//!
//! let peer = Peer::start().await?;
//! // ... build `transport` trusting `peer.ca_pem()`, with a 2 s timeout ...
//! let report = peer.check(transport, &Expectations::new(64 * 1024, Duration::from_secs(2))).await;
//! println!("{report}");
//! assert!(report.passed(), "{report}");
//! # Ok(()) }
//! ```

mod checks;
mod peer;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ta_protocol::Transport;

use crate::server::StartError;
use peer::Servers;

/// A check under way.
type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// What the transport under test was configured with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Expectations {
    /// The largest answer body it accepts, in bytes.
    pub max_body_bytes: usize,
    /// The longest it waits for an answer before it fails with `Timeout`.
    pub timeout: Duration,
}

impl Expectations {
    /// A transport that accepts bodies up to `max_body_bytes` and gives up
    /// after `timeout`.
    pub fn new(max_body_bytes: usize, timeout: Duration) -> Self {
        Self {
            max_body_bytes,
            timeout,
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Check {
    /// Its name (the table above).
    pub name: &'static str,
    /// `Err` says what the transport did wrong.
    pub outcome: Result<(), String>,
}

/// The outcome of every check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome.is_ok())
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome.is_err())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let passed = self.checks.iter().filter(|c| c.outcome.is_ok()).count();
        writeln!(
            f,
            "transport conformance: {passed}/{} passed",
            self.checks.len()
        )?;
        for check in &self.checks {
            match &check.outcome {
                Ok(()) => writeln!(f, "  ok    {}", check.name)?,
                Err(why) => writeln!(f, "  FAIL  {}: {why}", check.name)?,
            }
        }
        Ok(())
    }
}

/// The servers a transport is checked against, on loopback. Dropping it
/// stops them.
#[derive(Debug)]
pub struct Peer {
    servers: Servers,
}

impl Peer {
    /// Starts the servers (each on its own ephemeral loopback port) and a
    /// CA made for them.
    pub async fn start() -> Result<Self, StartError> {
        Ok(Self {
            servers: Servers::start().await?,
        })
    }

    /// The CA certificate (PEM) the transport under test must trust.
    pub fn ca_pem(&self) -> &str {
        &self.servers.ca_pem
    }

    /// Runs every check against `transport`.
    pub async fn check(&self, transport: &dyn Transport, expect: &Expectations) -> Report {
        let s = &self.servers;
        // A check that hangs fails on its own deadline rather than the
        // whole run's.
        let deadline = expect.timeout.saturating_mul(2) + Duration::from_secs(10);
        let checks: [(&'static str, Pending<'_>); 12] = [
            ("http1", Box::pin(checks::http1(s, transport))),
            ("http2", Box::pin(checks::http2(s, transport))),
            ("post_body", Box::pin(checks::post_body(s, transport))),
            (
                "no_added_headers",
                Box::pin(checks::no_added_headers(s, transport)),
            ),
            (
                "redirect_returned",
                Box::pin(checks::redirect_returned(s, transport)),
            ),
            (
                "body_limit",
                Box::pin(checks::body_limit(s, transport, expect)),
            ),
            ("untrusted_ca", Box::pin(checks::untrusted_ca(s, transport))),
            (
                "name_mismatch",
                Box::pin(checks::name_mismatch(s, transport)),
            ),
            ("refused", Box::pin(checks::refused(s, transport))),
            ("timeout", Box::pin(checks::timeout(s, transport))),
            (
                "reset_mid_body",
                Box::pin(checks::reset_mid_body(s, transport)),
            ),
            ("relative_uri", Box::pin(checks::relative_uri(transport))),
        ];
        let mut report = Report { checks: Vec::new() };
        for (name, check) in checks {
            let outcome = tokio::time::timeout(deadline, check)
                .await
                .unwrap_or_else(|_| Err(format!("no outcome within {deadline:?}")));
            report.checks.push(Check { name, outcome });
        }
        report
    }
}
