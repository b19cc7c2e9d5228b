//! Render only what changed (issue 11): a cheap fingerprint per device of what each of its
//! payloads depends on, so a poll that changes nothing builds no JSON and allocates nothing in
//! proportion to the household.
//!
//! Building a device's discovery configs (a dozen JSON objects, packaged and serialised) and its
//! state costs far more than hashing the handful of fields they are made from. The outbox
//! already drops unchanged payloads, but only after they were built; this cache decides before.
//!
//! Each fingerprint hashes exactly the inputs of its renderer (discovery.rs, state.rs):
//! **a renderer that reads a new field must hash it here too**, or a change of that field alone
//! would not be published. The tests below change each input once and expect a new print.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::state::{StateClock, secondary_views};
use crate::accounting::{Device, Rates};
use crate::model::{DeviceId, DeviceKind};

/// The payloads of one device that are rendered separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Discovery config(s): the device's description.
    Description,
    State,
    /// The tracker's attributes (clients only).
    Attributes,
    /// Its entry in `bridge/devices`.
    Summary,
}

#[derive(Debug, Default, Clone, Copy)]
struct Prints([Option<u64>; 4]);

#[derive(Debug, Default)]
pub struct RenderCache {
    devices: HashMap<DeviceId, Prints>,
    /// Devices whose state or summary changed since [`RenderCache::take_fresh`] (what the
    /// metrics snapshot needs to update, instead of walking the household every poll).
    fresh: Vec<DeviceId>,
}

impl RenderCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `print` differs from what `part` of `id` was last rendered from; records it.
    pub fn changed(&mut self, id: &DeviceId, part: Part, print: u64) -> bool {
        let slot = match self.devices.get_mut(id) {
            Some(prints) => &mut prints.0[part as usize],
            None => &mut self.devices.entry(id.clone()).or_default().0[part as usize],
        };
        let changed = *slot != Some(print);
        *slot = Some(print);
        if changed && matches!(part, Part::State | Part::Summary) {
            self.fresh.push(id.clone());
        }
        changed
    }

    /// Devices whose state or summary changed since the last call (may repeat an id).
    pub fn take_fresh(&mut self) -> Vec<DeviceId> {
        std::mem::take(&mut self.fresh)
    }

    /// The next render of `part` of `id` happens whatever its print.
    pub fn invalidate(&mut self, id: &DeviceId, part: Part) {
        if let Some(prints) = self.devices.get_mut(id) {
            prints.0[part as usize] = None;
        }
    }

    /// A removed device: everything is rendered afresh should it come back.
    pub fn forget(&mut self, id: &DeviceId) {
        self.devices.remove(id);
    }

    /// Keeps only the devices `keep` says still exist.
    pub fn retain(&mut self, mut keep: impl FnMut(&DeviceId) -> bool) {
        self.devices.retain(|id, _| keep(id));
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

/// A JSON value's content, without serialising it (which cost more than the rest of a
/// client's prints together in the 250-client profile).
pub(crate) fn hash_value(h: &mut DefaultHasher, value: &serde_json::Value) {
    use serde_json::Value;
    std::mem::discriminant(value).hash(h);
    match value {
        Value::Null => {}
        Value::Bool(b) => b.hash(h),
        Value::Number(n) => n.hash(h),
        Value::String(s) => s.hash(h),
        Value::Array(items) => {
            items.len().hash(h);
            for item in items {
                hash_value(h, item);
            }
        }
        Value::Object(map) => {
            map.len().hash(h);
            for (k, v) in map {
                k.hash(h);
                hash_value(h, v);
            }
        }
    }
}

/// Rates as the state shows them: whole bit/s.
fn hash_rates(h: &mut DefaultHasher, rates: Rates) {
    rates.rx_bps.map(|v| v.round() as u64).hash(h);
    rates.tx_bps.map(|v| v.round() as u64).hash(h);
}

/// What `Context::device_entities` reads (discovery.rs): identity, naming, which entities
/// exist and which sources each one's availability follows.
pub fn description_print(device: &Device) -> u64 {
    let mut h = DefaultHasher::new();
    device.id.hash(&mut h);
    std::mem::discriminant(&device.kind).hash(&mut h);
    device.name().hash(&mut h);
    let info = &device.info;
    info.macs.hash(&mut h);
    (&info.manufacturer, &info.model, &info.sw_version, &info.via).hash(&mut h);
    device.sources.hash(&mut h);
    device.total_sources.hash(&mut h);
    device.rate_sources.hash(&mut h);
    (device.has_traffic, device.estimated, device.today.is_some()).hash(&mut h);
    (&device.entity_slug, device.quota.is_some()).hash(&mut h);
    for (key, label) in &device.labels {
        (key, &label.name, device.label_sources.get(key)).hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for (key, metric) in &device.metrics {
        (key, &metric.name, device.metric_sources.get(key)).hash(&mut h);
        std::mem::discriminant(&metric.unit).hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for (name, iface) in &device.interfaces {
        (name, &iface.total_source, &iface.rate_source, iface.estimated).hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for (source, view) in secondary_views(device) {
        (source, &view.label, view.has_rates()).hash(&mut h);
    }
    h.finish()
}

/// What `device_state` (state.rs) reads, with the time-dependent parts already decided.
pub fn state_print(device: &Device, clock: StateClock) -> u64 {
    let mut h = DefaultHasher::new();
    device.online().unwrap_or(false).hash(&mut h);
    if device.kind == DeviceKind::Client {
        device.presence(clock.now_ms, clock.consider_home_ms).hash(&mut h);
        let available = clock.sources_down_ms.is_none_or(|down| down < clock.consider_home_ms);
        available.hash(&mut h);
    }
    for (key, label) in &device.labels {
        (key, &label.value).hash(&mut h);
    }
    0xffu8.hash(&mut h);
    if device.has_traffic {
        (device.totals.rx, device.totals.tx, device.estimated).hash(&mut h);
        hash_rates(&mut h, device.rates);
        device.headline_source.hash(&mut h);
        (
            device.today.map(|t| (t.rx, t.tx)),
            device.this_month.map(|t| (t.rx, t.tx)),
        )
            .hash(&mut h);
        for (source, view) in secondary_views(device) {
            (source, view.totals.rx, view.totals.tx, view.estimated).hash(&mut h);
            hash_rates(&mut h, view.rates);
        }
        0xffu8.hash(&mut h);
        for (name, iface) in &device.interfaces {
            (name, iface.totals.rx, iface.totals.tx).hash(&mut h);
            hash_rates(&mut h, iface.rates);
        }
    }
    0xffu8.hash(&mut h);
    for (key, metric) in &device.metrics {
        (key, metric.value.map(f64::to_bits)).hash(&mut h);
    }
    device.reconciled.hash(&mut h);
    device
        .quota
        .map(|q| (q.quota, q.used, q.remaining, q.over, q.period))
        .hash(&mut h);
    h.finish()
}

/// What `tracker_attributes` (state.rs) reads.
pub fn attributes_print(device: &Device) -> u64 {
    let mut h = DefaultHasher::new();
    for (key, value) in &device.attributes {
        key.hash(&mut h);
        hash_value(&mut h, value);
    }
    (&device.info.ip, device.primary_mac(), device.name()).hash(&mut h);
    h.finish()
}

/// What `device_summary` (state.rs) reads.
pub fn summary_print(device: &Device) -> u64 {
    let mut h = DefaultHasher::new();
    (&device.id, device.name(), device.kind.as_str(), device.primary_mac()).hash(&mut h);
    (&device.info.ip, &device.sources).hash(&mut h);
    h.finish()
}

#[cfg(test)]
#[path = "render_cache_tests.rs"]
mod tests;
