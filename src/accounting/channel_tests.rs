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
fn unexplained_drop_is_held_then_confirmed_as_a_reset() {
    let (mut ch, _) = ChannelState::start_counter(&counter(5_000_000_000, 50, 0, "a", WrapRule::Never), 0, true);
    let (step, ev) = ch.update_counter(&counter(100, 60, 10, "a", WrapRule::Never), 10_000);
    assert_eq!((step.rx, step.tx, ev), (0, 0, Some(CounterEvent::Dropped)));
    assert_eq!(step.rates, Rates::UNKNOWN);
    // The next reading goes on from the low value: it was a reset; count what came after it.
    let (step, ev) = ch.update_counter(&counter(600, 70, 20, "a", WrapRule::Never), 20_000);
    assert_eq!((step.rx, step.tx, ev), (500, 10, Some(CounterEvent::Reset)));
    let (step, ev) = ch.update_counter(&counter(700, 80, 30, "a", WrapRule::Never), 30_000);
    assert_eq!((step.rx, step.tx, ev), (100, 10, None));
}

#[test]
fn a_one_off_low_reading_is_a_glitch_not_a_reset() {
    let (mut ch, _) = ChannelState::start_counter(&counter(5_000_000_000, 50, 0, "a", WrapRule::Never), 0, true);
    let (step, _) = ch.update_counter(&counter(0, 0, 10, "a", WrapRule::Never), 10_000);
    assert_eq!((step.rx, step.tx), (0, 0));
    // Back to normal: counted from the old baseline, not the whole counter again.
    let (step, ev) = ch.update_counter(&counter(5_000_001_000, 60, 20, "a", WrapRule::Never), 20_000);
    assert_eq!((step.rx, step.tx, ev), (1000, 10, None));
}

#[test]
fn thirty_two_bit_wrap_is_exact() {
    let (mut ch, _) = ChannelState::start_counter(&counter(u32::MAX as u64 - 99, 0, 0, "a", WrapRule::At32), 0, true);
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
    assert_eq!((step.rx, ev), (0, Some(CounterEvent::Dropped)));
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

// Issue 8 item 4: one bogus reading must not inflate a total for good.
#[test]
fn one_bogus_huge_reading_is_ignored_and_later_values_count() {
    for bogus in [u64::MAX, 1_000_000_000_000_000] {
        let (mut ch, _) = ChannelState::start_counter(&counter(1000, 10, 0, "a", WrapRule::Never), 0, true);
        let (step, ev) = ch.update_counter(&counter(bogus, 20, 300, "a", WrapRule::Never), 300_000);
        assert_eq!((step.rx, step.tx, ev), (0, 0, None), "{bogus} is not counted");
        assert!(step.rejected.is_some(), "{bogus} is reported as implausible");
        let (step, ev) = ch.update_counter(&counter(2000, 30, 600, "a", WrapRule::Never), 600_000);
        assert_eq!(
            (step.rx, step.tx, ev),
            (1000, 20, None),
            "the next normal value counts exactly"
        );
        assert!(step.rejected.is_none());
    }
}

#[test]
fn an_implausible_jump_that_stays_is_rebaselined_without_counting_it() {
    let (mut ch, _) = ChannelState::start_counter(&counter(1000, 0, 0, "a", WrapRule::Never), 0, true);
    let big = 1u64 << 55;
    let (step, _) = ch.update_counter(&counter(big, 0, 300, "a", WrapRule::Never), 300_000);
    assert!(step.rejected.is_some());
    let (step, ev) = ch.update_counter(&counter(big + 500, 0, 600, "a", WrapRule::Never), 600_000);
    assert_eq!((step.rx, ev), (500, Some(CounterEvent::Jumped)));
    let (step, ev) = ch.update_counter(&counter(big + 800, 0, 900, "a", WrapRule::Never), 900_000);
    assert_eq!((step.rx, ev), (300, None));
}

#[test]
fn an_absurd_first_reading_is_only_a_baseline() {
    let (mut ch, first) = ChannelState::start_counter(&counter(u64::MAX, 0, 0, "a", WrapRule::Never), 0, true);
    assert_eq!(first.rx, 0);
    assert!(first.rejected.is_some());
    let (step, _) = ch.update_counter(&counter(1000, 0, 10, "a", WrapRule::Never), 10_000);
    assert_eq!(step.rx, 0);
}

#[test]
fn an_absurd_reading_after_a_new_epoch_is_ignored() {
    let (mut ch, _) = ChannelState::start_counter(&counter(5000, 0, 0, "boot1", WrapRule::Never), 0, true);
    let (step, ev) = ch.update_counter(&counter(u64::MAX - 5, 0, 10, "boot2", WrapRule::Never), 10_000);
    assert_eq!((step.rx, ev), (0, None));
    assert!(step.rejected.is_some());
    let (step, ev) = ch.update_counter(&counter(300, 0, 20, "boot2", WrapRule::Never), 20_000);
    assert_eq!((step.rx, ev), (300, Some(CounterEvent::NewEpoch)));
}

// Issue 8 item 2: an absurd Deco rate became inf and wiped every total.
#[test]
fn absurd_and_non_finite_rates_are_skipped() {
    let sample = |rx_bps: f64, at_s: i64| RateSample {
        rx_bps,
        tx_bps: 0.0,
        at_ms: at_s * 1000,
        max_gap: Duration::from_secs(90),
    };
    let (mut ch, _) = ChannelState::start_rate(&sample(8000.0, 0), 0);
    for (i, bad) in [1e306 * 1e6, 1e306, f64::NAN, f64::NEG_INFINITY, -5.0]
        .into_iter()
        .enumerate()
    {
        let step = ch.update_rate(&sample(bad, 10 + i as i64), 10_000);
        assert_eq!((step.rx, step.tx), (0, 0), "{bad}");
        assert!(step.rejected.is_some(), "{bad}");
    }
    assert!(ch.rx_frac.is_finite() && ch.rates.rx_bps.is_some_and(f64::is_finite));
    // The next good sample integrates from the last good one: 8000 bit/s for 30 s.
    let step = ch.update_rate(&sample(8000.0, 30), 30_000);
    assert_eq!(step.rx, 30_000);
    let (ch, first) = ChannelState::start_rate(&sample(f64::INFINITY, 0), 0);
    assert!(first.rejected.is_some());
    assert_eq!(ch.rates, Rates::UNKNOWN);
}

// Issue 8 item 9: a rate state with ±inf (or a NaN remainder) must survive the state file.
#[test]
fn non_finite_floats_survive_the_state_file_round_trip() {
    let ch = ChannelState {
        kind: ChannelKind::Rate,
        rates: Rates {
            rx_bps: Some(f64::INFINITY),
            tx_bps: Some(f64::NEG_INFINITY),
        },
        rx_frac: f64::NAN,
        tx_frac: f64::INFINITY,
        ..ChannelState::default()
    };
    let text = serde_json::to_string(&ch).unwrap();
    let back: ChannelState = serde_json::from_str(&text).unwrap();
    assert_eq!((back.rx_frac, back.tx_frac), (0.0, 0.0));
    assert_eq!(back.rates, Rates::UNKNOWN);
    let old: ChannelState =
        serde_json::from_str(r#"{"rx":0,"tx":0,"at_ms":0,"advanced_ms":0,"rx_frac":null,"tx_frac":null}"#).unwrap();
    assert_eq!(old.rx_frac, 0.0);
}

// Issue 8 item 9: the dt subtraction overflowed at extreme timestamps.
#[test]
fn extreme_timestamps_do_not_overflow() {
    let (mut ch, _) = ChannelState::start_counter(&counter(0, 0, 0, "a", WrapRule::Never), 0, true);
    ch.at_ms = i64::MIN;
    ch.advanced_ms = i64::MIN;
    let mut late = counter(10, 0, 0, "a", WrapRule::Never);
    late.at_ms = i64::MAX;
    late.rate_window = Duration::MAX;
    let (step, _) = ch.update_counter(&late, i64::MAX);
    assert_eq!(step.rx, 10);
    let (step, _) = ch.update_counter(&late, i64::MAX);
    assert_eq!(step.rx, 0);
    let mut early = late.clone();
    early.at_ms = i64::MIN;
    let (_, ev) = ch.update_counter(&early, i64::MIN);
    assert_eq!(ev, Some(CounterEvent::WentBackwards));
    let (mut rate, _) = ChannelState::start_rate(
        &RateSample {
            rx_bps: 1.0,
            tx_bps: 1.0,
            at_ms: i64::MIN,
            max_gap: Duration::MAX,
        },
        0,
    );
    let step = rate.update_rate(
        &RateSample {
            rx_bps: 1.0,
            tx_bps: 1.0,
            at_ms: i64::MAX,
            max_gap: Duration::MAX,
        },
        0,
    );
    assert!(step.rx > 0);
}

#[test]
fn absurd_hour_buckets_are_skipped() {
    let mut ch = ChannelState::default();
    let s = ch.update_buckets(&hours(&[(10, u64::MAX, 0), (11, 50, 5)]), 0);
    assert_eq!((s.rx, s.tx), (50, 5));
    assert!(s.rejected.is_some());
    let s = ch.update_buckets(&hours(&[(10, 100, 0)]), 0);
    assert_eq!(s.rx, 100, "the hour counts once its numbers make sense");
}
