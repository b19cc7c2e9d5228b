//! What the bridge published, read back from the broker: a subscriber that keeps every device's
//! latest state and checks each one against the truth as it arrives (a total ahead of the
//! truth, a total going backwards), counts `device_removed` events; a fresh subscription that
//! counts the retained topics; and the bridge process's memory from /proc.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS};
use serde_json::Value;

use bandwidth2mqtt::model::MacAddr;

use super::world::{Kind, World};

pub const BASE: &str = "bandwidth2mqtt";

/// A device's latest published numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Published {
    pub rx: u64,
    pub tx: u64,
    pub rx_today: Option<u64>,
    pub tx_today: Option<u64>,
    pub members: Option<u64>,
    /// A reconciled Deco client's raw estimate (`views.mesh`, rx + tx).
    pub raw: Option<u64>,
    pub state_bytes: usize,
}

#[derive(Default)]
pub struct Seen {
    pub states: BTreeMap<String, Published>,
    /// Highest total each id ever published (a total going backwards is below it).
    pub high: BTreeMap<String, (u64, u64)>,
    /// Ids that ever had a state, and how often each was removed (`device_removed`).
    pub ever: BTreeMap<String, u32>,
    pub removed: BTreeMap<String, u32>,
    /// Violations, as lines for the report (the first 30) and counts.
    pub ahead: u64,
    pub backwards: u64,
    pub lines: Vec<String>,
    pub state_messages: u64,
    pub largest_state: usize,
}

impl Seen {
    fn note(&mut self, line: String) {
        if self.lines.len() < 30 {
            let _ = writeln!(std::io::stderr(), "day: {line}");
            self.lines.push(line);
        }
    }
}

pub fn id_of(mac: &MacAddr) -> String {
    mac.to_string().replace(':', "").to_lowercase()
}

fn options(port: u16, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id.to_owned(), ("127.0.0.1", port));
    o.set_max_packet_size(4 << 20, 4 << 20);
    o.set_keep_alive(600);
    o
}

/// Subscribes to the bridge's topics for the whole run.
pub fn watch(port: u16, world: Arc<Mutex<World>>, sim_now: impl Fn() -> String + Send + 'static) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (client, mut eventloop) = AsyncClient::builder(options(port, "day_watch")).capacity(1000).build();
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(format!("{BASE}/#"), QoS::AtMostOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    let Some(rest) = topic.strip_prefix(&format!("{BASE}/")) else {
                        continue;
                    };
                    // Lock order everywhere: the world, then what was seen (never both the other way).
                    let truth = mac_of(rest).and_then(|m| {
                        let w = world.lock().unwrap_or_else(|e| e.into_inner());
                        w.exact.get(&m).map(|c| (c.rx, c.tx, c.name.clone(), c.kind))
                    });
                    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if rest == "bridge/event" {
                        if let Ok(v) = serde_json::from_slice::<Value>(&p.payload)
                            && v["type"] == "device_removed"
                            && let Some(id) = v["data"]["id"].as_str()
                        {
                            *s.removed.entry(id.to_owned()).or_default() += 1;
                        }
                        continue;
                    }
                    if rest.contains('/') || rest == "bridge" {
                        continue;
                    }
                    if p.payload.is_empty() {
                        s.states.remove(rest);
                        continue;
                    }
                    let Ok(v) = serde_json::from_slice::<Value>(&p.payload) else {
                        continue;
                    };
                    let (Some(rx), Some(tx)) = (v["rx_bytes"].as_u64(), v["tx_bytes"].as_u64()) else {
                        continue;
                    };
                    let published = Published {
                        rx,
                        tx,
                        rx_today: v["rx_today"].as_u64(),
                        tx_today: v["tx_today"].as_u64(),
                        members: v["members"].as_u64(),
                        raw: v["views"]["mesh"]["rx_bytes"]
                            .as_u64()
                            .zip(v["views"]["mesh"]["tx_bytes"].as_u64())
                            .map(|(r, t)| r + t),
                        state_bytes: p.payload.len(),
                    };
                    check(&mut s, rest, published, truth, &sim_now);
                    s.states.insert(rest.to_owned(), published);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
            }
        }
    });
    seen
}

fn check(s: &mut Seen, id: &str, p: Published, truth: Option<(u64, u64, String, Kind)>, sim_now: &impl Fn() -> String) {
    s.state_messages += 1;
    s.largest_state = s.largest_state.max(p.state_bytes);
    let first = !s.ever.contains_key(id);
    *s.ever.entry(id.to_owned()).or_default() += u32::from(first);
    if let Some(&(hrx, htx)) = s.high.get(id)
        && (p.rx < hrx || p.tx < htx)
        && s.removed.get(id).copied().unwrap_or(0) == 0
    {
        s.backwards += 1;
        let line = format!(
            "{} {id}: total went backwards: rx {hrx} → {}, tx {htx} → {}",
            sim_now(),
            p.rx,
            p.tx
        );
        s.note(line);
    }
    let high = s.high.entry(id.to_owned()).or_insert((0, 0));
    *high = (high.0.max(p.rx), high.1.max(p.tx));
    // An exact ASUS client is never ahead of what it has really moved by now.
    if let Some((rx, tx, name, kind)) = truth
        && (p.rx > rx || p.tx > tx)
    {
        s.ahead += 1;
        let line = format!(
            "{} {id} ({name}, {kind:?}): ahead of the truth: rx {} > {rx} ({:+.3} %), tx {} > {tx}",
            sim_now(),
            p.rx,
            (p.rx as f64 - rx as f64) / rx.max(1) as f64 * 100.0,
            p.tx,
        );
        s.note(line);
    }
}

/// Retained topics now: (count, HA discovery configs, bytes, largest payload).
pub async fn retained(port: u16, n: u64) -> (u64, u64, u64, u64) {
    let (client, mut eventloop) = AsyncClient::builder(options(port, &format!("day_retained_{n}")))
        .capacity(1000)
        .build();
    let marker = format!("day_probe/marker/{n}");
    let (mut count, mut configs, mut bytes, mut largest) = (0, 0, 0, 0);
    let work = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe("#", QoS::AtMostOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = client.try_publish(marker.clone(), "m", PublishOptions::new(QoS::AtMostOnce));
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.topic.as_ref() == marker.as_bytes() {
                        return;
                    }
                    if p.retain && !p.payload.is_empty() {
                        count += 1;
                        bytes += p.payload.len() as u64;
                        largest = largest.max(p.payload.len() as u64);
                        if p.topic.ends_with(b"/config") {
                            configs += 1;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
            }
        }
    };
    // Simulated time: 30 min of it is a few real seconds.
    let _ = tokio::time::timeout(Duration::from_secs(1800), work).await;
    let _ = client.try_disconnect();
    (count, configs, bytes, largest)
}

/// (VmRSS, VmHWM) in kB, and the process's CPU seconds (utime + stime).
pub fn memory(pid: u32) -> (u64, u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is 0, utime 11, stime 12 (clock ticks of 1/100 s).
    (field("VmRSS:"), field("VmHWM:"), (ticks(11) + ticks(12)) / 100.0)
}

/// Real seconds since boot: /proc/uptime is not faked, so it is the control's wall clock.
pub fn wall_s() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// The MAC of a client's device id (12 hex digits), if it is one.
pub fn mac_of(id: &str) -> Option<MacAddr> {
    if id.len() != 12 {
        return None;
    }
    let mut b = [0u8; 6];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(id.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(MacAddr::new(b))
}
