//! Live counters reconciled by hourly buckets: how the ASUS `getTraffic.asp` counters and the
//! Traffic Analyzer combine into one exact per-client total (asus.md §5, §6).
//!
//! Both are exact, so they share one channel of the source (same rank): the **live counter**
//! gives the total and the rate at every poll, and the **hours** only add what the counter
//! missed. A counter misses bytes when it restarts (DPI engine restart, router reboot) or is
//! reset between two readings: the bytes between the last reading and the restart are gone from
//! it, but the analyzer's hours still hold them. Without live counters a channel stays a plain
//! bucket channel (each hour counts by its growth, see [`ChannelState::update_buckets`]).
//!
//! The correction is a lower bound that becomes exact. For two hour boundaries `A < H`:
//!
//! ```text
//! D(A, H) = hours[A, H) − hours already counted directly[A, H) − (live after H − live before A)
//! ```
//!
//! where "live before A" is the live total at the last reading at or before `A` and "live
//! after H" the one at the first reading at or after `H` (or the current live total when no
//! reading after `H` exists yet). Live bytes of `[A, H)` were all counted between those two
//! readings, so `D` never exceeds the bytes nobody counted in `[A, H)`: taking the largest `D`
//! can never count a byte twice. It is exact when a reading falls on `A` and on `H` (or nothing
//! moved between the boundary and the reading next to it), and the router's clock, which
//! stamps both the rows and our readings, decides the sides. With a reading every 30 s the
//! shortfall is at most the bytes of one interval at each end, and it closes as soon as a
//! quieter boundary is in the window.
//!
//! A boundary with no reading after it yet uses the live total so far, so the newest hours
//! can be filled at once; but the analyzer's open hour may already hold bytes booked after our
//! last reading, which the counter will show at its next one. When a reading shrinks such a `D`,
//! the difference is owed (`ahead`) and taken out of the counter's next steps: each byte still
//! counts once (found by an engine test whose burst landed between the two requests of a poll).
//!
//! Time is cut into windows; each adds its own largest `D` once, and a window's `[A, H)` never
//! overlaps another's, so a byte is added at most once overall. A window stays open while
//! gaps (restarts, resets, the live start) keep happening, and closes once the hours after its
//! last gap are final (the analyzer re-reads 24 hours back), which also bounds what is kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::channel::{ChannelKind, ChannelState, CounterEvent, Step};
use crate::model::{BucketSample, HourBucket, LiveSample};

const HOUR: i64 = 3600;
/// A window closes once its newest hour is this far past its last gap: every hour of the gap
/// has been re-read final by then.
const SETTLE_S: i64 = 26 * HOUR;
/// Longest a window stays open whatever happens (bounds the memory per client).
const LONGEST_WINDOW_S: i64 = 96 * HOUR;
/// A reading this long after the previous one follows a stop (the bridge, the router or the
/// page was away): the counter may have restarted and grown past its old value unseen.
const STOP_S: i64 = 600;
/// Gaps remembered per window (older ones only widen what the hours may fill: dropping them
/// can only make the correction smaller).
const MAX_GAPS: usize = 64;
/// The router's statistics save 120 s after its scheduler starts (asus.md §6.4).
const FIRST_SAVE_S: i64 = 120;

/// Per-channel memory of the reconciliation; persisted with the channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconciler {
    /// Bytes `[rx, tx]` the live counter has added so far.
    live: [u64; 2],
    first_s: Option<i64>,
    last_s: Option<i64>,
    /// Per hour boundary: live total at the last reading at or before it and at the first
    /// reading at or after it, `[before_rx, before_tx, after_rx, after_tx]`.
    #[serde(default, with = "keyed_list")]
    marks: BTreeMap<i64, [u64; 4]>,
    /// Largest `[rx, tx]` the analyzer reported per hour start.
    #[serde(default, with = "keyed_list")]
    hours: BTreeMap<i64, [u64; 2]>,
    /// What the buckets had already added per hour before the live counter took over.
    #[serde(default, with = "keyed_list")]
    counted: BTreeMap<i64, [u64; 2]>,
    /// Start of the open window; `None` = from the earliest hour known.
    from: Option<i64>,
    last_gap_s: Option<i64>,
    /// `[previous reading, reading]` of this window between which the counter may have lost
    /// bytes (restart, reset, drop, stop). Hours only fill a span that holds one: where the
    /// counter ran without a gap it counted everything, and no analyzer figure may push the
    /// total past it. The router also writes rows at odd times around a restart (when its
    /// statistics stop, and 120 s after they start), so the hour whose row holds them reaches
    /// past its end: no span ends there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    gaps: Vec<[i64; 2]>,
    /// The gaps where the counter itself restarted or fell (not a mere stop of the bridge):
    /// where the router may have written odd-time rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    restarts: Vec<[i64; 2]>,
    /// What this window has added so far, per direction.
    best: [u64; 2],
    /// Everything the hours have added over the channel's life, net of what was repaid (for
    /// tests and notes).
    pub added: [u64; 2],
    /// Bytes the hours added ahead of the counter, which the counter has counted since:
    /// taken out of its next steps so that they count once.
    #[serde(default)]
    ahead: [u64; 2],
}

impl Reconciler {
    /// A bucket channel whose hours were counted directly until now.
    fn taking_over(buckets: &BTreeMap<i64, [u64; 2]>) -> Self {
        Self {
            hours: buckets.clone(),
            counted: buckets.clone(),
            from: buckets.keys().next().copied(),
            ..Self::default()
        }
    }

    /// A live reading at `clock_s` that added `step`; `gap`: the counter lost bytes before it.
    fn reading(&mut self, clock_s: i64, step: &Step, gap: bool) {
        let before = self.live;
        self.live[0] = self.live[0].saturating_add(step.rx);
        self.live[1] = self.live[1].saturating_add(step.tx);
        let now = self.live;
        let mark = |b: [u64; 2], a: [u64; 2]| [b[0], b[1], a[0], a[1]];
        let previous = self.last_s;
        match self.last_s {
            Some(last) if clock_s >= last => {
                let floor = self.from.unwrap_or(i64::MIN).max(clock_s - LONGEST_WINDOW_S);
                let mut h = next_boundary(last.max(floor));
                if h == last {
                    h += HOUR;
                }
                while h <= clock_s {
                    let b = if h == clock_s { now } else { before };
                    self.marks.insert(h, mark(b, now));
                    h += HOUR;
                }
                self.last_s = Some(clock_s);
            }
            Some(_) => {
                // The router's clock went back: its boundaries cannot be trusted across this.
                self.last_gap_s = Some(clock_s);
            }
            None => {
                self.first_s = Some(clock_s);
                self.last_s = Some(clock_s);
                if clock_s.rem_euclid(HOUR) == 0 {
                    self.marks.insert(clock_s, mark(now, now));
                }
            }
        }
        let stopped = previous.is_some_and(|last| clock_s - last > STOP_S);
        if gap || stopped {
            self.last_gap_s = Some(self.last_gap_s.map_or(clock_s, |g| g.max(clock_s)));
            if self.gaps.len() >= MAX_GAPS {
                self.gaps.remove(0);
            }
            let span = [previous.unwrap_or(clock_s), clock_s];
            self.gaps.push(span);
            if gap && previous.is_some() {
                if self.restarts.len() >= MAX_GAPS {
                    self.restarts.remove(0);
                }
                self.restarts.push(span);
            }
        }
    }

    /// Whether a reading in `(lo, hi]` followed a gap. A state file from before gaps were kept
    /// has only the last one.
    fn gap_in(&self, lo: i64, hi: i64) -> bool {
        let inside = |g: &i64| lo < *g && *g <= hi;
        self.gaps.iter().any(|[_, g]| inside(g))
            || (self.gaps.is_empty() && self.last_gap_s.as_ref().is_some_and(inside))
    }

    /// Whether the row filed under the hour ending at `h` (written in `[h, h + 1 h)`) may hold
    /// odd-time rows of a restart, and so bytes from after `h`: a restart somewhere between
    /// two readings writes rows from the first one to 120 s after the second.
    fn row_reaches_past(&self, h: i64) -> bool {
        self.restarts
            .iter()
            .any(|[before, after]| *before < h + HOUR && after.saturating_add(FIRST_SAVE_S) >= h)
    }

    /// The parts of a counter step `[rx, tx]` up to a reading at `clock_s` that belong to
    /// finished hours the analyzer already knows (a reading after a stop across midnight
    /// holds yesterday's last hour): for the periods of those hours. Call before
    /// [`Self::reading`]. Each part is a lower bound: the hour's bytes less all the counter
    /// had counted since the hour began.
    fn dated(&self, clock_s: i64, step: [u64; 2]) -> Vec<HourBucket> {
        let Some(last) = self.last_s else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut left = step;
        let mut h = last - last.rem_euclid(HOUR);
        while h + HOUR <= clock_s && left != [0, 0] {
            if let Some(seen) = self.hours.get(&h) {
                let counted = if h <= last {
                    let before = self.before(h).unwrap_or([0, 0]);
                    [
                        self.live[0].saturating_sub(before[0]),
                        self.live[1].saturating_sub(before[1]),
                    ]
                } else {
                    [0, 0]
                };
                let part = [
                    seen[0].saturating_sub(counted[0]).min(left[0]),
                    seen[1].saturating_sub(counted[1]).min(left[1]),
                ];
                if part != [0, 0] {
                    left = [left[0] - part[0], left[1] - part[1]];
                    out.push(HourBucket {
                        start_s: h,
                        rx: part[0],
                        tx: part[1],
                    });
                }
            }
            h += HOUR;
        }
        out
    }

    fn fold_hours(&mut self, sample: &BucketSample) {
        for b in &sample.hours {
            if self.from.is_some_and(|f| b.start_s < f) {
                continue;
            }
            let seen = self.hours.entry(b.start_s).or_insert([0, 0]);
            seen[0] = seen[0].max(b.rx);
            seen[1] = seen[1].max(b.tx);
        }
    }

    /// Live total `[rx, tx]` at the last reading at or before boundary `h`.
    fn before(&self, h: i64) -> Option<[u64; 2]> {
        let (first, last) = (self.first_s?, self.last_s?);
        if h < first {
            Some([0, 0])
        } else if h > last {
            Some(self.live)
        } else {
            self.marks.get(&h).map(|m| [m[0], m[1]])
        }
    }

    /// Live total at the first reading at or after boundary `h` (or now, if none yet).
    fn after(&self, h: i64) -> Option<[u64; 2]> {
        let (first, last) = (self.first_s?, self.last_s?);
        if h < first {
            None
        } else if h > last {
            Some(self.live)
        } else {
            self.marks.get(&h).map(|m| [m[2], m[3]])
        }
    }

    /// The open window `(lo, end)` and its largest `D` per direction, without changing
    /// anything; `None` without hours.
    fn window(&self) -> Option<(i64, i64, [u64; 2])> {
        let (Some((&oldest, _)), Some((&newest, _))) = (self.hours.first_key_value(), self.hours.last_key_value())
        else {
            return None;
        };
        let lo = self.from.map_or(oldest, |f| f.max(oldest));
        let end = newest + HOUR;
        let mut prefix = [0i128; 2];
        // Smallest `prefix − before` over every boundary A so far, and over those with a gap
        // after them up to the current boundary: only a span `[A, H)` with a gap in it may add.
        let mut min_all: [Option<i128>; 2] = [None, None];
        let mut min_g: [Option<i128>; 2] = [None, None];
        let mut best = [0i128; 2];
        let mut h = lo;
        while h <= end {
            if self.gap_in(h - HOUR, h) {
                for d in 0..2 {
                    if let Some(a) = min_all[d] {
                        min_g[d] = Some(min_g[d].map_or(a, |m| m.min(a)));
                    }
                }
            }
            if let Some(after) = self.after(h).filter(|_| !self.row_reaches_past(h)) {
                for d in 0..2 {
                    if let Some(g) = min_g[d] {
                        best[d] = best[d].max(prefix[d] - after[d] as i128 - g);
                    }
                }
            }
            if let Some(before) = self.before(h) {
                for d in 0..2 {
                    let g = prefix[d] - before[d] as i128;
                    min_all[d] = Some(min_all[d].map_or(g, |m| m.min(g)));
                }
            }
            let seen = self.hours.get(&h).copied().unwrap_or([0, 0]);
            let counted = self.counted.get(&h).copied().unwrap_or([0, 0]);
            for d in 0..2 {
                prefix[d] += seen[d].saturating_sub(counted[d]) as i128;
            }
            h += HOUR;
        }
        let target = best.map(|b| u64::try_from(b.max(0)).unwrap_or(u64::MAX));
        Some((lo, end, target))
    }

    /// Recomputes the window's largest `D`; returns what it adds beyond what was added.
    fn evaluate(&mut self) -> Step {
        let mut step = Step {
            no_rates: true,
            ..Step::default()
        };
        let Some((lo, end, target)) = self.window() else {
            return step;
        };
        let mut add = [0u64; 2];
        for d in 0..2 {
            if target[d] > self.best[d] {
                add[d] = target[d] - self.best[d];
                self.best[d] = target[d];
                self.added[d] = self.added[d].saturating_add(add[d]);
            } else if target[d] < self.best[d] {
                // Only a boundary with no reading after it yet can shrink `D`: its "after" was
                // the live total so far, and a newer reading showed that the counter did count
                // some of what the hours had (bytes booked after our last reading). Those bytes
                // were added once already; the counter's coming steps must not add them again.
                self.ahead[d] = self.ahead[d].saturating_add(self.best[d] - target[d]);
                self.best[d] = target[d];
            }
        }
        step.rx = add[0];
        step.tx = add[1];
        self.maybe_close(lo, end);
        step
    }

    /// Takes what the hours added ahead of the counter out of the counter's step.
    fn repay(&mut self, mut step: Step) -> Step {
        let rx = step.rx.min(self.ahead[0]);
        let tx = step.tx.min(self.ahead[1]);
        step.rx -= rx;
        step.tx -= tx;
        self.ahead = [self.ahead[0] - rx, self.ahead[1] - tx];
        self.added = [self.added[0].saturating_sub(rx), self.added[1].saturating_sub(tx)];
        step
    }

    /// Whether a live reading at `clock_s` that adds no bytes would change nothing but the
    /// time of the last reading: no hour boundary passed since the last one, and the window
    /// neither moves nor closes (ledger_fast.rs). Reads only.
    pub(super) fn idle_at(&self, clock_s: i64) -> bool {
        let Some(last) = self.last_s else {
            return false;
        };
        if clock_s < last {
            return false;
        }
        let floor = self.from.unwrap_or(i64::MIN).max(clock_s - LONGEST_WINDOW_S);
        let mut h = next_boundary(last.max(floor));
        if h == last {
            h += HOUR;
        }
        if h <= clock_s {
            return false;
        }
        match self.window() {
            None => true,
            Some((lo, end, target)) => target == self.best && !self.would_close(lo, end),
        }
    }

    /// Whether folding `sample` in would change nothing: every hour already seen at least
    /// this large, and the window neither moves nor closes. Reads only.
    pub(super) fn holds(&self, sample: &BucketSample) -> bool {
        let known = sample.hours.iter().all(|b| {
            self.from.is_some_and(|f| b.start_s < f)
                || self
                    .hours
                    .get(&b.start_s)
                    .is_some_and(|seen| seen[0] >= b.rx && seen[1] >= b.tx)
        });
        known
            && self
                .window()
                .is_none_or(|(lo, end, target)| target == self.best && !self.would_close(lo, end))
    }

    /// What an idle reading (see [`Self::idle_at`]) changes.
    pub(super) fn note_idle(&mut self, clock_s: i64) {
        self.last_s = Some(clock_s);
    }

    fn would_close(&self, lo: i64, end: i64) -> bool {
        let quiet_since = self.last_gap_s.unwrap_or(lo).max(lo);
        end - quiet_since >= SETTLE_S || end - lo >= LONGEST_WINDOW_S
    }

    /// Closes the window at `end` once its gaps are long settled; the next starts there.
    fn maybe_close(&mut self, lo: i64, end: i64) {
        if !self.would_close(lo, end) {
            return;
        }
        self.from = Some(end);
        self.best = [0, 0];
        self.last_gap_s = None;
        self.gaps.clear();
        self.restarts.clear();
        self.hours = self.hours.split_off(&end);
        self.counted = self.counted.split_off(&end);
        self.marks = self.marks.split_off(&end);
    }
}

/// The first hour boundary at or after `t`.
fn next_boundary(t: i64) -> i64 {
    let r = t.rem_euclid(HOUR);
    if r == 0 { t } else { t - r + HOUR }
}

/// A live reading on `ch`: counts the counter, marks the hour boundaries it passed, and adds
/// whatever the hours now show was missed. `target_is_new`: nothing counted this device yet,
/// so the counter's current value is its total so far (else a baseline). `from_hour`: no hour
/// before it may add (a client first seen mid-run, household/churn.rs); from it on, the hours
/// fill in what the counter did not count. Also returns the parts of the counted bytes that
/// belong to finished hours (for the periods, see [`Reconciler::dated`]).
pub fn live(
    ch: &mut ChannelState,
    sample: &LiveSample,
    now_ms: i64,
    target_is_new: bool,
    from_hour: Option<i64>,
) -> (Step, Option<CounterEvent>, Vec<HourBucket>) {
    if ch.reconciler.is_none() {
        // Hours counted directly until now (the counter appeared later): they stay counted and
        // the live counter starts from here. A fresh channel counts the counter as vnstat would.
        let taking_over = ch.kind == ChannelKind::Buckets;
        let reconciler = if taking_over {
            Reconciler::taking_over(&ch.buckets)
        } else {
            Reconciler::default()
        };
        let (mut fresh, step) = ChannelState::start_counter(&sample.counter, now_ms, target_is_new && !taking_over);
        let mut reconciler = Box::new(reconciler);
        if !taking_over {
            // A fresh counter's first value is the total so far (or, a baseline, where this
            // total starts): every byte before it is counted or not ours, so no earlier hour
            // may add to it (the hour the bridge was installed in is not counted twice). A start
            // hour given: the hours from it may add what the counter did not count before its
            // first reading (a gap), never more (a router clock behind ours: none).
            reconciler.from = Some(match from_hour {
                Some(h) if h <= sample.clock_s => h,
                _ => next_boundary(sample.clock_s),
            });
        }
        reconciler.reading(sample.clock_s, &step, true);
        let extra = reconciler.evaluate();
        fresh.reconciler = Some(reconciler);
        *ch = fresh;
        return (combine(step, extra), None, Vec::new());
    }
    let (step, event) = ch.update_counter(&sample.counter, now_ms);
    // Anything but a plain increase or a counted wrap may have left bytes uncounted.
    let gap = event.is_some_and(|e| e != CounterEvent::Wrapped);
    let Some(reconciler) = ch.reconciler.as_mut() else {
        return (step, event, Vec::new());
    };
    let dated = reconciler.dated(sample.clock_s, [step.rx, step.tx]);
    reconciler.reading(sample.clock_s, &step, gap);
    let extra = reconciler.evaluate();
    // The periods take the dated parts out of what the total grew by, never more.
    let step = reconciler.repay(step);
    (combine(step, extra), event, dated)
}

/// Hourly buckets on a channel that has a live counter: they only add what it missed.
pub fn hours(ch: &mut ChannelState, sample: &BucketSample) -> Step {
    let Some(reconciler) = ch.reconciler.as_mut() else {
        return Step {
            no_rates: true,
            ..Step::default()
        };
    };
    reconciler.fold_hours(sample);
    reconciler.evaluate()
}

fn combine(mut step: Step, extra: Step) -> Step {
    step.rx = step.rx.saturating_add(extra.rx);
    step.tx = step.tx.saturating_add(extra.tx);
    step
}

/// Integer-keyed maps as `[[key, values…], …]`: JSON object keys are strings, and they do not
/// come back as integers through the channel's flattening.
mod keyed_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(map: &BTreeMap<i64, [u64; N]>, s: S) -> Result<S::Ok, S::Error>
    where
        [u64; N]: Serialize,
    {
        let list: Vec<(i64, &[u64; N])> = map.iter().map(|(k, v)| (*k, v)).collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<BTreeMap<i64, [u64; N]>, D::Error>
    where
        [u64; N]: Deserialize<'de>,
    {
        let list = Vec::<(i64, [u64; N])>::deserialize(d)?;
        Ok(list.into_iter().collect())
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
