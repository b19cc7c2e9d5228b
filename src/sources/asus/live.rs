//! Live per-client byte counters from `getTraffic.asp` (asus.md §5): the page behind Adaptive
//! QoS → Bandwidth Monitor. One request per poll returns every client's running counters, so
//! every client gets an exact total and a live rate however large the home is.
//!
//! The page is probed once; "not available" (HTTP 404, or no clients in `array_traffic`) is
//! said once, at info, with how to switch it on, and probed again every few hours. A page that
//! was listing clients and suddenly lists none is a restarted engine (its table is empty until
//! traffic flows), not a switched-off feature, unless it stays empty for a whole probe period. The counters
//! belong to the DPI engine, which can restart (engine restart, router reboot), and may be 32
//! bits wide on some models; neither is verified on hardware, so both are handled:
//!
//! - a reboot (boot time moved) or an engine restart (the router's own pair went down, or at
//!   least half the clients went down at once) starts a new counter epoch: the counters' new
//!   values are new bytes, and what they lost is taken from the Traffic Analyzer's hours
//!   (accounting/reconcile.rs);
//! - a single counter that drops from the top half of the 32-bit range to the bottom half,
//!   on a router never seen above 2^32, wrapped: counted across the wrap;
//! - any other drop counts nothing for that interval (never a spike) and is reconciled later.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::live_parse::{self, BadKind, Entry};
use super::session::{AsusError, Session};
use crate::model::{CounterSample, DeviceId, Epoch, LiveSample, MacAddr, WrapRule};

/// How often (router seconds) a router without the page is asked again (the owner may switch
/// QoS on).
const REPROBE_S: i64 = 3 * 3600;
const TWO_POW_31: u64 = 1 << 31;
const TWO_POW_32: u64 = 1 << 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Unknown,
    Available,
    NotAvailable,
}

/// What survives a restart: which counter life we are in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub generation: u64,
    pub booted_at: Option<i64>,
}

pub struct LiveCounters {
    source: String,
    router: DeviceId,
    pub availability: Availability,
    /// Router time of the next probe while not available.
    next_probe: Option<i64>,
    /// Last raw `[rx, tx]` per client, and the router's own pair.
    last: BTreeMap<MacAddr, [u64; 2]>,
    last_router: Option<[u64; 2]>,
    cursor: Cursor,
    seen_64_bit: bool,
    logged: BTreeSet<BadKind>,
    failing: bool,
    /// Router time of the first empty reply of a page that was listing clients.
    empty_since: Option<i64>,
    /// Requests made (one per poll while available).
    pub requests: u64,
    pub restarts: u64,
}

impl LiveCounters {
    pub fn new(source: &str, router: DeviceId) -> Self {
        Self {
            source: source.to_owned(),
            router,
            availability: Availability::Unknown,
            next_probe: None,
            last: BTreeMap::new(),
            last_router: None,
            cursor: Cursor::default(),
            seen_64_bit: false,
            logged: BTreeSet::new(),
            failing: false,
            empty_since: None,
            requests: 0,
            restarts: 0,
        }
    }

    pub fn cursor(&self) -> serde_json::Value {
        serde_json::to_value(&self.cursor).unwrap_or_default()
    }

    pub fn restore(&mut self, saved: &serde_json::Value) {
        if let Ok(c) = serde_json::from_value::<Cursor>(saved.clone()) {
            self.cursor = c;
        }
    }

    /// Reads the counters if the page is there (or due for a probe). `known`: the client
    /// list's MACs; `booted_at`: the router's boot time as this poll saw it; `clock_s`: the
    /// router's clock, which the Traffic Analyzer's hours are stamped with.
    pub async fn read(
        &mut self,
        session: &mut Session,
        known: &BTreeSet<MacAddr>,
        booted_at: Option<i64>,
        clock_s: i64,
        interval: Duration,
        clock: &crate::clock::Clock,
    ) -> Vec<(MacAddr, LiveSample)> {
        // A clock that went back (a reset router clock) probes again rather than never.
        if self.availability == Availability::NotAvailable
            && self.next_probe.is_some_and(|t| clock_s < t && t - clock_s <= REPROBE_S)
        {
            return Vec::new();
        }
        self.requests += 1;
        let text = match session.get("/getTraffic.asp").await {
            Ok(text) => text,
            Err(AsusError::Http { status: 404, .. }) => {
                self.not_available("the router has no getTraffic.asp", clock_s);
                return Vec::new();
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(source = %self.source, device = %self.router, error = %e, "Cannot read the live per-client counters; clients keep their totals.");
                }
                self.failing = true;
                return Vec::new();
            }
        };
        self.failing = false;
        let at_ms = clock.now_ms();
        self.interpret(&text, known, booted_at, clock_s, interval, at_ms)
    }

    /// One `getTraffic.asp` reply, already fetched: the samples of the clients the client list
    /// knows, in this poll's counter epoch. Split from [`Self::read`] so that the parsing and
    /// the epoch rules can be fuzzed without a router.
    pub fn interpret(
        &mut self,
        text: &str,
        known: &BTreeSet<MacAddr>,
        booted_at: Option<i64>,
        clock_s: i64,
        interval: Duration,
        at_ms: i64,
    ) -> Vec<(MacAddr, LiveSample)> {
        let reply = live_parse::parse(text);
        let entries = match reply.entries {
            Some(ref e) if !e.is_empty() || !reply.bad.is_empty() => e.clone(),
            Some(_) if self.availability == Availability::Available => {
                self.emptied(clock_s);
                return Vec::new();
            }
            _ => {
                self.not_available("getTraffic.asp lists no clients", clock_s);
                return Vec::new();
            }
        };
        self.empty_since = None;
        if self.availability != Availability::Available {
            tracing::info!(source = %self.source, device = %self.router, clients = entries.len(), "Live per-client counters found (getTraffic.asp): exact per-client totals and rates every poll.");
        }
        self.availability = Availability::Available;
        let mut bad = reply.bad.clone();
        let (entries, unknown): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|e| known.contains(&e.mac));
        if let Some(first) = unknown.first() {
            bad.insert(BadKind::UnknownMac, (unknown.len(), first.mac.to_string()));
        }
        self.log_bad(&bad);
        let epoch = self.epoch(&entries, reply.router, booted_at);
        entries
            .iter()
            .map(|e| {
                let wrap = self.wrap_rule(e);
                self.last.insert(e.mac, [e.rx, e.tx]);
                let counter = CounterSample {
                    rx: e.rx,
                    tx: e.tx,
                    epoch: Some(epoch.clone()),
                    at_ms,
                    wrap,
                    rate_window: (interval * 3).max(Duration::from_secs(30)),
                };
                (e.mac, LiveSample { counter, clock_s })
            })
            .collect()
    }

    /// The page was listing clients and now lists none. A DPI engine that just restarted has an
    /// empty table until traffic flows again, so this is a restart (the Traffic Analyzer fills in
    /// what the old counters held), not a switched-off feature; only a table that stays empty for
    /// a whole probe period means QoS was switched off.
    fn emptied(&mut self, clock_s: i64) {
        match self.empty_since {
            None => {
                self.empty_since = Some(clock_s);
                self.new_life(false);
            }
            Some(since) if clock_s - since >= REPROBE_S || clock_s < since => {
                self.not_available("getTraffic.asp has listed no clients for 3 hours", clock_s);
            }
            Some(_) => {}
        }
    }

    /// A new counter life: the counters' next values are new bytes.
    fn new_life(&mut self, rebooted: bool) {
        self.cursor.generation += 1;
        self.restarts += 1;
        self.last.clear();
        self.last_router = None;
        tracing::info!(
            source = %self.source,
            device = %self.router,
            reboot = rebooted,
            "Live per-client counters restarted; counting on from the new values, the Traffic Analyzer fills in what they lost."
        );
    }

    fn not_available(&mut self, why: &str, clock_s: i64) {
        if self.availability != Availability::NotAvailable {
            tracing::info!(
                source = %self.source,
                device = %self.router,
                reason = why,
                "Live per-client counters are not available: per-client totals come from the Traffic Analyzer, hourly and without rates. To get them live, switch on Adaptive QoS (QoS → Adaptive QoS → Bandwidth Monitor) on the router; asked again every 3 hours."
            );
        }
        self.availability = Availability::NotAvailable;
        self.next_probe = Some(clock_s + REPROBE_S);
        self.empty_since = None;
        self.last.clear();
        self.last_router = None;
    }

    fn log_bad(&mut self, bad: &BTreeMap<BadKind, (usize, String)>) {
        for (kind, (count, example)) in bad {
            if self.logged.insert(*kind) {
                tracing::warn!(source = %self.source, device = %self.router, count, example = %example, "getTraffic.asp: skipping {}; the other entries are used.", kind.describe());
            } else {
                tracing::debug!(source = %self.source, count, kind = ?kind, "getTraffic.asp: bad entries again.");
            }
        }
    }

    /// The counter life this reply belongs to; a reboot or an engine restart starts a new one.
    fn epoch(&mut self, entries: &[Entry], router: Option<[u64; 2]>, booted_at: Option<i64>) -> Epoch {
        let big = entries.iter().any(|e| e.rx >= TWO_POW_32 || e.tx >= TWO_POW_32)
            || router.is_some_and(|r| r[0] >= TWO_POW_32 || r[1] >= TWO_POW_32);
        self.seen_64_bit |= big;
        let rebooted = match (self.cursor.booted_at, booted_at) {
            (Some(old), Some(new)) => !Epoch::BootedAt(old).same_as(&Epoch::BootedAt(new)),
            _ => false,
        };
        if booted_at.is_some() {
            self.cursor.booted_at = booted_at;
        }
        let router_dropped = match (self.last_router, router) {
            (Some(old), Some(new)) => (0..2).any(|d| new[d] < old[d] && !self.wrapped(old[d], new[d])),
            _ => false,
        };
        let common: Vec<&Entry> = entries.iter().filter(|e| self.last.contains_key(&e.mac)).collect();
        let dropped = common
            .iter()
            .filter(|e| {
                let old = self.last[&e.mac];
                e.rx < old[0] || e.tx < old[1]
            })
            .count();
        let engine_restarted = dropped >= 2 && dropped * 2 >= common.len();
        if rebooted || router_dropped || engine_restarted {
            self.new_life(rebooted);
        }
        if router.is_some() {
            self.last_router = router;
        }
        Epoch::Id(format!("dpi-{}", self.cursor.generation))
    }

    /// A drop of one counter from the top half of 2^32 to the bottom half is a 32-bit wrap on
    /// a router never seen counting past 2^32.
    fn wrapped(&self, old: u64, new: u64) -> bool {
        !self.seen_64_bit && (TWO_POW_31..TWO_POW_32).contains(&old) && new < TWO_POW_31
    }

    fn wrap_rule(&self, e: &Entry) -> WrapRule {
        match self.last.get(&e.mac) {
            Some(old)
                if (e.rx < old[0] && self.wrapped(old[0], e.rx)) || (e.tx < old[1] && self.wrapped(old[1], e.tx)) =>
            {
                WrapRule::At32
            }
            _ => WrapRule::Never,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u8, rx: u64, tx: u64) -> Entry {
        Entry {
            mac: MacAddr::new([2, 0, 0, 0, 0, i]),
            rx,
            tx,
        }
    }

    fn live() -> LiveCounters {
        LiveCounters::new("home", DeviceId::new("home").unwrap())
    }

    fn remember(l: &mut LiveCounters, entries: &[Entry]) {
        for e in entries {
            l.last.insert(e.mac, [e.rx, e.tx]);
        }
    }

    #[test]
    fn a_reboot_or_an_engine_restart_starts_a_new_epoch() {
        let mut l = live();
        let first = [entry(1, 5000, 50), entry(2, 7000, 70), entry(3, 9000, 90)];
        let e0 = l.epoch(&first, Some([21000, 210]), Some(1000));
        remember(&mut l, &first);
        // Growth: same life.
        let grown = [entry(1, 6000, 60), entry(2, 8000, 80), entry(3, 9500, 95)];
        assert_eq!(l.epoch(&grown, Some([23500, 235]), Some(1001)), e0);
        remember(&mut l, &grown);
        // Everyone back near zero, the router's pair too: the DPI engine restarted.
        let restarted = [entry(1, 10, 1), entry(2, 20, 2), entry(3, 30, 3)];
        let e1 = l.epoch(&restarted, Some([60, 6]), Some(1001));
        assert_ne!(e1, e0);
        remember(&mut l, &restarted);
        // The boot time moved: a reboot, even if the counters happen to be higher.
        let e2 = l.epoch(&[entry(1, 20, 2)], None, Some(5000));
        assert_ne!(e2, e1);
        // A restart is remembered across a bridge restart.
        let mut again = live();
        again.restore(&l.cursor());
        assert_eq!(again.epoch(&[entry(1, 30, 3)], None, Some(5001)), e2);
    }

    #[test]
    fn an_emptied_table_is_a_restart_unless_it_stays_empty_for_a_probe_period() {
        let mut l = live();
        let known: BTreeSet<MacAddr> = [entry(1, 0, 0).mac, entry(2, 0, 0).mac].into();
        let reply = "array_traffic = [[\"02:00:00:00:00:01\", 50, 5000], [\"02:00:00:00:00:02\", 70, 7000]];";
        let empty = "array_traffic = [];";
        let at = |s: i64| s * 1000;
        let interval = Duration::from_secs(30);
        let epoch_of = |samples: &[(MacAddr, LiveSample)]| samples[0].1.counter.epoch.clone();
        let first = l.interpret(reply, &known, None, 1000, interval, at(1000));
        assert_eq!(l.availability, Availability::Available);
        // The engine restarted between two polls: an empty table, still available, a new life.
        assert!(l.interpret(empty, &known, None, 1030, interval, at(1030)).is_empty());
        assert_eq!(l.availability, Availability::Available);
        assert_eq!(l.restarts, 1);
        // A second empty reply is the same restart.
        assert!(l.interpret(empty, &known, None, 1060, interval, at(1060)).is_empty());
        assert_eq!(l.restarts, 1);
        let again = l.interpret(reply, &known, None, 1090, interval, at(1090));
        assert_ne!(epoch_of(&again), epoch_of(&first), "the counters' values are new bytes");
        // Empty for a whole probe period: QoS was switched off.
        l.interpret(empty, &known, None, 2000, interval, at(2000));
        assert_eq!(l.availability, Availability::Available);
        l.interpret(empty, &known, None, 2000 + REPROBE_S, interval, at(2000 + REPROBE_S));
        assert_eq!(l.availability, Availability::NotAvailable);
        // A router that never listed anyone is not available from the first reply.
        let mut fresh = live();
        fresh.interpret(empty, &known, None, 1000, interval, at(1000));
        assert_eq!(fresh.availability, Availability::NotAvailable);
    }

    #[test]
    fn one_client_at_the_top_of_32_bits_wrapped() {
        let mut l = live();
        let before = [
            entry(1, u32::MAX as u64 - 100, 10),
            entry(2, 1000, 10),
            entry(3, 1000, 10),
        ];
        let e0 = l.epoch(&before, None, None);
        remember(&mut l, &before);
        let after = [entry(1, 400, 11), entry(2, 1200, 12), entry(3, 1300, 13)];
        assert_eq!(l.epoch(&after, None, None), e0, "one wrap is not a restart");
        assert_eq!(l.wrap_rule(&after[0]), WrapRule::At32);
        assert_eq!(l.wrap_rule(&after[1]), WrapRule::Never);
        // A single drop from low values is a reset of that client: counted as nothing.
        remember(&mut l, &after);
        let reset = entry(2, 5, 12);
        assert_eq!(l.wrap_rule(&reset), WrapRule::Never);
        // Once a counter is seen past 2^32, no drop is ever a wrap.
        l.epoch(&[entry(4, 5_000_000_000, 0)], None, None);
        l.last.insert(entry(1, 0, 0).mac, [u32::MAX as u64 - 5, 0]);
        assert_eq!(l.wrap_rule(&entry(1, 3, 0)), WrapRule::Never);
    }
}
