//! The bridge end to end: real mosquitto, the real binary, vnstat output from fixtures through
//! a fake command, and a fake /proc for the host source.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::broker::Broker;
use support::fake_host::FakeHost;
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
async fn every_vnstat_error_takes_only_that_source_offline() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("lo", 5, 5), ("eth0", 1000, 100)]);
    let fake = FakeVnstat::new(dir.path(), "beast");
    let good = fixture("vnstat/json-f-1.json");
    fake.set_output(&good, 0);
    let watcher = watch_all(&broker).await;
    let config = format!(
        "{}{}{}timeout = \"1s\"\n[vnstat.ghost]\ncommand = [\"/nonexistent/vnstat\", \"--json\"]\ninterval = \"1s\"\n",
        base_config(&broker),
        host.config("1s"),
        vnstat_table("beast", &fake, "")
    );
    let bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/beast", "online")
        .await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/host", "online")
        .await;
    let before = watcher
        .wait_json("bandwidth2mqtt/beast", |v| num(v, &["rx_bytes"]).is_some())
        .await;

    // A command that does not exist: that source is offline from the start, the others are not.
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/ghost", "offline")
        .await;
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["ghost"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not found"))
        })
        .await;

    let half = &good[..good.len() / 2];
    let cases: Vec<(String, i32, &str)> = vec![
        (
            fixture("vnstat/err-noiface-json.txt"),
            1,
            "No interface matching \"nosuch0\"",
        ),
        (
            fixture("vnstat/err-nodbdir-json.txt"),
            1,
            "Unable to open database directory",
        ),
        (fixture("vnstat/err-emptydbdir-json.txt"), 1, "Failed to open database"),
        (
            fixture("vnstat/err-emptydb-json.txt"),
            1,
            "Unable to discover suitable interface",
        ),
        (
            fixture("vnstat/err-lo-notindb-json.txt"),
            1,
            "No interface matching \"lo\"",
        ),
        (
            fixture("vnstat/err-json-single-digit-limit.txt"),
            1,
            "Invalid mode parameter \"3\"",
        ),
        (
            fixture("vnstat/v2.9/err-json-s-unsupported.txt"),
            1,
            "Invalid mode parameter \"s\"",
        ),
        // vnstat 1.18 prints these with exit status 0.
        (fixture("vnstat/v1.18/err-nodb-json.txt"), 0, "No database found"),
        (
            fixture("vnstat/v1.18/err-noiface-json.txt"),
            0,
            "Unable to read database",
        ),
        (half.to_owned(), 0, "EOF while parsing"),
        (
            good.replace("\"traffic\"", "Error: Failed to fetch data.\n\"traffic\""),
            0,
            "vnstat printed no JSON",
        ),
        (
            "{\"vnstatversion\":\"2.10\",\"jsonversion\":\"2\",\"interfaces\":[{\"name\":\"eth0\"}]}".into(),
            0,
            "missing field",
        ),
        (String::new(), 0, "vnstat printed no JSON"),
    ];
    for (output, code, expected) in cases {
        fake.set_output(&output, code);
        watcher
            .wait_json("bandwidth2mqtt/bridge/info", |v| {
                v["sources"]["beast"]["status"] == "error"
                    && v["sources"]["beast"]["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains(expected))
            })
            .await;
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/beast", "offline")
            .await;
        // Everything else is unaffected, and the failing server keeps its last totals while it
        // reads as disconnected.
        assert_eq!(
            watcher.latest("bandwidth2mqtt/bridge/source/host").unwrap().payload,
            "online"
        );
        let held = watcher
            .wait_json("bandwidth2mqtt/beast", |v| v["online"] == Value::Bool(false))
            .await;
        assert_eq!(held["rx_bytes"], before["rx_bytes"], "{expected}");
        fake.set_output(&good, 0);
        watcher
            .wait_json("bandwidth2mqtt/bridge/info", |v| {
                v["sources"]["beast"]["status"] == "ok"
            })
            .await;
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/beast", "online")
            .await;
    }

    // A hung command is killed at its timeout.
    fake.set_delay(Some(5));
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["beast"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("did not finish within 1s"))
        })
        .await;
    fake.set_delay(None);
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["beast"]["status"] == "ok"
        })
        .await;

    // An alias with a quote is repaired, with a warning, and the source stays up.
    fake.set_output(&fixture("vnstat/alias-with-quote-json-eth0-INVALID-JSON.json"), 0);
    tokio::time::timeout(WAIT, async {
        while !bridge.log().contains("alias that is not valid JSON") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("alias warning logged");
    assert_eq!(
        watcher.latest("bandwidth2mqtt/bridge/source/beast").unwrap().payload,
        "online"
    );
    let final_state: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/beast").unwrap().payload).unwrap();
    assert!(
        num(&final_state, &["rx_bytes"]) >= num(&before, &["rx_bytes"]),
        "never backwards"
    );
    assert!(!bridge.log().contains("panicked"));
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
async fn host_counters_across_reboot_recreation_and_wrap() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.add_interface("docker0", "02:42:00:00:00:01", 3, true);
    host.set_counters(&[("lo", 1, 1), ("eth0", 10_000, 1_000), ("docker0", 777, 777)]);
    let watcher = watch_all(&broker).await;
    let config = format!("{}{}", base_config(&broker), host.config("1s"));
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    let rx = |v: &Value| num(v, &["interfaces", "eth0", "rx_bytes"]);

    let state = watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(10_000))
        .await;
    assert!(
        state["interfaces"].get("docker0").is_none()
            && state["interfaces"].get("lo").is_none()
            && state["interfaces"].get("eth0").is_some(),
        "virtual and loopback skipped: {state}"
    );
    let disc = watcher
        .wait_for("homeassistant/sensor/titan/rx_bytes/config", WAIT, |_| true)
        .await;
    let disc: Value = serde_json::from_str(&disc.payload).unwrap();
    assert_eq!(
        disc["device"]["connections"],
        serde_json::json!([["mac", "02:00:00:00:00:01"]])
    );
    assert_eq!(disc["device"]["sw_version"], "6.1.0-test");

    // Live rate from consecutive reads.
    host.set_counters(&[("lo", 1, 1), ("eth0", 20_000, 1_000), ("docker0", 777, 777)]);
    let state = watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_000))
        .await;
    assert!(
        num(&state, &["interfaces", "eth0", "rx_bps"]).is_some_and(|r| r > 0),
        "{state}"
    );

    // Reboot: new boot id, counters from zero.
    host.set_boot_id("22222222-2222-2222-2222-222222222222");
    host.set_counters(&[("eth0", 500, 50)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_500))
        .await;
    // The interface is re-created (new ifindex): counting starts again from its new counter.
    host.set_ifindex("eth0", 7);
    host.set_counters(&[("eth0", 200, 20)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_700))
        .await;
    // A driver that wraps at 2^32 (told from a reset by its link speed).
    host.set_speed("eth0", 1000);
    host.set_counters(&[("eth0", 4_294_967_000, 20)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_700 + 4_294_966_800))
        .await;
    host.set_counters(&[("eth0", 1_000, 20)]);
    let wrapped = watcher
        .wait_json("bandwidth2mqtt/titan", |v| {
            rx(v) == Some(20_700 + 4_294_966_800 + 1_296)
        })
        .await;
    assert_eq!(
        num(&wrapped, &["rx_bytes"]),
        rx(&wrapped),
        "device total follows its interface"
    );

    // Rebooted while the bridge was down.
    bridge.kill9();
    host.set_boot_id("33333333-3333-3333-3333-333333333333");
    host.set_counters(&[("eth0", 300, 30)]);
    let _bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| {
            rx(v) == Some(20_700 + 4_294_966_800 + 1_296 + 300)
        })
        .await;
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
async fn home_assistant_birth_republishes_states() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = beast_capture(dir.path());
    // States not retained: after HA restarts it only gets them because we answer its birth.
    let config = format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\nretain_state = false\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n{}",
        broker.url(),
        vnstat_table("beast", &fake, "")
    );
    let _bridge = BridgeProc::spawn(dir.path(), &config);
    {
        let early = watch_all(&broker).await;
        early
            .wait_json("bandwidth2mqtt/beast", |v| num(v, &["rx_bytes"]).is_some())
            .await;
    }
    let ha = watch_all(&broker).await;
    ha.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    // Unchanged data is not published again on its own.
    let calls = fake.calls();
    while fake.calls() < calls + 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ha.count("bandwidth2mqtt/beast"), 0);
    ha.publish("homeassistant/status", "online", false).await;
    let state = ha
        .wait_json("bandwidth2mqtt/beast", |v| num(v, &["rx_bytes"]).is_some())
        .await;
    assert_eq!(num(&state, &["rx_bytes"]), Some(720_864_692));
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

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_states_are_refreshed_at_the_configured_interval() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = beast_capture(dir.path());
    let config = format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\nrefresh_interval = \"2s\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n{}",
        broker.url(),
        vnstat_table("beast", &fake, "")
    );
    let watcher = watch_all(&broker).await;
    let _bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| v["rx_bytes"].is_u64())
        .await;
    // The data never changes, yet the state goes out again: once per refresh, not per poll.
    tokio::time::timeout(WAIT, async {
        while watcher.count("bandwidth2mqtt/beast") < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("refreshed states");
    let polls = fake.calls();
    let states = watcher.count("bandwidth2mqtt/beast");
    assert!(states < polls, "{states} states for {polls} polls");
}
