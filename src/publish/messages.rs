//! Plain messages (command responses, `bridge/event`): not retained, not deduplicated — two
//! equal events must both go out — sent in order, before the outbox's states.
//!
//! They go through the same drain task as everything else so that the link's bookkeeping of
//! what was sent and acknowledged (link_health.rs) sees every PUBLISH in wire order: a message
//! handed to the client from elsewhere would shift the acknowledgements and hide which packet
//! the broker refused. The queue is bounded so that a broker away for long cannot grow it
//! without limit (a household's first poll makes one `device_joined` per device).

use std::collections::VecDeque;

/// 10 000-device households announce every device once on their first poll.
pub const QUEUE_MAX: usize = 20_000;

#[derive(Debug, Default)]
pub struct MessageQueue {
    queue: VecDeque<(String, String)>,
    /// Messages dropped since the last drop was logged (the queue was full).
    dropped: usize,
}

impl MessageQueue {
    /// Appends one; the oldest is dropped (and counted) when the queue is full.
    pub fn push(&mut self, topic: String, payload: String) {
        if self.queue.len() >= QUEUE_MAX
            && let Some((old, _)) = self.queue.pop_front()
        {
            if self.dropped == 0 {
                tracing::warn!(topic = %old, queued = QUEUE_MAX, "Too many responses and events waiting for the broker; dropping the oldest.");
            }
            self.dropped += 1;
        }
        self.queue.push_back((topic, payload));
    }

    pub fn pop(&mut self) -> Option<(String, String)> {
        let next = self.queue.pop_front();
        if next.is_some() && self.dropped > 0 {
            tracing::info!(dropped = self.dropped, "Responses and events flow again.");
            self.dropped = 0;
        }
        next
    }

    /// Puts back a message the client could not take (it goes first next time).
    pub fn unpop(&mut self, topic: String, payload: String) {
        self.queue.push_front((topic, payload));
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_duplicates_and_drops_the_oldest_when_full() {
        let mut q = MessageQueue::default();
        q.push("e".into(), "1".into());
        q.push("e".into(), "1".into());
        assert_eq!(q.len(), 2, "equal messages both go out");
        assert_eq!(q.pop(), Some(("e".into(), "1".into())));
        q.unpop("r".into(), "x".into());
        assert_eq!(q.pop().unwrap().0, "r");
        assert_eq!(q.pop().unwrap().0, "e");
        assert!(q.is_empty());
        for i in 0..QUEUE_MAX + 5 {
            q.push("e".into(), i.to_string());
        }
        assert_eq!(q.len(), QUEUE_MAX);
        assert_eq!(q.pop().unwrap().1, "5", "the 5 oldest were dropped");
    }
}
