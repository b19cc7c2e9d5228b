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
//! Sent discovery configs are not kept (once [`Outbox::forget_sent_discovery`] is on): a Deco
//! client's device config is ~7 kB, so 5 000 clients would hold ~35 MB of copies that are only
//! read again on a reconnect. Only a print (hash and length) stays, enough to tell whether a
//! new rendering changed anything. When a replay reaches such a topic the outbox asks the core
//! to render it again ([`Outbox::wanted`], [`Outbox::restore`]), a batch at a time, and holds
//! the replay at that point until it has the payload, so the order (discovery before states)
//! stays what it was. HA's birth does not need them: it only asks for states (run.rs).
//!
//! The outbox also knows the packet limit (configured, lowered when the broker is seen refusing
//! a size) and which topics were too big to send, so every such message is logged once and
//! skipped instead of tearing the connection down.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::messages::MessageQueue;

/// Order in which dirty topics are sent: HA needs the discovery config of an entity before its
/// state makes sense, and the bridge's `online` goes last. An entity HA has from an older
/// version (its value rendered by the old `value_template`) must get its new config and a state
/// rendered by the new template while still unavailable: HA writes an entity's last value again
/// when its config changes or it becomes available, and the old value in a new unit (bytes read
/// as GiB) is a spike its long-term statistics keep for ever (seen with HA 2026.11, issue 16 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Availability,
    /// `migrate_discovery` on an old discovery topic: before the new config (migration.rs).
    Migrate,
    Discovery,
    BridgeMeta,
    State,
    /// `bridge/state` = `online`: the last of a batch (see above).
    BridgeState,
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

/// What a sent payload was, without its bytes: equal prints mean an unchanged payload (a 64-bit
/// hash plus the length; a collision would need two configs of one length and one hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Print {
    hash: u64,
    len: usize,
}

impl Print {
    fn of(payload: &str) -> Self {
        let mut h = DefaultHasher::new();
        payload.hash(&mut h);
        Self {
            hash: h.finish(),
            len: payload.len(),
        }
    }
}

#[derive(Debug, Clone)]
enum Body {
    Held(Arc<str>),
    /// Sent and dropped; the core renders it again when a replay needs it.
    Sent(Print),
}

impl Body {
    fn is(&self, payload: &str) -> bool {
        match self {
            Body::Held(held) => &**held == payload,
            Body::Sent(print) => *print == Print::of(payload),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    body: Body,
    retain: bool,
    priority: Priority,
}

/// How many dropped payloads one request asks the core for: the replay's own pace
/// (connection.rs sends 200 per 50 ms), so at most a batch is held again at any time.
const RENDER_BATCH: usize = 200;

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<String, Entry>,
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
    /// Drop retained discovery payloads once sent (the core can render them again).
    forget_sent: bool,
    /// Dropped payloads a replay needs, not yet handed to the core.
    wanted: BTreeSet<String>,
    /// Asked of the core and not answered yet: the replay waits for them.
    asked: BTreeSet<String>,
}

/// The first key of `set`; while discovery is held, only what goes before it (the states and
/// `online` wait behind the configs, see [`Priority`]).
fn first_key(set: &BTreeSet<(Priority, String)>, hold_discovery: bool) -> Option<(Priority, String)> {
    if !hold_discovery {
        return set.first().cloned();
    }
    set.range(..(Priority::Discovery, String::new())).next().cloned()
}

#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Wakes the core when a replay wants payloads rendered again.
    wants: Notify,
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
            wants: Notify::new(),
            limit: AtomicUsize::new(limit),
            part: AtomicUsize::new(usize::MAX),
        }
    }

    /// The largest packet (bytes) that may go to the broker now.
    pub fn packet_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Gives up what was learnt from refusals: `limit` again, split content unlimited by it.
    pub fn restore_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        self.part.store(usize::MAX, Ordering::Relaxed);
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

    /// Whether a message fits the packet limit. One that does not is logged once per topic
    /// (until it fits again) and must be skipped; a topic that fits again after being refused is logged too.
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
        // Once per topic: a message that grows on every poll (a long list) is not news each time.
        if inner.refused.insert(message.topic.clone(), size).is_none() {
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
            && existing.body.is(&payload)
            && existing.retain == retain
        {
            return false;
        }
        inner.replay.remove(&(priority, topic.clone()));
        inner.dirty.insert((priority, topic.clone()));
        inner.entries.insert(
            topic,
            Entry {
                body: Body::Held(payload),
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

    fn mark_where(&self, pick: impl Fn(&Entry) -> bool) {
        let mut inner = self.lock();
        let Inner {
            entries, dirty, replay, ..
        } = &mut *inner;
        for (topic, m) in entries.iter().filter(|(_, m)| pick(m)) {
            let key = (m.priority, topic.clone());
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
        self.next_of(Queue::Fresh)
    }

    /// Takes the most urgent message that is due for republishing. `None` also while the
    /// next one waits for the core to render it again (the replay keeps its order).
    pub fn next_replay(&self) -> Option<Message> {
        self.next_of(Queue::Replay)
    }

    fn next_of(&self, queue: Queue) -> Option<Message> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        loop {
            let set = match queue {
                Queue::Fresh => &inner.dirty,
                Queue::Replay => &inner.replay,
            };
            let key = first_key(set, inner.hold_discovery)?;
            if matches!(
                inner.entries.get(&key.1),
                Some(Entry {
                    body: Body::Sent(_),
                    ..
                })
            ) {
                // Only a print is left: ask the core for this one and the next few.
                if inner.asked.contains(&key.1) || inner.wanted.contains(&key.1) {
                    return None;
                }
                let batch: Vec<String> = inner
                    .replay
                    .iter()
                    .chain(inner.dirty.iter())
                    .filter(|(_, t)| {
                        matches!(
                            inner.entries.get(t),
                            Some(Entry {
                                body: Body::Sent(_),
                                ..
                            })
                        ) && !inner.asked.contains(t)
                    })
                    .map(|(_, t)| t.clone())
                    .take(RENDER_BATCH)
                    .collect();
                inner.wanted.extend(batch);
                inner.wanted.insert(key.1);
                drop(guard);
                self.wants.notify_one();
                return None;
            }
            match queue {
                Queue::Fresh => inner.dirty.remove(&key),
                Queue::Replay => inner.replay.remove(&key),
            };
            if let Some(message) = take(inner, &key.1) {
                return Some(message);
            }
        }
    }

    /// Turns dropping sent discovery payloads on (the run loop, which answers [`Outbox::wanted`]).
    pub fn forget_sent_discovery(&self) {
        self.lock().forget_sent = true;
    }

    /// Topics whose payload a replay needs rendered again; each must be answered with
    /// [`Outbox::restore`]. Resolves when there are some.
    pub async fn wanted(&self) -> Vec<String> {
        loop {
            let topics = self.take_wanted();
            if !topics.is_empty() {
                return topics;
            }
            self.wants.notified().await;
        }
    }

    /// [`Outbox::wanted`] without waiting (empty when nothing is wanted).
    pub fn take_wanted(&self) -> Vec<String> {
        let mut inner = self.lock();
        let topics = std::mem::take(&mut inner.wanted);
        inner.asked.extend(topics.iter().cloned());
        topics.into_iter().collect()
    }

    /// The core's answer for a wanted topic: its payload rendered again, or `None` when it has
    /// none (then the topic leaves the replay). A payload that differs from what was sent (the
    /// device changed and its new config was put meanwhile, or the last config deleted
    /// components, which a later one leaves out) is what goes out: it is what the topic says now.
    pub fn restore(&self, topic: &str, payload: Option<String>) {
        let mut inner = self.lock();
        inner.asked.remove(topic);
        let Some(entry) = inner.entries.get_mut(topic) else {
            return;
        };
        let Body::Sent(print) = entry.body else {
            // A fresh payload was put meanwhile; it goes out instead.
            return;
        };
        let key = (entry.priority, topic.to_owned());
        if !inner.replay.contains(&key) && !inner.dirty.contains(&key) {
            // Went out meanwhile (a fresh change of it was sent): nothing to hold it for.
            return;
        }
        let Some(entry) = inner.entries.get_mut(topic) else {
            return;
        };
        match payload {
            Some(payload) => {
                if print != Print::of(&payload) {
                    tracing::debug!(
                        topic,
                        "Rendered again for a replay, the config differs from the one sent; sending the current one."
                    );
                }
                entry.body = Body::Held(payload.into());
            }
            None => {
                tracing::warn!(
                    topic,
                    "Nothing renders this sent config any more; it is not republished."
                );
                inner.replay.remove(&key);
                inner.dirty.remove(&key);
            }
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Changed first, then the replay; what `once` and tests use when pacing does not matter.
    pub fn next_any(&self) -> Option<Message> {
        self.next().or_else(|| self.next_replay())
    }

    /// Puts a message back when sending failed, unless a newer payload arrived meanwhile.
    pub fn retry(&self, message: Message) {
        let mut inner = self.lock();
        let Message {
            topic,
            payload,
            retain,
            priority,
        } = message;
        match inner.entries.get_mut(&topic) {
            // Dropped when taken: the payload comes back, the failed send is still the latest.
            Some(entry) if matches!(entry.body, Body::Sent(print) if print == Print::of(&payload)) => {
                entry.body = Body::Held(payload);
            }
            Some(_) => {}
            None => {
                inner.entries.insert(
                    topic.clone(),
                    Entry {
                        body: Body::Held(payload),
                        retain,
                        priority,
                    },
                );
            }
        }
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

    /// Every current message, most urgent first (for `once --dry-run`, where nothing was sent;
    /// payloads dropped after sending are left out).
    pub fn snapshot(&self) -> Vec<Message> {
        let inner = self.lock();
        let mut all: Vec<_> = inner
            .entries
            .iter()
            .filter_map(|(topic, e)| match &e.body {
                Body::Held(payload) => Some(Message {
                    topic: topic.clone(),
                    payload: payload.clone(),
                    retain: e.retain,
                    priority: e.priority,
                }),
                Body::Sent(_) => None,
            })
            .collect();
        all.sort_by(|a, b| (a.priority, &a.topic).cmp(&(b.priority, &b.topic)));
        all
    }

    /// Resolves when something may have become dirty.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[derive(Clone, Copy)]
enum Queue {
    Fresh,
    Replay,
}

/// The current message of `topic` (held, see `next_of`); a sent deletion has done its job and
/// is forgotten, so that it is not repeated forever; a sent discovery config leaves its print.
fn take(inner: &mut Inner, topic: &str) -> Option<Message> {
    let entry = inner.entries.get_mut(topic)?;
    let Body::Held(payload) = &entry.body else {
        return None;
    };
    let message = Message {
        topic: topic.to_owned(),
        payload: payload.clone(),
        retain: entry.retain,
        priority: entry.priority,
    };
    if message.payload.is_empty() {
        inner.entries.remove(topic);
        inner.replay.retain(|(_, t)| t != topic);
    } else if inner.forget_sent && entry.retain && entry.priority == Priority::Discovery {
        entry.body = Body::Sent(Print::of(&message.payload));
    }
    Some(message)
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
