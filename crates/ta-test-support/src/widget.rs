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

pub async fn send_raw(
    client: &dyn Transport,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Bytes)>,
) -> (u16, Value, http::HeaderMap) {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("origin", ORIGIN)
        .header("accept", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some((kind, bytes)) => request.header("content-type", kind).body(bytes),
        None => request.body(Bytes::new()),
    }
    .unwrap();
    let response = client.send(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (status, value, headers)
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
/// has seen.
pub struct Widget {
    pub client: Arc<dyn Transport>,
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

impl Widget {
    /// A widget with a token from the service at `service` (its base URL).
    pub async fn from_service(client: Arc<dyn Transport>, service: &str) -> Self {
        let answer = send(
            &*client,
            "POST",
            &format!("{service}/v1/widget-token"),
            None,
            Some(json!({})),
        )
        .await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        Self {
            client,
            token: answer.1["token"].as_str().unwrap().to_owned(),
            discover: answer.1["discoverUri"].as_str().unwrap().to_owned(),
            base: String::new(),
            events: String::new(),
            seen: Vec::new(),
            conversation: None,
        }
    }

    /// `href` resolved against the discover link.
    pub fn absolute(&self, href: &str) -> String {
        let base = url::Url::parse(&self.discover).unwrap();
        base.join(href).unwrap().to_string()
    }

    /// Discovery, then the anonymous application.
    pub async fn sign_in(&mut self) -> Value {
        let (status, discovered, _) = send(&*self.client, "GET", &self.discover, None, None).await;
        assert_eq!(status, 200, "{discovered}");
        let anon = self.absolute(
            discovered["_links"]["anonApplications"]["href"]
                .as_str()
                .unwrap(),
        );
        let body = json!({"anonymousDisplayName": "Jane", "culture": "en-US", "userAgent": "chat-test/1.0"});
        let (status, app, _) =
            send(&*self.client, "POST", &anon, Some(&self.token), Some(body)).await;
        assert_eq!(status, 201, "{app}");
        self.base = self.absolute(app["_links"]["self"]["href"].as_str().unwrap());
        self.events = self.absolute(app["_links"]["events"]["href"].as_str().unwrap());
        app
    }

    pub async fn start_chat(&mut self, app: &Value) -> u16 {
        let start = self.absolute(
            app["_embedded"]["communication"]["_links"]["startMessaging"]["href"]
                .as_str()
                .unwrap(),
        );
        let body = json!({"to": "sip:helpdesk@contoso.com", "operationId": "w-1", "subject": "Order question"});
        send(&*self.client, "POST", &start, Some(&self.token), Some(body))
            .await
            .0
    }

    /// One poll; follows `next` (or `resync`); the events it brought.
    pub async fn poll(&mut self) -> Vec<Value> {
        let (status, answer, _) =
            send(&*self.client, "GET", &self.events, Some(&self.token), None).await;
        assert_eq!(status, 200, "{answer}");
        let next = answer["_links"]["next"]["href"]
            .as_str()
            .or(answer["_links"]["resync"]["href"].as_str())
            .unwrap();
        self.events = self.absolute(next);
        let mut brought = Vec::new();
        for sender in answer["sender"].as_array().cloned().unwrap_or_default() {
            for event in sender["events"].as_array().cloned().unwrap_or_default() {
                brought.push(event);
            }
        }
        self.seen.extend(brought.iter().cloned());
        brought
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
        let event = self
            .seen
            .iter()
            .rev()
            .find(|e| {
                e["link"]["rel"] == "messaging"
                    && e["_embedded"]["messaging"]["state"] == "Connected"
            })
            .unwrap();
        self.absolute(
            event["_embedded"]["messaging"]["_links"][rel]["href"]
                .as_str()
                .unwrap(),
        )
    }

    pub async fn say(&self, text: &str) -> u16 {
        let url = format!("{}?operationId=w-msg", self.messaging_link("sendMessage"));
        send_raw(
            &*self.client,
            "POST",
            &url,
            Some(&self.token),
            Some(("text/plain; charset=utf-8", Bytes::from(text.to_owned()))),
        )
        .await
        .0
    }

    pub async fn post(&self, rel: &str) -> u16 {
        send(
            &*self.client,
            "POST",
            &self.messaging_link(rel),
            Some(&self.token),
            None,
        )
        .await
        .0
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
