//! The link port: what the bridge needs from an MQTT connection, and nothing of how it is made.
//!
//! The bridge takes its link as a part, beside config, sources and clock ([`Connector`] in
//! `bridge::Parts`): rumqttc over TCP/TLS in production (link_rumqttc.rs), an in-memory broker
//! in tests (link_memory.rs) that records what was published and lets a test deliver what a
//! broker would (HA's birth, requests, retained configs, agent messages, a disconnect, a
//! refused packet). Everything above the port — the outbox drain, reconnect pacing, the packet
//! limit learnt from refusals, the discovery scan, and the per-topic limits, rate limit and
//! bounded queues of intake.rs — is the same code whichever link is used (connection.rs).
//!
//! The contract both implementations honour:
//! - [`LinkEvent::Message`] never carries a payload over the `max_incoming` the link was made
//!   with: a larger PUBLISH arrives as [`LinkEvent::Oversized`], unread, and never takes the
//!   link down (connection.rs also checks, so a link that broke this would still be bounded).
//! - Subscriptions do not survive a reconnect (a clean session): the bridge subscribes again
//!   after every [`LinkEvent::Connected`].
//! - After [`LinkEvent::Disconnected`] the next [`LinkEvents::next`] tries to connect again;
//!   the bridge paces the attempts (link_health.rs).
//! - The will (`offline`, retained, on the bridge's state topic) is set when connecting.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::connection::MqttSetupError;
use crate::config::{MqttSettings, MqttUrl};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The two delivery guarantees the bridge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
}

/// What the broker tells the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The broker accepted the connection (CONNACK). `max_packet`: the largest packet the
    /// broker takes, when it says so (MQTT 5's Maximum Packet Size; never in 3.1.1).
    Connected {
        max_packet: Option<usize>,
        /// `5` or `3.1.1`, for the log.
        protocol: &'static str,
    },
    /// The connection was lost or could not be made. `by_broker`: the broker closed it (the only
    /// way MQTT 3.1.1 refuses an oversized packet of ours); otherwise it proves nothing about
    /// what we sent.
    Disconnected { by_broker: bool, error: String },
    /// Our DISCONNECT went out: the link is closed for good.
    Closed,
    /// A PUBLISH from the broker, at most `max_incoming` bytes of payload.
    Message {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
    /// A PUBLISH larger than `max_incoming`, never read: its topic (maybe cut) and packet size.
    Oversized { topic: String, size: usize },
    /// One of our publishes was written to the link.
    Wrote,
    /// The broker acknowledged the oldest of our outstanding QoS 1 publishes.
    Acked,
    /// The broker refused the oldest of our outstanding QoS 1 publishes (an MQTT 5 PUBACK with
    /// an error reason code; 3.1.1 can only disconnect).
    Refused { reason: String },
}

/// Why the link could not take a request now.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// The sending half; cheap to share between the outbox drain and the bridge.
pub trait LinkClient: Send + Sync {
    /// Queues a publish, waiting while the link's own queue is full.
    fn publish(&self, topic: String, payload: Vec<u8>, qos: Qos, retain: bool) -> BoxFuture<'_, Result<(), LinkError>>;
    /// Queues a publish if there is room now.
    fn try_publish(&self, topic: String, payload: Vec<u8>, qos: Qos, retain: bool) -> Result<(), LinkError>;
    fn subscribe(&self, filter: String) -> Result<(), LinkError>;
    fn unsubscribe(&self, filter: String) -> Result<(), LinkError>;
    /// A clean DISCONNECT (the will is not sent); [`LinkEvent::Closed`] follows.
    fn disconnect(&self) -> Result<(), LinkError>;
}

/// The receiving half, read by one task.
pub trait LinkEvents: Send {
    /// The next event. After [`LinkEvent::Disconnected`], the next call connects again.
    fn next(&mut self) -> BoxFuture<'_, LinkEvent>;
    /// Forgets what the lost session had in flight (the outbox republishes everything anyway).
    fn reset_session(&mut self);
}

/// What a link is made with.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub settings: MqttSettings,
    pub url: MqttUrl,
    /// The will: `offline`, retained, QoS 1 on this topic.
    pub will_topic: String,
    /// The largest payload handed over as a [`LinkEvent::Message`].
    pub max_incoming: usize,
    /// The largest packet we write (a backstop: the outbox skips larger ones first).
    pub max_outgoing: usize,
}

pub type Link = (Arc<dyn LinkClient>, Box<dyn LinkEvents>);

/// Makes the bridge's link: a part of the bridge (`bridge::Parts::link`).
pub trait Connector: Send + Sync {
    /// Starts connecting in the background (the first [`LinkEvents::next`] connects).
    fn connect(&self, options: &LinkOptions) -> Result<Link, MqttSetupError>;
}

/// Whether `topic` matches the subscription `filter` (MQTT 3.1.1 §4.7: `+` one level, `#` the
/// rest; `$` topics only by filters that start with `$`).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') != filter.starts_with('$') {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            exact => {
                if topic_levels.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn filters_match_as_mqtt_says() {
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(matches("homeassistant/status", "homeassistant/status"));
        assert!(!matches("#", "$SYS/x"));
    }
}
