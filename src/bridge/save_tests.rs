//! When the core writes the state file: on persisted changes only, timestamps at most every
//! minute, and a restart after a skipped write keeps every total.

use std::time::Duration;

use super::super::{Core, PollReport};
use crate::clock::ManualClock;
use crate::model::{CounterSample, DeviceId, DeviceKind, Epoch, MacAddr, Observation, TrafficReading, TrafficSample};

const T0: i64 = 1_795_000_000_000;

fn core(dir: &std::path::Path, clock: &ManualClock) -> Core {
    let mut core = super::super::test_core::core(dir, "", true, clock.clock());
    core.first_round = None;
    core
}

/// The router and a client whose counter shows `rx`.
fn poll(rx: u64, at_ms: i64) -> PollReport {
    let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
    router.online = Some(true);
    let mac: MacAddr = "3c:22:fb:10:00:01".parse().unwrap();
    let mut phone = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
    phone.info.macs.push(mac);
    phone.online = Some(true);
    phone.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Counter(CounterSample {
            rx,
            tx: rx,
            epoch: Some(Epoch::Id("boot".into())),
            at_ms,
            wrap: crate::model::WrapRule::Never,
            rate_window: Duration::from_secs(30),
        }),
    });
    super::super::test_core::report(vec![router, phone], at_ms)
}

fn phone_rx(core: &Core) -> u64 {
    let mac: MacAddr = "3c:22:fb:10:00:01".parse().unwrap();
    core.household
        .device(&DeviceId::from_mac(mac))
        .map_or(0, |d| d.totals.rx)
}

#[test]
fn the_state_file_is_written_when_totals_move_and_not_when_nothing_did() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), &clock);
    let mut at = T0;
    let mut step = |core: &mut Core, rx: u64| {
        clock.advance(Duration::from_secs(3));
        at += 3_000;
        core.handle(poll(rx, at));
        core.store.writes()
    };
    assert_eq!(step(&mut core, 1_000), 1, "new devices");
    assert_eq!(step(&mut core, 5_000), 2, "bytes counted");
    // The counter stops: its rate drops to 0 (a baseline timestamp only), then nothing moves.
    for _ in 0..10 {
        assert_eq!(step(&mut core, 5_000), 2, "nothing to write");
    }
    let mtime = std::fs::metadata(core.store.path()).unwrap().modified().unwrap();
    // Timestamps alone are written after a minute at the latest.
    for _ in 0..12 {
        step(&mut core, 5_000);
    }
    assert_eq!(core.store.writes(), 3, "one write for a minute of timestamps");
    assert!(std::fs::metadata(core.store.path()).unwrap().modified().unwrap() >= mtime);
    assert_eq!(step(&mut core, 9_000), 4, "bytes again");

    // A restart after skipped writes: the totals and the baseline are on disk.
    for _ in 0..3 {
        step(&mut core, 9_000);
    }
    assert_eq!(core.store.writes(), 4);
    let total = phone_rx(&core);
    assert_eq!(total, 9_000);
    drop(core);
    let mut again = self::core(dir.path(), &clock);
    assert_eq!(
        again
            .household
            .ledger()
            .totals_of(&DeviceId::from_mac("3c:22:fb:10:00:01".parse().unwrap()))
            .map(|t| t.rx),
        Some(9_000)
    );
    clock.advance(Duration::from_secs(3));
    again.handle(poll(10_000, at + 3_000));
    assert_eq!(phone_rx(&again), 10_000, "continues from the saved baseline");
}

#[test]
fn shutdown_writes_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), &clock);
    // The first poll's entity ids are pinned while rendering, after its save: the second
    // poll writes them; the third moves only timestamps.
    for i in 0..3 {
        clock.advance(Duration::from_secs(3));
        core.handle(poll(1_000, T0 + i * 3_000));
    }
    let writes = core.store.writes();
    assert_eq!(writes, 2);
    core.save_final();
    assert_eq!(core.store.writes(), writes + 1, "the timestamps of the last poll");
    core.save_final();
    assert_eq!(core.store.writes(), writes + 1, "nothing left");
}
