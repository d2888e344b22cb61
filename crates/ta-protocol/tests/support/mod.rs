//! A pair harness: a flow driven against a function that plays the server,
//! on virtual time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ta_protocol::aad::TokenError;
use ta_protocol::*;

pub const DISCOVER: &str = "https://api.example.com/platformservice/discover";
pub const ENDPOINT: &str = "sip:helpdesk@contoso.com";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub url: String,
    pub authorization: Option<String>,
    pub request_id: String,
    pub origin: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub at: Duration,
}

pub type Reply = Result<http::Response<Bytes>, TransportError>;

pub struct Harness<S> {
    pub server: S,
    pub seen: Vec<Seen>,
    pub token_needs: Vec<TokenNeed>,
    pub tokens: Vec<Result<AccessToken, TokenError>>,
    pub start: Instant,
    pub now: Instant,
    pub timeouts: Vec<Duration>,
    /// The `jti` of each assertion asked for.
    pub assertion_jtis: Vec<String>,
    /// Whether signing fails.
    pub signer_fails: bool,
}

impl<S: FnMut(&Seen, usize) -> Reply> Harness<S> {
    pub fn new(server: S) -> Self {
        let start = Instant::now();
        Self {
            server,
            seen: Vec::new(),
            token_needs: Vec::new(),
            tokens: Vec::new(),
            start,
            now: start,
            timeouts: Vec::new(),
            assertion_jtis: Vec::new(),
            signer_fails: false,
        }
    }

    /// Tokens handed out in order when asked; `tok-N` after the list ends.
    pub fn with_tokens(mut self, tokens: Vec<Result<AccessToken, TokenError>>) -> Self {
        self.tokens = tokens;
        self
    }

    /// Drives any flow (an API `Flow` or the AAD `TokenFlow`) to its end.
    pub fn run<T, E, F: Driveable<T, E>>(&mut self, mut flow: F) -> Result<T, E> {
        for _ in 0..200 {
            match flow.poll_output(self.now) {
                Some(Output::Transmit(t)) => {
                    let (id, req) = t.into_parts();
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                    };
                    let seen = Seen {
                        method: req.method().to_string(),
                        url: req.uri().to_string(),
                        authorization: header("authorization"),
                        request_id: header("client-request-id").expect("client-request-id"),
                        origin: header("origin"),
                        content_type: header("content-type"),
                        body: req.body().clone(),
                        at: self.now - self.start,
                    };
                    let index = self.seen.len();
                    self.seen.push(seen.clone());
                    match (self.server)(&seen, index) {
                        Ok(resp) => flow.handle_response(id, resp, self.now).unwrap(),
                        Err(e) => flow.handle_transport_error(id, e, self.now).unwrap(),
                    }
                }
                Some(Output::NeedToken(need)) => {
                    let n = self.token_needs.len();
                    self.token_needs.push(need);
                    let token = if self.tokens.is_empty() {
                        Ok(AccessToken::new(format!("tok-{n}")))
                    } else {
                        self.tokens.remove(0)
                    };
                    flow.handle_token(token, self.now).unwrap();
                }
                Some(Output::NeedAssertion(need)) => {
                    self.assertion_jtis.push(need.jti().to_owned());
                    // Issued at a fixed wall-clock time: the signature is
                    // fake, the shape is real.
                    let input = need.signing_input(1_700_000_000);
                    let assertion = if self.signer_fails {
                        Err(aad::SignerError::new("the key is offline"))
                    } else {
                        need.finish(&input, format!("sig-{}", need.jti()).as_bytes())
                    };
                    flow.handle_assertion(assertion, self.now).unwrap();
                }
                Some(Output::Timeout(at)) => {
                    assert!(at > self.now, "a timeout must be in the future");
                    self.timeouts.push(at - self.now);
                    self.now = at;
                }
                Some(Output::Done(result)) => {
                    assert!(
                        flow.poll_output(self.now).is_none(),
                        "Done is returned once"
                    );
                    return result;
                }
                Some(_) => panic!("unexpected output"),
                None => panic!("the flow is stuck"),
            }
        }
        panic!("the flow did not finish in 200 steps");
    }

    pub fn urls(&self) -> Vec<&str> {
        self.seen.iter().map(|s| s.url.as_str()).collect()
    }
}

pub fn config() -> Arc<Config> {
    Config::builder(DISCOVER, ENDPOINT)
        .build()
        .unwrap()
        .into_shared()
}

pub fn entropy() -> Box<dyn Entropy> {
    Box::new(SeededEntropy::new(42))
}

pub fn mint_request() -> MintRequest {
    MintRequest::new(
        ApplicationSessionId::new("session-1").unwrap(),
        AllowedOrigins::parse_list(
            "https://contoso.com;https://litware.com",
            OriginPolicy::default(),
        )
        .unwrap(),
    )
}

pub fn json(status: u16, body: &str) -> Reply {
    Ok(http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-ms-correlation-id", "corr-1")
        .header("x-ms-server-fqdn", "server.example.com")
        .body(Bytes::from(body.to_owned()))
        .unwrap())
}

pub fn challenge() -> Reply {
    Ok(http::Response::builder()
        .status(401)
        .header(
            "www-authenticate",
            r#"Bearer realm="api.example.com", authorization_uri="https://login.example/common/oauth2/authorize""#,
        )
        .body(Bytes::new())
        .unwrap())
}

pub fn status_with(status: u16, headers: &[(&str, &str)]) -> Reply {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    Ok(b.body(Bytes::from_static(
        b"{\"code\":\"ServiceFailure\",\"message\":\"busy\"}",
    ))
    .unwrap())
}

pub fn discovery_body(ns: &str, apps: &str) -> String {
    format!(
        r#"{{"_links":{{"self":{{"href":"{DISCOVER}"}},"{ns}applications":{{"href":"{apps}"}},"myApplications":{{"href":"https://api.example.com/x"}}}}}}"#
    )
}

pub fn applications_body(ns: &str) -> String {
    format!(
        r#"{{"_links":{{"self":{{"href":"/platformservice/v1/applications?endpointId=sip:helpdesk@contoso.com"}},"{ns}application":{{"href":"/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"}}}},"rel":"{ns}applications"}}"#
    )
}

pub fn application_body(ns: &str, with_anon: bool) -> String {
    let anon = if with_anon {
        format!(
            r#","{ns}anonApplicationTokens":{{"href":"/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"_links":{{"self":{{"href":"/platformservice/v1/applications/1627259584?endpointId=sip%3ahelpdesk%40contoso.com"}}{anon}}},"_embedded":{{"{ns}communication":{{"_links":{{"self":{{"href":"/c"}},"{ns}startMessaging":{{"href":"/c/m"}}}},"rel":"{ns}communication","etag":"4294967295"}}}},"rel":"{ns}application"}}"#
    )
}

pub const PSAT: &str = "psat=eyJ0eXAiOiJKV1QifQ.eyJhc2kiOiJzZXNzaW9uLTEifQ.c2ln";

pub fn mint_body(ns: &str, expiry: &str, discover_href: &str) -> String {
    format!(
        r#"{{"token":"{PSAT}","expiryTime":"{expiry}","_links":{{"self":{{"href":"https://ext.example.com:4443/platformservice/v1/applications/1627259584/anonApplicationTokens?endpointId=sip:helpdesk@contoso.com"}},"{ns}discover":{{"href":"{discover_href}"}}}},"rel":"{ns}anonApplicationToken"}}"#
    )
}

pub const ANON_DISCOVER: &str = "https://api.example.com/platformService/discover?anonymousContext=psat%253deyJ0eXAiOiJKV1QifQ.eyJhc2kiOiJzZXNzaW9uLTEifQ.c2ln";

/// A well-behaved server in namespace `ns`: discovery on api.example.com,
/// the API on apps.example.com, 401 to requests without a token.
pub fn good_server(ns: &'static str) -> impl FnMut(&Seen, usize) -> Reply {
    move |req, _| {
        let url = url::Url::parse(&req.url).unwrap();
        let path = url.path().to_ascii_lowercase();
        if path == "/platformservice/discover" {
            return json(
                200,
                &discovery_body(
                    ns,
                    "https://apps.example.com/platformService/v1/applications",
                ),
            );
        }
        if req.authorization.is_none() {
            return challenge();
        }
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/platformservice/v1/applications") => json(200, &applications_body(ns)),
            ("GET", "/platformservice/v1/applications/1627259584") => {
                json(200, &application_body(ns, true))
            }
            ("POST", "/platformservice/v1/applications/1627259584/anontokens")
            | ("POST", "/platformservice/v1/applications/1627259584/anonapplicationtokens") => {
                json(
                    200,
                    &mint_body(ns, "2016-06-27T01:42:13.094Z", ANON_DISCOVER),
                )
            }
            _ => json(404, r#"{"code":"NotFound","message":"no such resource"}"#),
        }
    }
}

/// A chat call's 2xx answer, as a flow makes it (a `ChatAnswer` is only
/// made by one): a `stopMessaging` answered 201.
pub fn chat_answer() -> ChatAnswer {
    let call =
        chat::ChatCall::stop_messaging(url::Url::parse("https://api.example.com/x").unwrap());
    let trusted = Arc::new(config().trusted_hosts().clone());
    let mut flow = Flow::chat_call(
        config(),
        trusted,
        call,
        Some(AccessToken::new("t")),
        entropy(),
    );
    let now = Instant::now();
    let Some(Output::Transmit(t)) = flow.poll_output(now) else {
        panic!("the call is sent at once");
    };
    let response = http::Response::builder()
        .status(201)
        .body(Bytes::new())
        .unwrap();
    flow.handle_response(t.id(), response, now).unwrap();
    match flow.poll_output(now) {
        Some(Output::Done(Ok(answer))) => answer,
        other => panic!("{other:?}"),
    }
}
