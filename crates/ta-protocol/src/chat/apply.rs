//! How each fact of a callback moves a chat: links learned, agents joining
//! and leaving, messages counted, the ending started.

use std::time::Instant;

use hal_model::{ConversationState, Direction, EventType, ModalityState, OperationStatus};

use super::bridge::{Bridge, Phase};
use super::{Callback, ConversationKey, EndedBy, Fact, MessageFrom, Notice};

impl Bridge {
    /// Hands in every fact of a callback of this chat.
    pub fn handle_callback(&mut self, callback: &Callback, now: Instant) {
        for fact in &callback.facts {
            self.apply(fact, now);
        }
        self.advance(now);
    }

    /// Hands in one fact of a callback of this chat. A fact about another
    /// conversation, or one already acted on, changes nothing.
    pub fn handle_fact(&mut self, fact: &Fact, now: Instant) {
        self.apply(fact, now);
        self.advance(now);
    }

    fn apply(&mut self, fact: &Fact, now: Instant) {
        if self.phase == Phase::Ended {
            return;
        }
        match fact {
            Fact::Meeting {
                operation_id,
                online_meeting_uri,
                failed,
            } if operation_id.as_deref() == Some(self.id.operation("m").as_str()) => {
                if *failed {
                    self.meeting_gone = true;
                    let why = "the platform could not start the meeting".to_owned();
                    self.end(EndedBy::Failure(why), now);
                } else if let Some(uri) = online_meeting_uri
                    && self.meeting_uri.is_none()
                {
                    self.meeting_uri = Some(uri.clone());
                }
            }
            Fact::Conversation {
                key,
                kind,
                state,
                add_participant,
            } => {
                let over =
                    *kind == EventType::Deleted || *state == Some(ConversationState::Disconnected);
                if *key == self.visitor {
                    if over {
                        self.visitor_gone = true;
                        self.end(EndedBy::Visitor, now);
                    }
                } else if self.meeting.as_ref() == Some(key) {
                    if over {
                        self.meeting_gone = true;
                        self.end(EndedBy::Platform, now);
                    } else if let Some(url) = add_participant {
                        self.add_participant.get_or_insert_with(|| url.clone());
                    }
                } else if let Some(url) = add_participant
                    && !over
                    && self.meeting.is_none()
                {
                    // The first conference that shows up after the
                    // meeting was asked for is the chat's meeting.
                    self.meeting = Some(key.clone());
                    self.add_participant = Some(url.clone());
                }
            }
            Fact::OnlineMeeting { key, terminate } => {
                if self.meeting.is_none() && *key != self.visitor {
                    self.meeting = Some(key.clone());
                }
                if self.meeting.as_ref() == Some(key)
                    && let Some(url) = terminate
                {
                    self.terminate.get_or_insert_with(|| url.clone());
                }
            }
            Fact::Messaging {
                key,
                state,
                send_message,
                stop_messaging,
                add_messaging,
            } => {
                if *key == self.visitor {
                    if *state == Some(ModalityState::Connected) {
                        if let Some(url) = send_message {
                            self.visitor_send.get_or_insert_with(|| url.clone());
                        }
                        if let Some(url) = stop_messaging {
                            self.visitor_stop.get_or_insert_with(|| url.clone());
                        }
                    }
                } else {
                    if self.meeting.is_none() {
                        self.meeting = Some(key.clone());
                    }
                    if self.meeting.as_ref() == Some(key)
                        && let Some(url) = add_messaging
                    {
                        self.add_messaging.get_or_insert_with(|| url.clone());
                    }
                }
            }
            Fact::Bridge {
                key,
                bridged_participants,
            } if *key == self.visitor => {
                if let Some(url) = bridged_participants {
                    self.bridged_participants.get_or_insert_with(|| url.clone());
                }
                // Acted on once the acceptance was sent (a bridge event
                // delivered early waits for it).
                self.bridge_seen = true;
            }
            Fact::AgentInvitation {
                operation_id,
                failed: true,
                ..
            } => {
                if let Some(slot) = self
                    .agents
                    .iter_mut()
                    .find(|s| Some(s.operation_id.as_str()) == operation_id.as_deref())
                {
                    slot.gone = true;
                }
                if !self.agents.is_empty() && self.agents.iter().all(|s| s.gone) {
                    self.no_agent(now);
                }
            }
            Fact::Participant {
                key,
                joined,
                uri,
                href,
                ..
            } if self.meeting.as_ref() == Some(key) => {
                self.agent_moved(uri.as_deref(), href, *joined, now);
            }
            Fact::Participant {
                key,
                joined: false,
                uri: Some(uri),
                ..
            } if *key == self.visitor
                && self
                    .chat
                    .visitor_uri
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case(uri)) =>
            {
                self.visitor_gone = true;
                self.end(EndedBy::Visitor, now);
            }
            Fact::Message {
                key,
                href,
                kind,
                direction,
                sender_uri,
                status,
            } if (*key == self.visitor || self.meeting.as_ref() == Some(key))
                && matches!(kind, EventType::Started | EventType::Completed)
                && *status != Some(OperationStatus::Failure) =>
            {
                let from_agent = sender_uri.as_deref().is_some_and(|uri| {
                    self.agents
                        .iter()
                        .any(|s| s.agent.uri.eq_ignore_ascii_case(uri))
                });
                // The SA's own messages come back as outgoing: counted when
                // sent.
                let own = !from_agent && *direction == Some(Direction::Outgoing);
                if !own && self.first_sight(href) {
                    let from = if from_agent {
                        MessageFrom::Agent
                    } else {
                        MessageFrom::Visitor
                    };
                    self.notices.push_back(Notice::Message { from });
                }
            }
            Fact::InvitationCompleted { href, status, .. }
                if ConversationKey::of(href) == ConversationKey::of(&self.chat.invitation)
                    && *status == Some(OperationStatus::Failure) =>
            {
                // The visitor's invitation failed (withdrawn, timed out).
                self.visitor_gone = true;
                self.end(EndedBy::Visitor, now);
            }
            _ => {}
        }
    }

    /// An agent joined or left. A `deleted` event embeds nothing: the
    /// agent is known by the participant URL it joined with.
    fn agent_moved(&mut self, uri: Option<&str>, href: &url::Url, joined: bool, now: Instant) {
        let key = ConversationKey::of(href);
        let Some(index) = self.agents.iter().position(|s| match uri {
            Some(uri) => s.agent.uri.eq_ignore_ascii_case(uri),
            None => s.participant.as_ref() == Some(&key),
        }) else {
            return;
        };
        let since_start = self.elapsed(now);
        let Some(slot) = self.agents.get_mut(index) else {
            return;
        };
        if joined && !slot.joined && !slot.gone {
            slot.joined = true;
            slot.participant = Some(key);
            let after = slot
                .invited_at
                .map_or(since_start, |at| now.saturating_duration_since(at));
            self.notices.push_back(Notice::AgentJoined {
                uri: slot.agent.uri.clone(),
                after,
            });
            if self.phase == Phase::Bridged {
                self.phase = Phase::Active;
            }
        } else if !joined && slot.joined && !slot.gone {
            slot.gone = true;
            self.notices.push_back(Notice::AgentLeft {
                uri: slot.agent.uri.clone(),
            });
            let everyone_left = self.agents.iter().all(|s| s.gone || !s.joined)
                && self.agents.iter().any(|s| s.joined);
            if everyone_left && self.ending.is_none() {
                self.end(EndedBy::Agent, now);
            }
        }
    }
}
