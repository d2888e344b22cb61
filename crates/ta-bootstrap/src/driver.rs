//! The one drive loop: it runs any of `ta-protocol`'s state machines (the
//! API's flows and the AAD token flow) over a transport, on a clock, with
//! tracing and an optional observer.

use std::time::Duration;

use ta_protocol::aad::{AssertionNeed, SignerError, TokenError};
use ta_protocol::{
    AccessToken, ClientAssertion, Driveable, Error, Output, TokenNeed, Transport, UsageError,
};
use tracing::{Instrument, debug, info_span, warn};

use crate::clock::Clock;
use crate::credentials::Signer;
use crate::observer::Observer;
use crate::token::TokenProvider;

/// The longest a [`Signer`] may take for one signature.
pub(crate) const SIGNING_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the answers to a flow's needs come from: AAD tokens for the API's
/// flows, signatures for the token flow. A need with no source is a bug of
/// the caller, reported as a [`UsageError`].
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub(crate) tokens: Option<&'a dyn TokenProvider>,
    pub(crate) signer: Option<&'a dyn Signer>,
}

impl Sources<'_> {
    async fn token(&self, need: &TokenNeed) -> Option<Result<AccessToken, TokenError>> {
        let tokens = self.tokens?;
        if let Some(rejected) = &need.rejected {
            tokens.invalidate(&need.audience, rejected);
        }
        Some(tokens.token(&need.audience).await)
    }

    async fn assertion(
        &self,
        need: &AssertionNeed,
        clock: &dyn Clock,
    ) -> Option<Result<ClientAssertion, SignerError>> {
        let signer = self.signer?;
        let input = need.signing_input(clock.unix_seconds());
        // A signer that hangs would hold the token fetch (and every caller
        // waiting on it) for good.
        let signed = tokio::time::timeout(SIGNING_TIMEOUT, signer.sign_rs256(input.as_bytes()));
        Some(match signed.await {
            Ok(Ok(signature)) => need.finish(&input, &signature),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(SignerError::new(format!(
                "the signer did not answer within {} s",
                SIGNING_TIMEOUT.as_secs()
            ))),
        })
    }
}

/// Drives `flow` to its end over `transport`. Each request is logged
/// (method, URL with token-bearing parts masked, status, correlation ids)
/// and reported to `observer`; no token or secret ever is.
pub(crate) async fn run<T, E, F>(
    mut flow: F,
    transport: &dyn Transport,
    sources: Sources<'_>,
    clock: &dyn Clock,
    observer: Option<&dyn Observer>,
) -> Result<T, E>
where
    F: Driveable<T, E>,
    E: From<UsageError>,
{
    loop {
        match flow.poll_output(clock.now()) {
            Some(Output::Transmit(transmit)) => {
                let step = transmit.step();
                let (id, request) = transmit.into_parts();
                let span = info_span!(
                    "request",
                    %step,
                    method = %request.method(),
                    url = tracing::field::Empty,
                    client_request_id = tracing::field::Empty,
                );
                if !span.is_disabled() {
                    // The anonymous discover link carries a token: mask it.
                    span.record("url", ta_protocol::redact(&request.uri().to_string()));
                    if let Some(id) = request
                        .headers()
                        .get(ta_protocol::CLIENT_REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                    {
                        span.record("client_request_id", id);
                    }
                }
                let outcome = transport.send(request).instrument(span.clone()).await;
                let _entered = span.enter();
                if let Some(observer) = observer {
                    let status = outcome.as_ref().ok().map(|r| r.status().as_u16());
                    observer.upstream_request(step, status);
                }
                match outcome {
                    Ok(response) => {
                        if tracing::enabled!(tracing::Level::DEBUG) {
                            let correlation =
                                ta_protocol::Correlation::from_headers(response.headers());
                            debug!(
                                status = response.status().as_u16(),
                                correlation_id =
                                    correlation.correlation_id.as_deref().unwrap_or(""),
                                server = correlation.server_fqdn.as_deref().unwrap_or(""),
                                "answer"
                            );
                        }
                        if matches!(response.status().as_u16(), 429 | 502 | 503 | 504) {
                            // The flow retries these (within its policy).
                            warn!(status = response.status().as_u16(), "busy or unavailable");
                        }
                        flow.handle_response(id, response, clock.now())?;
                    }
                    Err(error) => {
                        warn!(%error, "transport failure");
                        flow.handle_transport_error(id, error, clock.now())?;
                    }
                }
            }
            Some(Output::NeedToken(need)) => {
                let token = sources
                    .token(&need)
                    .await
                    .ok_or(UsageError::Waiting("a token source"))?;
                flow.handle_token(token, clock.now())?;
            }
            Some(Output::NeedAssertion(need)) => {
                let assertion = sources
                    .assertion(&need, clock)
                    .await
                    .ok_or(UsageError::Waiting("a signer"))?;
                flow.handle_assertion(assertion, clock.now())?;
            }
            Some(Output::Timeout(at)) => {
                // Measured on the injected clock, so that any clock works.
                let wait = at.saturating_duration_since(clock.now());
                debug!(?wait, "backing off");
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
            Some(Output::Done(result)) => return result,
            Some(_) | None => return Err(UsageError::Waiting("an answer or a token").into()),
        }
    }
}

/// Drives any of the API's flows over `transport`, asking `tokens` when it
/// needs an AAD token. Each request is logged (method, URL with
/// token-bearing parts masked, status, correlation ids); no token or secret
/// ever is. With an `observer`, each request is reported with its step and
/// status.
pub async fn drive<T, F>(
    flow: F,
    transport: &dyn Transport,
    tokens: &dyn TokenProvider,
    clock: &dyn Clock,
    observer: Option<&dyn Observer>,
) -> Result<T, Error>
where
    F: Driveable<T, Error>,
{
    let sources = Sources {
        tokens: Some(tokens),
        signer: None,
    };
    run(flow, transport, sources, clock, observer).await
}
