//! Device-based discovery (HA 2024.11+, shared/protocols/ha-discovery.md §1.2 and §3): one
//! retained config per device on `<prefix>/device/<node>/config`, its entities under
//! `components`. It packages the per-entity configs that `discovery.rs` builds (which entities a
//! device has is decided there); this file only decides how they are sent:
//!
//! - the shared `device` and `origin` blocks go to the top level, every other key stays with
//!   its component (same `unique_id`s, same `default_entity_id`s as the per-entity form);
//! - the component id is the entity's object id (`online`, `eth0_rx_bytes`, …), prefixed with
//!   the platform only if two platforms share one;
//! - an entity that disappears is removed the way HA requires: one config with the component
//!   cut down to its platform, then left out ([`Packager`] remembers what it sent).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::discovery::EntityConfig;
use super::topics::Topics;

/// `<prefix>/device/<node>/config`.
pub fn device_topic(topics: &Topics, node: &str) -> String {
    format!("{}/device/{node}/config", topics.discovery_prefix)
}

/// The device-based config of one device's entities (all with the same `node`), or `None`
/// for an empty list. `removed` lists components (id → platform) to delete in this message.
pub fn device_config(entities: &[EntityConfig], removed: &BTreeMap<String, &'static str>) -> Option<Value> {
    let first = entities.first()?;
    let mut top = Map::new();
    for key in ["device", "origin"] {
        if let Some(v) = first.payload.get(key) {
            top.insert(key.into(), v.clone());
        }
    }
    let mut components = Map::new();
    for (id, entity) in component_ids(entities).into_iter().zip(entities) {
        let mut component = Map::new();
        component.insert("platform".into(), json!(entity.component));
        if let Value::Object(payload) = &entity.payload {
            for (k, v) in payload {
                if k != "device" && k != "origin" {
                    component.insert(k.clone(), v.clone());
                }
            }
        }
        components.insert(id, Value::Object(component));
    }
    for (id, platform) in removed {
        if !components.contains_key(id) {
            components.insert(id.clone(), json!({ "platform": platform }));
        }
    }
    top.insert("components".into(), Value::Object(components));
    Some(Value::Object(top))
}

/// Component ids in the order of `entities`: the object id, or `<platform>_<object>` where two
/// platforms share an object id.
pub fn component_ids(entities: &[EntityConfig]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in entities {
        *seen.entry(e.object.as_str()).or_default() += 1;
    }
    entities
        .iter()
        .map(|e| {
            if seen.get(e.object.as_str()).copied().unwrap_or(0) > 1 {
                format!("{}_{}", e.component, e.object)
            } else {
                e.object.clone()
            }
        })
        .collect()
}

/// Remembers which components each device config carried, so that a vanished entity is
/// removed (platform-only once) rather than left behind in HA.
#[derive(Debug, Default)]
pub struct Packager {
    sent: HashMap<String, BTreeMap<String, &'static str>>,
    /// Whether the last package deleted components: the next one, even for unchanged
    /// entities, leaves them out (see render_cache.rs).
    last_removed: bool,
}

impl Packager {
    pub fn new() -> Self {
        Self::default()
    }

    /// A device removed: what its config carried is no longer needed (should it come back, its
    /// first config deletes nothing).
    pub fn forget(&mut self, topic: &str) {
        self.sent.remove(topic);
    }

    /// Device configs remembered (tests).
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Whether the last [`Packager::package`] carried component deletions.
    pub fn last_removed(&self) -> bool {
        self.last_removed
    }

    /// The config [`Packager::package`] made last for these entities, made again without
    /// recording anything (a replay after the payload was dropped, outbox.rs). Components the
    /// last one deleted are not repeated: the next config leaves them out anyway.
    pub fn repackage(&self, topics: &Topics, entities: &[EntityConfig]) -> Option<(String, String)> {
        let node = &entities.first()?.node;
        let payload = device_config(entities, &BTreeMap::new())?;
        Some((device_topic(topics, node), payload.to_string()))
    }

    /// Topic and payload for one device's entities (all sharing one node).
    pub fn package(&mut self, topics: &Topics, entities: &[EntityConfig]) -> Option<(String, String)> {
        let node = &entities.first()?.node;
        let topic = device_topic(topics, node);
        let now: BTreeMap<String, &'static str> = component_ids(entities)
            .into_iter()
            .zip(entities.iter().map(|e| e.component))
            .collect();
        let removed: BTreeMap<String, &'static str> = self
            .sent
            .get(&topic)
            .map(|before| {
                before
                    .iter()
                    .filter(|(id, _)| !now.contains_key(*id))
                    .map(|(id, p)| (id.clone(), *p))
                    .collect()
            })
            .unwrap_or_default();
        let payload = device_config(entities, &removed)?;
        self.last_removed = !removed.is_empty();
        self.sent.insert(topic.clone(), now);
        Some((topic, payload.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MqttSettings;

    fn entity(component: &'static str, object: &str) -> EntityConfig {
        EntityConfig {
            component,
            node: "laptop".into(),
            object: object.into(),
            payload: json!({
                "name": object,
                "unique_id": format!("b2m_laptop_{object}"),
                "state_topic": "b2m/laptop",
                "device": {"identifiers": ["b2m_laptop"], "name": "Laptop"},
                "origin": {"name": "bandwidth2mqtt"},
            }),
        }
    }

    #[test]
    fn entities_become_components_with_the_shared_blocks_on_top() {
        let topics = Topics::new(&MqttSettings::default());
        let mut p = Packager::new();
        let (topic, payload) = p
            .package(
                &topics,
                &[entity("binary_sensor", "online"), entity("sensor", "rx_bytes")],
            )
            .unwrap();
        assert_eq!(topic, "homeassistant/device/laptop/config");
        let v: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["device"]["name"], "Laptop");
        assert_eq!(v["origin"]["name"], "bandwidth2mqtt");
        assert_eq!(v["components"]["online"]["platform"], "binary_sensor");
        assert_eq!(v["components"]["rx_bytes"]["unique_id"], "b2m_laptop_rx_bytes");
        assert!(v["components"]["rx_bytes"].get("device").is_none());
    }

    #[test]
    fn a_vanished_entity_is_removed_once_then_left_out() {
        let topics = Topics::new(&MqttSettings::default());
        let mut p = Packager::new();
        p.package(
            &topics,
            &[entity("binary_sensor", "online"), entity("sensor", "rx_bytes")],
        );
        assert!(!p.last_removed());
        let (_, second) = p.package(&topics, &[entity("binary_sensor", "online")]).unwrap();
        let v: Value = serde_json::from_str(&second).unwrap();
        assert_eq!(v["components"]["rx_bytes"], json!({"platform": "sensor"}));
        assert!(p.last_removed(), "the entities did not change, the next config does");
        let (_, third) = p.package(&topics, &[entity("binary_sensor", "online")]).unwrap();
        assert!(!p.last_removed());
        let v: Value = serde_json::from_str(&third).unwrap();
        assert!(v["components"].get("rx_bytes").is_none());
    }

    #[test]
    fn platforms_sharing_an_object_id_get_distinct_components() {
        let ids = component_ids(&[
            entity("binary_sensor", "wan"),
            entity("sensor", "wan"),
            entity("sensor", "ip"),
        ]);
        assert_eq!(ids, ["binary_sensor_wan", "sensor_wan", "ip"]);
    }
}
