//! The seed's household, emulated: an ASUS RT-AX86U Pro with the Traffic Analyzer on, a TP-Link
//! Deco mesh behind it in router mode (double NAT: the ASUS sees only the Deco's WAN MAC), and
//! behind the Deco three servers running vnstat (Titan, Beast, Panda), phones, laptops, a TV
//! and IoT plugs. Every byte is generated once, by the Deco's client models, and carried up the
//! way a real network carries it: a server's vnstat counts its own traffic, the Deco estimates
//! it from rates, and the ASUS counts it again as traffic of the Deco (WAN and Traffic Analyzer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::emulators::Server;
use crate::emulators::asus::{AsusConfig, AsusEmulator, EmuClient};
use crate::emulators::deco::{self, ClientSpec, Clock, DecoEmulator, EmulatorConfig, Presence, Profile};
use crate::emulators::vnstat::{Interface, VnstatServer};
use crate::model::MacAddr;

pub const ROUTER_PASSWORD: &str = "demo-router-password";
pub const DECO_PASSWORD: &str = "demo-deco-owner";
/// The Deco's WAN MAC: what the ASUS lists it by (EmulatorConfig's default WAN).
pub const DECO_WAN: MacAddr = MacAddr::new([0xf0, 0x09, 0x0d, 0xfa, 0x29, 0x7d]);

/// A server behind the Deco: its vnstat name, display name, MAC and interface.
pub struct ServerSpec {
    pub key: &'static str,
    pub name: &'static str,
    pub mac: MacAddr,
    pub iface: &'static str,
    /// What vnstat had counted before the demo started (bytes rx, tx): months of history.
    pub history: (u64, u64),
}

pub const SERVERS: [ServerSpec; 3] = [
    ServerSpec {
        key: "titan",
        name: "Titan",
        mac: MacAddr::new([0xd8, 0xbb, 0xc1, 0x1e, 0x00, 0x01]),
        iface: "eno1",
        history: (1_524_000_000_000, 302_000_000_000),
    },
    ServerSpec {
        key: "beast",
        name: "Beast",
        mac: MacAddr::new([0xd8, 0xbb, 0xc1, 0x1e, 0x00, 0x02]),
        iface: "enp5s0",
        history: (4_812_000_000_000, 96_000_000_000),
    },
    ServerSpec {
        key: "panda",
        name: "Panda",
        mac: MacAddr::new([0xd8, 0xbb, 0xc1, 0x1e, 0x00, 0x03]),
        iface: "eth0",
        history: (210_000_000_000, 1_950_000_000_000),
    },
];

/// Clients of the ASUS itself (not behind the Deco), with their traffic in bytes per
/// simulated minute (rx, tx): they only talk a little.
pub const ASUS_OWN: [(&str, MacAddr, u64, u64); 2] = [
    (
        "Printer",
        MacAddr::new([0x3c, 0x2a, 0xf4, 0x51, 0x0a, 0x11]),
        40_000,
        8_000,
    ),
    (
        "Garage Plug",
        MacAddr::new([0x24, 0x62, 0xab, 0x0e, 0x55, 0x17]),
        3_000,
        2_000,
    ),
];

/// What each of [`deco_clients`] mostly uses, as the Traffic Analyzer names apps.
const DECO_APPS: [&str; 10] = [
    "General HTTPS",
    "Steam",
    "iCloud",
    "WhatsApp",
    "YouTube",
    "Zoom",
    "iCloud",
    "Netflix",
    "General HTTPS",
    "General HTTPS",
];

/// The Deco's clients: servers first (wired), then the family's things.
pub fn deco_clients() -> Vec<ClientSpec> {
    let mac = |last| MacAddr::new([0x3c, 0x22, 0xfb, 0x10, 0x00, last]);
    let mut clients = vec![
        ClientSpec::new(SERVERS[0].mac, "titan", 0, "wired", Profile::Nas),
        ClientSpec::new(SERVERS[1].mac, "beast", 1, "wired", Profile::Laptop),
        ClientSpec::new(SERVERS[2].mac, "panda", 0, "wired", Profile::Camera),
        ClientSpec::new(mac(0x01), "Anna's Phone", 0, "band5", Profile::Phone),
        ClientSpec::new(mac(0x02), "Ben's Phone", 1, "band5", Profile::Phone),
        ClientSpec::new(mac(0x03), "Work Laptop", 1, "band5", Profile::Laptop),
        ClientSpec::new(mac(0x04), "MacBook Air", 0, "band6", Profile::Laptop),
        ClientSpec::new(mac(0x05), "Living Room TV", 0, "wired", Profile::Streamer),
        ClientSpec::new(mac(0x06), "Kitchen Plug", 0, "band2_4", Profile::Iot),
        ClientSpec::new(mac(0x07), "Desk Plug", 1, "band2_4", Profile::Iot),
    ];
    for (i, client) in clients.iter_mut().enumerate() {
        client.ip = format!("192.168.68.{}", 100 + i);
    }
    clients[3].client_type = "phone".into();
    clients[3].roam_every = Some(std::time::Duration::from_secs(40 * 60));
    clients[4].client_type = "phone".into();
    // Ben is out in the mornings (UTC).
    clients[4].presence = Presence::AwayDaily {
        from_s: 7 * 3600,
        to_s: 12 * 3600,
    };
    clients[5].client_type = "pc".into();
    clients[6].client_type = "pc".into();
    clients[7].client_type = "tv".into();
    for plug in &mut clients[8..] {
        plug.client_type = "iot_device".into();
        plug.interface = Some("iot".into());
    }
    clients
}

/// The running emulators and where the bridge finds them.
pub struct Household {
    pub asus: AsusEmulator,
    pub deco: DecoEmulator,
    /// Keeps the Deco's HTTP server up.
    pub deco_server: Server,
    pub vnstat: Vec<(MacAddr, VnstatServer)>,
    /// The app each Deco client's traffic is booked to in the Traffic Analyzer.
    pub apps: BTreeMap<MacAddr, &'static str>,
    /// Simulated seconds per real second.
    pub speed: f64,
}

impl Household {
    /// Starts every emulator on free ports of 127.0.0.1; vnstat documents go to `dir`. The
    /// Deco (whose clients generate every byte) runs on `clock`, the bridge's: at `--speed N`
    /// both read the same simulated instant, so the bridge's rates are the simulated rates.
    pub async fn start(dir: &Path, speed: f64, clock: &crate::clock::Clock) -> std::io::Result<Self> {
        let now_ms = clock.now_ms();
        let clock = Clock::Shared(clock.clone());
        let clients = deco_clients();
        let apps = clients.iter().map(|c| c.mac).zip(DECO_APPS).collect();
        let mut mesh = EmulatorConfig::new(DECO_PASSWORD, deco::home().0, clients, clock);
        mesh.wan.mac = DECO_WAN;
        let deco = DecoEmulator::new(mesh).map_err(std::io::Error::other)?;
        let deco_server = deco.serve(0, false).await?;

        let asus = AsusEmulator::start(
            AsusConfig {
                password: ROUTER_PASSWORD.into(),
                traffic_analyzer: true,
                // Adaptive QoS's Bandwidth Monitor: live exact per-client counters.
                traffic_monitor: true,
                clients: 0,
                live_traffic: false,
                clock_speed: speed,
                ..AsusConfig::default()
            },
            false,
        )
        .await?;
        asus.with(|router| {
            router.clients = asus_clients();
            book_router_history(router);
        });

        let created = now_ms / 1000 - 200 * 86_400;
        let vnstat = SERVERS
            .iter()
            .map(|s| {
                let iface = Interface {
                    name: s.iface.into(),
                    rx: s.history.0,
                    tx: s.history.1,
                };
                // vnstatd saves every 5 minutes by default; the demo's save every 15 s
                // (simulated), so rates show up within a minute.
                let server = VnstatServer::new(&dir.join(format!("{}.json", s.key)), created, 15, vec![iface]);
                (s.mac, server)
            })
            .collect();
        Ok(Self {
            asus,
            deco,
            deco_server,
            vnstat,
            apps,
            speed,
        })
    }

    /// The bridge's configuration for this household: a worked example of a real one.
    /// `mqtt_access`: the `[mqtt]` table's credential and CA lines, if any.
    pub fn config_toml(&self, mqtt_url: &str, mqtt_access: &str, state_dir: &Path) -> String {
        // Intervals are simulated time: at `--speed N` a 5 s interval is 5/N s of real time.
        // Polls stay at least half a real second apart, so a fast demo does not flood the
        // emulators (or the machine).
        let every = |base_s: u64| format!("{}s", base_s.max((self.speed * 0.5).ceil() as u64));
        let mut text = format!(
            r#"# bandwidth2mqtt demo: the emulated household (see README, "Demo").
[mqtt]
url = "{mqtt_url}"
client_id = "bandwidth2mqtt_demo_{pid}"
base_topic = "{base}"
discovery_prefix = "{discovery}"
{mqtt_access}
[bridge]
state_dir = "{state}"

[host]
enabled = false                    # the demo shows the emulated household, not this machine

[asus.home]
url = "{asus}"
username = "admin"
password = "{ROUTER_PASSWORD}"
interval = "{asus_every}"
traffic_analyzer = true

[deco.mesh]
url = "{deco}"
password = "{DECO_PASSWORD}"
interval = "{deco_every}"
"#,
            asus_every = every(10),
            deco_every = every(5),
            pid = std::process::id(),
            base = super::BASE_TOPIC,
            discovery = super::DISCOVERY_PREFIX,
            state = toml_path(state_dir),
            asus = self.asus.url(),
            deco = self.deco_server.url(),
        );
        for (spec, (_, server)) in SERVERS.iter().zip(&self.vnstat) {
            text.push_str(&format!(
                "\n[vnstat.{key}]\ncommand = [\"cat\", \"{path}\"]   # on a real server: [\"ssh\", \"{key}\", \"vnstat\", \"--json\", \"f\", \"1\"]\ninterval = \"{every}\"\nname = \"{name}\"\nmac = \"{mac}\"\n",
                key = spec.key,
                name = spec.name,
                path = toml_path(server.path()),
                mac = spec.mac,
                every = every(5),
            ));
        }
        text
    }
}

/// What the Deco's uplink carried per hour before the demo started (rx, tx): the whole mesh,
/// servers included, crosses it.
pub const DECO_WAN_HOURLY: (u64, u64) = (1_500_000_000, 400_000_000);

/// The router has been up for days when the demo starts (the emulator's uptime): its live
/// counters, Traffic Analyzer hours and WAN counters hold what its clients moved since it
/// booted, as a real router's do. So the bridge's first poll shows the Deco unit's traffic (its
/// uplink, a client of the ASUS) at once, not only once the demo's own traffic has reached it.
fn book_router_history(router: &mut crate::emulators::asus::RouterState) {
    let now = router.clock.now();
    let mut hour = router.booted_at_router_s();
    while hour < now - 60 {
        // The middle of each hour since boot (the last one may be cut short by now).
        let at = (hour + 1800).min(now - 60);
        for app in DECO_APPS {
            let share = DECO_APPS.len() as u64;
            router.add_client_traffic_at(DECO_WAN, app, at, DECO_WAN_HOURLY.0 / share, DECO_WAN_HOURLY.1 / share);
        }
        for (_, mac, rx_min, tx_min) in ASUS_OWN {
            router.add_client_traffic_at(mac, "General HTTPS", at, rx_min * 60, tx_min * 60);
        }
        hour += 3600;
    }
}

fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"")
}

fn asus_clients() -> Vec<EmuClient> {
    let mut clients = vec![EmuClient {
        mac: DECO_WAN,
        name: "Deco-X50".into(),
        nick: "Deco mesh".into(),
        vendor: "TP-LINK".into(),
        ip: "192.168.50.20".into(),
        is_wl: 0,
        rssi: 0,
        online: true,
    }];
    for (i, (name, mac, _, _)) in ASUS_OWN.iter().enumerate() {
        clients.push(EmuClient {
            mac: *mac,
            name: (*name).into(),
            nick: String::new(),
            vendor: if i == 0 { "HP" } else { "Espressif Inc." }.into(),
            ip: format!("192.168.50.{}", 30 + i),
            is_wl: if i == 0 { 0 } else { 1 },
            rssi: if i == 0 { 0 } else { -61 },
            online: true,
        });
    }
    clients
}

/// Where a household's files live (vnstat documents, the bridge's state, mosquitto's config):
/// one directory per demo, also when a process runs several (tests).
pub fn scratch_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("bandwidth2mqtt-demo-{}-{n}", std::process::id()))
}

/// Ground truth by MAC, for the driver.
pub type Truth = BTreeMap<MacAddr, (u64, u64)>;
