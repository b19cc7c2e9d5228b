//! The seed household in both Deco modes, built from observations as the sources make them.

use std::time::Duration;

use super::*;
use crate::config::{MacList, VnstatSettings};
use crate::model::{BucketSample, CounterSample, HourBucket, RateSample, TrafficReading, TrafficSample, WrapRule};
use crate::sources::SourceKind;

const TITAN: &str = "aa:bb:cc:00:00:01";
const DECO_LAN: &str = "f0:09:0d:fa:29:7c";
const DECO_WAN: &str = "f0:09:0d:fa:29:7d";
const ROUTER: &str = "04:42:1a:00:00:01";
const PHONE: &str = "3c:22:fb:10:00:01";

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn id(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn mac_id(s: &str) -> DeviceId {
    DeviceId::from_mac(mac(s))
}

/// `[vnstat.titan]` with its name and MAC, as the seed configures it.
fn titan_settings() -> Settings {
    let mut settings = Settings::default();
    settings.vnstat.insert(
        "titan".into(),
        VnstatSettings {
            name: Some("Titan".into()),
            mac: MacList(vec![mac(TITAN)]),
            ..VnstatSettings::default()
        },
    );
    settings
}

/// The seed household (Titan, the ASUS, the Deco) from a state file.
fn household_from(saved: PersistedState) -> Household {
    let feeds = vec![
        (SourceKind::Vnstat.feed("titan"), "vnstat"),
        (SourceKind::Asus.feed("home"), "asus"),
        (SourceKind::Deco.feed("mesh"), "deco"),
    ];
    Household::new(&titan_settings(), feeds, saved)
}

fn household() -> Household {
    household_from(PersistedState::default())
}

fn titan(rx: u64, at_s: i64) -> Observation {
    let mut o = Observation::new(id("titan"), DeviceKind::Server);
    o.info.name = Some("Titan".into());
    o.info.macs.push(mac(TITAN));
    o.online = Some(true);
    o.traffic.push(TrafficReading {
        interface: Some("eno1".into()),
        sample: TrafficSample::Counter(CounterSample {
            rx,
            tx: rx / 10,
            epoch: Some("db".into()),
            at_ms: at_s * 1000,
            wrap: WrapRule::Never,
            rate_window: Duration::from_secs(600),
        }),
    });
    o
}

fn rate_client(m: &str, name: &str, via: &str, bps: f64, at_s: i64) -> Observation {
    let mut o = Observation::new(mac_id(m), DeviceKind::Client);
    o.info.name = Some(name.into());
    o.info.macs.push(mac(m));
    o.info.via = Some(mac_id(via));
    o.online = Some(true);
    o.attributes.insert("band".into(), "5 GHz".into());
    o.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Rate(RateSample {
            rx_bps: bps,
            tx_bps: bps / 10.0,
            at_ms: at_s * 1000,
            max_gap: Duration::from_secs(120),
        }),
    });
    o
}

/// The Deco: its master node (LAN and WAN MAC), Titan and a phone as clients.
fn deco(at_s: i64) -> Vec<Observation> {
    let mut master = Observation::new(mac_id(DECO_LAN), DeviceKind::MeshNode);
    master.info.name = Some("Living Room".into());
    master.info.macs = vec![mac(DECO_LAN), mac(DECO_WAN)];
    master.online = Some(true);
    vec![
        master,
        rate_client(TITAN, "titan", DECO_LAN, 8_000_000.0, at_s),
        rate_client(PHONE, "Phone", DECO_LAN, 800_000.0, at_s),
    ]
}

fn bucket_client(m: &str, name: &str, bytes: u64) -> Observation {
    let mut o = Observation::new(mac_id(m), DeviceKind::Client);
    o.info.name = Some(name.into());
    o.info.macs.push(mac(m));
    o.info.via = Some(id("home"));
    o.online = Some(true);
    o.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Buckets(BucketSample {
            hours: vec![HourBucket {
                start_s: 0,
                rx: bytes,
                tx: bytes / 10,
            }],
        }),
    });
    o
}

/// The ASUS: itself, and one client: the Deco's WAN side (double NAT) or the phone too (AP).
fn asus(clients: Vec<Observation>) -> Vec<Observation> {
    let mut router = Observation::new(id("home"), DeviceKind::Router);
    router.info.name = Some("RT-AX86U Pro".into());
    router.info.macs.push(mac(ROUTER));
    router.online = Some(true);
    let mut out = vec![router];
    out.extend(clients);
    out
}

/// No MAC in two devices (HA's `DeviceInfoError`), every `via` names a device.
fn assert_one_device_per_thing(h: &Household) {
    let mut owner: BTreeMap<MacAddr, DeviceId> = BTreeMap::new();
    for d in h.devices() {
        for m in &d.info.macs {
            if let Some(other) = owner.insert(*m, d.id.clone()) {
                panic!("{m} is in {other} and {}", d.id);
            }
        }
        if let Some(via) = &d.info.via {
            assert!(h.device(via).is_some(), "{} via missing {via}", d.id);
        }
    }
}

#[test]
fn double_nat_one_device_per_thing_whoever_answers_first() {
    let mut h = household();
    let asus_first = asus(vec![bucket_client(DECO_WAN, "deco-wan", 5_000_000)]);
    let deco_polls = deco(0);
    // The bridge learns from the whole first round before applying any of it.
    h.learn(&asus_first);
    h.learn(&deco_polls);
    h.apply("home", asus_first, 0);
    h.apply("mesh", deco_polls, 0);
    h.apply("titan", vec![titan(9_000_000, 0)], 0);
    h.apply("mesh", deco(60), 60_000);
    h.apply("titan", vec![titan(10_000_000, 60)], 60_000);

    let ids: Vec<String> = h.devices().map(|d| d.id.to_string()).collect();
    assert_eq!(
        ids,
        ["3c22fb100001", "f0090dfa297c", "home", "titan"],
        "no device for the Deco's WAN MAC"
    );
    assert_one_device_per_thing(&h);

    let node = h.device(&mac_id(DECO_LAN)).unwrap();
    assert_eq!(node.info.via, Some(id("home")), "mesh node via its upstream router");
    assert_eq!(node.totals.rx, 5_000_000, "the ASUS counts the Deco's uplink exactly");
    assert_eq!(node.info.name.as_deref(), Some("Living Room"));

    let t = h.device(&id("titan")).unwrap();
    assert_eq!(
        t.info.name.as_deref(),
        Some("Titan"),
        "configured name, not the Deco's host name"
    );
    assert_eq!(t.kind, DeviceKind::Server);
    assert_eq!(t.info.via, None, "servers hang off the bridge");
    assert_eq!(t.totals.rx, 10_000_000, "headline from vnstat only");
    assert_eq!(t.headline_source.as_deref(), Some("vnstat:titan"));
    let estimate = &t.views["mesh"];
    assert!(estimate.estimated);
    assert_eq!(
        estimate.totals.rx, 60_000_000,
        "the Deco's estimate kept as a secondary view"
    );
    assert_eq!(estimate.label.as_deref(), Some("Deco estimate"));

    let phone = h.device(&mac_id(PHONE)).unwrap();
    eprintln!("place {:?}", h.placement.get(&mac_id(PHONE)).map(|p| &p.via));
    for d in h.devices() {
        eprintln!("{} {:?}", d.id, d.kind);
    }
    assert_eq!(phone.info.via, Some(mac_id(DECO_LAN)));
}

#[test]
fn access_point_mode_the_asus_counts_and_the_deco_places() {
    let mut h = household();
    h.apply("home", asus(vec![bucket_client(PHONE, "phone-asus", 7_000)]), 0);
    h.apply("mesh", deco(0), 0);
    h.apply("mesh", deco(10), 10_000);
    h.apply("home", asus(vec![bucket_client(PHONE, "phone-asus", 9_000)]), 10_000);
    assert_one_device_per_thing(&h);
    let phone = h.device(&mac_id(PHONE)).unwrap();
    assert_eq!(
        phone.totals.rx, 9_000,
        "exact Traffic Analyzer numbers are the headline"
    );
    assert!(!phone.estimated);
    assert_eq!(
        phone.views["mesh"].totals.rx, 1_000_000,
        "the Deco's estimate is secondary"
    );
    assert_eq!(phone.rates.rx_bps, Some(800_000.0), "the only live rate is the Deco's");
    assert_eq!(phone.info.via, Some(mac_id(DECO_LAN)), "the Deco knows the node");
    assert_eq!(
        phone.info.name.as_deref(),
        Some("phone-asus"),
        "the better-ranked source names it"
    );
    assert_eq!(phone.attributes["band"], "5 GHz", "the Deco adds its band");
}

#[test]
fn a_lost_headline_source_never_lowers_the_total() {
    let mut h = household();
    h.apply("titan", vec![titan(1_000, 0)], 0);
    h.apply("mesh", deco(0), 0);
    h.apply("titan", vec![titan(2_000, 10)], 10_000);
    let before = h.device(&id("titan")).unwrap().totals;
    // vnstat is down; only the Deco keeps reporting.
    for t in 1..5 {
        h.apply("mesh", deco(10 + t * 10), (10 + t * 10) * 1000);
        let now = h.device(&id("titan")).unwrap().totals;
        assert_eq!(now, before, "the estimate does not feed a vnstat server's headline");
    }
    h.apply("titan", vec![titan(3_000, 60)], 60_000);
    assert_eq!(h.device(&id("titan")).unwrap().totals.rx, 3_000);
}

#[test]
fn configured_names_and_renames_change_only_the_name() {
    let mut settings = Settings::default();
    settings.devices.insert(
        PHONE.into(),
        crate::config::DeviceSettings {
            name: Some("Anna's phone".into()),
        },
    );
    let feeds = vec![(SourceKind::Deco.feed("mesh"), "deco")];
    let mut h = Household::new(&settings, feeds, PersistedState::default());
    h.apply("mesh", deco(0), 0);
    assert_eq!(h.device(&mac_id(PHONE)).unwrap().name(), "Anna's phone");
    assert!(h.rename(&mac_id(PHONE), "Phone 2"));
    h.apply("mesh", deco(10), 10_000);
    let phone = h.device(&mac_id(PHONE)).unwrap();
    assert_eq!(phone.name(), "Phone 2");
    assert_eq!(phone.id, mac_id(PHONE));
    assert!(!h.rename(&id("nope"), "x"));
    assert!(h.remove(&mac_id(PHONE), 10_000));
    assert!(h.device(&mac_id(PHONE)).is_none());
}

#[test]
fn identities_survive_a_restart() {
    let mut h = household();
    h.apply("mesh", deco(0), 0);
    let saved = h.to_persisted();
    // After a restart the ASUS answers first: the Deco's WAN MAC is already known.
    let feeds = vec![
        (SourceKind::Asus.feed("home"), "asus"),
        (SourceKind::Deco.feed("mesh"), "deco"),
    ];
    let mut h = Household::new(&Settings::default(), feeds, saved);
    h.apply("home", asus(vec![bucket_client(DECO_WAN, "deco-wan", 5_000)]), 0);
    assert!(h.device(&mac_id(DECO_WAN)).is_none());
    assert_eq!(h.device(&mac_id(DECO_LAN)).unwrap().totals.rx, 5_000);
}

#[test]
fn today_and_this_month_count_headline_deltas_and_roll_at_midnight() {
    let mut settings = Settings::default();
    settings.bridge.timezone = Some("UTC".into());
    let feeds = vec![(SourceKind::Vnstat.feed("titan"), "vnstat")];
    let mut h = Household::new(&settings, feeds, PersistedState::default());
    // 1 Feb 2026 23:58 UTC: the database's history is not today's traffic.
    let t0 = 1_769_990_280;
    h.apply("titan", vec![titan(9_000_000, t0)], t0 * 1000);
    h.apply("titan", vec![titan(9_500_000, t0 + 60)], (t0 + 60) * 1000);
    let d = h.device(&id("titan")).unwrap();
    assert_eq!(d.today.unwrap().rx, 500_000);
    assert_eq!(d.this_month.unwrap().rx, 500_000);
    // Midnight passes with vnstat down: the tick alone starts the new day.
    assert_eq!(h.tick((t0 + 180) * 1000), vec![id("titan")]);
    assert_eq!(h.device(&id("titan")).unwrap().today.unwrap().rx, 0);
    assert_eq!(
        h.device(&id("titan")).unwrap().this_month.unwrap().rx,
        500_000,
        "February goes on"
    );
    h.apply("titan", vec![titan(9_600_000, t0 + 240)], (t0 + 240) * 1000);
    assert_eq!(h.device(&id("titan")).unwrap().today.unwrap().rx, 100_000);
    // Periods survive a restart.
    let saved = h.to_persisted();
    let feeds = vec![(SourceKind::Vnstat.feed("titan"), "vnstat")];
    let mut h = Household::new(&settings, feeds, saved);
    h.apply("titan", vec![titan(9_700_000, t0 + 300)], (t0 + 300) * 1000);
    assert_eq!(h.device(&id("titan")).unwrap().today.unwrap().rx, 200_000);
    assert_eq!(h.device(&id("titan")).unwrap().this_month.unwrap().rx, 700_000);
}

#[test]
fn traffic_analyzer_hours_land_in_the_day_they_happened() {
    let mut settings = Settings::default();
    settings.bridge.timezone = Some("UTC".into());
    let feeds = vec![(SourceKind::Asus.feed("home"), "asus")];
    let mut h = Household::new(&settings, feeds, PersistedState::default());
    let hours = |list: &[(i64, u64)]| {
        let mut o = bucket_client(PHONE, "Phone", 0);
        o.traffic[0].sample = TrafficSample::Buckets(BucketSample {
            hours: list
                .iter()
                .map(|&(start_s, rx)| HourBucket { start_s, rx, tx: 0 })
                .collect(),
        });
        asus(vec![o])
    };
    // 1 Feb 2026 23:00 UTC; the router's hour rows are read at 23:10, 23:40 and 00:05.
    let h23 = 1_769_986_800;
    let phone = mac_id(PHONE);
    h.apply("home", hours(&[(h23, 1_000)]), (h23 + 600) * 1000);
    h.apply("home", hours(&[(h23, 3_000)]), (h23 + 2_400) * 1000);
    assert_eq!(h.device(&phone).unwrap().today.unwrap().rx, 2_000);
    h.apply("home", hours(&[(h23, 5_000), (h23 + 3600, 300)]), (h23 + 3_900) * 1000);
    let d = h.device(&phone).unwrap();
    assert_eq!(d.totals.rx, 5_300);
    assert_eq!(d.today.unwrap().rx, 300, "23:00's last 2,000 B happened yesterday");
    assert_eq!(d.this_month.unwrap().rx, 4_300, "all of it in February");
    let p = &h.periods[&phone];
    assert_eq!(p.yesterday.rx, 4_000);
}

#[test]
fn entity_ids_are_fixed_at_first_publication_and_unique() {
    let mut settings = Settings::default();
    settings.devices.insert(
        PHONE.into(),
        crate::config::DeviceSettings {
            name: Some("Anna's phone".into()),
        },
    );
    let feeds = || vec![(SourceKind::Deco.feed("mesh"), "deco")];
    let mut h = Household::new(&settings, feeds(), PersistedState::default());
    h.apply("mesh", deco(0), 0);
    h.pin_entity_slug(&mac_id(PHONE));
    assert_eq!(
        h.device(&mac_id(PHONE)).unwrap().entity_slug.as_deref(),
        Some("anna_s_phone")
    );
    // A command rename, then a restart with another configured name: the ids stay.
    assert!(h.rename(&mac_id(PHONE), "Phone 2"));
    h.pin_entity_slug(&mac_id(PHONE));
    assert_eq!(
        h.device(&mac_id(PHONE)).unwrap().entity_slug.as_deref(),
        Some("anna_s_phone")
    );
    let saved = h.to_persisted();
    settings.devices.insert(
        PHONE.into(),
        crate::config::DeviceSettings {
            name: Some("Kitchen tablet".into()),
        },
    );
    let mut h = Household::new(&settings, feeds(), saved);
    h.apply("mesh", deco(10), 10_000);
    h.pin_entity_slug(&mac_id(PHONE));
    assert_eq!(
        h.device(&mac_id(PHONE)).unwrap().entity_slug.as_deref(),
        Some("anna_s_phone")
    );
    // Another thing that is also called "Anna's phone" gets its id appended, not HA's `_2`.
    let other = "3c:22:fb:10:00:09";
    let mut twin = rate_client(other, "Anna's phone", DECO_LAN, 1000.0, 20);
    twin.info.name = Some("Anna's phone".into());
    h.apply("mesh", vec![twin], 20_000);
    h.pin_entity_slug(&mac_id(other));
    assert_eq!(
        h.device(&mac_id(other)).unwrap().entity_slug.as_deref(),
        Some("anna_s_phone_3c22fb100009")
    );
}

#[test]
fn access_point_mode_a_deco_unit_the_router_lists_by_its_own_mac_stays_a_node() {
    let mut h = household();
    // In AP mode the ASUS lists the Deco unit by its LAN MAC, which is also its device id.
    let node_as_client = bucket_client(DECO_LAN, "deco", 1_000);
    let a = asus(vec![bucket_client(PHONE, "phone-asus", 7_000), node_as_client.clone()]);
    let d = deco(0);
    h.learn(&a);
    h.learn(&d);
    h.apply("home", a, 0);
    h.apply("mesh", d, 0);
    h.apply("mesh", deco(10), 10_000);
    h.apply(
        "home",
        asus(vec![bucket_client(PHONE, "phone-asus", 9_000), node_as_client]),
        10_000,
    );
    assert_one_device_per_thing(&h);
    let node = h.device(&mac_id(DECO_LAN)).unwrap();
    assert_eq!(node.kind, DeviceKind::MeshNode, "not a client of the router");
    assert_eq!(node.info.via, Some(id("home")), "the router it is plugged into");
    assert_eq!(node.name(), "Living Room", "the Deco names its node");
    let phone = h.device(&mac_id(PHONE)).unwrap();
    assert_eq!(phone.info.via, Some(mac_id(DECO_LAN)), "the client hangs off its node");
}

#[test]
fn double_nat_clients_are_reconciled_with_the_uplink_the_asus_counts() {
    let mut h = household();
    let uplink = |rx: u64, tx: u64| {
        let mut wan = bucket_client(DECO_WAN, "deco-wan", 0);
        wan.traffic[0].sample = TrafficSample::Buckets(BucketSample {
            hours: vec![HourBucket { start_s: 0, rx, tx }],
        });
        asus(vec![wan])
    };
    // The first round: who is who is learnt from every source before anything is applied.
    h.learn(&uplink(0, 0));
    h.learn(&deco(0));
    h.apply("home", uplink(0, 0), 0);
    // An hour: the Deco estimates the phone at 100 kB/s down; Titan counts 1 MB a minute.
    for minute in 0..=60 {
        let t = minute * 60;
        h.apply("mesh", deco(t), t * 1000);
        h.apply("titan", vec![titan(1_000_000 + minute as u64 * 1_000_000, t)], t * 1000);
    }
    let phone = h.device(&mac_id(PHONE)).unwrap().clone();
    assert_eq!(phone.views["mesh"].totals.rx, 360_000_000);
    assert_eq!(
        phone.totals.rx, 360_000_000,
        "the open hour: raw × 1 until the uplink is read"
    );
    assert_eq!(
        phone.headline_source.as_deref(),
        Some("deco:mesh"),
        "nothing reconciled yet"
    );
    // The ASUS's hour: Titan's 60 MB and twice what the Deco estimated for the phone.
    h.apply(
        "home",
        uplink(60_000_000 + 720_000_000, 6_000_000 + 72_000_000),
        3_600_000,
    );
    let phone = h.device(&mac_id(PHONE)).unwrap();
    assert_eq!(
        phone.totals.rx, 720_000_000,
        "the uplink minus what Titan counted itself"
    );
    assert_eq!(phone.totals.tx, 72_000_000);
    assert!(phone.estimated && phone.reconciled);
    assert_eq!(phone.headline_source.as_deref(), Some("reconciled:mesh"));
    assert_eq!(phone.today.unwrap().rx, 720_000_000, "today follows the headline");
    let secondary: Vec<&String> = crate::publish::state::secondary_views(phone).map(|(s, _)| s).collect();
    assert_eq!(secondary, ["mesh"], "the raw estimate stays, as a secondary view");
    assert_eq!(phone.views["mesh"].totals.rx, 360_000_000);
    // Titan's headline is vnstat's, untouched.
    assert_eq!(h.device(&id("titan")).unwrap().totals.rx, 61_000_000);
    // A lower re-read of the same hour never lowers a total.
    h.apply("home", uplink(100, 10), 3_610_000);
    assert_eq!(h.device(&mac_id(PHONE)).unwrap().totals.rx, 720_000_000);
    // Restart: the reconciliation continues from the state file.
    let mut h = household_from(h.to_persisted());
    h.apply("mesh", deco(3_660), 3_660_000);
    assert!(h.device(&mac_id(PHONE)).unwrap().totals.rx >= 720_000_000);
}

/// Late identity claims (merge.rs), with the helpers above.
#[path = "merge_tests.rs"]
mod merge;
