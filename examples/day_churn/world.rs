//! The emulated household of the day run and its exact ground truth: the demo's ASUS (live
//! counters + Traffic Analyzer, stamping chosen) → Deco mesh in router mode → vnstat servers,
//! plus clients of the ASUS itself: steady ones (constant bytes a minute), bursty ones, and MAC
//! churn (new private, locally administered MACs arriving continuously, each online 10–30 min).
//!
//! Every byte of an ASUS client is booked here, once, into the router (live counter and
//! Analyzer rows at the router's current time) and into `exact` (the truth); every byte a Deco
//! client moves (the Deco's own models) is carried up to its server's vnstat and to the ASUS
//! as traffic of the Deco's WAN MAC, as the demo's driver does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use bandwidth2mqtt::demo::household::{ASUS_OWN, DECO_PASSWORD, DECO_WAN, SERVERS, deco_clients};
use bandwidth2mqtt::emulators::Server;
use bandwidth2mqtt::emulators::asus::{APPS, AsusConfig, AsusEmulator, EmuClient, Stamping};
use bandwidth2mqtt::emulators::deco::{self, ClientSpec, Clock, DecoEmulator, EmulatorConfig, Presence, Profile};
use bandwidth2mqtt::emulators::vnstat::{Interface, VnstatServer};
use bandwidth2mqtt::model::MacAddr;

pub const ROUTER_PASSWORD: &str = "day-router-password";
/// The Deco client the mesh lists offline (stale) every night 00:00–08:00 UTC.
pub const CONSOLE: MacAddr = MacAddr::new([0x3c, 0x22, 0xfb, 0x10, 0x00, 0x08]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The ASUS's own steady clients: exactly the same bytes every minute.
    Steady,
    /// The ASUS's own bursty clients.
    Bursty,
    /// The Deco's WAN MAC on the ASUS: everything behind the Deco.
    Uplink,
    /// A private MAC of the churn.
    Churn,
}

/// One ASUS client's truth.
#[derive(Debug, Clone)]
pub struct Exact {
    pub kind: Kind,
    pub name: String,
    pub rx: u64,
    pub tx: u64,
    /// Typical bytes a minute (download; upload a tenth).
    per_min: u64,
    /// Churn: router ms at which it stops sending, and at which the router stops listing it.
    pub quiet_at: i64,
    pub delist_at: i64,
    pub listed: bool,
}

pub struct World {
    pub asus: AsusEmulator,
    pub deco: DecoEmulator,
    _deco_server: Server,
    pub deco_url: String,
    pub vnstat: Vec<(MacAddr, VnstatServer)>,
    /// Every ASUS client ever, by MAC (churn included, also after it left).
    pub exact: BTreeMap<MacAddr, Exact>,
    /// The Deco's truth at the last tick (what has been carried up).
    last_deco: BTreeMap<MacAddr, (u64, u64)>,
    last_ms: i64,
    churn_per_min: f64,
    churn_carry: f64,
    pub churn_seen: u64,
    /// No more ASUS-own traffic nor arrivals (the end of the day, before the final reading).
    pub frozen: bool,
    rng: u64,
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

impl World {
    pub async fn start(dir: &Path, stamping: Stamping, churn_per_min: f64, now_ms: i64) -> std::io::Result<Self> {
        let mut clients = deco_clients();
        let mut console = ClientSpec::new(CONSOLE, "Game Console", 1, "wired", Profile::Laptop);
        console.ip = "192.168.68.120".into();
        console.presence = Presence::AwayDaily {
            from_s: 0,
            to_s: 8 * 3600,
        };
        console.offline = deco::OfflineListing::Stale;
        clients.push(console);
        let mut mesh = EmulatorConfig::new(DECO_PASSWORD, deco::home().0, clients, Clock::Real);
        mesh.wan.mac = DECO_WAN;
        let deco = DecoEmulator::new(mesh).map_err(std::io::Error::other)?;
        let deco_server = deco.serve(0, false).await?;
        let asus = AsusEmulator::start(
            AsusConfig {
                password: ROUTER_PASSWORD.into(),
                traffic_analyzer: true,
                traffic_monitor: true,
                clients: 0,
                live_traffic: false,
                ta_stamping: stamping,
                ..AsusConfig::default()
            },
            false,
        )
        .await?;
        let mut exact = BTreeMap::new();
        let mut listed = Vec::new();
        let mut fixed = |mac: MacAddr, name: &str, kind: Kind, per_min: u64, is_wl: u8| {
            exact.insert(
                mac,
                Exact {
                    kind,
                    name: name.into(),
                    rx: 0,
                    tx: 0,
                    per_min,
                    quiet_at: i64::MAX,
                    delist_at: i64::MAX,
                    listed: true,
                },
            );
            listed.push(emu_client(mac, name, is_wl, 20 + listed.len()));
        };
        fixed(DECO_WAN, "Deco-X50", Kind::Uplink, 0, 0);
        for (name, mac, rx_min, _) in ASUS_OWN {
            fixed(mac, name, Kind::Steady, rx_min, 1);
        }
        fixed(
            MacAddr::new([0x00, 0x11, 0x32, 0xaa, 0x00, 0x01]),
            "NVR",
            Kind::Steady,
            3_000_000,
            0,
        );
        fixed(
            MacAddr::new([0x00, 0x11, 0x32, 0xaa, 0x00, 0x02]),
            "Backup NAS",
            Kind::Steady,
            12_000_000,
            0,
        );
        fixed(
            MacAddr::new([0xa4, 0x83, 0xe7, 0xbb, 0x00, 0x01]),
            "Desktop PC",
            Kind::Bursty,
            8_000_000,
            0,
        );
        fixed(
            MacAddr::new([0xa4, 0x83, 0xe7, 0xbb, 0x00, 0x02]),
            "Smart TV",
            Kind::Bursty,
            20_000_000,
            2,
        );
        fixed(
            MacAddr::new([0xa4, 0x83, 0xe7, 0xbb, 0x00, 0x03]),
            "Laptop",
            Kind::Bursty,
            4_000_000,
            2,
        );
        asus.with(|r| r.clients = listed);

        let created = now_ms / 1000 - 200 * 86_400;
        let vnstat = SERVERS
            .iter()
            .map(|s| {
                let iface = Interface {
                    name: s.iface.into(),
                    rx: s.history.0,
                    tx: s.history.1,
                };
                let server = VnstatServer::new(&dir.join(format!("{}.json", s.key)), created, 60, vec![iface]);
                (s.mac, server)
            })
            .collect();
        Ok(Self {
            deco_url: deco_server.url(),
            asus,
            last_deco: deco.ground_truth(),
            deco,
            _deco_server: deco_server,
            vnstat,
            exact,
            // The first tick books one second, so the first poll sees every live counter.
            last_ms: now_ms - 1000,
            churn_per_min,
            churn_carry: 0.0,
            churn_seen: 0,
            frozen: false,
            rng: 0x9e37_79b9_7f4a_7c15,
        })
    }

    /// Moves the household to `now_ms` (the shared, faked clock).
    pub fn tick(&mut self, now_ms: i64) {
        let dt_s = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.last_ms = now_ms;
        let mut book: Vec<(MacAddr, &'static str, u64, u64)> = Vec::new();

        // Behind the Deco: carried up to vnstat and to the ASUS as the Deco's uplink.
        let truth = self.deco.ground_truth();
        for (mac, &(rx, tx)) in &truth {
            let (prx, ptx) = self.last_deco.get(mac).copied().unwrap_or((rx, tx));
            let (drx, dtx) = (rx.saturating_sub(prx), tx.saturating_sub(ptx));
            if drx == 0 && dtx == 0 {
                continue;
            }
            for (server_mac, server) in &mut self.vnstat {
                if server_mac == mac
                    && let Some(iface) = server.interfaces.first().map(|i| i.name.clone())
                {
                    server.add(&iface, drx, dtx);
                }
            }
            book.push((DECO_WAN, "General HTTPS", drx, dtx));
        }
        self.last_deco = truth;

        // The ASUS's own clients and the churn.
        let mut delist = Vec::new();
        for (mac, c) in self.exact.iter_mut() {
            if c.listed && now_ms >= c.delist_at {
                c.listed = false;
                delist.push(*mac);
            }
            if self.frozen || !c.listed || now_ms >= c.quiet_at || c.kind == Kind::Uplink {
                continue;
            }
            let base = c.per_min as f64 * dt_s / 60.0;
            let (rx, app) = match c.kind {
                Kind::Steady => (base as u64, "General HTTPS"),
                Kind::Churn => {
                    // One app per private MAC (its Analyzer rows stay few), bursty.
                    let roll = xorshift(&mut self.rng) % 100;
                    let factor = if roll < 70 { 0.5 } else { 2.2 };
                    (((base * factor) as u64), APPS[(c.per_min % APPS.len() as u64) as usize])
                }
                _ => {
                    let roll = xorshift(&mut self.rng) % 100;
                    let factor = match roll {
                        0..=59 => 0.3,
                        60..=89 => 1.5,
                        _ => 6.0,
                    };
                    let app = APPS[(xorshift(&mut self.rng) % APPS.len() as u64) as usize];
                    ((base * factor) as u64 + xorshift(&mut self.rng) % 1000, app)
                }
            };
            book.push((*mac, app, rx, rx / 10));
        }
        if !self.frozen {
            self.churn_carry += self.churn_per_min * dt_s / 60.0;
        }
        let mut arrivals = Vec::new();
        while self.churn_carry >= 1.0 {
            self.churn_carry -= 1.0;
            arrivals.push(self.new_churner(now_ms));
        }
        for (mac, _, rx, tx) in &book {
            if let Some(c) = self.exact.get_mut(mac) {
                c.rx += rx;
                c.tx += tx;
            }
        }
        self.asus.with(|router| {
            for (mac, app, rx, tx) in book {
                router.add_client_traffic(mac, app, rx, tx);
            }
            router.clients.retain(|c| !delist.contains(&c.mac));
            router.clients.extend(arrivals);
        });
        let now_s = now_ms.div_euclid(1000);
        for (_, server) in &mut self.vnstat {
            if let Err(e) = server.tick(now_s) {
                let _ = writeln!(std::io::stderr(), "day: cannot write a vnstat document: {e}");
            }
        }
    }

    fn new_churner(&mut self, now_ms: i64) -> EmuClient {
        let r = xorshift(&mut self.rng);
        let b = r.to_le_bytes();
        // Locally administered, unicast: a private address.
        let mac = MacAddr::new([(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]);
        let online_ms = (10 * 60 + (xorshift(&mut self.rng) % (20 * 60 + 1)) as i64) * 1000;
        let per_min = 100_000 + xorshift(&mut self.rng) % 2_000_000;
        self.churn_seen += 1;
        let n = self.churn_seen;
        self.exact.insert(
            mac,
            Exact {
                kind: Kind::Churn,
                name: format!("churn-{n}"),
                rx: 0,
                tx: 0,
                per_min,
                // Quiet for its last 2 minutes in the list, so the bridge's last poll of it
                // has every byte (a phone leaving goes quiet before the router drops it).
                quiet_at: now_ms + online_ms - 120_000,
                delist_at: now_ms + online_ms,
                listed: true,
            },
        );
        emu_client(mac, "", 2, (n % 200) as usize)
    }

    /// Every exact client's `(rx, tx)` now.
    pub fn exact_truth(&self) -> BTreeMap<MacAddr, (u64, u64)> {
        self.exact.iter().map(|(m, c)| (*m, (c.rx, c.tx))).collect()
    }

    /// Each vnstat server's interface counters now (history included).
    pub fn server_truth(&self) -> Vec<(&'static str, u64, u64)> {
        SERVERS
            .iter()
            .zip(&self.vnstat)
            .map(|(s, (_, v))| {
                let i = v.interfaces.first();
                (s.key, i.map_or(0, |i| i.rx), i.map_or(0, |i| i.tx))
            })
            .collect()
    }

    pub fn churn_listed(&self) -> usize {
        self.exact
            .values()
            .filter(|c| c.kind == Kind::Churn && c.listed)
            .count()
    }
}

fn emu_client(mac: MacAddr, name: &str, is_wl: u8, ip: usize) -> EmuClient {
    EmuClient {
        mac,
        name: name.into(),
        nick: String::new(),
        vendor: String::new(),
        ip: format!("192.168.50.{}", 20 + ip % 230),
        is_wl,
        rssi: if is_wl == 0 { 0 } else { -60 },
        online: true,
    }
}
