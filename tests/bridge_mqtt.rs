//! The bridge end to end: real mosquitto, the real binary, vnstat output from fixtures through
//! a fake command. What needs neither a process nor a real broker runs in-process on the
//! in-memory link: HA's birth, refresh, the host's counters and replay in bridge_inproc.rs (on
//! paused time), every vnstat error in vnstat_errors.rs (on a manual clock).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::broker::Broker;
use support::fake_vnstat::{FakeVnstat, Iface};
use support::process::BridgeProc;
use support::watcher::Watcher;
use support::{WAIT, fixture};

const T0: i64 = 1_795_559_160;

fn base_config(broker: &Broker) -> String {
    format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n",
        broker.url()
    )
}

fn vnstat_table(name: &str, fake: &FakeVnstat, extra: &str) -> String {
    format!(
        "[vnstat.{name}]\ncommand = {}\ninterval = \"1s\"\n{extra}\n",
        fake.command_toml()
    )
}

fn num(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_u64)
}

/// A fake vnstat for server `beast` that prints the real 2.10 capture.
fn beast_capture(dir: &std::path::Path) -> FakeVnstat {
    let fake = FakeVnstat::new(dir, "beast");
    fake.set_output(&fixture("vnstat/json-f-1.json"), 0);
    fake
}

async fn watch_all(broker: &Broker) -> Watcher {
    Watcher::connect(&broker.host, broker.port, &["#"]).await
}

/// Brokers clear the retain flag on live deliveries, so only a new subscriber can tell
/// whether a topic is retained.
async fn retained(broker: &Broker, topic: &str) -> String {
    let fresh = Watcher::connect(&broker.host, broker.port, &[topic]).await;
    let m = fresh.wait_for(topic, WAIT, |_| true).await;
    assert!(m.retain, "{topic} is retained");
    m.payload
}

#[tokio::test(flavor = "multi_thread")]
async fn vnstat_capture_end_to_end() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = beast_capture(dir.path());
    let watcher = watch_all(&broker).await;
    let config = format!(
        "{}[host]\nenabled = false\n{}",
        base_config(&broker),
        vnstat_table("beast", &fake, "mac = \"AA:BB:CC:DD:EE:01\"")
    );
    let _bridge = BridgeProc::spawn(dir.path(), &config);

    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    let state = watcher
        .wait_json("bandwidth2mqtt/beast", |v| {
            num(v, &["interfaces", "eth0", "rx_bytes"]).is_some()
        })
        .await;
    // The numbers of the real vnstat 2.10 capture.
    assert_eq!(num(&state, &["interfaces", "eth0", "rx_bytes"]), Some(720_864_692));
    assert_eq!(num(&state, &["interfaces", "eth0", "tx_bytes"]), Some(1_105_100));
    assert_eq!(num(&state, &["interfaces", "ifb0", "rx_bytes"]), Some(0));
    assert_eq!(num(&state, &["rx_bytes"]), Some(720_864_692));
    assert_eq!(state["online"], Value::Bool(true));
    assert_eq!(state["estimated"], Value::Bool(false));
    // Every key is present in every message; rates are null until two saves were seen.
    for key in ["rx_bytes", "tx_bytes", "rx_bps", "tx_bps"] {
        assert!(
            state.get(key).is_some() && state["interfaces"]["eth0"].get(key).is_some(),
            "{key} in {state}"
        );
    }
    assert_eq!(state["interfaces"]["eth0"]["rx_bps"], Value::Null);

    let config_msg = watcher
        .wait_for("homeassistant/sensor/beast/eth0_rx_bytes/config", WAIT, |m| {
            !m.payload.is_empty()
        })
        .await;
    let disc: Value = serde_json::from_str(&config_msg.payload).unwrap();
    assert_eq!(
        retained(&broker, "homeassistant/sensor/beast/eth0_rx_bytes/config").await,
        config_msg.payload
    );
    assert_eq!(disc["unique_id"], "bandwidth2mqtt_beast_eth0_rx_bytes");
    assert_eq!(disc["default_entity_id"], "sensor.beast_eth0_rx_bytes");
    assert_eq!(disc["object_id"], "beast_eth0_rx_bytes");
    assert_eq!(disc["unit_of_measurement"], "GiB");
    assert_eq!(disc["device_class"], "data_size");
    assert_eq!(disc["state_class"], "total_increasing");
    assert_eq!(disc["state_topic"], "bandwidth2mqtt/beast");
    assert_eq!(disc["availability_mode"], "all");
    assert_eq!(
        disc["availability"],
        serde_json::json!([{"topic": "bandwidth2mqtt/bridge/state"}, {"topic": "bandwidth2mqtt/bridge/source/beast"}])
    );
    assert_eq!(
        disc["device"]["identifiers"],
        serde_json::json!(["bandwidth2mqtt_beast"])
    );
    assert_eq!(
        disc["device"]["connections"],
        serde_json::json!([["mac", "aa:bb:cc:dd:ee:01"]])
    );
    assert_eq!(disc["device"]["via_device"], "bandwidth2mqtt_bridge");
    assert_eq!(disc["origin"]["name"], "bandwidth2mqtt");
    for object in [
        "rx_bytes",
        "tx_bytes",
        "rx_bps",
        "tx_bps",
        "eth0_tx_bps",
        "ifb1_rx_bytes",
    ] {
        assert!(
            watcher
                .latest(&format!("homeassistant/sensor/beast/{object}/config"))
                .is_some(),
            "{object}"
        );
    }
    assert!(
        watcher
            .latest("homeassistant/binary_sensor/beast/online/config")
            .is_some()
    );

    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/beast", "online")
        .await;
    assert_eq!(retained(&broker, "bandwidth2mqtt/bridge/source/beast").await, "online");
    assert!(
        retained(&broker, "bandwidth2mqtt/beast").await.contains("\"eth0\""),
        "retain_state defaults to true"
    );
    let info = watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["beast"]["status"] == "ok"
        })
        .await;
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["sources"]["beast"]["kind"], "vnstat");
    let devices = watcher
        .wait_json("bandwidth2mqtt/bridge/devices", |v| {
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(devices[0]["id"], "beast");
    assert_eq!(devices[0]["mac"], "aa:bb:cc:dd:ee:01");
    assert_eq!(devices[0]["kind"], "server");

    // The next save: +6 MB in 300 s on eth0 → 160 kbit/s, from Δtotal/Δupdated.
    let doc: String = fixture("vnstat/json-f-1.json")
        .replace("\"rx\":720864692", "\"rx\":726864692")
        .replace("1795559160", "1795559460");
    fake.set_output(&doc, 0);
    let state = watcher
        .wait_json("bandwidth2mqtt/beast", |v| {
            num(v, &["interfaces", "eth0", "rx_bytes"]) == Some(726_864_692)
        })
        .await;
    assert_eq!(num(&state, &["interfaces", "eth0", "rx_bps"]), Some(160_000));
    assert_eq!(num(&state, &["rx_bps"]), Some(160_000));
    assert_eq!(num(&state, &["interfaces", "eth0", "tx_bps"]), Some(0));
    // Polls between two saves change nothing: the rate is kept, never a 0 or a spike.
    let calls = fake.calls();
    tokio::time::timeout(WAIT, async {
        while fake.calls() < calls + 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    let latest: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/beast").unwrap().payload).unwrap();
    assert_eq!(num(&latest, &["interfaces", "eth0", "rx_bps"]), Some(160_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_resets_never_make_totals_go_back() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeVnstat::new(dir.path(), "beast");
    let eth0 = |rx| {
        [Iface {
            name: "eth0",
            rx,
            tx: 10,
        }]
    };
    fake.set_json(&eth0(1_000_000), T0, T0 - 86_400 * 30);
    let watcher = watch_all(&broker).await;
    let config = format!(
        "{}[host]\nenabled = false\n{}",
        base_config(&broker),
        vnstat_table("beast", &fake, "")
    );
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    let rx = |v: &Value| num(v, &["interfaces", "eth0", "rx_bytes"]);
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| rx(v) == Some(1_000_000))
        .await;

    // The vnstat database was re-created (a new `created` date): its total restarts at 5000.
    fake.set_json(&eth0(5_000), T0 + 300, T0 + 100);
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| rx(v) == Some(1_005_000))
        .await;
    // A drop with no explanation counts nothing and keeps the total...
    fake.set_json(&eth0(100), T0 + 600, T0 + 100);
    let calls = fake.calls();
    while fake.calls() < calls + 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/beast").unwrap().payload).unwrap();
    assert_eq!(rx(&held), Some(1_005_000));
    // ...and counting resumes from the new baseline.
    fake.set_json(&eth0(600), T0 + 900, T0 + 100);
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| rx(v) == Some(1_005_500))
        .await;

    // kill -9, traffic while the bridge is down, restart: continues exactly, offsets persisted.
    bridge.kill9();
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "offline").await;
    fake.set_json(&eth0(2_600), T0 + 1200, T0 + 100);
    let _bridge = BridgeProc::spawn(dir.path(), &config);
    let state = watcher
        .wait_json("bandwidth2mqtt/beast", |v| rx(v) == Some(1_007_500))
        .await;
    assert_eq!(num(&state, &["rx_bytes"]), Some(1_007_500));
    // Every published total along the way only went up.
    let mut last = 0;
    for m in watcher.log().iter().filter(|m| m.topic == "bandwidth2mqtt/beast") {
        let v: Value = serde_json::from_str(&m.payload).unwrap();
        let now = rx(&v).unwrap();
        assert!(now >= last, "published {now} after {last}");
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_brings_everything_back_with_backoff() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    if !broker.is_local() {
        eprintln!("SKIP: an external broker cannot be restarted by the test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = beast_capture(dir.path());
    let config = format!(
        "{}[host]\nenabled = false\n{}",
        base_config(&broker),
        vnstat_table("beast", &fake, "")
    );
    let bridge = BridgeProc::spawn(dir.path(), &config);
    {
        let watcher = watch_all(&broker).await;
        watcher
            .wait_json("bandwidth2mqtt/beast", |v| num(v, &["rx_bytes"]).is_some())
            .await;
    }

    // Down for 4 s: rumqttc would retry in a tight loop; we must back off.
    broker.stop();
    let attempts_before = bridge.log().matches("MQTT connection").count();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let attempts = bridge.log().matches("MQTT connection").count() - attempts_before;
    assert!((1..=5).contains(&attempts), "{attempts} reconnect attempts in 4 s");

    // A broker without persistence lost every retained message: all of it must come back.
    broker.restart();
    let watcher = watch_all(&broker).await;
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    watcher
        .wait_for("homeassistant/sensor/beast/eth0_rx_bytes/config", WAIT, |m| {
            !m.payload.is_empty()
        })
        .await;
    watcher
        .wait_for(
            "homeassistant/sensor/bandwidth2mqtt_bridge/version/config",
            WAIT,
            |_| true,
        )
        .await;
    assert!(
        !retained(&broker, "homeassistant/sensor/beast/eth0_rx_bytes/config")
            .await
            .is_empty()
    );
    assert_eq!(retained(&broker, "bandwidth2mqtt/bridge/state").await, "online");
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/beast", "online")
        .await;
    let state = watcher
        .wait_json("bandwidth2mqtt/beast", |v| {
            num(v, &["interfaces", "eth0", "rx_bytes"]).is_some()
        })
        .await;
    assert_eq!(num(&state, &["interfaces", "eth0", "rx_bytes"]), Some(720_864_692));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_leaves_the_last_will_and_sigterm_says_offline() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = beast_capture(dir.path());
    let config = format!(
        "{}[host]\nenabled = false\n{}",
        base_config(&broker),
        vnstat_table("beast", &fake, "")
    );
    let watcher = watch_all(&broker).await;

    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    bridge.kill9();
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "offline").await;
    assert_eq!(
        retained(&broker, "bandwidth2mqtt/bridge/state").await,
        "offline",
        "the last will is retained"
    );

    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    let status = bridge.terminate();
    assert_eq!(status.code(), Some(0), "clean stop exits 0");
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "offline").await;
    assert!(bridge.log().contains("Stopped."));
}
