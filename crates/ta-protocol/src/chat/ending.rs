//! How a chat ends: the last message, then the visitor's messaging
//! stopped, the meeting terminated (or the invitation declined), each at
//! most once, and the notice that it is over.

use std::time::{Duration, Instant};

use super::bridge::{Bridge, Phase};
use super::{ChatCall, ChatCallKind, EndedBy, Notice};

impl Bridge {
    /// No agent will come: the visitor is told (when that is possible) and
    /// the chat ends.
    pub(super) fn no_agent(&mut self, now: Instant) {
        let text = self.plan.unavailable.clone();
        self.queue.clear();
        if let (Some(url), Some(text)) = (self.visitor_send.clone(), text) {
            self.request(ChatCall::send_message(&url, &self.id.operation("u"), &text));
        }
        self.finish_with(EndedBy::NoAgent, now);
    }

    /// Starts the ending for `by`, unless one is under way. Calls not sent
    /// yet are dropped.
    pub(super) fn end(&mut self, by: EndedBy, now: Instant) {
        if self.ending.is_some() {
            return;
        }
        self.queue.clear();
        self.finish_with(by, now);
    }

    /// Starts the ending, keeping what is queued (a last message).
    pub(super) fn finish_with(&mut self, by: EndedBy, now: Instant) {
        if self.ending.is_some() {
            return;
        }
        self.awaiting = None;
        self.phase = Phase::Ending;
        self.ending = Some((by, now.checked_add(self.timers.cleanup_timeout)));
        self.advance_ending(now);
    }

    /// Whether the ending still waits for the meeting's terminate link: the
    /// meeting was started (or its start is in flight, or failed in a way
    /// that may have reached the platform), is not over, and its link is
    /// unknown.
    pub(super) fn waits_for_terminate(&self) -> bool {
        let starting = self
            .in_flight
            .is_some_and(|(_, k)| k == ChatCallKind::StartAdhocMeeting);
        (self.succeeded.contains(&ChatCallKind::StartAdhocMeeting)
            || starting
            || self.meeting_maybe_started)
            && !self.meeting_gone
            && self.terminate.is_none()
            && !self.requested.contains(&ChatCallKind::TerminateMeeting)
    }

    pub(super) fn advance_ending(&mut self, now: Instant) {
        // Not until an acceptance in flight is answered: it may succeed.
        let accepting = self
            .in_flight
            .is_some_and(|(_, k)| k == ChatCallKind::AcceptAndBridge);
        let accepted = self.succeeded.contains(&ChatCallKind::AcceptAndBridge);
        if !accepted && !accepting && !self.visitor_gone {
            if let Some(url) = self.chat.decline.clone() {
                self.once(ChatCall::decline(url));
            }
        }
        if accepted
            && !self.visitor_gone
            && let Some(url) = self.visitor_stop.clone()
        {
            self.once(ChatCall::stop_messaging(url));
        }
        if !self.meeting_gone
            && let Some(url) = self.terminate.clone()
        {
            self.once(ChatCall::terminate_meeting(url));
        }
        let idle = self.in_flight.is_none() && self.queue.is_empty() && self.resends.is_empty();
        if idle && !self.waits_for_terminate() && self.phase != Phase::Ended {
            self.phase = Phase::Ended;
            if let Some((by, _)) = self.ending.clone() {
                self.notices.push_back(Notice::Ended {
                    by,
                    after: now.saturating_duration_since(self.started_at),
                });
            }
        }
    }

    /// How long a call that ends the chat waits before it goes again: 1 s,
    /// 2 s, 4 s, then 8 s, by its failures so far (this one counted).
    pub(super) fn resend_backoff(&mut self, kind: ChatCallKind) -> Duration {
        let failures = match self.attempts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => {
                *n = n.saturating_add(1);
                *n
            }
            None => {
                self.attempts.push((kind, 1));
                1
            }
        };
        RESEND_FIRST.saturating_mul(1 << failures.clamp(1, 4).saturating_sub(1))
    }

    /// Queues the resends that are due, except those whose conversation has
    /// ended meanwhile.
    pub(super) fn resend_due(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = self.resends.drain(..).partition(|(at, _)| *at <= now);
        self.resends = later;
        for (_, call) in due {
            let gone = match call.kind() {
                ChatCallKind::TerminateMeeting => self.meeting_gone,
                _ => self.visitor_gone,
            };
            if !gone {
                self.queue.push_back(call);
            }
        }
    }
}

/// The first wait before a failed call that ends the chat goes again.
const RESEND_FIRST: Duration = Duration::from_secs(1);
