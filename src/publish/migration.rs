//! Moving between per-entity and device-based discovery without duplicated or orphaned
//! entities (shared/protocols/ha-discovery.md §3, "Moving between the two shapes").
//!
//! At its first connection the bridge briefly subscribes to every discovery config on the
//! broker, and holds its own discovery back meanwhile ([`crate::publish::Outbox::hold_discovery`]).
//! A retained config of *this* bridge (its availability names our `bridge/state` topic) in the
//! *other* shape gets `{"migrate_discovery": true}` on its topic first (HA unloads the entities
//! and keeps their registry entries), then an empty retained payload once that went out, and
//! only then do the new configs go, with the same `unique_id`s, so HA takes the same entity ids.
//! The old topic is cleared *before* the new config, not after as HA's log line suggests: seen
//! with HA 2026.11, an empty payload on the old topic once the entity lives on the new one is
//! "a conflicting MQTT discovery message" (a warning per entity), because both shapes give an
//! entity the same discovery id. Pure logic here; the bridge feeds it the retained messages and
//! the clock.

use std::time::{Duration, Instant};

use super::topics::Topics;
use crate::config::DiscoveryMode;

pub const MIGRATE_PAYLOAD: &str = r#"{"migrate_discovery":true}"#;
/// How long the scan listens for retained configs before our discovery goes out.
pub const SCAN_FOR: Duration = Duration::from_secs(2);
/// Old topics are cleared this long after their migrate message, at the earliest (and only once
/// it went out); the new configs wait until every old topic is cleared.
pub const CLEAR_AFTER: Duration = Duration::from_secs(1);

/// The subscriptions of the scan: both discovery shapes (with a node id, as we publish them),
/// and the retained parts of `bridge/devices` an earlier run left (devices_index.rs clears
/// those a smaller household no longer needs).
pub fn scan_filters(topics: &Topics) -> [String; 3] {
    [
        format!("{}/+/+/+/config", topics.discovery_prefix),
        format!("{}/device/+/config", topics.discovery_prefix),
        format!("{}/+", topics.bridge_devices()),
    ]
}

/// Whether `topic` is a discovery config topic (what the scan subscribes to), as opposed to the
/// bridge's own request and agent topics that arrive on the same connection.
pub fn is_discovery_topic(topics: &Topics, topic: &str) -> bool {
    let config = topic.ends_with("/config")
        && topic
            .strip_prefix(topics.discovery_prefix.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
    config || super::devices_index::part_number(topics, topic).is_some()
}

/// Whether a retained `topic`/`payload` is a config of this bridge in the shape we no longer
/// use, i.e. one to migrate.
pub fn is_ours_to_migrate(topics: &Topics, mode: DiscoveryMode, topic: &str, payload: &[u8]) -> bool {
    let Some(rest) = topic.strip_prefix(&format!("{}/", topics.discovery_prefix)) else {
        return false;
    };
    let levels = rest.split('/').count();
    let device_shape = rest.starts_with("device/") && levels == 3;
    let entity_shape = !rest.starts_with("device/") && levels == 4;
    let other_shape = match mode {
        DiscoveryMode::Device => entity_shape,
        DiscoveryMode::Entity => device_shape,
    };
    if !other_shape || payload.is_empty() {
        return false;
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return false;
    };
    if text.contains("migrate_discovery") {
        return false;
    }
    let marker = format!("\"{}\"", topics.bridge_state());
    text.contains(&marker) && text.contains("\"bandwidth2mqtt\"")
}

/// Old topics that were told to migrate and still need clearing.
#[derive(Debug, Default)]
pub struct Migration {
    pending: Vec<(String, Instant)>,
    pub migrated: usize,
}

impl Migration {
    pub fn new() -> Self {
        Self::default()
    }

    /// `topic` was sent its migrate message at `now`.
    pub fn started(&mut self, topic: String, now: Instant) {
        if !self.pending.iter().any(|(t, _)| *t == topic) {
            self.pending.push((topic, now + CLEAR_AFTER));
            self.migrated += 1;
        }
    }

    /// `topic` is due but its migrate message has not gone out yet: asked again at `now`.
    pub fn not_yet(&mut self, topic: String, now: Instant) {
        self.pending.push((topic, now));
    }

    /// Topics whose clearing is due.
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(_, at)| *at <= now);
        self.pending = later;
        due.into_iter().map(|(t, _)| t).collect()
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MqttSettings;

    fn topics() -> Topics {
        Topics::new(&MqttSettings::default())
    }

    const OURS: &str =
        r#"{"availability":[{"topic":"bandwidth2mqtt/bridge/state"}],"origin":{"name":"bandwidth2mqtt"}}"#;

    #[test]
    fn only_our_configs_in_the_other_shape_migrate() {
        let t = topics();
        let entity = "homeassistant/sensor/laptop/rx_bytes/config";
        let device = "homeassistant/device/laptop/config";
        assert!(is_ours_to_migrate(&t, DiscoveryMode::Device, entity, OURS.as_bytes()));
        assert!(!is_ours_to_migrate(&t, DiscoveryMode::Device, device, OURS.as_bytes()));
        assert!(is_ours_to_migrate(&t, DiscoveryMode::Entity, device, OURS.as_bytes()));
        assert!(!is_ours_to_migrate(&t, DiscoveryMode::Entity, entity, OURS.as_bytes()));
        let other_bridge = OURS.replace("bandwidth2mqtt/bridge", "other/bridge");
        assert!(!is_ours_to_migrate(
            &t,
            DiscoveryMode::Device,
            entity,
            other_bridge.as_bytes()
        ));
        assert!(!is_ours_to_migrate(&t, DiscoveryMode::Device, entity, b""));
        assert!(!is_ours_to_migrate(
            &t,
            DiscoveryMode::Device,
            entity,
            MIGRATE_PAYLOAD.as_bytes()
        ));
        assert!(!is_ours_to_migrate(
            &t,
            DiscoveryMode::Device,
            "zigbee2mqtt/x/config",
            OURS.as_bytes()
        ));
    }

    #[test]
    fn old_topics_are_cleared_once_after_the_delay() {
        let mut m = Migration::new();
        let t0 = Instant::now();
        m.started("a".into(), t0);
        m.started("a".into(), t0);
        m.started("b".into(), t0 + Duration::from_secs(5));
        assert!(m.due(t0 + CLEAR_AFTER / 2).is_empty());
        assert_eq!(m.due(t0 + CLEAR_AFTER), ["a"]);
        // A topic whose migrate message has not gone out yet comes back, not counted twice.
        let later = t0 + Duration::from_secs(5) + CLEAR_AFTER;
        assert_eq!(m.due(later), ["b"]);
        m.not_yet("b".into(), later);
        assert!(!m.is_idle());
        assert_eq!(m.due(later), ["b"]);
        assert!(m.is_idle());
        assert_eq!(m.migrated, 2);
    }
}
