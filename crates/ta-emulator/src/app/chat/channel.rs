//! The widget's event channel: UCWA's pending GET ("P-GET"). Events wait
//! in order; a poll at the expected `ack` takes them all as one batch
//! (acknowledging the previous one), a poll repeating the last `ack` gets
//! the same batch again (nothing is lost when an answer is), a second
//! poll releases the first with `409 PGetReplaced`, and a poll at any
//! other `ack` is told to `resync`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hal_model::Sender;
use tokio::sync::Notify;

/// What a poll gets.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Polled {
    /// A batch: its `ack`, and the events; `next` is `ack + 1`.
    Batch(u64, Vec<Sender>),
    /// Nothing happened before the timeout: poll `ack` again.
    Empty(u64),
    /// The `ack` is not one this channel expects: resync at this one.
    Resync(u64),
    /// Another poll took this one's place.
    Replaced,
}

#[derive(Debug)]
struct State {
    /// The `ack` of the next new batch.
    expected: u64,
    /// The last batch served, until the next poll acknowledges it.
    last: Option<(u64, Vec<Sender>)>,
    /// Events not yet in a batch, each with its sequence number.
    pending: Vec<(u64, Sender)>,
    /// The sequence number of the next event.
    next_seq: u64,
    /// Events up to this sequence number were served.
    served_through: u64,
    /// Incremented by each poll: a waiting poll that sees it change was
    /// replaced.
    generation: u64,
    /// When the widget last polled.
    last_poll: Instant,
    /// Closed: the application is gone.
    closed: bool,
}

#[derive(Debug)]
pub(super) struct Channel {
    state: Mutex<State>,
    changed: Notify,
}

impl Channel {
    pub(super) fn new(first_ack: u64) -> Self {
        Self {
            state: Mutex::new(State {
                expected: first_ack,
                last: None,
                pending: Vec::new(),
                next_seq: 1,
                served_through: 0,
                generation: 0,
                last_poll: Instant::now(),
                closed: false,
            }),
            changed: Notify::new(),
        }
    }

    /// Queues an event group; its sequence number (see
    /// [`is_served`](Self::is_served)).
    pub(super) fn push(&self, sender: Sender) -> u64 {
        let seq = match self.state.lock() {
            Ok(mut state) => {
                let seq = state.next_seq;
                state.next_seq += 1;
                state.pending.push((seq, sender));
                seq
            }
            Err(_) => 0,
        };
        self.changed.notify_waiters();
        seq
    }

    /// Whether the event `seq` went out in a batch.
    pub(super) fn is_served(&self, seq: u64) -> bool {
        self.state.lock().is_ok_and(|s| s.served_through >= seq)
    }

    /// How long since the widget last polled.
    pub(super) fn idle_for(&self) -> Duration {
        self.state
            .lock()
            .map_or(Duration::ZERO, |s| s.last_poll.elapsed())
    }

    /// Ends the channel: a waiting poll returns what is pending.
    pub(super) fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.changed.notify_waiters();
    }

    /// A poll at `ack`, held at most `wait`.
    pub(super) async fn poll(&self, ack: u64, wait: Duration) -> Polled {
        let deadline = tokio::time::Instant::now() + wait;
        let generation = {
            let Ok(mut state) = self.state.lock() else {
                return Polled::Resync(ack);
            };
            state.last_poll = Instant::now();
            if let Some((last, batch)) = &state.last
                && *last == ack
            {
                return Polled::Batch(ack, batch.clone());
            }
            // A poll at another ack is told to resync, and replaces no
            // poll: only one that waits does.
            if ack != state.expected {
                return Polled::Resync(state.expected);
            }
            state.generation += 1;
            state.last = None;
            state.generation
        };
        // Wake the poll this one replaces.
        self.changed.notify_waiters();
        loop {
            let changed = self.changed.notified();
            {
                let Ok(mut state) = self.state.lock() else {
                    return Polled::Resync(ack);
                };
                if state.generation != generation {
                    return Polled::Replaced;
                }
                if !state.pending.is_empty() {
                    let taken: Vec<(u64, Sender)> = std::mem::take(&mut state.pending);
                    state.served_through = taken.last().map_or(state.served_through, |(s, _)| *s);
                    let batch: Vec<Sender> = taken.into_iter().map(|(_, s)| s).collect();
                    let served = state.expected;
                    state.expected += 1;
                    state.last = Some((served, batch.clone()));
                    state.last_poll = Instant::now();
                    return Polled::Batch(served, batch);
                }
                if state.closed {
                    return Polled::Empty(ack);
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                if let Ok(mut state) = self.state.lock() {
                    state.last_poll = Instant::now();
                }
                return Polled::Empty(ack);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::sync::Arc;

    use hal_model::Rel;

    use super::*;

    fn group(n: u32) -> Sender {
        Sender::new(Rel::parse("communication"), format!("/c/{n}"), Vec::new())
    }

    #[tokio::test]
    async fn batches_in_order_a_repeat_and_a_resync() {
        let channel = Channel::new(1);
        channel.push(group(1));
        channel.push(group(2));
        let short = Duration::from_millis(20);
        assert_eq!(
            channel.poll(1, short).await,
            Polled::Batch(1, vec![group(1), group(2)])
        );
        assert!(channel.is_served(2));
        // The answer was lost: the same poll gets the same batch.
        assert_eq!(
            channel.poll(1, short).await,
            Polled::Batch(1, vec![group(1), group(2)])
        );
        assert_eq!(channel.poll(2, short).await, Polled::Empty(2));
        assert_eq!(channel.poll(7, short).await, Polled::Resync(2));
        let seq = channel.push(group(3));
        assert!(!channel.is_served(seq));
        assert_eq!(
            channel.poll(2, short).await,
            Polled::Batch(2, vec![group(3)])
        );
        assert!(channel.is_served(seq));
        // Acknowledged: the old batch is not served again.
        assert_eq!(channel.poll(3, short).await, Polled::Empty(3));
        assert_eq!(channel.poll(2, short).await, Polled::Resync(3));
    }

    #[tokio::test]
    async fn a_waiting_poll_is_woken_by_an_event_or_replaced_by_another_poll() {
        let channel = Arc::new(Channel::new(1));
        let waiting = tokio::spawn({
            let channel = Arc::clone(&channel);
            async move { channel.poll(1, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        channel.push(group(1));
        assert_eq!(waiting.await.unwrap(), Polled::Batch(1, vec![group(1)]));
        let first = tokio::spawn({
            let channel = Arc::clone(&channel);
            async move { channel.poll(2, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let second = tokio::spawn({
            let channel = Arc::clone(&channel);
            async move { channel.poll(2, Duration::from_millis(50)).await }
        });
        assert_eq!(first.await.unwrap(), Polled::Replaced);
        assert_eq!(second.await.unwrap(), Polled::Empty(2));
        // A stray poll at a wrong ack leaves the waiting one in place.
        let waiting = tokio::spawn({
            let channel = Arc::clone(&channel);
            async move { channel.poll(2, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            channel.poll(9, Duration::from_millis(10)).await,
            Polled::Resync(2)
        );
        channel.push(group(2));
        assert_eq!(waiting.await.unwrap(), Polled::Batch(2, vec![group(2)]));
    }
}
