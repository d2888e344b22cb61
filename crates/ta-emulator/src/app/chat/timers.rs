//! The platform's clocks in the chat: a visitor's invitation nobody
//! accepts, an agent who never joins, a message the visitor never
//! fetches, an application that stops polling. Each is a task that sleeps
//! for its setting and then looks.

use std::sync::Arc;
use std::time::Duration;

use hal_model::{ErrorBody, EventType, OperationStatus, Resource, chat_names as n, names};

use super::paths;
use super::world::{UcwaApp, event, group};
use crate::app::State;

impl State {
    /// A visitor's invitation the SA has not accepted in time fails: both
    /// sides are told, and the conversation is over.
    pub(super) fn spawn_invitation_timeout(self: &Arc<Self>, conversation: &str) {
        let state = Arc::clone(self);
        let conversation = conversation.to_owned();
        let wait = Duration::from_millis(self.config.chat.invitation_timeout_ms);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let expired = state
                .chat
                .with(|inner| {
                    inner
                        .conversations
                        .get_mut(&conversation)
                        .filter(|c| !c.accepted && !c.ended)
                        .map(|c| {
                            c.ended = true;
                            (c.app.clone(), c.invitation.clone())
                        })
                })
                .flatten();
            if let Some((app, invitation)) = expired {
                state.invitation_failed(
                    &conversation,
                    app.as_deref(),
                    invitation.as_deref(),
                    "Timeout",
                    "timeout",
                );
            }
        });
    }

    /// The visitor's invitation failed (`subcode`): the widget is told,
    /// and the SA.
    pub(super) fn invitation_failed(
        self: &Arc<Self>,
        conversation: &str,
        app: Option<&str>,
        invitation: Option<&str>,
        subcode: &str,
        how: &str,
    ) {
        self.chat.stat(|s| {
            s.conversations_ended += 1;
            s.ended.push(format!("visitor:{how}"));
        });
        let reason = ErrorBody::new("Gone", Some(subcode), "the invitation was not accepted");
        if let (Some(app), Some(invitation)) = (app.and_then(|a| self.chat.app(a)), invitation) {
            let href = format!(
                "{}/communication/messagingInvitations/{invitation}",
                paths::app(&app.id)
            );
            app.channel.push(group(
                hal_model::Rel::parse(names::COMMUNICATION),
                &format!("{}/communication", paths::app(&app.id)),
                vec![
                    event(
                        hal_model::Rel::parse(n::MESSAGING_INVITATION),
                        &href,
                        EventType::Completed,
                        Some(Resource::new().with_property("state", "Failed")),
                    )
                    .with_status(OperationStatus::Failure, Some(reason.clone())),
                ],
            ));
            self.widget_conversation_over(&app, conversation);
        }
        if let Some(invitation) = invitation {
            let href = self.sa_href(&format!("/messagingInvitations/{invitation}"));
            self.to_sa(
                conversation,
                vec![group(
                    self.rel(names::COMMUNICATION),
                    &self.sa_href(""),
                    vec![
                        event(
                            self.rel(n::MESSAGING_INVITATION),
                            &href,
                            EventType::Completed,
                            Some(
                                Resource::new()
                                    .with_property("state", "Failed")
                                    .with_property("direction", "Incoming"),
                            ),
                        )
                        .with_status(OperationStatus::Failure, Some(reason)),
                    ],
                )],
                false,
            );
        }
    }

    /// A message to the visitor (event `seq` on `app`'s channel) that is
    /// not fetched in time is not delivered: its sender is told on
    /// `conversation`.
    pub(super) fn spawn_message_watch(
        self: &Arc<Self>,
        app: &Arc<UcwaApp>,
        seq: u64,
        conversation: &str,
        message_href: &str,
    ) {
        let state = Arc::clone(self);
        let app = Arc::clone(app);
        let conversation = conversation.to_owned();
        let href = message_href.to_owned();
        let wait = Duration::from_millis(self.config.chat.message_timeout_ms);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if app.channel.is_served(seq) {
                return;
            }
            state.chat.stat(|s| s.undelivered_messages += 1);
            let reason = ErrorBody::new("Gone", Some("Timeout"), "the message was not delivered");
            let failed = Resource::new()
                .with_property("direction", "Outgoing")
                .with_rel(state.rel(n::MESSAGE));
            state.to_sa(
                &conversation,
                vec![group(
                    state.rel(n::CONVERSATION),
                    &state.sa_conversation(&conversation, ""),
                    vec![
                        event(
                            state.rel(n::MESSAGE),
                            &href,
                            EventType::Completed,
                            Some(failed),
                        )
                        .with_status(OperationStatus::Failure, Some(reason)),
                    ],
                )],
                false,
            );
        });
    }

    /// Expires the application once it has not polled for the idle timeout
    /// (the widget vanished): its conversation ends.
    pub(super) fn spawn_idle_watch(self: &Arc<Self>, app_id: &str) {
        let state = Arc::downgrade(self);
        let app_id = app_id.to_owned();
        let limit = Duration::from_millis(self.config.chat.app_idle_timeout_ms);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(limit / 4).await;
                let Some(state) = state.upgrade() else {
                    return;
                };
                let Some(app) = state.chat.app(&app_id) else {
                    return;
                };
                if app.channel.idle_for() >= limit {
                    state.end_application(&app, "expired");
                    return;
                }
            }
        });
    }

    /// Signs the application out (or expires it): its conversation ends
    /// and it is gone.
    pub(super) fn end_application(self: &Arc<Self>, app: &Arc<UcwaApp>, how: &str) {
        let open = self
            .chat
            .with(|inner| {
                inner.remove_app(app);
                inner
                    .conversations
                    .values()
                    .find(|c| c.app.as_deref() == Some(&app.id) && !c.ended)
                    .map(|c| c.id.clone())
            })
            .flatten();
        if let Some(conversation) = open {
            let _ = self.visitor_left(app, &conversation, how);
        }
        app.channel.close();
    }
}
