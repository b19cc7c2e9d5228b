//! Random MACs, include/exclude and forgetting, through the household.

use super::*;
use crate::model::{BucketSample, HourBucket, TrafficReading, TrafficSample};
use crate::sources::SourceKind;

const PRIVATE_A: &str = "da:a1:19:00:00:01";
const PRIVATE_B: &str = "f6:00:00:00:00:02";
const GLOBAL: &str = "3c:22:fb:10:00:01";

fn household(toml_text: &str) -> Household {
    let settings: Settings = toml::from_str(toml_text).unwrap();
    Household::new(
        &settings,
        vec![(SourceKind::Asus.feed("home"), "asus")],
        PersistedState::default(),
    )
}

fn client(mac: &str, name: &str, online: bool, rx: u64) -> Observation {
    let m: MacAddr = mac.parse().unwrap();
    let mut o = Observation::new(DeviceId::from_mac(m), DeviceKind::Client);
    o.info.name = Some(name.into());
    o.info.macs.push(m);
    o.info.via = Some(DeviceId::new("home").unwrap());
    o.online = Some(online);
    o.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Buckets(BucketSample {
            hours: vec![HourBucket {
                start_s: 0,
                rx,
                tx: rx / 10,
            }],
        }),
    });
    o
}

fn poll(a: u64, b: u64, b_online: bool) -> Vec<Observation> {
    let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
    router.online = Some(true);
    vec![
        router,
        client(PRIVATE_A, "iPhone", true, a),
        client(GLOBAL, "Pixel", true, 10),
        client(PRIVATE_B, "Galaxy", b_online, b),
    ]
}

fn ids(h: &Household) -> Vec<String> {
    h.devices().map(|d| d.id.to_string()).collect()
}

#[test]
fn grouped_private_macs_are_one_device_with_their_summed_traffic() {
    let mut h = household("[bridge]\nrandom_macs = \"group\"");
    h.apply("home", poll(1_000, 500, false), 0);
    h.apply("home", poll(3_000, 700, false), 60_000);
    assert_eq!(ids(&h), ["3c22fb100001", "home", admission::GROUP_ID]);
    let g = h.device(&DeviceId::new(admission::GROUP_ID).unwrap()).unwrap();
    assert_eq!(g.name(), admission::GROUP_NAME);
    assert_eq!(
        g.totals.rx, 3_700,
        "each member's counter counted on its own, then summed"
    );
    assert_eq!(g.today.unwrap().rx, 2_200, "what grew after the group appeared");
    assert_eq!(g.online(), Some(true), "online while any member is, whoever came last");
    assert!(g.info.macs.is_empty(), "no member MAC in HA's connections");
    // Its members are in its state, not entities of their own.
    let topics = crate::publish::Topics::new(&crate::config::MqttSettings::default());
    let ctx = crate::publish::discovery::Context {
        topics: &topics,
        version: "t",
    };
    let objects: Vec<String> = ctx.device_entities(g).into_iter().map(|e| e.object).collect();
    assert!(objects.iter().all(|o| !o.contains("daa119")), "{objects:?}");
    assert!(objects.contains(&"rx_bytes".to_owned()));
}

#[test]
fn ignored_private_macs_and_excluded_devices_are_never_published() {
    let mut h = household("[bridge]\nrandom_macs = \"ignore\"\nexclude = [\"pixel\"]");
    h.apply("home", poll(1_000, 500, true), 0);
    assert_eq!(ids(&h), ["home"]);
    assert!(h.forget_due(0).is_empty(), "never published: nothing to remove");
    // Tracked first, then ignored after a restart with the new setting: removed.
    let mut h = household("");
    h.apply("home", poll(1_000, 500, true), 0);
    assert_eq!(ids(&h).len(), 4);
    let saved = h.to_persisted();
    let settings: Settings = toml::from_str("[bridge]\nrandom_macs = \"ignore\"").unwrap();
    let mut h = Household::new(&settings, vec![(SourceKind::Asus.feed("home"), "asus")], saved);
    h.apply("home", poll(1_100, 600, true), 60_000);
    let due: Vec<String> = h.forget_due(60_000).iter().map(ToString::to_string).collect();
    assert_eq!(due, ["daa119000001", "f60000000002"]);
}

#[test]
fn last_seen_survives_a_restart_and_drives_forgetting() {
    let mut h = household("[bridge]\nforget_after = \"2d\"");
    h.apply("home", poll(1_000, 500, true), 0);
    // Galaxy goes offline and stays away; the others are seen a day later.
    h.apply("home", poll(2_000, 500, false), 86_400_000);
    let saved = h.to_persisted();
    let settings: Settings = toml::from_str("[bridge]\nforget_after = \"2d\"").unwrap();
    let mut h = Household::new(&settings, vec![(SourceKind::Asus.feed("home"), "asus")], saved);
    // After the restart nobody has reported yet: restored devices are judged by the file.
    let due: Vec<String> = h
        .forget_due(2 * 86_400_000 + 1)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(due, ["f60000000002"]);
    h.remove(&DeviceId::new("f60000000002").unwrap(), 2 * 86_400_000 + 1);
    assert!(
        !h.to_persisted()
            .devices
            .contains_key(&DeviceId::new("f60000000002").unwrap())
    );
}

#[test]
fn a_device_excluded_by_a_name_one_source_knows_stays_out() {
    let mut h = household("[bridge]\nexclude = [\"Guest TV\"]");
    let nameless = |at| {
        let mut o = client(GLOBAL, "", true, 10);
        o.info.name = None;
        h_poll(o, at)
    };
    // The ASUS has no name for it: tracked, until the Deco names it.
    h.apply("home", nameless(0), 0);
    assert!(h.device(&DeviceId::from_mac(GLOBAL.parse().unwrap())).is_some());
    h.apply("mesh", vec![client(GLOBAL, "Guest TV", true, 10)], 1_000);
    assert_eq!(h.forget_due(1_000).len(), 1);
    h.remove(&DeviceId::from_mac(GLOBAL.parse().unwrap()), 1_000);
    // The nameless entry comes again: it stays out.
    h.apply("home", nameless(2_000), 2_000);
    assert!(h.device(&DeviceId::from_mac(GLOBAL.parse().unwrap())).is_none());
}

fn h_poll(o: Observation, _at: i64) -> Vec<Observation> {
    let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
    router.online = Some(true);
    vec![router, o]
}
