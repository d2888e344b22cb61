//! A whole chat world on loopback: the emulator (API, AAD, UCWA, the
//! platform's callbacks, simulated agents), the service with its
//! switchboard and callback verifier, and a widget played over HTTP.
#![allow(dead_code, unreachable_pub, missing_docs, unused_imports)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ta_bootstrap::chat::{StaticRouter, Switchboard, SwitchboardOptions};
use ta_emulator::{ChatConfig, DEFAULT_APP_ID_URI, EmulatorConfig, StatsSnapshot};
use ta_protocol::chat::{Agent, Plan, Timers};
use ta_protocol::{OriginPolicy, Transport};
pub use ta_test_support::widget::{ORIGIN, Widget, is_message, preflight, send, send_raw};
use ta_test_support::{Setup, setup_observed};
use ta_widget_service::callback::{CallbackAuth, CallbackVerifier, TransportKeySource};
use ta_widget_service::server::{Server, ServerLimits};
use ta_widget_service::{ChatEndpoint, Metrics, ServiceConfig, WidgetService};

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

/// A widget-token service with the chat, on `bootstrapper` against
/// `setup`'s emulator: its switchboard run with `options` and routed by
/// `plan`, its callbacks checked against the emulator's keys with `auth`'s
/// expectations, its endpoint changed by `endpoint`.
pub fn chat_service(
    setup: &Setup,
    bootstrapper: ta_bootstrap::Bootstrapper,
    metrics: Arc<Metrics>,
    plan: Plan,
    options: SwitchboardOptions,
    auth: impl FnOnce(CallbackAuth) -> CallbackAuth,
    endpoint: impl FnOnce(ChatEndpoint) -> ChatEndpoint,
) -> WidgetService {
    let switchboard = Switchboard::new(
        bootstrapper.clone(),
        Arc::new(StaticRouter::new(plan)),
        options,
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
    WidgetService::new(bootstrapper, ServiceConfig::new(allowlist), metrics)
        .with_chat(endpoint(ChatEndpoint::new(switchboard, verifier)))
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
        Self::start_full(config, auth, plan, |options, _| options).await
    }

    /// The same, the switchboard's options changed by `options` (given the
    /// service's address).
    pub async fn start_full(
        config: EmulatorConfig,
        auth: impl FnOnce(CallbackAuth) -> CallbackAuth,
        plan: Plan,
        options: impl FnOnce(SwitchboardOptions, SocketAddr) -> SwitchboardOptions,
    ) -> Self {
        Self::start_all(config, auth, plan, options, ServerLimits::default()).await
    }

    /// A quick chat's world, the service's accept loop bounded by `limits`.
    pub async fn start_limited(chat: ChatConfig, limits: ServerLimits) -> Self {
        let config = EmulatorConfig {
            chat,
            ..EmulatorConfig::default()
        };
        Self::start_all(config, |a| a, plan(), |o, _| o, limits).await
    }

    async fn start_all(
        config: EmulatorConfig,
        auth: impl FnOnce(CallbackAuth) -> CallbackAuth,
        plan: Plan,
        options: impl FnOnce(SwitchboardOptions, SocketAddr) -> SwitchboardOptions,
        limits: ServerLimits,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let setup = setup_observed(config, Arc::clone(&metrics) as _).await;
        let service = chat_service(
            &setup,
            setup.bootstrapper.clone(),
            Arc::clone(&metrics),
            plan,
            options(
                SwitchboardOptions::default().with_timers(Timers::uniform(Duration::from_secs(5))),
                addr,
            ),
            auth,
            |endpoint| endpoint,
        );
        tokio::spawn(
            Server::new(listener, service.router())
                .limits(limits)
                .metrics(Arc::clone(&metrics))
                .serve(std::future::pending()),
        );
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
        Widget::from_service(Arc::clone(&self.client), &format!("http://{}", self.addr)).await
    }

    /// `GET /metrics` of the service, as a scraper sees it.
    pub async fn scrape(&self) -> String {
        let request = http::Request::get(format!("http://{}/metrics", self.addr))
            .body(bytes::Bytes::new())
            .unwrap();
        let response = self.client.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        String::from_utf8(response.body().to_vec()).unwrap()
    }

    pub fn metrics_text(&self) -> String {
        self.metrics.encode()
    }
}
