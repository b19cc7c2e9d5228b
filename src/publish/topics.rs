//! Every MQTT topic the bridge uses, in one place (the table in shared/design.md).

use crate::config::MqttSettings;
use crate::model::DeviceId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub base: String,
    pub discovery_prefix: String,
    pub ha_status: String,
}

impl Topics {
    pub fn new(mqtt: &MqttSettings) -> Self {
        Self {
            base: mqtt.base_topic.clone(),
            discovery_prefix: mqtt.discovery_prefix.clone(),
            ha_status: mqtt.ha_status_topic(),
        }
    }

    /// `online`/`offline`, retained; also the last will.
    pub fn bridge_state(&self) -> String {
        format!("{}/bridge/state", self.base)
    }

    pub fn bridge_info(&self) -> String {
        format!("{}/bridge/info", self.base)
    }

    pub fn bridge_devices(&self) -> String {
        format!("{}/bridge/devices", self.base)
    }

    /// `device_joined` / `device_left` / `device_removed`, not retained.
    pub fn bridge_event(&self) -> String {
        format!("{}/bridge/event", self.base)
    }

    /// Subscription for commands: `<base>/bridge/request/<command>`.
    pub fn bridge_requests(&self) -> String {
        format!("{}/bridge/request/#", self.base)
    }

    /// Subscription for agents on other machines: `<base>/agent/<name>/counters`.
    pub fn agent_counters(&self) -> String {
        format!("{}/agent/+/counters", self.base)
    }

    /// `online` while the source answers, `offline` while it fails.
    pub fn source_availability(&self, source: &str) -> String {
        format!("{}/bridge/source/{source}", self.base)
    }

    pub fn device_state(&self, id: &DeviceId) -> String {
        format!("{}/{id}", self.base)
    }

    /// `<prefix>/<component>/<node>/<object>/config`; node and object are already topic-safe.
    /// A client tracker's attributes, apart from its state so that they are written (and land
    /// in HA's recorder) only when they change, not on every poll.
    pub fn device_attributes(&self, id: &DeviceId) -> String {
        format!("{}/attributes", self.device_state(id))
    }

    pub fn discovery(&self, component: &str, node: &str, object: &str) -> String {
        format!("{}/{component}/{node}/{object}/config", self.discovery_prefix)
    }

    /// HA identifier of a device, and the node id of its discovery topics for the bridge.
    pub fn bridge_node(&self) -> String {
        format!("{}_bridge", self.base_slug())
    }

    /// The base topic as an id fragment (`unique_id`s, device identifiers).
    pub fn base_slug(&self) -> String {
        self.base
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect()
    }
}
