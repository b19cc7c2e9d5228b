use std::collections::BTreeMap;

use super::*;
use crate::accounting::{Feed, Ledger, PersistedState, Totals};
use crate::model::{MacAddr, MetricUnit, Observation};

fn client() -> Device {
    client_online(true)
}

fn client_online(online: bool) -> Device {
    let feeds = vec![Feed {
        name: "mesh".into(),
        total_rank: 0,
        rate_rank: 0,
    }];
    let mut ledger = Ledger::new(feeds, PersistedState::default(), BTreeMap::new());
    let id = DeviceId::new("laptop").unwrap();
    let mut o = Observation::new(id.clone(), DeviceKind::Client);
    o.online = Some(online);
    o.info.name = Some("Laptop".into());
    o.info.macs = vec![MacAddr::new([2, 0, 0, 0, 0, 1])];
    o.label("ip", "IP", Some("10.0.0.2".into()));
    o.metric("signal", "Signal", MetricUnit::Dbm, Some(-60.0));
    ledger.apply("mesh", vec![o], 0);
    let mut device = ledger.device(&id).unwrap().clone();
    device.has_traffic = true;
    device
}

const CLOCK: StateClock = StateClock {
    now_ms: 0,
    consider_home_ms: 180_000,
    sources_down_ms: None,
};

fn prints(d: &Device) -> [u64; 4] {
    [
        description_print(d),
        state_print(d, CLOCK),
        attributes_print(d),
        summary_print(d),
    ]
}

/// Each change must show in the prints of exactly the payloads that read it.
#[test]
fn every_input_changes_the_prints_of_the_payloads_that_read_it() {
    let base = client();
    let before = prints(&base);
    assert_eq!(before, prints(&base.clone()), "deterministic");
    type Change = (&'static str, fn(&mut Device), [bool; 4]);
    let changes: [Change; 18] = [
        (
            "name",
            |d| d.info.name = Some("Work laptop".into()),
            [true, false, true, true],
        ),
        (
            "model",
            |d| d.info.model = Some("X1".into()),
            [true, false, false, false],
        ),
        (
            "via",
            |d| d.info.via = Some(DeviceId::new("node").unwrap()),
            [true, false, false, false],
        ),
        (
            "ip",
            |d| d.info.ip = Some("10.0.0.9".into()),
            [false, false, true, true],
        ),
        (
            "a source",
            |d| {
                d.sources.insert("other".into());
            },
            [true, false, false, true],
        ),
        (
            "rate sources",
            |d| {
                d.rate_sources.insert("mesh".into());
            },
            [true, false, false, false],
        ),
        ("totals", |d| d.totals.rx += 1, [false, true, false, false]),
        ("rate", |d| d.rates.rx_bps = Some(1234.0), [false, true, false, false]),
        (
            "today",
            |d| d.today = Some(Totals { rx: 1, tx: 0 }),
            [true, true, false, false],
        ),
        (
            "label value",
            |d| d.labels.get_mut("ip").unwrap().value = None,
            [false, true, false, false],
        ),
        (
            "label name",
            |d| d.labels.get_mut("ip").unwrap().name = "Address".into(),
            [true, false, false, false],
        ),
        (
            "metric value",
            |d| d.metrics.get_mut("signal").unwrap().value = Some(-61.0),
            [false, true, false, false],
        ),
        ("estimated", |d| d.estimated = true, [true, true, false, false]),
        (
            "entity slug",
            |d| d.entity_slug = Some("pinned".into()),
            [true, false, false, false],
        ),
        (
            "a data plan",
            |d| {
                d.quota = Some(crate::model::Quota {
                    quota: 100,
                    used: 1,
                    remaining: 99,
                    over: false,
                    period: "month",
                })
            },
            [true, true, false, false],
        ),
        ("reconciled", |d| d.reconciled = true, [false, true, false, false]),
        (
            "quota used",
            |d| {
                d.quota = Some(crate::model::Quota {
                    quota: 0,
                    used: 0,
                    remaining: 0,
                    over: true,
                    period: "day",
                })
            },
            [true, true, false, false],
        ),
        (
            "attribute",
            |d| {
                d.attributes.insert("band".into(), serde_json::json!("5 GHz"));
            },
            [false, false, true, false],
        ),
    ];
    for (what, change, expect) in changes {
        let mut d = base.clone();
        change(&mut d);
        let after = prints(&d);
        let changed: Vec<bool> = before.iter().zip(after).map(|(a, b)| *a != b).collect();
        assert_eq!(changed, expect, "{what}: [description, state, attributes, summary]");
    }
}

#[test]
fn nested_attribute_values_are_told_apart() {
    let mut a = client();
    a.attributes
        .insert("apps".into(), serde_json::json!([["web", 1], ["video", 2]]));
    let mut b = a.clone();
    b.attributes
        .insert("apps".into(), serde_json::json!([["web", 1], ["video", 3]]));
    let mut c = a.clone();
    c.attributes.insert("apps".into(), serde_json::json!([["web", 1]]));
    let prints = [&a, &b, &c].map(attributes_print);
    assert!(prints[0] != prints[1] && prints[1] != prints[2] && prints[0] != prints[2]);
}

#[test]
fn rates_change_the_state_only_as_far_as_it_shows_them() {
    let mut d = client();
    d.rates.rx_bps = Some(1000.2);
    let a = state_print(&d, CLOCK);
    d.rates.rx_bps = Some(1000.4);
    assert_eq!(a, state_print(&d, CLOCK), "both publish 1000 bit/s");
}

#[test]
fn time_changes_the_state_only_when_presence_does() {
    let at = |d: &Device, now_ms, down: Option<i64>| {
        state_print(
            d,
            StateClock {
                now_ms,
                sources_down_ms: down,
                ..CLOCK
            },
        )
    };
    let d = client();
    assert_eq!(at(&d, 1_000, None), at(&d, 100_000, None));
    assert_eq!(at(&d, 1_000, None), at(&d, 1_000, Some(1_000)), "a short outage");
    assert_ne!(
        at(&d, 1_000, None),
        at(&d, 1_000, Some(200_000)),
        "longer than consider_home"
    );
    let mut gone = client_online(false);
    gone.last_online_ms = Some(0);
    assert_eq!(at(&gone, 1_000, None), at(&gone, 100_000, None), "still counts as home");
    assert_ne!(
        at(&gone, 1_000, None),
        at(&gone, 200_000, None),
        "away once consider_home passed"
    );
}

#[test]
fn the_cache_renders_each_part_once_per_change() {
    let mut cache = RenderCache::new();
    let id = DeviceId::new("laptop").unwrap();
    assert!(cache.changed(&id, Part::State, 1));
    assert!(!cache.changed(&id, Part::State, 1));
    assert!(cache.changed(&id, Part::Description, 1), "parts are separate");
    assert!(cache.changed(&id, Part::State, 2));
    cache.invalidate(&id, Part::State);
    assert!(cache.changed(&id, Part::State, 2));
    cache.forget(&id);
    assert!(cache.is_empty());
    assert!(cache.changed(&id, Part::State, 2), "a device that came back");
    cache.retain(|_| false);
    assert_eq!(cache.len(), 0);
}
