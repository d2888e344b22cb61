//! A chat widget, played over HTTP from a page on [`ORIGIN`]: its token
//! from the service, the anonymous discovery, its UCWA application and
//! event channel, and the chat calls; and what it has seen.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use ta_protocol::Transport;

/// The page's origin.
pub const ORIGIN: &str = "https://contoso.com";

/// The help desk's first message in every chat (the default plan's).
pub const WELCOME: &str = "Welcome! An agent will be with you shortly.";

/// One of the widget's steps that did not go as a page expects: which
/// step, the status answered (none when there was no HTTP answer), and
/// what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailed {
    /// The step: `token`, `discover`, `sign-in`, `start`, `poll`, `say`, …
    pub step: &'static str,
    /// The status answered, if any.
    pub status: Option<u16>,
    /// What was wrong.
    pub detail: String,
}

impl std::fmt::Display for StepFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{}: {status}: {}", self.step, self.detail),
            None => write!(f, "{}: no answer: {}", self.step, self.detail),
        }
    }
}

impl StepFailed {
    fn new(step: &'static str, status: Option<u16>, detail: impl Into<String>) -> Self {
        Self {
            step,
            status,
            detail: detail.into(),
        }
    }
}

/// Sends a request from the page: `Origin` set, the psat token if given.
pub async fn send(
    client: &dyn Transport,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, http::HeaderMap) {
    send_raw(
        client,
        method,
        url,
        token,
        body.map(|b| ("application/json", Bytes::from(b.to_string()))),
    )
    .await
}

/// The same with a body of any type; panics when there is no answer.
pub async fn send_raw(
    client: &dyn Transport,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Bytes)>,
) -> (u16, Value, http::HeaderMap) {
    try_send_raw(client, ORIGIN, method, url, token, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Sends a request from a page on `origin`; the status, the body as JSON
/// (`Null` when it is not) and the headers, or why there was no answer.
pub async fn try_send_raw(
    client: &dyn Transport,
    origin: &str,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Bytes)>,
) -> Result<(u16, Value, http::HeaderMap), String> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("origin", origin)
        .header("accept", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some((kind, bytes)) => request.header("content-type", kind).body(bytes),
        None => request.body(Bytes::new()),
    }
    .map_err(|e| e.to_string())?;
    let response = client.send(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    Ok((status, value, headers))
}

/// A browser's CORS preflight of a `method` request with an
/// `Authorization` header to `url` from `origin`: the
/// `Access-Control-Allow-Origin` answered, if any.
pub async fn preflight(
    client: &dyn Transport,
    method: &str,
    url: &str,
    origin: &str,
) -> Option<String> {
    let request = http::Request::builder()
        .method("OPTIONS")
        .uri(url)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "authorization")
        .body(Bytes::new())
        .unwrap();
    let response = client.send(request).await.unwrap();
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The chat widget, played: its application, its event channel, what it
/// has seen. Each step has a `try_` form that returns what went wrong
/// instead of panicking (for the soak, where faults are expected), and a
/// form that panics (for tests that expect every step to work).
pub struct Widget {
    pub client: Arc<dyn Transport>,
    /// The page's origin (every request sends it).
    pub origin: String,
    pub token: String,
    pub discover: String,
    /// The application's URL (absolute).
    pub base: String,
    /// The next events poll (absolute).
    pub events: String,
    /// Every event seen, in order: (sender rel, event).
    pub seen: Vec<Value>,
    pub conversation: Option<Value>,
}

/// `value` as a string, or the step's failure naming `what`.
fn text<'a>(
    value: &'a Value,
    step: &'static str,
    status: u16,
    what: &str,
) -> Result<&'a str, StepFailed> {
    value
        .as_str()
        .ok_or_else(|| StepFailed::new(step, Some(status), format!("no {what}")))
}

impl Widget {
    /// A widget on [`ORIGIN`] with a token from the service at `service`
    /// (its base URL).
    pub async fn from_service(client: Arc<dyn Transport>, service: &str) -> Self {
        Self::try_from_service(client, service, ORIGIN)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A widget on `origin` with a token from the service at `service`.
    pub async fn try_from_service(
        client: Arc<dyn Transport>,
        service: &str,
        origin: &str,
    ) -> Result<Self, StepFailed> {
        let url = format!("{service}/v1/widget-token");
        let body = Some(("application/json", Bytes::from_static(b"{}")));
        let (status, answer, _) = try_send_raw(&*client, origin, "POST", &url, None, body)
            .await
            .map_err(|e| StepFailed::new("token", None, e))?;
        if status != 200 {
            let code = answer["error"].as_str().unwrap_or("no error code");
            return Err(StepFailed::new("token", Some(status), code));
        }
        Ok(Self {
            token: text(&answer["token"], "token", status, "token")?.to_owned(),
            discover: text(&answer["discoverUri"], "token", status, "discoverUri")?.to_owned(),
            client,
            origin: origin.to_owned(),
            base: String::new(),
            events: String::new(),
            seen: Vec::new(),
            conversation: None,
        })
    }

    /// `href` resolved against the discover link.
    pub fn absolute(&self, href: &str) -> String {
        self.try_absolute(href).unwrap()
    }

    fn try_absolute(&self, href: &str) -> Result<String, String> {
        let base =
            url::Url::parse(&self.discover).map_err(|e| format!("{}: {e}", self.discover))?;
        base.join(href)
            .map(|u| u.to_string())
            .map_err(|e| format!("{href}: {e}"))
    }

    /// Sends from the widget's page, with its token if `authorized`.
    async fn request(
        &self,
        step: &'static str,
        method: &str,
        url: &str,
        authorized: bool,
        body: Option<(&str, Bytes)>,
    ) -> Result<(u16, Value), StepFailed> {
        let token = authorized.then_some(self.token.as_str());
        try_send_raw(&*self.client, &self.origin, method, url, token, body)
            .await
            .map(|(status, value, _)| (status, value))
            .map_err(|e| StepFailed::new(step, None, e))
    }

    /// A link of an answer, absolute.
    fn link(
        &self,
        value: &Value,
        step: &'static str,
        status: u16,
        what: &str,
    ) -> Result<String, StepFailed> {
        let href = text(value, step, status, what)?;
        self.try_absolute(href)
            .map_err(|e| StepFailed::new(step, Some(status), e))
    }

    /// Discovery, then the anonymous application.
    pub async fn sign_in(&mut self) -> Value {
        self.try_sign_in().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same; what went wrong, if anything.
    pub async fn try_sign_in(&mut self) -> Result<Value, StepFailed> {
        let discover = self.discover.clone();
        let (status, discovered) = self
            .request("discover", "GET", &discover, false, None)
            .await?;
        if status != 200 {
            return Err(StepFailed::new(
                "discover",
                Some(status),
                discovered.to_string(),
            ));
        }
        let anon = self.link(
            &discovered["_links"]["anonApplications"]["href"],
            "discover",
            status,
            "anonApplications link",
        )?;
        let body = json!({"anonymousDisplayName": "Jane", "culture": "en-US", "userAgent": "chat-test/1.0"});
        let body = Some(("application/json", Bytes::from(body.to_string())));
        let (status, app) = self.request("sign-in", "POST", &anon, true, body).await?;
        if status != 201 {
            return Err(StepFailed::new("sign-in", Some(status), app.to_string()));
        }
        self.base = self.link(
            &app["_links"]["self"]["href"],
            "sign-in",
            status,
            "self link",
        )?;
        self.events = self.link(
            &app["_links"]["events"]["href"],
            "sign-in",
            status,
            "events link",
        )?;
        Ok(app)
    }

    /// Signs in, invites the help desk (201) and waits up to `within` for
    /// the help desk's [`WELCOME`]; the signed-in application.
    pub async fn open_chat(&mut self, within: Duration) -> Value {
        let app = self.sign_in().await;
        assert_eq!(self.start_chat(&app).await, 201, "start the chat");
        self.poll_until(within, |e| is_message(e, WELCOME)).await;
        app
    }

    /// Invites the help desk; the status answered.
    pub async fn start_chat(&mut self, app: &Value) -> u16 {
        self.try_start_chat(app)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same; no answer or no link is a failure.
    pub async fn try_start_chat(&mut self, app: &Value) -> Result<u16, StepFailed> {
        let start = self.link(
            &app["_embedded"]["communication"]["_links"]["startMessaging"]["href"],
            "start",
            201,
            "startMessaging link",
        )?;
        let body = json!({"to": "sip:helpdesk@contoso.com", "operationId": "w-1", "subject": "Order question"});
        let body = Some(("application/json", Bytes::from(body.to_string())));
        Ok(self.request("start", "POST", &start, true, body).await?.0)
    }

    /// One poll; follows `next` (or `resync`); the events it brought.
    pub async fn poll(&mut self) -> Vec<Value> {
        self.try_poll().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same; a poll that is not answered 200 with a next link is a
    /// failure (the next poll goes to the same link again).
    pub async fn try_poll(&mut self) -> Result<Vec<Value>, StepFailed> {
        let events = self.events.clone();
        let (status, answer) = self.request("poll", "GET", &events, true, None).await?;
        if status != 200 {
            return Err(StepFailed::new("poll", Some(status), answer.to_string()));
        }
        let next = answer["_links"]["next"]["href"]
            .as_str()
            .or(answer["_links"]["resync"]["href"].as_str())
            .map(|href| Value::String(href.to_owned()))
            .unwrap_or_default();
        self.events = self.link(&next, "poll", status, "next link")?;
        let mut brought = Vec::new();
        for sender in answer["sender"].as_array().cloned().unwrap_or_default() {
            for event in sender["events"].as_array().cloned().unwrap_or_default() {
                brought.push(event);
            }
        }
        self.seen.extend(brought.iter().cloned());
        Ok(brought)
    }

    /// Polls until an event matches (at most `limit`).
    pub async fn poll_until(&mut self, limit: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let end = tokio::time::Instant::now() + limit;
        if let Some(found) = self.seen.iter().find(|e| wanted(e)).cloned() {
            return found;
        }
        while tokio::time::Instant::now() < end {
            for event in self.poll().await {
                if wanted(&event) {
                    return event;
                }
            }
        }
        let summary: Vec<String> = self
            .seen
            .iter()
            .map(|e| format!("{} {} {}", e["type"], e["link"]["rel"], e["link"]["href"]))
            .collect();
        panic!("no such event within {limit:?}; seen: {summary:#?}");
    }

    /// The messaging links, once connected.
    pub fn messaging_link(&self, rel: &str) -> String {
        self.try_messaging_link(rel)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same; none before the messaging is connected.
    pub fn try_messaging_link(&self, rel: &str) -> Result<String, StepFailed> {
        let event = self
            .seen
            .iter()
            .rev()
            .find(|e| {
                e["link"]["rel"] == "messaging"
                    && e["_embedded"]["messaging"]["state"] == "Connected"
            })
            .ok_or_else(|| StepFailed::new("messaging", None, "not connected"))?;
        self.link(
            &event["_embedded"]["messaging"]["_links"][rel]["href"],
            "messaging",
            200,
            rel,
        )
    }

    pub async fn say(&self, text: &str) -> u16 {
        self.try_say(text).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends `text`; the status answered.
    pub async fn try_say(&self, text: &str) -> Result<u16, StepFailed> {
        let url = format!(
            "{}?operationId=w-msg",
            self.try_messaging_link("sendMessage")?
        );
        let body = Some(("text/plain; charset=utf-8", Bytes::from(text.to_owned())));
        Ok(self.request("say", "POST", &url, true, body).await?.0)
    }

    pub async fn post(&self, rel: &str) -> u16 {
        self.try_post(rel).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Posts to the messaging link `rel` (`stopMessaging`, …); the status.
    pub async fn try_post(&self, rel: &str) -> Result<u16, StepFailed> {
        let url = self.try_messaging_link(rel)?;
        Ok(self.request("post", "POST", &url, true, None).await?.0)
    }
}

pub fn is_message(event: &Value, text: &str) -> bool {
    message_text(event).as_deref() == Some(text)
}

/// The text of an incoming message event (the SA's or an agent's).
pub fn message_text(event: &Value) -> Option<String> {
    if event["link"]["rel"] != "message" || event["_embedded"]["message"]["direction"] != "Incoming"
    {
        return None;
    }
    let href = event["_embedded"]["message"]["_links"]["plainMessage"]["href"].as_str()?;
    let uri = hal_model::DataUri::parse(href).ok()?;
    uri.text().ok().map(str::to_owned)
}
