//! The outbox: the latest payload per topic, and which topics still need to go out.
//!
//! The core never waits for MQTT: it only records what each topic *should* say. A separate task
//! drains the outbox into the client. Consequences: a slow or absent broker coalesces updates
//! (latest value wins) instead of queueing them; after a reconnect or HA's birth message, a
//! republish is just "mark everything dirty"; and unchanged payloads are not sent again.
//!
//! Two queues: *fresh* (a payload changed) and *replay* (a reconnect, HA's birth or the periodic
//! refresh asked for everything again). Fresh always goes first, so a republish of 20 000
//! retained messages never holds up a state that just changed; the drain task paces the replay.
//!
//! The outbox also knows the packet limit (configured, lowered when the broker is seen refusing
//! a size) and which topics were too big to send, so every such message is logged once and
//! skipped instead of tearing the connection down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::messages::MessageQueue;

/// Order in which dirty topics are sent: HA needs the availability and the discovery config of
/// an entity before its state makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    BridgeState,
    Availability,
    /// `migrate_discovery` on an old discovery topic: before the new config (migration.rs).
    Migrate,
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

/// The bytes an MQTT 3.1.1 PUBLISH (QoS 1) of this topic and payload takes on the wire: fixed
/// header, remaining-length varint, topic length, topic, packet id, payload.
pub fn packet_size(topic: &str, payload_len: usize) -> usize {
    let remaining = 2 + topic.len() + 2 + payload_len;
    let varint = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + varint + remaining
}

/// Default for `mqtt.max_packet_size`: what rumqttc was set to before it was configurable, far
/// below mosquitto's own default (256 MB) and EMQX's (1 MB).
pub const DEFAULT_MAX_PACKET: usize = 256 * 1024;

/// Parts of split content after the broker refused a packet, unless a bigger size is known to
/// pass: small enough for restrictive brokers (AWS IoT takes 128 kB, some mosquitto setups
/// 20 kB), big enough that 10 000 devices stay around a hundred parts.
pub const PART_AFTER_REFUSAL: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<String, Message>,
    /// Payload changed since it was last sent.
    dirty: BTreeSet<(Priority, String)>,
    /// Asked to go out again (reconnect, HA birth, refresh); paced, after `dirty`.
    replay: BTreeSet<(Priority, String)>,
    /// Topics skipped as too large, with the size that was refused (logged once per topic).
    refused: HashMap<String, usize>,
    /// Discovery waits (while the bridge looks for configs to migrate).
    hold_discovery: bool,
    /// Responses and events: plain messages, sent in order before everything else.
    messages: MessageQueue,
}

/// The first key of `set`, skipping discovery while it is held.
fn first_key(set: &BTreeSet<(Priority, String)>, hold_discovery: bool) -> Option<(Priority, String)> {
    if !hold_discovery {
        return set.first().cloned();
    }
    set.range(..(Priority::Discovery, String::new()))
        .next()
        .or_else(|| set.range((Priority::BridgeMeta, String::new())..).next())
        .cloned()
}

#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// The largest packet that may be sent (bytes).
    limit: AtomicUsize,
    /// The largest part that content which can be split (`bridge/devices`) is cut into: once
    /// the broker refused a size, sizes it is known to take (see [`Outbox::learn_refusal`]).
    part: AtomicUsize,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::with_limit(DEFAULT_MAX_PACKET)
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limit(limit: usize) -> Self {
        Self {
            inner: Mutex::default(),
            notify: Notify::new(),
            limit: AtomicUsize::new(limit),
            part: AtomicUsize::new(usize::MAX),
        }
    }

    /// The largest packet (bytes) that may go to the broker now.
    pub fn packet_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The broker was seen refusing a packet of `size` bytes: from now on only smaller ones go.
    pub fn lower_limit(&self, size: usize) {
        self.limit.fetch_min(size.saturating_sub(1), Ordering::Relaxed);
    }

    /// The broker refused a packet of `size` bytes after accepting ones of up to `accepted`.
    /// Messages that big are skipped from now on, and split content is cut into parts of at
    /// most the size known to go through — at least [`PART_AFTER_REFUSAL`] or half the refused
    /// size, whichever is smaller — so that one refusal settles the link instead of a loop of
    /// parts each just under the last refused size.
    pub fn learn_refusal(&self, size: usize, accepted: usize) {
        self.lower_limit(size);
        let part = accepted
            .max((size / 2).min(PART_AFTER_REFUSAL))
            .min(size.saturating_sub(1));
        self.part.fetch_min(part, Ordering::Relaxed);
    }

    /// The largest packet split content (`bridge/devices` parts) may use.
    pub fn part_limit(&self) -> usize {
        self.packet_limit().min(self.part.load(Ordering::Relaxed))
    }

    /// Whether a message fits the packet limit. One that does not is logged once (per topic and
    /// size) and must be skipped; a topic that fits again after being refused is logged too.
    pub fn fits(&self, message: &Message) -> bool {
        let size = packet_size(&message.topic, message.payload.len());
        let limit = self.packet_limit();
        let mut inner = self.lock();
        if size <= limit {
            if inner.refused.remove(&message.topic).is_some() {
                tracing::info!(topic = %message.topic, size, limit, "MQTT message fits the packet limit again; sending it.");
            }
            return true;
        }
        if inner.refused.insert(message.topic.clone(), size) != Some(size) {
            tracing::warn!(
                topic = %message.topic,
                size,
                limit,
                "MQTT message larger than the packet limit (mqtt.max_packet_size or what the broker accepts); skipped, everything else goes on."
            );
        }
        false
    }

    /// Topics currently skipped as too large, with their size.
    pub fn refused(&self) -> Vec<(String, usize)> {
        let mut all: Vec<_> = self.lock().refused.iter().map(|(t, s)| (t.clone(), *s)).collect();
        all.sort();
        all
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
        inner.replay.remove(&(priority, topic.clone()));
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

    /// Whether `topic` has a change not yet sent.
    pub fn is_dirty(&self, topic: &str) -> bool {
        self.lock().dirty.iter().any(|(_, t)| t == topic)
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

    /// Everything must go out again (after a reconnect); paced, behind fresh changes.
    pub fn mark_all(&self) {
        self.mark_where(|_| true);
    }

    /// Every message of these priorities goes out again (HA's birth, periodic refresh).
    pub fn mark(&self, priorities: &[Priority]) {
        self.mark_where(|m| priorities.contains(&m.priority));
    }

    fn mark_where(&self, pick: impl Fn(&Message) -> bool) {
        let mut inner = self.lock();
        let Inner {
            entries, dirty, replay, ..
        } = &mut *inner;
        for m in entries.values().filter(|m| pick(m)) {
            let key = (m.priority, m.topic.clone());
            if !dirty.contains(&key) {
                replay.insert(key);
            }
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Holds discovery configs back (`true`) or lets them go (`false`).
    pub fn hold_discovery(&self, hold: bool) {
        self.lock().hold_discovery = hold;
        if !hold {
            self.notify.notify_one();
        }
    }

    /// Queues a plain message (a command response or an event): not retained, not
    /// deduplicated, sent in order ahead of the states (messages.rs).
    pub fn push_message(&self, topic: String, payload: String) {
        self.lock().messages.push(topic, payload);
        self.notify.notify_one();
    }

    /// The oldest plain message waiting.
    pub fn next_message(&self) -> Option<(String, String)> {
        self.lock().messages.pop()
    }

    /// Puts back a plain message the client could not take.
    pub fn unpop_message(&self, topic: String, payload: String) {
        self.lock().messages.unpop(topic, payload);
    }

    /// Takes the most urgent changed message (never a replay).
    pub fn next(&self) -> Option<Message> {
        let mut inner = self.lock();
        loop {
            let key = first_key(&inner.dirty, inner.hold_discovery)?;
            inner.dirty.remove(&key);
            if let Some(message) = take(&mut inner, &key.1) {
                return Some(message);
            }
        }
    }

    /// Takes the most urgent message that is due for republishing.
    pub fn next_replay(&self) -> Option<Message> {
        let mut inner = self.lock();
        loop {
            let key = first_key(&inner.replay, inner.hold_discovery)?;
            inner.replay.remove(&key);
            if let Some(message) = take(&mut inner, &key.1) {
                return Some(message);
            }
        }
    }

    /// Changed first, then the replay; what `once` and tests use when pacing does not matter.
    pub fn next_any(&self) -> Option<Message> {
        self.next().or_else(|| self.next_replay())
    }

    /// Puts a message back when sending failed, unless a newer payload arrived meanwhile.
    pub fn retry(&self, message: Message) {
        let mut inner = self.lock();
        let topic = message.topic.clone();
        let priority = message.priority;
        inner.entries.entry(topic.clone()).or_insert(message);
        inner.dirty.insert((priority, topic));
    }

    /// How many topics and plain messages wait to be sent (the MQTT queue depth of `/metrics`).
    pub fn pending(&self) -> usize {
        let inner = self.lock();
        inner.dirty.len() + inner.messages.len()
    }

    pub fn has_dirty(&self) -> bool {
        let inner = self.lock();
        !inner.dirty.is_empty() || !inner.replay.is_empty() || !inner.messages.is_empty()
    }

    pub fn has_fresh(&self) -> bool {
        let inner = self.lock();
        !inner.dirty.is_empty() || !inner.messages.is_empty()
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

/// The current message of `topic`; a sent deletion has done its job and is forgotten, so that it
/// is not repeated forever.
fn take(inner: &mut Inner, topic: &str) -> Option<Message> {
    let message = inner.entries.get(topic)?.clone();
    if message.payload.is_empty() {
        inner.entries.remove(topic);
        inner.replay.retain(|(_, t)| t != topic);
    }
    Some(message)
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
        assert!(o.next().is_none(), "a republish is not a change");
        assert_eq!(o.next_replay().unwrap().topic, "s");
        assert!(o.next_any().is_none());
        o.mark_all();
        assert_eq!(o.snapshot().len(), 2);
        assert!(o.next_any().is_some() && o.next_any().is_some() && o.next_any().is_none());
    }

    #[test]
    fn fresh_changes_overtake_a_replay() {
        let o = Outbox::new();
        for i in 0..100 {
            o.put(format!("d/{i:03}"), "1", true, Priority::Discovery);
        }
        while o.next().is_some() {}
        o.mark_all();
        assert_eq!(o.next_replay().unwrap().topic, "d/000");
        o.put("d/050".into(), "2", true, Priority::Discovery);
        o.put("s/1".into(), "fresh", false, Priority::State);
        assert_eq!(o.next().unwrap().topic, "d/050", "a change goes before the replay");
        assert_eq!(&*o.next().unwrap().payload, "fresh");
        assert!(o.next().is_none());
        let replayed: Vec<_> = std::iter::from_fn(|| o.next_replay()).map(|m| m.topic).collect();
        assert_eq!(replayed.len(), 98, "d/050 went out fresh and is not repeated");
        assert!(!replayed.contains(&"d/050".to_owned()));
    }

    #[test]
    fn oversized_messages_are_refused_once_and_fit_again() {
        let o = Outbox::with_limit(100);
        let small = Message {
            topic: "t".into(),
            payload: "x".repeat(10).into(),
            retain: true,
            priority: Priority::State,
        };
        let big = Message {
            payload: "x".repeat(200).into(),
            ..small.clone()
        };
        assert!(o.fits(&small));
        assert!(!o.fits(&big));
        assert!(!o.fits(&big));
        assert_eq!(o.refused(), vec![("t".to_owned(), packet_size("t", 200))]);
        assert!(o.fits(&small));
        assert!(o.refused().is_empty());
        o.lower_limit(500);
        assert_eq!(o.packet_limit(), 100, "never raised");
        o.lower_limit(17);
        assert_eq!(o.packet_limit(), 16);
        assert!(!o.fits(&small), "{} bytes", packet_size("t", 10));
    }

    #[test]
    fn a_refusal_splits_content_to_a_size_known_to_pass() {
        let o = Outbox::new();
        assert_eq!(o.part_limit(), DEFAULT_MAX_PACKET);
        o.learn_refusal(70_000, 500);
        assert_eq!(o.packet_limit(), 69_999, "only what was refused is skipped");
        assert_eq!(o.part_limit(), PART_AFTER_REFUSAL, "parts well under the refused size");
        let o = Outbox::new();
        o.learn_refusal(70_000, 40_000);
        assert_eq!(o.part_limit(), 40_000, "a size the broker took");
        let o = Outbox::new();
        o.learn_refusal(10_000, 0);
        assert_eq!(o.part_limit(), 5_000, "a small broker: half the refused size");
    }

    #[test]
    fn packet_size_matches_the_wire_format() {
        // 1 header + 1 length byte + 2 topic length + 1 topic + 2 packet id + 10 payload.
        assert_eq!(packet_size("t", 10), 17);
        // Remaining length 127 still takes one byte, 128 takes two.
        assert_eq!(packet_size("t", 122), 1 + 1 + 127);
        assert_eq!(packet_size("t", 123), 1 + 2 + 128);
    }

    #[test]
    fn held_discovery_waits_while_everything_else_goes() {
        let o = Outbox::new();
        o.hold_discovery(true);
        o.put("c".into(), "{}", true, Priority::Discovery);
        o.put("s".into(), "1", false, Priority::State);
        o.put("m".into(), "{}", true, Priority::Migrate);
        assert_eq!(o.next().unwrap().topic, "m");
        assert_eq!(o.next().unwrap().topic, "s");
        assert!(o.next().is_none());
        assert!(o.has_dirty());
        o.hold_discovery(false);
        assert_eq!(o.next().unwrap().topic, "c");
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
