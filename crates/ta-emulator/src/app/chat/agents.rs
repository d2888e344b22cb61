//! The simulated agents: Skype for Business users who join a meeting when
//! invited (after their delay), and answer each of the visitor's messages
//! with the next line of their script, typing first.

use std::sync::Arc;
use std::time::Duration;

use hal_model::{
    ErrorBody, EventType, Link, OperationStatus, Rel, Resource, chat_names as n, names,
};

use super::paths;
use super::world::{event, group};
use crate::app::State;

impl State {
    /// The agent `uri`, invited into `meeting` by `operation_id`: joins
    /// after its delay, or never (the invitation then fails).
    pub(super) fn spawn_agent(
        self: &Arc<Self>,
        meeting: &str,
        uri: &str,
        operation_id: &str,
        invitation: &str,
    ) {
        let state = Arc::clone(self);
        let meeting = meeting.to_owned();
        let uri = uri.to_ascii_lowercase();
        let operation_id = operation_id.to_owned();
        let invitation = invitation.to_owned();
        let agent = self.config.chat.agent(&uri).cloned();
        tokio::spawn(async move {
            let Some(agent) = agent.filter(|a| !a.never_joins) else {
                tokio::time::sleep(Duration::from_millis(
                    state.config.chat.invitation_timeout_ms,
                ))
                .await;
                let reason =
                    ErrorBody::new("Gone", Some("Timeout"), "the participant did not answer");
                state.to_sa(
                    &meeting,
                    vec![group(
                        state.rel(names::COMMUNICATION),
                        &state.sa_href(""),
                        vec![
                            event(
                                state.rel(n::PARTICIPANT_INVITATION),
                                &invitation,
                                EventType::Completed,
                                Some(
                                    Resource::new()
                                        .with_property("operationId", operation_id)
                                        .with_property("state", "Failed"),
                                ),
                            )
                            .with_status(OperationStatus::Failure, Some(reason)),
                        ],
                    )],
                    false,
                );
                return;
            };
            tokio::time::sleep(Duration::from_millis(agent.join_after_ms)).await;
            let joined = state
                .chat
                .with(|inner| {
                    inner
                        .conversations
                        .get_mut(&meeting)
                        .filter(|c| !c.ended)
                        .map(|c| c.agents.insert(uri.clone(), true))
                })
                .flatten();
            if joined.is_none() {
                return;
            }
            state.chat.stat(|s| s.agents_joined += 1);
            // The visitor spoke before anyone was in: the agent answers.
            let waiting = state
                .chat
                .with(|inner| {
                    let m = inner.conversations.get_mut(&meeting)?;
                    let p2p = m.bridged_from.clone()?;
                    std::mem::take(&mut m.unanswered).then_some(p2p)
                })
                .flatten();
            if let Some(p2p) = waiting {
                state.spawn_answer(&meeting, &p2p, &uri);
            }
            let participant = state.sa_conversation(&meeting, &format!("/participants/{uri}"));
            state.to_sa(
                &meeting,
                vec![
                    group(
                        state.rel(names::COMMUNICATION),
                        &state.sa_href(""),
                        vec![
                            event(
                                state.rel(n::PARTICIPANT_INVITATION),
                                &invitation,
                                EventType::Completed,
                                Some(
                                    Resource::new()
                                        .with_property("operationId", operation_id)
                                        .with_property("state", "Connected"),
                                ),
                            )
                            .with_status(OperationStatus::Success, None),
                        ],
                    ),
                    group(
                        state.rel(n::CONVERSATION),
                        &state.sa_conversation(&meeting, ""),
                        vec![
                            event(
                                state.rel(n::PARTICIPANT),
                                &participant,
                                EventType::Added,
                                Some(
                                    Resource::new()
                                        .with_property("uri", agent.uri.clone())
                                        .with_property("name", agent.name.clone())
                                        .with_rel(state.rel(n::PARTICIPANT)),
                                ),
                            ),
                            event(
                                state.rel(n::PARTICIPANT_MESSAGING),
                                &format!("{participant}/messaging"),
                                EventType::Added,
                                None,
                            ),
                        ],
                    ),
                ],
                false,
            );
        });
    }

    /// The visitor said `text` in the conversation bridged into `meeting`:
    /// the SA hears it there (if its messaging is in), and each agent in
    /// the meeting answers.
    pub(super) fn visitor_said(
        self: &Arc<Self>,
        meeting: &str,
        visitor_uri: &str,
        visitor_name: &str,
        text: &str,
    ) {
        let found = self
            .chat
            .with(|inner| {
                let m = inner.conversations.get_mut(meeting).filter(|c| !c.ended)?;
                m.next_message += 1;
                let joined: Vec<String> = m
                    .agents
                    .iter()
                    .filter(|(_, j)| **j)
                    .map(|(u, _)| u.clone())
                    .collect();
                m.unanswered |= joined.is_empty();
                Some((
                    m.next_message,
                    m.sa_messaging,
                    m.bridged_from.clone(),
                    joined,
                ))
            })
            .flatten();
        let Some((number, sa_in, p2p, agents)) = found else {
            return;
        };
        if sa_in {
            self.meeting_message(meeting, number, visitor_uri, visitor_name, text);
        }
        let Some(p2p) = p2p else {
            return;
        };
        for uri in agents {
            self.spawn_answer(meeting, &p2p, &uri);
        }
    }

    /// A message in the meeting, as the SA's messaging there sees it.
    fn meeting_message(
        &self,
        meeting: &str,
        number: u64,
        sender_uri: &str,
        sender_name: &str,
        text: &str,
    ) {
        let href = self.sa_conversation(meeting, &format!("/messaging/messages/{number}"));
        let sender = Resource::new()
            .with_property("uri", sender_uri.to_owned())
            .with_property("name", sender_name.to_owned())
            .with_rel(self.rel(n::PARTICIPANT));
        let mut message = Resource::new()
            .with_link(
                self.rel(n::PLAIN_MESSAGE),
                Link::new(hal_model::DataUri::plain_text(text)),
            )
            .with_property("direction", "Incoming")
            .with_property(
                "timeStamp",
                hal_model::ExpiryTime::microsoft_json(time::OffsetDateTime::now_utc())
                    .as_str()
                    .to_owned(),
            )
            .with_rel(self.rel(n::MESSAGE));
        message
            .embedded_mut()
            .insert_many(self.rel(n::SENDER_PARTICIPANT), vec![sender]);
        self.to_sa(
            meeting,
            vec![group(
                self.rel(n::CONVERSATION),
                &self.sa_conversation(meeting, ""),
                vec![
                    event(
                        self.rel(n::MESSAGE),
                        &href,
                        EventType::Completed,
                        Some(message),
                    )
                    .with_status(OperationStatus::Success, None),
                ],
            )],
            false,
        );
    }

    /// The agent thinks, types (the visitor sees it), and answers with the
    /// next line of its script.
    fn spawn_answer(self: &Arc<Self>, meeting: &str, p2p: &str, uri: &str) {
        let Some(agent) = self.config.chat.agent(uri).cloned() else {
            return;
        };
        let state = Arc::clone(self);
        let meeting = meeting.to_owned();
        let p2p = p2p.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(agent.think_ms)).await;
            let found = state
                .chat
                .with(|inner| {
                    let c = inner.conversations.get_mut(&p2p).filter(|c| !c.ended)?;
                    let index = c
                        .answered
                        .entry(agent.uri.to_ascii_lowercase())
                        .or_insert(0);
                    let line = agent.answers.get(*index).or(agent.answers.last()).cloned();
                    *index += 1;
                    let shown = c
                        .bridged
                        .get(&agent.uri.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_else(|| agent.name.clone());
                    Some((c.app.clone()?, shown, line?))
                })
                .flatten();
            let Some((app_id, shown, line)) = found else {
                return;
            };
            let Some(app) = state.chat.app(&app_id) else {
                return;
            };
            let widget_conv = paths::widget_conversation(&app.id, &p2p);
            let participant = format!(
                "{widget_conv}/participants/{}",
                agent.uri.trim_start_matches("sip:")
            );
            let typing = |kind| {
                let mut link =
                    hal_model::EventLink::new(Rel::parse(n::PARTICIPANT), participant.clone());
                link.title = Some(shown.clone());
                let mut e = hal_model::Event::new(link, kind);
                e.collection = Some(hal_model::EventLink::new(
                    Rel::parse(n::TYPING_PARTICIPANTS),
                    format!("{widget_conv}/messaging/typingParticipants"),
                ));
                group(Rel::parse(n::CONVERSATION), &widget_conv, vec![e])
            };
            app.channel.push(typing(EventType::Added));
            tokio::time::sleep(Duration::from_millis(agent.type_ms)).await;
            app.channel.push(typing(EventType::Deleted));
            let number = state
                .chat
                .with(|inner| {
                    inner.conversations.get_mut(&meeting).map(|m| {
                        m.next_message += 1;
                        (m.next_message, m.sa_messaging)
                    })
                })
                .flatten();
            let sa_href = state.sa_conversation(
                &meeting,
                &format!("/messaging/messages/{}", number.map_or(0, |n| n.0)),
            );
            // The meeting has it first (the SA hears it there), then the
            // bridge passes it to the visitor.
            if let Some((number, true)) = number {
                state.meeting_message(&meeting, number, &agent.uri, &agent.name, &line);
            }
            state.message_to_visitor(&app, &p2p, &participant, &shown, &line, &sa_href);
        });
    }
}
