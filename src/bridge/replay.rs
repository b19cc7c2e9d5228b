//! Discovery configs rendered again for a replay: the outbox drops sent discovery payloads and
//! keeps a print (outbox.rs); when a reconnect replays them it asks for the topics here, a batch
//! at a time, and waits for the answer before going on, so nothing is reordered.

use std::collections::HashMap;

use super::Core;
use crate::config::DiscoveryMode;
use crate::model::DeviceId;
use crate::publish::EntityConfig;

impl Core {
    /// Renders the wanted discovery topics again and hands them back to the outbox; a topic
    /// nothing renders any more is answered with `None`.
    pub(super) fn render_again(&mut self, wanted: Vec<String>) {
        let mut rendered: HashMap<String, String> = HashMap::new();
        let mut nodes_done: Vec<String> = Vec::new();
        for topic in &wanted {
            let Some(node) = node_of(&self.topics.discovery_prefix, topic) else {
                continue;
            };
            if nodes_done.iter().any(|n| n == node) {
                continue;
            }
            nodes_done.push(node.to_owned());
            for (t, payload) in self.discovery_of(node) {
                rendered.insert(t, payload);
            }
        }
        for topic in wanted {
            let payload = rendered.remove(&topic);
            self.outbox.restore(&topic, payload);
        }
    }

    /// Every discovery topic and payload of one node (a device's id, or the bridge's node), in
    /// the configured shape.
    fn discovery_of(&self, node: &str) -> Vec<(String, String)> {
        let entities: Vec<EntityConfig> = if node == self.topics.bridge_node() {
            let names: Vec<String> = self.statuses.keys().cloned().collect();
            self.context().bridge_entities(&names)
        } else {
            let device = DeviceId::new(node).ok().and_then(|id| self.household.device(&id));
            match device {
                Some(device) => self.context().device_entities(device),
                None => return Vec::new(),
            }
        };
        match self.discovery_mode {
            DiscoveryMode::Entity => entities
                .iter()
                .map(|e| (e.topic(&self.topics), e.payload.to_string()))
                .collect(),
            DiscoveryMode::Device => self.packager.repackage(&self.topics, &entities).into_iter().collect(),
        }
    }
}

/// The node of a discovery topic: `<prefix>/device/<node>/config` or
/// `<prefix>/<component>/<node>/<object>/config`.
fn node_of<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let _component = parts.next()?;
    parts.next()
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
