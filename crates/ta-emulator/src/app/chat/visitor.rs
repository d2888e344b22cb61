//! What the visitor does: creates the anonymous application, invites the
//! help desk, sends messages, leaves; and what the widget is told when
//! the conversation is over.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use hal_model::{
    AnonApplicationInput, EventType, Link, MAX_OPERATION_ID_CHARS, MAX_SUBJECT_CHARS, Rel,
    Resource, StartMessagingInput, chat_names as n, names,
};
use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::paths;
use super::world::{Conversation, UcwaApp, event, group};
use crate::app::{State, query_param};

impl State {
    /// `POST /ucwa/psanon/v1/applications`: the widget's application.
    pub(super) fn create_app(self: &Arc<Self>, headers: &HeaderMap, body: &[u8]) -> Response {
        let claims = match self.widget_token(headers) {
            Ok(claims) => claims,
            Err(response) => return response,
        };
        let now = self.now_u64();
        if claims.exp <= now {
            return self.error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("InvalidAnonymousToken"),
                "the anonymous token has expired",
            );
        }
        if claims.nbf > now.saturating_add(300) {
            return self.error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                Some("InvalidAnonymousToken"),
                "the anonymous token is not valid yet",
            );
        }
        let origins: Vec<String> = claims.ao.split(';').map(str::to_owned).collect();
        if let Err(response) = self.check_origin(headers, &origins) {
            return response;
        }
        let input: AnonApplicationInput = match self.json_body(body) {
            Ok(input) => input,
            Err(response) => return response,
        };
        let name = input
            .anonymous_display_name
            .unwrap_or_else(|| "Visitor".to_owned());
        if name.chars().count() > MAX_SUBJECT_CHARS
            || input.culture.chars().count() > 100
            || input.user_agent.chars().count() > 100
        {
            return self.bad_parameter(
                "anonymousDisplayName is at most 250 characters; culture and userAgent at most 100",
            );
        }
        let id = self.chat.fresh_id("a");
        let app = Arc::new(UcwaApp {
            id: id.clone(),
            session: claims.asi.clone(),
            endpoint: claims.aeu.clone(),
            origins,
            display_name: name.clone(),
            visitor_uri: format!(
                "sip:{}{}@anonymous.invalid",
                1_546_268_000u64,
                self.chat.fresh_id("")
            ),
            channel: super::channel::Channel::new(1),
        });
        self.chat
            .with(|inner| inner.apps.insert(id.clone(), Arc::clone(&app)));
        let base = paths::app(&id);
        let communication = Resource::new()
            .with_link(
                Rel::parse("conversations"),
                Link::new(format!("{base}/communication/conversations?filter=active")),
            )
            .with_link(Rel::parse(names::START_MESSAGING), {
                let mut link = Link::new(format!("{base}/communication/messagingInvitations"));
                link.extra.insert("revision".to_owned(), "2".into());
                link
            })
            .with_rel(Rel::parse(names::COMMUNICATION))
            .with_property("supportedMessageFormats", serde_json::json!(["Plain"]));
        let me = Resource::new()
            .with_property("uri", app.visitor_uri.clone())
            .with_property("name", name)
            .with_rel(Rel::parse(n::ME));
        let resource = Resource::new()
            .with_link(Rel::parse(names::SELF), Link::new(base.clone()))
            .with_link(Rel::parse(n::EVENTS), Link::new(paths::events(&id, 1)))
            .with_embedded(Rel::parse(n::ME), me)
            .with_embedded(Rel::parse(names::COMMUNICATION), communication)
            .with_rel(Rel::parse("application"))
            .with_property("id", id.clone())
            .with_property("endpointId", claims.asi)
            .with_property("culture", input.culture)
            .with_property("userAgent", input.user_agent)
            .with_property("type", "Browser");
        self.spawn_idle_watch(&id);
        let mut response = self.body(StatusCode::CREATED, &resource);
        if let Ok(v) = HeaderValue::from_str(&base) {
            response.headers_mut().insert(LOCATION, v);
        }
        response
    }

    /// `POST <startMessaging>`: the visitor invites the help desk.
    pub(super) fn start_messaging(self: &Arc<Self>, app: &Arc<UcwaApp>, body: &[u8]) -> Response {
        let input: StartMessagingInput = match self.json_body(body) {
            Ok(input) => input,
            Err(response) => return response,
        };
        if !input.to.eq_ignore_ascii_case(&app.endpoint) {
            return self.error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                None,
                "`to` is not the endpoint the token was minted for",
            );
        }
        if input
            .operation_id
            .as_ref()
            .is_some_and(|o| o.chars().count() > MAX_OPERATION_ID_CHARS)
            || input
                .subject
                .as_ref()
                .is_some_and(|s| s.chars().count() > MAX_SUBJECT_CHARS)
        {
            return self.bad_parameter("operationId is at most 50 characters, subject at most 250");
        }
        let busy = self.chat.with(|inner| {
            inner
                .conversations
                .values()
                .any(|c| c.app.as_deref() == Some(&app.id) && !c.ended)
        });
        if busy == Some(true) {
            return self.error(
                StatusCode::CONFLICT,
                "Conflict",
                Some("TooManyConversations"),
                "this application already has a conversation",
            );
        }
        let conversation = self.chat.fresh_id("c");
        let invitation = self.chat.fresh_id("i");
        self.chat.with(|inner| {
            inner.insert_conversation(Conversation {
                id: conversation.clone(),
                app: Some(app.id.clone()),
                invitation: Some(invitation.clone()),
                ..Conversation::default()
            })
        });
        self.chat.stat(|s| s.conversations_started += 1);
        let widget_conv = paths::widget_conversation(&app.id, &conversation);
        let inv_href = format!(
            "{}/communication/messagingInvitations/{invitation}",
            paths::app(&app.id)
        );
        let mut inv = Resource::new()
            .with_link(Rel::parse(names::SELF), Link::new(inv_href.clone()))
            .with_link(Rel::parse(n::CONVERSATION), Link::new(widget_conv.clone()))
            .with_property("direction", "Outgoing")
            .with_property("state", "Connecting")
            .with_property("to", input.to.clone());
        if let Some(op) = &input.operation_id {
            inv = inv.with_property("operationId", op.clone());
        }
        let communication = format!("{}/communication", paths::app(&app.id));
        app.channel.push(group(
            Rel::parse(names::COMMUNICATION),
            &communication,
            vec![
                event(
                    Rel::parse(n::MESSAGING_INVITATION),
                    &inv_href,
                    EventType::Started,
                    Some(inv),
                ),
                event(
                    Rel::parse(n::CONVERSATION),
                    &widget_conv,
                    EventType::Added,
                    Some(Resource::new().with_property("state", "Connecting")),
                ),
            ],
        ));
        // The SA hears of it at its default callback URL.
        let sa_inv = self.sa_href(&format!("/messagingInvitations/{invitation}"));
        let from = Resource::new()
            .with_property("uri", app.visitor_uri.clone())
            .with_property("name", app.display_name.clone())
            .with_rel(self.rel(n::PARTICIPANT));
        let mut incoming = Resource::new()
            .with_link(Rel::parse(names::SELF), Link::new(sa_inv.clone()))
            .with_link(
                self.rel(n::CONVERSATION),
                Link::new(self.sa_conversation(&conversation, "")),
            )
            .with_link(
                self.rel(n::DECLINE),
                Link::new(self.sa_href(&format!("/messagingInvitations/{invitation}/decline"))),
            )
            .with_link(
                self.rel(n::ACCEPT_AND_BRIDGE),
                Link::new(self.sa_href(&format!(
                    "/messagingInvitations/{invitation}/acceptAndBridge"
                ))),
            )
            .with_link(
                self.rel(n::START_ADHOC_MEETING),
                Link::new(self.sa_href("/onlineMeetingInvitations/startAdhocMeeting")),
            )
            .with_embedded(self.rel(n::FROM), from)
            .with_rel(self.rel(n::MESSAGING_INVITATION))
            .with_property("direction", "Incoming")
            .with_property("state", "Connecting")
            .with_property("importance", "Normal")
            .with_property("to", input.to.clone())
            .with_property("threadId", format!("thread-{conversation}"));
        if let Some(subject) = &input.subject {
            incoming = incoming.with_property("subject", subject.clone());
        }
        if let Some(op) = &input.operation_id {
            incoming = incoming.with_property("operationId", op.clone());
        }
        if let Some(custom) = &input.custom_content {
            incoming = incoming.with_link(
                Rel::parse(n::CUSTOM_CONTENT),
                Link::new(hal_model::DataUri::plain_text(custom)),
            );
        }
        self.to_sa(
            &conversation,
            vec![group(
                self.rel(names::COMMUNICATION),
                &self.sa_href(""),
                vec![event(
                    self.rel(n::MESSAGING_INVITATION),
                    &sa_inv,
                    EventType::Started,
                    Some(incoming),
                )],
            )],
            true,
        );
        self.spawn_invitation_timeout(&conversation);
        let mut response = StatusCode::CREATED.into_response();
        if let Ok(v) = HeaderValue::from_str(&inv_href) {
            response.headers_mut().insert(LOCATION, v);
        }
        response
    }

    /// `POST <sendMessage>` from the widget.
    pub(super) fn widget_send(
        self: &Arc<Self>,
        app: &Arc<UcwaApp>,
        conversation: &str,
        query: Option<&str>,
        body: &Bytes,
    ) -> Response {
        let Ok(text) = std::str::from_utf8(body) else {
            return self.bad_parameter("the message is not UTF-8 text");
        };
        let meeting = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .get(conversation)
                    .filter(|c| c.app.as_deref() == Some(&app.id) && c.accepted && !c.ended)
                    .map(|c| c.meeting.clone())
            })
            .flatten();
        let Some(meeting) = meeting else {
            return self.error(
                StatusCode::CONFLICT,
                "Conflict",
                None,
                "messaging is not connected in this conversation",
            );
        };
        let n = self.next_message(conversation);
        let widget_conv = paths::widget_conversation(&app.id, conversation);
        let href = format!("{widget_conv}/messaging/messages/{n}");
        let mut sent = Resource::new()
            .with_link(Rel::parse(names::SELF), Link::new(href.clone()))
            .with_link(
                Rel::parse(n::PLAIN_MESSAGE),
                Link::new(hal_model::DataUri::plain_text(text)),
            )
            .with_property("direction", "Outgoing")
            .with_rel(Rel::parse(n::MESSAGE));
        if let Some(op) = query_param(query, "operationId") {
            sent = sent.with_property("operationId", op);
        }
        app.channel.push(group(
            Rel::parse(n::CONVERSATION),
            &widget_conv,
            vec![
                event(
                    Rel::parse(n::MESSAGE),
                    &href,
                    EventType::Completed,
                    Some(sent),
                )
                .with_status(hal_model::OperationStatus::Success, None),
            ],
        ));
        self.chat.stat(|s| s.messages_from_visitor += 1);
        if let Some(meeting) = meeting {
            self.visitor_said(&meeting, &app.visitor_uri, &app.display_name, text);
        }
        let mut response = StatusCode::CREATED.into_response();
        if let Ok(v) = HeaderValue::from_str(&href) {
            response.headers_mut().insert(LOCATION, v);
        }
        response
    }

    pub(super) fn next_message(&self, conversation: &str) -> u64 {
        self.chat
            .with(|inner| {
                inner.conversations.get_mut(conversation).map_or(0, |c| {
                    c.next_message += 1;
                    c.next_message
                })
            })
            .unwrap_or(0)
    }

    /// The widget leaves: `stopMessaging`, `DELETE` of its conversation or
    /// of its application, or its application expired. Whether it ended
    /// one: an application ends its own open conversation only.
    pub(super) fn visitor_left(
        self: &Arc<Self>,
        app: &Arc<UcwaApp>,
        conversation: &str,
        how: &str,
    ) -> bool {
        let ended = self
            .chat
            .with(|inner| {
                inner
                    .conversations
                    .get_mut(conversation)
                    .filter(|c| !c.ended && c.app.as_deref() == Some(app.id.as_str()))
                    .map(|c| c.ended = true)
            })
            .flatten();
        if ended.is_none() {
            return false;
        }
        self.chat.stat(|s| {
            s.conversations_ended += 1;
            s.ended.push(format!("visitor:{how}"));
        });
        self.widget_conversation_over(app, conversation);
        self.to_sa(
            conversation,
            vec![group(
                self.rel(names::COMMUNICATION),
                &self.sa_href(""),
                vec![event(
                    self.rel(n::CONVERSATION),
                    &self.sa_conversation(conversation, ""),
                    EventType::Deleted,
                    None,
                )],
            )],
            false,
        );
        true
    }

    /// Tells the widget its conversation is over.
    pub(super) fn widget_conversation_over(&self, app: &UcwaApp, conversation: &str) {
        let widget_conv = paths::widget_conversation(&app.id, conversation);
        app.channel.push(group(
            Rel::parse(n::CONVERSATION),
            &widget_conv,
            vec![event(
                Rel::parse(n::MESSAGING),
                &format!("{widget_conv}/messaging"),
                EventType::Updated,
                Some(Resource::new().with_property("state", "Disconnected")),
            )],
        ));
        app.channel.push(group(
            Rel::parse(names::COMMUNICATION),
            &format!("{}/communication", paths::app(&app.id)),
            vec![event(
                Rel::parse(n::CONVERSATION),
                &widget_conv,
                EventType::Deleted,
                None,
            )],
        ));
    }
}
