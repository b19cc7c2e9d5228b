//! The Traffic Analyzer's database and the traffic that fills it (asus.md §6).
//!
//! Rows are `(mac, app, stamp, tx, rx)`. How a row is stamped follows the router's GPL sources
//! (asus.md §6.4): the writer saves what the engine counted since its previous save and stamps
//! the row with the time of writing, at the top of every hour (a few seconds late) and at
//! irregular times: 120 s after the scheduler starts (boot, service restart) and when it stops.
//! So a row stamped 21:00:05 holds 20:00–21:00 ([`Stamping::End`], the default). Firmware that
//! stamps a growing row with the start of its hour ([`Stamping::Start`], what an earlier spec
//! guessed) is served too, so the bridge can be tested against both. A model generates each
//! online client's traffic minute by minute on the router's clock, which tests can run fast (an
//! hour in seconds); the rows are the ground truth the bridge's totals must match. The pages
//! answer with the firmware's SQL bucket rules: bucket i of a 24-hour window ending at `date`
//! holds rows stamped BETWEEN `(date+30) − 3600·(24−i)` and `(date+30) − 3600·(23−i)`, both ends
//! inclusive.

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

/// How the router stamps its rows (asus.md §6.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stamping {
    /// Stamped when written, holding the bytes since the previous write (the GPL sources).
    #[default]
    End,
    /// Stamped with the start of the hour, growing while the hour is open.
    Start,
}

/// Seconds after the top of the hour at which the hourly save stamps its row.
pub const WRITE_DELAY_S: i64 = 5;
/// The scheduler's first save after it starts (boot, service restart).
pub const FIRST_SAVE_AFTER_START_S: i64 = 120;

#[derive(Debug, Default)]
pub struct TrafficDb {
    /// (mac as stored, app, stamp) → [tx, rx].
    rows: BTreeMap<(String, String, i64), [u64; 2]>,
    pub stamping: Stamping,
    /// End stamping: bytes counted since the last save, per (mac as stored, app).
    unsaved: BTreeMap<(String, String), [u64; 2]>,
    /// End stamping: the last top of the hour whose save is done.
    saved_through: Option<i64>,
    /// End stamping: irregular saves still to come (scheduler start + 120 s).
    irregular: BTreeSet<i64>,
    /// The router's clock as last seen: rows stamped later are not written yet.
    now_s: Option<i64>,
    /// Hours whose rows the router has not written yet (a late flush), by the top of the hour
    /// the row's stamp falls in.
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

    pub fn with_stamping(seed: u64, stamping: Stamping) -> Self {
        Self {
            stamping,
            ..Self::new(seed)
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

    /// End stamping: every save due at or before `t` is done (bytes booked before a save's
    /// moment are in it); the clock as the pages see it moves to `t`.
    pub fn catch_up(&mut self, t: i64) {
        self.now_s = Some(self.now_s.map_or(t, |n| n.max(t)));
        if self.stamping != Stamping::End {
            return;
        }
        let Some(mut through) = self.saved_through else {
            self.saved_through = Some(t - t.rem_euclid(3600));
            return;
        };
        loop {
            let regular = through + 3600;
            let next_irregular = self.irregular.first().copied().filter(|&i| i < regular);
            let at = next_irregular.unwrap_or(regular);
            if at > t {
                break;
            }
            match next_irregular {
                Some(i) => {
                    self.irregular.remove(&i);
                    self.save(i);
                }
                None => {
                    self.save(regular + WRITE_DELAY_S);
                    through = regular;
                }
            }
        }
        self.saved_through = Some(through);
    }

    fn save(&mut self, stamp: i64) {
        for ((mac, app), v) in std::mem::take(&mut self.unsaved) {
            let row = self.rows.entry((mac, app, stamp)).or_insert([0, 0]);
            row[0] += v[0];
            row[1] += v[1];
        }
    }

    /// The statistics scheduler stops and starts again at `t` (a service restart or a
    /// reboot): End stamping saves what it holds now and again 120 s after the start.
    pub fn scheduler_restart(&mut self, t: i64) {
        if self.stamping != Stamping::End {
            return;
        }
        self.catch_up(t);
        self.save(t);
        self.irregular.insert(t + FIRST_SAVE_AFTER_START_S);
    }

    /// Books traffic at router time `at_s`.
    pub fn record(&mut self, mac: &str, app: &str, at_s: i64, rx: u64, tx: u64) {
        let stored = self.stored_mac(mac);
        match self.stamping {
            Stamping::Start => {
                let hour = at_s - at_s.rem_euclid(3600);
                let row = self.rows.entry((stored, app.to_owned(), hour)).or_insert([0, 0]);
                row[0] += tx;
                row[1] += rx;
            }
            Stamping::End => {
                self.catch_up(at_s);
                let v = self.unsaved.entry((stored, app.to_owned())).or_insert([0, 0]);
                v[0] += tx;
                v[1] += rx;
            }
        }
        let live = self.live.entry(mac.to_uppercase()).or_insert([0, 0]);
        live[0] += tx;
        live[1] += rx;
    }

    /// Runs the traffic model up to router time `now_s`, minute by minute; returns the WAN
    /// bytes it generated so the router's own counters move along.
    pub fn generate(&mut self, talkers: &[Talker], now_s: i64) -> (u64, u64) {
        let Some(mut t) = self.generated_until else {
            self.generated_until = Some(now_s);
            self.catch_up(now_s);
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
        self.catch_up(now_s);
        (wan_rx, wan_tx)
    }

    fn visible(&self) -> impl Iterator<Item = (&(String, String, i64), &[u64; 2])> {
        self.rows.iter().filter(|((_, _, stamp), _)| {
            !self.delayed.contains(&(stamp - stamp.rem_euclid(3600)))
                && (self.stamping == Stamping::Start || self.now_s.is_none_or(|now| *stamp <= now))
        })
    }

    /// Every byte ever booked for `mac` (any spelling), saved or not yet: the ground truth.
    pub fn truth(&self, mac: &str) -> (u64, u64) {
        let saved = self
            .rows
            .iter()
            .filter(|((m, _, _), _)| m.eq_ignore_ascii_case(mac))
            .map(|(_, v)| v);
        let unsaved = self
            .unsaved
            .iter()
            .filter(|((m, _), _)| m.eq_ignore_ascii_case(mac))
            .map(|(_, v)| v);
        saved.chain(unsaved).fold((0, 0), |(rx, tx), v| (rx + v[1], tx + v[0]))
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
    fn start_stamped_buckets_follow_the_firmware_window_rules() {
        let mut db = TrafficDb::with_stamping(1, Stamping::Start);
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
    fn end_stamped_rows_hold_the_hour_before_their_stamp() {
        let mac = "AA:BB:CC:DD:EE:01";
        let mut db = TrafficDb::new(1);
        let h = 1_795_554_000; // an hour boundary
        db.catch_up(h - 7200 + 600);
        db.record(mac, "Zoom", h - 3600 + 5, 50, 2);
        db.record(mac, "Zoom", h - 60, 30, 3);
        // Before the save at h + 5 the hour before h is in no row.
        db.catch_up(h + 2);
        let window = h + 3600 - 31;
        assert_eq!(db.hour_buckets(Some(mac), window)[23], [0, 0]);
        db.record(mac, "Zoom", h + 10, 100, 1);
        db.catch_up(h + 600);
        let b = db.hour_buckets(Some(mac), window);
        // The row stamped h + 5 holds [h − 1 h, h); the hour in progress is in no bucket.
        assert_eq!((b[23], b[22]), ([5, 80], [0, 0]));
        assert_eq!(db.truth(mac), (180, 6), "unsaved bytes are truth too");
        // A service restart at h + 1200 saves at once and 120 s after the start.
        db.record(mac, "Zoom", h + 1300, 7, 0);
        db.scheduler_restart(h + 1500);
        db.record(mac, "Zoom", h + 1560, 9, 0);
        db.catch_up(h + 1500 + FIRST_SAVE_AFTER_START_S);
        db.record(mac, "Zoom", h + 1700, 11, 0);
        let b = db.hour_buckets(Some(mac), window);
        assert_eq!(
            b[23],
            [6, 80 + 100 + 7 + 9],
            "the irregular rows are in the hour they were written"
        );
        db.catch_up(h + 3600 + WRITE_DELAY_S);
        let b = db.hour_buckets(Some(mac), window + 3600);
        assert_eq!(b[23], [0, 11]);
        assert_eq!(db.truth(mac), (207, 6));
    }

    #[test]
    fn delayed_hours_stay_invisible_but_count_as_truth() {
        let mut db = TrafficDb::with_stamping(1, Stamping::Start);
        db.record("AA:BB:CC:DD:EE:01", "Zoom", 7200, 10, 1);
        db.delayed.insert(7200);
        assert_eq!(db.hour_buckets(None, 10_800 - 31)[23], [0, 0]);
        assert_eq!(db.truth("AA:BB:CC:DD:EE:01"), (10, 1));
    }
}
