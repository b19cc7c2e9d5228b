use std::time::Duration;

use super::*;
use crate::model::{CounterSample, TrafficReading, WrapRule};

fn feeds() -> Vec<Feed> {
    vec![
        Feed {
            name: "host".into(),
            total_rank: 1,
            rate_rank: 0,
        },
        Feed {
            name: "titan".into(),
            total_rank: 0,
            rate_rank: 1,
        },
    ]
}

fn id() -> DeviceId {
    DeviceId::new("titan").unwrap()
}

fn counter(iface: &str, rx: u64, at_s: i64, epoch: &str) -> TrafficReading {
    TrafficReading {
        interface: Some(iface.into()),
        sample: TrafficSample::Counter(CounterSample {
            rx,
            tx: 0,
            epoch: Some(epoch.into()),
            at_ms: at_s * 1000,
            wrap: WrapRule::Never,
            rate_window: Duration::from_secs(600),
        }),
    }
}

fn obs(readings: Vec<TrafficReading>) -> Observation {
    let mut o = Observation::new(id(), DeviceKind::Server);
    o.online = Some(true);
    o.traffic = readings;
    o
}

#[test]
fn vnstat_owns_totals_and_the_kernel_owns_rates_on_a_shared_interface() {
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    ledger.apply("titan", vec![obs(vec![counter("eth0", 9_000_000, 0, "2026-01-01")])], 0);
    ledger.apply("host", vec![obs(vec![counter("eth0", 500, 0, "boot")])], 0);
    ledger.apply("host", vec![obs(vec![counter("eth0", 1_500, 10, "boot")])], 10_000);
    let d = ledger.device(&id()).unwrap();
    let eth0 = &d.interfaces["eth0"];
    assert_eq!(
        eth0.totals.rx, 9_000_000,
        "the kernel's bytes do not add to vnstat's total"
    );
    assert_eq!(eth0.rates.rx_bps, Some(800.0), "live rate from the kernel");
    assert_eq!(eth0.total_source.as_deref(), Some("titan"));
    assert_eq!(eth0.rate_source.as_deref(), Some("host"));
    assert_eq!(d.totals.rx, 9_000_000);
    assert_eq!(d.sources.len(), 2);

    ledger.apply(
        "titan",
        vec![obs(vec![counter("eth0", 9_600_000, 300, "2026-01-01")])],
        300_000,
    );
    let d = ledger.device(&id()).unwrap();
    assert_eq!(d.interfaces["eth0"].totals.rx, 9_600_000);
    assert_eq!(
        d.interfaces["eth0"].rates.rx_bps,
        Some(800.0),
        "vnstat's average does not override"
    );
}

#[test]
fn totals_and_baselines_survive_a_restart() {
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    ledger.apply(
        "host",
        vec![obs(vec![
            counter("eth0", 1_000, 0, "boot1"),
            counter("wlan0", 70, 0, "boot1"),
        ])],
        0,
    );
    ledger.apply("host", vec![obs(vec![counter("eth0", 400, 10, "boot2")])], 10_000);
    assert_eq!(ledger.device(&id()).unwrap().totals.rx, 1_470);
    let saved = ledger.to_persisted();

    let mut restarted = Ledger::new(feeds(), saved, BTreeMap::new());
    restarted.apply("host", vec![obs(vec![counter("eth0", 900, 60, "boot2")])], 60_000);
    let d = restarted.device(&id()).unwrap();
    assert_eq!(
        d.interfaces["eth0"].totals.rx, 1_900,
        "continues from the persisted baseline"
    );
    assert_eq!(
        d.interfaces["wlan0"].totals.rx, 70,
        "an interface not seen again keeps its total"
    );
    assert_eq!(d.totals.rx, 1_970);
    // Devices that were not seen in this run are still saved.
    let mut other = Ledger::new(feeds(), restarted.to_persisted(), BTreeMap::new());
    assert!(other.device(&id()).is_none());
    other.apply("host", vec![], 0);
    assert_eq!(other.to_persisted().devices[&id()].totals.rx, 1_970);
}

#[test]
fn a_new_source_for_a_counted_interface_starts_as_a_baseline() {
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    ledger.apply("host", vec![obs(vec![counter("eth0", 1_000, 0, "boot")])], 0);
    // vnstat appears later with a huge all-time total: it takes over without a jump.
    ledger.apply(
        "titan",
        vec![obs(vec![counter("eth0", 50_000_000, 0, "2026-01-01")])],
        0,
    );
    assert_eq!(ledger.device(&id()).unwrap().totals.rx, 1_000);
    ledger.apply(
        "titan",
        vec![obs(vec![counter("eth0", 50_000_500, 300, "2026-01-01")])],
        300_000,
    );
    assert_eq!(ledger.device(&id()).unwrap().totals.rx, 1_500);
}

#[test]
fn a_failing_source_makes_its_server_offline_only_if_no_other_vouches() {
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    ledger.apply("titan", vec![obs(vec![counter("eth0", 1, 0, "d")])], 0);
    assert_eq!(ledger.device(&id()).unwrap().online(), Some(true));
    assert_eq!(ledger.source_failed("titan"), vec![id()]);
    assert_eq!(ledger.device(&id()).unwrap().online(), Some(false));
    ledger.apply("host", vec![obs(vec![])], 0);
    assert_eq!(ledger.device(&id()).unwrap().online(), Some(true));
}

#[test]
fn an_unconfigured_source_no_longer_owns_anything() {
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    ledger.apply("titan", vec![obs(vec![counter("eth0", 5_000, 0, "d")])], 0);
    ledger.apply("host", vec![obs(vec![counter("eth0", 100, 0, "b")])], 0);
    // Restart with only the host source configured: host takes over the totals.
    let only_host = vec![feeds().remove(0)];
    let mut ledger = Ledger::new(only_host, ledger.to_persisted(), BTreeMap::new());
    ledger.apply("host", vec![obs(vec![counter("eth0", 300, 10, "b")])], 10_000);
    assert_eq!(ledger.device(&id()).unwrap().interfaces["eth0"].totals.rx, 5_200);
}

#[test]
fn friendly_names_come_from_the_config() {
    let mac: MacAddr = "aa:bb:cc:dd:ee:02".parse().unwrap();
    let mut ledger = Ledger::new(
        feeds(),
        PersistedState::default(),
        BTreeMap::from([(mac, "Laptop".to_owned())]),
    );
    let mut o = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
    o.info.name = Some("android-1234".into());
    o.info.macs = vec![mac];
    ledger.apply("host", vec![o], 0);
    assert_eq!(ledger.device(&DeviceId::from_mac(mac)).unwrap().name(), "Laptop");
}

#[test]
fn descriptive_fields_do_not_flip_between_sources() {
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    let named = |name: &str, model: &str| {
        let mut o = obs(vec![]);
        o.info.name = Some(name.into());
        o.info.model = Some(model.into());
        o
    };
    ledger.apply("host", vec![named("titan", "Server")], 0);
    ledger.apply("titan", vec![named("Titan (vnstat)", "vnStat")], 0);
    ledger.apply("host", vec![named("titan-renamed", "Server")], 0);
    let d = ledger.device(&id()).unwrap();
    assert_eq!(d.name(), "titan-renamed", "the owning source may update its field");
    assert_eq!(d.info.model.as_deref(), Some("Server"));
}

#[test]
fn a_client_missing_from_the_list_goes_offline_and_presence_waits() {
    let mac: MacAddr = "aa:bb:cc:dd:ee:05".parse().unwrap();
    let client = DeviceId::from_mac(mac);
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    let mut o = Observation::new(client.clone(), DeviceKind::Client);
    o.online = Some(true);
    ledger.apply("host", vec![o], 1_000);
    assert_eq!(ledger.device(&client).unwrap().presence(1_000, 180_000), "home");
    let touched = ledger.apply("host", vec![], 31_000);
    assert!(touched.contains(&client), "re-rendered when it disappears");
    let d = ledger.device(&client).unwrap();
    assert_eq!(d.online(), Some(false));
    assert_eq!(d.presence(31_000, 180_000), "home", "within consider_home");
    assert_eq!(d.presence(181_001, 180_000), "not_home");
}

// Issue 8 item 2: one absurd Deco rate (1e306 × unit scaling = inf) made one client's total
// u64::MAX and its remainder NaN, the state file unreadable, and every device restart at 0.
#[test]
fn an_absurd_rate_costs_nobody_their_totals() {
    let rate = |rx_bps: f64, at_s: i64| TrafficReading {
        interface: None,
        sample: TrafficSample::Rate(crate::model::RateSample {
            rx_bps,
            tx_bps: rx_bps,
            at_ms: at_s * 1000,
            max_gap: Duration::from_secs(90),
        }),
    };
    let client = |mac: &str, reading: TrafficReading| {
        let mut o = Observation::new(DeviceId::new(mac).unwrap(), DeviceKind::Client);
        o.traffic = vec![reading];
        o
    };
    let feeds = vec![Feed {
        name: "deco".into(),
        total_rank: 3,
        rate_rank: 1,
    }];
    let mut ledger = Ledger::new(feeds.clone(), PersistedState::default(), BTreeMap::new());
    for (at, absurd) in [(0, 8000.0), (30, 8000.0), (60, 1e306 * 8.0), (90, 8000.0)] {
        ledger.apply(
            "deco",
            vec![
                client("aabbccddee01", rate(8000.0, at)),
                client("aabbccddee02", rate(absurd, at)),
            ],
            at * 1000,
        );
    }
    let good = ledger.device(&DeviceId::new("aabbccddee01").unwrap()).unwrap().totals;
    let hit = ledger.device(&DeviceId::new("aabbccddee02").unwrap()).unwrap().totals;
    assert_eq!(good.rx, 90_000, "8000 bit/s for 90 s");
    assert_eq!(
        hit.rx, 90_000,
        "the absurd sample is skipped, the gap integrated from good ones"
    );
    let text = serde_json::to_string(&ledger.to_persisted()).unwrap();
    let back: PersistedState = serde_json::from_str(&text).expect("the state file stays readable");
    let restarted = Ledger::new(feeds, back, BTreeMap::new());
    assert_eq!(restarted.to_persisted().devices.len(), 2);
}
