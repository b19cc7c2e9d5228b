//! The Deco source against the emulator over HTTP on 127.0.0.1, on a simulated clock: what a
//! poll turns into, and how totals follow ground truth.

use std::collections::BTreeMap;
use std::time::Duration;

use bandwidth2mqtt::accounting::Ledger;
use bandwidth2mqtt::config::{DecoSettings, Secret};
use bandwidth2mqtt::emulators::deco::{ClientSpec, Clock, DecoEmulator, EmulatorConfig, Faults, Profile, home};
use bandwidth2mqtt::model::{DeviceId, DeviceKind, MacAddr, Observation, TrafficSample};
use bandwidth2mqtt::sources::deco::DecoSource;
use bandwidth2mqtt::sources::{Source, SourceError, SourceKind};

const PASSWORD: &str = "s3cret-pass";
const START_MS: i64 = 1_767_268_800_000; // 2026-01-01 12:00 UTC

fn settings(url: &str) -> DecoSettings {
    DecoSettings {
        url: url.to_owned(),
        password: Some(Secret::new(PASSWORD)),
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        ..DecoSettings::default()
    }
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn find<'a>(obs: &'a [Observation], m: &str) -> Option<&'a Observation> {
    let id = DeviceId::from_mac(mac(m));
    obs.iter().find(|o| o.device == id)
}

fn metric(o: &Observation, key: &str) -> Option<f64> {
    o.metrics.iter().find(|m| m.key == key).and_then(|m| m.value)
}

#[tokio::test]
async fn a_poll_of_the_home_mesh() {
    let clock = Clock::simulated(START_MS);
    let emu = DecoEmulator::new(EmulatorConfig::home(PASSWORD, clock.clone())).unwrap();
    let server = emu.serve(0, false).await.unwrap();
    let mut source = DecoSource::with_clock("mesh", &settings(&server.url()), clock.bridge_clock());
    clock.advance(Duration::from_secs(30));
    let obs = source.poll().await.unwrap();

    let master = find(&obs, "f0:09:0d:fa:29:7c").expect("master");
    assert_eq!(master.kind, DeviceKind::MeshNode);
    assert_eq!(master.info.name.as_deref(), Some("Living Room"));
    assert_eq!(master.info.model.as_deref(), Some("Deco X50"));
    assert_eq!(master.info.via, None);
    assert_eq!(
        master.info.macs,
        vec![mac("f0:09:0d:fa:29:7c"), mac("f0:09:0d:fa:29:7d")],
        "own MAC, then the WAN MAC"
    );
    let cpu = metric(master, "cpu_percent").unwrap();
    assert!((8.0..=15.0).contains(&cpu), "{cpu}");
    assert!(metric(master, "memory_percent").is_some());
    assert_eq!(master.attributes["mode"], "Router");

    let office = find(&obs, "f0:09:0d:fa:29:84").expect("satellite");
    assert_eq!(office.info.name.as_deref(), Some("Office"));
    assert_eq!(office.info.via, Some(DeviceId::from_mac(mac("f0:09:0d:fa:29:7c"))));
    assert!(metric(office, "cpu_percent").is_none());

    let laptop = find(&obs, "3c:22:fb:10:00:01").expect("laptop");
    assert_eq!(laptop.kind, DeviceKind::Client);
    assert_eq!(laptop.info.name.as_deref(), Some("Laptop"));
    assert_eq!(laptop.info.ip.as_deref(), Some("192.168.68.100"));
    assert_eq!(laptop.info.via, office.device.clone().into());
    assert_eq!(laptop.attributes["node"], "Office");
    assert_eq!(laptop.attributes["band"], "5 GHz");
    assert!(matches!(laptop.traffic[0].sample, TrafficSample::Rate(_)));
    assert_eq!(laptop.traffic[0].interface, None);

    let camera = find(&obs, "3c:22:fb:10:00:04").unwrap();
    assert_eq!(camera.attributes["interface"], "iot");
    let TrafficSample::Rate(rate) = &camera.traffic[0].sample else {
        panic!()
    };
    assert!(rate.tx_bps > 500_000.0, "the camera uploads: {}", rate.tx_bps);

    let sensor = find(&obs, "3c:22:fb:10:00:08").unwrap();
    assert_eq!(sensor.info.name.as_deref(), Some("Sensor"), "non-UTF-8 bytes dropped");
    assert_eq!(sensor.info.ip, None, "UNKNOWN");
    assert_eq!(find(&obs, "3c:22:fb:10:00:09").unwrap().info.name, None, "empty name");
    assert!(find(&obs, "3c:22:fb:10:00:0a").is_none(), "no MAC: skipped");
    let plug = find(&obs, "3c:22:fb:10:00:05").unwrap();
    assert!(plug.traffic.len() == 1, "speeds as strings still read");

    let clients_total = metric(master, "clients").unwrap() + metric(office, "clients").unwrap();
    let online = obs
        .iter()
        .filter(|o| o.kind == DeviceKind::Client && o.online == Some(true))
        .count();
    assert_eq!(clients_total as usize, online);
    assert_eq!(source.login_attempts(), 1);
    source.close().await;
    assert_eq!(emu.stats().logouts, 1);
}

/// With exact traffic, estimated totals equal ground truth over the intervals polled.
#[tokio::test]
async fn totals_follow_constant_traffic_exactly_and_skip_failures() {
    let clock = Clock::simulated(START_MS);
    let (nodes, _) = home();
    let mut spec = ClientSpec::new(
        mac("02:00:00:00:00:01"),
        "Steady",
        0,
        "band5",
        Profile::Constant {
            down_bps: 800_000.0,
            up_bps: 80_000.0,
        },
    );
    spec.ip = "192.168.68.50".into();
    let emu = DecoEmulator::new(EmulatorConfig::new(PASSWORD, nodes, vec![spec], clock.clone())).unwrap();
    let server = emu.serve(0, false).await.unwrap();
    let mut source = DecoSource::with_clock("mesh", &settings(&server.url()), clock.bridge_clock());
    let mut ledger = Ledger::new(vec![SourceKind::Deco.feed("mesh")], Default::default(), BTreeMap::new());
    let id = DeviceId::from_mac(mac("02:00:00:00:00:01"));
    let step = Duration::from_secs(30);
    let poll = async |source: &mut DecoSource, ledger: &mut Ledger| {
        clock.advance(step);
        let result = source.poll().await;
        if let Ok(obs) = &result {
            ledger.apply("mesh", obs.clone(), clock.now_ms());
        }
        result.map(|_| ledger.device(&id).map(|d| d.totals.rx).unwrap_or(0))
    };
    assert_eq!(poll(&mut source, &mut ledger).await.unwrap(), 0);
    assert_eq!(poll(&mut source, &mut ledger).await.unwrap(), 3_000_000);
    assert_eq!(poll(&mut source, &mut ledger).await.unwrap(), 6_000_000);
    let device = ledger.device(&id).unwrap();
    assert_eq!(device.rates.rx_bps, Some(800_000.0));
    assert_eq!(device.totals.tx, 600_000);
    assert!(device.estimated);

    emu.set_faults(Faults {
        client_list_http_500: true,
        ..Faults::default()
    });
    let err = poll(&mut source, &mut ledger).await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().contains("admin/client?form=client_list: HTTP 500"),
        "{err}"
    );
    emu.set_faults(Faults::default());
    assert_eq!(
        poll(&mut source, &mut ledger).await.unwrap(),
        6_000_000,
        "the failed poll's minute is not invented"
    );
    assert_eq!(poll(&mut source, &mut ledger).await.unwrap(), 9_000_000);

    emu.set_client_online(mac("02:00:00:00:00:01"), Some(false));
    assert_eq!(poll(&mut source, &mut ledger).await.unwrap(), 9_000_000);
    assert_eq!(ledger.device(&id).unwrap().online(), Some(false));
    assert_eq!(ledger.device(&id).unwrap().rates.rx_bps, Some(0.0));
    emu.set_client_online(mac("02:00:00:00:00:01"), None);
    assert_eq!(poll(&mut source, &mut ledger).await.unwrap(), 9_000_000);
    assert_eq!(poll(&mut source, &mut ledger).await.unwrap(), 12_000_000);
    assert_eq!(emu.stats().logins_ok, 1, "one session throughout");
}

#[tokio::test]
async fn bad_input_fails_the_poll_with_the_endpoint_named() {
    use bandwidth2mqtt::emulators::deco::Garbage;
    let clock = Clock::simulated(START_MS);
    let emu = DecoEmulator::new(EmulatorConfig::home(PASSWORD, clock.clone())).unwrap();
    let server = emu.serve(0, false).await.unwrap();
    let mut source = DecoSource::with_clock("mesh", &settings(&server.url()), clock.bridge_clock());
    source.poll().await.unwrap();
    // The client list is read every poll (the node list only every SLOW_EVERY polls).
    for (garbage, expect) in [
        (Garbage::Html, "admin/client?form=client_list: the reply is not JSON"),
        (
            Garbage::WrongShape,
            "admin/client?form=client_list: client_list is not a list",
        ),
        (
            Garbage::NotJsonInside,
            "admin/client?form=client_list: the decrypted reply is not JSON",
        ),
    ] {
        emu.set_faults(Faults {
            garbage: Some(garbage),
            ..Faults::default()
        });
        let err = source.poll().await.unwrap_err();
        assert!(matches!(err, SourceError::Invalid(_)), "{garbage:?}: {err:?}");
        assert!(err.to_string().starts_with(expect), "{garbage:?}: {err}");
    }
    emu.set_faults(Faults {
        per_node_timeout: true,
        ..Faults::default()
    });
    let obs = source
        .poll()
        .await
        .expect("a failing per-node list does not fail the poll");
    assert!(find(&obs, "3c:22:fb:10:00:01").is_some());
    emu.set_faults(Faults::default());
    source.poll().await.unwrap();
    assert_eq!(emu.stats().logins_ok, 1);
}

/// Newer firmware answers http:// with a 307 to https:// (deco.md §1): follow it once and stay.
#[tokio::test]
async fn an_https_redirect_is_followed_and_kept() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;

    let clock = Clock::simulated(START_MS);
    let emu = DecoEmulator::new(EmulatorConfig::home(PASSWORD, clock.clone())).unwrap();
    let https = emu.serve(0, true).await.unwrap();
    let target = https.url();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let redirector = axum::Router::new().fallback(move |uri: Uri| {
        let location = format!("{target}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        counter.fetch_add(1, Ordering::SeqCst);
        async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response() }
    });
    let http = bandwidth2mqtt::emulators::serve(redirector, 0, false).await.unwrap();

    let mut source = DecoSource::with_clock("mesh", &settings(&http.url()), clock.bridge_clock());
    let obs = source.poll().await.expect("a poll through the redirect");
    assert!(find(&obs, "3c:22:fb:10:00:01").is_some());
    source.poll().await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "only the first request went to http://");
    assert_eq!(emu.stats().logins_ok, 1);
}

/// Issue 11: at most 4 requests per poll on average (tplinkrouterc6u's `get_status` makes 4):
/// the client list and performance every poll, the node list, WAN and per-node lists every
/// `SLOW_EVERY` polls.
#[tokio::test]
async fn requests_per_poll_stay_at_most_four() {
    use bandwidth2mqtt::sources::deco::SLOW_EVERY;
    let clock = Clock::simulated(START_MS);
    let emu = DecoEmulator::new(EmulatorConfig::home(PASSWORD, clock.clone())).unwrap();
    let server = emu.serve(0, false).await.unwrap();
    let mut source = DecoSource::with_clock("mesh", &settings(&server.url()), clock.bridge_clock());
    // The first poll places every client on its node.
    clock.advance(Duration::from_secs(30));
    let first = source.poll().await.unwrap();
    let calls = |emu: &DecoEmulator| emu.stats().calls.values().sum::<u64>();
    let after_first = calls(&emu);
    let polls = SLOW_EVERY * 3;
    for _ in 0..polls {
        clock.advance(Duration::from_secs(30));
        let obs = source.poll().await.unwrap();
        assert_eq!(obs.len(), first.len(), "every device every poll");
    }
    let per_poll = (calls(&emu) - after_first) as f64 / polls as f64;
    assert!(per_poll <= 4.0, "{per_poll} requests per poll: {:?}", emu.stats().calls);
    assert!(per_poll >= 2.0, "the client list and performance each poll");
    let node_lists = emu
        .stats()
        .calls
        .get("admin/device?form=device_list")
        .copied()
        .unwrap_or(0);
    assert_eq!(node_lists, 1 + 3, "{:?}", emu.stats().calls);
}
