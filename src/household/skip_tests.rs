//! The household's fast path: what it skips, what still happens as time passes, and that the
//! state file written from borrowed data is the one `to_persisted` describes.

use std::time::Duration;

use super::*;
use crate::accounting::StateStore;
use crate::model::{RateSample, TrafficReading, TrafficSample};
use crate::sources::SourceKind;

const NODE: &str = "f0:09:0d:fa:29:7c";
const PHONE: &str = "3c:22:fb:10:00:01";

fn mac_id(s: &str) -> DeviceId {
    DeviceId::from_mac(s.parse().unwrap())
}

fn household() -> Household {
    let feeds = vec![(SourceKind::Deco.feed("mesh"), "deco")];
    Household::new(&Settings::default(), feeds, PersistedState::default())
}

/// The mesh node and the phone, which moves `bps` (0: idle).
fn poll(bps: f64, online: bool, at_s: i64) -> Vec<Observation> {
    let mut node = Observation::new(mac_id(NODE), DeviceKind::MeshNode);
    node.info.name = Some("Living Room".into());
    node.info.macs = vec![NODE.parse().unwrap()];
    node.online = Some(true);
    let mut phone = Observation::new(mac_id(PHONE), DeviceKind::Client);
    phone.info.name = Some("Phone".into());
    phone.info.macs.push(PHONE.parse().unwrap());
    phone.info.via = Some(mac_id(NODE));
    phone.online = Some(online);
    phone.attributes.insert("band".into(), "5 GHz".into());
    phone.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Rate(RateSample {
            rx_bps: bps,
            tx_bps: bps,
            at_ms: at_s * 1000,
            max_gap: Duration::from_secs(120),
        }),
    });
    vec![node, phone]
}

#[test]
fn an_unchanged_client_is_not_touched_and_ends_up_as_the_full_path_leaves_it() {
    let mut fast = household();
    let mut full = household();
    for h in [&mut fast, &mut full] {
        assert!(h.apply("mesh", poll(0.0, true, 0), 0).contains(&mac_id(PHONE)));
        h.saved();
    }
    let applied = fast.apply_poll("mesh", poll(0.0, true, 3), 3_000);
    assert!(!applied.touched.contains(&mac_id(PHONE)), "{:?}", applied.touched);
    assert_eq!(
        applied.devices, 2,
        "bridge/info still counts every device of the source"
    );
    assert!(!fast.persist().dirty, "only timestamps moved: {:?}", fast.persist());
    assert!(fast.persist().stale);

    full.skips.clear();
    assert!(full.apply("mesh", poll(0.0, true, 3), 3_000).contains(&mac_id(PHONE)));
    assert_eq!(fast.to_persisted(), full.to_persisted());
    assert_eq!(fast.device(&mac_id(PHONE)), full.device(&mac_id(PHONE)));

    // Traffic again: the full path, and bytes make the state file dirty.
    let applied = fast.apply_poll("mesh", poll(8_000.0, true, 6), 6_000);
    assert!(applied.touched.contains(&mac_id(PHONE)));
    assert!(fast.persist().dirty);
}

#[test]
fn an_offline_client_is_rendered_until_its_presence_ran_out() {
    let mut h = household();
    h.apply("mesh", poll(0.0, true, 0), 0);
    h.apply("mesh", poll(0.0, true, 3), 3_000);
    assert!(h.apply("mesh", poll(0.0, false, 6), 6_000).contains(&mac_id(PHONE)));
    let phone = |h: &Household, at_s: i64| {
        h.device(&mac_id(PHONE))
            .map(|d| d.presence(at_s * 1000, 180_000))
            .unwrap_or("?")
    };
    // The same offline observation: skipped, but presence (home until 3 s + 180 s) may turn.
    assert!(h.apply("mesh", poll(0.0, false, 100), 100_000).contains(&mac_id(PHONE)));
    assert_eq!(phone(&h, 100), "home");
    assert!(
        h.apply("mesh", poll(0.0, false, 190), 190_000).contains(&mac_id(PHONE)),
        "the poll that sees it turn"
    );
    assert_eq!(phone(&h, 190), "not_home");
    assert!(
        !h.apply("mesh", poll(0.0, false, 200), 200_000).contains(&mac_id(PHONE)),
        "nothing left to change"
    );
}

#[test]
fn the_state_file_written_from_borrowed_data_is_to_persisted() {
    let mut h = household();
    h.apply("mesh", poll(8_000.0, true, 0), 0);
    h.apply("mesh", poll(8_000.0, true, 3), 3_000);
    h.set_cursor("mesh", serde_json::json!({"a": 1}));
    h.set_cursor("0early", serde_json::json!(2));
    let dir = tempfile::tempdir().unwrap();
    let borrowed = StateStore::new(dir.path().join("borrowed"));
    h.save_to(&borrowed, false).unwrap();
    let copied = StateStore::new(dir.path().join("copied"));
    copied.save(&h.to_persisted()).unwrap();
    let read = |s: &StateStore| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(s.path()).unwrap()).unwrap()
    };
    assert_eq!(read(&borrowed), read(&copied));
    let mut expected = h.to_persisted();
    expected.version = 1;
    assert_eq!(borrowed.load().unwrap(), expected);
    assert_eq!(borrowed.writes(), 1);
}
