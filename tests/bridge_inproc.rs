//! The bridge's MQTT behaviour in-process, on the in-memory link and tokio's paused time
//! (support/inmem.rs): availability and the will, Home Assistant's birth, the refresh of
//! unchanged states, a reconnect's replay of every retained config byte for byte, reconnect
//! pacing, and the host source's counters across reboots and wraps. Moved here from
//! bridge_mqtt.rs and replay_mqtt.rs, which needed a real mosquitto and the binary; what only
//! a process shows (signals, kill -9, a real broker's restart) stays there.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::fake_host::FakeHost;
use support::inmem::{Bridge, MemoryBroker, num};

const STATE: &str = "bandwidth2mqtt/titan";
const BRIDGE_STATE: &str = "bandwidth2mqtt/bridge/state";

/// A server `titan` with one physical interface and a virtual one.
fn titan(dir: &std::path::Path) -> FakeHost {
    let host = FakeHost::new(dir);
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.add_interface("docker0", "02:42:00:00:00:01", 3, true);
    host.set_counters(&[("lo", 1, 1), ("eth0", 10_000, 1_000), ("docker0", 777, 777)]);
    host
}

fn config(host: &FakeHost, mqtt: &str) -> String {
    format!("[mqtt]\ndiscovery = \"entity\"\n{mqtt}\n{}", host.config("1s"))
}

/// Lets `secs` of (paused) time pass: the bridge polls and publishes meanwhile.
async fn let_pass(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

/// Waits for the state of unchanged counters (the rate known and 0), so nothing changes after.
async fn settled(broker: &MemoryBroker) -> Value {
    broker
        .wait_json(STATE, |v| num(v, &["interfaces", "eth0", "rx_bps"]) == Some(0))
        .await
}

fn states_since(broker: &MemoryBroker, mark: usize) -> usize {
    broker.published()[mark..].iter().filter(|m| m.topic == STATE).count()
}

#[tokio::test(start_paused = true)]
async fn availability_is_retained_and_a_clean_stop_says_offline() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    let bridge = Bridge::start(dir.path(), &config(&host, ""), &broker);
    let online = broker.wait_payload(BRIDGE_STATE, "online").await;
    assert!(online.retain);
    assert_eq!(
        broker.will_topic().as_deref(),
        Some(BRIDGE_STATE),
        "the will says offline there"
    );
    // The source is offline until its first poll, then online; both retained.
    let source = "bandwidth2mqtt/bridge/source/host";
    let first = broker.wait_for(source, |_| true).await;
    assert_eq!((first.payload.as_str(), first.retain), ("offline", true));
    let up = broker.wait_payload(source, "online").await;
    assert!(up.retain && up.seq > first.seq);
    let state = settled(&broker).await;
    assert!(broker.last(STATE).unwrap().retain, "retain_state defaults to true");
    assert_eq!(state["online"], Value::Bool(true));
    bridge.stop().await;
    let last = broker.last(BRIDGE_STATE).unwrap();
    assert_eq!((last.payload.as_str(), last.retain), ("offline", true));
    assert_eq!(broker.retained()[BRIDGE_STATE], "offline");
    assert!(!broker.is_connected(), "disconnected cleanly");
}

#[tokio::test(start_paused = true)]
async fn home_assistant_birth_republishes_states() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    // States not retained: after HA restarts it only gets them because we answer its birth.
    let bridge = Bridge::start(dir.path(), &config(&host, "retain_state = false"), &broker);
    let state = settled(&broker).await;
    assert!(!broker.retained().contains_key(STATE));
    // Unchanged data is not published again on its own.
    let mark = broker.mark();
    let_pass(5).await;
    assert_eq!(states_since(&broker, mark), 0);
    broker.ha_birth();
    let again = broker.wait_for_after(mark, STATE, |_| true).await;
    assert_eq!(again.json()["rx_bytes"], state["rx_bytes"]);
    assert_eq!(num(&state, &["rx_bytes"]), Some(10_000));
    // Availability goes out again with it.
    broker
        .wait_for_after(mark, BRIDGE_STATE, |m| m.payload == "online")
        .await;
    broker
        .wait_for_after(mark, "bandwidth2mqtt/bridge/source/host", |m| m.payload == "online")
        .await;
    // A flood of births costs one republish, not one each.
    let mark = broker.mark();
    for _ in 0..1_000 {
        broker.ha_birth();
    }
    let_pass(5).await;
    assert_eq!(states_since(&broker, mark), 1);
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unchanged_states_are_refreshed_at_the_configured_interval() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    let bridge = Bridge::start(dir.path(), &config(&host, "refresh_interval = \"2s\""), &broker);
    settled(&broker).await;
    // The data never changes, yet the state goes out again: once per refresh, not per poll
    // (20 polls in 20 s).
    let mark = broker.mark();
    let_pass(20).await;
    let states = states_since(&broker, mark);
    assert!((5..=11).contains(&states), "{states} states in 20 s");
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_broker_is_retried_with_backoff_and_gets_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    let bridge = Bridge::start(dir.path(), &config(&host, ""), &broker);
    settled(&broker).await;
    // Down for 4 s: a tight retry loop would try hundreds of times.
    broker.set_running(false);
    let before = broker.attempts();
    let_pass(4).await;
    let attempts = broker.attempts() - before;
    assert!((1..=5).contains(&attempts), "{attempts} reconnect attempts in 4 s");
    // The will was published when the link dropped.
    assert_eq!(broker.retained()[BRIDGE_STATE], "offline");
    // Back, without the retained messages: the bridge's come back.
    broker.restart(false);
    broker.set_running(true);
    let mark = broker.mark();
    broker
        .wait_for_after(mark, BRIDGE_STATE, |m| m.payload == "online")
        .await;
    broker
        .wait_for_after(mark, "homeassistant/sensor/titan/rx_bytes/config", |m| {
            !m.payload.is_empty()
        })
        .await;
    let state = broker.wait_for_after(mark, STATE, |_| true).await.json();
    assert_eq!(num(&state, &["interfaces", "eth0", "rx_bytes"]), Some(10_000));
    assert_eq!(broker.retained()[BRIDGE_STATE], "online");
    bridge.stop().await;
}

fn discovery(broker: &MemoryBroker) -> BTreeMap<String, String> {
    broker
        .retained()
        .into_iter()
        .filter(|(topic, _)| topic.starts_with("homeassistant/"))
        .collect()
}

/// A reconnect replays with sent discovery payloads dropped from memory (outbox.rs renders
/// them again): after a broker that lost every retained message comes back, each retained
/// config must be back byte for byte.
async fn configs_come_back_unchanged(mode: &str, device_topic: &str, bridge_topic: &str) {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    let toml = format!("[mqtt]\ndiscovery = \"{mode}\"\n{}", host.config("1s"));
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    settled(&broker).await;
    // A few polls more: whatever a later poll changes in the configs has been sent.
    let_pass(3).await;
    let before = discovery(&broker);
    assert!(
        before.contains_key(device_topic) && before.contains_key(bridge_topic),
        "{before:?}"
    );
    broker.restart(false);
    assert!(discovery(&broker).is_empty());
    let mark = broker.mark();
    for topic in before.keys() {
        broker.wait_for_after(mark, topic, |_| true).await;
    }
    assert_eq!(discovery(&broker), before, "every config replayed, byte for byte");
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn device_configs_come_back_byte_for_byte_after_a_reconnect() {
    configs_come_back_unchanged(
        "device",
        "homeassistant/device/titan/config",
        "homeassistant/device/bandwidth2mqtt_bridge/config",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn entity_configs_come_back_byte_for_byte_after_a_reconnect() {
    configs_come_back_unchanged(
        "entity",
        "homeassistant/sensor/titan/rx_bytes/config",
        "homeassistant/sensor/bandwidth2mqtt_bridge/version/config",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn host_counters_across_reboot_recreation_and_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    let toml = config(&host, "");
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    let rx = |v: &Value| num(v, &["interfaces", "eth0", "rx_bytes"]);

    let state = broker.wait_json(STATE, |v| rx(v) == Some(10_000)).await;
    assert!(
        state["interfaces"].get("docker0").is_none()
            && state["interfaces"].get("lo").is_none()
            && state["interfaces"].get("eth0").is_some(),
        "virtual and loopback skipped: {state}"
    );
    let disc = broker
        .wait_for("homeassistant/sensor/titan/rx_bytes/config", |_| true)
        .await
        .json();
    assert_eq!(
        disc["device"]["connections"],
        serde_json::json!([["mac", "02:00:00:00:00:01"]])
    );
    assert_eq!(disc["device"]["sw_version"], "6.1.0-test");

    // Live rate from consecutive reads.
    host.set_counters(&[("lo", 1, 1), ("eth0", 20_000, 1_000), ("docker0", 777, 777)]);
    let state = broker.wait_json(STATE, |v| rx(v) == Some(20_000)).await;
    assert!(
        num(&state, &["interfaces", "eth0", "rx_bps"]).is_some_and(|r| r > 0),
        "{state}"
    );

    // Reboot: new boot id, counters from zero.
    host.set_boot_id("22222222-2222-2222-2222-222222222222");
    host.set_counters(&[("eth0", 500, 50)]);
    broker.wait_json(STATE, |v| rx(v) == Some(20_500)).await;
    // The interface is re-created (new ifindex): counting starts again from its new counter.
    host.set_ifindex("eth0", 7);
    host.set_counters(&[("eth0", 200, 20)]);
    broker.wait_json(STATE, |v| rx(v) == Some(20_700)).await;
    // A driver that wraps at 2^32 (told from a reset by its link speed).
    host.set_speed("eth0", 1000);
    host.set_counters(&[("eth0", 4_294_967_000, 20)]);
    broker.wait_json(STATE, |v| rx(v) == Some(20_700 + 4_294_966_800)).await;
    host.set_counters(&[("eth0", 1_000, 20)]);
    let wrapped = broker
        .wait_json(STATE, |v| rx(v) == Some(20_700 + 4_294_966_800 + 1_296))
        .await;
    assert_eq!(
        num(&wrapped, &["rx_bytes"]),
        rx(&wrapped),
        "device total follows its interface"
    );

    // Rebooted while the bridge was down.
    bridge.stop().await;
    host.set_boot_id("33333333-3333-3333-3333-333333333333");
    host.set_counters(&[("eth0", 300, 30)]);
    let mark = broker.mark();
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    broker
        .wait_for_after(mark, STATE, |m| {
            rx(&m.json()) == Some(20_700 + 4_294_966_800 + 1_296 + 300)
        })
        .await;
    bridge.stop().await;
}

/// A broker that closes the connection on any packet over its limit (mosquitto's
/// `max_packet_size` under MQTT 3.1.1): the bridge learns the limit from the refusals, skips
/// what does not fit (saying so in `bridge/info`) and keeps publishing the rest; an hour
/// later it tries the configured limit again.
#[tokio::test(start_paused = true)]
async fn a_packet_the_broker_refuses_is_learnt_skipped_and_tried_again_later() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    const LIMIT: usize = 1_500;
    broker.refuse_packets_over(Some(LIMIT));
    // Polls every 30 s: the hour below costs 120 polls, not 3 600.
    let toml = format!("[mqtt]\ndiscovery = \"device\"\n{}", host.config("30s"));
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    // A minute to learn and settle (each refusal costs a reconnect).
    let_pass(60).await;
    let info = broker.last("bandwidth2mqtt/bridge/info").unwrap().json();
    let learnt = info["link"]["packet_limit_learnt"].as_u64().unwrap() as usize;
    assert!(learnt < 65_536, "{info}");
    let skipped = info["link"]["skipped_topics"].to_string();
    assert!(skipped.contains("homeassistant/device/"), "{info}");
    // What the broker refused is what was learnt: the limit sits below each refused packet.
    let refused = broker.refused();
    assert!(
        !refused.is_empty() && refused.iter().all(|(_, size)| *size > learnt),
        "{refused:?}"
    );
    // Settled: no more reconnects, and fresh states still go out.
    let connects = broker.connects();
    assert!(broker.is_connected());
    host.set_counters(&[("lo", 1, 1), ("eth0", 50_000, 1_000), ("docker0", 777, 777)]);
    broker
        .wait_json(STATE, |v| num(v, &["interfaces", "eth0", "rx_bytes"]) == Some(50_000))
        .await;
    let_pass(60).await;
    assert_eq!(broker.connects(), connects, "no reconnect loop");
    assert!(
        broker
            .published()
            .iter()
            .all(|m| m.topic.len() + m.payload.len() < LIMIT),
        "nothing over the broker's limit was taken"
    );
    // The broker's limit is raised; an hour later a reconnect tries the configured one again
    // and what was skipped goes out.
    broker.refuse_packets_over(None);
    let_pass(3_600).await;
    let mark = broker.mark();
    broker.drop_connection();
    let config = broker
        .wait_for_after(mark, "homeassistant/device/titan/config", |m| m.payload.len() > LIMIT)
        .await;
    assert!(config.retain);
    bridge.stop().await;
}
