//! Issue 21's rule, topic by topic, in-process on the in-memory link and paused time: what
//! anyone publishes on a topic the bridge subscribes to (HA's status, bridge requests, agent
//! counters, the discovery configs its start-up scan reads) is bounded in size and rate, and
//! can neither move a total, claim a device, nor silence the bridge. The limits sit on the
//! bridge's side of the link port (connection.rs, intake.rs), so the same checks hold over
//! rumqttc; broker_trust.rs keeps what needs a real mosquitto (its ACL file, RSS of a
//! process under a flood, rumqttc's own packet limit).

mod support;

use serde_json::Value;
use support::fake_host::FakeHost;
use support::inmem::{Bridge, MemoryBroker, num};

const STATE: &str = "bandwidth2mqtt/titan";
const INFO: &str = "bandwidth2mqtt/bridge/info";
const DEVICES: &str = "bandwidth2mqtt/bridge/devices";
const HA_STATUS: &str = "homeassistant/status";
const AGENT_X: &str = "bandwidth2mqtt/agent/x/counters";
const OUR_CONFIG: &str = "homeassistant/sensor/titan/rx_bytes/config";

fn titan(dir: &std::path::Path) -> FakeHost {
    let host = FakeHost::new(dir);
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    host
}

fn config(host: &FakeHost, extra: &str) -> String {
    format!("[mqtt]\ndiscovery = \"entity\"\n{}{extra}", host.config("1s"))
}

fn rx(v: &Value) -> Option<u64> {
    num(v, &["rx_bytes"])
}

fn link_count(info: &Value, key: &str) -> u64 {
    info.pointer(&format!("/link/{key}"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// An agent message claiming titan's MAC with an exabyte on a terabit link.
fn claim(name: &str) -> String {
    serde_json::json!({"v": 1, "name": name, "online": true, "interval_s": 10, "at_ms": 1,
        "macs": ["02:00:00:00:00:01"],
        "interfaces": {"eth0": {"rx_bytes": 1_000_000_000_000_000_000u64, "tx_bytes": 1,
                                "epoch": "e", "max_bps": 4e11}}})
    .to_string()
}

/// The rule after an attack: the link never dropped, the bridge still publishes fresh
/// totals that follow the host alone, and titan is the only device.
async fn bridge_unharmed(broker: &MemoryBroker, host: &FakeHost, next_rx: u64) {
    host.set_counters(&[("eth0", next_rx, 1_000)]);
    let state = broker.wait_json(STATE, |v| rx(v) == Some(next_rx)).await;
    assert_eq!(num(&state, &["tx_bytes"]), Some(1_000), "{state}");
    assert_eq!(broker.connects(), 1, "the link never dropped");
    let devices = broker.last(DEVICES).expect("devices index").json();
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, ["titan"], "no device claimed or created");
    assert!(
        broker
            .published()
            .iter()
            .all(|m| !m.topic.contains("/x/") && !m.topic.contains("agent_x")),
        "nothing published for a stranger's agent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_message_too_large_to_read_on_any_topic_never_silences_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    // 17 MiB, retained before the bridge starts: what used to fail the link on every connect.
    let huge = vec![b'x'; 17 * 1024 * 1024];
    for topic in [HA_STATUS, AGENT_X, OUR_CONFIG] {
        broker.deliver(topic, huge.clone(), true);
    }
    let bridge = Bridge::start(dir.path(), &config(&host, ""), &broker);
    broker.wait_json(STATE, |v| rx(v) == Some(10_000)).await;
    // A request too large to read is still answered, with an error that echoes nothing.
    broker.deliver("bandwidth2mqtt/bridge/request/health_check", huge.clone(), false);
    let answer = broker
        .wait_json("bandwidth2mqtt/bridge/response/health_check", |v| {
            v["status"] == "error"
        })
        .await;
    assert!(answer.to_string().len() < 300, "{answer}");
    let info = broker
        .wait_json(INFO, |v| link_count(v, "incoming_oversized") == 4)
        .await;
    assert!(info["link"].get("packet_limit_learnt").is_none(), "{info}");
    bridge_unharmed(&broker, &host, 20_000).await;
    // Cleared: nothing of ours is skipped afterwards, and HA's birth still works.
    for topic in [HA_STATUS, AGENT_X] {
        broker.deliver(topic, "", true);
    }
    let mark = broker.mark();
    broker.ha_birth();
    broker.wait_for_after(mark, STATE, |_| true).await;
    assert!(
        broker.retained()[OUR_CONFIG].starts_with('{'),
        "our config replaced the stranger's"
    );
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn over_a_topics_own_limit_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    // Readable, but over the scan's own limit for one config (128 KiB).
    broker.deliver("homeassistant/sensor/other/thing/config", vec![b'{'; 129 * 1024], true);
    let bridge = Bridge::start(dir.path(), &config(&host, "[agents.x]\n"), &broker);
    broker.wait_json(STATE, |v| rx(v) == Some(10_000)).await;
    // A named agent's message over 16 KiB: dropped unread.
    let mut fat = claim("x");
    fat.push_str(&" ".repeat(17 * 1024));
    broker.deliver(AGENT_X, fat, false);
    // A request over 2 KiB: an error, not echoed.
    let long = format!(r#"{{"transaction":"{}"}}"#, "t".repeat(3_000));
    broker.deliver("bandwidth2mqtt/bridge/request/health_check", long, false);
    let answer = broker
        .wait_json("bandwidth2mqtt/bridge/response/health_check", |v| {
            v["status"] == "error"
        })
        .await;
    assert!(answer.get("transaction").is_none(), "{answer}");
    broker
        .wait_json(INFO, |v| link_count(v, "incoming_too_large") == 3)
        .await;
    bridge_unharmed(&broker, &host, 20_000).await;
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn floods_on_every_topic_are_bounded_and_take_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    let bridge = Bridge::start(dir.path(), &config(&host, ""), &broker);
    // Settled: the rate is known, nothing changes until the host's counters do.
    broker
        .wait_json(STATE, |v| rx(v) == Some(10_000) && num(v, &["rx_bps"]) == Some(0))
        .await;
    let mark = broker.mark();
    // 3 000 agent ids nobody named, each claiming titan with an exabyte; 10 000 requests;
    // 1 000 births and garbage on HA's status topic; all at one instant.
    for i in 0..3_000 {
        broker.deliver(
            &format!("bandwidth2mqtt/agent/x{i}/counters"),
            claim(&format!("x{i}")),
            true,
        );
    }
    let request = r#"{"transaction":"t"}"#;
    for _ in 0..10_000 {
        broker.deliver("bandwidth2mqtt/bridge/request/health_check", request, false);
    }
    for i in 0..1_000 {
        broker.deliver(HA_STATUS, if i % 2 == 0 { "online" } else { "garbage" }, false);
    }
    let info = broker
        .wait_json(INFO, |v| {
            link_count(v, "agent_messages_refused") + link_count(v, "agent_messages_dropped") == 3_000
                && link_count(v, "requests_dropped") > 0
        })
        .await;
    // The requests that got through are what the bucket and the queue allow, not 10 000.
    let answers = broker.published()[mark..]
        .iter()
        .filter(|m| m.topic == "bandwidth2mqtt/bridge/response/health_check")
        .count() as u64;
    assert_eq!(answers + link_count(&info, "requests_dropped"), 10_000, "{info}");
    assert!(answers <= 40, "{answers} answers at one instant");
    assert_eq!(info["sources"].as_object().unwrap().len(), 1, "no agent taken: {info}");
    bridge_unharmed(&broker, &host, 20_000).await;
    // One republish for the births, not 500.
    let birth_states = broker.published()[mark..]
        .iter()
        .filter(|m| m.topic == STATE && rx(&m.json()) == Some(10_000))
        .count();
    assert_eq!(birth_states, 1, "one republish for 500 births");
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn restart_requests_restart_the_bridge_at_most_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new();
    let toml = config(&host, "");
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    broker.wait_json(STATE, |v| rx(v) == Some(10_000)).await;
    broker.deliver(
        "bandwidth2mqtt/bridge/request/restart",
        r#"{"transaction":"r1"}"#,
        false,
    );
    let stopped = bridge.ended().await;
    assert!(
        matches!(stopped, Ok(bandwidth2mqtt::bridge::Stopped::Restart)),
        "{stopped:?}"
    );
    // As main does: the bridge again, on the same broker. A second restart within the minute
    // is refused, and the bridge keeps running.
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    let mark = broker.mark();
    broker.wait_for_after(mark, STATE, |_| true).await;
    broker.deliver(
        "bandwidth2mqtt/bridge/request/restart",
        r#"{"transaction":"r2"}"#,
        false,
    );
    let answer = broker
        .wait_json("bandwidth2mqtt/bridge/response/restart", |v| v["transaction"] == "r2")
        .await;
    assert_eq!(answer["status"], "error", "{answer}");
    host.set_counters(&[("eth0", 20_000, 1_000)]);
    broker.wait_json(STATE, |v| rx(v) == Some(20_000)).await;
    bridge.stop().await;
}

/// The limits sit on the bridge's side of the link port: a link that handed over a message
/// too large to read (against the port's contract) would still not get it parsed.
#[tokio::test(start_paused = true)]
async fn the_bridge_bounds_what_a_link_hands_over_whatever_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let host = titan(dir.path());
    let broker = MemoryBroker::new().unbounded();
    let bridge = Bridge::start(dir.path(), &config(&host, "[agents.x]\n"), &broker);
    broker.wait_json(STATE, |v| rx(v) == Some(10_000)).await;
    let mut huge = claim("x").into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 17 * 1024 * 1024));
    broker.deliver(AGENT_X, huge.clone(), false);
    broker.deliver("bandwidth2mqtt/bridge/request/health_check", huge, false);
    broker
        .wait_json("bandwidth2mqtt/bridge/response/health_check", |v| {
            v["status"] == "error"
        })
        .await;
    broker
        .wait_json(INFO, |v| link_count(v, "incoming_oversized") == 2)
        .await;
    bridge_unharmed(&broker, &host, 20_000).await;
    bridge.stop().await;
}
