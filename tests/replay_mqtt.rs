//! A reconnect's replay with sent discovery payloads dropped from memory (outbox.rs renders
//! them again): after a broker that lost every retained message comes back, each retained
//! config must be back byte for byte, in both discovery shapes.

mod support;

use std::collections::BTreeMap;

use support::broker::Broker;
use support::fake_vnstat::FakeVnstat;
use support::process::BridgeProc;
use support::watcher::Watcher;
use support::{WAIT, fixture};

/// Every retained message under `homeassistant/` now: a fresh subscriber gets them first, then
/// the marker it published itself after subscribing (the broker keeps one client's order).
async fn retained_configs(broker: &Broker) -> BTreeMap<String, String> {
    let fresh = Watcher::connect(&broker.host, broker.port, &["homeassistant/#"]).await;
    fresh.publish("homeassistant/zz_marker", "end", false).await;
    fresh.wait_for("homeassistant/zz_marker", WAIT, |_| true).await;
    fresh
        .log()
        .into_iter()
        .filter(|m| m.retain)
        .map(|m| (m.topic, m.payload))
        .collect()
}

async fn configs_come_back_unchanged(mode: &str, device_topic: &str, bridge_topic: &str) {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    if !broker.is_local() {
        eprintln!("SKIP: an external broker cannot be restarted by the test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeVnstat::new(dir.path(), "beast");
    fake.set_output(&fixture("vnstat/json-f-1.json"), 0);
    let config = format!(
        "[mqtt]\ndiscovery = \"{mode}\"\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[vnstat.beast]\ncommand = {}\ninterval = \"1s\"\n",
        broker.url(),
        fake.command_toml()
    );
    let _bridge = BridgeProc::spawn(dir.path(), &config);
    {
        let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
        for topic in [device_topic, bridge_topic] {
            watcher.wait_for(topic, WAIT, |m| !m.payload.is_empty()).await;
        }
    }
    // A few polls more: whatever a later poll changes in the configs has been sent.
    let calls = fake.calls();
    while fake.calls() < calls + 3 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let before = retained_configs(&broker).await;
    assert!(
        before.contains_key(device_topic) && before.contains_key(bridge_topic),
        "{before:?}"
    );

    broker.restart();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    for topic in before.keys() {
        watcher.wait_for(topic, WAIT, |_| true).await;
    }
    let after = retained_configs(&broker).await;
    assert_eq!(after, before, "every config replayed, byte for byte");
}

#[tokio::test(flavor = "multi_thread")]
async fn device_configs_come_back_byte_for_byte_after_a_broker_restart() {
    configs_come_back_unchanged(
        "device",
        "homeassistant/device/beast/config",
        "homeassistant/device/bandwidth2mqtt_bridge/config",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn entity_configs_come_back_byte_for_byte_after_a_broker_restart() {
    configs_come_back_unchanged(
        "entity",
        "homeassistant/sensor/beast/eth0_rx_bytes/config",
        "homeassistant/sensor/bandwidth2mqtt_bridge/version/config",
    )
    .await;
}
