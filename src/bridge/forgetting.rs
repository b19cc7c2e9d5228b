//! Removing a device from Home Assistant and the state file: on the `device/remove` command,
//! and on its own when the household says so (unseen for `forget_after`, or kept out by the
//! include/exclude/random-MAC rules). HA forgets a device whose retained discovery configs are
//! emptied; its retained state and tracker attributes are cleared too, and `bridge/event`
//! says `device_removed`.

use serde_json::Value;

use super::Core;
use crate::config::DiscoveryMode;
use crate::model::DeviceId;
use crate::publish::Priority;

/// Entities a device restored from the state file may have had in HA (per-entity discovery
/// only; the device-based form has one topic per device).
const USUAL_ENTITIES: [(&str, &str); 14] = [
    ("binary_sensor", "online"),
    ("device_tracker", "presence"),
    ("sensor", "rx_bytes"),
    ("sensor", "tx_bytes"),
    ("sensor", "rx_bps"),
    ("sensor", "tx_bps"),
    ("sensor", "rx_today"),
    ("sensor", "tx_today"),
    ("sensor", "rx_month"),
    ("sensor", "tx_month"),
    ("sensor", "quota_remaining"),
    ("binary_sensor", "over_quota"),
    ("sensor", "ip"),
    ("sensor", "connection"),
];

impl Core {
    /// Clears everything HA holds of `id` and forgets it; returns the `device_removed` event.
    pub(super) fn drop_device(&mut self, id: &DeviceId, now_ms: i64) -> Value {
        let event = match self.household.device(id) {
            Some(device) => {
                let entities = self.context().device_entities(device);
                self.clear_discovery(&entities);
                self.events.removed(device)
            }
            None => {
                self.clear_unseen(id);
                self.events.removed_id(id)
            }
        };
        self.unpublish(id);
        self.household.remove(id, now_ms);
        event
    }

    /// Clears a device's retained state and tracker attributes and forgets what was rendered
    /// and exported for it (its discovery configs are the caller's: they differ by case).
    pub(super) fn unpublish(&mut self, id: &DeviceId) {
        self.outbox.clear(self.topics.device_state(id), Priority::State);
        self.outbox.clear(self.topics.device_attributes(id), Priority::State);
        self.renders.forget(id);
        let config = crate::publish::device_discovery::device_topic(&self.topics, id.as_str());
        self.packager.forget(&config);
        if let Some(hub) = &self.metrics {
            hub.remove_device(id.as_str());
        }
    }

    /// A device known only from the state file: its configs as this bridge would have sent them.
    fn clear_unseen(&self, id: &DeviceId) {
        match self.discovery_mode {
            DiscoveryMode::Device => {
                let topic = crate::publish::device_discovery::device_topic(&self.topics, id.as_str());
                self.outbox.clear(topic, Priority::Discovery);
            }
            DiscoveryMode::Entity => {
                for (component, key) in USUAL_ENTITIES {
                    let topic = self.topics.discovery(component, id.as_str(), key);
                    self.outbox.clear(topic, Priority::Discovery);
                }
            }
        }
    }

    /// Removes what the household says is due (the bridge's period tick calls this).
    pub(super) fn forget_due(&mut self, now_ms: i64) {
        if let Some(group) = self.household.forget_members(now_ms) {
            self.render_device(&group);
            self.save();
        }
        let due = self.household.forget_due(now_ms);
        if due.is_empty() {
            return;
        }
        for id in &due {
            tracing::info!(device = %id, "Device removed: unseen for forget_after, or excluded by [bridge] include/exclude/random_macs.");
            let event = self.drop_device(id, now_ms);
            self.messages.push((self.topics.bridge_event(), event.to_string()));
        }
        self.save();
        if self.persist
            && let Err(e) = super::commands::save_names(&self.household, &self.config.settings.bridge.state_dir)
        {
            tracing::warn!(error = %e, "Cannot save device names after removing devices.");
        }
        self.render_bridge();
    }
}

#[cfg(test)]
#[path = "forgetting_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "churn_tests.rs"]
mod churn_tests;

#[cfg(test)]
#[path = "churn_measure.rs"]
mod churn_measure;
