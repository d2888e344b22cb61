//! The visitor's side of the SA's calls: accept-and-bridge (S3), the
//! bridged participants (S4), the SA's messages (S5), stopping the
//! visitor's messaging (S9) and declining (S11).

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use hal_model::{
    AcceptAndBridgeInput, BridgedParticipantInput, EventType, Link, OperationStatus, Rel, Resource,
    chat_names as n, names,
};
use http::StatusCode;

use super::paths;
use super::world::{event, group};
use crate::app::State;

impl State {
    /// S3.
    pub(super) fn accept_and_bridge(&self, invitation: &str, body: &[u8]) -> Response {
        let input: AcceptAndBridgeInput = match self.parse(body) {
            Ok(input) => input,
            Err(response) => return response,
        };
        let helpdesk = input
            .local_user_display_name
            .clone()
            .unwrap_or_else(|| "Help Desk".to_owned());
        let bridged = self
            .chat
            .with(|inner| {
                let meeting = inner
                    .conversations
                    .values()
                    .find(|c| {
                        c.meeting_uri.as_deref() == Some(input.online_meeting_uri.as_str())
                            && !c.ended
                    })
                    .map(|c| c.id.clone())?;
                let p2p = inner
                    .conversations
                    .values_mut()
                    .find(|c| c.invitation.as_deref() == Some(invitation))?;
                if p2p.accepted || p2p.ended {
                    return Some(Err(p2p.ended));
                }
                p2p.accepted = true;
                p2p.meeting = Some(meeting.clone());
                p2p.helpdesk_name = Some(helpdesk.clone());
                let (p2p_id, app) = (p2p.id.clone(), p2p.app.clone());
                if let Some(m) = inner.conversations.get_mut(&meeting) {
                    m.bridged_from = Some(p2p_id.clone());
                }
                Some(Ok((p2p_id, app)))
            })
            .flatten();
        let (p2p, app) = match bridged {
            Some(Ok(found)) => found,
            Some(Err(true)) => {
                return self.error(
                    StatusCode::GONE,
                    "Gone",
                    Some("ConversationNotFound"),
                    "the visitor's invitation is over",
                );
            }
            Some(Err(false)) => {
                return self.error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    Some("AlreadyExists"),
                    "the invitation was already accepted",
                );
            }
            None => return self.missing("invitation or meeting (onlineMeetingUri)"),
        };
        self.chat.log_call(n::ACCEPT_AND_BRIDGE);
        let conv = self.sa_conversation(&p2p, "");
        self.to_sa(
            &p2p,
            vec![
                group(
                    self.rel(n::CONVERSATION),
                    &conv,
                    vec![
                        event(
                            self.rel(n::CONVERSATION_BRIDGE),
                            &self.sa_conversation(&p2p, "/conversationBridge"),
                            EventType::Added,
                            Some(
                                Resource::new()
                                    .with_link(
                                        self.rel(n::BRIDGED_PARTICIPANTS),
                                        Link::new(self.sa_conversation(
                                            &p2p,
                                            "/conversationBridge/bridgedParticipants",
                                        )),
                                    )
                                    .with_property(
                                        "onlineMeetingUri",
                                        input.online_meeting_uri.clone(),
                                    ),
                            ),
                        ),
                        event(
                            self.rel(n::MESSAGING),
                            &self.sa_conversation(&p2p, "/messaging"),
                            EventType::Updated,
                            Some(self.connected_messaging(&p2p)),
                        ),
                    ],
                ),
                group(
                    self.rel(names::COMMUNICATION),
                    &self.sa_href(""),
                    vec![
                        event(
                            self.rel(n::CONVERSATION),
                            &conv,
                            EventType::Updated,
                            Some(
                                Resource::new()
                                    .with_link(
                                        self.rel(n::CONVERSATION_BRIDGE),
                                        Link::new(
                                            self.sa_conversation(&p2p, "/conversationBridge"),
                                        ),
                                    )
                                    .with_property("state", "Connected")
                                    .with_property(
                                        "activeModalities",
                                        serde_json::json!(["Messaging"]),
                                    ),
                            ),
                        ),
                        event(
                            self.rel(n::MESSAGING_INVITATION),
                            &self.sa_href(&format!("/messagingInvitations/{invitation}")),
                            EventType::Completed,
                            Some(
                                Resource::new()
                                    .with_property("direction", "Incoming")
                                    .with_property("state", "Connected"),
                            ),
                        )
                        .with_status(OperationStatus::Success, None),
                    ],
                ),
            ],
            false,
        );
        if let Some(app) = app.and_then(|a| self.chat.app(&a)) {
            let widget_conv = paths::widget_conversation(&app.id, &p2p);
            let inv = format!(
                "{}/communication/messagingInvitations/{invitation}",
                paths::app(&app.id)
            );
            app.channel.push(group(
                Rel::parse(names::COMMUNICATION),
                &format!("{}/communication", paths::app(&app.id)),
                vec![
                    event(
                        Rel::parse(n::MESSAGING_INVITATION),
                        &inv,
                        EventType::Completed,
                        Some(
                            Resource::new()
                                .with_embedded(
                                    Rel::parse("acceptedByParticipant"),
                                    Resource::new().with_property("name", helpdesk.clone()),
                                )
                                .with_property("state", "Connected"),
                        ),
                    )
                    .with_status(OperationStatus::Success, None),
                ],
            ));
            app.channel.push(group(
                Rel::parse(n::CONVERSATION),
                &widget_conv,
                vec![
                    event(
                        Rel::parse(n::MESSAGING),
                        &format!("{widget_conv}/messaging"),
                        EventType::Updated,
                        Some(
                            Resource::new()
                                .with_link(
                                    Rel::parse(n::SEND_MESSAGE),
                                    Link::new(format!("{widget_conv}/messaging/messages")),
                                )
                                .with_link(
                                    Rel::parse(n::SET_IS_TYPING),
                                    Link::new(format!("{widget_conv}/messaging/typing")),
                                )
                                .with_link(
                                    Rel::parse(n::STOP_MESSAGING),
                                    Link::new(format!("{widget_conv}/messaging/terminate")),
                                )
                                .with_link(
                                    Rel::parse(n::TYPING_PARTICIPANTS),
                                    Link::new(format!(
                                        "{widget_conv}/messaging/typingParticipants"
                                    )),
                                )
                                .with_property("state", "Connected"),
                        ),
                    ),
                    event(
                        Rel::parse(n::PARTICIPANT),
                        &format!("{widget_conv}/participants/helpdesk"),
                        EventType::Added,
                        Some(
                            Resource::new()
                                .with_property("name", helpdesk)
                                .with_rel(Rel::parse(n::PARTICIPANT)),
                        ),
                    ),
                ],
            ));
        }
        StatusCode::OK.into_response()
    }

    /// S4.
    pub(super) fn add_bridged_participant(&self, p2p: &str, body: &[u8]) -> Response {
        let input: BridgedParticipantInput = match self.parse(body) {
            Ok(input) => input,
            Err(response) => return response,
        };
        let known = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .get_mut(p2p)
                    .filter(|c| c.accepted && !c.ended)
                    .map(|c| {
                        if let Some(uri) = &input.participant_uri {
                            c.bridged
                                .insert(uri.to_ascii_lowercase(), input.display_name.clone());
                        }
                    })
            })
            .flatten();
        if known.is_none() {
            return self.missing("bridged conversation");
        }
        self.chat.log_call(n::BRIDGED_PARTICIPANTS);
        let href = self.sa_conversation(
            p2p,
            &format!(
                "/conversationBridge/bridgedParticipants/{}",
                self.chat.fresh_id("b")
            ),
        );
        let mut echo = Resource::new()
            .with_property("displayName", input.display_name)
            .with_property(
                "messageFilterState",
                input.message_filter_state.as_str().to_owned(),
            )
            .with_rel(self.rel(n::BRIDGED_PARTICIPANT));
        if let Some(uri) = input.participant_uri {
            echo = echo.with_property("participantUri", uri);
        }
        self.to_sa(
            p2p,
            vec![group(
                self.rel(n::CONVERSATION),
                &self.sa_conversation(p2p, ""),
                vec![
                    event(
                        self.rel(n::BRIDGED_PARTICIPANT),
                        &href,
                        EventType::Added,
                        Some(echo),
                    )
                    .within(hal_model::EventLink::new(
                        self.rel(n::BRIDGED_PARTICIPANTS),
                        self.sa_conversation(p2p, "/conversationBridge/bridgedParticipants"),
                    )),
                ],
            )],
            false,
        );
        self.created(&href)
    }

    /// S5: the SA's message, to the visitor (on the bridged conversation)
    /// or to the agents (on the meeting).
    pub(super) fn sa_send(self: &Arc<Self>, id: &str, body: &Bytes) -> Response {
        let Ok(text) = std::str::from_utf8(body) else {
            return self.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                Some("ParameterValidationFailure"),
                "the message is not UTF-8 text",
            );
        };
        let found = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .get_mut(id)
                    .filter(|c| !c.ended && (c.accepted || c.sa_messaging))
                    .map(|c| {
                        c.next_message += 1;
                        (c.next_message, c.app.clone(), c.helpdesk_name.clone())
                    })
            })
            .flatten();
        let Some((number, app, helpdesk)) = found else {
            return self.error(
                StatusCode::CONFLICT,
                "Conflict",
                None,
                "messaging is not connected in this conversation",
            );
        };
        self.chat.log_call(n::SEND_MESSAGE);
        let href = self.sa_conversation(id, &format!("/messaging/messages/{number}"));
        let outgoing = Resource::new()
            .with_property("direction", "Outgoing")
            .with_rel(self.rel(n::MESSAGE));
        self.to_sa(
            id,
            vec![group(
                self.rel(n::CONVERSATION),
                &self.sa_conversation(id, ""),
                vec![
                    event(
                        self.rel(n::MESSAGE),
                        &href,
                        EventType::Started,
                        Some(outgoing.clone()),
                    ),
                    event(
                        self.rel(n::MESSAGE),
                        &href,
                        EventType::Completed,
                        Some(outgoing),
                    )
                    .with_status(OperationStatus::Success, None),
                ],
            )],
            false,
        );
        if let Some(app) = app.and_then(|a| self.chat.app(&a)) {
            let name = helpdesk.unwrap_or_else(|| "Help Desk".to_owned());
            self.message_to_visitor(
                &app,
                id,
                &format!(
                    "{}/participants/helpdesk",
                    paths::widget_conversation(&app.id, id)
                ),
                &name,
                text,
                &href,
            );
        }
        self.created(&href)
    }

    /// A message shown to the visitor, from `name`.
    pub(super) fn message_to_visitor(
        self: &Arc<Self>,
        app: &Arc<super::world::UcwaApp>,
        conversation: &str,
        participant: &str,
        name: &str,
        text: &str,
        sa_href: &str,
    ) {
        let number = self
            .chat
            .with(|inner| {
                inner.conversations.get_mut(conversation).map_or(0, |c| {
                    c.next_message += 1;
                    c.next_message
                })
            })
            .unwrap_or(0);
        let widget_conv = paths::widget_conversation(&app.id, conversation);
        let href = format!("{widget_conv}/messaging/messages/{number}");
        let mut from = Link::new(participant);
        from.title = Some(name.to_owned());
        let message = Resource::new()
            .with_link(Rel::parse(names::SELF), Link::new(href.clone()))
            .with_link(Rel::parse(n::PARTICIPANT), from)
            .with_link(
                Rel::parse(n::PLAIN_MESSAGE),
                Link::new(hal_model::DataUri::plain_text(text)),
            )
            .with_property("direction", "Incoming")
            .with_property(
                "timeStamp",
                hal_model::ExpiryTime::rfc3339(time::OffsetDateTime::now_utc())
                    .as_str()
                    .to_owned(),
            )
            .with_rel(Rel::parse(n::MESSAGE));
        let seq = app.channel.push(group(
            Rel::parse(n::CONVERSATION),
            &widget_conv,
            vec![event(
                Rel::parse(n::MESSAGE),
                &href,
                EventType::Started,
                Some(message),
            )],
        ));
        self.chat.stat(|s| s.messages_to_visitor += 1);
        self.spawn_message_watch(app, seq, conversation, sa_href);
    }

    /// The visitor's conversation ended from the SA's side.
    pub(super) fn sa_ended_visitor(self: &Arc<Self>, p2p: &str, how: &str) -> bool {
        let app = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .get_mut(p2p)
                    .filter(|c| c.app.is_some() && !c.ended)
                    .map(|c| {
                        c.ended = true;
                        c.app.clone()
                    })
            })
            .flatten();
        let Some(app) = app else {
            return false;
        };
        self.chat.stat(|s| {
            s.conversations_ended += 1;
            s.ended.push(format!("visitor:{how}"));
        });
        if let Some(app) = app.and_then(|a| self.chat.app(&a)) {
            self.widget_conversation_over(&app, p2p);
        }
        self.to_sa(
            p2p,
            vec![group(
                self.rel(names::COMMUNICATION),
                &self.sa_href(""),
                vec![event(
                    self.rel(n::CONVERSATION),
                    &self.sa_conversation(p2p, ""),
                    EventType::Deleted,
                    None,
                )],
            )],
            false,
        );
        true
    }

    /// S9.
    pub(super) fn sa_stop(self: &Arc<Self>, id: &str) -> Response {
        let is_meeting = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .get_mut(id)
                    .filter(|c| !c.ended)
                    .map(|c| {
                        if c.meeting_uri.is_some() {
                            c.sa_messaging = false;
                        }
                        c.meeting_uri.is_some()
                    })
            })
            .flatten();
        match is_meeting {
            Some(true) => {}
            Some(false) => {
                self.sa_ended_visitor(id, "stopped_by_service");
            }
            None => return self.missing("conversation"),
        }
        self.chat.log_call(n::STOP_MESSAGING);
        StatusCode::NO_CONTENT.into_response()
    }

    /// S11.
    pub(super) fn decline(self: &Arc<Self>, invitation: &str) -> Response {
        let declined = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .values_mut()
                    .find(|c| {
                        c.invitation.as_deref() == Some(invitation) && !c.accepted && !c.ended
                    })
                    .map(|c| {
                        c.ended = true;
                        (c.id.clone(), c.app.clone())
                    })
            })
            .flatten();
        let Some((p2p, app)) = declined else {
            return self.missing("pending invitation");
        };
        self.chat.log_call(n::DECLINE);
        self.invitation_failed(
            &p2p,
            app.as_deref(),
            Some(invitation),
            "Declined",
            "declined",
        );
        StatusCode::NO_CONTENT.into_response()
    }
}
