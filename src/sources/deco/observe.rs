//! One poll's worth of Deco data → observations for every mesh node and client.
//!
//! The Deco reports rates only. Accounting integrates them (trapezoid over the real sample
//! times); this module decides which intervals may be integrated at all, through each sample's
//! `max_gap`: only an interval between two consecutive successful polls in which the client was
//! online at both ends. After a failed poll, at start-up, or around an offline spell the next
//! sample has `max_gap = 0`, so nothing is invented for time we did not see.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::parse::{ClientEntry, NodeEntry, Performance, Wan};
use super::SpeedUnit;
use crate::model::{DeviceId, DeviceKind, MacAddr, MetricUnit, Observation, RateSample, TrafficReading, TrafficSample};

/// All-zero client rates for this many polls while clients are online: the firmware does not
/// report rates (BE65 fw 1.3, BE5000), which users should hear about once.
const ZERO_RATE_POLLS: u32 = 20;

/// What one successful poll read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When the client list was read, in ms on the source's clock.
    pub at_ms: i64,
    pub nodes: Vec<NodeEntry>,
    pub clients: Vec<ClientEntry>,
    /// Clients each node reported in its own list; `None` where that query failed.
    pub per_node: BTreeMap<MacAddr, Option<BTreeSet<MacAddr>>>,
    pub performance: Option<Performance>,
    pub wan: Option<Wan>,
    pub mode: Option<String>,
}

pub struct Observer {
    source: String,
    unit: SpeedUnit,
    max_gap: Duration,
    /// Clients online in the previous poll; `None` when that poll failed or there was none.
    previous: Option<BTreeSet<MacAddr>>,
    /// Last known node of each client, from the per-node lists.
    node_of: BTreeMap<MacAddr, MacAddr>,
    zero_rate_polls: u32,
    warned: BTreeSet<&'static str>,
}

impl Observer {
    pub fn new(source: &str, unit: SpeedUnit, interval: Duration) -> Self {
        Self {
            source: source.to_owned(),
            unit,
            // Room for slow polls (client_list can take half a minute), but less than two
            // missed polls, so a failed poll is never bridged.
            max_gap: interval * 3,
            previous: None,
            node_of: BTreeMap::new(),
            zero_rate_polls: 0,
            warned: BTreeSet::new(),
        }
    }

    /// Whether a per-node list has placed this client on a node.
    pub fn knows_node_of(&self, client: &MacAddr) -> bool {
        self.node_of.contains_key(client)
    }

    /// The next sample starts a new integration interval: nothing is counted for the gap.
    pub fn poll_failed(&mut self) {
        self.previous = None;
    }

    pub fn observe(&mut self, snap: &Snapshot) -> Vec<Observation> {
        let Some(master) = snap.nodes.iter().find(|n| n.master) else {
            return Vec::new();
        };
        let master_mac = master.mac;
        let node_macs: BTreeSet<MacAddr> = snap.nodes.iter().filter_map(|n| n.mac).collect();
        for (node, clients) in &snap.per_node {
            for client in clients.iter().flatten() {
                self.node_of.insert(*client, *node);
            }
        }
        if snap.nodes.len() == 1
            && let Some(only) = master_mac
        {
            for client in snap.clients.iter().filter_map(|c| c.mac) {
                self.node_of.insert(client, only);
            }
        }

        let mut out = Vec::with_capacity(snap.clients.len() + snap.nodes.len());
        let mut online_now = BTreeSet::new();
        let mut listed = BTreeSet::new();
        let mut per_node_count: BTreeMap<MacAddr, u32> = BTreeMap::new();
        let mut any_rate = false;
        for client in &snap.clients {
            let Some(mac) = client.mac else {
                self.warn_once(
                    "no_mac",
                    "The Deco lists a client without a usable MAC address; it is skipped.",
                );
                continue;
            };
            if !listed.insert(mac) {
                continue;
            }
            let node = self
                .node_of
                .get(&mac)
                .copied()
                .filter(|n| node_macs.contains(n))
                .or(master_mac);
            if client.online {
                online_now.insert(mac);
                if let Some(node) = node {
                    *per_node_count.entry(node).or_default() += 1;
                }
                any_rate |= client.down.unwrap_or(0.0) > 0.0 || client.up.unwrap_or(0.0) > 0.0;
            }
            let node_entry = node.and_then(|n| snap.nodes.iter().find(|e| e.mac == Some(n)));
            out.push(self.client_observation(snap.at_ms, client, mac, node_entry));
        }
        if let Some(previous) = &self.previous {
            for gone in previous.difference(&listed) {
                out.push(self.vanished(snap.at_ms, *gone));
            }
        }
        self.track_zero_rates(!online_now.is_empty(), any_rate);
        self.previous = Some(online_now);
        // Only clients of the list keep their node: private MACs come and go by the thousand.
        self.node_of.retain(|client, _| listed.contains(client));

        let master_id = master_mac.map(DeviceId::from_mac);
        for node in &snap.nodes {
            let Some(mac) = node.mac else { continue };
            let count = per_node_count.get(&mac).copied().unwrap_or(0);
            out.push(node_observation(snap, node, mac, master_id.as_ref(), count));
        }
        out
    }

    fn client_observation(
        &self,
        at_ms: i64,
        client: &ClientEntry,
        mac: MacAddr,
        node: Option<&NodeEntry>,
    ) -> Observation {
        let mut obs = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
        obs.info.name.clone_from(&client.name);
        obs.info.macs.push(mac);
        obs.info.ip = client.ip.map(|ip| ip.to_string());
        obs.info.via = node.and_then(|n| n.mac).map(DeviceId::from_mac);
        obs.online = Some(client.online);
        let bits = self.unit.bits_per_unit();
        // Offline entries keep stale speeds: they count as silence.
        let (rx_bps, tx_bps) = if client.online {
            (
                client.down.unwrap_or(0.0).max(0.0) * bits,
                client.up.unwrap_or(0.0).max(0.0) * bits,
            )
        } else {
            (0.0, 0.0)
        };
        let continuous = client.online && self.previous.as_ref().is_some_and(|p| p.contains(&mac));
        obs.traffic.push(rate_reading(
            rx_bps,
            tx_bps,
            at_ms,
            if continuous { self.max_gap } else { Duration::ZERO },
        ));
        let attrs = &mut obs.attributes;
        if let Some(band) = client.connection_type.as_deref() {
            attrs.insert("band".into(), json!(band_name(band)));
        }
        if let Some(wire) = &client.wire_type {
            attrs.insert("connection_type".into(), json!(wire));
        }
        if let Some(interface) = &client.interface {
            attrs.insert("interface".into(), json!(interface));
        }
        if let Some(kind) = &client.client_type {
            attrs.insert("client_type".into(), json!(kind));
        }
        if let Some(node) = node {
            attrs.insert("node".into(), json!(node_name(node)));
            if let Some(mac) = node.mac {
                attrs.insert("node_mac".into(), json!(mac.to_string()));
            }
        }
        obs
    }

    /// A client that was online and is no longer listed has left: offline, silent.
    fn vanished(&self, at_ms: i64, mac: MacAddr) -> Observation {
        let mut obs = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
        obs.info.macs.push(mac);
        obs.online = Some(false);
        obs.traffic.push(rate_reading(0.0, 0.0, at_ms, Duration::ZERO));
        obs
    }

    fn track_zero_rates(&mut self, clients_online: bool, any_rate: bool) {
        if clients_online && !any_rate {
            self.zero_rate_polls += 1;
        } else {
            self.zero_rate_polls = 0;
        }
        if self.zero_rate_polls >= ZERO_RATE_POLLS {
            self.warn_once(
                "zero_rates",
                "The Deco has reported 0 up/down speed for every online client for 20 polls; this firmware may not report per-client rates (known on BE65 fw 1.3 and BE5000), so estimated totals will stay flat.",
            );
        }
    }

    fn warn_once(&mut self, key: &'static str, message: &str) {
        if self.warned.insert(key) {
            tracing::warn!(source = %self.source, "{message}");
        }
    }
}

fn rate_reading(rx_bps: f64, tx_bps: f64, at_ms: i64, max_gap: Duration) -> TrafficReading {
    TrafficReading {
        interface: None,
        sample: TrafficSample::Rate(RateSample {
            rx_bps,
            tx_bps,
            at_ms,
            max_gap,
        }),
    }
}

fn node_observation(
    snap: &Snapshot,
    node: &NodeEntry,
    mac: MacAddr,
    master_id: Option<&DeviceId>,
    clients: u32,
) -> Observation {
    let mut obs = Observation::new(DeviceId::from_mac(mac), DeviceKind::MeshNode);
    obs.info.name = Some(node_name(node));
    obs.info.macs.push(mac);
    obs.info.ip = node.ip.map(|ip| ip.to_string());
    obs.info.manufacturer = Some("TP-Link".into());
    obs.info.model = node.model.as_deref().map(|m| {
        if m.to_ascii_lowercase().starts_with("deco") {
            m.to_owned()
        } else {
            format!("Deco {m}")
        }
    });
    obs.info.sw_version.clone_from(&node.firmware);
    obs.info.via = if node.master { None } else { master_id.cloned() };
    // The master answers us, so it is up; the others by their mesh status.
    obs.online = Some(node.master || node.connected.unwrap_or(true));
    obs.metric("clients", "Clients", MetricUnit::Count, Some(f64::from(clients)));
    let attrs = &mut obs.attributes;
    attrs.insert("role".into(), json!(if node.master { "master" } else { "satellite" }));
    if let Some(parent) = node.parent {
        attrs.insert("parent_mac".into(), json!(parent.to_string()));
    }
    if !node.backhaul.is_empty() {
        let names: Vec<Value> = node.backhaul.iter().map(|b| json!(band_name(b))).collect();
        attrs.insert("backhaul".into(), Value::Array(names));
    }
    if let Some(inet) = &node.inet_status {
        attrs.insert("internet".into(), json!(inet));
    }
    if let Some(hw) = &node.hardware {
        attrs.insert("hardware_version".into(), json!(hw));
    }
    if node.master {
        if let Some(perf) = snap.performance {
            obs.metric("cpu_percent", "CPU", MetricUnit::Percent, perf.cpu_percent);
            obs.metric("memory_percent", "Memory", MetricUnit::Percent, perf.memory_percent);
        }
        if let Some(wan) = &snap.wan {
            // In double NAT the upstream router sees the Deco by its WAN MAC.
            if let Some(wan_mac) = wan.mac
                && wan_mac != mac
            {
                obs.info.macs.push(wan_mac);
            }
            if let Some(ip) = wan.ip {
                obs.attributes.insert("wan_ip".into(), json!(ip.to_string()));
            }
            if let Some(dial) = &wan.dial_type {
                obs.attributes.insert("wan_type".into(), json!(dial));
            }
        }
        if let Some(mode) = &snap.mode {
            obs.attributes.insert("mode".into(), json!(mode));
        }
    }
    obs
}

pub fn node_name(node: &NodeEntry) -> String {
    node.name
        .clone()
        .or_else(|| node.model.as_ref().map(|m| format!("Deco {m}")))
        .unwrap_or_else(|| format!("Deco {}", node.raw_mac))
}

fn band_name(raw: &str) -> String {
    match raw {
        "band2_4" => "2.4 GHz".into(),
        "band5" | "band5_1" => "5 GHz".into(),
        "band5_2" => "5 GHz (2)".into(),
        "band6" => "6 GHz".into(),
        other => other.into(),
    }
}

#[cfg(test)]
#[path = "observe_tests.rs"]
mod tests;
