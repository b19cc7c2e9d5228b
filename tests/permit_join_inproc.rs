//! The join window (issue 21, item 2; src/bridge/permit_join.rs), in-process on the in-memory
//! link and paused time: closed, an agent the configuration does not name creates nothing;
//! `permit_join` opens it (unsigned agents only if asked, and only with a key to check signed
//! ones otherwise), an agent that speaks inside it is admitted and written down, `time: 0`
//! closes it, it closes by itself when its time is up, and an admitted agent is still admitted
//! after a restart.

mod support;

use serde_json::{Value, json};
use support::fake_host::FakeHost;
use support::inmem::{Bridge, MemoryBroker};

const INFO: &str = "bandwidth2mqtt/bridge/info";

fn agent(name: &str, rx: u64) -> String {
    json!({"v": 1, "name": name, "online": true, "interval_s": 60, "at_ms": 1,
           "interfaces": {"eth0": {"rx_bytes": rx, "tx_bytes": 10, "epoch": "b1/2", "max_bps": 1e9}}})
    .to_string()
}

fn deliver(broker: &MemoryBroker, name: &str, rx: u64) {
    broker.deliver(&format!("bandwidth2mqtt/agent/{name}/counters"), agent(name, rx), false);
}

async fn request(broker: &MemoryBroker, payload: Value) -> Value {
    let transaction = payload["transaction"].clone();
    broker.deliver("bandwidth2mqtt/bridge/request/permit_join", payload.to_string(), false);
    broker
        .wait_json("bandwidth2mqtt/bridge/response/permit_join", |v| {
            v["transaction"] == transaction
        })
        .await
}

/// Waits for the host's state at `rx` (a poll went through after whatever came before).
async fn host_polled(broker: &MemoryBroker, host: &FakeHost, rx: u64) {
    host.set_counters(&[("eth0", rx, 1_000)]);
    broker.wait_json("bandwidth2mqtt/titan", |v| v["rx_bytes"] == rx).await;
}

fn created(broker: &MemoryBroker, name: &str) -> bool {
    broker
        .published()
        .iter()
        .any(|m| m.topic == format!("bandwidth2mqtt/{name}") || m.topic.contains(&format!("agent_{name}")))
}

#[tokio::test(start_paused = true)]
async fn the_join_window_opens_admits_closes_expires_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    let toml = format!("[mqtt]\ndiscovery = \"entity\"\n{}", host.config("1s"));
    let broker = MemoryBroker::new();
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    broker.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    let info = broker.wait_json(INFO, |v| v["permit_join"].is_object()).await;
    assert_eq!(info["permit_join"], json!({"open": false}), "{info}");

    // Closed: an unnamed agent creates nothing.
    deliver(&broker, "ghost", 1_000);
    host_polled(&broker, &host, 11_000).await;
    assert!(!created(&broker, "ghost"));

    // No [agent] key to check signatures with: only an unsigned window can admit anyone.
    let r = request(&broker, json!({"time": 60, "transaction": "k"})).await;
    assert_eq!(r["status"], "error", "{r}");
    assert!(r["error"].as_str().unwrap().contains("[agent] key"), "{r}");
    let r = request(&broker, json!({"time": 255, "unsigned": true, "transaction": "big"})).await;
    assert_eq!(r["status"], "error", "{r}");

    // Open: the next message of the unnamed agent admits it.
    let r = request(&broker, json!({"time": 60, "unsigned": true, "transaction": "o"})).await;
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["data"]["time"], 60);
    assert!(r["data"]["until"].as_str().unwrap().ends_with('Z'), "{r}");
    let info = broker.wait_json(INFO, |v| v["permit_join"]["open"] == true).await;
    assert_eq!(info["permit_join"]["unsigned"], true, "{info}");
    deliver(&broker, "ghost", 2_000);
    broker
        .wait_json("bandwidth2mqtt/ghost", |v| v["rx_bytes"].is_u64())
        .await;
    broker
        .wait_json(INFO, |v| v["permit_join"]["admitted"] == json!(["ghost"]))
        .await;

    // Closed by `time: 0`: the next stranger creates nothing; ghost stays.
    let r = request(&broker, json!({"time": 0, "transaction": "c"})).await;
    assert_eq!(r["status"], "ok", "{r}");
    broker.wait_json(INFO, |v| v["permit_join"]["open"] == false).await;
    deliver(&broker, "intruder", 1_000);
    host_polled(&broker, &host, 12_000).await;
    assert!(!created(&broker, "intruder"));

    // Opened for 5 s: it closes by itself, and then admits nobody.
    let r = request(&broker, json!({"time": 5, "unsigned": true, "transaction": "e"})).await;
    assert_eq!(r["status"], "ok", "{r}");
    broker.wait_json(INFO, |v| v["permit_join"]["open"] == true).await;
    broker.wait_json(INFO, |v| v["permit_join"]["open"] == false).await;
    deliver(&broker, "late", 1_000);
    host_polled(&broker, &host, 13_000).await;
    assert!(!created(&broker, "late"));
    bridge.stop().await;

    // Restarted: ghost is still admitted (the agents file), the window still closed.
    let broker = MemoryBroker::new();
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    broker.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    deliver(&broker, "ghost", 3_000);
    broker
        .wait_json("bandwidth2mqtt/ghost", |v| v["rx_bytes"].is_u64())
        .await;
    let info = broker
        .wait_json(INFO, |v| v["permit_join"]["admitted"] == json!(["ghost"]))
        .await;
    assert_eq!(info["permit_join"]["open"], false, "{info}");
    bridge.stop().await;
}
