//! One source's view of one traffic target (a device, or one of its interfaces): turns raw
//! counters into byte deltas and rates, or integrates rates into estimated bytes.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::model::{BucketSample, CounterSample, Epoch, RateSample, WrapRule};

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
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rx_frac: f64,
    #[serde(default, skip_serializing_if = "is_zero")]
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

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Why a counter reading did not simply add `new - old`; logged by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterEvent {
    Wrapped,
    NewEpoch,
    /// Went down with nothing to explain it: re-baselined, nothing counted.
    Reset,
    /// The sample is older than the last one.
    WentBackwards,
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
            Step {
                rx: c.rx,
                tx: c.tx,
                ..Step::default()
            }
        } else {
            Step::default()
        };
        (state, step)
    }

    /// Next counter reading; returns the bytes it adds and whatever was unusual about it.
    pub fn update_counter(&mut self, c: &CounterSample, now_ms: i64) -> (Step, Option<CounterEvent>) {
        let window_ms = c.rate_window.as_millis() as i64;
        let dt = c.at_ms - self.at_ms;

        let new_epoch = match (&c.epoch, &self.epoch) {
            (Some(new), Some(old)) => !new.same_as(old),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if new_epoch {
            // The counter restarted from zero: everything it shows now is new traffic.
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
            if now_ms - self.advanced_ms > window_ms {
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
            self.rebase(c, now_ms, Rates::UNKNOWN);
            return (Step::default(), Some(CounterEvent::WentBackwards));
        }

        let (rx, rx_event) = counter_delta(self.rx, c.rx, dt, c.wrap);
        let (tx, tx_event) = counter_delta(self.tx, c.tx, dt, c.wrap);
        let event = rx_event.or(tx_event);
        let rates = if dt <= window_ms && event != Some(CounterEvent::Reset) {
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

    fn rebase(&mut self, c: &CounterSample, now_ms: i64, rates: Rates) {
        self.epoch = c.epoch.clone();
        self.rx = c.rx;
        self.tx = c.tx;
        self.at_ms = c.at_ms;
        self.advanced_ms = now_ms;
        self.rates = rates;
    }

    pub fn start_rate(r: &RateSample, now_ms: i64) -> (Self, Step) {
        let rates = Rates {
            rx_bps: Some(r.rx_bps),
            tx_bps: Some(r.tx_bps),
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
                ..Step::default()
            },
        )
    }

    /// Integrates the rate curve between the previous sample and this one (trapezoid rule).
    /// A gap longer than `max_gap` adds nothing: we do not invent traffic we did not see.
    pub fn update_rate(&mut self, r: &RateSample, now_ms: i64) -> Step {
        let rates = Rates {
            rx_bps: Some(r.rx_bps.max(0.0)),
            tx_bps: Some(r.tx_bps.max(0.0)),
        };
        let dt = r.at_ms - self.at_ms;
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
        if dt <= r.max_gap.as_millis() as i64 {
            let secs = dt as f64 / 1000.0;
            let integrate = |prev: Option<f64>, now: Option<f64>, frac: &mut f64| -> u64 {
                let bytes = (prev.unwrap_or(0.0) + now.unwrap_or(0.0)) / 2.0 * secs / 8.0 + *frac;
                let whole = bytes.floor();
                *frac = bytes - whole;
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

impl ChannelState {
    /// Folds hour buckets in: each hour counts by how much it grew since it was last seen, so
    /// re-reading an open hour, overlapping windows or a whole day again never counts twice,
    /// and a bucket that shrinks (the router pruned or cleared its database) lowers nothing.
    pub fn update_buckets(&mut self, sample: &BucketSample, now_ms: i64) -> Step {
        self.kind = ChannelKind::Buckets;
        let mut step = Step {
            no_rates: true,
            ..Step::default()
        };
        for b in &sample.hours {
            if b.start_s < self.settled_before {
                continue;
            }
            let seen = self.buckets.entry(b.start_s).or_insert([0, 0]);
            step.rx = step.rx.saturating_add(b.rx.saturating_sub(seen[0]));
            step.tx = step.tx.saturating_add(b.tx.saturating_sub(seen[1]));
            seen[0] = seen[0].max(b.rx);
            seen[1] = seen[1].max(b.tx);
        }
        while self.buckets.len() > KEEP_BUCKETS {
            let Some((start, _)) = self.buckets.pop_first() else {
                break;
            };
            self.settled_before = self.settled_before.max(start + 3600);
        }
        self.advanced_ms = now_ms;
        step
    }
}

/// Bytes between two readings of one counter direction.
fn counter_delta(old: u64, new: u64, dt_ms: i64, wrap: WrapRule) -> (u64, Option<CounterEvent>) {
    if new >= old {
        return (new - old, None);
    }
    let wrapped = (old < TWO_POW_32).then(|| TWO_POW_32 - old + new);
    match (wrap, wrapped) {
        (WrapRule::At32, Some(d)) => (d, Some(CounterEvent::Wrapped)),
        (WrapRule::Maybe32 { max_bps }, Some(d)) if d as f64 * 8.0 / (dt_ms as f64 / 1000.0) <= max_bps => {
            (d, Some(CounterEvent::Wrapped))
        }
        _ => (0, Some(CounterEvent::Reset)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn counter(rx: u64, tx: u64, at_s: i64, epoch: &str, wrap: WrapRule) -> CounterSample {
        CounterSample {
            rx,
            tx,
            epoch: Some(Epoch::Id(epoch.into())),
            at_ms: at_s * 1000,
            wrap,
            rate_window: Duration::from_secs(60),
        }
    }

    #[test]
    fn counts_increase_and_rate() {
        let (mut ch, first) = ChannelState::start_counter(&counter(1000, 10, 0, "a", WrapRule::Never), 0, true);
        assert_eq!((first.rx, first.tx, first.rates), (1000, 10, Rates::UNKNOWN));
        let (step, ev) = ch.update_counter(&counter(2000, 20, 10, "a", WrapRule::Never), 10_000);
        assert_eq!((step.rx, step.tx, ev), (1000, 10, None));
        assert_eq!(step.rates.rx_bps, Some(800.0));
        assert_eq!(step.rates.tx_bps, Some(8.0));
    }

    #[test]
    fn first_reading_can_be_only_a_baseline() {
        let (_, first) = ChannelState::start_counter(&counter(1000, 10, 0, "a", WrapRule::Never), 0, false);
        assert_eq!((first.rx, first.tx), (0, 0));
    }

    #[test]
    fn boot_times_within_tolerance_are_the_same_boot() {
        let booted = |rx: u64, at_s: i64, boot: i64| CounterSample {
            epoch: Some(Epoch::BootedAt(boot)),
            ..counter(rx, 0, at_s, "", WrapRule::At32)
        };
        let (mut ch, _) = ChannelState::start_counter(&booted(1000, 0, 1_000_000), 0, true);
        let (step, ev) = ch.update_counter(&booted(1500, 30, 1_000_002), 30_000);
        assert_eq!((step.rx, ev), (500, None), "2 s of jitter is not a reboot");
        // Jitter can drift but never accumulates into a false reboot: each reading re-anchors.
        let (step, ev) = ch.update_counter(&booted(1600, 60, 1_000_090), 60_000);
        assert_eq!((step.rx, ev), (100, None));
        let (step, ev) = ch.update_counter(&booted(300, 400, 1_000_350), 400_000);
        assert_eq!((step.rx, ev), (300, Some(CounterEvent::NewEpoch)));
    }

    #[test]
    fn new_epoch_counts_from_zero() {
        let (mut ch, _) = ChannelState::start_counter(&counter(5000, 50, 0, "boot1", WrapRule::Never), 0, true);
        let (step, ev) = ch.update_counter(&counter(300, 3, 10, "boot2", WrapRule::Never), 10_000);
        assert_eq!((step.rx, step.tx, ev), (300, 3, Some(CounterEvent::NewEpoch)));
    }

    #[test]
    fn unexplained_drop_counts_nothing_and_rebaselines() {
        let (mut ch, _) = ChannelState::start_counter(&counter(5_000_000_000, 50, 0, "a", WrapRule::Never), 0, true);
        let (step, ev) = ch.update_counter(&counter(100, 60, 10, "a", WrapRule::Never), 10_000);
        assert_eq!((step.rx, step.tx, ev), (0, 10, Some(CounterEvent::Reset)));
        assert_eq!(step.rates, Rates::UNKNOWN);
        let (step, _) = ch.update_counter(&counter(600, 70, 20, "a", WrapRule::Never), 20_000);
        assert_eq!((step.rx, step.tx), (500, 10));
    }

    #[test]
    fn thirty_two_bit_wrap_is_exact() {
        let (mut ch, _) =
            ChannelState::start_counter(&counter(u32::MAX as u64 - 99, 0, 0, "a", WrapRule::At32), 0, true);
        let (step, ev) = ch.update_counter(&counter(400, 0, 10, "a", WrapRule::At32), 10_000);
        assert_eq!((step.rx, ev), (500, Some(CounterEvent::Wrapped)));
    }

    #[test]
    fn maybe32_wrap_needs_a_plausible_rate() {
        let wrap = WrapRule::Maybe32 { max_bps: 1e9 };
        let (mut ch, _) = ChannelState::start_counter(&counter(u32::MAX as u64 - 999, 0, 0, "a", wrap), 0, true);
        let (step, ev) = ch.update_counter(&counter(1000, 0, 10, "a", wrap), 10_000);
        assert_eq!((step.rx, ev), (2000, Some(CounterEvent::Wrapped)));
        // From 1 GiB to 10 bytes in 10 s: a wrap would mean 3 GiB in 10 s (> 1 Gbit/s): a reset.
        let (mut ch, _) = ChannelState::start_counter(&counter(1 << 30, 0, 0, "a", wrap), 0, true);
        let (step, ev) = ch.update_counter(&counter(10, 0, 10, "a", wrap), 10_000);
        assert_eq!((step.rx, ev), (0, Some(CounterEvent::Reset)));
    }

    #[test]
    fn unchanged_sample_time_keeps_rate_until_stale() {
        let (mut ch, _) = ChannelState::start_counter(&counter(0, 0, 0, "a", WrapRule::Never), 0, true);
        let (step, _) = ch.update_counter(&counter(3000, 0, 30, "a", WrapRule::Never), 30_000);
        assert_eq!(step.rates.rx_bps, Some(800.0));
        let (step, _) = ch.update_counter(&counter(3000, 0, 30, "a", WrapRule::Never), 60_000);
        assert_eq!((step.rx, step.rates.rx_bps), (0, Some(800.0)));
        let (step, _) = ch.update_counter(&counter(3000, 0, 30, "a", WrapRule::Never), 95_000);
        assert_eq!(step.rates, Rates::UNKNOWN);
    }

    #[test]
    fn long_gap_counts_bytes_without_rate() {
        let (mut ch, _) = ChannelState::start_counter(&counter(0, 0, 0, "a", WrapRule::Never), 0, true);
        let (step, _) = ch.update_counter(&counter(9000, 0, 3600, "a", WrapRule::Never), 3_600_000);
        assert_eq!((step.rx, step.rates), (9000, Rates::UNKNOWN));
    }

    #[test]
    fn rate_integration_uses_trapezoids_and_skips_gaps() {
        let sample = |rx_bps: f64, at_s: i64| RateSample {
            rx_bps,
            tx_bps: 0.0,
            at_ms: at_s * 1000,
            max_gap: Duration::from_secs(90),
        };
        let (mut ch, first) = ChannelState::start_rate(&sample(8000.0, 0), 0);
        assert_eq!(first.rx, 0);
        // (8000 + 16000) / 2 bit/s for 30 s = 360000 bit = 45000 bytes.
        let step = ch.update_rate(&sample(16000.0, 30), 30_000);
        assert_eq!(step.rx, 45_000);
        assert!(step.estimated);
        let step = ch.update_rate(&sample(16000.0, 300), 300_000);
        assert_eq!(step.rx, 0, "a 270 s gap is not filled");
        let step = ch.update_rate(&sample(16000.0, 330), 330_000);
        assert_eq!(step.rx, 60_000);
    }

    fn hours(list: &[(i64, u64, u64)]) -> BucketSample {
        BucketSample {
            hours: list
                .iter()
                .map(|&(h, rx, tx)| crate::model::HourBucket {
                    start_s: h * 3600,
                    rx,
                    tx,
                })
                .collect(),
        }
    }

    #[test]
    fn buckets_count_growth_once_and_never_shrink() {
        let mut ch = ChannelState::default();
        let s = ch.update_buckets(&hours(&[(10, 100, 10), (11, 50, 5)]), 0);
        assert_eq!((s.rx, s.tx, s.no_rates), (150, 15, true));
        // The same window again, and the open hour grew.
        let s = ch.update_buckets(&hours(&[(10, 100, 10), (11, 80, 5)]), 0);
        assert_eq!((s.rx, s.tx), (30, 0));
        // An overlapping window that also covers a new hour; the router pruned hour 10.
        let s = ch.update_buckets(&hours(&[(10, 0, 0), (11, 80, 5), (12, 7, 1)]), 0);
        assert_eq!((s.rx, s.tx), (7, 1));
        // A late flush into an older hour still counts once.
        let s = ch.update_buckets(&hours(&[(10, 130, 10)]), 0);
        assert_eq!((s.rx, s.tx), (30, 0));
    }

    #[test]
    fn settled_hours_are_forgotten_and_never_recounted() {
        let mut ch = ChannelState::default();
        let window: Vec<_> = (0..100).map(|h| (h, 1, 0)).collect();
        assert_eq!(ch.update_buckets(&hours(&window), 0).rx, 100);
        assert_eq!(ch.buckets.len(), KEEP_BUCKETS);
        assert_eq!(
            ch.update_buckets(&hours(&window), 0).rx,
            0,
            "old hours come back: not counted"
        );
        assert_eq!(ch.settled_before, (100 - KEEP_BUCKETS as i64) * 3600);
    }

    #[test]
    fn fractional_bytes_are_carried() {
        let sample = |at_s: i64| RateSample {
            rx_bps: 1.0,
            tx_bps: 0.0,
            at_ms: at_s * 1000,
            max_gap: Duration::from_secs(90),
        };
        let (mut ch, _) = ChannelState::start_rate(&sample(0), 0);
        let total: u64 = (1..=16).map(|i| ch.update_rate(&sample(i), i * 1000).rx).sum();
        assert_eq!(total, 2, "16 s at 1 bit/s = 2 bytes, not 0");
    }
}
