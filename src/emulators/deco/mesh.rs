//! The emulated mesh: Deco units, their clients, and the JSON the Deco answers about them.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::traffic::{ClientTraffic, Profile};
use crate::config::SpeedUnit;
use crate::model::MacAddr;

/// How a MAC address is spelled in replies (firmware differs, deco.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacStyle {
    /// `aa:bb:cc:dd:ee:ff`, older firmware and test data.
    LowerColon,
    /// `AA-BB-CC-DD-EE-FF`, X50/X55 firmware 1.8.
    UpperDash,
}

impl MacStyle {
    pub fn render(self, mac: MacAddr) -> String {
        match self {
            Self::LowerColon => mac.to_string(),
            Self::UpperDash => mac.to_string().replace(':', "-").to_ascii_uppercase(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub mac: MacAddr,
    /// A room key (`living_room`) or display text.
    pub nickname: String,
    pub model: String,
    pub ip: String,
    pub firmware: String,
}

/// When a client is connected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Presence {
    Always,
    /// Away every day between these seconds of the (UTC) day.
    AwayDaily {
        from_s: i64,
        to_s: i64,
    },
}

/// How an offline client appears in `client_list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineListing {
    /// Listed with `online: false` and its last speeds (stale), as in the C6U test data.
    Stale,
    /// Not listed at all.
    Absent,
}

#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub mac: MacAddr,
    /// The `mac` field as sent; `Some("")` sends an empty MAC (C6U fixture).
    pub raw_mac: Option<String>,
    /// The `name` field as sent (normally base64 of UTF-8); see [`b64`].
    pub name_field: String,
    /// The `ip` field as sent: an address, `""`, or `"UNKNOWN"`.
    pub ip: String,
    /// Index into the node list.
    pub node: usize,
    /// `band2_4`, `band5`, `band6` or `wired`.
    pub band: String,
    /// `main`, `guest`, `iot`, or `None` to leave the field out.
    pub interface: Option<String>,
    pub client_type: String,
    pub profile: Profile,
    pub presence: Presence,
    pub offline: OfflineListing,
    /// Moves between nodes this often (a phone walking around).
    pub roam_every: Option<Duration>,
    /// Sends `down_speed`/`up_speed` as strings (S7 firmware).
    pub speeds_as_strings: bool,
}

impl ClientSpec {
    pub fn new(mac: MacAddr, name: &str, node: usize, band: &str, profile: Profile) -> Self {
        Self {
            mac,
            raw_mac: None,
            name_field: b64(name.as_bytes()),
            ip: String::new(),
            node,
            band: band.to_owned(),
            interface: Some("main".into()),
            client_type: "other".into(),
            profile,
            presence: Presence::Always,
            offline: OfflineListing::Stale,
            roam_every: None,
            speeds_as_strings: false,
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// One client as the emulator tracks it.
pub struct Client {
    pub spec: ClientSpec,
    pub traffic: ClientTraffic,
    /// Tests can force a client on or off the network.
    pub forced_online: Option<bool>,
    /// Speeds shown last while online (offline entries repeat them, stale).
    last_speeds: (f64, f64),
}

impl Client {
    pub fn new(spec: ClientSpec, seed: u64, window: Duration, start_ms: i64) -> Self {
        let traffic = ClientTraffic::new(spec.profile, seed, window, start_ms);
        Self {
            spec,
            traffic,
            forced_online: None,
            last_speeds: (0.0, 0.0),
        }
    }

    pub fn online_at(&self, second: i64) -> bool {
        present(self.forced_online, self.spec.presence, second)
    }

    pub fn node_at(&self, second: i64, nodes: usize) -> usize {
        match self.spec.roam_every {
            Some(every) if nodes > 1 => {
                let period = i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1);
                (self.spec.node + usize::try_from(second.div_euclid(period)).unwrap_or(0)) % nodes
            }
            _ => self.spec.node.min(nodes.saturating_sub(1)),
        }
    }

    pub fn advance(&mut self, now_ms: i64) {
        let (forced, presence) = (self.forced_online, self.spec.presence);
        self.traffic.advance(now_ms, |s| present(forced, presence, s));
    }

    /// The entry for `client_list`, or `None` when an offline client is not listed.
    pub fn entry(&mut self, now_ms: i64, unit: SpeedUnit, zero_speeds: bool) -> Option<Value> {
        let second = now_ms.div_euclid(1000);
        let online = self.online_at(second);
        if !online && self.spec.offline == OfflineListing::Absent {
            return None;
        }
        let (down, up) = if online {
            let (down, up) = self.traffic.window_rate();
            let per_unit = unit.bits_per_unit();
            // The Deco shows whole units.
            let speeds = if zero_speeds {
                (0.0, 0.0)
            } else {
                ((down * 8.0 / per_unit).round(), (up * 8.0 / per_unit).round())
            };
            self.last_speeds = speeds;
            speeds
        } else {
            self.last_speeds
        };
        let speed = |v: f64| {
            if self.spec.speeds_as_strings {
                json!(format!("{v:.0}"))
            } else {
                json!(v as u64)
            }
        };
        let wired = self.spec.band == "wired";
        let mut entry = json!({
            "mac": self.spec.raw_mac.clone().unwrap_or_else(|| MacStyle::LowerColon.render(self.spec.mac)),
            "name": self.spec.name_field,
            "ip": self.spec.ip,
            "online": online,
            "down_speed": speed(down),
            "up_speed": speed(up),
            "wire_type": if wired { "wired" } else { "wireless" },
            "connection_type": self.spec.band,
            "client_type": self.spec.client_type,
            "access_host": "1",
            "space_id": "1",
            "owner_id": "",
            "remain_time": 0,
            "enable_priority": false,
            "client_mesh": !wired,
        });
        if let (Some(interface), Some(obj)) = (&self.spec.interface, entry.as_object_mut()) {
            obj.insert("interface".into(), json!(interface));
        }
        Some(entry)
    }
}

fn present(forced: Option<bool>, presence: Presence, second: i64) -> bool {
    forced.unwrap_or(match presence {
        Presence::Always => true,
        Presence::AwayDaily { from_s, to_s } => {
            let t = second.rem_euclid(86_400);
            !(from_s <= t && t < to_s)
        }
    })
}

/// What the emulator says about its WAN.
#[derive(Debug, Clone)]
pub struct WanSpec {
    pub mac: MacAddr,
    pub ip: String,
    pub gateway: String,
    pub lan_mac: MacAddr,
    pub lan_ip: String,
}

pub fn device_list(nodes: &[NodeSpec], style: MacStyle, down: &[bool]) -> Value {
    let master = nodes.first().map(|n| style.render(n.mac)).unwrap_or_default();
    // Satellites first, then the master, as in the real X50 capture.
    let list: Vec<Value> = nodes
        .iter()
        .enumerate()
        .skip(1)
        .chain(nodes.iter().enumerate().take(1))
        .map(|(i, n)| {
            let is_master = i == 0;
            let mut entry = json!({
                "role": if is_master { "master" } else { "slave" },
                "nickname": n.nickname,
                "device_ip": n.ip,
                "mac": style.render(n.mac),
                "device_model": n.model,
                "hardware_ver": "1.0",
                "software_ver": n.firmware,
                "inet_status": "online",
                "group_status": if down.get(i).copied().unwrap_or(false) { "disconnected" } else { "connected" },
                "previous": if is_master { String::new() } else { master.clone() },
                "device_type": "HOMEWIFISYSTEM",
            });
            if let Some(obj) = entry.as_object_mut() {
                if is_master {
                    obj.insert("signal_level".into(), json!({"band5": "0", "band2_4": "0"}));
                } else {
                    obj.insert("connection_type".into(), json!(["band2_4", "band5"]));
                    obj.insert("signal_level".into(), json!({"band5": "3", "band2_4": "2"}));
                    obj.insert("signal_strength".into(), json!({"band5": -50, "band2_4": -37}));
                }
            }
            entry
        })
        .collect();
    json!({ "device_list": list })
}

pub fn wan_ipv4(wan: &WanSpec) -> Value {
    json!({
        "wan": {
            "ip_info": {
                "mac": wan.mac.to_string(),
                "dns2": "0.0.0.0",
                "dns1": wan.gateway,
                "mask": "255.255.255.0",
                "gateway": wan.gateway,
                "ip": wan.ip,
            },
            "dial_type": "dynamic_ip",
            "info": {},
            "enable_auto_dns": true,
        },
        "lan": {"ip_info": {"mac": wan.lan_mac.to_string(), "mask": "255.255.255.0", "ip": wan.lan_ip}},
    })
}

/// Access-point mode: no WAN of its own (empty fields), the LAN side as usual.
pub fn wan_ipv4_access_point(wan: &WanSpec) -> Value {
    json!({
        "wan": {"ip_info": {"mac": "", "dns2": "", "dns1": "", "mask": "", "gateway": "", "ip": ""},
                "dial_type": "", "info": {}},
        "lan": {"ip_info": {"mac": wan.lan_mac.to_string(), "mask": "255.255.255.0", "ip": wan.lan_ip}},
    })
}

pub fn wlan() -> Value {
    let band = |channel: u32, mode: &str| {
        json!({
            "backhaul": {"channel": channel},
            "host": {"password": b64(b"emulated-pass"), "ssid": b64(b"Emulated Deco"), "channel": channel,
                     "enable": true, "mode": mode, "channel_width": "HT80", "enable_hide_ssid": false},
            "guest": {"password": b64(b"guest-pass"), "ssid": b64(b"Emulated Guest"), "vlan_id": 591,
                      "enable": false, "need_set_vlan": false},
        })
    };
    json!({"band2_4": band(6, "11ng"), "band5_1": band(44, "11ac"), "is_eg": false})
}

/// CPU and memory move a little with time so graphs are not flat.
pub fn performance(now_ms: i64) -> Value {
    let minute = now_ms.div_euclid(60_000);
    let wobble = (minute % 7) as f64 / 100.0;
    json!({"cpu_usage": 0.08 + wobble, "mem_usage": 0.43 + wobble / 2.0})
}

/// The speeds of every listed client, the `traffic_stat` shape of the P9 probe.
pub fn traffic_stat(list: &[Value]) -> Value {
    let speeds: Vec<Value> = list
        .iter()
        .map(|c| json!({"mac": c["mac"], "up_speed": c["up_speed"], "down_speed": c["down_speed"]}))
        .collect();
    json!({ "client_list_speed": speeds })
}

/// A home: the master and one satellite, and clients of every kind, including the quirks
/// real lists carry (a non-UTF-8 name, an empty name, an `"UNKNOWN"` IP, an empty MAC).
pub fn home() -> (Vec<NodeSpec>, Vec<ClientSpec>) {
    let nodes = vec![
        NodeSpec {
            mac: MacAddr::new([0xf0, 0x09, 0x0d, 0xfa, 0x29, 0x7c]),
            nickname: "living_room".into(),
            model: "X50".into(),
            ip: "192.168.68.1".into(),
            firmware: "1.8.0 Build 25102213 Rel. 43970".into(),
        },
        NodeSpec {
            mac: MacAddr::new([0xf0, 0x09, 0x0d, 0xfa, 0x29, 0x84]),
            nickname: "Office".into(),
            model: "X50".into(),
            ip: "192.168.68.250".into(),
            firmware: "1.8.0 Build 25102213 Rel. 43970".into(),
        },
    ];
    let mut clients = vec![
        ClientSpec::new(home_mac(0x01), "Laptop", 1, "band5", Profile::Laptop),
        ClientSpec::new(home_mac(0x02), "Living Room TV", 0, "band5", Profile::Streamer),
        ClientSpec::new(home_mac(0x03), "Anna's Phone", 0, "band5", Profile::Phone),
        ClientSpec::new(home_mac(0x04), "Front Door Camera", 1, "band2_4", Profile::Camera),
        ClientSpec::new(home_mac(0x05), "Smart Plug", 0, "band2_4", Profile::Iot),
        ClientSpec::new(home_mac(0x06), "NAS", 0, "wired", Profile::Nas),
        ClientSpec::new(home_mac(0x07), "Guest Tablet", 1, "band6", Profile::Phone),
        ClientSpec::new(home_mac(0x08), "", 0, "band2_4", Profile::Iot),
        ClientSpec::new(home_mac(0x09), "", 1, "band2_4", Profile::Phone),
        ClientSpec::new(home_mac(0x0a), "", 0, "band2_4", Profile::Idle),
    ];
    let ips = (100..).map(|n| format!("192.168.68.{n}"));
    for (client, ip) in clients.iter_mut().zip(ips) {
        client.ip = ip;
    }
    clients[0].client_type = "pc".into();
    clients[1].client_type = "tv".into();
    clients[2].client_type = "phone".into();
    clients[2].presence = Presence::AwayDaily {
        from_s: 8 * 3600,
        to_s: 17 * 3600 + 1800,
    };
    clients[2].roam_every = Some(Duration::from_secs(45 * 60));
    clients[2].offline = OfflineListing::Absent;
    clients[3].client_type = "camera".into();
    clients[3].interface = Some("iot".into());
    clients[4].client_type = "iot_device".into();
    clients[4].interface = None;
    clients[4].speeds_as_strings = true;
    clients[5].client_type = "pc".into();
    clients[6].interface = Some("guest".into());
    clients[6].presence = Presence::AwayDaily {
        from_s: 0,
        to_s: 15 * 3600,
    };
    // Name bytes that are not UTF-8, as an X60 sent them (HA #122).
    clients[7].name_field = b64(b"Sensor \xff\xfe");
    clients[7].ip = "UNKNOWN".into();
    // An entry without a MAC, as in the C6U fixture: the bridge must skip it.
    clients[9].raw_mac = Some(String::new());
    clients[9].name_field = b64(b"No MAC");
    (nodes, clients)
}

fn home_mac(last: u8) -> MacAddr {
    MacAddr::new([0x3c, 0x22, 0xfb, 0x10, 0x00, last])
}

/// Ground truth of every client, by MAC.
pub fn truths(clients: &[Client]) -> BTreeMap<MacAddr, (u64, u64)> {
    clients.iter().map(|c| (c.spec.mac, c.traffic.truth())).collect()
}
