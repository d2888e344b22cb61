//! The client-credentials grant as a sans-IO state machine: one token
//! fetch, its retries and, with a certificate, a fresh client assertion
//! per attempt.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    AssertionClaims, ClientCredential, ClientId, TokenEndpoint, TokenError, TokenResponse,
    assertion_signing_input, parse_token_response, token_request,
};
use crate::config::Audience;
use crate::entropy::Entropy;
use crate::error::{Step, UsageError};
use crate::flow::{Driveable, Output, RequestId, Transmit};
use crate::retry::{RetryDecision, RetryPolicy, is_retryable_status, retry_after_delay};
use crate::secret::{AccessToken, ClientAssertion, ClientSecret};
use crate::transport::TransportError;

use super::SignerError;

/// How long a client assertion this flow asks for is valid.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// How the application proves itself in a [`TokenFlow`].
#[derive(Clone)]
#[non_exhaustive]
pub enum Proof {
    /// A client secret, sent as `client_secret`.
    Secret(ClientSecret),
    /// A client assertion signed with the certificate whose SHA-1
    /// thumbprint this is: the flow asks for a fresh one for every attempt
    /// ([`Output::NeedAssertion`]), because AAD refuses a replayed `jti`.
    Certificate {
        /// The certificate's SHA-1 thumbprint (the assertion's `x5t`).
        certificate_sha1: [u8; 20],
    },
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
            Self::Certificate { .. } => f.write_str("Certificate"),
        }
    }
}

/// The flow needs a client assertion: sign
/// [`signing_input`](Self::signing_input) with the certificate's key
/// (RS256) and hand the result to [`TokenFlow::handle_assertion`], built
/// with [`finish`](Self::finish).
///
/// Signing may take as long as it needs (a hardware module, a cloud key
/// service): the flow waits.
#[derive(Debug, Clone)]
pub struct AssertionNeed {
    client_id: ClientId,
    endpoint: TokenEndpoint,
    jti: String,
    certificate_sha1: [u8; 20],
}

impl AssertionNeed {
    /// The assertion's unique id (`jti`), drawn from the flow's [`Entropy`].
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The JWT signing input (`base64url(header).base64url(claims)`), for an
    /// assertion issued at `issued_at` (seconds since the Unix epoch: the
    /// driver's wall clock) and valid for [`ASSERTION_LIFETIME`].
    pub fn signing_input(&self, issued_at: u64) -> String {
        let claims = AssertionClaims {
            client_id: &self.client_id,
            endpoint: &self.endpoint,
            jti: &self.jti,
            issued_at,
            lifetime: ASSERTION_LIFETIME,
        };
        assertion_signing_input(&claims, &self.certificate_sha1)
    }

    /// The assertion: `signing_input` and its RS256 `signature`.
    pub fn finish(
        &self,
        signing_input: &str,
        signature: &[u8],
    ) -> Result<ClientAssertion, SignerError> {
        super::finish_assertion(signing_input, signature)
    }
}

/// Where a [`TokenFlow`] is.
enum State {
    /// Ready for the next attempt: a secret is sent at once, a certificate
    /// first asks for an assertion.
    Ready,
    /// Waiting for the driver's assertion.
    AwaitingAssertion,
    /// The assertion for the next attempt, to send.
    Signed(ClientAssertion),
    /// Sent; waiting for the answer.
    InFlight(RequestId),
    /// Backing off until then before the next attempt.
    Sleeping(Instant),
    /// The result, to hand out.
    Finished(Result<TokenResponse, TokenError>),
    /// The result was handed out.
    Over,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::AwaitingAssertion => "awaiting an assertion",
            Self::Signed(_) => "signed",
            Self::InFlight(_) => "in flight",
            Self::Sleeping(_) => "sleeping",
            Self::Finished(_) => "finished",
            Self::Over => "over",
        }
    }
}

/// One AAD token fetch for one audience with the client credentials grant:
/// the request, its retries (429, 502, 503, 504 and retryable transport
/// failures, with a [`RetryPolicy`], honouring `Retry-After`) and, with a
/// certificate, a freshly signed assertion for every attempt.
///
/// It has the same drive loop as [`Flow`](crate::Flow) (it implements
/// [`Driveable`]): poll, send each [`Output::Transmit`], answer each
/// [`Output::NeedAssertion`], sleep on [`Output::Timeout`], stop at
/// [`Output::Done`]. No clock, socket or randomness: time is passed in,
/// request ids, `jti`s and jitter come from the [`Entropy`].
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use ta_protocol::aad::{ClientId, Proof, TokenEndpoint, TokenFlow};
/// use ta_protocol::{Audience, ClientSecret, Output, RetryPolicy, SeededEntropy};
///
/// let mut flow = TokenFlow::new(
///     TokenEndpoint::for_tenant("contoso.onmicrosoft.com")?,
///     ClientId::new("00000000-0000-0000-0000-000000000001")?,
///     Audience::for_discover_url(&"https://api.skypeforbusiness.com/platformservice/discover".parse()?),
///     Proof::Secret(ClientSecret::new("s3cret")),
///     RetryPolicy::default(),
///     Box::new(SeededEntropy::new(1)),
/// );
/// let now = Instant::now();
/// let Some(Output::Transmit(transmit)) = flow.poll_output(now) else { unreachable!() };
/// let (id, request) = transmit.into_parts();
/// assert_eq!(request.method(), "POST");
/// // Send `request`; here, AAD's answer.
/// let answer = http::Response::new(Bytes::from_static(
///     br#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0eXAi"}"#,
/// ));
/// flow.handle_response(id, answer, now)?;
/// let Some(Output::Done(Ok(token))) = flow.poll_output(now) else { unreachable!() };
/// assert_eq!(token.expires_in.as_secs(), 3599);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TokenFlow {
    endpoint: TokenEndpoint,
    client_id: ClientId,
    audience: Audience,
    proof: Proof,
    retry: RetryPolicy,
    entropy: Box<dyn Entropy>,
    /// Failed attempts so far.
    failures: u32,
    /// When the first attempt was sent.
    started: Option<Instant>,
    next_id: u64,
    state: State,
}

impl fmt::Debug for TokenFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFlow")
            .field("endpoint", &self.endpoint.url().as_str())
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .field("proof", &self.proof)
            .field("failures", &self.failures)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl TokenFlow {
    /// A fetch of a token for `audience` from `endpoint`, as `client_id`
    /// proving itself with `proof`, retried by `retry`.
    pub fn new(
        endpoint: TokenEndpoint,
        client_id: ClientId,
        audience: Audience,
        proof: Proof,
        retry: RetryPolicy,
        entropy: Box<dyn Entropy>,
    ) -> Self {
        Self {
            endpoint,
            client_id,
            audience,
            proof,
            retry,
            entropy,
            failures: 0,
            started: None,
            next_id: 0,
            state: State::Ready,
        }
    }

    /// The token endpoint.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The audience the token is for.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// Whether the result is out (it may still be waiting to be polled).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_) | State::Over)
    }

    /// What to do next; `None` while a request or an assertion is
    /// outstanding, and after [`Output::Done`] was returned.
    pub fn poll_output(&mut self, now: Instant) -> Option<Output<TokenResponse, TokenError>> {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Sleeping(until) if now < until => {
                self.state = State::Sleeping(until);
                Some(Output::Timeout(until))
            }
            State::Ready | State::Sleeping(_) => Some(self.attempt(now)),
            State::Signed(assertion) => {
                Some(self.transmit(ClientCredential::Assertion(assertion), now))
            }
            State::Finished(result) => Some(Output::Done(result)),
            other @ (State::InFlight(_) | State::AwaitingAssertion | State::Over) => {
                self.state = other;
                None
            }
        }
    }

    fn attempt(&mut self, now: Instant) -> Output<TokenResponse, TokenError> {
        match &self.proof {
            Proof::Secret(secret) => {
                let credential = ClientCredential::Secret(secret.clone());
                self.transmit(credential, now)
            }
            Proof::Certificate { certificate_sha1 } => {
                let need = AssertionNeed {
                    client_id: self.client_id.clone(),
                    endpoint: self.endpoint.clone(),
                    jti: self.entropy.unique_id(),
                    certificate_sha1: *certificate_sha1,
                };
                self.state = State::AwaitingAssertion;
                Output::NeedAssertion(need)
            }
        }
    }

    fn transmit(
        &mut self,
        credential: ClientCredential,
        now: Instant,
    ) -> Output<TokenResponse, TokenError> {
        let request_id = self.entropy.client_request_id();
        let request = token_request(
            &self.endpoint,
            &self.client_id,
            &self.audience,
            &credential,
            &request_id,
        );
        self.started.get_or_insert(now);
        self.next_id += 1;
        let id = RequestId::new(self.next_id);
        self.state = State::InFlight(id);
        Output::Transmit(Transmit::new(id, Step::AadToken, request))
    }

    fn check_in_flight(&self, id: RequestId) -> Result<(), UsageError> {
        match self.state {
            State::InFlight(current) if current == id => Ok(()),
            State::Finished(_) | State::Over => Err(UsageError::Finished),
            _ => Err(UsageError::UnknownRequest(id.get())),
        }
    }

    /// Hands in AAD's answer to the request `id`.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        response: http::Response<Bytes>,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.check_in_flight(id)?;
        if is_retryable_status(response.status()) {
            let delay = retry_after_delay(response.headers());
            // AAD's own error when it wrote one; a proxy's page otherwise.
            let failure = parse_token_response(&response).err().map_or_else(
                || TokenError::Other("Azure AD is unavailable".to_owned()),
                TokenError::from,
            );
            self.retry_or_finish(failure, delay, now);
        } else {
            self.state = State::Finished(parse_token_response(&response).map_err(TokenError::from));
        }
        Ok(())
    }

    /// Hands in the transport's failure to send the request `id`.
    pub fn handle_transport_error(
        &mut self,
        id: RequestId,
        error: TransportError,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.check_in_flight(id)?;
        // Asking for a token twice is harmless, so whether the request may
        // have been sent does not forbid a retry; the kind of failure does.
        let retryable = error.kind().is_retryable();
        let failure = TokenError::Transport(error);
        if retryable {
            self.retry_or_finish(failure, None, now);
        } else {
            self.state = State::Finished(Err(failure));
        }
        Ok(())
    }

    /// Hands in the assertion asked for by [`Output::NeedAssertion`], or why
    /// it could not be signed (which ends the flow).
    pub fn handle_assertion(
        &mut self,
        assertion: Result<ClientAssertion, SignerError>,
        now: Instant,
    ) -> Result<(), UsageError> {
        let _ = now;
        match self.state {
            State::AwaitingAssertion => {}
            State::Finished(_) | State::Over => return Err(UsageError::Finished),
            _ => return Err(UsageError::UnexpectedAssertion),
        }
        self.state = match assertion {
            Ok(assertion) => State::Signed(assertion),
            Err(error) => State::Finished(Err(TokenError::Signer(error))),
        };
        Ok(())
    }

    fn retry_or_finish(
        &mut self,
        failure: TokenError,
        server_delay: Option<Duration>,
        now: Instant,
    ) {
        self.failures += 1;
        let elapsed = now.saturating_duration_since(self.started.unwrap_or(now));
        let jitter = self.entropy.jitter();
        self.state = match self
            .retry
            .decide(self.failures, elapsed, server_delay, jitter)
        {
            RetryDecision::Wait(wait) => match now.checked_add(wait) {
                Some(until) => State::Sleeping(until),
                None => State::Finished(Err(failure)),
            },
            RetryDecision::GiveUp(_) => State::Finished(Err(failure)),
        };
    }
}

impl Driveable<TokenResponse, TokenError> for TokenFlow {
    fn poll_output(&mut self, now: Instant) -> Option<Output<TokenResponse, TokenError>> {
        Self::poll_output(self, now)
    }

    fn handle_response(
        &mut self,
        id: RequestId,
        response: http::Response<Bytes>,
        now: Instant,
    ) -> Result<(), UsageError> {
        Self::handle_response(self, id, response, now)
    }

    fn handle_transport_error(
        &mut self,
        id: RequestId,
        error: TransportError,
        now: Instant,
    ) -> Result<(), UsageError> {
        Self::handle_transport_error(self, id, error, now)
    }

    fn handle_token(
        &mut self,
        token: Result<AccessToken, TokenError>,
        now: Instant,
    ) -> Result<(), UsageError> {
        let _ = (token, now);
        Err(if self.is_finished() {
            UsageError::Finished
        } else {
            UsageError::UnexpectedToken
        })
    }

    fn handle_assertion(
        &mut self,
        assertion: Result<ClientAssertion, SignerError>,
        now: Instant,
    ) -> Result<(), UsageError> {
        Self::handle_assertion(self, assertion, now)
    }
}
