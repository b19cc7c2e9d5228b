//! Issue 21, "the broker is shared, not trusted", against a real mosquitto: what any other user
//! of the broker can publish must not silence the bridge or make it skip its own messages.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::Broker;
use support::fake_host::FakeHost;
use support::process::BridgeProc;
use support::stranger;
use support::watcher::Watcher;

fn rx(v: &Value) -> Option<u64> {
    v.pointer("/interfaces/eth0/rx_bytes").and_then(Value::as_u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_oversized_retained_message_never_silences_the_bridge() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    // 17 MiB: over rumqttc's own 16 MiB incoming limit, which used to fail the link on every
    // connect (21 connections in 25 s, nothing published).
    let huge = vec![b'x'; 17 * 1024 * 1024];
    for topic in ["homeassistant/status", "bandwidth2mqtt/agent/x/counters"] {
        stranger::publish(&broker.host, broker.port, topic, &huge, true);
    }
    let watcher = Watcher::connect(
        &broker.host,
        broker.port,
        &[
            "bandwidth2mqtt/titan",
            "bandwidth2mqtt/bridge/info",
            "bandwidth2mqtt/bridge/state",
        ],
    )
    .await;
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n{}",
        broker.url(),
        host.config("1s")
    );
    let started = Instant::now();
    let mut bridge = BridgeProc::spawn(dir.path(), &config);

    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(10_000))
        .await;
    eprintln!("first state {:?} after the bridge started", started.elapsed());
    host.set_counters(&[("eth0", 20_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_000))
        .await;
    let info = watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v.pointer("/link/incoming_oversized").and_then(Value::as_u64) == Some(2)
        })
        .await;
    assert!(info["link"].get("packet_limit_learnt").is_none(), "{info}");

    // The stranger clears them: nothing of ours is skipped afterwards.
    for topic in ["homeassistant/status", "bandwidth2mqtt/agent/x/counters"] {
        stranger::publish(&broker.host, broker.port, topic, b"", true);
    }
    host.set_counters(&[("eth0", 30_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(30_000))
        .await;
    // And HA's birth still works.
    stranger::publish(&broker.host, broker.port, "homeassistant/status", b"online", false);
    let log_has = |bridge: &BridgeProc, text: &str| bridge.log().contains(text);
    let deadline = Instant::now() + support::WAIT;
    while !log_has(&bridge, "Home Assistant came online") {
        assert!(Instant::now() < deadline, "HA's birth not seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bridge.terminate();
    let log = bridge.log();
    assert_eq!(log.matches("Connected to the MQTT broker.").count(), 1, "{log}");
    assert!(!log.contains("larger than the packet limit"), "{log}");
    assert!(!log.contains("closed the connection twice"), "{log}");
    assert_eq!(
        log.matches("larger than the bridge reads").count(),
        1,
        "logged once a minute: {log}"
    );
}
