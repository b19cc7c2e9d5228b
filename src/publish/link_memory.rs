//! The in-memory link (tests): a broker of one client, the bridge, behind the link port
//! (link.rs). It records what the bridge published (topic, payload, retain, QoS, in order),
//! keeps retained messages as a broker does, and lets a test be everyone else on the broker:
//! Home Assistant's birth, bridge requests, retained configs for the discovery scan, agent
//! messages, a dropped connection, a broker restart that lost its retained messages, a broker
//! that refuses packets over a size. It honours the port's contract: a message over the link's
//! `max_incoming` reaches the bridge as [`LinkEvent::Oversized`], never whole.
//!
//! Made for tokio's paused time: nothing here sleeps, and waiting for a message
//! ([`MemoryBroker::wait_for`]) lets the bridge's timers run.

use std::collections::{BTreeMap, VecDeque};

#[path = "link_memory_wait.rs"]
mod wait;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::connection::MqttSetupError;
use super::link::{
    BoxFuture, Connector, Link, LinkClient, LinkError, LinkEvent, LinkEvents, LinkOptions, Qos, matches,
};
use super::outbox::packet_size;

/// How long (on tokio's clock, paused in tests) [`MemoryBroker::wait_for`] waits unless told
/// otherwise ([`MemoryBroker::waiting`]).
pub const WAIT: Duration = Duration::from_secs(3600);

/// One message the bridge published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its place among everything the bridge published (0, 1, …).
    pub seq: usize,
    pub topic: String,
    pub payload: String,
    pub retain: bool,
    pub qos: Qos,
}

impl Published {
    /// The payload as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    /// The broker accepts connections.
    down: bool,
    connected: bool,
    /// The broker refused a packet and closes the link: what the bridge writes meanwhile is
    /// lost, as on a socket the broker is about to reset.
    closing: bool,
    /// The bridge sent DISCONNECT: the link is over.
    closed: bool,
    connects: u32,
    /// Connection attempts, refused ones included.
    attempts: u32,
    subscriptions: Vec<String>,
    retained: BTreeMap<String, String>,
    /// Events for the bridge, in the order the broker produced them.
    queue: VecDeque<LinkEvent>,
    log: Vec<Published>,
    refuse_over: Option<usize>,
    /// Packets of ours the broker refused (topic, packet size), in order.
    refused: Vec<(String, usize)>,
    max_incoming: usize,
    /// Hands over messages over `max_incoming` whole ([`MemoryBroker::unbounded`]).
    unbounded: bool,
    wait: Duration,
    will_topic: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the bridge's event task (one consumer: `notify_one` keeps a permit).
    events: Notify,
    /// Bumped on every change a test may wait for.
    changed: watch::Sender<u64>,
}

/// The broker and the test's handle on it; give [`MemoryBroker::connector`] to the bridge.
#[derive(Clone)]
pub struct MemoryBroker(Arc<Shared>);

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self(Arc::new(Shared {
            state: Mutex::new(State {
                max_incoming: usize::MAX,
                wait: WAIT,
                ..State::default()
            }),
            events: Notify::new(),
            changed: watch::Sender::new(0),
        }))
    }

    /// A link that breaks the port's contract: every message handed over whole, however large
    /// (to show that the bridge's side bounds it all the same).
    pub fn unbounded(self) -> Self {
        self.lock().unbounded = true;
        self
    }

    /// Waits of [`MemoryBroker::wait_for`] give up after `wait` (a test on real time).
    pub fn waiting(self, wait: Duration) -> Self {
        self.lock().wait = wait;
        self
    }

    /// The link part for `bridge::Parts::with_link`.
    pub fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.0)
    }

    fn poke(&self) {
        poke(&self.0);
    }

    /// Someone else publishes (Home Assistant, a stranger, an agent): kept if retained (an
    /// empty retained payload clears), and delivered to the bridge if it subscribed.
    pub fn deliver(&self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        let payload = payload.into();
        let mut s = self.lock();
        if retain {
            if payload.is_empty() {
                s.retained.remove(topic);
            } else {
                s.retained
                    .insert(topic.to_owned(), String::from_utf8_lossy(&payload).into_owned());
            }
        }
        if s.connected && s.subscriptions.iter().any(|f| matches(f, topic)) {
            let event = incoming(&s, topic, payload, false);
            s.queue.push_back(event);
        }
        drop(s);
        self.poke();
    }

    /// Home Assistant's birth message.
    pub fn ha_birth(&self) {
        self.deliver("homeassistant/status", "online", false);
    }

    /// The broker closes the bridge's connection (a network blip, a broker restart); the will
    /// is published. The bridge reconnects when it wants to.
    pub fn drop_connection(&self) {
        let mut s = self.lock();
        drop_link(&mut s, "connection reset by the broker");
        drop(s);
        self.poke();
    }

    /// The broker restarts; without persistence it lost every retained message.
    pub fn restart(&self, keep_retained: bool) {
        let mut s = self.lock();
        drop_link(&mut s, "connection reset by the broker");
        if !keep_retained {
            s.retained.clear();
        }
        drop(s);
        self.poke();
    }

    /// The broker stops (`false`: connections refused until it runs again) or starts.
    pub fn set_running(&self, running: bool) {
        let mut s = self.lock();
        s.down = !running;
        if !running {
            drop_link(&mut s, "connection reset by the broker");
        }
        drop(s);
        self.poke();
    }

    /// The broker closes the connection on any packet of ours larger than `limit` (mosquitto's
    /// `max_packet_size` under MQTT 3.1.1), without taking it.
    pub fn refuse_packets_over(&self, limit: Option<usize>) {
        self.lock().refuse_over = limit;
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // Each change is a few pushes under the lock: a poisoned lock is still consistent.
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

fn poke(shared: &Shared) {
    shared.events.notify_one();
    shared.changed.send_modify(|n| *n += 1);
}

/// What the bridge receives for a message of `payload` on `topic` (the port's contract).
fn incoming(s: &State, topic: &str, payload: Vec<u8>, retain: bool) -> LinkEvent {
    if payload.len() > s.max_incoming && !s.unbounded {
        LinkEvent::Oversized {
            topic: topic.to_owned(),
            size: packet_size(topic, payload.len()),
        }
    } else {
        LinkEvent::Message {
            topic: topic.to_owned(),
            payload,
            retain,
        }
    }
}

/// The broker ends the connection: the will goes out, the session is gone.
fn drop_link(s: &mut State, why: &str) {
    s.closing = false;
    if !s.connected {
        return;
    }
    s.connected = false;
    s.subscriptions.clear();
    if let Some(topic) = s.will_topic.clone() {
        s.retained.insert(topic, "offline".into());
    }
    s.queue.push_back(LinkEvent::Disconnected {
        by_broker: true,
        error: why.to_owned(),
    });
}

impl Connector for MemoryBroker {
    fn connect(&self, options: &LinkOptions) -> Result<Link, MqttSetupError> {
        let mut s = self.lock();
        s.max_incoming = options.max_incoming;
        s.will_topic = Some(options.will_topic.clone());
        s.closed = false;
        drop(s);
        Ok((
            Arc::new(MemoryClient(self.0.clone())),
            Box::new(MemoryEvents(self.0.clone())),
        ))
    }
}

struct MemoryClient(Arc<Shared>);

impl MemoryClient {
    fn publish_now(&self, topic: String, payload: Vec<u8>, qos: Qos, retain: bool) -> Result<(), LinkError> {
        let mut s = lock(&self.0);
        if !s.connected {
            return Err(LinkError("not connected".into()));
        }
        let size = packet_size(&topic, payload.len());
        s.queue.push_back(LinkEvent::Wrote);
        if s.closing {
            // Written behind the refused packet; the broker reads no further.
        } else if s.refuse_over.is_some_and(|limit| size > limit) {
            // The reset reaches the bridge once it has written what it had queued (the
            // client pipelines its writes), not at once (MemoryEvents::next).
            s.refused.push((topic, size));
            s.closing = true;
        } else {
            let payload = String::from_utf8_lossy(&payload).into_owned();
            if retain {
                if payload.is_empty() {
                    s.retained.remove(&topic);
                } else {
                    s.retained.insert(topic.clone(), payload.clone());
                }
            }
            if qos == Qos::AtLeastOnce {
                s.queue.push_back(LinkEvent::Acked);
            }
            // A broker delivers our own messages to our own subscriptions too.
            if s.subscriptions.iter().any(|f| matches(f, &topic)) {
                let event = incoming(&s, &topic, payload.clone().into_bytes(), false);
                s.queue.push_back(event);
            }
            let seq = s.log.len();
            s.log.push(Published {
                seq,
                topic,
                payload,
                retain,
                qos,
            });
        }
        drop(s);
        poke(&self.0);
        Ok(())
    }
}

impl LinkClient for MemoryClient {
    fn publish(&self, topic: String, payload: Vec<u8>, qos: Qos, retain: bool) -> BoxFuture<'_, Result<(), LinkError>> {
        let result = self.publish_now(topic, payload, qos, retain);
        Box::pin(async move { result })
    }

    fn try_publish(&self, topic: String, payload: Vec<u8>, qos: Qos, retain: bool) -> Result<(), LinkError> {
        self.publish_now(topic, payload, qos, retain)
    }

    fn subscribe(&self, filter: String) -> Result<(), LinkError> {
        let mut s = lock(&self.0);
        if !s.connected {
            return Err(LinkError("not connected".into()));
        }
        let retained: Vec<(String, String)> = s
            .retained
            .iter()
            .filter(|(topic, _)| matches(&filter, topic))
            .map(|(t, p)| (t.clone(), p.clone()))
            .collect();
        for (topic, payload) in retained {
            let event = incoming(&s, &topic, payload.into_bytes(), true);
            s.queue.push_back(event);
        }
        s.subscriptions.push(filter);
        drop(s);
        poke(&self.0);
        Ok(())
    }

    fn unsubscribe(&self, filter: String) -> Result<(), LinkError> {
        lock(&self.0).subscriptions.retain(|f| *f != filter);
        Ok(())
    }

    fn disconnect(&self) -> Result<(), LinkError> {
        let mut s = lock(&self.0);
        s.connected = false;
        s.closed = true;
        s.subscriptions.clear();
        s.queue.push_back(LinkEvent::Closed);
        drop(s);
        poke(&self.0);
        Ok(())
    }
}

struct MemoryEvents(Arc<Shared>);

impl LinkEvents for MemoryEvents {
    fn next(&mut self) -> BoxFuture<'_, LinkEvent> {
        Box::pin(async move {
            loop {
                {
                    let mut s = lock(&self.0);
                    if let Some(event) = s.queue.pop_front() {
                        return event;
                    }
                    if std::mem::take(&mut s.closing) {
                        drop_link(&mut s, "connection reset by the broker (packet too large)");
                        continue;
                    }
                    if !s.connected && !s.closed {
                        s.attempts += 1;
                        if s.down {
                            return LinkEvent::Disconnected {
                                by_broker: false,
                                error: "connection refused".into(),
                            };
                        }
                        s.connected = true;
                        s.connects += 1;
                        drop(s);
                        poke(&self.0);
                        return LinkEvent::Connected {
                            max_packet: None,
                            protocol: "memory",
                        };
                    }
                }
                self.0.events.notified().await;
            }
        })
    }

    fn reset_session(&mut self) {}
}
