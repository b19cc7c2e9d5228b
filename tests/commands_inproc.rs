//! `bridge/request/<command>` → `bridge/response/<command>` in-process, on the in-memory link
//! and paused time: answers, errors, `poll`, `device/rename` (kept across a restart),
//! `restart`, `device/remove` and its `bridge/event`. Moved from commands.rs, which keeps what
//! needs the binary (the `health` subcommand, main's restart loop, the metrics endpoint).

mod support;

use serde_json::{Value, json};
use support::fake_host::FakeHost;
use support::inmem::{Bridge, MemoryBroker};

const GHOST: &str = "bandwidth2mqtt/agent/ghost/counters";
const CONFIG: &str = "homeassistant/sensor/ghost/rx_bytes/config";

fn ghost(rx: u64) -> String {
    json!({"v": 1, "name": "ghost", "online": true, "interval_s": 60, "at_ms": 1,
           "macs": ["aa:bb:cc:00:00:09"],
           "interfaces": {"eth0": {"rx_bytes": rx, "tx_bytes": 10, "epoch": "b1/2", "max_bps": 1e9}}})
    .to_string()
}

async fn request(broker: &MemoryBroker, command: &str, payload: &str, transaction: &str) -> Value {
    broker.deliver(&format!("bandwidth2mqtt/bridge/request/{command}"), payload, false);
    broker
        .wait_json(&format!("bandwidth2mqtt/bridge/response/{command}"), |v| {
            v["transaction"] == transaction
        })
        .await
}

fn error(r: &Value) -> &str {
    r["error"].as_str().unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn commands_answer_and_change_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    let broker = MemoryBroker::new();
    // The host polls hourly: only the `poll` command makes it run again soon.
    let toml = format!("[mqtt]\ndiscovery = \"entity\"\n{}[agents.ghost]\n", host.config("1h"));
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    broker.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    broker.deliver(GHOST, ghost(1_000), false);
    broker
        .wait_json("bandwidth2mqtt/ghost", |v| v["rx_bytes"].is_u64())
        .await;

    // health_check, with the transaction echoed.
    let r = request(&broker, "health_check", r#"{"transaction":"t1"}"#, "t1").await;
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["data"]["healthy"], true);
    assert!(r["data"]["sources"]["host"].is_string(), "{r}");

    // Bad JSON and unknown commands: an error naming the problem.
    broker.deliver("bandwidth2mqtt/bridge/request/poll", "{nope", false);
    let r = broker
        .wait_json("bandwidth2mqtt/bridge/response/poll", |v| v["status"] == "error")
        .await;
    assert!(error(&r).contains("invalid JSON"), "{r}");
    let r = request(&broker, "frobnicate", r#"{"transaction":"t2"}"#, "t2").await;
    assert_eq!(r["status"], "error");
    assert!(error(&r).contains("unknown command `frobnicate`"), "{r}");
    let r = request(
        &broker,
        "device/rename",
        r#"{"id":"nobody","name":"X","transaction":"t3"}"#,
        "t3",
    )
    .await;
    assert!(error(&r).contains("no device `nobody`"), "{r}");
    // Names HA cannot take are refused.
    let r = request(
        &broker,
        "device/rename",
        r#"{"id":"ghost","name":"","transaction":"t3b"}"#,
        "t3b",
    )
    .await;
    assert_eq!(r["status"], "error", "{r}");

    // poll: the hourly host source runs again at once (well within its hour). A minute on
    // from its first poll, so that its 10 kB are a plausible rate.
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    host.set_counters(&[("eth0", 20_000, 1_000)]);
    let r = request(&broker, "poll", r#"{"transaction":"t4"}"#, "t4").await;
    assert_eq!(r["status"], "ok");
    let polled_at = tokio::time::Instant::now();
    broker
        .wait_json("bandwidth2mqtt/titan", |v| v["rx_bytes"] == 20_000)
        .await;
    assert!(polled_at.elapsed() < std::time::Duration::from_secs(60));

    // device/rename: the HA device name changes; the id stays; it survives a restart.
    let r = request(
        &broker,
        "device/rename",
        r#"{"id":"ghost","name":"Ghost Box","transaction":"t5"}"#,
        "t5",
    )
    .await;
    assert_eq!(r["status"], "ok", "{r}");
    broker.wait_json(CONFIG, |v| v["device"]["name"] == "Ghost Box").await;

    // restart: the bridge stops saying offline; started again (as main does), online and
    // the name kept.
    let r = request(&broker, "restart", r#"{"transaction":"t6"}"#, "t6").await;
    assert_eq!(r["status"], "ok");
    let stopped = bridge.ended().await;
    assert!(
        matches!(stopped, Ok(bandwidth2mqtt::bridge::Stopped::Restart)),
        "{stopped:?}"
    );
    assert_eq!(broker.last("bandwidth2mqtt/bridge/state").unwrap().payload, "offline");
    let mark = broker.mark();
    let bridge = Bridge::start(dir.path(), &toml, &broker);
    broker
        .wait_for_after(mark, "bandwidth2mqtt/bridge/state", |m| m.payload == "online")
        .await;
    broker.deliver(GHOST, ghost(2_000), false);
    broker
        .wait_for_after(mark, CONFIG, |m| m.json()["device"]["name"] == "Ghost Box")
        .await;

    // device/remove: discovery cleared (empty retained), state cleared, event sent.
    let r = request(&broker, "device/remove", r#"{"id":"ghost","transaction":"t7"}"#, "t7").await;
    assert_eq!(r["status"], "ok", "{r}");
    broker.wait_payload(CONFIG, "").await;
    broker.wait_payload("bandwidth2mqtt/ghost", "").await;
    assert!(!broker.retained().contains_key(CONFIG));
    broker
        .wait_json("bandwidth2mqtt/bridge/event", |v| {
            v["type"] == "device_removed" && v["data"]["id"] == "ghost"
        })
        .await;
    let devices = broker
        .wait_json("bandwidth2mqtt/bridge/devices", |v| {
            v.as_array().is_some_and(|a| a.iter().all(|d| d["id"] != "ghost"))
        })
        .await;
    assert!(devices.as_array().unwrap().iter().any(|d| d["id"] == "titan"));
    bridge.stop().await;
}
