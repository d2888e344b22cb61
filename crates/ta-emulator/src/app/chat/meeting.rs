//! The meeting's side of the SA's calls: the ad hoc meeting (S1), the
//! SA's messaging in it (S2), the agents' invitations (S7) and its end
//! (S8).

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use hal_model::{
    AddMessagingInput, AddParticipantInput, EventType, Link, MAX_CALLBACK_URL_CHARS,
    MAX_OPERATION_ID_CHARS, MAX_SUBJECT_CHARS, OperationStatus, Resource, StartAdhocMeetingInput,
    chat_names as n, names,
};
use http::StatusCode;

use super::world::{Conversation, Target, event, group};
use crate::app::{State, query_param};

impl State {
    /// S1.
    pub(super) fn start_adhoc_meeting(&self, body: &[u8]) -> Response {
        let input: StartAdhocMeetingInput = match self.parse(body) {
            Ok(input) => input,
            Err(response) => return response,
        };
        if let Some(response) = self
            .too_long(
                "operationId",
                Some(&input.operation_id),
                MAX_OPERATION_ID_CHARS,
            )
            .or_else(|| self.too_long("subject", input.subject.as_ref(), MAX_SUBJECT_CHARS))
            .or_else(|| {
                self.too_long(
                    "callbackUrl",
                    input.callback_url.as_ref(),
                    MAX_CALLBACK_URL_CHARS,
                )
            })
        {
            return response;
        }
        let url = match input
            .callback_url
            .as_deref()
            .map(crate::chat_config::check_callback_url)
        {
            Some(Ok(url)) => Some(url),
            Some(Err(message)) => {
                return self.error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    Some("ParameterValidationFailure"),
                    &message,
                );
            }
            None => self.chat.callback_url.lock().ok().and_then(|u| u.clone()),
        };
        self.chat.log_call(n::START_ADHOC_MEETING);
        let id = self.chat.fresh_id("m");
        let meeting_uri = format!(
            "sip:meet{id}@contoso.com;gruu;opaque=app:conf:focus:id:{}",
            id.to_ascii_uppercase()
        );
        self.chat.with(|inner| {
            inner.insert_conversation(Conversation {
                id: id.clone(),
                meeting_uri: Some(meeting_uri.clone()),
                target: url.map(|url| Target {
                    url,
                    context: input.callback_context.clone(),
                }),
                ..Conversation::default()
            })
        });
        self.chat.stat(|s| s.conversations_started += 1);
        let invitation = self.sa_href(&format!("/onlineMeetingInvitations/{id}"));
        let conv = self.sa_conversation(&id, "");
        self.to_sa(
            &id,
            vec![
                group(
                    self.rel(names::COMMUNICATION),
                    &self.sa_href(""),
                    vec![
                        event(
                            self.rel(n::ONLINE_MEETING_INVITATION),
                            &invitation,
                            EventType::Started,
                            Some(
                                Resource::new()
                                    .with_link(self.rel(n::CONVERSATION), Link::new(conv.clone()))
                                    .with_property("operationId", input.operation_id.clone())
                                    .with_property("onlineMeetingUri", meeting_uri.clone())
                                    .with_property("state", "Connecting"),
                            ),
                        ),
                        event(
                            self.rel(n::CONVERSATION),
                            &conv,
                            EventType::Updated,
                            Some(
                                Resource::new()
                                    .with_link(
                                        self.rel(n::ADD_PARTICIPANT),
                                        Link::new(self.sa_href(&format!(
                                            "/participantInvitations?conversationId={id}"
                                        ))),
                                    )
                                    .with_link(
                                        self.rel(n::ONLINE_MEETING),
                                        Link::new(self.sa_conversation(&id, "/onlineMeeting")),
                                    )
                                    .with_link(
                                        self.rel(n::MESSAGING),
                                        Link::new(self.sa_conversation(&id, "/messaging")),
                                    )
                                    .with_property("state", "Conferenced")
                                    .with_property(
                                        "subject",
                                        input.subject.clone().unwrap_or_default(),
                                    ),
                            ),
                        ),
                    ],
                ),
                group(
                    self.rel(n::CONVERSATION),
                    &conv,
                    vec![
                        event(
                            self.rel(n::ONLINE_MEETING),
                            &self.sa_conversation(&id, "/onlineMeeting"),
                            EventType::Added,
                            Some(
                                Resource::new()
                                    .with_link(
                                        self.rel(n::TERMINATE_ONLINE_MEETING),
                                        Link::new(self.sa_conversation(
                                            &id,
                                            "/onlineMeeting/terminateOnlineMeeting",
                                        )),
                                    )
                                    .with_property("onlineMeetingUri", meeting_uri),
                            ),
                        ),
                        event(
                            self.rel(n::MESSAGING),
                            &self.sa_conversation(&id, "/messaging"),
                            EventType::Updated,
                            Some(
                                Resource::new()
                                    .with_link(
                                        self.rel(n::ADD_MESSAGING),
                                        Link::new(self.sa_href(&format!(
                                            "/messagingInvitations?conversationId={id}"
                                        ))),
                                    )
                                    .with_property("state", "Disconnected"),
                            ),
                        ),
                    ],
                ),
            ],
            false,
        );
        self.created(&invitation)
    }

    /// S2.
    pub(super) fn add_messaging(&self, query: Option<&str>, body: &[u8]) -> Response {
        let input: AddMessagingInput = match self.parse(body) {
            Ok(input) => input,
            Err(response) => return response,
        };
        let Some(id) = self.with_open_meeting(query, |c| c.sa_messaging = true) else {
            return self.missing("meeting (conversationId)");
        };
        self.chat.log_call(n::ADD_MESSAGING);
        let conv = self.sa_conversation(&id, "");
        let invitation = self.sa_href(&format!("/messagingInvitations/{id}-im"));
        self.to_sa(
            &id,
            vec![
                group(
                    self.rel(n::CONVERSATION),
                    &conv,
                    vec![event(
                        self.rel(n::MESSAGING),
                        &self.sa_conversation(&id, "/messaging"),
                        EventType::Updated,
                        Some(self.connected_messaging(&id)),
                    )],
                ),
                group(
                    self.rel(names::COMMUNICATION),
                    &self.sa_href(""),
                    vec![
                        event(
                            self.rel(n::MESSAGING_INVITATION),
                            &invitation,
                            EventType::Completed,
                            Some(
                                Resource::new()
                                    .with_property("operationId", input.operation_id)
                                    .with_property("state", "Connected"),
                            ),
                        )
                        .with_status(OperationStatus::Success, None),
                    ],
                ),
            ],
            false,
        );
        self.created(&invitation)
    }

    pub(super) fn connected_messaging(&self, id: &str) -> Resource {
        Resource::new()
            .with_link(
                self.rel(n::SEND_MESSAGE),
                Link::new(self.sa_conversation(id, "/messaging/messages")),
            )
            .with_link(
                self.rel(n::STOP_MESSAGING),
                Link::new(self.sa_conversation(id, "/messaging/terminate")),
            )
            .with_link(
                self.rel(n::SET_IS_TYPING),
                Link::new(self.sa_conversation(id, "/messaging/typing")),
            )
            .with_link(
                self.rel(n::TYPING_PARTICIPANTS),
                Link::new(self.sa_conversation(id, "/messaging/typingParticipants")),
            )
            .with_property("state", "Connected")
            .with_property("negotiatedMessageFormats", serde_json::json!(["Plain"]))
    }

    /// S7.
    pub(super) fn add_participant(self: &Arc<Self>, query: Option<&str>, body: &[u8]) -> Response {
        let input: AddParticipantInput = match self.parse(body) {
            Ok(input) => input,
            Err(response) => return response,
        };
        if let Some(response) = self.too_long(
            "operationId",
            Some(&input.operation_id),
            MAX_OPERATION_ID_CHARS,
        ) {
            return response;
        }
        let agent = input.to.to_ascii_lowercase();
        let Some(id) = self.with_open_meeting(query, |c| {
            c.agents.insert(agent, false);
        }) else {
            return self.missing("meeting (conversationId)");
        };
        self.chat.log_call(n::ADD_PARTICIPANT);
        let href = self.sa_href(&format!(
            "/participantInvitations/{}",
            self.chat.fresh_id("p")
        ));
        self.to_sa(
            &id,
            vec![group(
                self.rel(names::COMMUNICATION),
                &self.sa_href(""),
                vec![event(
                    self.rel(n::PARTICIPANT_INVITATION),
                    &href,
                    EventType::Started,
                    Some(
                        Resource::new()
                            .with_property("operationId", input.operation_id.clone())
                            .with_property("to", input.to.clone())
                            .with_property("state", "Connecting"),
                    ),
                )],
            )],
            false,
        );
        self.spawn_agent(&id, &input.to, &input.operation_id, &href);
        self.created(&href)
    }

    /// S8: the meeting ends; a visitor still bridged into it is told.
    pub(super) fn terminate_meeting(self: &Arc<Self>, id: &str) -> Response {
        let ended = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .get_mut(id)
                    .filter(|c| c.meeting_uri.is_some() && !c.ended)
                    .map(|c| {
                        c.ended = true;
                        c.bridged_from.clone()
                    })
            })
            .flatten();
        let Some(bridged) = ended else {
            return self.missing("meeting");
        };
        self.chat.log_call(n::TERMINATE_ONLINE_MEETING);
        self.chat.stat(|s| {
            s.conversations_ended += 1;
            s.ended.push("meeting:terminated".to_owned());
        });
        self.to_sa(
            id,
            vec![group(
                self.rel(names::COMMUNICATION),
                &self.sa_href(""),
                vec![event(
                    self.rel(n::CONVERSATION),
                    &self.sa_conversation(id, ""),
                    EventType::Deleted,
                    None,
                )],
            )],
            false,
        );
        if let Some(p2p) = bridged {
            self.sa_ended_visitor(&p2p, "meeting_ended");
        }
        StatusCode::NO_CONTENT.into_response()
    }

    /// The open meeting named by the query's `conversationId`, changed by
    /// `f`: its id, if there is one.
    fn with_open_meeting(
        &self,
        query: Option<&str>,
        f: impl FnOnce(&mut super::world::Conversation),
    ) -> Option<String> {
        let id = query_param(query, "conversationId")?;
        self.chat
            .with(|inner| {
                inner
                    .conversations
                    .get_mut(&id)
                    .filter(|c| c.meeting_uri.is_some() && !c.ended)
                    .map(f)
            })
            .flatten()
            .map(|()| id)
    }
}
