//! Both discovery shapes end to end (real binary, real mosquitto), and the migration between
//! them (shared/protocols/ha-discovery.md §3): an installation that published per-entity
//! configs and restarts in device mode sends `migrate_discovery` on every old topic, clears it,
//! and only then the device config with the same unique_ids; and back again.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::Broker;
use support::fake_vnstat::FakeVnstat;
use support::process::BridgeProc;
use support::watcher::{Msg, Watcher};
use support::{WAIT, fixture};

const MIGRATE: &str = r#"{"migrate_discovery":true}"#;

fn config(broker: &Broker, fake: &FakeVnstat, mode: &str) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\ndiscovery = \"{mode}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[vnstat.beast]\ncommand = {}\ninterval = \"1s\"\n",
        broker.url(),
        fake.command_toml()
    )
}

fn is_ours(m: &Msg) -> bool {
    m.topic.starts_with("homeassistant/") && (m.topic.contains("/beast/") || m.topic.contains("bandwidth2mqtt_bridge"))
}

/// Unique ids of the retained configs a newcomer sees, by shape.
async fn retained_unique_ids(broker: &Broker) -> (BTreeSet<String>, BTreeSet<String>) {
    let w = Watcher::connect(&broker.host, broker.port, &["homeassistant/#"]).await;
    // Retained messages arrive right after the subscription; wait until they stop coming.
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = w.log().len();
        if now == seen {
            break;
        }
        seen = now;
    }
    let (mut entity, mut device) = (BTreeSet::new(), BTreeSet::new());
    for m in w
        .log()
        .into_iter()
        .filter(|m| m.retain && is_ours(m) && !m.payload.is_empty())
    {
        let v: Value = serde_json::from_str(&m.payload).unwrap();
        if m.topic.starts_with("homeassistant/device/") {
            for c in v["components"].as_object().unwrap().values() {
                device.insert(c["unique_id"].as_str().unwrap().to_owned());
            }
        } else {
            entity.insert(v["unique_id"].as_str().unwrap().to_owned());
        }
    }
    (entity, device)
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT * 2;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entity_to_device_and_back_without_duplicates_or_orphans() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeVnstat::new(dir.path(), "beast");
    fake.set_output(&fixture("vnstat/json-f-1.json"), 0);
    let watcher = Watcher::connect(&broker.host, broker.port, &["homeassistant/#"]).await;

    // 1. An installation from before device discovery: per-entity configs.
    let mut bridge = BridgeProc::spawn(dir.path(), &config(&broker, &fake, "entity"));
    watcher
        .wait_for("homeassistant/sensor/beast/eth0_rx_bytes/config", WAIT, |_| true)
        .await;
    wait_until("bridge entities", || {
        watcher
            .latest("homeassistant/sensor/bandwidth2mqtt_bridge/version/config")
            .is_some()
    })
    .await;
    bridge.terminate();
    let (entity_ids, device_ids) = retained_unique_ids(&broker).await;
    assert!(
        entity_ids.len() >= 10 && device_ids.is_empty(),
        "{entity_ids:?} {device_ids:?}"
    );
    let old_topics: BTreeSet<String> = watcher
        .log()
        .into_iter()
        .filter(|m| is_ours(m) && !m.topic.starts_with("homeassistant/device/"))
        .map(|m| m.topic)
        .collect();

    // 2. Upgrade: device mode (the default) takes the same entities over.
    let mark = watcher.log().len();
    let mut bridge = BridgeProc::spawn(dir.path(), &config(&broker, &fake, "device"));
    let device_topic = "homeassistant/device/beast/config";
    wait_until("old topics cleared and the device config sent", || {
        old_topics
            .iter()
            .all(|t| watcher.latest(t).is_some_and(|m| m.payload.is_empty()))
            && watcher
                .log()
                .iter()
                .skip(mark)
                .any(|m| m.topic == device_topic && !m.payload.is_empty())
    })
    .await;
    let log: Vec<Msg> = watcher.log().split_off(mark);
    let first_device = log.iter().position(|m| m.topic == device_topic).expect("device config");
    for topic in &old_topics {
        let migrate = log
            .iter()
            .position(|m| &m.topic == topic && m.payload == MIGRATE)
            .unwrap_or_else(|| panic!("no migrate message on {topic}"));
        let cleared = log
            .iter()
            .position(|m| &m.topic == topic && m.payload.is_empty())
            .unwrap();
        if topic.contains("/beast/") {
            // HA 2026.11 warns about an empty old topic once the entity lives on the new one:
            // migrate, clear, then the new config (migration.rs).
            assert!(migrate < cleared, "{topic}: migrate before the clearing");
            assert!(cleared < first_device, "{topic}: cleared before the new config");
        }
    }
    let (entity_now, device_now) = retained_unique_ids(&broker).await;
    assert!(entity_now.is_empty(), "orphans: {entity_now:?}");
    assert_eq!(device_now, entity_ids, "same entities, same unique ids");
    bridge.terminate();
    assert!(bridge.log().contains("Discovery migrated"), "{}", bridge.log());

    // 3. And back to per-entity configs.
    let mark = watcher.log().len();
    let mut bridge = BridgeProc::spawn(dir.path(), &config(&broker, &fake, "entity"));
    let entity_topic = "homeassistant/sensor/beast/eth0_rx_bytes/config";
    wait_until("device topics cleared and entity configs back", || {
        let log = watcher.log();
        let cleared = log
            .iter()
            .skip(mark)
            .filter(|m| m.topic.starts_with("homeassistant/device/") && m.payload.is_empty())
            .count();
        cleared >= 2
            && log
                .iter()
                .skip(mark)
                .any(|m| m.topic == entity_topic && !m.payload.is_empty())
    })
    .await;
    let log: Vec<Msg> = watcher.log().split_off(mark);
    let migrate = log
        .iter()
        .position(|m| m.topic == device_topic && m.payload == MIGRATE)
        .expect("migrate on the device topic");
    let first_entity = log
        .iter()
        .position(|m| m.topic == entity_topic && !m.payload.is_empty())
        .expect("entity config again");
    let cleared = log
        .iter()
        .position(|m| m.topic == device_topic && m.payload.is_empty())
        .expect("device topic cleared");
    assert!(
        migrate < cleared && cleared < first_entity,
        "migrate, clear, then the new configs"
    );
    let (entity_back, device_left) = retained_unique_ids(&broker).await;
    assert!(device_left.is_empty(), "orphans: {device_left:?}");
    assert_eq!(entity_back, entity_ids);
    bridge.terminate();
}
