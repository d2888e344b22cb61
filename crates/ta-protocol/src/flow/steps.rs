//! Each step's answer read: discovery, applications, application, mint and
//! the widget's anonymous discovery, each setting the next stage or the
//! outcome.

use super::*;

impl Engine {
    pub(super) fn success(&mut self, response: &http::Response<Bytes>) {
        let status = Some(response.status());
        // Each step's handler sets the next stage, or the outcome.
        let result = match std::mem::replace(&mut self.stage, Stage::Over) {
            Stage::Discovery(then) => self.discovered(response.body(), then),
            Stage::Applications { discovery, then } => {
                self.applications(response.body(), discovery, then)
            }
            Stage::Application { discovery, then } => {
                self.application(response.body(), discovery, then)
            }
            Stage::Mint {
                request,
                capabilities,
            } => self.minted(response.body(), request, capabilities),
            Stage::AnonymousDiscovery { origin } => self.anonymous(response, origin),
            Stage::Call => {
                self.called(response);
                Ok(())
            }
            Stage::Finished(_) | Stage::Over => {
                return self.fail(Error::Internal(
                    "an answer was taken after the flow finished",
                ));
            }
        };
        if let Err(kind) = result {
            let correlation = Correlation::from_headers(response.headers());
            let error = self.server_error(status, correlation, kind);
            self.fail(error);
        }
    }

    pub(super) fn resolve_link(
        &self,
        rel: &'static str,
        link: &hal_model::Link,
    ) -> Result<Url, ServerErrorKind> {
        let url = link.resolve(&self.ex.url).map_err(|e| bad_link(rel, &e))?;
        self.require_secure(rel, url)
    }

    pub(super) fn require_secure(
        &self,
        rel: &'static str,
        url: Url,
    ) -> Result<Url, ServerErrorKind> {
        if self.config.is_secure_enough(&url) {
            Ok(url)
        } else {
            Err(ServerErrorKind::BadLink {
                rel,
                reason: format!("{} is not https", DisplayUrl::new(&url)),
            })
        }
    }

    pub(super) fn discovered(
        &mut self,
        body: &[u8],
        then: AfterDiscovery,
    ) -> Result<(), ServerErrorKind> {
        let resource: Discover = hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        let link = resource
            .applications()
            .ok_or(ServerErrorKind::MissingLink {
                rel: names::APPLICATIONS,
            })?;
        let applications_url = self.resolve_link(names::APPLICATIONS, link)?;
        let mut trusted = (*self.trusted).clone();
        // Links of an answer from a trusted host extend the trust; an answer
        // a redirect brought from elsewhere extends nothing.
        if self.trusted.allows(&self.ex.url) {
            for (_, links) in resource.resource().links().iter() {
                for link in links.as_slice() {
                    if let Ok(url) = link.absolute() {
                        trusted.add_url_host(&url);
                    }
                }
            }
        }
        self.trusted = Arc::new(trusted);
        let discovery = Discovery {
            url: self.ex.url.clone(),
            namespace: resource.resource().namespace(),
            resource,
            applications_url,
            trusted_hosts: Arc::clone(&self.trusted),
        };
        match then {
            AfterDiscovery::Stop => self.finish(Outcome::Discovery(discovery)),
            AfterDiscovery::Capabilities(then) => self.begin_applications(discovery, then),
        }
        Ok(())
    }

    pub(super) fn begin_applications(&mut self, discovery: Discovery, then: AfterCapabilities) {
        self.trusted = Arc::clone(&discovery.trusted_hosts);
        let url = with_endpoint_id(&discovery.applications_url, self.config.endpoint_id());
        self.ex = Exchange::new(Step::Applications, Method::GET, url, None);
        self.stage = Stage::Applications { discovery, then };
    }

    pub(super) fn applications(
        &mut self,
        body: &[u8],
        discovery: Discovery,
        then: AfterCapabilities,
    ) -> Result<(), ServerErrorKind> {
        let resource: Applications = hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        let link = resource.application().ok_or(ServerErrorKind::MissingLink {
            rel: names::APPLICATION,
        })?;
        let url = self.resolve_link(names::APPLICATION, link)?;
        self.ex = self.next_exchange(Step::Application, Method::GET, url, None);
        self.stage = Stage::Application { discovery, then };
        Ok(())
    }

    /// The exchange of the next step, carrying on with the token in hand.
    pub(super) fn next_exchange(
        &self,
        step: Step,
        method: Method,
        url: Url,
        body: Option<Bytes>,
    ) -> Exchange {
        let mut ex = Exchange::new(step, method, url, body);
        ex.sent_with_token = self.token.is_some();
        ex
    }

    pub(super) fn application(
        &mut self,
        body: &[u8],
        discovery: Discovery,
        then: AfterCapabilities,
    ) -> Result<(), ServerErrorKind> {
        let application: Application =
            hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        let anon_application_tokens = application
            .anon_application_tokens()
            .map(|link| self.resolve_link(names::ANON_APPLICATION_TOKENS, link))
            .transpose()?;
        let capabilities = Capabilities {
            discovery,
            application_url: self.ex.url.clone(),
            application,
            anon_application_tokens,
        };
        match then {
            AfterCapabilities::Stop => self.finish(Outcome::Capabilities(capabilities)),
            AfterCapabilities::Mint(request) => {
                let anon = capabilities.anon_application_tokens.clone();
                let application_url = capabilities.application_url.clone();
                let trusted = Arc::clone(&capabilities.discovery.trusted_hosts);
                self.begin_mint(request, anon, &application_url, trusted, Some(capabilities));
            }
        }
        Ok(())
    }

    /// Starts the mint of `request`, from the capabilities'
    /// `anonApplicationTokens` URL; `keep` the capabilities when they are
    /// part of the outcome.
    pub(super) fn begin_mint(
        &mut self,
        request: MintRequest,
        anon_application_tokens: Option<Url>,
        application_url: &Url,
        trusted: Arc<TrustedHosts>,
        keep: Option<Capabilities>,
    ) {
        self.trusted = trusted;
        match anon_application_tokens {
            Some(url) => {
                let body = request.body();
                self.ex = self.next_exchange(Step::Mint, Method::POST, url, Some(body));
                self.stage = Stage::Mint {
                    request,
                    capabilities: keep,
                };
            }
            None => {
                // Not consented (or not listed): nothing is sent.
                self.ex = Exchange::new(
                    Step::Application,
                    Method::GET,
                    application_url.clone(),
                    None,
                );
                self.fail(not_consented(application_url));
            }
        }
    }

    pub(super) fn minted(
        &mut self,
        body: &[u8],
        request: MintRequest,
        capabilities: Option<Capabilities>,
    ) -> Result<(), ServerErrorKind> {
        let resource: AnonApplicationToken =
            hal_model::from_slice(body).map_err(ServerErrorKind::Body)?;
        if resource.token.expose().trim().is_empty() {
            return Err(ServerErrorKind::MissingMember { member: "token" });
        }
        let link = resource.discover().ok_or(ServerErrorKind::MissingLink {
            rel: names::DISCOVER,
        })?;
        let discover_url = link.absolute().map_err(|e| bad_link(names::DISCOVER, &e))?;
        // The browser follows this link, never this client: the widget's
        // policy.
        if !self.config.is_widget_link_acceptable(&discover_url) {
            return Err(ServerErrorKind::BadLink {
                rel: names::DISCOVER,
                reason: format!("{} is not https", DisplayUrl::new(&discover_url)),
            });
        }
        let self_url = resource
            .self_link()
            .and_then(|link| link.resolve(&self.ex.url).ok());
        let token = WidgetToken {
            token: resource.token.clone(),
            expiry: resource.expiry_time.clone(),
            discover_url,
            self_url,
            session_id: request.session_id,
            allowed_origins: request.allowed_origins,
            resource,
        };
        self.finish(match capabilities {
            Some(capabilities) => Outcome::Bootstrapped(Bootstrapped {
                capabilities,
                token,
            }),
            None => Outcome::Token(token),
        });
        Ok(())
    }

    pub(super) fn anonymous(
        &mut self,
        response: &http::Response<Bytes>,
        origin: Origin,
    ) -> Result<(), ServerErrorKind> {
        let resource: AnonDiscover =
            hal_model::from_slice(response.body()).map_err(ServerErrorKind::Body)?;
        let link = resource
            .anon_applications()
            .ok_or(ServerErrorKind::MissingLink {
                rel: names::ANON_APPLICATIONS,
            })?;
        let anon_applications = self.resolve_link(names::ANON_APPLICATIONS, link)?;
        let allow_origin = response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.finish(Outcome::Anonymous(AnonymousDiscovery {
            anon_applications,
            resource,
            allow_origin,
            origin,
        }));
        Ok(())
    }
}

impl Engine {
    /// A chat call's answer: any 2xx is success (the sources disagree on
    /// 200 or 201 for several calls); the `Location` is resolved when it
    /// can be.
    pub(super) fn called(&mut self, response: &http::Response<Bytes>) {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| self.ex.url.join(l).ok());
        let Step::Chat(kind) = self.ex.step else {
            return self.fail(Error::Internal("a call stage outside a chat step"));
        };
        self.finish(Outcome::Call(ChatAnswer {
            kind,
            status: response.status(),
            location,
            body: response.body().clone(),
        }));
    }
}

pub(super) fn bad_link(rel: &'static str, error: &HrefError) -> ServerErrorKind {
    ServerErrorKind::BadLink {
        rel,
        reason: redact(&error.to_string()),
    }
}

/// The rel whose link a step's URL came from.
pub(super) fn rel_of(step: Step) -> &'static str {
    match step {
        Step::Discovery => "discover URL",
        Step::Applications => names::APPLICATIONS,
        Step::Application => names::APPLICATION,
        Step::Mint => names::ANON_APPLICATION_TOKENS,
        Step::AnonymousDiscovery => names::DISCOVER,
        Step::AadToken => "token endpoint",
        Step::Chat(kind) => kind.rel(),
    }
}
