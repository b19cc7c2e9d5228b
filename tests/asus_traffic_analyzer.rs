//! The Traffic Analyzer end to end on a router clock that runs fast (an hour in two seconds or
//! less): per-device totals must equal the emulator's ground truth to the byte, across hours,
//! a day boundary, a bridge restart mid-hour, a router outage over an hour boundary, a gap of
//! more than a day, and the page faults.

mod support;

use std::time::Duration;

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator, TaFault};
use bandwidth2mqtt::model::MacAddr;
use serde_json::Value;
use support::broker::Broker;
use support::process::BridgeProc;
use support::watcher::Watcher;

/// 2026-11-24 23:55:00 UTC: the first simulated hour ends at midnight, a day boundary.
const START: i64 = 1_795_564_500;

async fn emulator(speed: f64, lowercase_macs: bool, ta_on: bool) -> AsusEmulator {
    let emu = AsusEmulator::start(
        AsusConfig {
            clients: 4,
            live_traffic: true,
            clock_speed: speed,
            clock_start: Some(START),
            traffic_analyzer: ta_on,
            ..AsusConfig::default()
        },
        false,
    )
    .await
    .unwrap();
    emu.with(|s| s.ta.lowercase_macs = lowercase_macs);
    emu
}

fn config(broker: &Broker, emu: &AsusEmulator) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[asus.home]\nurl = \"{}\"\npassword = \"router-pass\"\ninterval = \"1s\"\ntimeout = \"2s\"\ntemperature_interval = \"1h\"\n",
        broker.url(),
        emu.url()
    )
}

fn macs(emu: &AsusEmulator) -> Vec<MacAddr> {
    emu.with(|s| s.clients.iter().map(|c| c.mac).collect())
}

fn router_time(emu: &AsusEmulator) -> i64 {
    emu.with(|s| s.clock.now())
}

async fn until_router_time(emu: &AsusEmulator, t: i64) {
    while router_time(emu) < t {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops the traffic, then waits until every device's published totals equal the truth.
async fn totals_equal_truth(watcher: &Watcher, emu: &AsusEmulator, within: Duration) {
    emu.with(|s| {
        s.advance();
        s.config.live_traffic = false;
    });
    for mac in macs(emu) {
        let (rx, tx) = emu.with(|s| s.ta.truth(&mac.to_string()));
        assert!(rx > 1_000_000, "{mac}: the model generated traffic");
        eprintln!("truth {mac}: rx {rx} tx {tx}");
        let topic = format!("bandwidth2mqtt/{}", mac.to_hex12());
        watcher
            .wait_for(&topic, within, |m| {
                serde_json::from_str::<Value>(&m.payload)
                    .is_ok_and(|v| v["rx_bytes"].as_u64() == Some(rx) && v["tx_bytes"].as_u64() == Some(tx))
            })
            .await;
    }
}

fn never_decreased(watcher: &Watcher, mac: &MacAddr) {
    let topic = format!("bandwidth2mqtt/{}", mac.to_hex12());
    let mut last = 0;
    for m in watcher.log().iter().filter(|m| m.topic == topic) {
        if let Some(rx) = serde_json::from_str::<Value>(&m.payload)
            .ok()
            .and_then(|v| v["rx_bytes"].as_u64())
        {
            assert!(rx >= last, "{mac}: {rx} after {last}");
            last = rx;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_day_matches_ground_truth_through_restart_and_outage() {
    let Some(broker) = Broker::start() else { return };
    // An hour every 2 s: a day in 48 s.
    let emu = emulator(1800.0, false, true).await;
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let config = config(&broker, &emu);
    let mut bridge = BridgeProc::spawn(dir.path(), &config);

    // Past midnight and a few hours in.
    until_router_time(&emu, START + 7 * 3600 + 1800).await;
    // kill -9 in the middle of an hour; the cursor and the per-hour memory are on disk.
    bridge.kill9();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    until_router_time(&emu, START + 13 * 3600 + 2400).await;
    // The router is unreachable across an hour boundary (1.5 router hours).
    emu.set_down(true).await.unwrap();
    until_router_time(&emu, START + 15 * 3600 + 600).await;
    emu.set_down(false).await.unwrap();
    until_router_time(&emu, START + 24 * 3600 + 300).await;

    totals_equal_truth(&watcher, &emu, Duration::from_secs(30)).await;
    for mac in macs(&emu) {
        never_decreased(&watcher, &mac);
    }
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["home"]["traffic_analyzer"] == "enabled"
        })
        .await;
    let pages = emu.with(|s| {
        s.stats.requests.get("/getWanTraffic.asp").copied().unwrap_or(0)
            + s.stats.requests.get("/getAppTraffic.asp").copied().unwrap_or(0)
    });
    println!("Traffic Analyzer: {pages} page requests for 4 devices over a simulated day");
    assert!(pages > 20);
    // Per-app split as an attribute, not as entities.
    let any = macs(&emu)[0];
    let state = watcher
        .wait_json(&format!("bandwidth2mqtt/{}/attributes", any.to_hex12()), |v| {
            v["top_apps_24h"].is_array()
        })
        .await;
    let apps = state["top_apps_24h"].as_array().unwrap();
    assert!(
        !apps.is_empty() && apps.len() <= 5 && apps[0]["rx_bytes"].as_u64().is_some(),
        "{state}"
    );
    assert!(
        watcher
            .topics_matching(|t| t.contains("top_apps") || t.contains("youtube"))
            .is_empty()
    );
    bridge.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_a_day_offline_is_caught_up() {
    let Some(broker) = Broker::start() else { return };
    // An hour every half second.
    let emu = emulator(7200.0, false, true).await;
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let config = config(&broker, &emu);
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    until_router_time(&emu, START + 6 * 3600).await;
    let first = macs(&emu)[0];
    watcher
        .wait_json(&format!("bandwidth2mqtt/{}", first.to_hex12()), |v| {
            v["rx_bytes"].as_u64().is_some_and(|b| b > 0)
        })
        .await;
    bridge.kill9();
    // 40 router hours without the bridge: more than the 24-hour window.
    until_router_time(&emu, router_time(&emu) + 40 * 3600).await;
    let _bridge = BridgeProc::spawn(dir.path(), &config);
    until_router_time(&emu, router_time(&emu) + 4 * 3600).await;
    totals_equal_truth(&watcher, &emu, Duration::from_secs(40)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_empty_truncated_and_a_late_hour() {
    let Some(broker) = Broker::start() else { return };
    let emu = emulator(1800.0, true, false).await;
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &emu));

    // Statistics off on the router: said once, shown in bridge/info, the router still works.
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["home"]["traffic_analyzer"] == "disabled on the router"
        })
        .await;
    watcher
        .wait_json("bandwidth2mqtt/home", |v| v["rx_bytes"].is_u64())
        .await;
    assert_eq!(
        watcher.latest("bandwidth2mqtt/bridge/source/home").unwrap().payload,
        "online"
    );
    until_router_time(&emu, router_time(&emu) + 3 * 3600).await;
    assert_eq!(bridge.log().matches("Traffic Analyzer statistics are off").count(), 1);
    assert_eq!(
        emu.with(|s| s.stats.requests.get("/getWanTraffic.asp").copied()),
        None,
        "not asked while off"
    );

    // Switched on: totals appear, with the router's lower-case MAC spelling.
    emu.with(|s| s.config.traffic_analyzer = true);
    let first = macs(&emu)[0];
    let topic = format!("bandwidth2mqtt/{}", first.to_hex12());
    watcher
        .wait_json(&topic, |v| v["rx_bytes"].as_u64().is_some_and(|b| b > 0))
        .await;

    // An empty database answer and cut-off pages lower nothing and break nothing.
    for fault in [TaFault::Empty, TaFault::Truncated] {
        emu.with(|s| s.ta_fault = Some(fault));
        until_router_time(&emu, router_time(&emu) + 3 * 3600).await;
        emu.with(|s| s.ta_fault = None);
    }
    assert!(bridge.log().contains("Traffic Analyzer request failed"));
    // An hour the router writes late: missing at first, counted once it appears.
    let hour = router_time(&emu) - router_time(&emu).rem_euclid(3600);
    emu.with(|s| s.ta.delayed.insert(hour));
    until_router_time(&emu, hour + 3 * 3600).await;
    emu.with(|s| s.ta.delayed.clear());
    until_router_time(&emu, router_time(&emu) + 2 * 3600).await;
    totals_equal_truth(&watcher, &emu, Duration::from_secs(30)).await;
    for mac in macs(&emu) {
        never_decreased(&watcher, &mac);
    }
    assert!(!bridge.log().contains("panicked"));
}
