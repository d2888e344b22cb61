//! A whole chat world on loopback: the emulator (API, AAD, UCWA, the
//! platform's callbacks, simulated agents), the service with its
//! switchboard and callback verifier, and a widget played over HTTP.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use ta_bootstrap::chat::{StaticRouter, Switchboard, SwitchboardOptions};
use ta_emulator::{ChatConfig, DEFAULT_APP_ID_URI, EmulatorConfig, StatsSnapshot};
use ta_protocol::chat::{Agent, Plan, Timers};
use ta_protocol::{OriginPolicy, Transport};
use ta_test_support::{Setup, setup_observed};
use ta_widget_service::callback::{CallbackAuth, CallbackVerifier, TransportKeySource};
use ta_widget_service::{ChatEndpoint, Metrics, ServiceConfig, WidgetService};

pub const ORIGIN: &str = "https://contoso.com";

/// Timers that let a chat run in seconds.
pub fn quick_chat() -> ChatConfig {
    let mut chat = ChatConfig {
        long_poll_ms: 1_500,
        invitation_timeout_ms: 3_000,
        message_timeout_ms: 3_000,
        app_idle_timeout_ms: 4_000,
        callback_timeout_ms: 2_000,
        ..ChatConfig::default()
    };
    for agent in &mut chat.agents {
        agent.join_after_ms = 200;
        agent.think_ms = 100;
        agent.type_ms = 300;
    }
    chat
}

pub struct Rig {
    pub setup: Setup,
    pub service: WidgetService,
    pub metrics: Arc<Metrics>,
    pub addr: SocketAddr,
    pub client: Arc<dyn Transport>,
}

pub fn plan() -> Plan {
    Plan::new(vec![Agent::new("sip:anna@contoso.com", "Anna (Support)")])
        .with_join_timeout(Duration::from_secs(3))
}

impl Rig {
    pub async fn start(chat: ChatConfig) -> Self {
        let config = EmulatorConfig {
            chat,
            ..EmulatorConfig::default()
        };
        Self::start_with(config, |c| c, plan()).await
    }

    /// An emulator with `config`; the service's callback expectations the
    /// emulator's defaults, changed by `auth`; chats routed by `plan`.
    pub async fn start_with(
        config: EmulatorConfig,
        auth: impl FnOnce(CallbackAuth) -> CallbackAuth,
        plan: Plan,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let setup = setup_observed(config, Arc::clone(&metrics) as _).await;
        let switchboard = Switchboard::new(
            setup.bootstrapper.clone(),
            Arc::new(StaticRouter::new(plan)),
            SwitchboardOptions::default().with_timers(Timers::uniform(Duration::from_secs(5))),
        );
        let keys = TransportKeySource::new(
            Arc::clone(&setup.transport),
            &setup.emulator.callback_keys_url(),
        )
        .unwrap();
        let auth = auth(
            CallbackAuth::new(DEFAULT_APP_ID_URI, setup.emulator.callback_issuer())
                .with_min_key_refetch(Duration::from_millis(500)),
        );
        let verifier = Arc::new(CallbackVerifier::new(auth, Arc::new(keys)));
        let allowlist =
            WidgetService::allowlist(&[ORIGIN.to_owned()], OriginPolicy::default()).unwrap();
        let service = WidgetService::new(
            setup.bootstrapper.clone(),
            ServiceConfig::new(allowlist),
            Arc::clone(&metrics),
        )
        .with_chat(ChatEndpoint::new(switchboard, verifier));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(ta_widget_service::server::serve(
            listener,
            service.router(),
            None,
            ta_widget_service::server::ServerLimits::default(),
            std::future::pending(),
        ));
        setup
            .emulator
            .set_callback_url(&format!("http://{addr}/v1/callback"))
            .unwrap();
        let client = Arc::clone(&setup.transport);
        Self {
            setup,
            service,
            metrics,
            addr,
            client,
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.setup.emulator.stats()
    }

    /// Waits (at most `limit`) until `done` holds of the emulator's
    /// counters.
    pub async fn until(
        &self,
        limit: Duration,
        done: impl Fn(&StatsSnapshot) -> bool,
    ) -> StatsSnapshot {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let stats = self.stats();
            if done(&stats) || tokio::time::Instant::now() >= end {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn open_chats_become(&self, n: usize, limit: Duration) -> usize {
        let end = tokio::time::Instant::now() + limit;
        let switchboard = self.service.switchboard().unwrap();
        while switchboard.open_chats() != n && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        switchboard.open_chats()
    }

    /// A widget with a token from the service.
    pub async fn widget(&self) -> Widget {
        let answer = send(
            &*self.client,
            "POST",
            &format!("http://{}/v1/widget-token", self.addr),
            None,
            Some(json!({})),
        )
        .await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        Widget {
            client: Arc::clone(&self.client),
            token: answer.1["token"].as_str().unwrap().to_owned(),
            discover: answer.1["discoverUri"].as_str().unwrap().to_owned(),
            base: String::new(),
            events: String::new(),
            seen: Vec::new(),
            conversation: None,
        }
    }

    pub fn metrics_text(&self) -> String {
        self.metrics.encode()
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
        panic!("no such event within {limit:?}; seen: {:#?}", self.seen);
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
    event["link"]["rel"] == "message"
        && event["_embedded"]["message"]["direction"] == "Incoming"
        && event["_embedded"]["message"]["_links"]["plainMessage"]["href"]
            .as_str()
            .and_then(|h| hal_model::DataUri::parse(h).ok())
            .is_some_and(|d| d.text().ok() == Some(text))
}
