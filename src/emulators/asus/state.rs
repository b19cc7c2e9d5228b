//! The emulated router's state: identity, clients, byte counters since boot, sessions and the
//! login lock, plus the knobs tests turn (faults, reboot, counter width).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::traffic::{RouterClock, Stamping, Talker, TrafficDb};
use crate::model::MacAddr;

/// How the emulated router is built.
#[derive(Debug, Clone)]
pub struct AsusConfig {
    pub username: String,
    pub password: String,
    pub model: String,
    pub firmver: String,
    pub buildno: String,
    pub extendno: String,
    pub mac: MacAddr,
    pub lan_ip: String,
    pub wan_ip: String,
    /// Older, non-HND models keep 32-bit counters that wrap at 4 GiB.
    pub counters_32_bit: bool,
    /// Newer firmware over HTTPS names the cookie `asus_s_token`.
    pub secure_cookie_name: bool,
    /// Firmware that only offers the nonce login (`login.cgi` answers 404).
    pub nonce_login_only: bool,
    /// Dual WAN on Merlin lists `INTERNET_rx/tx` twice; the last pair is the active WAN.
    pub duplicate_internet_keys: bool,
    /// Firmware that does not know a hook still writes its separator (`{ ,`).
    pub empty_member_quirk: bool,
    /// Tokens the router keeps before evicting the oldest.
    pub max_sessions: usize,
    /// Failed logins before the account is locked, and for how long.
    pub lock_after: u32,
    pub lock_for: Duration,
    pub traffic_analyzer: bool,
    pub clients: usize,
    pub seed: u64,
    /// Generate client traffic continuously (minute by minute on the router clock) into the
    /// Traffic Analyzer and the WAN counters; off, traffic only moves when a test adds it.
    pub live_traffic: bool,
    /// Router seconds per real second (360 = an hour every 10 s), and where the clock starts.
    pub clock_speed: f64,
    pub clock_start: Option<i64>,
    /// Instead: the clock moves this many seconds at every `appGet.cgi` (every poll) and stands
    /// still in between, so all requests of a poll see one instant.
    pub clock_step: Option<i64>,
    /// Adaptive QoS's Bandwidth Monitor page `getTraffic.asp` (off: HTTP 404, as on a router
    /// with QoS off; asus.md §5).
    pub traffic_monitor: bool,
    /// `getTraffic.asp` counters wrap at 2^32 (unverified on hardware; both are handled).
    pub live_counters_32_bit: bool,
    /// The DNS-based analyzer (`rc_support` has `dns_dpi`): `_Dns` pages, `dns_dpi_trf_analysis`.
    pub dns_analyzer: bool,
    /// The first this many clients send exactly their typical bytes every minute.
    pub steady_clients: usize,
    /// How the Traffic Analyzer stamps its rows: at the end of their hour, as the router's GPL
    /// sources say (the default), or at its start (asus.md §6.4).
    pub ta_stamping: Stamping,
}

impl Default for AsusConfig {
    fn default() -> Self {
        Self {
            username: "admin".into(),
            password: "router-pass".into(),
            model: "RT-AX86U Pro".into(),
            firmver: "3.0.0.4".into(),
            buildno: "388".into(),
            extendno: "24353-g1c2d3e4".into(),
            mac: MacAddr::new([0x04, 0x42, 0x1a, 0x10, 0x20, 0x30]),
            lan_ip: "192.168.50.1".into(),
            wan_ip: "203.0.113.7".into(),
            counters_32_bit: false,
            secure_cookie_name: false,
            nonce_login_only: false,
            duplicate_internet_keys: false,
            empty_member_quirk: false,
            max_sessions: 8,
            lock_after: 5,
            lock_for: Duration::from_secs(300),
            traffic_analyzer: true,
            clients: 12,
            seed: 1,
            live_traffic: false,
            clock_speed: 1.0,
            clock_start: None,
            clock_step: None,
            traffic_monitor: false,
            live_counters_32_bit: false,
            dns_analyzer: false,
            steady_clients: 0,
            ta_stamping: Stamping::End,
        }
    }
}

/// Faults of the Traffic Analyzer pages only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaFault {
    /// The statistics pages answer `[]` / zero buckets, as after a database reset.
    Empty,
    /// Replies are cut in the middle.
    Truncated,
}

/// What a request runs into, set by tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 on every page.
    ServerError,
    /// 200 with a body that is not the page.
    Garbage,
    /// The reply is cut in the middle.
    Truncated,
    /// Replies take this long.
    Slow(Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmuClient {
    pub mac: MacAddr,
    pub name: String,
    pub nick: String,
    pub vendor: String,
    pub ip: String,
    /// 0 wired, 1 2.4 GHz, 2 5 GHz, 3 second 5 GHz / 6 GHz.
    pub is_wl: u8,
    pub rssi: i32,
    pub online: bool,
}

/// Counts that tests assert on.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub logins: u64,
    pub failed_logins: u64,
    pub logouts: u64,
    /// Requests per path (without the query).
    pub requests: BTreeMap<String, u64>,
    /// The User-Agent of the last request.
    pub last_user_agent: String,
    /// Every raw `appGet.cgi` hook field seen, for checking the encoding.
    pub hook_fields: Vec<String>,
}

/// Faults of `getTraffic.asp` only (bad input the bridge must skip entry by entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFaults {
    /// Raw entries appended to `array_traffic` (garbage, non-numeric, negative, unknown MACs).
    pub extra_entries: Vec<String>,
    /// The reply is cut in the middle of its last entry.
    pub truncated: bool,
    /// The next reply only is odd this way (issue 22 §1); the one after is normal again.
    pub odd_once: Option<OddTable>,
    /// Bytes of JavaScript comment appended to the page (a router serving a huge reply).
    pub padding: usize,
}

/// One odd `getTraffic.asp` table between normal ones, as a half-initialised page after a
/// service restart might serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OddTable {
    /// `array_traffic = []` (and the router's pair at zero).
    Empty,
    /// Every counter, and the router's pair, at a thousandth of its value.
    Thousandth,
    /// Every MAC listed twice, the second copy at half its counters.
    Twice,
}

/// Every client's lifetime `(rx, tx)` by upper-case MAC.
pub type Truths = BTreeMap<String, (u64, u64)>;

pub struct RouterState {
    pub config: AsusConfig,
    pub clients: Vec<EmuClient>,
    /// Bytes since boot, never wrapped (the reply wraps them for 32-bit models).
    pub wan_rx: u64,
    pub wan_tx: u64,
    /// Every byte ever carried, across reboots: the ground truth.
    pub lifetime_rx: u64,
    pub lifetime_tx: u64,
    pub booted_at: SystemTime,
    pub sessions: VecDeque<String>,
    pub failures: u32,
    pub locked_until: Option<SystemTime>,
    pub fault: Option<Fault>,
    pub ta_fault: Option<TaFault>,
    /// Powered off ([`super::AsusEmulator::set_down`]): a request already in flight gets no
    /// answer, as from a router that just died, instead of racing the test's next change.
    pub down: bool,
    pub stats: Stats,
    pub cpu_total: u64,
    pub cpu_busy: u64,
    /// Nonces handed out by `get_Nonce.cgi`, by the client's id.
    pub nonces: BTreeMap<String, String>,
    /// The router's clock (what `uptime()` shows and the Traffic Analyzer stamps rows with).
    pub clock: RouterClock,
    pub ta: TrafficDb,
    pub live_faults: LiveFaults,
    /// With a stepping clock: every client's truth `(rx, tx)` at each step, by upper-case MAC.
    pub truth_log: Vec<(i64, Truths)>,
    rng: u64,
}

const NAMES: [(&str, &str, u8); 12] = [
    ("Pixel-8", "Google", 2),
    ("MacBook-Air", "Apple", 2),
    ("Living-Room-TV", "Samsung", 0),
    ("ESP_3A9F10", "Espressif Inc.", 1),
    ("iPhone", "Apple", 3),
    ("NAS", "Synology", 0),
    ("Work-Laptop", "Dell", 2),
    ("Printer", "HP", 1),
    ("Deco-X50", "TP-LINK", 0),
    ("Thermostat", "Nest", 1),
    ("Galaxy-Tab", "Samsung", 2),
    ("Chromecast", "Google", 2),
];

impl RouterState {
    pub fn new(config: AsusConfig) -> Self {
        let mut state = Self {
            clients: Vec::new(),
            wan_rx: 0,
            wan_tx: 0,
            lifetime_rx: 0,
            lifetime_tx: 0,
            booted_at: SystemTime::now() - Duration::from_secs(86_400 * 3 + 4242),
            sessions: VecDeque::new(),
            failures: 0,
            locked_until: None,
            fault: None,
            ta_fault: None,
            down: false,
            stats: Stats::default(),
            cpu_total: 1_000_000,
            cpu_busy: 50_000,
            nonces: BTreeMap::new(),
            clock: match (config.clock_start, config.clock_step) {
                (start, Some(step)) => RouterClock::stepping(start.unwrap_or_else(|| RouterClock::real().now()), step),
                (Some(start), None) => RouterClock::starting_at(start, config.clock_speed),
                (None, None) => RouterClock::starting_at(RouterClock::real().now(), config.clock_speed),
            },
            ta: TrafficDb::with_stamping(config.seed, config.ta_stamping),
            live_faults: LiveFaults::default(),
            truth_log: Vec::new(),
            rng: config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            config,
        };
        for i in 0..state.config.clients {
            let (base, vendor, is_wl) = NAMES[i % NAMES.len()];
            let name = if i < NAMES.len() {
                base.to_owned()
            } else {
                format!("{base}-{}", i / NAMES.len() + 1)
            };
            let rssi = if is_wl == 0 {
                0
            } else {
                -35 - (state.random() % 45) as i32
            };
            state.clients.push(EmuClient {
                mac: MacAddr::new([0x02, 0x1a, 0x11, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
                nick: if i % 3 == 0 {
                    name.replace('-', " ")
                } else {
                    String::new()
                },
                name,
                vendor: vendor.to_owned(),
                ip: format!("192.168.50.{}", 10 + i % 240),
                is_wl,
                rssi,
                online: i % 5 != 4,
            });
        }
        state
    }

    /// xorshift: deterministic variety without a dependency on the caller's randomness.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Brings the live traffic model up to the router's current time.
    pub fn advance(&mut self) {
        if !self.config.live_traffic {
            // Saves fall due with time, traffic or not.
            self.ta.catch_up(self.clock.now());
            return;
        }
        let talkers: Vec<Talker> = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| Talker {
                mac: c.mac.to_string(),
                online: c.online,
                per_minute: 2_000_000 + (i as u64 % 7) * 1_500_000,
                steady: i < self.config.steady_clients,
            })
            .collect();
        let (rx, tx) = self.ta.generate(&talkers, self.clock.now());
        self.add_traffic(rx, tx);
    }

    /// A poll begins (`appGet.cgi`): a stepping clock moves, traffic catches up, and the truth
    /// at this instant is logged.
    pub fn poll_tick(&mut self) {
        if !self.clock.is_stepping() {
            return;
        }
        self.clock.tick();
        self.advance();
        let now = self.clock.now();
        let truth = self
            .clients
            .iter()
            .map(|c| {
                let mac = c.mac.to_string().to_uppercase();
                let t = self.ta.truth(&mac);
                (mac, t)
            })
            .collect();
        self.truth_log.push((now, truth));
    }

    /// The DPI engine restarts: every live counter starts from zero (the rows stay); the
    /// statistics scheduler saves when it stops and 120 s after it starts again.
    pub fn dpi_restart(&mut self) {
        self.advance();
        self.ta.scheduler_restart(self.clock.now());
        self.ta.live.clear();
    }

    /// `getTraffic.asp`'s counters `[tx, rx]` per upper-case MAC, 32-bit on such models.
    pub fn live_counters(&self) -> Vec<(String, [u64; 2])> {
        let mask = if self.config.live_counters_32_bit {
            0xffff_ffff
        } else {
            u64::MAX
        };
        self.ta
            .live
            .iter()
            .map(|(mac, [tx, rx])| (mac.clone(), [tx & mask, rx & mask]))
            .collect()
    }

    /// Traffic of one client, booked in the Traffic Analyzer now and carried by the WAN.
    pub fn add_client_traffic(&mut self, mac: MacAddr, app: &str, rx: u64, tx: u64) {
        let now = self.clock.now();
        self.add_client_traffic_at(mac, app, now, rx, tx);
    }

    /// [`Self::add_client_traffic`] at router time `at_s`: what a client moved since the router
    /// booted, before the emulator started (book it oldest first, before any traffic of now).
    pub fn add_client_traffic_at(&mut self, mac: MacAddr, app: &str, at_s: i64, rx: u64, tx: u64) {
        self.ta.record(&mac.to_string(), app, at_s, rx, tx);
        self.add_traffic(rx, tx);
    }

    /// When the router booted, on its own clock.
    pub fn booted_at_router_s(&self) -> i64 {
        self.clock.now() - i64::try_from(self.uptime()).unwrap_or(0)
    }

    /// Traffic through the WAN port (a client's download is the router's WAN download).
    pub fn add_traffic(&mut self, rx: u64, tx: u64) {
        self.wan_rx = self.wan_rx.saturating_add(rx);
        self.wan_tx = self.wan_tx.saturating_add(tx);
        self.lifetime_rx = self.lifetime_rx.saturating_add(rx);
        self.lifetime_tx = self.lifetime_tx.saturating_add(tx);
        // The CPU works a little for every packet.
        self.cpu_total += 400;
        self.cpu_busy += 20 + (rx + tx) / 1_000_000;
    }

    /// The WAN counters as netdev shows them: wrapped at 2^32 on 32-bit models.
    pub fn netdev_wan(&self) -> (u64, u64) {
        if self.config.counters_32_bit {
            (self.wan_rx & 0xffff_ffff, self.wan_tx & 0xffff_ffff)
        } else {
            (self.wan_rx, self.wan_tx)
        }
    }

    pub fn uptime(&self) -> u64 {
        SystemTime::now()
            .duration_since(self.booted_at)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// Counters and sessions restart; the lifetime truth does not.
    pub fn reboot(&mut self) {
        self.wan_rx = 0;
        self.wan_tx = 0;
        // The DPI engine starts again with the router; the statistics scheduler saved when it
        // stopped and saves again 120 s after boot.
        self.advance();
        self.ta.scheduler_restart(self.clock.now());
        self.ta.live.clear();
        self.sessions.clear();
        self.booted_at = SystemTime::now();
        self.cpu_total = 0;
        self.cpu_busy = 0;
    }

    pub fn new_token(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..32)
            .map(|_| ALPHABET[(self.random() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    pub fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
