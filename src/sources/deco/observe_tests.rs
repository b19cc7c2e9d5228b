use std::collections::BTreeMap;

use super::*;
use crate::accounting::Ledger;
use crate::sources::SourceKind;

const INTERVAL: Duration = Duration::from_secs(30);

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn node(m: &str, master: bool, name: &str) -> NodeEntry {
    NodeEntry {
        mac: Some(mac(m)),
        raw_mac: m.into(),
        master,
        name: Some(name.into()),
        ip: None,
        model: Some("X50".into()),
        hardware: Some("1.0".into()),
        firmware: Some("1.8.0 Build 25102213 Rel. 43970".into()),
        parent: (!master).then(|| mac("f0:09:0d:fa:29:7c")),
        connected: Some(true),
        inet_status: Some("online".into()),
        backhaul: if master { vec![] } else { vec!["band5".into()] },
    }
}

fn client(m: &str, online: bool, down: f64, up: f64) -> ClientEntry {
    ClientEntry {
        mac: Some(mac(m)),
        raw_mac: m.into(),
        name: Some(format!("client {m}")),
        ip: Some("192.168.68.100".parse().unwrap()),
        online,
        down: Some(down),
        up: Some(up),
        wire_type: Some("wireless".into()),
        connection_type: Some("band5".into()),
        interface: Some("main".into()),
        client_type: Some("phone".into()),
    }
}

const MASTER: &str = "f0:09:0d:fa:29:7c";
const SAT: &str = "f0:09:0d:fa:29:84";
const A: &str = "aa:00:00:00:00:01";
const B: &str = "aa:00:00:00:00:02";

fn snapshot(at_s: i64, clients: Vec<ClientEntry>) -> Snapshot {
    Snapshot {
        at_ms: at_s * 1000,
        nodes: vec![node(SAT, false, "Kids"), node(MASTER, true, "Living Room")],
        clients,
        per_node: BTreeMap::new(),
        performance: Some(Performance {
            cpu_percent: Some(10.0),
            memory_percent: Some(43.0),
        }),
        wan: Some(Wan {
            mac: Some(mac("44:e1:52:8c:40:36")),
            ip: Some("192.168.1.11".parse().unwrap()),
            dial_type: Some("dynamic_ip".into()),
            ..Wan::default()
        }),
        mode: Some("Router".into()),
    }
}

fn find<'a>(obs: &'a [Observation], m: &str) -> &'a Observation {
    let id = DeviceId::from_mac(mac(m));
    obs.iter()
        .find(|o| o.device == id)
        .unwrap_or_else(|| panic!("{m} observed"))
}

fn rate(obs: &Observation) -> &RateSample {
    match &obs.traffic[0].sample {
        TrafficSample::Rate(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn clients_get_rates_in_bits_and_integrate_only_between_consecutive_online_polls() {
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    let obs = observer.observe(&snapshot(0, vec![client(A, true, 800.0, 16.0)]));
    let a = find(&obs, A);
    assert_eq!(rate(a).rx_bps, 800_000.0, "down_speed is what the client received");
    assert_eq!(rate(a).tx_bps, 16_000.0);
    assert_eq!(rate(a).max_gap, Duration::ZERO, "nothing before the first poll");
    assert_eq!(a.online, Some(true));
    assert_eq!(a.info.name.as_deref(), Some("client aa:00:00:00:00:01"));
    assert_eq!(a.info.ip.as_deref(), Some("192.168.68.100"));
    assert_eq!(a.attributes["band"], "5 GHz");
    assert_eq!(a.attributes["interface"], "main");
    assert_eq!(a.attributes["connection_type"], "wireless");

    let obs = observer.observe(&snapshot(30, vec![client(A, true, 800.0, 16.0)]));
    assert_eq!(rate(find(&obs, A)).max_gap, INTERVAL * 3);

    observer.poll_failed();
    let obs = observer.observe(&snapshot(90, vec![client(A, true, 800.0, 16.0)]));
    assert_eq!(
        rate(find(&obs, A)).max_gap,
        Duration::ZERO,
        "the failed poll's gap is not filled"
    );

    // Offline with stale speeds: silence, and the interval that ends offline counts nothing.
    let obs = observer.observe(&snapshot(120, vec![client(A, false, 800.0, 16.0)]));
    let a = find(&obs, A);
    assert_eq!((rate(a).rx_bps, rate(a).tx_bps), (0.0, 0.0));
    assert_eq!(rate(a).max_gap, Duration::ZERO);
    assert_eq!(a.online, Some(false));
    let obs = observer.observe(&snapshot(150, vec![client(A, true, 800.0, 16.0)]));
    assert_eq!(
        rate(find(&obs, A)).max_gap,
        Duration::ZERO,
        "back online: a new interval starts"
    );
}

#[test]
fn a_client_that_leaves_the_list_goes_offline_once() {
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    observer.observe(&snapshot(0, vec![client(A, true, 1.0, 1.0), client(B, true, 1.0, 1.0)]));
    let obs = observer.observe(&snapshot(30, vec![client(A, true, 1.0, 1.0)]));
    let b = find(&obs, B);
    assert_eq!(b.online, Some(false));
    assert_eq!(rate(b).rx_bps, 0.0);
    assert_eq!(rate(b).max_gap, Duration::ZERO);
    let obs = observer.observe(&snapshot(60, vec![client(A, true, 1.0, 1.0)]));
    let id = DeviceId::from_mac(mac(B));
    assert!(obs.iter().all(|o| o.device != id), "reported once");
}

#[test]
fn a_client_off_the_list_leaves_no_node_behind() {
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    let mut snap = snapshot(0, vec![client(A, true, 1.0, 1.0), client(B, true, 1.0, 1.0)]);
    snap.per_node.insert(mac(SAT), Some([mac(A), mac(B)].into()));
    observer.observe(&snap);
    assert!(observer.knows_node_of(&mac(A)) && observer.knows_node_of(&mac(B)));
    observer.observe(&snapshot(30, vec![client(A, true, 1.0, 1.0)]));
    assert!(observer.knows_node_of(&mac(A)), "still listed: kept");
    assert!(!observer.knows_node_of(&mac(B)), "gone from the list: dropped");
}

#[test]
fn speed_units() {
    for (unit, bps) in [
        (SpeedUnit::KbitPerS, 8_000.0),
        (SpeedUnit::KbytePerS, 64_000.0),
        (SpeedUnit::BytePerS, 64.0),
    ] {
        let mut observer = Observer::new("mesh", unit, INTERVAL);
        let obs = observer.observe(&snapshot(0, vec![client(A, true, 8.0, 0.0)]));
        assert_eq!(rate(find(&obs, A)).rx_bps, bps, "{unit:?}");
    }
}

#[test]
fn nodes_hang_off_the_master_which_carries_the_wan_mac() {
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    let mut snap = snapshot(0, vec![client(A, true, 1.0, 1.0), client(B, true, 1.0, 1.0)]);
    snap.per_node.insert(mac(SAT), Some([mac(A)].into_iter().collect()));
    snap.per_node.insert(mac(MASTER), None);
    let obs = observer.observe(&snap);

    let master = find(&obs, MASTER);
    assert_eq!(master.kind, DeviceKind::MeshNode);
    assert_eq!(master.info.via, None);
    assert_eq!(
        master.info.macs,
        vec![mac(MASTER), mac("44:e1:52:8c:40:36")],
        "own MAC first, then the WAN MAC"
    );
    assert_eq!(master.info.model.as_deref(), Some("Deco X50"));
    assert_eq!(master.info.manufacturer.as_deref(), Some("TP-Link"));
    assert_eq!(
        master.info.sw_version.as_deref(),
        Some("1.8.0 Build 25102213 Rel. 43970")
    );
    let metric = |o: &Observation, k: &str| o.metrics.iter().find(|m| m.key == k).and_then(|m| m.value);
    assert_eq!(metric(master, "cpu_percent"), Some(10.0));
    assert_eq!(metric(master, "memory_percent"), Some(43.0));
    assert_eq!(metric(master, "clients"), Some(1.0), "B: not placed, so on the master");
    assert_eq!(master.attributes["mode"], "Router");
    assert_eq!(master.attributes["wan_ip"], "192.168.1.11");

    let sat = find(&obs, SAT);
    assert_eq!(sat.info.via, Some(DeviceId::from_mac(mac(MASTER))));
    assert_eq!(metric(sat, "clients"), Some(1.0));
    assert!(sat.metrics.iter().all(|m| m.key != "cpu_percent"), "master only");
    assert_eq!(sat.attributes["role"], "satellite");

    assert_eq!(find(&obs, A).info.via, Some(DeviceId::from_mac(mac(SAT))));
    assert_eq!(find(&obs, A).attributes["node"], "Kids");
    assert_eq!(find(&obs, B).info.via, Some(DeviceId::from_mac(mac(MASTER))));

    // The satellite's own list fails next time: A keeps its last known node.
    let mut snap = snapshot(30, vec![client(A, true, 1.0, 1.0)]);
    snap.per_node.insert(mac(SAT), None);
    let obs = observer.observe(&snap);
    assert_eq!(find(&obs, A).info.via, Some(DeviceId::from_mac(mac(SAT))));
}

#[test]
fn clients_without_a_mac_are_skipped() {
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    let mut nameless = client(A, true, 1.0, 1.0);
    nameless.mac = None;
    let obs = observer.observe(&snapshot(0, vec![nameless]));
    assert!(obs.iter().all(|o| o.kind == DeviceKind::MeshNode));
}

/// Through the real ledger: what the bridge will publish as totals.
#[test]
fn ledger_totals_skip_failed_polls_and_offline_spells() {
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    let mut ledger = Ledger::new(vec![SourceKind::Deco.feed("mesh")], Default::default(), BTreeMap::new());
    let id = DeviceId::from_mac(mac(A));
    let mut poll_after = |failed_before: bool, at_s: i64, online: bool| {
        if failed_before {
            observer.poll_failed();
        }
        let obs = observer.observe(&snapshot(at_s, vec![client(A, online, 800.0, 80.0)]));
        ledger.apply("mesh", obs, at_s * 1000);
        let d = ledger.device(&id).unwrap();
        (d.totals.rx, d.totals.tx, d.estimated, d.online())
    };
    // 800 kbit/s = 100 kB/s: 3 MB per 30 s interval.
    assert_eq!(poll_after(false, 0, true), (0, 0, true, Some(true)));
    assert_eq!(poll_after(false, 30, true).0, 3_000_000);
    assert_eq!(poll_after(false, 60, true).0, 6_000_000);
    assert_eq!(poll_after(true, 120, true).0, 6_000_000, "a missed poll adds nothing");
    assert_eq!(poll_after(false, 150, true).0, 9_000_000);
    let (rx, _, _, online) = poll_after(false, 180, false);
    assert_eq!((rx, online), (9_000_000, Some(false)), "going offline adds nothing");
    assert_eq!(poll_after(false, 210, false).0, 9_000_000);
    assert_eq!(
        poll_after(false, 240, true).0,
        9_000_000,
        "coming back starts a new interval"
    );
    let (rx, tx, _, _) = poll_after(false, 270, true);
    assert_eq!((rx, tx), (12_000_000, 1_200_000));
}

#[test]
fn all_zero_rates_are_flagged_once() {
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    for i in 0..ZERO_RATE_POLLS as i64 - 1 {
        observer.observe(&snapshot(i * 30, vec![client(A, true, 0.0, 0.0)]));
    }
    assert!(!observer.warned.contains("zero_rates"));
    observer.observe(&snapshot(600, vec![client(A, true, 0.0, 0.0)]));
    assert!(observer.warned.contains("zero_rates"));
    // Any rate resets the count; offline clients do not count.
    let mut observer = Observer::new("mesh", SpeedUnit::KbitPerS, INTERVAL);
    for i in 0..40 {
        let down = if i % 10 == 0 { 5.0 } else { 0.0 };
        observer.observe(&snapshot(
            i * 30,
            vec![client(A, true, down, 0.0), client(B, false, 0.0, 0.0)],
        ));
    }
    assert!(!observer.warned.contains("zero_rates"));
}
