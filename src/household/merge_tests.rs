//! A MAC claimed after it was published as a client: the client is retired and merged.

use super::*;

#[test]
fn a_deco_that_answers_late_takes_over_its_wan_client_without_a_jump() {
    let mut h = household();
    // The Deco is down in the first round: the ASUS's entry for its WAN MAC is a client.
    h.apply("home", asus(vec![bucket_client(DECO_WAN, "deco-wan", 5_000_000)]), 0);
    assert!(h.device(&mac_id(DECO_WAN)).is_some());
    assert!(h.take_retired().is_empty());
    // It answers: its node claims the WAN MAC.
    h.apply("mesh", deco(60), 60_000);
    let retired = h.take_retired();
    assert_eq!(retired.len(), 1, "the WAN client is retired");
    assert_eq!(retired[0].id, mac_id(DECO_WAN));
    assert!(h.device(&mac_id(DECO_WAN)).is_none());
    assert_one_device_per_thing(&h);
    // The same analyzer hour read again counts nothing twice; growth counts once.
    h.apply(
        "home",
        asus(vec![bucket_client(DECO_WAN, "deco-wan", 5_000_000)]),
        120_000,
    );
    let node = h.device(&mac_id(DECO_LAN)).unwrap();
    assert_eq!(node.totals.rx, 5_000_000, "carried over, no jump");
    assert_eq!(node.views["home"].totals.rx, 5_000_000);
    h.apply(
        "home",
        asus(vec![bucket_client(DECO_WAN, "deco-wan", 6_000_000)]),
        180_000,
    );
    assert_eq!(h.device(&mac_id(DECO_LAN)).unwrap().totals.rx, 6_000_000);
    assert!(h.device(&mac_id(DECO_WAN)).is_none(), "never comes back");
    assert!(h.take_retired().is_empty(), "retired once");
}

#[test]
fn a_server_that_claims_a_deco_client_later_merges_it_without_a_dip() {
    const BEAST: &str = "aa:bb:cc:00:00:02";
    let feeds = vec![
        (SourceKind::Host.feed("host"), "host"),
        (SourceKind::Deco.feed("mesh"), "deco"),
    ];
    let mut h = Household::new(&Settings::default(), feeds, PersistedState::default());
    let deco_with_beast = |at_s: i64| {
        let mut polls = deco(at_s);
        polls.push(rate_client(BEAST, "beast", DECO_LAN, 8_000_000.0, at_s));
        polls
    };
    h.apply("mesh", deco_with_beast(0), 0);
    h.apply("mesh", deco_with_beast(60), 60_000);
    let client = h.device(&mac_id(BEAST)).unwrap();
    assert_eq!(client.kind, DeviceKind::Client);
    let estimate = client.views["mesh"].totals;
    assert_eq!(estimate.rx, 60_000_000);
    // The machine's own counters come online (the host source, or an agent) and claim the MAC.
    let mut beast = titan(1_000_000_000, 90);
    beast.device = id("beast");
    beast.info.name = Some("Beast".into());
    beast.info.macs = vec![mac(BEAST)];
    h.apply("host", vec![beast.clone()], 90_000);
    let retired = h.take_retired();
    assert_eq!(
        retired.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        [mac_id(BEAST)]
    );
    assert!(h.device(&mac_id(BEAST)).is_none());
    let server = h.device(&id("beast")).unwrap();
    assert_eq!(server.totals.rx, 1_000_000_000, "a server's headline is its own count");
    assert_eq!(server.views["mesh"].totals, estimate, "the Deco's estimate continues");
    // The next Deco poll continues the estimate from there (no dip, no restart).
    h.apply("mesh", deco_with_beast(120), 120_000);
    assert_one_device_per_thing(&h);
    let server = h.device(&id("beast")).unwrap();
    assert_eq!(server.views["mesh"].totals.rx, 120_000_000);
    assert_eq!(server.views["mesh"].label.as_deref(), Some("Deco estimate"));
    assert_eq!(server.totals.rx, 1_000_000_000, "the estimate is not the headline");
    beast.traffic[0].sample = match beast.traffic[0].sample.clone() {
        TrafficSample::Counter(mut c) => {
            c.rx += 5_000;
            c.at_ms += 60_000;
            TrafficSample::Counter(c)
        }
        other => other,
    };
    h.apply("host", vec![beast], 150_000);
    assert_eq!(h.device(&id("beast")).unwrap().totals.rx, 1_000_005_000);
}

#[test]
fn a_mac_configured_since_the_last_run_merges_the_saved_client() {
    let feeds = vec![(SourceKind::Deco.feed("mesh"), "deco")];
    let mut h = Household::new(&Settings::default(), feeds, PersistedState::default());
    h.apply("mesh", deco(0), 0);
    h.apply("mesh", deco(60), 60_000);
    assert_eq!(h.device(&mac_id(TITAN)).unwrap().kind, DeviceKind::Client);
    let saved = h.to_persisted();
    // Restarted with `[vnstat.titan] mac = …` (the household() settings).
    let feeds = vec![
        (SourceKind::Vnstat.feed("titan"), "vnstat"),
        (SourceKind::Deco.feed("mesh"), "deco"),
    ];
    let mut h = Household::new(&titan_settings(), feeds, saved);
    h.apply("titan", vec![titan(9_000_000, 100)], 100_000);
    let retired = h.take_retired();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].id, mac_id(TITAN), "cleared in HA although not seen this run");
    h.apply("mesh", deco(160), 160_000);
    let t = h.device(&id("titan")).unwrap();
    // 60 MB saved, then 100 s at 8 Mbit/s: its rate channel moved along and continues.
    assert_eq!(t.views["mesh"].totals.rx, 160_000_000, "the saved estimate continues");
    assert!(h.device(&mac_id(TITAN)).is_none());
}
