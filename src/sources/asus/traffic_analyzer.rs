//! The Traffic Analyzer: exact per-device bytes per hour from the router's own statistics
//! database (asus.md §6), which no other Home Assistant integration reads on stock firmware.
//!
//! Once per router hour, a minute after the hour's row is written, the refresh finds the devices
//! with data (`getAppTraffic.asp`, which also tells how the router spells their MACs) and asks
//! each for its last 24 hourly buckets (`getWanTraffic.asp … mode=hour`), with the window ending
//! 31 s before the next hour so every row lands in exactly one bucket. A row is stamped when it
//! is written and holds the bytes since the previous write (asus.md §6.4), so the bucket of rows
//! stamped in `[H, H + 1 h)` is filed under the hour before `H`; the hour in progress comes from
//! the live counters only. Where live counters run, they check that convention first
//! ([`row_stamps`](super::row_stamps)), and hours wait until they have. The requests are
//! spread over the polls of the first 20 minutes, one or a few at a time. Accounting folds the buckets
//! in by growth, so re-reading hours never counts twice. After an outage longer than a day,
//! earlier windows are fetched too (up to 30 days). Every 6 hours the per-app split of each device
//! is read for its `top_apps` attribute.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::js;
use super::row_stamps::{RowStamps, StampJudge, Verdict};
use super::session::{AsusError, Session};
use crate::model::{
    BucketSample, DeviceId, DeviceKind, HourBucket, LiveSample, MacAddr, Observation, TrafficReading, TrafficSample,
};

const HOUR: i64 = 3600;
const APPS_EVERY_HOURS: i64 = 6;
const MAX_CATCH_UP_WINDOWS: i64 = 30;
/// The refresh of one hour should be done within this much of it.
const SPREAD: Duration = Duration::from_secs(20 * 60);
const TOP_APPS: usize = 5;
/// The hour's row is written a few seconds after the top of the hour (+15 s in DST zones):
/// its refresh starts this long after.
const AFTER_WRITE_S: i64 = 60;
/// Refreshes whose hours wait for the live counters to confirm the row stamps (with a poll
/// every 30 s the first refresh after an hour boundary settles it); after this many without a
/// verdict (a quiet home), the router sources' convention is used.
const MAX_WITHHELD: u32 = 3;

/// What survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Router-time start of the last hour whose refresh completed.
    pub refreshed_hour: Option<i64>,
    /// The hour of the first refresh started since the last completed one: a refresh cut short
    /// by a restart or an outage still marks where coverage may have holes.
    #[serde(default)]
    pub pending_since: Option<i64>,
    pub apps_hour: Option<i64>,
    /// What the live counters showed about the row stamps.
    #[serde(default)]
    pub stamps: Verdict,
    /// Refreshes whose hours waited for that evidence.
    #[serde(default)]
    pub withheld: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Task {
    /// Which devices have data, and the router's spelling of their MACs.
    Discover { date: i64 },
    /// 24 hourly buckets of one device, window ending at `date` + 30.
    Hours { mac: MacAddr, date: i64 },
    /// Per-app bytes of one device over the last day.
    Apps { mac: MacAddr, date: i64 },
    /// The last 31 whole local days of one device (day_history.rs), once per run: its
    /// yesterday, this month and last month. `midnight`: the local midnight they end at.
    Days {
        mac: MacAddr,
        midnight: i64,
        today: jiff::civil::Date,
    },
}

/// Whether the router collects statistics, as far as we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Unknown,
    Enabled,
    /// `bwdpi_db_enable` is 0: Traffic Analyzer → Statistic is off on the router.
    DisabledOnRouter,
}

pub struct TrafficAnalyzer {
    router: DeviceId,
    source: String,
    pub availability: Availability,
    queue: VecDeque<Task>,
    /// The hour being refreshed (the cursor moves when its queue is done).
    refreshing: Option<i64>,
    cursor: Cursor,
    /// The device list was cut off at the last refresh (said once, until it reads again).
    list_cut: bool,
    /// MAC spellings the router uses in its database.
    stored: BTreeMap<MacAddr, String>,
    /// Devices to ask for hours in this refresh, found by discovery or the client list.
    wanted: Vec<MacAddr>,
    apps_due: bool,
    catch_up_from: Option<i64>,
    /// Requests made, for `bridge/info` and the notes on router load.
    pub requests: u64,
    /// The DNS-based analyzer's `_Dns` pages (asus.md §6.1, §6.5).
    dns: bool,
    /// The first refresh after a start runs at catch-up pace: as many requests per poll as fit
    /// in most of an interval, one at a time with a pause, so every device has its totals
    /// within two polls.
    catching_up: bool,
    /// `once`: every poll finishes the whole refresh.
    complete: bool,
    /// How the router stamps its rows, from the live counters.
    judge: StampJudge,
    /// The bridge's time zone (`[bridge] timezone`): where local days start. `None`: the daily
    /// history is not read.
    tz: Option<jiff::tz::TimeZone>,
    /// Devices whose daily history this run has asked for (one request each, once).
    days_asked: std::collections::BTreeSet<MacAddr>,
}

/// Between two requests of a catch-up: the router's web server does one thing at a time.
const CATCH_UP_PAUSE: Duration = Duration::from_millis(100);

impl TrafficAnalyzer {
    pub fn new(source: &str, router: DeviceId) -> Self {
        Self {
            router,
            source: source.to_owned(),
            availability: Availability::Unknown,
            queue: VecDeque::new(),
            refreshing: None,
            cursor: Cursor::default(),
            list_cut: false,
            stored: BTreeMap::new(),
            wanted: Vec::new(),
            apps_due: false,
            catch_up_from: None,
            requests: 0,
            dns: false,
            catching_up: true,
            complete: false,
            judge: StampJudge::default(),
            tz: None,
            days_asked: Default::default(),
        }
    }

    /// Where local days start: from then on each device's daily history is read once.
    pub fn set_time_zone(&mut self, tz: jiff::tz::TimeZone) {
        self.tz = Some(tz);
    }

    pub fn cursor(&self) -> Value {
        let cursor = Cursor {
            stamps: self.judge.verdict.clone(),
            ..self.cursor.clone()
        };
        serde_json::to_value(&cursor).unwrap_or(Value::Null)
    }

    pub fn restore(&mut self, cursor: &Value) {
        if let Ok(c) = serde_json::from_value::<Cursor>(cursor.clone()) {
            self.judge.verdict = c.stamps.clone();
            self.cursor = c;
        }
    }

    /// This poll's live counter samples: the evidence of how rows are stamped.
    pub fn observe_live(&mut self, samples: &[(MacAddr, LiveSample)]) {
        self.judge.observe(samples);
    }

    /// How rows are stamped as far as we know, for `bridge/info`.
    pub fn row_stamps(&self) -> &'static str {
        self.judge.describe()
    }

    /// Whether this refresh's hours wait for the live counters to confirm the row stamps.
    fn withholding(&self) -> bool {
        !self.complete
            && self.judge.verdict.seen.is_none()
            && self.judge.watching()
            && self.cursor.withheld < MAX_WITHHELD
    }

    /// Whether the router uses the DNS-based analyzer (its pages end in `_Dns`).
    pub fn set_dns(&mut self, dns: bool) {
        self.dns = dns;
    }

    /// Every poll finishes the refresh it starts (for `once`).
    pub fn complete_each_poll(&mut self) {
        self.complete = true;
    }

    pub fn last_refresh(&self) -> Option<i64> {
        self.cursor.refreshed_hour
    }

    /// `bwdpi_db_enable` as the poll read it; says so once when statistics are off.
    pub fn set_enabled_on_router(&mut self, enabled: Option<bool>) {
        match enabled {
            Some(false) if self.availability != Availability::DisabledOnRouter => {
                tracing::warn!(
                    source = %self.source,
                    device = %self.router,
                    "Traffic Analyzer statistics are off on the router (Traffic Analyzer → Statistic); per-device totals are unavailable, the rest of the router works."
                );
                self.availability = Availability::DisabledOnRouter;
                self.queue.clear();
                self.refreshing = None;
            }
            Some(true) => self.availability = Availability::Enabled,
            _ => {}
        }
    }

    /// Queues the refresh of the router hour containing `router_now` if it has not been done.
    /// `online` are the MACs the client list shows online now.
    fn schedule(&mut self, router_now: i64, online: &[MacAddr]) {
        let mut hour = router_now - router_now.rem_euclid(HOUR);
        // This hour's row is not written yet: the hour before is what can be read now (a poll
        // every hour on the hour still refreshes every hour; `once` takes what there is).
        if router_now - hour < AFTER_WRITE_S && !self.complete {
            hour -= HOUR;
        }
        if self.refreshing.is_some() || self.cursor.refreshed_hour == Some(hour) {
            return;
        }
        self.refreshing = Some(hour);
        self.wanted = online.to_vec();
        self.apps_due = self
            .cursor
            .apps_hour
            .is_none_or(|a| hour - a >= APPS_EVERY_HOURS * HOUR);
        // Hours after the last completed refresh may be unread; an unfinished first refresh
        // had only begun its 24-hour backfill. After a gap longer than the 24-hour window, the
        // windows in between are fetched too.
        let covered = self
            .cursor
            .refreshed_hour
            .or(self.cursor.pending_since.map(|s| s - 24 * HOUR));
        self.catch_up_from = covered.filter(|last| hour - last > 23 * HOUR);
        self.cursor.pending_since.get_or_insert(hour);
        self.queue.push_back(Task::Discover { date: hour + HOUR - 31 });
    }

    /// After discovery: one hours task per device (plus catch-up windows), apps if due.
    fn expand(&mut self, hour: i64) {
        let date = hour + HOUR - 31;
        let mut windows = vec![date];
        if let Some(last) = self.catch_up_from {
            let mut end = date - 24 * HOUR;
            while end > last && (windows.len() as i64) < MAX_CATCH_UP_WINDOWS {
                windows.push(end);
                end -= 24 * HOUR;
            }
        }
        let mut macs: Vec<MacAddr> = self.wanted.clone();
        macs.extend(self.stored.keys().copied());
        macs.sort();
        macs.dedup();
        // Every device's totals first; the per-app splits after.
        for mac in &macs {
            for w in windows.iter().rev() {
                self.queue.push_back(Task::Hours { mac: *mac, date: *w });
            }
        }
        if self.apps_due {
            for mac in &macs {
                self.queue.push_back(Task::Apps { mac: *mac, date });
            }
        }
        // The daily history last: one request per device, once per run (asus.md §6.4 item 6).
        if let Some(tz) = &self.tz
            && let Ok(stamp) = jiff::Timestamp::from_second(hour)
        {
            let today = stamp.to_zoned(tz.clone()).date();
            if let Ok(midnight) = today.to_zoned(tz.clone()) {
                let midnight = midnight.timestamp().as_second();
                for mac in &macs {
                    if !self.days_asked.insert(*mac) {
                        continue;
                    }
                    self.queue.push_back(Task::Days {
                        mac: *mac,
                        midnight,
                        today,
                    });
                }
            }
        }
    }

    /// Runs this poll's share of the queue; returns observations for the devices it read.
    pub async fn run(
        &mut self,
        session: &mut Session,
        router_now: i64,
        online: &[MacAddr],
        interval: Duration,
    ) -> Vec<Observation> {
        if self.availability == Availability::DisabledOnRouter {
            return Vec::new();
        }
        self.schedule(router_now, online);
        let polls_in_spread = (SPREAD.as_secs() / interval.as_secs().max(1)).max(1);
        let hurry = self.complete || self.catching_up;
        let budget = if hurry {
            usize::MAX
        } else {
            self.queue.len().div_ceil(polls_in_spread as usize).clamp(1, 10)
        };
        // A catch-up keeps to most of one interval so the next poll is not held up. Real time,
        // like the pause between requests: router etiquette, not the bridge's (maybe scaled)
        // clock; at `demo --speed N` a long catch-up only delays the next poll.
        let deadline = (!self.complete).then(|| tokio::time::Instant::now() + interval.mul_f64(0.6));
        let mut out = Vec::new();
        for n in 0..budget {
            if hurry && n > 0 {
                if deadline.is_some_and(|d| tokio::time::Instant::now() + CATCH_UP_PAUSE >= d) {
                    break;
                }
                tokio::time::sleep(CATCH_UP_PAUSE.min(interval / 20)).await;
            }
            let Some(task) = self.queue.pop_front() else { break };
            match self.fetch(session, &task).await {
                Ok(Some(obs)) => out.push(obs),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(source = %self.source, device = %self.router, error = %e, "Traffic Analyzer request failed; that device keeps its last total.");
                    if matches!(
                        e,
                        AsusError::Unreachable { .. } | AsusError::Auth(_) | AsusError::Deferred(_)
                    ) {
                        // The router is gone for now: retry this task at the next poll.
                        self.queue.push_front(task);
                        break;
                    }
                }
            }
        }
        if self.withholding() {
            out.retain(|obs| {
                !obs.traffic
                    .iter()
                    .any(|t| matches!(t.sample, TrafficSample::Buckets(_)))
            });
        }
        if self.queue.is_empty()
            && let Some(hour) = self.refreshing.take()
        {
            if self.withholding() {
                self.cursor.withheld += 1;
            }
            if let Some(stamps) = self.judge.finish(hour) {
                self.said_stamps(stamps);
            }
            self.catching_up = false;
            self.cursor.refreshed_hour = Some(hour);
            self.cursor.pending_since = None;
            if self.apps_due {
                self.cursor.apps_hour = Some(hour);
            }
        }
        out
    }

    async fn fetch(&mut self, session: &mut Session, task: &Task) -> Result<Option<Observation>, AsusError> {
        self.requests += 1;
        match task {
            Task::Discover { date } => {
                let (page, date) = self.page("getAppTraffic", *date);
                let text = session
                    .get(&format!("/{page}?client=all&mode=detail&dura=24&date={date}"))
                    .await?;
                match statistics(&text) {
                    Some(Value::Array(rows)) => {
                        self.list_cut = false;
                        // The devices of this day only: a MAC the analyzer no longer lists is
                        // neither asked for nor remembered (issue 22 §3: private MACs).
                        self.stored.clear();
                        for row in rows {
                            if let Some(spelling) = row.get(0).and_then(Value::as_str)
                                && let Ok(mac) = spelling.parse::<MacAddr>()
                            {
                                self.stored.insert(mac, spelling.to_owned());
                            }
                        }
                    }
                    // The firmware cuts long replies at 8000 bytes (a day of private MACs does
                    // it every hour); the per-device requests of the client list's devices
                    // still go ahead. Said once, not every hour.
                    _ if self.list_cut => {
                        tracing::debug!(source = %self.source, endpoint = "getAppTraffic.asp", "Device list from the Traffic Analyzer still unreadable; using the client list.")
                    }
                    _ => {
                        self.list_cut = true;
                        tracing::warn!(source = %self.source, endpoint = "getAppTraffic.asp", "Device list from the Traffic Analyzer is unreadable (cut off?); using the client list (said once until it reads again).")
                    }
                }
                if let Some(hour) = self.refreshing {
                    self.expand(hour);
                }
                Ok(None)
            }
            Task::Hours { mac, date } => {
                let client = self.spelling(mac);
                let (page, query_date) = self.page("getWanTraffic", *date);
                let text = session
                    .get(&format!("/{page}?client={client}&mode=hour&dura=24&date={query_date}"))
                    .await?;
                let pairs = hour_pairs(&text).ok_or_else(|| AsusError::Invalid {
                    endpoint: format!("getWanTraffic.asp (client {client})"),
                    detail: "not 24 hourly [tx, rx] pairs".into(),
                })?;
                // The newest bucket of this hour's window is the evidence of how rows are stamped.
                if let (Some(hour), Some([tx, rx])) = (self.refreshing, pairs.last())
                    && *date == hour + HOUR - 31
                {
                    self.judge.judge(mac, hour, tx.saturating_add(*rx));
                }
                let hours = label_hours(&pairs, *date, self.judge.stamps()).ok_or_else(|| AsusError::Invalid {
                    endpoint: format!("getWanTraffic.asp (client {client})"),
                    detail: "a window outside the clock's range".into(),
                })?;
                let mut obs = self.client_observation(*mac);
                obs.traffic.push(TrafficReading {
                    interface: None,
                    sample: TrafficSample::Buckets(BucketSample { hours }),
                });
                Ok(Some(obs))
            }
            Task::Days { mac, midnight, today } => {
                let client = self.spelling(mac);
                let date = super::day_history::window_date(*midnight, self.judge.stamps());
                let (page, query_date) = self.page("getWanTraffic", date);
                let text = session
                    .get(&format!("/{page}?client={client}&mode=day&dura=31&date={query_date}"))
                    .await?;
                let pairs = day_pairs(&text).ok_or_else(|| AsusError::Invalid {
                    endpoint: format!("getWanTraffic.asp (client {client}, days)"),
                    detail: "not 31 daily [tx, rx] pairs".into(),
                })?;
                let mut obs = self.client_observation(*mac);
                obs.history = super::day_history::day_history(&pairs, *today, *midnight);
                Ok(Some(obs))
            }
            Task::Apps { mac, date } => {
                let client = self.spelling(mac);
                let (page, date) = self.page("getWanTraffic", *date);
                let text = session
                    .get(&format!("/{page}?client={client}&mode=detail&dura=24&date={date}"))
                    .await?;
                let Some(Value::Array(rows)) = statistics(&text) else {
                    return Err(AsusError::Invalid {
                        endpoint: format!("getWanTraffic.asp (client {client}, apps)"),
                        detail: "not a list of [app, tx, rx]".into(),
                    });
                };
                let mut apps: Vec<(String, u64, u64)> = rows
                    .iter()
                    .filter_map(|r| Some((r.get(0)?.as_str()?.to_owned(), r.get(1)?.as_u64()?, r.get(2)?.as_u64()?)))
                    .collect();
                apps.sort_by_key(|(_, tx, rx)| std::cmp::Reverse(tx + rx));
                let top: Vec<Value> = apps
                    .iter()
                    .take(TOP_APPS)
                    .map(|(app, tx, rx)| json!({"app": app, "rx_bytes": rx, "tx_bytes": tx}))
                    .collect();
                let mut obs = self.client_observation(*mac);
                obs.attributes.insert("top_apps_24h".into(), Value::Array(top));
                Ok(Some(obs))
            }
        }
    }

    /// The live counters settled (or changed) how rows are stamped: said once.
    fn said_stamps(&self, stamps: RowStamps) {
        match stamps {
            RowStamps::End => tracing::info!(
                source = %self.source,
                device = %self.router,
                "Traffic Analyzer rows are stamped at the end of their hour (seen in the live counters), as the router's sources say; each row is filed under the hour before its stamp."
            ),
            RowStamps::Start => tracing::warn!(
                source = %self.source,
                device = %self.router,
                "Traffic Analyzer rows are stamped at the start of their hour on this router (seen in the live counters), unlike the router's sources; each row is filed under the hour of its stamp."
            ),
        }
    }

    /// The page and the `date` to ask for a window whose last bucket ends at `date` + 30 s
    /// (just before the next hour). The DNS-based pages round `date` down to the hour and
    /// align their buckets to it, so they are asked for the next hour itself.
    fn page(&self, name: &str, date: i64) -> (String, i64) {
        if self.dns {
            (format!("{name}_Dns.asp"), date + 31)
        } else {
            (format!("{name}.asp"), date)
        }
    }

    fn spelling(&self, mac: &MacAddr) -> String {
        self.stored
            .get(mac)
            .cloned()
            .unwrap_or_else(|| mac.to_string().to_uppercase())
    }

    fn client_observation(&self, mac: MacAddr) -> Observation {
        let mut obs = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
        obs.info.macs.push(mac);
        obs.info.via = Some(self.router.clone());
        obs
    }
}

/// The array after `array_statistics =` (the two-line JS the pages return).
pub fn statistics(text: &str) -> Option<Value> {
    let literal = js::value(text, "array_statistics")?;
    serde_json::from_str(literal).ok()
}

/// The 24 `[tx, rx]` pairs of a `mode=hour` reply.
pub fn hour_pairs(text: &str) -> Option<Vec<[u64; 2]>> {
    pairs_of(text, 24)
}

/// The 31 `[tx, rx]` pairs of a `mode=day&dura=31` reply.
pub fn day_pairs(text: &str) -> Option<Vec<[u64; 2]>> {
    pairs_of(text, super::day_history::DAYS)
}

fn pairs_of(text: &str, n: usize) -> Option<Vec<[u64; 2]>> {
    let Value::Array(pairs) = statistics(text)? else {
        return None;
    };
    if pairs.len() != n {
        return None;
    }
    pairs
        .iter()
        .map(|pair| Some([pair.get(0)?.as_u64()?, pair.get(1)?.as_u64()?]))
        .collect()
}

/// The pairs of a window ending at `date` + 30 (one second before an hour boundary) as the
/// hours their bytes belong to. Bucket 23 holds the rows stamped in the hour that ends there;
/// stamped at the end of their hour (asus.md §6.4), those are the hour before it.
/// Checked: `date` derives from the router's clock (found by fuzzing at i64 extremes).
pub fn label_hours(pairs: &[[u64; 2]], date: i64, stamps: RowStamps) -> Option<Vec<HourBucket>> {
    let stamped_hour = date.checked_add(31 - HOUR)?;
    let last_hour = match stamps {
        RowStamps::End => stamped_hour.checked_sub(HOUR)?,
        RowStamps::Start => stamped_hour,
    };
    let n = pairs.len() as i64;
    pairs
        .iter()
        .enumerate()
        .map(|(i, [tx, rx])| {
            Some(HourBucket {
                start_s: last_hour.checked_sub((n - 1 - i as i64) * HOUR)?,
                tx: *tx,
                rx: *rx,
            })
        })
        .collect()
}

/// [`hour_pairs`] then [`label_hours`].
pub fn hour_buckets(text: &str, date: i64, stamps: RowStamps) -> Option<Vec<HourBucket>> {
    label_hours(&hour_pairs(text)?, date, stamps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn macs(n: u8) -> Vec<MacAddr> {
        (0..n).map(|i| MacAddr::new([2, 0, 0, 0, 0, i])).collect()
    }

    /// Requests one refresh makes: the discovery call, then what it expands to.
    fn requests_for_hour(ta: &mut TrafficAnalyzer, hour: i64, online: &[MacAddr]) -> usize {
        ta.schedule(hour + 300, online);
        let discover = ta.queue.len();
        ta.queue.clear();
        ta.expand(hour);
        let total = discover + ta.queue.len();
        ta.queue.clear();
        ta.cursor.refreshed_hour = ta.refreshing.take();
        ta.cursor.pending_since = None;
        if ta.apps_due {
            ta.cursor.apps_hour = ta.cursor.refreshed_hour;
        }
        total
    }

    #[test]
    fn the_daily_history_costs_one_request_per_device_once() {
        let mut ta = TrafficAnalyzer::new("home", DeviceId::new("home").unwrap());
        ta.set_time_zone(jiff::tz::TimeZone::UTC);
        let online = macs(30);
        let start = 1_795_557_600;
        ta.schedule(start + 300, &online);
        ta.queue.clear();
        ta.expand(start);
        let days: Vec<&Task> = ta.queue.iter().filter(|t| matches!(t, Task::Days { .. })).collect();
        assert_eq!(days.len(), 30);
        // They come after every device's hours, and end at the last local midnight.
        assert!(matches!(ta.queue.back(), Some(Task::Days { midnight, .. }) if *midnight == start - start % 86_400));
        ta.queue.clear();
        ta.refreshing = None;
        ta.cursor.refreshed_hour = Some(start);
        // The next hour (one device more): only the newcomer's.
        let mut more = online.clone();
        more.push(MacAddr::new([2, 0, 0, 0, 1, 0]));
        ta.schedule(start + HOUR + 300, &more);
        ta.queue.clear();
        ta.expand(start + HOUR);
        assert_eq!(ta.queue.iter().filter(|t| matches!(t, Task::Days { .. })).count(), 1);
    }

    #[test]
    fn thirty_devices_cost_thirty_six_requests_an_hour() {
        let mut ta = TrafficAnalyzer::new("home", DeviceId::new("home").unwrap());
        let online = macs(30);
        let start = 1_795_557_600;
        let per_hour: Vec<usize> = (0..12)
            .map(|h| requests_for_hour(&mut ta, start + h * HOUR, &online))
            .collect();
        // 1 discovery + 30 hourly windows, and every 6th hour the 30 per-app splits.
        assert_eq!(per_hour[0], 61);
        assert_eq!(per_hour[1..6], [31; 5]);
        assert_eq!(per_hour[6], 61);
        assert_eq!(per_hour.iter().sum::<usize>() as f64 / 12.0, 36.0);
        // Spread: at a 30 s poll interval, 61 requests take ceil(61 / 40) = 2 per poll.
        assert_eq!(61usize.div_ceil((SPREAD.as_secs() / 30) as usize), 2);
    }

    #[test]
    fn a_router_clock_set_back_still_refreshes_and_the_hour_waits_for_its_row() {
        let mut ta = TrafficAnalyzer::new("home", DeviceId::new("home").unwrap());
        let online = macs(2);
        let start = 1_795_557_600;
        requests_for_hour(&mut ta, start + 10 * HOUR, &online);
        // The router's clock was reset to an earlier day: its hours are refreshed again.
        assert!(requests_for_hour(&mut ta, start, &online) > 0);
        // A poll in the first minute of an hour refreshes the hour before (its row is there).
        ta.schedule(start + 3 * HOUR + 20, &online);
        assert_eq!(ta.refreshing, Some(start + 2 * HOUR));
    }

    #[test]
    fn a_long_gap_adds_catch_up_windows() {
        let mut ta = TrafficAnalyzer::new("home", DeviceId::new("home").unwrap());
        let online = macs(2);
        let start = 1_795_557_600;
        requests_for_hour(&mut ta, start, &online);
        // 50 hours later: windows ending now, 24 h and 48 h ago (back past the last refresh).
        assert_eq!(requests_for_hour(&mut ta, start + 50 * HOUR, &online), 1 + 2 * 3 + 2);
        // An unfinished refresh still anchors the catch-up after a restart.
        let mut fresh = TrafficAnalyzer::new("home", DeviceId::new("home").unwrap());
        fresh.restore(&json!({"refreshed_hour": null, "pending_since": start, "apps_hour": null}));
        fresh.schedule(start + 30 * HOUR + 300, &online);
        assert_eq!(fresh.catch_up_from, Some(start - 24 * HOUR));
    }

    #[test]
    fn parses_the_two_line_page() {
        let page = "var array_statistics = new Array();\narray_statistics = [[1,2],[3,4]];\n";
        assert_eq!(statistics(page), Some(json!([[1, 2], [3, 4]])));
        assert_eq!(
            statistics("var array_statistics = new Array();\narray_statistics = [[1,2],[3"),
            None
        );
        let pairs: Vec<String> = (0..24).map(|i| format!("[{i},{}]", i * 10)).collect();
        let page = format!("array_statistics = [{}];", pairs.join(","));
        let date = 1_795_557_600 + 3600 - 31;
        // Rows stamped at the end of their hour: the newest bucket is the hour before.
        let hours = hour_buckets(&page, date, RowStamps::End).unwrap();
        assert_eq!(
            hours[23],
            HourBucket {
                start_s: 1_795_557_600 - 3600,
                tx: 23,
                rx: 230
            }
        );
        assert_eq!(hours[0].start_s, 1_795_557_600 - 24 * 3600);
        // Rows stamped at the start: the newest bucket is the hour in progress.
        let hours = hour_buckets(&page, date, RowStamps::Start).unwrap();
        assert_eq!(hours[23].start_s, 1_795_557_600);
        assert_eq!(hours[0].start_s, 1_795_557_600 - 23 * 3600);
        assert!(hour_buckets("array_statistics = [[1,2]];", date, RowStamps::End).is_none());
        assert!(hour_buckets("array_statistics = [];", date, RowStamps::End).is_none());
        // Found by fuzzing: a window at the end of time overflowed instead of being refused.
        assert!(hour_buckets(&page, i64::MIN, RowStamps::End).is_none());
        assert!(hour_buckets(&page, i64::MAX, RowStamps::End).is_some());
    }
}
