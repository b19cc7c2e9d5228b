//! The issue 22 §3 churn, measured (bench/churn.md): ten new private MACs a minute, each
//! online 10–30 minutes with a live counter, `forget_after = "1h"`, polls every minute for
//! 5 h 20 min, through the core in-process on an injected clock. Prints, each simulated
//! half hour, the MACs seen so far, devices, the group's members, the group's state message,
//! state.json and the process's RSS. Ignored in normal runs (it only measures):
//! `cargo nextest run --lib churn_measure --run-ignored only --no-capture`.

use std::time::Duration;

use super::super::{Core, PollReport};
use crate::model::{CounterSample, DeviceId, DeviceKind, Epoch, MacAddr, Observation, TrafficReading, TrafficSample};

const T0: i64 = 1_795_000_000_000;
const MIN_MS: i64 = 60_000;

fn mac(n: u32) -> MacAddr {
    let [_, a, b, c] = n.to_be_bytes();
    format!("da:a1:19:{a:02x}:{b:02x}:{c:02x}").parse().unwrap()
}

/// Minutes MAC `n` stays online: 10 to 30, spread evenly.
fn stay(n: u32) -> u32 {
    10 + (n * 7) % 21
}

fn client(n: u32, minute: u32, at_ms: i64) -> Observation {
    let m = mac(n);
    let mut o = Observation::new(DeviceId::from_mac(m), DeviceKind::Client);
    o.info.name = Some(format!("Phone {n}"));
    o.info.macs.push(m);
    o.online = Some(true);
    let age = u64::from(minute - n / 10 + 1);
    o.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Counter(CounterSample {
            rx: age * 100_000,
            tx: age * 10_000,
            epoch: Some(Epoch::Id("boot".into())),
            at_ms,
            wrap: crate::model::WrapRule::Never,
            rate_window: Duration::from_secs(180),
        }),
    });
    o
}

fn poll(clients: Vec<Observation>, at_ms: i64) -> PollReport {
    let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
    router.online = Some(true);
    let mut observations = vec![router];
    observations.extend(clients);
    super::super::test_core::report(observations, at_ms)
}

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn measure(random_macs: &str) {
    let dir = tempfile::tempdir().unwrap();
    let clock = crate::clock::ManualClock::new(T0);
    let extra = format!("forget_after = \"1h\"\nrandom_macs = \"{random_macs}\"\n");
    let mut core: Core = super::super::test_core::core(dir.path(), &extra, false, clock.clock());
    core.first_round = None;
    let group = DeviceId::new(crate::household::admission::GROUP_ID).unwrap();
    println!("mode | minute | MACs seen | devices | group members | group state B | state.json B | RSS kB");
    for minute in 0..=320u32 {
        let at = T0 + i64::from(minute) * MIN_MS;
        clock.advance_to(at);
        let clients = (minute.saturating_sub(30) * 10..minute * 10 + 10)
            .filter(|n| minute < n / 10 + stay(*n))
            .map(|n| client(n, minute, at))
            .collect();
        core.handle_report(poll(clients, at));
        core.tick_periods(at);
        // The run loop publishes the events, the link sends everything (a sent clear is not
        // kept).
        core.take_messages();
        while core.outbox.next().is_some() {}
        if minute % 30 == 0 {
            let members = core.household.device(&group).map_or(0, |d| d.interfaces.len());
            let topic = format!("bandwidth2mqtt/{group}");
            let state = core
                .outbox
                .snapshot()
                .into_iter()
                .find(|m| m.topic == topic)
                .map_or(0, |m| m.payload.len());
            let file = serde_json::to_string(&core.household.to_persisted()).unwrap().len();
            let devices = core.household.devices().count();
            println!(
                "{random_macs} | {minute} | {} | {devices} | {members} | {state} | {file} | {}",
                minute * 10 + 10,
                rss_kb()
            );
        }
    }
}

#[test]
#[ignore = "a measurement (bench/churn.md), not a check"]
fn churn_measure_track() {
    measure("track");
}

#[test]
#[ignore = "a measurement (bench/churn.md), not a check"]
fn churn_measure_ignore() {
    measure("ignore");
}

#[test]
#[ignore = "a measurement (bench/churn.md), not a check"]
fn churn_measure_group() {
    measure("group");
}
