//! One source's view of one traffic target (a device, or one of its interfaces): turns raw
//! counters into byte deltas and rates, or integrates rates into estimated bytes.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::plausible::{self, Implausible};
use crate::model::{BucketSample, CounterSample, Epoch, HourBucket, RateSample, WrapRule};

/// Hour buckets remembered per channel: three days, well beyond the 24 h a window covers.
const KEEP_BUCKETS: usize = 72;

const TWO_POW_32: u64 = 1 << 32;

/// What one reading added, and the rates it implies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Step {
    pub rx: u64,
    pub tx: u64,
    pub rates: Rates,
    /// Bytes came from integrating rates, not from counters.
    pub estimated: bool,
    /// Hourly buckets say nothing about the current rate.
    pub no_rates: bool,
    /// A number the plausibility gate refused; the ledger logs it. Nothing of it was counted.
    pub rejected: Option<Implausible>,
}

/// Rates in bit/s; `None` = not known right now (first sample, long gap, stale data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub rx_bps: Option<f64>,
    pub tx_bps: Option<f64>,
}

impl Rates {
    pub const UNKNOWN: Self = Self {
        rx_bps: None,
        tx_bps: None,
    };

    fn from_bytes(rx: u64, tx: u64, dt_ms: i64) -> Self {
        let secs = dt_ms as f64 / 1000.0;
        Self {
            rx_bps: Some(rx as f64 * 8.0 / secs),
            tx_bps: Some(tx as f64 * 8.0 / secs),
        }
    }
}

/// What a channel is fed with; hourly buckets never own a device's rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    #[default]
    Counter,
    Rate,
    Buckets,
}

/// Persisted per-channel memory: enough to continue exactly after a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    #[serde(default)]
    pub kind: ChannelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    pub rx: u64,
    pub tx: u64,
    pub at_ms: i64,
    /// Wall-clock time at which `at_ms` last moved forward; detects a source that stopped updating.
    pub advanced_ms: i64,
    #[serde(default)]
    pub rates: Rates,
    /// Rate channels: last rates and the sub-byte remainder of the integration.
    #[serde(default, skip_serializing_if = "is_zero", with = "finite")]
    pub rx_frac: f64,
    #[serde(default, skip_serializing_if = "is_zero", with = "finite")]
    pub tx_frac: f64,
    /// Bucket channels: the largest `[rx, tx]` seen per hour start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "bucket_list")]
    pub buckets: BTreeMap<i64, [u64; 2]>,
    /// Hours before this are settled and forgotten: they are never counted again.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub settled_before: i64,
    /// Live counter channels whose hourly buckets fill in what the counter missed
    /// (see accounting/reconcile.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciler: Option<Box<super::reconcile::Reconciler>>,
    /// A counter reading that did not fit, waiting for the next one to decide; not persisted
    /// (after a restart the next reading simply meets the old baseline again).
    #[serde(skip)]
    pub suspect: Option<Suspect>,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// Buckets on disk as `[[hour_start, rx, tx], …]`: JSON object keys are strings, and integer
/// keys do not survive serde's flattening on the way back.
mod bucket_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(map: &BTreeMap<i64, [u64; 2]>, s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<(i64, u64, u64)> = map.iter().map(|(h, [rx, tx])| (*h, *rx, *tx)).collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, [u64; 2]>, D::Error> {
        let list = Vec::<(i64, u64, u64)>::deserialize(d)?;
        Ok(list.into_iter().map(|(h, rx, tx)| (h, [rx, tx])).collect())
    }
}

/// JSON has no inf or NaN: serde would write `null` and then refuse to read it back, costing
/// every device its totals. Non-finite is stored as 0 and `null` read as 0.
mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(super::plausible::finite_or_zero(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map_or(0.0, super::plausible::finite_or_zero))
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Why a counter reading did not simply add `new - old`; logged by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterEvent {
    Wrapped,
    NewEpoch,
    /// Went down with nothing to explain it; the next reading went on from the low value, so
    /// it was a reset: re-baselined there, nothing counted for the drop itself.
    Reset,
    /// Went down with nothing to explain it: held, nothing counted, the old baseline kept until
    /// the next reading says whether it was a glitch or a reset.
    Dropped,
    /// An implausible jump was confirmed by the next reading: re-baselined, the jump not counted.
    Jumped,
    /// The sample is older than the last one.
    WentBackwards,
}

/// A reading that did not fit the baseline, kept (in memory only) until the next one decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspect {
    rx: u64,
    tx: u64,
    at_ms: i64,
}

/// A millisecond duration as i64, saturating (a `Duration` of years does not fit).
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ChannelState {
    /// First reading of a channel. `count_existing`: the target has no total yet, so the
    /// counter's current value is where its total starts (as vnstat's own total does).
    pub fn start_counter(c: &CounterSample, now_ms: i64, count_existing: bool) -> (Self, Step) {
        let state = Self {
            epoch: c.epoch.clone(),
            rx: c.rx,
            tx: c.tx,
            at_ms: c.at_ms,
            advanced_ms: now_ms,
            ..Self::default()
        };
        let step = if count_existing {
            match plausible::first_reading(c.rx.max(c.tx)) {
                Ok(_) => Step {
                    rx: c.rx,
                    tx: c.tx,
                    ..Step::default()
                },
                // Taken as a baseline only: a later normal reading is a drop, held, then a reset.
                Err(why) => Step {
                    rejected: Some(why),
                    ..Step::default()
                },
            }
        } else {
            Step::default()
        };
        (state, step)
    }

    /// Next counter reading; returns the bytes it adds and whatever was unusual about it.
    ///
    /// A reading that does not fit (implausibly many bytes, or lower without a new epoch) never
    /// becomes the baseline at once: it is held as a suspect and the next reading decides. If
    /// that one fits the old baseline, the odd one was a glitch and counting goes on exactly; if
    /// it fits the suspect, the counter really moved there and is re-baselined, never counting
    /// the jump or the drop.
    pub fn update_counter(&mut self, c: &CounterSample, now_ms: i64) -> (Step, Option<CounterEvent>) {
        let window_ms = millis(c.rate_window);
        let dt = c.at_ms.saturating_sub(self.at_ms);
        let limit_bps = match c.wrap {
            WrapRule::Maybe32 { max_bps } => max_bps,
            WrapRule::Never | WrapRule::At32 => plausible::MAX_LINK_BPS,
        };

        let new_epoch = match (&c.epoch, &self.epoch) {
            (Some(new), Some(old)) => !new.same_as(old),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if new_epoch {
            // The counter restarted from zero after our last reading: all it shows is new.
            if let Err(why) = plausible::delta(c.rx.max(c.tx), dt, plausible::MAX_LINK_BPS) {
                return (self.reject(why), None);
            }
            let rates = if dt > 0 && dt <= window_ms {
                Rates::from_bytes(c.rx, c.tx, dt)
            } else {
                Rates::UNKNOWN
            };
            self.rebase(c, now_ms, rates);
            return (
                Step {
                    rx: c.rx,
                    tx: c.tx,
                    rates,
                    ..Step::default()
                },
                Some(CounterEvent::NewEpoch),
            );
        }
        if dt == 0 {
            // Nothing new (vnstat between two saves): keep the last rate until it goes stale.
            if now_ms.saturating_sub(self.advanced_ms) > window_ms {
                self.rates = Rates::UNKNOWN;
            }
            return (
                Step {
                    rates: self.rates,
                    ..Step::default()
                },
                None,
            );
        }
        if dt < 0 {
            // Our clock stepped back (or the source re-sent an old sample). Counters of one
            // epoch only go up, so bytes above the baseline are still real; no rate is claimed.
            let counted = Self::fits(c.rx, c.tx, self.rx, self.tx, 0, c.wrap, limit_bps);
            let (rx, tx) = counted.map(|(rx, tx, _)| (rx, tx)).unwrap_or((0, 0));
            self.rebase(c, now_ms, Rates::UNKNOWN);
            return (
                Step {
                    rx,
                    tx,
                    ..Step::default()
                },
                Some(CounterEvent::WentBackwards),
            );
        }

        let suspect = self.suspect.take();
        match Self::fits(c.rx, c.tx, self.rx, self.tx, dt, c.wrap, limit_bps) {
            Ok((rx, tx, event)) => {
                let rates = if dt <= window_ms {
                    Rates::from_bytes(rx, tx, dt)
                } else {
                    Rates::UNKNOWN
                };
                self.rebase(c, now_ms, rates);
                (
                    Step {
                        rx,
                        tx,
                        rates,
                        ..Step::default()
                    },
                    event,
                )
            }
            Err(misfit) => {
                // Does it go on from the suspect? Then the counter really is there now.
                // Only a newer reading that moved on from it confirms a suspect: the same
                // odd value again (vnstat between saves, a counter stuck on garbage) says nothing.
                let from_suspect = suspect.and_then(|s| {
                    let dt = c.at_ms.saturating_sub(s.at_ms);
                    let moved_on = (c.rx > s.rx || c.tx > s.tx) && c.rx >= s.rx && c.tx >= s.tx;
                    (dt > 0 && moved_on)
                        .then(|| Self::fits(c.rx, c.tx, s.rx, s.tx, dt, WrapRule::Never, limit_bps).ok())
                        .flatten()
                });
                if let Some((rx, tx, _)) = from_suspect {
                    let event = match misfit {
                        Misfit::Down => CounterEvent::Reset,
                        Misfit::Implausible(_) => CounterEvent::Jumped,
                    };
                    self.rebase(c, now_ms, Rates::UNKNOWN);
                    return (
                        Step {
                            rx,
                            tx,
                            ..Step::default()
                        },
                        Some(event),
                    );
                }
                self.suspect = Some(Suspect {
                    rx: c.rx,
                    tx: c.tx,
                    at_ms: c.at_ms,
                });
                match misfit {
                    Misfit::Down => (Step::default(), Some(CounterEvent::Dropped)),
                    Misfit::Implausible(why) => (self.reject(why), None),
                }
            }
        }
    }

    /// Bytes from the baseline `(old_rx, old_tx)` to a reading, if the reading fits it.
    fn fits(
        rx: u64,
        tx: u64,
        old_rx: u64,
        old_tx: u64,
        dt: i64,
        wrap: WrapRule,
        limit_bps: f64,
    ) -> Result<(u64, u64, Option<CounterEvent>), Misfit> {
        let (rx, rx_event) = counter_delta(old_rx, rx, dt, wrap).ok_or(Misfit::Down)?;
        let (tx, tx_event) = counter_delta(old_tx, tx, dt, wrap).ok_or(Misfit::Down)?;
        plausible::delta(rx.max(tx), dt, limit_bps).map_err(Misfit::Implausible)?;
        Ok((rx, tx, rx_event.or(tx_event)))
    }

    /// A refused reading: nothing counted, nothing about the channel changes, no rate claimed.
    fn reject(&self, why: Implausible) -> Step {
        Step {
            rates: Rates::UNKNOWN,
            rejected: Some(why),
            ..Step::default()
        }
    }

    fn rebase(&mut self, c: &CounterSample, now_ms: i64, rates: Rates) {
        self.epoch = c.epoch.clone();
        self.rx = c.rx;
        self.tx = c.tx;
        self.at_ms = c.at_ms;
        self.advanced_ms = now_ms;
        self.rates = rates;
        self.suspect = None;
    }

    /// First rate reading; an implausible one starts the channel with no known rate.
    pub fn start_rate(r: &RateSample, now_ms: i64) -> (Self, Step) {
        let (rates, rejected) = match gate_rates(r) {
            Ok(rates) => (rates, None),
            Err(why) => (Rates::UNKNOWN, Some(why)),
        };
        let state = Self {
            kind: ChannelKind::Rate,
            at_ms: r.at_ms,
            advanced_ms: now_ms,
            rates,
            ..Self::default()
        };
        (
            state,
            Step {
                rates,
                estimated: true,
                rejected,
                ..Step::default()
            },
        )
    }

    /// Integrates the rate curve between the previous sample and this one (trapezoid rule).
    /// A gap longer than `max_gap` adds nothing: we do not invent traffic we did not see.
    /// An implausible sample is skipped as if it had not been taken.
    pub fn update_rate(&mut self, r: &RateSample, now_ms: i64) -> Step {
        let rates = match gate_rates(r) {
            Ok(rates) => rates,
            Err(why) => {
                return Step {
                    rates: self.rates,
                    estimated: true,
                    rejected: Some(why),
                    ..Step::default()
                };
            }
        };
        let dt = r.at_ms.saturating_sub(self.at_ms);
        if dt <= 0 {
            return Step {
                rates: self.rates,
                estimated: true,
                ..Step::default()
            };
        }
        let mut step = Step {
            rates,
            estimated: true,
            ..Step::default()
        };
        if dt <= millis(r.max_gap) {
            let secs = dt as f64 / 1000.0;
            let integrate = |prev: Option<f64>, now: Option<f64>, frac: &mut f64| -> u64 {
                let bytes = (prev.unwrap_or(0.0) + now.unwrap_or(0.0)) / 2.0 * secs / 8.0 + *frac;
                let whole = bytes.floor();
                *frac = plausible::finite_or_zero(bytes - whole);
                whole as u64
            };
            step.rx = integrate(self.rates.rx_bps, rates.rx_bps, &mut self.rx_frac);
            step.tx = integrate(self.rates.tx_bps, rates.tx_bps, &mut self.tx_frac);
        }
        self.at_ms = r.at_ms;
        self.advanced_ms = now_ms;
        self.rates = rates;
        step
    }
}

/// Why a counter reading does not fit a baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Misfit {
    Down,
    Implausible(Implausible),
}

fn gate_rates(r: &RateSample) -> Result<Rates, Implausible> {
    Ok(Rates {
        rx_bps: Some(plausible::rate(r.rx_bps)?),
        tx_bps: Some(plausible::rate(r.tx_bps)?),
    })
}

impl ChannelState {
    /// Folds hour buckets in: each hour counts by how much it grew since it was last seen, so
    /// re-reading an open hour, overlapping windows or a whole day again never counts twice,
    /// and a bucket that shrinks (the router pruned or cleared its database) lowers nothing.
    /// A bucket with more bytes than any link moves in an hour is skipped.
    pub fn update_buckets(&mut self, sample: &BucketSample, now_ms: i64) -> Step {
        self.update_buckets_dated(sample, now_ms).0
    }

    /// [`Self::update_buckets`], also saying how much each hour grew: the household puts
    /// those bytes in the day and month of their own hour (design.md "Period totals").
    pub fn update_buckets_dated(&mut self, sample: &BucketSample, now_ms: i64) -> (Step, Vec<HourBucket>) {
        let mut grown = Vec::new();
        self.kind = ChannelKind::Buckets;
        let mut step = Step {
            no_rates: true,
            ..Step::default()
        };
        for b in &sample.hours {
            if b.start_s < self.settled_before {
                continue;
            }
            if let Err(why) = plausible::hour_bytes(b.rx.max(b.tx)) {
                step.rejected = Some(why);
                continue;
            }
            let seen = self.buckets.entry(b.start_s).or_insert([0, 0]);
            let (rx, tx) = (b.rx.saturating_sub(seen[0]), b.tx.saturating_sub(seen[1]));
            step.rx = step.rx.saturating_add(rx);
            step.tx = step.tx.saturating_add(tx);
            if rx > 0 || tx > 0 {
                grown.push(HourBucket {
                    start_s: b.start_s,
                    rx,
                    tx,
                });
            }
            seen[0] = seen[0].max(b.rx);
            seen[1] = seen[1].max(b.tx);
        }
        while self.buckets.len() > KEEP_BUCKETS {
            let Some((start, _)) = self.buckets.pop_first() else {
                break;
            };
            self.settled_before = self.settled_before.max(start.saturating_add(3600));
        }
        self.advanced_ms = now_ms;
        (step, grown)
    }
}

/// Bytes between two readings of one counter direction; `None` when it went down and no wrap
/// explains it.
fn counter_delta(old: u64, new: u64, dt_ms: i64, wrap: WrapRule) -> Option<(u64, Option<CounterEvent>)> {
    if new >= old {
        return Some((new - old, None));
    }
    let wrapped = (old < TWO_POW_32).then(|| TWO_POW_32 - old + new);
    match (wrap, wrapped) {
        (WrapRule::At32, Some(d)) => Some((d, Some(CounterEvent::Wrapped))),
        (WrapRule::Maybe32 { max_bps }, Some(d)) if d as f64 * 8.0 / (dt_ms.max(1) as f64 / 1000.0) <= max_bps => {
            Some((d, Some(CounterEvent::Wrapped)))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
