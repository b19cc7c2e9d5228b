//! MQTT 5 behind the link port (issue 21, item 1), against real brokers: the broker's Maximum
//! Packet Size from CONNACK is the bridge's outgoing limit (no guessing from disconnects), and
//! `protocol = "auto"` falls back to 3.1.1 on a broker that refuses MQTT 5 (rumqttd's v4-only
//! listener; mosquitto always speaks 5). A stranger's oversized message over MQTT 5 is in
//! broker_trust.rs.

mod support;

use serde_json::Value;
use support::broker::Broker;
use support::fake_host::FakeHost;
use support::process::BridgeProc;
use support::watcher::Watcher;

fn rx(v: &Value) -> Option<u64> {
    v.pointer("/interfaces/eth0/rx_bytes").and_then(Value::as_u64)
}

fn host(dir: &std::path::Path) -> FakeHost {
    let host = FakeHost::new(dir);
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    host
}

/// mosquitto with `max_packet_size 2000`: over MQTT 5 it says so in CONNACK, and the bridge
/// skips what is larger (its discovery config) from the start, on one connection, instead of
/// learning it from two drops.
#[tokio::test(flavor = "multi_thread")]
async fn the_brokers_packet_limit_is_taken_from_connack() {
    let Some(broker) = Broker::start_with("max_packet_size 2000") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/titan"]).await;
    let config = format!(
        "[mqtt]\nurl = \"{}\"\nprotocol = \"auto\"\n[bridge]\nstate_dir = \"data\"\n{}",
        broker.url(),
        host.config("1s")
    );
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(10_000))
        .await;
    host.set_counters(&[("eth0", 20_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_000))
        .await;
    bridge.terminate();
    let log = bridge.log();
    assert!(log.contains("protocol=\"5\""), "{log}");
    assert!(
        log.contains("up to its Maximum Packet Size") && log.contains("broker_limit=2000"),
        "{log}"
    );
    assert!(
        log.contains("larger than the packet limit"),
        "the big ones are skipped: {log}"
    );
    assert_eq!(log.matches("Connected to the MQTT broker.").count(), 1, "{log}");
    assert!(!log.contains("closed the connection twice"), "{log}");
}

/// A broker that speaks only MQTT 3.1.1: `auto` says so once and carries on
/// over 3.1.1.
#[tokio::test(flavor = "multi_thread")]
async fn auto_falls_back_to_3_1_1_on_a_broker_that_refuses_mqtt5() {
    let port = bandwidth2mqtt::demo::broker::start_embedded_v4_only().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let watcher = Watcher::connect("127.0.0.1", port, &["bandwidth2mqtt/titan"]).await;
    let config = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nprotocol = \"auto\"\n[bridge]\nstate_dir = \"data\"\n{}",
        host.config("1s")
    );
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(10_000))
        .await;
    host.set_counters(&[("eth0", 20_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_000))
        .await;
    bridge.terminate();
    let log = bridge.log();
    assert_eq!(log.matches("refused MQTT 5; using MQTT 3.1.1").count(), 1, "{log}");
    assert!(log.contains("protocol=\"3.1.1\""), "{log}");
    assert!(!log.contains("protocol=\"5\""), "{log}");
}

/// `protocol = "5"` against the same broker does not fall back: it keeps trying, and says why.
#[tokio::test(flavor = "multi_thread")]
async fn protocol_5_never_falls_back() {
    let port = bandwidth2mqtt::demo::broker::start_embedded_v4_only().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let config = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nprotocol = \"5\"\n[bridge]\nstate_dir = \"data\"\n{}",
        host.config("1s")
    );
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    let deadline = std::time::Instant::now() + support::WAIT;
    while !bridge.log().contains("MQTT connection failed") {
        assert!(std::time::Instant::now() < deadline, "{}", bridge.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bridge.terminate();
    let log = bridge.log();
    assert!(!log.contains("Connected to the MQTT broker."), "{log}");
    assert!(!log.contains("using MQTT 3.1.1"), "{log}");
}
