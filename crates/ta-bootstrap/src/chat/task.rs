//! One chat's task: the routing decision, then the bridge driven until it
//! is over: its calls sent, its timers kept, its notices logged and
//! reported.

use std::sync::Arc;

use ta_protocol::chat::{Bridge, CallFailure, Callback, ChatCall, ChatId, IncomingChat, Notice};
use ta_protocol::{ChatAnswer, Flow};
use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use super::Routing;
use super::switchboard::Shared;
use crate::BootstrapError;

/// What a chat's task is told.
#[derive(Debug)]
pub(super) enum Input {
    /// A callback of this chat.
    Callback(Box<Callback>),
    /// End now (shutdown, reload).
    ShutDown,
}

pub(super) async fn run_chat(
    shared: Arc<Shared>,
    id: ChatId,
    chat: IncomingChat,
    first: Callback,
    inputs: mpsc::UnboundedReceiver<Input>,
) {
    let span = info_span!("chat", chat_id = %id);
    drive_chat(&shared, id.clone(), chat, first, inputs)
        .instrument(span)
        .await;
    shared.remove(&id);
}

async fn drive_chat(
    shared: &Shared,
    id: ChatId,
    chat: IncomingChat,
    first: Callback,
    mut inputs: mpsc::UnboundedReceiver<Input>,
) {
    let clock = shared.bootstrapper.clock();
    let timers = shared.options.timers;
    info!(to = ?chat.to, "a visitor's chat arrived");
    let routing = tokio::time::timeout(timers.operation_timeout, shared.router.route(&chat)).await;
    let now = clock.now();
    let mut bridge = match routing {
        Ok(Routing::Accept(plan)) => {
            info!(agents = plan.agents.len(), "chat accepted");
            let meeting_callback = shared.options.meeting_callback.clone().map(|mut url| {
                url.query_pairs_mut()
                    .append_pair("callbackContext", id.as_str());
                url
            });
            Bridge::accept(id, chat, plan, timers, meeting_callback, now)
        }
        Ok(Routing::Decline) => {
            info!("chat declined by the router");
            Bridge::decline(id, chat, now)
        }
        Err(_) => {
            warn!("the router did not answer in time: the chat is declined");
            Bridge::decline(id, chat, now)
        }
    };
    bridge.handle_callback(&first, clock.now());
    loop {
        while let Some((call_id, call)) = bridge.poll_call() {
            match send(shared, call).await {
                Ok(answer) => {
                    bridge.handle_answer(call_id, Ok::<_, BootstrapError>(answer), clock.now())
                }
                // The bridge decides what is sent again, and when.
                Err((error, failure)) => {
                    bridge.handle_failure(call_id, error, failure, clock.now());
                }
            }
        }
        while let Some(notice) = bridge.poll_notice() {
            report(shared, &notice);
        }
        if bridge.is_ended() {
            return;
        }
        let wake = bridge.poll_timeout();
        let input = match wake {
            Some(at) => {
                let deadline = tokio::time::Instant::from_std(at);
                match tokio::time::timeout_at(deadline, inputs.recv()).await {
                    Ok(input) => input,
                    Err(_) => {
                        bridge.handle_timeout(clock.now());
                        continue;
                    }
                }
            }
            None => inputs.recv().await,
        };
        match input {
            Some(Input::Callback(callback)) => bridge.handle_callback(&callback, clock.now()),
            Some(Input::ShutDown) | None => bridge.shut_down(clock.now()),
        }
    }
}

/// Sends one call with the AAD token, to the hosts discovery trusts. A
/// failure comes with what it says about sending the call again; one
/// before the call (the capabilities it needs) never says it is gone.
async fn send(
    shared: &Shared,
    call: ChatCall,
) -> Result<ChatAnswer, (BootstrapError, CallFailure)> {
    let bootstrapper = &shared.bootstrapper;
    let caps = bootstrapper.capabilities().await.map_err(|error| {
        let failure = if error.is_transient() {
            CallFailure::Transient
        } else {
            CallFailure::Refused
        };
        (error, failure)
    })?;
    let flow = Flow::chat_call(
        Arc::clone(bootstrapper.config()),
        Arc::clone(&caps.discovery.trusted_hosts),
        call,
        None,
        bootstrapper.entropy(),
    );
    bootstrapper.drive(flow).await.map_err(|error| {
        let error = BootstrapError::from(error);
        let failure = error.call_failure();
        (error, failure)
    })
}

fn report(shared: &Shared, notice: &Notice) {
    match notice {
        Notice::Bridged { after } => info!(after_ms = after.as_millis() as u64, "chat bridged"),
        Notice::AgentJoined { uri, after } => {
            info!(agent = %uri, after_ms = after.as_millis() as u64, "agent joined");
        }
        Notice::AgentLeft { uri } => info!(agent = %uri, "agent left"),
        Notice::Message { from } => tracing::debug!(from = from.label(), "message"),
        Notice::CallFailed { kind, error } => {
            warn!(call = kind.label(), %error, "chat call failed")
        }
        Notice::Ended { by, after } => {
            info!(by = by.label(), after_ms = after.as_millis() as u64, reason = ?by, "chat ended");
        }
        _ => {}
    }
    if let Some(observer) = shared.bootstrapper.observer() {
        observer.chat(notice);
    }
}
