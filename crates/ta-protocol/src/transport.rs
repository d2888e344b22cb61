//! The one trait a transport implements.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// Sends one HTTP request and returns the whole answer.
///
/// The protocol decides redirects, retries and authentication: a transport
/// follows no redirect, retries nothing and adds no credential. It adds what
/// HTTP itself needs (`Host`, `Content-Length`, connection management) and
/// nothing else.
///
/// Implemented for `Arc<T>` so that one transport (and its connection pool)
/// can be shared by many flows.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` and buffers the answer's body.
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError>;
}

#[async_trait::async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        (**self).send(request).await
    }
}

/// What went wrong in a transport, as far as the retry policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// A connect, request or whole-call timeout fired.
    Timeout,
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// TLS failed (certificate not trusted, name mismatch, handshake).
    Tls,
    /// The connection broke while sending or receiving.
    Io,
    /// The answer's body is larger than the transport accepts.
    BodyTooLarge,
    /// The request could not be turned into bytes (a bug of the caller).
    InvalidRequest,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// Whether retrying the same request can help.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Timeout | Self::Connect | Self::Io)
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect",
            Self::Tls => "TLS failed",
            Self::Io => "the connection broke",
            Self::BodyTooLarge => "the answer's body is too large",
            Self::InvalidRequest => "the request is invalid",
            Self::Other => "transport failure",
        })
    }
}

/// A transport failure: what kind, whether the request may have reached the
/// server, and the underlying cause.
#[derive(Debug, Clone, thiserror::Error)]
// The cause is masked: a stack may quote the URL, and the anonymous discover
// link carries a token.
#[error("{kind}{}{}", if *.may_have_been_sent { "" } else { " (the request was not sent)" }, .source.as_ref().map(|s| format!(": {}", crate::secret::redact(&s.to_string()))).unwrap_or_default())]
pub struct TransportError {
    kind: TransportErrorKind,
    may_have_been_sent: bool,
    #[source]
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl TransportError {
    /// A failure of `kind`; `may_have_been_sent` is false only when the
    /// transport knows no byte of the request reached the server.
    pub fn new(kind: TransportErrorKind, may_have_been_sent: bool) -> Self {
        Self {
            kind,
            may_have_been_sent,
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the server may have received (and acted on) the request.
    pub fn may_have_been_sent(&self) -> bool {
        self.may_have_been_sent
    }
}
