//! Turns one poll's parsed replies into observations: the router (WAN traffic, CPU, memory,
//! temperatures, uptime, client count) and one observation per client it lists.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::parse::{Client, Connection, Identity, Netdev, Temperature};
use crate::model::{
    Boot, CounterSample, DeviceId, DeviceKind, Epoch, MacAddr, MetricUnit, Observation, TrafficReading, TrafficSample,
    WrapRule,
};

/// 32-bit counters wrap at 4 GiB; over one poll a wrap is plausible below this rate.
const MAX_WAN_BPS: f64 = 10e9;

/// What one poll produced, before it becomes observations.
pub struct PollData<'a> {
    pub router: &'a DeviceId,
    pub display_name: Option<&'a str>,
    pub identity: &'a Identity,
    pub netdev: Option<&'a Netdev>,
    /// Counters above 2^32 were seen on this router: a drop is a reset, never a 32-bit wrap.
    pub counters_64_bit: bool,
    pub uptime_s: Option<u64>,
    /// The router's own clock (Unix seconds), from the same `uptime()` reply.
    pub router_clock_s: Option<i64>,
    /// The bridge's monotonic clock when the reply arrived.
    pub mono_ms: i64,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub temperatures: &'a [Temperature],
    pub wan_ip: Option<String>,
    pub clients: &'a [Client],
    pub at_ms: i64,
    pub interval: Duration,
}

pub fn router(p: &PollData) -> Observation {
    let mut obs = Observation::new(p.router.clone(), DeviceKind::Router);
    obs.info.name = p
        .display_name
        .map(str::to_owned)
        .or_else(|| p.identity.model.clone())
        .or_else(|| Some(p.router.to_string()));
    obs.info.manufacturer = Some("ASUS".into());
    obs.info.model.clone_from(&p.identity.model);
    obs.info.sw_version.clone_from(&p.identity.firmware);
    obs.info.macs.extend(p.identity.mac);
    obs.info.ip.clone_from(&p.identity.lan_ip);
    obs.online = Some(true);
    if let Some((rx, tx)) = p.netdev.and_then(|n| n.internet) {
        // The boot on the router's uptime, its own clock and our monotonic clock: a step of
        // our wall clock alone never looks like a reboot (which would count the WAN again).
        let boot = p
            .uptime_s
            .map(|up| Boot::from_uptime(up, p.at_ms, p.mono_ms, p.router_clock_s));
        obs.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Counter(CounterSample {
                // INTERNET_rx is what the router received from the ISP: the WAN download.
                rx,
                tx,
                epoch: boot.map(Epoch::Uptime),
                at_ms: p.at_ms,
                wrap: if p.counters_64_bit {
                    WrapRule::Never
                } else {
                    WrapRule::Maybe32 { max_bps: MAX_WAN_BPS }
                },
                rate_window: (p.interval * 3).max(Duration::from_secs(30)),
            }),
        });
    }
    obs.metric("cpu_percent", "CPU", MetricUnit::Percent, p.cpu_percent);
    obs.metric("memory_percent", "Memory", MetricUnit::Percent, p.memory_percent);
    obs.metric("uptime", "Uptime", MetricUnit::Seconds, p.uptime_s.map(|s| s as f64));
    let online = p.clients.iter().filter(|c| c.online).count();
    obs.metric("clients", "Connected clients", MetricUnit::Count, Some(online as f64));
    for t in p.temperatures {
        obs.metric(t.key, t.name, MetricUnit::Celsius, Some(t.celsius));
    }
    obs.label("wan_ip", "WAN IP address", p.wan_ip.clone());
    obs
}

/// One observation per listed client. `had_rssi`: clients that ever had a signal reading
/// keep the entity (as unknown) when they move to a cable.
pub fn clients(p: &PollData, had_rssi: &mut BTreeSet<MacAddr>) -> Vec<Observation> {
    p.clients
        .iter()
        .map(|c| {
            let mut obs = Observation::new(DeviceId::from_mac(c.mac), DeviceKind::Client);
            obs.info.name = Some(c.name.clone().unwrap_or_else(|| c.mac.to_string()));
            obs.info.macs.push(c.mac);
            obs.info.ip.clone_from(&c.ip);
            obs.info.manufacturer.clone_from(&c.vendor);
            obs.info.via = Some(p.router.clone());
            obs.online = Some(c.online);
            let connection = c
                .is_wl
                .as_deref()
                .and_then(Connection::from_is_wl)
                .map(|k| k.label(p.identity.has_6ghz));
            obs.label("ip", "IP address", c.ip.clone());
            obs.label("connection", "Connection", connection.map(str::to_owned));
            let wireless = connection.is_some_and(|k| k != "wired");
            if wireless || had_rssi.contains(&c.mac) {
                had_rssi.insert(c.mac);
                obs.metric("rssi", "Signal strength", MetricUnit::Dbm, c.rssi.filter(|_| wireless));
            }
            let attrs = &mut obs.attributes;
            attrs.insert("connection".into(), json!(connection));
            attrs.insert("vendor".into(), json!(c.vendor));
            attrs.insert("link_tx_mbps".into(), json!(c.link_tx_mbps));
            attrs.insert("link_rx_mbps".into(), json!(c.link_rx_mbps));
            attrs.insert("guest_network".into(), json!(c.guest));
            attrs.insert("mesh_node".into(), json!(c.mesh_parent.map(|m| m.to_string())));
            attrs.insert("connected_for".into(), json!(c.connected_for));
            attrs.insert("ip_method".into(), json!(c.ip_method));
            obs
        })
        .collect()
}
