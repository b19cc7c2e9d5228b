//! The fast path against the full one: wherever `apply_unchanged` says yes, the ledger must end
//! up exactly as `apply` would have left it; wherever the full path would change a published
//! number, it must say no and change nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::accounting::{Feed, Ledger, PersistedState};
use crate::model::{
    CounterSample, DeviceId, DeviceKind, Epoch, Observation, RateSample, TrafficReading, TrafficSample, WrapRule,
};

fn ledger() -> Ledger {
    let feeds = vec![Feed {
        name: "home".into(),
        total_rank: 0,
        rate_rank: 0,
    }];
    Ledger::new(feeds, PersistedState::default(), BTreeMap::new())
}

fn client(sample: TrafficSample) -> Observation {
    let mut o = Observation::new(DeviceId::new("aabbccddeeff").unwrap(), DeviceKind::Client);
    o.online = Some(true);
    o.traffic = vec![TrafficReading {
        interface: None,
        sample,
    }];
    o
}

fn counter(rx: u64, at_s: i64) -> Observation {
    client(TrafficSample::Counter(CounterSample {
        rx,
        tx: rx / 2,
        epoch: Some(Epoch::Id("boot".into())),
        at_ms: at_s * 1000,
        wrap: WrapRule::Never,
        rate_window: Duration::from_secs(30),
    }))
}

fn rate(bps: f64, at_s: i64) -> Observation {
    client(TrafficSample::Rate(RateSample {
        rx_bps: bps,
        tx_bps: bps,
        at_ms: at_s * 1000,
        max_gap: Duration::from_secs(30),
    }))
}

/// Applies `obs` both ways on copies of `base`'s history; returns whether the fast path took it.
fn both_ways(history: &[Observation], obs: Observation, now_ms: i64) -> bool {
    let mut full = ledger();
    let mut fast = ledger();
    for (i, o) in history.iter().enumerate() {
        full.apply("home", vec![o.clone()], i as i64 * 3_000);
        fast.apply("home", vec![o.clone()], i as i64 * 3_000);
    }
    let before = fast.to_persisted();
    let before_device = fast.devices().next().cloned();
    let took = fast.apply_unchanged("home", &obs, now_ms);
    if !took {
        assert_eq!(fast.to_persisted(), before, "a refusal changes nothing");
        assert_eq!(fast.devices().next().cloned(), before_device);
        return false;
    }
    full.apply("home", vec![obs], now_ms);
    assert_eq!(
        fast.to_persisted(),
        full.to_persisted(),
        "same baselines, times and totals"
    );
    assert_eq!(fast.devices().next(), full.devices().next(), "same device as published");
    true
}

#[test]
fn a_counter_that_stopped_takes_the_fast_path_once_its_rate_is_zero() {
    let history = [counter(1_000, 0), counter(4_000, 3)];
    assert!(
        !both_ways(&history, counter(4_000, 6), 6_000),
        "the rate must still drop to 0: full path"
    );
    let history = [counter(1_000, 0), counter(4_000, 3), counter(4_000, 6)];
    assert!(both_ways(&history, counter(4_000, 9), 9_000));
    assert!(!both_ways(&history, counter(4_001, 9), 9_000), "one byte more is news");
    // A gap beyond the rate window makes the rate unknown: that is news too.
    assert!(!both_ways(&history, counter(4_000, 60), 60_000));
}

#[test]
fn a_new_epoch_or_a_changed_online_state_is_never_skipped() {
    let history = [counter(1_000, 0), counter(4_000, 3), counter(4_000, 6)];
    let mut rebooted = counter(4_000, 9);
    if let TrafficSample::Counter(c) = &mut rebooted.traffic[0].sample {
        c.epoch = Some(Epoch::Id("other boot".into()));
    }
    assert!(!both_ways(&history, rebooted, 9_000));
    let mut offline = counter(4_000, 9);
    offline.online = Some(false);
    assert!(!both_ways(&history, offline, 9_000));
}

#[test]
fn an_idle_rate_takes_the_fast_path_and_a_moving_one_does_not() {
    let history = [rate(800.0, 0), rate(0.0, 3)];
    assert!(both_ways(&history, rate(0.0, 6), 6_000));
    assert!(!both_ways(&history, rate(8.0, 6), 6_000));
    let busy = [rate(800.0, 0), rate(800.0, 3)];
    assert!(!both_ways(&busy, rate(800.0, 6), 6_000), "800 bit/s integrates bytes");
}

#[test]
fn only_timestamps_are_marked_stale_and_bytes_dirty() {
    let mut l = ledger();
    l.apply("home", vec![counter(1_000, 0)], 0);
    assert!(l.persist().dirty, "a new device and channel");
    l.saved();
    l.apply("home", vec![counter(4_000, 3)], 3_000);
    assert!(l.persist().dirty, "bytes counted");
    l.saved();
    l.apply("home", vec![counter(4_000, 6)], 6_000);
    assert!(!l.persist().dirty && l.persist().stale, "{:?}", l.persist());
    l.saved();
    assert!(l.apply_unchanged("home", &counter(4_000, 9), 9_000));
    assert!(!l.persist().dirty && l.persist().stale);
}
