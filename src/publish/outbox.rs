//! The outbox: the latest payload per topic, and which topics still need to go out.
//!
//! The core never waits for MQTT: it only records what each topic *should* say. A separate task
//! drains the outbox into the client. Consequences: a slow or absent broker coalesces updates
//! (latest value wins) instead of queueing them; after a reconnect or HA's birth message, a
//! republish is just "mark everything dirty"; and unchanged payloads are not sent again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Order in which dirty topics are sent: HA needs the availability and the discovery config of
/// an entity before its state makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    BridgeState,
    Availability,
    Discovery,
    BridgeMeta,
    State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Arc<str>,
    pub retain: bool,
    pub priority: Priority,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<String, Message>,
    dirty: BTreeSet<(Priority, String)>,
}

#[derive(Debug, Default)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps inconsistent (each update is a
        // single insert), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what `topic` should say; it is sent only if that differs from before.
    pub fn put(&self, topic: String, payload: impl Into<Arc<str>>, retain: bool, priority: Priority) -> bool {
        let payload = payload.into();
        let mut inner = self.lock();
        if let Some(existing) = inner.entries.get(&topic)
            && existing.payload == payload
            && existing.retain == retain
        {
            return false;
        }
        inner.dirty.insert((priority, topic.clone()));
        inner.entries.insert(
            topic.clone(),
            Message {
                topic,
                payload,
                retain,
                priority,
            },
        );
        drop(inner);
        self.notify.notify_one();
        true
    }

    /// Clears a retained topic (an empty retained payload deletes a discovery config in HA).
    pub fn clear(&self, topic: String, priority: Priority) {
        self.put(topic, "", true, priority);
    }

    pub fn contains(&self, topic: &str) -> bool {
        self.lock().entries.contains_key(topic)
    }

    /// Topics that start with `prefix` and are not in `keep`: what a stale-config sweep clears.
    pub fn topics_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .entries
            .keys()
            .filter(|t| t.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Everything must go out again (after a reconnect).
    pub fn mark_all(&self) {
        let mut inner = self.lock();
        let all: Vec<_> = inner.entries.values().map(|m| (m.priority, m.topic.clone())).collect();
        inner.dirty.extend(all);
        drop(inner);
        self.notify.notify_one();
    }

    /// Every message of these priorities goes out again (HA's birth, periodic refresh).
    pub fn mark(&self, priorities: &[Priority]) {
        let mut inner = self.lock();
        let some: Vec<_> = inner
            .entries
            .values()
            .filter(|m| priorities.contains(&m.priority))
            .map(|m| (m.priority, m.topic.clone()))
            .collect();
        inner.dirty.extend(some);
        drop(inner);
        self.notify.notify_one();
    }

    /// Takes the most urgent dirty message.
    pub fn next(&self) -> Option<Message> {
        let mut inner = self.lock();
        loop {
            let (_, topic) = inner.dirty.pop_first()?;
            if let Some(message) = inner.entries.get(&topic) {
                let message = message.clone();
                // A sent deletion has done its job; forget it so it is not repeated forever.
                if message.payload.is_empty() {
                    inner.entries.remove(&topic);
                }
                return Some(message);
            }
        }
    }

    /// Puts a message back when sending failed, unless a newer payload arrived meanwhile.
    pub fn retry(&self, message: Message) {
        let mut inner = self.lock();
        let topic = message.topic.clone();
        let priority = message.priority;
        inner.entries.entry(topic.clone()).or_insert(message);
        inner.dirty.insert((priority, topic));
    }

    /// How many topics wait to be sent (the MQTT queue depth of `/metrics`).
    pub fn pending(&self) -> usize {
        self.lock().dirty.len()
    }

    pub fn has_dirty(&self) -> bool {
        !self.lock().dirty.is_empty()
    }

    /// Every current message, most urgent first (for `once --dry-run`).
    pub fn snapshot(&self) -> Vec<Message> {
        let inner = self.lock();
        let mut all: Vec<_> = inner.entries.values().cloned().collect();
        all.sort_by(|a, b| (a.priority, &a.topic).cmp(&(b.priority, &b.topic)));
        all
    }

    /// Resolves when something may have become dirty.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_only_changes_in_priority_order() {
        let o = Outbox::new();
        assert!(o.put("b/state".into(), "1", false, Priority::State));
        assert!(o.put("a/config".into(), "{}", true, Priority::Discovery));
        assert!(
            !o.put("a/config".into(), "{}", true, Priority::Discovery),
            "unchanged payload"
        );
        assert_eq!(o.next().unwrap().topic, "a/config");
        assert_eq!(o.next().unwrap().topic, "b/state");
        assert!(o.next().is_none());
        assert!(o.put("b/state".into(), "2", false, Priority::State));
        assert_eq!(&*o.next().unwrap().payload, "2");
    }

    #[test]
    fn coalesces_and_republishes() {
        let o = Outbox::new();
        o.put("s".into(), "1", false, Priority::State);
        o.put("s".into(), "2", false, Priority::State);
        o.put("c".into(), "{}", true, Priority::Discovery);
        assert_eq!(&*o.next().unwrap().payload, "{}");
        assert_eq!(&*o.next().unwrap().payload, "2", "only the latest state goes out");
        assert!(o.next().is_none());
        o.mark(&[Priority::State]);
        assert_eq!(o.next().unwrap().topic, "s");
        assert!(o.next().is_none());
        o.mark_all();
        assert_eq!(o.snapshot().len(), 2);
        assert!(o.next().is_some() && o.next().is_some() && o.next().is_none());
    }

    #[test]
    fn deletions_are_sent_once() {
        let o = Outbox::new();
        o.put("c".into(), "{}", true, Priority::Discovery);
        o.next();
        o.clear("c".into(), Priority::Discovery);
        let m = o.next().unwrap();
        assert!(m.payload.is_empty() && m.retain);
        o.mark_all();
        assert!(o.next().is_none());
    }
}
