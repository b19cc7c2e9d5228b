//! Live per-client byte counters from `getTraffic.asp` (asus.md §5): the page behind Adaptive
//! QoS → Bandwidth Monitor. One request per poll returns every client's running counters, so
//! every client gets an exact total and a live rate however large the home is.
//!
//! The page is probed once; "not available" (HTTP 404, or no clients in `array_traffic`) is
//! said once, at info, with how to switch it on, and probed again every few hours. A page that
//! was listing clients and suddenly lists none is not a switched-off feature unless it stays
//! empty for a whole probe period. The counters belong to the DPI engine, which can restart
//! (engine restart, router reboot), and may be 32 bits wide on some models; neither is verified
//! on hardware, so both are handled:
//!
//! - a reboot (the boot time moved) starts a new counter epoch at once: the counters' new
//!   values are new bytes, and what they lost is taken from the Traffic Analyzer's hours
//!   (accounting/reconcile.rs);
//! - a reply that only *looks* like an engine restart (an emptied table, at least half the
//!   clients lower at once, or the router's own pair lower when too few clients can tell) is
//!   held, counting nothing, and the next reply decides (live_table.rs): if it goes on from the
//!   old values the odd one was a glitch (a half-initialised table, every counter at a fraction)
//!   and counting goes on exactly; if it goes on from the held values the engine did restart,
//!   and the new epoch starts there. A new epoch on one odd reply would count every client's
//!   since-boot bytes again when the next reply goes on from the old values (issue 22 §1);
//! - a MAC listed twice is one client (live_table.rs [`dedupe`](super::live_table::dedupe));
//! - a single counter that drops from the top half of the 32-bit range to the bottom half,
//!   on a router never seen above 2^32, wrapped: counted across the wrap;
//! - any other drop counts nothing for that interval (never a spike) and is reconciled later.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::live_parse::{self, BadKind, Entry};
use super::live_table::{self, Held};
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
    /// Last raw `[rx, tx]` per client the client list still has, and the router's own pair.
    last: BTreeMap<MacAddr, [u64; 2]>,
    last_router: Option<[u64; 2]>,
    cursor: Cursor,
    seen_64_bit: bool,
    logged: BTreeSet<BadKind>,
    failing: bool,
    /// Router time of the first empty reply of a page that was listing clients.
    empty_since: Option<i64>,
    /// A reply that looked like an engine restart, until the next one says whether it was.
    held: Option<Held>,
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
            held: None,
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
        let empty = Default::default();
        let held = self.held.as_ref().map_or(&empty, |h| &h.clients);
        let (entries, twice) = live_table::dedupe(entries, &[&self.last, held]);
        if let Some(first) = twice.first() {
            bad.insert(BadKind::Duplicate, (twice.len(), first.to_string()));
        }
        let (entries, unknown): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|e| known.contains(&e.mac));
        if let Some(first) = unknown.first() {
            bad.insert(BadKind::UnknownMac, (unknown.len(), first.mac.to_string()));
        }
        self.log_bad(&bad);
        let Some(epoch) = self.epoch(&entries, reply.router, booted_at) else {
            return Vec::new();
        };
        let samples = entries
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
            .collect();
        // Clients the router no longer lists leave nothing here (a day of private MACs).
        if self.last.len() > known.len() {
            self.last.retain(|mac, _| known.contains(mac));
        }
        samples
    }

    /// The page was listing clients and now lists none. A DPI engine that just restarted has an
    /// empty table until traffic flows again, but so has a half-initialised page that then goes
    /// on from the old values: held like any reply that looks like a restart (an emptied table
    /// never confirms one; a reply already held stays held). Only a table that stays empty for
    /// a whole probe period means QoS was switched off.
    fn emptied(&mut self, clock_s: i64) {
        match self.empty_since {
            None => {
                self.empty_since = Some(clock_s);
                if self.held.is_none() {
                    tracing::debug!(source = %self.source, device = %self.router, "getTraffic.asp lists no clients; holding the old counters until the next reply.");
                    self.held = Some(Held::default());
                }
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
        self.held = None;
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
        self.held = None;
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

    /// The counter life this reply belongs to; `None`: the reply is held (it looks like an
    /// engine restart, and only the next reply can say whether it was one). A reboot starts a
    /// new life at once; an engine restart only once the reply after it goes on from it.
    fn epoch(&mut self, entries: &[Entry], router: Option<[u64; 2]>, booted_at: Option<i64>) -> Option<Epoch> {
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
        if rebooted {
            self.new_life(true);
        } else if live_table::fell(entries, router, &self.last, self.last_router, |o, n| self.wrapped(o, n)) {
            match self.held.take() {
                Some(held) if live_table::goes_on_from(entries, router, &held) => self.new_life(false),
                _ => {
                    tracing::debug!(source = %self.source, device = %self.router, clients = entries.len(), "getTraffic.asp counters fell as a whole; holding them until the next reply says whether the engine restarted.");
                    self.held = Some(Held::of(entries, router));
                    return None;
                }
            }
        } else if self.held.take().is_some() {
            tracing::info!(
                source = %self.source,
                device = %self.router,
                "One odd getTraffic.asp reply (emptied or fallen table) was a glitch: the next one went on from the old counters; nothing was counted for it."
            );
        }
        if router.is_some() {
            self.last_router = router;
        }
        Some(Epoch::Id(format!("dpi-{}", self.cursor.generation)))
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
#[path = "live_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "live_glitch_tests.rs"]
mod glitch_tests;
