//! The platform's callbacks to the SA: one ordered queue, each delivery
//! signed as the real API's were (an RS256 token for the SA's App ID URI
//! from the tenant's issuer, `appid` the platform's), retried a little,
//! with the duplicate, reorder and delay faults.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use hal_model::{CallbackAnswer, Events, Link, Rel, Sender};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::world::Target;
use crate::app::State;

/// One callback to deliver: events of one conversation.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The conversation the events belong to.
    pub(super) conversation: String,
    pub(super) senders: Vec<Sender>,
    /// The conversation's first callback: it goes to the default URL, and
    /// the SA's answer may set the context of the later ones.
    pub(super) first: bool,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client(ca_pem: Option<&str>) -> Option<HttpsClient> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            let _ = roots.add(cert);
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Some(Client::builder(TokioExecutor::new()).build(connector))
}

/// Delivers the queue's callbacks in order until the emulator is gone.
pub(crate) async fn run(
    state: Weak<State>,
    ca_pem: Option<String>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
) {
    let Some(client) = client(ca_pem.as_deref()) else {
        warn!("no TLS client for callbacks");
        return;
    };
    let ack = AtomicU64::new(1);
    let mut held: Option<Outgoing> = None;
    loop {
        if let Some(earlier) = held.take() {
            // Held for a reordering: the next one goes first, if it comes
            // soon.
            let next = tokio::time::timeout(Duration::from_millis(200), queue.recv()).await;
            let Some(state) = state.upgrade() else {
                return;
            };
            if let Ok(Some(later)) = &next {
                state.stats.count_fault("callback_reordered");
                deliver(&state, &client, &ack, later).await;
            }
            deliver(&state, &client, &ack, &earlier).await;
            match next {
                Ok(Some(_)) | Err(_) => continue,
                Ok(None) => return,
            }
        }
        let Some(item) = queue.recv().await else {
            return;
        };
        let Some(state) = state.upgrade() else {
            return;
        };
        if state.chat.callback_faults().reorder && !item.first {
            held = Some(item);
            continue;
        }
        deliver(&state, &client, &ack, &item).await;
    }
}

async fn deliver(state: &Arc<State>, client: &HttpsClient, ack: &AtomicU64, item: &Outgoing) {
    let faults = state.chat.callback_faults();
    if faults.delay_ms > 0 {
        state.stats.count_fault("callback_delayed");
        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
    }
    let target = state
        .chat
        .with(|inner| {
            inner
                .conversations
                .get(&item.conversation)
                .and_then(|c| c.target.clone())
        })
        .flatten()
        .filter(|_| !item.first);
    let default = state.chat.callback_url.lock().ok().and_then(|u| u.clone());
    let Some(target) = target.or_else(|| default.map(|url| Target { url, context: None })) else {
        warn!("a callback has nowhere to go: no callback URL is registered");
        state.chat.stat(|s| s.callbacks_failed += 1);
        return;
    };
    let mut url = target.url.clone();
    if let Some(context) = &target.context {
        url.query_pairs_mut()
            .append_pair("callbackContext", context);
    }
    let n = ack.fetch_add(1, Ordering::Relaxed);
    let events_href = |n: u64| {
        format!(
            "/{}/v1/applications/{}/events?ack={n}&key={}",
            state.ps(),
            crate::DEFAULT_APPLICATION_ID,
            item.conversation
        )
    };
    let mut envelope = Events::new(item.senders.clone());
    envelope
        .links_mut()
        .insert(Rel::parse("self"), Link::new(events_href(n)));
    envelope
        .links_mut()
        .insert(Rel::parse("next"), Link::new(events_href(n + 1)));
    envelope.baseuri = Some(format!("{}://{}", state.scheme(), state.api_host()));
    let body = Bytes::from(hal_model::to_vec(&envelope));
    let times = if faults.duplicate { 2 } else { 1 };
    for copy in 0..times {
        if copy > 0 {
            state.stats.count_fault("callback_duplicated");
        }
        if let Some(answer) = post(state, client, &url, &body).await
            && item.first
            && let Some(context) = answer.callback_context
        {
            let default = target.url.clone();
            state.chat.with(|inner| {
                if let Some(c) = inner.conversations.get_mut(&item.conversation) {
                    c.target.get_or_insert(Target {
                        url: default,
                        context: Some(context),
                    });
                }
            });
        }
    }
}

/// One delivery with its retries: the SA's answer, if it took it.
async fn post(
    state: &Arc<State>,
    client: &HttpsClient,
    url: &url::Url,
    body: &Bytes,
) -> Option<CallbackAnswer> {
    let chat = &state.config.chat;
    for attempt in 0..=chat.callback_retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
        }
        let Ok(token) = state.callback_token() else {
            warn!("callbacks cannot be signed");
            return None;
        };
        let request = http::Request::post(url.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(
                http::header::CONTENT_TYPE,
                r#"application/json; type="application/vnd.microsoft.com.ucwa+json"; charset=utf-8"#,
            )
            .header("x-ms-correlation-id", state.next_correlation())
            .header("client-request-id", state.next_correlation())
            .body(Full::new(body.clone()));
        let Ok(request) = request else {
            return None;
        };
        let timeout = Duration::from_millis(chat.callback_timeout_ms);
        state.chat.stat(|s| s.callback_attempts += 1);
        // The callback crosses the network distance, as the API's answers do.
        let sent = async {
            state.network.cross(1).await;
            client.request(request).await
        };
        match tokio::time::timeout(timeout, sent).await {
            Ok(Ok(response)) if response.status().is_success() => {
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                state.chat.stat(|s| s.callbacks_delivered += 1);
                return Some(hal_model::from_slice(&bytes).unwrap_or_default());
            }
            Ok(Ok(response)) => {
                let status = response.status();
                debug!(%status, "the SA refused a callback");
                state.chat.stat(|s| s.callbacks_refused += 1);
                if status.is_client_error() {
                    return None;
                }
            }
            Ok(Err(error)) => debug!(%error, "a callback was not delivered"),
            Err(_) => debug!("a callback timed out"),
        }
    }
    state.chat.stat(|s| s.callbacks_failed += 1);
    None
}

impl State {
    /// A callback token, as AAD issued them to the platform for the SA.
    pub(in crate::app) fn callback_token(&self) -> Result<String, String> {
        let keys = crate::signing::dev_callback_keys()?;
        let index = self.chat.signing_key.load(Ordering::Relaxed).min(1);
        let now = self.now_u64();
        let issuer = format!("https://sts.windows.net/{}/", self.config.tenant_id);
        let claims = serde_json::json!({
            "aud": self.config.chat.callback_audience,
            "iss": issuer,
            "idp": issuer,
            "tid": self.config.tenant_id,
            "appid": hal_model::PLATFORM_APP_ID,
            "appidacr": "2",
            "oid": "6c9b0a52-0000-4000-8000-0000000000fa",
            "sub": "6c9b0a52-0000-4000-8000-0000000000fa",
            "iat": now,
            "nbf": now,
            "exp": now + 3900,
            "ver": "1.0",
        });
        keys.get(index).ok_or("no callback key")?.sign_jwt(&claims)
    }

    /// The keys document the platform's callback tokens check against:
    /// the first key, and the second once keys rotated.
    pub(in crate::app) fn callback_keys(&self) -> serde_json::Value {
        let Ok(keys) = crate::signing::dev_callback_keys() else {
            return serde_json::json!({"keys": []});
        };
        let rotated = self.chat.signing_key.load(Ordering::Relaxed) > 0;
        crate::signing::jwks(keys.iter().take(if rotated { 2 } else { 1 }))
    }
}
