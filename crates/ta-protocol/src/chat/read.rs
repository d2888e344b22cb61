//! Reading a callback's body into facts: each event typed, its links
//! resolved against the callback's `baseuri`.

use hal_model::{
    ConversationBridge, Direction, Event, EventType, Events, InvitationState, Message, Messaging,
    MessagingInvitation, OnlineMeeting, OnlineMeetingInvitation, OperationStatus, Participant,
    ParticipantInvitation, chat_names as n,
};
use url::Url;

use super::{Callback, CallbackError, ConversationKey, Fact, IncomingChat};

/// Reads a callback's body.
///
/// ```
/// use ta_protocol::chat::{read_callback, Fact};
/// let body = br#"{"sender":[{"rel":"service:communication","href":"/c","events":[
///   {"link":{"rel":"service:conversation","href":"/platformservice/v1/conversations/P2P?endpointId=x"},"type":"deleted"}]}],
///   "baseuri":"https://pool.example"}"#;
/// let callback = read_callback(body)?;
/// assert!(matches!(&callback.facts[0], Fact::Conversation { key, .. } if key.as_str() == "/platformservice/v1/conversations/p2p"));
/// # Ok::<(), ta_protocol::chat::CallbackError>(())
/// ```
pub fn read_callback(body: &[u8]) -> Result<Callback, CallbackError> {
    let events: Events = hal_model::from_slice(body)?;
    if events.is_empty() {
        return Ok(Callback {
            base: None,
            facts: Vec::new(),
            problems: Vec::new(),
        });
    }
    let raw = events.baseuri.clone().unwrap_or_default();
    let base = Url::parse(&raw)
        .ok()
        .filter(|u| u.has_host() && matches!(u.scheme(), "https" | "http"))
        .ok_or(CallbackError::BaseUri(raw.chars().take(100).collect()))?;
    let mut reader = Reader {
        base: &base,
        problems: Vec::new(),
    };
    let facts = events
        .iter()
        .map(|(sender, event)| reader.fact(&sender.rel, &sender.href, event))
        .collect();
    Ok(Callback {
        facts,
        problems: reader.problems,
        base: Some(base),
    })
}

struct Reader<'a> {
    base: &'a Url,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn url(&mut self, rel: &str, href: &str) -> Option<Url> {
        match self.base.join(href) {
            Ok(url) => Some(url),
            Err(_) => {
                self.problems
                    .push(format!("the {rel} link does not resolve"));
                None
            }
        }
    }

    fn link(&mut self, rel: &str, link: Option<&hal_model::Link>) -> Option<Url> {
        link.and_then(|l| self.url(rel, &l.href))
    }

    fn fact(&mut self, sender_rel: &hal_model::Rel, sender_href: &str, event: &Event) -> Fact {
        let other = || Fact::Other {
            rel: event.link.rel.as_str().to_owned(),
            kind: event.kind.clone(),
        };
        let Some(target) = self.url(event.link.rel.as_str(), &event.link.href) else {
            return other();
        };
        // The conversation an event is about: its sender when that is a
        // conversation, else the target itself.
        let sender_key = if sender_rel.has_local_name(n::CONVERSATION) {
            self.url("sender", sender_href)
                .map(|u| ConversationKey::of(&u))
        } else {
            None
        };
        let key = sender_key.unwrap_or_else(|| ConversationKey::of(&target));
        let failed = event.status == Some(OperationStatus::Failure);
        let rel = &event.link.rel;
        if rel.has_local_name(n::MESSAGING_INVITATION) {
            let invitation: MessagingInvitation = event.target_as().unwrap_or_default();
            if event.kind == EventType::Started
                && invitation.direction() == Some(Direction::Incoming)
            {
                return self.invited(target, &invitation).unwrap_or_else(other);
            }
            if event.kind == EventType::Completed {
                return Fact::InvitationCompleted {
                    href: target,
                    operation_id: invitation.operation_id().map(str::to_owned),
                    status: event.status.clone(),
                };
            }
            return other();
        }
        if rel.has_local_name(n::ONLINE_MEETING_INVITATION) {
            let meeting: OnlineMeetingInvitation = event.target_as().unwrap_or_default();
            return Fact::Meeting {
                operation_id: meeting.operation_id().map(str::to_owned),
                online_meeting_uri: meeting.online_meeting_uri().map(str::to_owned),
                failed: failed || meeting.state() == Some(InvitationState::Failed),
            };
        }
        if rel.has_local_name(n::PARTICIPANT_INVITATION) {
            let invitation: ParticipantInvitation = event.target_as().unwrap_or_default();
            return Fact::AgentInvitation {
                operation_id: invitation.operation_id().map(str::to_owned),
                to: invitation.to().map(str::to_owned),
                failed: failed || invitation.state() == Some(InvitationState::Failed),
            };
        }
        if rel.has_local_name(n::CONVERSATION) {
            let conversation: hal_model::Conversation = event.target_as().unwrap_or_default();
            return Fact::Conversation {
                key: ConversationKey::of(&target),
                kind: event.kind.clone(),
                state: conversation.state(),
                add_participant: self.link(n::ADD_PARTICIPANT, conversation.add_participant()),
            };
        }
        if rel.has_local_name(n::ONLINE_MEETING) {
            let meeting: OnlineMeeting = event.target_as().unwrap_or_default();
            return Fact::OnlineMeeting {
                key,
                terminate: self.link(
                    n::TERMINATE_ONLINE_MEETING,
                    meeting.terminate_online_meeting(),
                ),
            };
        }
        if rel.has_local_name(n::MESSAGING) {
            let messaging: Messaging = event.target_as().unwrap_or_default();
            return Fact::Messaging {
                key,
                state: messaging.state(),
                send_message: self.link(n::SEND_MESSAGE, messaging.send_message()),
                stop_messaging: self.link(n::STOP_MESSAGING, messaging.stop_messaging()),
                add_messaging: self.link(n::ADD_MESSAGING, messaging.add_messaging()),
            };
        }
        if rel.has_local_name(n::CONVERSATION_BRIDGE) {
            let bridge: ConversationBridge = event.target_as().unwrap_or_default();
            return Fact::Bridge {
                key,
                bridged_participants: self
                    .link(n::BRIDGED_PARTICIPANTS, bridge.bridged_participants()),
            };
        }
        if rel.has_local_name(n::BRIDGED_PARTICIPANT) {
            let bridged: hal_model::BridgedParticipant = event.target_as().unwrap_or_default();
            return Fact::BridgedParticipant {
                key,
                display_name: bridged.display_name().map(str::to_owned),
            };
        }
        if rel.has_local_name(n::PARTICIPANT) || rel.has_local_name(n::LOCAL_PARTICIPANT) {
            let joined = match event.kind {
                EventType::Added => true,
                EventType::Deleted => false,
                _ => return other(),
            };
            if event.is_in(n::TYPING_PARTICIPANTS) {
                return Fact::Typing {
                    key,
                    started: joined,
                    href: target,
                };
            }
            let participant: Participant = event.target_as().unwrap_or_default();
            return Fact::Participant {
                key,
                joined,
                uri: participant.uri().map(str::to_owned),
                name: participant
                    .name()
                    .or(event.link.title.as_deref())
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned),
                href: target,
            };
        }
        if rel.has_local_name(n::MESSAGE) {
            let message: Message = event.target_as().unwrap_or_default();
            let sender_uri = message
                .resource()
                .embedded()
                .find(n::SENDER_PARTICIPANT)
                .and_then(|(rel, _)| message.resource().embedded().get_all(rel).first())
                .and_then(|p| p.str_property("uri"))
                .map(str::to_owned);
            return Fact::Message {
                key,
                href: target,
                kind: event.kind.clone(),
                direction: message.direction(),
                sender_uri,
                status: event.status.clone(),
            };
        }
        other()
    }

    /// A link the SA cannot do without: its absence is reported.
    fn required(&mut self, rel: &str, link: Option<&hal_model::Link>) -> Option<Url> {
        if link.is_none() {
            self.problems
                .push(format!("the incoming invitation has no {rel} link"));
        }
        self.link(rel, link)
    }

    fn invited(&mut self, href: Url, invitation: &MessagingInvitation) -> Option<Fact> {
        let conversation = self.required(n::CONVERSATION, invitation.conversation());
        let accept_and_bridge = self.required(n::ACCEPT_AND_BRIDGE, invitation.accept_and_bridge());
        let start_adhoc_meeting =
            self.required(n::START_ADHOC_MEETING, invitation.start_adhoc_meeting());
        let (conversation, accept_and_bridge, start_adhoc_meeting) =
            (conversation?, accept_and_bridge?, start_adhoc_meeting?);
        let decline = self.link(n::DECLINE, invitation.decline());
        let from = invitation.from_participant();
        let custom_content = invitation
            .custom_content()
            .and_then(|l| hal_model::DataUri::parse(&l.href).ok())
            .and_then(|d| d.text().ok().map(str::to_owned));
        Some(Fact::Invited(Box::new(IncomingChat {
            invitation: href,
            conversation,
            accept_and_bridge,
            start_adhoc_meeting,
            decline,
            visitor_name: from.as_ref().and_then(|p| p.name()).map(str::to_owned),
            visitor_uri: from.as_ref().and_then(|p| p.uri()).map(str::to_owned),
            subject: invitation.subject().map(str::to_owned),
            to: invitation.to().map(str::to_owned),
            custom_content,
        })))
    }
}
