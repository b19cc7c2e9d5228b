//! `bridge/event` (zigbee2mqtt style): a device joined (first ever seen), left (went from online
//! to offline) or was removed. Pure: it compares what the ledger says now with what it said.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::accounting::Device;
use crate::model::DeviceId;

#[derive(Debug, Default)]
pub struct EventTracker {
    /// Every device ever seen, including those only known from the state file.
    known: BTreeSet<DeviceId>,
    online: BTreeMap<DeviceId, bool>,
}

impl EventTracker {
    pub fn new(known: impl IntoIterator<Item = DeviceId>) -> Self {
        Self {
            known: known.into_iter().collect(),
            online: BTreeMap::new(),
        }
    }

    /// The events since the last call, in device order.
    pub fn diff<'a>(&mut self, devices: impl Iterator<Item = &'a Device>) -> Vec<Value> {
        let mut events = Vec::new();
        // Called after every poll: looks up before inserting, so a household where nothing
        // joined or left costs no allocation.
        for device in devices {
            if !self.known.contains(&device.id) {
                self.known.insert(device.id.clone());
                events.push(event("device_joined", device));
            }
            let now = device.online();
            let before = match (now, self.online.get_mut(&device.id)) {
                (Some(online), Some(slot)) => Some(std::mem::replace(slot, online)),
                (Some(online), None) => self.online.insert(device.id.clone(), online),
                (None, _) => None,
            };
            if before == Some(true) && now == Some(false) {
                events.push(event("device_left", device));
            }
        }
        events
    }

    /// Devices known and online states kept (tests).
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        (self.known.len(), self.online.len())
    }

    pub fn removed(&mut self, device: &Device) -> Value {
        self.known.remove(&device.id);
        self.online.remove(&device.id);
        event("device_removed", device)
    }
}

impl EventTracker {
    /// A device removed that was only known from the state file.
    pub fn removed_id(&mut self, id: &DeviceId) -> Value {
        self.known.remove(id);
        self.online.remove(id);
        json!({"type": "device_removed", "data": {"id": id.as_str()}})
    }
}

fn event(kind: &str, device: &Device) -> Value {
    json!({
        "type": kind,
        "data": {
            "id": device.id.as_str(),
            "name": device.name(),
            "kind": device.kind.as_str(),
            "mac": device.primary_mac().map(|m| m.to_string()),
            "sources": device.sources,
        }
    })
}
