//! The Traffic Analyzer's database and the traffic that fills it (asus.md §6).
//!
//! Rows are `(mac, app, hour, tx, rx)`, stamped at the start of their hour, growing while the
//! hour is open. A model generates each online client's traffic minute by minute on the
//! router's clock, which tests can run fast (an hour in seconds); the rows are the ground
//! truth the bridge's totals must match. The pages answer with the firmware's SQL bucket rules:
//! bucket i of a 24-hour window ending at `date` holds rows stamped BETWEEN
//! `(date+30) − 3600·(24−i)` and `(date+30) − 3600·(23−i)`, both ends inclusive.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

/// The router's wall clock, optionally running faster than real time, or stepping a fixed
/// amount at every poll (so that all requests of one poll see the same instant).
#[derive(Debug, Clone)]
pub struct RouterClock {
    base_real: SystemTime,
    base_router_s: i64,
    speed: f64,
    /// Stepping clocks: seconds added at each [`RouterClock::tick`]; the clock stands still
    /// in between.
    step_s: Option<i64>,
}

impl RouterClock {
    pub fn real() -> Self {
        Self::starting_at(unix_now(), 1.0)
    }

    /// A clock that reads `start_s` now and advances `speed` router seconds per real second.
    pub fn starting_at(start_s: i64, speed: f64) -> Self {
        Self {
            base_real: SystemTime::now(),
            base_router_s: start_s,
            speed,
            step_s: None,
        }
    }

    /// A clock that reads `start_s` and moves `step_s` at every [`RouterClock::tick`] only.
    pub fn stepping(start_s: i64, step_s: i64) -> Self {
        Self {
            step_s: Some(step_s),
            ..Self::starting_at(start_s, 0.0)
        }
    }

    /// One poll's step (nothing for a running clock).
    pub fn tick(&mut self) {
        if let Some(step) = self.step_s {
            self.base_router_s += step;
        }
    }

    /// Moves the clock on by `secs` (tests: time passing while the router is down).
    pub fn advance(&mut self, secs: i64) {
        self.base_router_s += secs;
    }

    pub fn is_stepping(&self) -> bool {
        self.step_s.is_some()
    }

    pub fn now(&self) -> i64 {
        if self.step_s.is_some() {
            return self.base_router_s;
        }
        let elapsed = SystemTime::now()
            .duration_since(self.base_real)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.base_router_s + (elapsed * self.speed) as i64
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub const APPS: [&str; 8] = [
    "YouTube",
    "Netflix",
    "Zoom",
    "iCloud",
    "WhatsApp",
    "Spotify",
    "Steam",
    "General HTTPS",
];

/// One client as the traffic model sees it.
#[derive(Debug, Clone)]
pub struct Talker {
    pub mac: String,
    pub online: bool,
    /// Typical download bytes per minute; uploads are a tenth.
    pub per_minute: u64,
    /// Exactly `per_minute` every minute instead of bursts (a camera, a backup).
    pub steady: bool,
}

#[derive(Debug, Default)]
pub struct TrafficDb {
    /// (mac as stored, app, hour start) → [tx, rx].
    rows: BTreeMap<(String, String, i64), [u64; 2]>,
    /// Hours whose rows the router has not written yet (a late flush).
    pub delayed: BTreeSet<i64>,
    /// Router time up to which the model has generated traffic.
    generated_until: Option<i64>,
    /// Store MACs lower-case (the bridge must use the spelling the router lists).
    pub lowercase_macs: bool,
    /// The DPI engine's running `[tx, rx]` per client (`getTraffic.asp`), by upper-case MAC;
    /// they start from zero when the engine restarts. Same bytes as the rows.
    pub live: BTreeMap<String, [u64; 2]>,
    rng: u64,
}

impl TrafficDb {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1,
            ..Self::default()
        }
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn stored_mac(&self, mac: &str) -> String {
        if self.lowercase_macs {
            mac.to_lowercase()
        } else {
            mac.to_uppercase()
        }
    }

    /// Books traffic at router time `at_s` (the row of that hour grows).
    pub fn record(&mut self, mac: &str, app: &str, at_s: i64, rx: u64, tx: u64) {
        let hour = at_s - at_s.rem_euclid(3600);
        let row = self
            .rows
            .entry((self.stored_mac(mac), app.to_owned(), hour))
            .or_insert([0, 0]);
        row[0] += tx;
        row[1] += rx;
        let live = self.live.entry(mac.to_uppercase()).or_insert([0, 0]);
        live[0] += tx;
        live[1] += rx;
    }

    /// Runs the traffic model up to router time `now_s`, minute by minute; returns the WAN
    /// bytes it generated so the router's own counters move along.
    pub fn generate(&mut self, talkers: &[Talker], now_s: i64) -> (u64, u64) {
        let Some(mut t) = self.generated_until else {
            self.generated_until = Some(now_s);
            return (0, 0);
        };
        let (mut wan_rx, mut wan_tx) = (0, 0);
        while t + 60 <= now_s {
            for talker in talkers.iter().filter(|k| k.online) {
                if talker.steady {
                    let rx = talker.per_minute;
                    let tx = rx / 10;
                    self.record(&talker.mac, "General HTTPS", t, rx, tx);
                    wan_rx += rx;
                    wan_tx += tx;
                    continue;
                }
                // Bursty: most minutes are quiet, some are heavy.
                let roll = self.random() % 100;
                let factor = match roll {
                    0..=59 => 1,
                    60..=89 => 4,
                    _ => 20,
                };
                let rx = talker.per_minute / 8 * factor + self.random() % 1000;
                let tx = rx / 10 + self.random() % 100;
                let app = APPS[(self.random() % APPS.len() as u64) as usize];
                self.record(&talker.mac, app, t, rx, tx);
                wan_rx += rx;
                wan_tx += tx;
            }
            t += 60;
        }
        self.generated_until = Some(t);
        (wan_rx, wan_tx)
    }

    fn visible(&self) -> impl Iterator<Item = (&(String, String, i64), &[u64; 2])> {
        self.rows.iter().filter(|((_, _, h), _)| !self.delayed.contains(h))
    }

    /// Every byte ever booked for `mac` (any spelling), visible or not yet: the ground truth.
    pub fn truth(&self, mac: &str) -> (u64, u64) {
        self.rows
            .iter()
            .filter(|((m, _, _), _)| m.eq_ignore_ascii_case(mac))
            .fold((0, 0), |(rx, tx), (_, v)| (rx + v[1], tx + v[0]))
    }

    /// Hourly `[tx, rx]` pairs, 24 of them, for one stored MAC or everything (`None`).
    pub fn hour_buckets(&self, mac: Option<&str>, date: i64) -> Vec<[u64; 2]> {
        let end = date + 30;
        (0..24)
            .map(|i| {
                let lo = end - 3600 * (24 - i);
                let hi = end - 3600 * (23 - i);
                self.visible()
                    .filter(|((m, _, h), _)| mac.is_none_or(|x| x == m) && (lo..=hi).contains(h))
                    .fold([0, 0], |acc, (_, v)| [acc[0] + v[0], acc[1] + v[1]])
            })
            .collect()
    }

    /// The DNS-based analyzer's hourly pairs: `date` rounded down to the hour, buckets aligned
    /// to the hour, `[start, start + 3600)`.
    pub fn hour_buckets_dns(&self, mac: Option<&str>, date: i64) -> Vec<[u64; 2]> {
        let end = date - date.rem_euclid(3600);
        (0..24)
            .map(|i| {
                let lo = end - 3600 * (24 - i);
                self.visible()
                    .filter(|((m, _, h), _)| mac.is_none_or(|x| x == m) && (lo..lo + 3600).contains(h))
                    .fold([0, 0], |acc, (_, v)| [acc[0] + v[0], acc[1] + v[1]])
            })
            .collect()
    }

    /// Daily pairs (7 or 31), oldest first.
    pub fn day_buckets(&self, mac: Option<&str>, date: i64, days: i64) -> Vec<[u64; 2]> {
        let end = date + 30;
        (0..days)
            .map(|i| {
                let lo = end - 86_400 * (days - i);
                let hi = end - 86_400 * (days - 1 - i);
                self.visible()
                    .filter(|((m, _, h), _)| mac.is_none_or(|x| x == m) && (lo..=hi).contains(h))
                    .fold([0, 0], |acc, (_, v)| [acc[0] + v[0], acc[1] + v[1]])
            })
            .collect()
    }

    /// Sums over `[date+30 − span, date+30]` grouped by app (for one MAC or all) or by MAC.
    pub fn detail(&self, by_mac: bool, filter: Option<&str>, date: i64, span: i64) -> Vec<(String, u64, u64)> {
        let end = date + 30;
        let mut groups: BTreeMap<String, [u64; 2]> = BTreeMap::new();
        for ((mac, app, hour), v) in self.visible() {
            if !(end - span..=end).contains(hour) {
                continue;
            }
            let (key, matches) = if by_mac {
                (mac.clone(), filter.is_none_or(|f| f == app))
            } else {
                (app.clone(), filter.is_none_or(|f| f == mac))
            };
            if matches {
                let g = groups.entry(key).or_insert([0, 0]);
                g[0] += v[0];
                g[1] += v[1];
            }
        }
        groups.into_iter().map(|(k, v)| (k, v[0], v[1])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_firmware_window_rules() {
        let mut db = TrafficDb::new(1);
        let h = 1_795_554_000; // an hour boundary
        db.record("AA:BB:CC:DD:EE:01", "Zoom", h + 10, 100, 1);
        db.record("AA:BB:CC:DD:EE:01", "Zoom", h - 3600 + 5, 50, 2);
        // The bridge asks for the window that ends 1 s before the next hour: each row in one bucket.
        let b = db.hour_buckets(Some("AA:BB:CC:DD:EE:01"), h + 3600 - 31);
        assert_eq!(b.len(), 24);
        assert_eq!((b[23], b[22], b[21]), ([1, 100], [2, 50], [0, 0]));
        // A window ending exactly on the hour counts the row at h − 3600 twice (inclusive
        // BETWEEN): in bucket 22 and bucket 23, which also holds the row at h.
        let b = db.hour_buckets(Some("AA:BB:CC:DD:EE:01"), h - 30);
        assert_eq!((b[23], b[22]), ([3, 150], [2, 50]));
        assert_eq!(db.truth("aa:bb:cc:dd:ee:01"), (150, 3));
        let by_mac = db.detail(true, None, h + 3600, 86_400);
        assert_eq!(by_mac, vec![("AA:BB:CC:DD:EE:01".to_owned(), 3, 150)]);
    }

    #[test]
    fn delayed_hours_stay_invisible_but_count_as_truth() {
        let mut db = TrafficDb::new(1);
        db.record("AA:BB:CC:DD:EE:01", "Zoom", 7200, 10, 1);
        db.delayed.insert(7200);
        assert_eq!(db.hour_buckets(None, 10_800 - 31)[23], [0, 0]);
        assert_eq!(db.truth("AA:BB:CC:DD:EE:01"), (10, 1));
    }
}
