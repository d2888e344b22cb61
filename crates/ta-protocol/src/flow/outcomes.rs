//! What the flows learn and end with: the outcome types, and the sealed
//! `Goal` that hands each flow its own.

use super::*;

/// The outcome of discovery.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discovery {
    /// The URL the discovery answer came from (after redirects).
    pub url: Url,
    /// The discovery answer.
    pub resource: Discover,
    /// The applications URL (absolute, resolved).
    pub applications_url: Url,
    /// The namespace the deployment writes its rels in.
    pub namespace: Option<Namespace>,
    /// The hosts the AAD token may go to from now on: the configured ones,
    /// plus the hosts of the absolute links of this answer when it came from
    /// a trusted host.
    pub trusted_hosts: Arc<TrustedHosts>,
}

/// The outcome of the applications and application requests: what the
/// tenant consented to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Capabilities {
    /// The discovery this was found from.
    pub discovery: Discovery,
    /// The application resource's URL.
    pub application_url: Url,
    /// The application resource.
    pub application: Application,
    /// The resolved `anonApplicationTokens` URL, if consented.
    pub anon_application_tokens: Option<Url>,
}

impl Capabilities {
    /// The `anonApplicationTokens` URL, or, when the tenant has not
    /// consented (the application lists no such link), the error a mint
    /// gives: `Server(MissingLink { rel: "anonApplicationTokens" })` at the
    /// application step.
    pub fn anonymous_tokens_url(&self) -> Result<&Url, Error> {
        self.anon_application_tokens
            .as_ref()
            .ok_or_else(|| not_consented(&self.application_url))
    }
}

/// The failure of a mint the tenant has not consented to: the application
/// at `application_url` lists no `anonApplicationTokens` link.
pub(super) fn not_consented(application_url: &Url) -> Error {
    Error::Server(Box::new(ServerError {
        step: Step::Application,
        url: DisplayUrl::new(application_url),
        status: None,
        kind: ServerErrorKind::MissingLink {
            rel: names::ANON_APPLICATION_TOKENS,
        },
        correlation: Correlation::default(),
    }))
}

/// What to mint a widget token for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MintRequest {
    /// The widget session's unique id (reused only by retries of this mint).
    pub session_id: ApplicationSessionId,
    /// The origins the widget may call the API from.
    pub allowed_origins: AllowedOrigins,
}

/// The JSON body of the mint.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MintBody<'a> {
    application_session_id: &'a str,
    allowed_origins: &'a str,
}

impl MintRequest {
    /// A mint of a token for `session_id` (unique per widget session)
    /// usable from `allowed_origins`.
    pub fn new(session_id: ApplicationSessionId, allowed_origins: AllowedOrigins) -> Self {
        Self {
            session_id,
            allowed_origins,
        }
    }

    /// The request body, written as the API's example writes it.
    pub fn body(&self) -> Bytes {
        let body = MintBody {
            application_session_id: self.session_id.as_str(),
            allowed_origins: &self.allowed_origins.joined(),
        };
        let mut out = Vec::with_capacity(128);
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        // Two string members cannot fail to serialize.
        let _ = body.serialize(&mut serializer);
        Bytes::from(out)
    }
}

/// A minted widget token: what the SA hands to the chat widget.
///
/// Its `Debug` hides the token and the discover link's query (which carries
/// the token). Made by the mint's flow only.
#[derive(Clone)]
#[non_exhaustive]
pub struct WidgetToken {
    /// The `psat=…` token.
    pub token: PsatToken,
    /// When it expires, as the API wrote it.
    pub expiry: ExpiryTime,
    /// The anonymous discover link the widget goes to first (absolute https;
    /// it carries the token, so treat it as a secret too).
    pub discover_url: Url,
    /// The token resource's `self` link, if it had a usable one.
    pub self_url: Option<Url>,
    /// The session id the token was minted for.
    pub session_id: ApplicationSessionId,
    /// The origins it was minted for.
    pub allowed_origins: AllowedOrigins,
    /// The whole answer.
    pub resource: AnonApplicationToken,
}

impl fmt::Debug for WidgetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WidgetToken")
            .field("token", &self.token)
            .field("expiry", &self.expiry)
            .field("discover_url", &DisplayUrl::new(&self.discover_url))
            .field("self_url", &self.self_url.as_ref().map(DisplayUrl::new))
            .field("session_id", &self.session_id)
            .field("allowed_origins", &self.allowed_origins)
            .finish_non_exhaustive()
    }
}

impl WidgetToken {
    /// When it expires, as a [`SystemTime`](std::time::SystemTime).
    pub fn expires_at(&self) -> std::time::SystemTime {
        self.expiry.system_time()
    }
}

/// The outcome of a whole bootstrap: capabilities (to cache) and the token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Bootstrapped {
    /// Discovery and capabilities, reusable for later mints.
    pub capabilities: Capabilities,
    /// The widget token.
    pub token: WidgetToken,
}

/// The outcome of the chat client's anonymous discovery.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AnonymousDiscovery {
    /// The UCWA anonymous applications URL (resolved).
    pub anon_applications: Url,
    /// The answer.
    pub resource: AnonDiscover,
    /// The `Access-Control-Allow-Origin` the API answered, if any.
    pub allow_origin: Option<String>,
    /// The origin the request was sent from.
    pub origin: Origin,
}

impl AnonymousDiscovery {
    /// Whether a browser on `origin` would be allowed to read the answer.
    pub fn cors_allows_origin(&self) -> bool {
        self.allow_origin.as_deref() == Some(self.origin.as_str())
    }
}

/// The answer to one chat call ([`Flow::chat_call`](crate::Flow::chat_call)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChatAnswer {
    /// Which call it answers.
    pub kind: crate::chat::ChatCallKind,
    /// The status (a 2xx).
    pub status: StatusCode,
    /// The `Location` (a sent message's URL), resolved.
    pub location: Option<Url>,
    /// The body, if any.
    pub body: Bytes,
}

mod private {
    use super::{
        AnonymousDiscovery, Bootstrapped, Capabilities, ChatAnswer, Discovery, WidgetToken,
    };

    /// What a flow ended with, before it is handed out as its typed
    /// outcome.
    // One per flow, moved a few times per flow: boxing would cost more than
    // the copies it saves.
    #[derive(Debug)]
    #[allow(clippy::large_enum_variant)]
    pub enum Outcome {
        Discovery(Discovery),
        Capabilities(Capabilities),
        Token(WidgetToken),
        Bootstrapped(Bootstrapped),
        Anonymous(AnonymousDiscovery),
        Call(ChatAnswer),
    }

    /// The outcomes a flow can have.
    pub trait Goal: Sized {
        /// The typed outcome, if `outcome` is of this kind.
        fn take(outcome: Outcome) -> Option<Self>;
    }

    impl Goal for Discovery {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Discovery(d) => Some(d),
                _ => None,
            }
        }
    }

    impl Goal for Capabilities {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Capabilities(c) => Some(c),
                _ => None,
            }
        }
    }

    impl Goal for WidgetToken {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Token(t) => Some(t),
                _ => None,
            }
        }
    }

    impl Goal for Bootstrapped {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Bootstrapped(b) => Some(b),
                _ => None,
            }
        }
    }

    impl Goal for ChatAnswer {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Call(a) => Some(a),
                _ => None,
            }
        }
    }

    impl Goal for AnonymousDiscovery {
        fn take(outcome: Outcome) -> Option<Self> {
            match outcome {
                Outcome::Anonymous(a) => Some(a),
                _ => None,
            }
        }
    }
}

pub(super) use private::{Goal, Outcome};
