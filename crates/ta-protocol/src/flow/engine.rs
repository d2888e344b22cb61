//! The engine under every flow: its stage, the current exchange (one
//! logical request with its redirects, retries and token retry) and how a
//! request is built, sent and answered.

use super::*;

/// What a flow does once discovery is done.
#[derive(Debug)]
pub(super) enum AfterDiscovery {
    /// Stop: the discovery is the outcome.
    Stop,
    /// Go on to the capabilities.
    Capabilities(AfterCapabilities),
}

/// What a flow does once the capabilities are read.
#[derive(Debug)]
pub(super) enum AfterCapabilities {
    /// Stop: the capabilities are the outcome.
    Stop,
    /// Mint this request.
    Mint(MintRequest),
}

/// Where a flow is, carrying what it has learned so far and what it will
/// do next. The current request's own progress (sent, backing off, waiting
/// for a token) is the [`Exchange`]'s.
// One per flow, moved a few times per flow: boxing would cost more than the
// copies it saves.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(super) enum Stage {
    /// Discovery.
    Discovery(AfterDiscovery),
    /// The applications request, after `discovery`.
    Applications {
        discovery: Discovery,
        then: AfterCapabilities,
    },
    /// The application request (the capabilities), after `discovery`.
    Application {
        discovery: Discovery,
        then: AfterCapabilities,
    },
    /// The mint of `request`; `capabilities` are kept when they are part of
    /// the outcome (a bootstrap).
    Mint {
        request: MintRequest,
        capabilities: Option<Capabilities>,
    },
    /// The widget's anonymous discovery, with `origin`.
    AnonymousDiscovery { origin: Origin },
    /// One chat call (its kind is the exchange's step).
    Call,
    /// The flow's result, to be polled.
    Finished(Result<Outcome, Error>),
    /// The result was handed out (or the flow is being set up).
    Over,
}

impl Stage {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Discovery(_) => Step::Discovery.label(),
            Self::Applications { .. } => Step::Applications.label(),
            Self::Application { .. } => Step::Application.label(),
            Self::Mint { .. } => Step::Mint.label(),
            Self::AnonymousDiscovery { .. } => Step::AnonymousDiscovery.label(),
            Self::Call => "chat_call",
            Self::Finished(_) => "finished",
            Self::Over => "over",
        }
    }
}

// One per flow, moved a few times per flow: boxing would cost more than the
// copies it saves.
#[allow(clippy::large_enum_variant)]
pub(super) enum Polled {
    Transmit(Transmit),
    NeedToken(TokenNeed),
    Timeout(Instant),
    Done(Result<Outcome, Error>),
}

#[derive(Debug)]
pub(super) enum Phase {
    /// Ready to send.
    Ready,
    /// Sent; waiting for the answer.
    InFlight(RequestId),
    /// A token need to hand out.
    NeedToken(TokenNeed),
    /// Waiting for the token.
    AwaitingToken,
    /// Backing off until then.
    Sleeping(Instant),
}

/// One logical request: its redirects, retries and token retry.
#[derive(Debug)]
pub(super) struct Exchange {
    pub(super) step: Step,
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) body: Option<Bytes>,
    pub(super) content_type: &'static str,
    pub(super) failures: u32,
    pub(super) redirects: u8,
    pub(super) started: Option<Instant>,
    pub(super) token_retry_used: bool,
    pub(super) sent_with_token: bool,
    pub(super) phase: Phase,
}

impl Exchange {
    pub(super) fn new(step: Step, method: Method, url: Url, body: Option<Bytes>) -> Self {
        Self {
            step,
            method,
            url,
            body,
            content_type: crate::request::JSON_UTF8,
            failures: 0,
            redirects: 0,
            started: None,
            token_retry_used: false,
            sent_with_token: false,
            phase: Phase::Ready,
        }
    }
}

pub(super) struct Engine {
    pub(super) config: Arc<Config>,
    pub(super) entropy: Box<dyn Entropy>,
    pub(super) token: Option<AccessToken>,
    pub(super) trusted: Arc<TrustedHosts>,
    /// The current request.
    pub(super) ex: Exchange,
    /// Where the flow is and what it learned.
    pub(super) stage: Stage,
    pub(super) next_id: u64,
}

impl Engine {
    pub(super) fn is_finished(&self) -> bool {
        matches!(self.stage, Stage::Finished(_) | Stage::Over)
    }

    pub(super) fn finish(&mut self, outcome: Outcome) {
        self.stage = Stage::Finished(Ok(outcome));
    }

    pub(super) fn fail(&mut self, error: Error) {
        self.stage = Stage::Finished(Err(error));
    }

    pub(super) fn poll(&mut self, now: Instant) -> Option<Polled> {
        match &self.stage {
            Stage::Finished(_) => {
                let Stage::Finished(result) = std::mem::replace(&mut self.stage, Stage::Over)
                else {
                    return None;
                };
                return Some(Polled::Done(result));
            }
            Stage::Over => return None,
            _ => {}
        }
        match &self.ex.phase {
            Phase::Ready => Some(self.transmit(now)),
            Phase::Sleeping(until) if now < *until => Some(Polled::Timeout(*until)),
            Phase::Sleeping(_) => Some(self.transmit(now)),
            Phase::NeedToken(_) => {
                match std::mem::replace(&mut self.ex.phase, Phase::AwaitingToken) {
                    Phase::NeedToken(need) => Some(Polled::NeedToken(need)),
                    _ => None,
                }
            }
            Phase::InFlight(_) | Phase::AwaitingToken => None,
        }
    }

    pub(super) fn token_need(
        &self,
        challenge: Option<Challenge>,
        rejected: Option<AccessToken>,
    ) -> TokenNeed {
        TokenNeed {
            step: self.ex.step,
            audience: self.config.audience().clone(),
            challenge,
            rejected,
        }
    }

    pub(super) fn untrusted(&self, url: &Url, reason: UntrustedReason) -> Error {
        Error::Untrusted(Box::new(UntrustedError {
            step: self.ex.step,
            url: DisplayUrl::new(url),
            reason,
        }))
    }

    pub(super) fn transmit(&mut self, now: Instant) -> Polled {
        let step = self.ex.step;
        // Whether this request carries the token.
        let with_token = if self.ex.sent_with_token || self.ex.token_retry_used {
            self.token.is_some()
        } else if step.is_authenticated() {
            match (&self.token, step) {
                (Some(_), _) => true,
                // The first authenticated request may go without a token to
                // draw the challenge; later steps know they need one.
                (None, Step::Applications) => false,
                (None, _) => {
                    self.ex.phase = Phase::AwaitingToken;
                    return Polled::NeedToken(self.token_need(None, None));
                }
            }
        } else {
            false
        };
        if !self.config.is_secure_enough(&self.ex.url) {
            let error = self.untrusted(&self.ex.url, UntrustedReason::Insecure);
            return self.failed(error);
        }
        if with_token && !self.trusted.allows(&self.ex.url) {
            let error = self.untrusted(&self.ex.url, UntrustedReason::UntrustedHost);
            return self.failed(error);
        }
        let request_id = self.entropy.client_request_id();
        let built = Outgoing {
            method: &self.ex.method,
            url: &self.ex.url,
            body: self.ex.body.as_ref(),
            content_type: self.ex.content_type,
            request_id: &request_id,
            bearer: if with_token {
                self.token.as_ref()
            } else {
                None
            },
            origin: match &self.stage {
                Stage::AnonymousDiscovery { origin } => Some(origin),
                _ => None,
            },
        }
        .build();
        let request = match built {
            Ok(request) => request,
            Err(BuildError::Token) => {
                let error = Error::Auth(Box::new(AuthError {
                    step,
                    kind: AuthErrorKind::InvalidToken,
                }));
                return self.failed(error);
            }
            Err(BuildError::Uri) => {
                let error = self.server_error(
                    None,
                    Correlation::default(),
                    ServerErrorKind::BadLink {
                        rel: rel_of(step),
                        reason: "the URL is not a valid HTTP request target".to_owned(),
                    },
                );
                return self.failed(error);
            }
        };
        self.ex.sent_with_token = with_token;
        self.ex.started.get_or_insert(now);
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.ex.phase = Phase::InFlight(id);
        Polled::Transmit(Transmit { id, step, request })
    }

    pub(super) fn failed(&mut self, error: Error) -> Polled {
        self.stage = Stage::Over;
        Polled::Done(Err(error))
    }

    pub(super) fn check_in_flight(&self, id: RequestId) -> Result<(), UsageError> {
        match self.ex.phase {
            _ if self.is_finished() => Err(UsageError::Finished),
            Phase::InFlight(current) if current == id => Ok(()),
            _ => Err(UsageError::UnknownRequest(id.0)),
        }
    }

    pub(super) fn handle_token(
        &mut self,
        token: Result<AccessToken, TokenError>,
    ) -> Result<(), UsageError> {
        if self.is_finished() || !matches!(self.ex.phase, Phase::AwaitingToken) {
            return Err(if self.is_finished() {
                UsageError::Finished
            } else {
                UsageError::UnexpectedToken
            });
        }
        match token {
            Ok(token) => {
                self.token = Some(token);
                self.ex.sent_with_token = true;
                self.ex.phase = Phase::Ready;
            }
            Err(error) => self.fail(Error::Auth(Box::new(AuthError {
                step: self.ex.step,
                kind: AuthErrorKind::TokenUnavailable(error),
            }))),
        }
        Ok(())
    }

    pub(super) fn handle_transport_error(
        &mut self,
        id: RequestId,
        error: TransportError,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.check_in_flight(id)?;
        let step = self.ex.step;
        let failure = Error::Transport {
            step,
            source: error.clone(),
        };
        // The bootstrap's steps are safe to repeat (GETs, and the mint with
        // the same applicationSessionId), so for them the kind of failure
        // decides. A chat call that starts or sends something is not
        // repeated once it may have reached the server.
        if !error.kind().is_retryable() || (error.may_have_been_sent() && !step.is_idempotent()) {
            self.fail(failure);
            return Ok(());
        }
        self.retry_or_fail(failure, None, now);
        Ok(())
    }

    pub(super) fn retry_or_fail(
        &mut self,
        failure: Error,
        server_delay: Option<std::time::Duration>,
        now: Instant,
    ) {
        self.ex.failures += 1;
        let started = self.ex.started.unwrap_or(now);
        let elapsed = now.saturating_duration_since(started);
        let jitter = self.entropy.jitter();
        let decision =
            self.config
                .retry_policy()
                .decide(self.ex.failures, elapsed, server_delay, jitter);
        match decision {
            RetryDecision::Wait(wait) => match now.checked_add(wait) {
                Some(until) => self.ex.phase = Phase::Sleeping(until),
                None => self.give_up(failure, elapsed),
            },
            RetryDecision::GiveUp(_) => self.give_up(failure, elapsed),
        }
    }

    pub(super) fn give_up(&mut self, failure: Error, elapsed: std::time::Duration) {
        let error = if self.ex.failures <= 1 {
            failure
        } else {
            Error::RetriesExhausted {
                step: self.ex.step,
                attempts: self.ex.failures,
                elapsed,
                last: Box::new(failure),
            }
        };
        self.fail(error);
    }

    pub(super) fn server_error(
        &self,
        status: Option<StatusCode>,
        correlation: Correlation,
        kind: ServerErrorKind,
    ) -> Error {
        Error::Server(Box::new(ServerError {
            step: self.ex.step,
            url: DisplayUrl::new(&self.ex.url),
            status,
            kind,
            correlation,
        }))
    }

    pub(super) fn api_error(&self, response: &http::Response<Bytes>) -> ApiError {
        // A message may echo what was sent (a token in a URL): mask it here,
        // so that no Debug or Display of the error can show it.
        let body = hal_model::from_slice::<hal_model::ErrorBody>(response.body())
            .ok()
            .map(|mut body| {
                body.message = body.message.map(|m| redact(&m));
                body
            });
        let body_excerpt = match (&body, response.body().is_empty()) {
            (None, false) => {
                let text = String::from_utf8_lossy(response.body());
                Some(redact(&text.chars().take(200).collect::<String>()))
            }
            _ => None,
        };
        ApiError {
            step: self.ex.step,
            method: self.ex.method.clone(),
            url: DisplayUrl::new(&self.ex.url),
            status: response.status(),
            body,
            body_excerpt,
            correlation: Correlation::from_headers(response.headers()),
            retry_after: retry_after_delay(response.headers()),
        }
    }

    pub(super) fn handle_response(
        &mut self,
        id: RequestId,
        response: http::Response<Bytes>,
        now: Instant,
    ) -> Result<(), UsageError> {
        self.check_in_flight(id)?;
        let status = response.status();
        // Read from the headers only where an error will carry it.
        let correlation = || Correlation::from_headers(response.headers());
        if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT {
            self.redirect(&response, correlation());
        } else if status == StatusCode::UNAUTHORIZED
            && (self.ex.step.is_authenticated() || self.ex.step == Step::Discovery)
        {
            self.unauthorized(&response);
        } else if is_retryable_status(status) {
            let delay = retry_after_delay(response.headers());
            let failure = Error::Rejected(Box::new(self.api_error(&response)));
            // A gateway's 502 or 504 may hide a request the platform did
            // process: a call that starts or sends something is not
            // repeated then (429 and 503 say it was not acted on).
            let maybe_done =
                status == StatusCode::BAD_GATEWAY || status == StatusCode::GATEWAY_TIMEOUT;
            if maybe_done && !self.ex.step.is_idempotent() {
                self.fail(failure);
            } else {
                self.retry_or_fail(failure, delay, now);
            }
        } else if status.is_success() {
            self.success(&response);
        } else if status.is_client_error() || status.is_server_error() {
            let error = Error::Rejected(Box::new(self.api_error(&response)));
            self.fail(error);
        } else {
            let error = self.server_error(
                Some(status),
                correlation(),
                ServerErrorKind::UnexpectedStatus,
            );
            self.fail(error);
        }
        Ok(())
    }

    pub(super) fn redirect(&mut self, response: &http::Response<Bytes>, correlation: Correlation) {
        let status = Some(response.status());
        let max = self.config.max_redirects();
        if self.ex.redirects >= max {
            let error = self.server_error(
                status,
                correlation,
                ServerErrorKind::TooManyRedirects { max },
            );
            return self.fail(error);
        }
        let target = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| self.ex.url.join(location).ok());
        let Some(target) = target else {
            let error = self.server_error(status, correlation, ServerErrorKind::BadRedirect);
            return self.fail(error);
        };
        if !self.config.is_secure_enough(&target) {
            let error = self.untrusted(&target, UntrustedReason::Insecure);
            return self.fail(error);
        }
        let carries_token = self.ex.step.is_authenticated() || self.ex.sent_with_token;
        if carries_token && !self.trusted.allows(&target) {
            let error = self.untrusted(&target, UntrustedReason::UntrustedRedirect);
            return self.fail(error);
        }
        self.ex.redirects += 1;
        self.ex.url = target;
        self.ex.phase = Phase::Ready;
    }

    pub(super) fn unauthorized(&mut self, response: &http::Response<Bytes>) {
        // A malformed challenge header is read as no challenge: the token is
        // still worth one try.
        let challenges = challenge::challenges(response.headers()).unwrap_or_default();
        if self.ex.token_retry_used {
            let error = Error::Auth(Box::new(AuthError {
                step: self.ex.step,
                kind: AuthErrorKind::Rejected {
                    answer: Box::new(self.api_error(response)),
                    challenges,
                },
            }));
            return self.fail(error);
        }
        let bearer = challenges.iter().find(|c| c.is_scheme("Bearer")).cloned();
        if bearer.is_none() && !challenges.is_empty() {
            let error = Error::Auth(Box::new(AuthError {
                step: self.ex.step,
                kind: AuthErrorKind::NoBearerChallenge {
                    schemes: challenges.iter().map(|c| c.scheme.clone()).collect(),
                },
            }));
            return self.fail(error);
        }
        self.ex.token_retry_used = true;
        let rejected = if self.ex.sent_with_token {
            self.token.take()
        } else {
            None
        };
        self.ex.phase = Phase::NeedToken(self.token_need(bearer, rejected));
    }
}
