//! Issue 22 §3, a day of private MACs, through the core on explicit times: clients that come
//! and go, are listed offline, or come back from the Traffic Analyzer's history.

use std::time::Duration;

use super::super::{Core, PollReport};
use crate::model::{
    BucketSample, CounterSample, DeviceId, DeviceKind, Epoch, HourBucket, LiveSample, MacAddr, Observation,
    TrafficReading, TrafficSample, WrapRule,
};

const MIN_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
/// A whole hour (UTC), so analyzer hours line up with it.
const T0: i64 = 1_795_000_000_000 - 1_795_000_000_000 % HOUR_MS;

fn core(dir: &std::path::Path, extra: &str) -> Core {
    let mut core = super::super::test_core::core(dir, extra, false, crate::clock::ManualClock::new(T0).clock());
    core.first_round = None;
    core
}

fn mac(n: u32, private: bool) -> MacAddr {
    let first = if private { 0xda } else { 0x3c };
    let [_, a, b, c] = n.to_be_bytes();
    format!("{first:02x}:a1:19:{a:02x}:{b:02x}:{c:02x}").parse().unwrap()
}

/// A client list entry with a live counter at `rx` bytes (tx a tenth).
fn client(m: MacAddr, online: bool, rx: u64, at_ms: i64) -> Observation {
    let mut o = Observation::new(DeviceId::from_mac(m), DeviceKind::Client);
    o.info.name = Some(format!("Phone {m}"));
    o.info.macs.push(m);
    o.online = Some(online);
    if online {
        o.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Counter(CounterSample {
                rx,
                tx: rx / 10,
                epoch: Some(Epoch::Id("boot".into())),
                at_ms,
                wrap: WrapRule::Never,
                rate_window: Duration::from_secs(180),
            }),
        });
    }
    o
}

/// A client listed online with an ASUS live counter (`getTraffic.asp`) read at `at_ms`.
fn client_live(m: MacAddr, rx: u64, at_ms: i64) -> Observation {
    let mut o = client(m, true, rx, at_ms);
    for reading in &mut o.traffic {
        if let TrafficSample::Counter(c) = &reading.sample {
            reading.sample = TrafficSample::Live(LiveSample {
                counter: c.clone(),
                clock_s: at_ms / 1000,
            });
        }
    }
    o
}

/// What the Traffic Analyzer says of a client: hours only, online unknown.
fn analyzer(m: MacAddr, hours: &[(i64, u64)]) -> Observation {
    let mut o = Observation::new(DeviceId::from_mac(m), DeviceKind::Client);
    o.info.macs.push(m);
    o.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Buckets(BucketSample {
            hours: hours
                .iter()
                .map(|(start_ms, rx)| HourBucket {
                    start_s: start_ms / 1000,
                    rx: *rx,
                    tx: 0,
                })
                .collect(),
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

fn removed_events(core: &mut Core) -> Vec<String> {
    core.take_messages()
        .into_iter()
        .filter(|(t, p)| t.ends_with("bridge/event") && p.contains("device_removed"))
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn a_client_listed_offline_is_kept_until_no_source_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "forget_after = \"1h\"\n");
    let console = mac(1, false);
    let id = DeviceId::from_mac(console);
    core.take(poll(vec![client(console, true, 1_000, T0)], T0));
    core.take_messages();
    // Overnight the Deco keeps listing it, offline: never removed, never re-created.
    let mut at = T0;
    for _ in 0..(5 * 60 / 10) {
        at += 10 * MIN_MS;
        core.take(poll(vec![client(console, false, 0, at)], at));
        core.tick_periods(at + 27_000);
        assert!(core.household.device(&id).is_some(), "listed offline at {at}: kept");
    }
    assert!(removed_events(&mut core).is_empty(), "no flapping");
    // The router stops listing it: it has been offline for hours, so it goes at once.
    at += 10 * MIN_MS;
    core.take(poll(vec![], at));
    core.tick_periods(at + 1);
    assert!(core.household.device(&id).is_none());
    assert_eq!(removed_events(&mut core).len(), 1);
}

#[test]
fn a_forgotten_client_does_not_come_back_from_analyzer_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "forget_after = \"1h\"\n");
    let phone = mac(2, false);
    let id = DeviceId::from_mac(phone);
    // Online 10:00-10:30 with its analyzer hour, then gone; forgotten after an hour.
    core.take(poll(vec![client(phone, true, 5_000, T0)], T0));
    core.take(poll(
        vec![client(phone, true, 9_000, T0 + 30 * MIN_MS)],
        T0 + 30 * MIN_MS,
    ));
    core.take(poll(vec![], T0 + 40 * MIN_MS));
    let forgotten_at = T0 + 100 * MIN_MS;
    core.tick_periods(forgotten_at);
    assert!(core.household.device(&id).is_none(), "forgotten");
    // At the next hourly refresh the analyzer re-reads its day: that hour has 4 kB.
    let rows = [(T0 - HOUR_MS, 0), (T0, 4_000), (T0 + HOUR_MS, 0)];
    core.take(poll(vec![analyzer(phone, &rows)], T0 + 2 * HOUR_MS + MIN_MS));
    assert!(
        core.household.device(&id).is_none(),
        "history alone does not bring it back"
    );
    // A day later, still not; nor a client the analyzer alone knows: after the router's first
    // poll, a client counts from when it is first seen, and the analyzer's rows are all past.
    let stranger = mac(3, false);
    core.take(poll(
        vec![analyzer(phone, &rows), analyzer(stranger, &rows)],
        T0 + 25 * HOUR_MS,
    ));
    assert!(core.household.device(&id).is_none());
    assert!(core.household.device(&DeviceId::from_mac(stranger)).is_none());
    // Listed again at 20:30 on the day after, with a live counter of what it moved since it
    // came back (1 000 B); the analyzer's 20:00-21:00 row says 1 700 B and the counter reads
    // 1 700 after 21:00: the hour adds nothing on top of what the counter counted, and its
    // old 4 kB hour never counts.
    let back_at = T0 + 34 * HOUR_MS + 30 * MIN_MS;
    core.take(poll(vec![client_live(phone, 1_000, back_at)], back_at));
    let next = T0 + 35 * HOUR_MS + MIN_MS;
    let mut later = analyzer(phone, &[(T0, 4_000), (T0 + 34 * HOUR_MS, 1_700)]);
    later.traffic.extend(client_live(phone, 1_700, next).traffic);
    later.online = Some(true);
    core.take(poll(vec![later], next));
    assert_eq!(core.household.device(&id).map(|d| d.totals.rx), Some(1_700));
}

#[test]
fn a_client_list_at_install_brings_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "forget_after = \"1h\"\n");
    // The router's first poll: a client listed with its day of analyzer rows.
    let pc = mac(5, false);
    let mut listed = analyzer(pc, &[(T0 - 2 * HOUR_MS, 3_000), (T0 - HOUR_MS, 4_000)]);
    listed.online = Some(true);
    core.take(poll(vec![listed], T0 + MIN_MS));
    assert_eq!(
        core.household.device(&DeviceId::from_mac(pc)).map(|d| d.totals.rx),
        Some(7_000)
    );
    // The next poll lists a new client with the same rows: it counts from the hour of the
    // previous poll (T0), so none of them.
    let tv = mac(6, false);
    let mut new = analyzer(tv, &[(T0 - 2 * HOUR_MS, 3_000), (T0 - HOUR_MS, 4_000), (T0, 50)]);
    new.online = Some(true);
    core.take(poll(vec![new], T0 + 2 * MIN_MS));
    assert_eq!(
        core.household.device(&DeviceId::from_mac(tv)).map(|d| d.totals.rx),
        Some(50)
    );
}

#[test]
fn a_forgotten_client_back_online_counts_only_new_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "forget_after = \"1h\"\n");
    let phone = mac(4, false);
    let id = DeviceId::from_mac(phone);
    core.take(poll(vec![client(phone, true, 50_000, T0)], T0));
    core.take(poll(vec![], T0 + MIN_MS));
    core.tick_periods(T0 + 2 * HOUR_MS);
    assert!(core.household.device(&id).is_none());
    // Back, its live counter goes on from where it was: 50 kB were counted before.
    core.take(poll(
        vec![client(phone, true, 50_000, T0 + 3 * HOUR_MS)],
        T0 + 3 * HOUR_MS,
    ));
    core.take(poll(
        vec![client(phone, true, 51_000, T0 + 3 * HOUR_MS + MIN_MS)],
        T0 + 3 * HOUR_MS + MIN_MS,
    ));
    assert_eq!(core.household.device(&id).map(|d| d.totals.rx), Some(1_000));
}

/// A churn run: polls every `step` minutes, `per_poll` new private MACs at each, each online
/// for `stay` polls with a counter growing 1 kB a poll; `check` runs at each full hour with the
/// bytes owed so far: all of the first poll's (the install), and of a client first seen later
/// what its counter counted after its first reading (churn.rs).
fn churn(core: &mut Core, hours: i64, step: i64, per_poll: u32, stay: i64, mut check: impl FnMut(&mut Core, i64, u64)) {
    let mut sent = 0u64;
    for poll_n in 0..=(hours * 60 / step) {
        let at = T0 + poll_n * step * MIN_MS;
        let first = (poll_n - stay + 1).max(0) as u32 * per_poll;
        let last = poll_n as u32 * per_poll + per_poll;
        let clients: Vec<Observation> = (first..last)
            .map(|n| {
                let age = poll_n - i64::from(n / per_poll);
                client(mac(n, true), true, (age as u64 + 1) * 1_000, at)
            })
            .collect();
        let first_seen = if poll_n == 0 { 0 } else { u64::from(per_poll) };
        sent += (clients.len() as u64 - first_seen) * 1_000;
        core.take(poll(clients, at));
        core.tick_periods(at);
        if (poll_n * step) % 60 == 0 {
            check(core, poll_n * step / 60, sent);
        }
    }
}

fn retained_len(core: &Core, topic: &str) -> usize {
    core.outbox
        .snapshot()
        .into_iter()
        .find(|m| m.topic == topic)
        .map_or(0, |m| m.payload.len())
}

#[test]
fn the_private_address_group_forgets_members_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "forget_after = \"1h\"\nrandom_macs = \"group\"\n");
    let group = DeviceId::new(crate::household::admission::GROUP_ID).unwrap();
    let mut sizes = Vec::new();
    let mut last_total = 0;
    // Two new MACs a minute, each online 15 minutes, for 30 hours.
    churn(&mut core, 30, 5, 10, 3, |core, hour, sent| {
        let device = core.household.device(&group).unwrap();
        assert!(device.totals.rx >= last_total, "a total never goes down");
        last_total = device.totals.rx;
        assert_eq!(device.totals.rx, sent, "hour {hour}: every byte, once");
        let state = retained_len(core, "bandwidth2mqtt/private_devices");
        let file = serde_json::to_string(&core.household.to_persisted()).unwrap().len();
        sizes.push((hour, device.interfaces.len(), state, file));
    });
    // Online 15 min, forgotten an hour after: at most 10 × (3 + 12 + 1) members.
    for (hour, members, state, _) in &sizes[2..] {
        assert!(*members <= 160, "hour {hour}: {members} members");
        assert!(*state < 4_000, "hour {hour}: state message {state} B");
    }
    // Nothing is kept of a forgotten member: once the first have been forgotten (1 h 15 min),
    // state.json is flat (only the digits of the totals grow).
    let (_, _, _, file_2) = sizes[2];
    for (hour, _, _, file) in &sizes[2..] {
        assert!(
            *file <= file_2 + 200,
            "hour {hour}: state.json {file} B, {file_2} B at 2 h: {sizes:?}"
        );
    }
}

/// Sizes of every per-device map of the core, the household and the ledger, with the outbox
/// drained as the link would (a sent clear is not kept).
fn footprint(core: &Core) -> Vec<(&'static str, usize)> {
    while core.outbox.next().is_some() {}
    let (known, online) = core.events.len();
    let mut out = core.household.footprint();
    out.extend([
        ("renders", core.renders.len()),
        ("events.known", known),
        ("events.online", online),
        ("devices_index", core.devices_index.len()),
        ("packager", core.packager.len()),
        ("outbox", core.outbox.snapshot().len()),
    ]);
    out
}

/// Two rounds of churn, each followed by a quiet day: every map is back to the same size.
fn nothing_stays(random_macs: &str) {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("forget_after = \"1h\"\nrandom_macs = \"{random_macs}\"\n");
    let mut core = core(dir.path(), &extra);
    let mut at = T0;
    let mut sizes = Vec::new();
    for round in 0..2u32 {
        for p in 0..24 {
            // Five new private MACs every 5 minutes, online 15 minutes, for 2 hours.
            let clients = (p.max(2) - 2..=p)
                .flat_map(|q| (0..5).map(move |k| (q, k)))
                .map(|(q, k)| {
                    client(
                        mac(round * 1_000 + q * 5 + k, true),
                        true,
                        (p - q + 1) as u64 * 1_000,
                        at,
                    )
                })
                .collect();
            core.handle_report(poll(clients, at));
            core.tick_periods(at);
            at += 5 * MIN_MS;
        }
        for _ in 0..(27 * 12) {
            core.handle_report(poll(vec![], at));
            core.tick_periods(at);
            at += 5 * MIN_MS;
        }
        sizes.push(footprint(&core));
    }
    assert_eq!(sizes[0], sizes[1], "random_macs = {random_macs}");
}

#[test]
fn nothing_stays_of_forgotten_private_macs_when_tracked() {
    nothing_stays("track");
}

#[test]
fn nothing_stays_of_ignored_private_macs() {
    nothing_stays("ignore");
}

#[test]
fn nothing_stays_of_forgotten_group_members() {
    nothing_stays("group");
}
