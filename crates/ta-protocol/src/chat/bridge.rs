//! One chat, from the SA's side, as a state machine: the visitor's
//! invitation in, the meeting, the bridge, the agents, the welcome, then
//! the ending, each call made once its link is known. No I/O, no clock.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use hal_model::StartAdhocMeetingInput;
use url::Url;

use super::{
    Agent, CallFailure, ChatCall, ChatCallKind, ChatId, ConversationKey, EndedBy, IncomingChat,
    Notice, Plan, Timers,
};
use crate::ChatAnswer;

/// Identifies one of a chat's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId(u64);

impl CallId {
    /// The number (unique within one chat).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Where a chat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Setting up: the meeting, the bridge.
    Starting,
    /// The visitor is bridged; no agent has joined yet.
    Bridged,
    /// An agent is in the meeting.
    Active,
    /// Ending: the last calls (stop, terminate, decline) are under way.
    Ending,
    /// Over.
    Ended,
}

#[derive(Debug)]
pub(super) struct AgentSlot {
    pub(super) agent: Agent,
    pub(super) operation_id: String,
    pub(super) invited_at: Option<Instant>,
    pub(super) joined: bool,
    pub(super) gone: bool,
    /// The agent's participant in the meeting, once joined.
    pub(super) participant: Option<ConversationKey>,
}

/// What the chat waits for from the platform, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaiting {
    /// The meeting's URI, after `startAdhocMeeting`.
    Meeting,
    /// The bridge, after `acceptAndBridge`.
    Bridge,
}

/// One chat, from the SA's side.
///
/// # The drive loop
///
/// 1. Route every callback of the chat to [`handle_fact`](Self::handle_fact)
///    (the driver tells chats apart by `callbackContext`, see
///    [`callback_context`](Self::callback_context)).
/// 2. Send what [`poll_call`](Self::poll_call) gives with
///    [`Flow::chat_call`](crate::Flow::chat_call) and hand the result to
///    [`handle_answer`](Self::handle_answer), or a failure to
///    [`handle_failure`](Self::handle_failure) with what it says about
///    sending the call again ([`CallFailure`]): a call that ends the chat
///    goes again later unless what it ends is gone. At most one call is
///    outstanding.
/// 3. Wake at [`poll_timeout`](Self::poll_timeout) and call
///    [`handle_timeout`](Self::handle_timeout).
/// 4. Log and count what [`poll_notice`](Self::poll_notice) gives; stop
///    once [`is_ended`](Self::is_ended).
///
/// Facts are acted on once: a callback delivered twice, or out of order,
/// makes no second call.
#[derive(Debug)]
pub struct Bridge {
    pub(super) id: ChatId,
    pub(super) chat: IncomingChat,
    pub(super) plan: Plan,
    pub(super) timers: Timers,
    pub(super) started_at: Instant,
    pub(super) phase: Phase,
    pub(super) visitor: ConversationKey,
    pub(super) meeting: Option<ConversationKey>,
    pub(super) meeting_uri: Option<String>,
    pub(super) add_participant: Option<Url>,
    pub(super) add_messaging: Option<Url>,
    pub(super) terminate: Option<Url>,
    pub(super) visitor_send: Option<Url>,
    pub(super) visitor_stop: Option<Url>,
    pub(super) bridged_participants: Option<Url>,
    pub(super) visitor_gone: bool,
    pub(super) meeting_gone: bool,
    pub(super) bridge_seen: bool,
    pub(super) requested: HashSet<ChatCallKind>,
    /// The meeting's start failed in a way that may have reached the
    /// platform: the meeting may exist.
    pub(super) meeting_maybe_started: bool,
    /// The calls the platform answered with a 2xx.
    pub(super) succeeded: HashSet<ChatCallKind>,
    /// The end of the chat's longest life.
    pub(super) expires_at: Option<Instant>,
    pub(super) agents: Vec<AgentSlot>,
    pub(super) join_deadline: Option<Instant>,
    pub(super) awaiting: Option<(Awaiting, Instant)>,
    /// Who ended the chat, and until when the ending waits for a missing
    /// link.
    pub(super) ending: Option<(EndedBy, Option<Instant>)>,
    pub(super) queue: VecDeque<ChatCall>,
    pub(super) in_flight: Option<(CallId, ChatCallKind)>,
    /// The call in flight, kept when it ends the chat (it may be sent
    /// again).
    pub(super) sent: Option<ChatCall>,
    /// Calls that end the chat and failed for a reason that may pass, each
    /// with when it goes again.
    pub(super) resends: Vec<(Instant, ChatCall)>,
    /// Failed attempts of the calls that end the chat, by kind.
    pub(super) attempts: Vec<(ChatCallKind, u32)>,
    pub(super) next_call: u64,
    pub(super) notices: VecDeque<Notice>,
    pub(super) seen_messages: VecDeque<String>,
}

/// The most message URLs remembered to count each message once.
const SEEN_MESSAGES: usize = 256;

impl Bridge {
    /// Accepts `chat` with `plan`: the meeting is asked for at once. Its
    /// callbacks carry `id` as their context (`callbackContext` in the
    /// body), or go to `meeting_callback` when one is given (a
    /// per-conversation URL, which must carry the context itself).
    pub fn accept(
        id: ChatId,
        chat: IncomingChat,
        plan: Plan,
        timers: Timers,
        meeting_callback: Option<Url>,
        now: Instant,
    ) -> Self {
        let agents = plan
            .agents
            .iter()
            .enumerate()
            .map(|(i, agent)| AgentSlot {
                agent: agent.clone(),
                operation_id: id.operation(&format!("a{i}")),
                invited_at: None,
                joined: false,
                gone: false,
                participant: None,
            })
            .collect();
        let mut bridge = Self::new(id, chat, plan, timers, now);
        bridge.agents = agents;
        // One or the other, as the SDK did: a per-conversation URL carries
        // its own context; without one, the context goes in the body.
        let input = StartAdhocMeetingInput {
            subject: Some(bridge.plan.subject.clone()),
            operation_id: bridge.id.operation("m"),
            callback_context: meeting_callback
                .is_none()
                .then(|| bridge.id.as_str().to_owned()),
            callback_url: meeting_callback.map(String::from),
        };
        let url = bridge.chat.start_adhoc_meeting.clone();
        bridge.request(ChatCall::start_adhoc_meeting(url, &input));
        bridge.awaiting = now
            .checked_add(timers.operation_timeout)
            .map(|at| (Awaiting::Meeting, at));
        bridge
    }

    /// Declines `chat`: one `decline` call (when the invitation has the
    /// link), then the chat is over.
    pub fn decline(id: ChatId, chat: IncomingChat, now: Instant) -> Self {
        let mut bridge = Self::new(id, chat, Plan::new(Vec::new()), Timers::default(), now);
        bridge.finish_with(EndedBy::Declined, now);
        bridge
    }

    fn new(id: ChatId, chat: IncomingChat, plan: Plan, timers: Timers, now: Instant) -> Self {
        Self {
            visitor: ConversationKey::of(&chat.conversation),
            id,
            chat,
            plan,
            timers,
            started_at: now,
            phase: Phase::Starting,
            meeting: None,
            meeting_uri: None,
            add_participant: None,
            add_messaging: None,
            terminate: None,
            visitor_send: None,
            visitor_stop: None,
            bridged_participants: None,
            visitor_gone: false,
            meeting_gone: false,
            bridge_seen: false,
            requested: HashSet::new(),
            meeting_maybe_started: false,
            succeeded: HashSet::new(),
            expires_at: now.checked_add(timers.max_chat),
            agents: Vec::new(),
            join_deadline: None,
            awaiting: None,
            ending: None,
            queue: VecDeque::new(),
            in_flight: None,
            sent: None,
            resends: Vec::new(),
            attempts: Vec::new(),
            next_call: 0,
            notices: VecDeque::new(),
            seen_messages: VecDeque::new(),
        }
    }

    /// The chat's id.
    pub fn id(&self) -> &ChatId {
        &self.id
    }

    /// The context to answer the first callback with (`{"callbackContext":
    /// …}`), so that the visitor's conversation's later callbacks carry
    /// it: the chat's id.
    pub fn callback_context(&self) -> &str {
        self.id.as_str()
    }

    /// The visitor's chat, as it arrived.
    pub fn incoming(&self) -> &IncomingChat {
        &self.chat
    }

    /// Where the chat is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the chat is over (its last notice may still wait).
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// The next call to send, if one is due and none is outstanding.
    pub fn poll_call(&mut self) -> Option<(CallId, ChatCall)> {
        if self.in_flight.is_some() {
            return None;
        }
        let call = self.queue.pop_front()?;
        self.next_call += 1;
        let id = CallId(self.next_call);
        self.in_flight = Some((id, call.kind()));
        self.sent = call.kind().is_idempotent().then(|| call.clone());
        Some((id, call))
    }

    /// Hands in the outcome of the call `id`: the [`Flow::chat_call`]'s
    /// result, or why it could not be made (any error that displays,
    /// tokens masked). An unknown id is ignored.
    ///
    /// [`Flow::chat_call`]: crate::Flow::chat_call
    pub fn handle_answer<E: std::fmt::Display>(
        &mut self,
        id: CallId,
        result: Result<ChatAnswer, E>,
        now: Instant,
    ) {
        let Some((current, kind)) = self.in_flight else {
            return;
        };
        if current != id {
            return;
        }
        self.in_flight = None;
        self.sent = None;
        match result {
            Ok(answer) => self.answered(kind, &answer, now),
            Err(error) => {
                self.notices.push_back(Notice::CallFailed {
                    kind,
                    error: error.to_string(),
                });
                if self.ending.is_none() {
                    let why = format!("{kind} failed: {error}");
                    self.end(EndedBy::Failure(why), now);
                }
            }
        }
        self.advance(now);
    }

    /// Hands in a failure of the call `id`, with what its error says
    /// about sending it again. A call that ends the chat (stopping the
    /// visitor's messaging, terminating the meeting, declining) and failed
    /// [`Transient`](CallFailure::Transient) or
    /// [`Refused`](CallFailure::Refused) is sent again, after 1 s, 2 s,
    /// 4 s, then every 8 s, until the ending's cleanup timeout, unless its
    /// conversation ends meanwhile: giving up would leave the conversation
    /// open on the platform, and a refusal (consent revoked, a redirect
    /// refused) may be lifted within the timeout. Any other failure is
    /// final, as an `Err` given to [`handle_answer`](Self::handle_answer),
    /// except that a meeting whose start failed
    /// [`Transient`](CallFailure::Transient) is waited for (its terminate
    /// link, until the cleanup timeout): the platform may have started it.
    /// An unknown id is ignored.
    pub fn handle_failure<E: std::fmt::Display>(
        &mut self,
        id: CallId,
        error: E,
        failure: CallFailure,
        now: Instant,
    ) {
        let Some((current, kind)) = self.in_flight else {
            return;
        };
        if current != id {
            return;
        }
        if kind == ChatCallKind::StartAdhocMeeting && failure == CallFailure::Transient {
            // The platform may have started the meeting before the answer
            // was lost: the ending waits for its link to terminate it.
            self.meeting_maybe_started = true;
        }
        let deadline = self.ending.as_ref().and_then(|(_, cleanup)| *cleanup);
        let resend = self
            .sent
            .clone()
            .filter(|_| matches!(failure, CallFailure::Transient | CallFailure::Refused));
        let (Some(call), Some(deadline)) = (resend, deadline) else {
            return self.handle_answer(id, Err::<ChatAnswer, E>(error), now);
        };
        self.in_flight = None;
        self.sent = None;
        self.notices.push_back(Notice::CallFailed {
            kind,
            error: error.to_string(),
        });
        let at = now.checked_add(self.resend_backoff(kind));
        if let Some(at) = at.filter(|at| *at < deadline) {
            self.resends.push((at, call));
        }
        self.advance(now);
    }

    fn answered(&mut self, kind: ChatCallKind, _answer: &ChatAnswer, now: Instant) {
        self.succeeded.insert(kind);
        match kind {
            // Unless the bridge was seen already (a callback can come
            // before the answer).
            ChatCallKind::AcceptAndBridge if self.phase == Phase::Starting && !self.bridge_seen => {
                self.awaiting = now
                    .checked_add(self.timers.operation_timeout)
                    .map(|at| (Awaiting::Bridge, at));
            }
            ChatCallKind::SendMessage => self.notices.push_back(Notice::Message {
                from: super::MessageFrom::Service,
            }),
            _ => {}
        }
    }

    /// The next instant something is due, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Ended {
            return None;
        }
        let waiting = match &self.ending {
            Some((_, cleanup)) => {
                let resend = self.resends.iter().map(|(at, _)| *at).min();
                [cleanup.filter(|_| self.waits_for_terminate()), resend]
                    .into_iter()
                    .flatten()
                    .min()
            }
            None => self.awaiting.map(|(_, at)| at),
        };
        let join = self
            .join_deadline
            .filter(|_| self.ending.is_none() && !self.any_joined());
        let longest = self.expires_at.filter(|_| self.ending.is_none());
        [waiting, join, longest].into_iter().flatten().min()
    }

    /// Acts on whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, cleanup)) = &self.ending {
            if self.waits_for_terminate() && cleanup.is_some_and(|at| now >= at) {
                // Given up on: the meeting's link never came.
                self.meeting_gone = true;
            }
            self.resend_due(now);
            self.advance(now);
            return;
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            let why = "the chat reached its longest life".to_owned();
            self.end(EndedBy::Failure(why), now);
            return;
        }
        if let Some((what, at)) = self.awaiting
            && now >= at
        {
            let why = match what {
                Awaiting::Meeting => "the meeting did not start in time",
                Awaiting::Bridge => "the bridge was not set up in time",
            };
            self.end(EndedBy::Failure(why.to_owned()), now);
            return;
        }
        if let Some(at) = self.join_deadline
            && now >= at
            && !self.any_joined()
        {
            self.no_agent(now);
        }
    }

    /// The next notice, if any.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// Ends the chat (the SA's shutdown, reload or operator): the visitor's
    /// messaging is stopped and the meeting terminated. Nothing happens if
    /// it is already ending.
    pub fn shut_down(&mut self, now: Instant) {
        self.end(EndedBy::Service, now);
    }

    pub(super) fn any_joined(&self) -> bool {
        self.agents.iter().any(|a| a.joined)
    }

    /// Queues `call`, and remembers that its kind was asked for.
    pub(super) fn request(&mut self, call: ChatCall) {
        self.requested.insert(call.kind());
        self.queue.push_back(call);
    }

    /// Queues `call` unless one of its kind was asked for already.
    pub(super) fn once(&mut self, call: ChatCall) {
        if !self.requested.contains(&call.kind()) {
            self.request(call);
        }
    }

    /// Makes every call whose link is now known, in the flow's order.
    pub(super) fn advance(&mut self, now: Instant) {
        if self.ending.is_some() {
            self.advance_ending(now);
            return;
        }
        if let (Some(uri), false) = (
            self.meeting_uri.clone(),
            self.requested.contains(&ChatCallKind::AcceptAndBridge),
        ) {
            self.awaiting = None;
            let url = self.chat.accept_and_bridge.clone();
            self.request(ChatCall::accept_and_bridge(
                url,
                &uri,
                &self.plan.helpdesk_name,
            ));
        }
        if let Some(url) = self.add_messaging.clone() {
            self.once(ChatCall::add_messaging(url, &self.id.operation("im")));
        }
        let accepted = self.requested.contains(&ChatCallKind::AcceptAndBridge);
        if self.phase == Phase::Starting && self.bridge_seen && accepted {
            self.phase = Phase::Bridged;
            if matches!(self.awaiting, Some((Awaiting::Bridge, _))) {
                self.awaiting = None;
            }
            // Agents have this long from now (invited or not).
            self.join_deadline = now.checked_add(self.plan.join_timeout);
            self.notices.push_back(Notice::Bridged {
                after: self.elapsed(now),
            });
        }
        let bridged = self.phase != Phase::Starting;
        if bridged
            && let Some(url) = self.bridged_participants.clone()
            && !self
                .requested
                .contains(&ChatCallKind::AddBridgedParticipant)
        {
            for agent in self.plan.agents.clone() {
                self.request(ChatCall::add_bridged_participant(
                    url.clone(),
                    &agent.display_name,
                    &agent.uri,
                ));
            }
            // An empty plan asks for none, and must not ask again.
            self.requested.insert(ChatCallKind::AddBridgedParticipant);
        }
        if bridged
            && let (Some(url), Some(text)) = (self.visitor_send.clone(), self.plan.welcome.clone())
        {
            self.once(ChatCall::send_message(&url, &self.id.operation("w"), &text));
        }
        if bridged
            && self.agents.is_empty()
            && (self.visitor_send.is_some() || self.plan.unavailable.is_none())
        {
            // Nobody to invite: say so (once the visitor can be told).
            self.no_agent(now);
            return;
        }
        if bridged
            && let Some(url) = self.add_participant.clone()
            && !self.requested.contains(&ChatCallKind::AddParticipant)
        {
            self.requested.insert(ChatCallKind::AddParticipant);
            for slot in &mut self.agents {
                slot.invited_at = Some(now);
                self.queue.push_back(ChatCall::add_participant(
                    url.clone(),
                    &slot.agent.uri,
                    &slot.operation_id,
                ));
            }
        }
    }

    /// Remembers a message's URL; whether it was new.
    pub(super) fn first_sight(&mut self, href: &Url) -> bool {
        let key = href.as_str().to_ascii_lowercase();
        if self.seen_messages.contains(&key) {
            return false;
        }
        if self.seen_messages.len() == SEEN_MESSAGES {
            self.seen_messages.pop_front();
        }
        self.seen_messages.push_back(key);
        true
    }

    pub(super) fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started_at)
    }
}
