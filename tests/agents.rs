//! `bandwidth2mqtt agent` on several "servers" (fake /proc + /sys each) and one bridge, on one
//! real mosquitto: totals and rates, an agent restart, a server reboot, an agent that dies, one
//! that goes silent, and an agent topic carrying garbage or counters that go back.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use support::broker::Broker;
use support::fake_host::FakeHost;
use support::process::{BIN, BridgeProc};
use support::watcher::Watcher;

const MAC_BEAST: &str = "aa:bb:cc:dd:ee:01";
const MAC_PANDA: &str = "aa:bb:cc:dd:ee:02";

struct Agent {
    child: Child,
    log: std::path::PathBuf,
}

impl Agent {
    fn spawn(dir: &Path, broker: &Broker, host: &FakeHost, name: &str) -> Self {
        // Each agent signs with its own key (issue 21); the bridge has the same in [agents].
        std::fs::write(dir.join("agent.key"), format!("{}\n", key_of(name))).unwrap();
        let config = format!(
            "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"state\"\n[agent]\nkey_file = \"agent.key\"\n{}name = \"{name}\"\ninterfaces = [\"eth0\"]\n",
            broker.url(),
            host.config("1s")
        );
        std::fs::write(dir.join("agent.toml"), config).unwrap();
        let log = dir.join("agent.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["agent", "-c", "agent.toml"])
            .current_dir(dir)
            .env("RUST_LOG", "bandwidth2mqtt=debug")
            .env_remove("BANDWIDTH2MQTT_CONFIG")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([sig, &self.child.id().to_string()]).status();
    }

    fn stop(mut self) {
        self.signal("-TERM");
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- agent log ----\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(dir: &Path, mac: &str, boot: &str, rx: u64, tx: u64) -> FakeHost {
    std::fs::create_dir_all(dir).unwrap();
    let host = FakeHost::new(dir);
    host.set_boot_id(boot);
    host.add_interface("eth0", mac, 2, false);
    host.set_counters(&[("eth0", rx, tx)]);
    host
}

fn key_of(agent: &str) -> String {
    format!("{agent}-key-0123456789abcdef")
}

/// The bridge names its agents (an unnamed one creates nothing): beast and panda sign their
/// messages and may claim their own MACs; ghost (published by hand) has no key.
fn bridge_config(broker: &Broker) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n\
         [agents.beast]\nkey = \"{}\"\nmac = \"{MAC_BEAST}\"\n\
         [agents.panda]\nkey = \"{}\"\nmac = \"{MAC_PANDA}\"\n\
         [agents.ghost]\n",
        broker.url(),
        key_of("beast"),
        key_of("panda"),
    )
}

/// Events are not retained and several may arrive at once: look through everything seen.
async fn wait_event(watcher: &Watcher, kind: &str, id: &str) {
    let deadline = std::time::Instant::now() + support::WAIT;
    loop {
        let found = watcher.log().iter().any(|m| {
            m.topic == "bandwidth2mqtt/bridge/event"
                && serde_json::from_str::<Value>(&m.payload).is_ok_and(|v| v["type"] == kind && v["data"]["id"] == id)
        });
        if found {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no {kind} event for {id}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn rx(v: &Value) -> Option<u64> {
    v.get("rx_bytes").and_then(Value::as_u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_feed_the_bridge_through_restart_reboot_death_and_silence() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let beast_host = server(&dir.path().join("beast"), MAC_BEAST, "boot-beast-1", 1_000, 100);
    let panda_host = server(&dir.path().join("panda"), MAC_PANDA, "boot-panda-1", 5_000, 500);
    let bridge_dir = dir.path().join("bridge");
    std::fs::create_dir_all(&bridge_dir).unwrap();
    let _bridge = BridgeProc::spawn(&bridge_dir, &bridge_config(&broker));
    let beast = Agent::spawn(&dir.path().join("beast"), &broker, &beast_host, "beast");
    let panda = Agent::spawn(&dir.path().join("panda"), &broker, &panda_host, "panda");

    // Both servers appear as devices of their own, with the agent as source.
    let state = watcher
        .wait_json("bandwidth2mqtt/beast", |v| {
            v["online"] == json!(true) && rx(v).is_some()
        })
        .await;
    let first = rx(&state).unwrap();
    let first_tx = state["tx_bytes"].as_u64().unwrap();
    watcher
        .wait_json("bandwidth2mqtt/panda", |v| {
            v["online"] == json!(true) && rx(v).is_some()
        })
        .await;
    let devices = watcher
        .wait_json("bandwidth2mqtt/bridge/devices", |v| {
            v.as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    let beast_summary = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "beast")
        .unwrap()
        .clone();
    assert_eq!(beast_summary["mac"], MAC_BEAST, "{beast_summary}");
    wait_event(&watcher, "device_joined", "beast").await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/agent_beast", "online")
        .await;

    // Traffic counts exactly, and live rates appear.
    beast_host.set_counters(&[("eth0", 1_000 + 4_000, 100 + 40)]);
    let after = watcher
        .wait_json("bandwidth2mqtt/beast", |v| rx(v) == Some(first + 4_000))
        .await;
    assert_eq!(after["tx_bytes"].as_u64(), Some(first_tx + 40));
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| v["rx_bps"].as_f64().is_some())
        .await;

    // Agent restart (clean stop: its will says offline; then it comes back): nothing lost or doubled.
    beast.stop();
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| v["online"] == json!(false))
        .await;
    wait_event(&watcher, "device_left", "beast").await;
    beast_host.set_counters(&[("eth0", 5_000 + 1_000, 200)]);
    let beast = Agent::spawn(&dir.path().join("beast"), &broker, &beast_host, "beast");
    let back = watcher
        .wait_json("bandwidth2mqtt/beast", |v| {
            v["online"] == json!(true) && rx(v) == Some(first + 5_000)
        })
        .await;
    assert_eq!(
        rx(&back),
        Some(first + 5_000),
        "bytes moved while the agent was down count once"
    );

    // Server reboot: new boot id, counters from zero; the total continues.
    beast_host.set_boot_id("boot-beast-2");
    beast_host.set_counters(&[("eth0", 300, 30)]);
    let rebooted = watcher
        .wait_json("bandwidth2mqtt/beast", |v| rx(v) == Some(first + 5_000 + 300))
        .await;
    assert!(rebooted["tx_bytes"].as_u64().unwrap() >= 200);

    // An agent that dies without a word: the broker publishes its will.
    drop(panda);
    watcher
        .wait_json("bandwidth2mqtt/panda", |v| v["online"] == json!(false))
        .await;

    // An agent that hangs (SIGSTOP): the bridge notices the silence.
    beast.signal("-STOP");
    let silent = watcher
        .wait_json("bandwidth2mqtt/beast", |v| v["online"] == json!(false))
        .await;
    assert_eq!(rx(&silent), Some(first + 5_000 + 300), "totals held while silent");
    let info = watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["agent_beast"]["status"] == "offline"
        })
        .await;
    assert!(
        info["sources"]["agent_beast"]["last_error"]
            .as_str()
            .unwrap()
            .contains("no counters"),
        "{info}"
    );
    beast.signal("-CONT");
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| v["online"] == json!(true))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_garbage_and_counters_going_back_never_lower_totals() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &bridge_config(&broker));
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    let topic = "bandwidth2mqtt/agent/ghost/counters";
    let msg = |rx: u64, at_ms: i64| {
        json!({"v": 1, "name": "ghost", "online": true, "interval_s": 1, "at_ms": at_ms,
               "boot_id": "b1", "macs": ["aa:bb:cc:00:00:09"],
               "interfaces": {"eth0": {"rx_bytes": rx, "tx_bytes": 10, "epoch": "b1/2", "max_bps": 1e9}}})
        .to_string()
    };
    watcher.publish(topic, &msg(1_000, 1_000), false).await;
    let s = watcher.wait_json("bandwidth2mqtt/ghost", |v| rx(v).is_some()).await;
    let base = rx(&s).unwrap();
    watcher.publish(topic, &msg(3_000, 2_000), false).await;
    watcher
        .wait_json("bandwidth2mqtt/ghost", |v| rx(v) == Some(base + 2_000))
        .await;

    // Garbage, twice: ignored, logged once, the server stays online with its total.
    watcher
        .publish(topic, "{\"v\":1,\"name\":\"ghost\",\"online\":tru", false)
        .await;
    watcher
        .publish(topic, "{\"v\":1,\"name\":\"ghost\",\"online\":tru", false)
        .await;
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["agent_ghost"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not agent JSON"))
        })
        .await;
    // A counter that goes back without a new boot: nothing counted, total held.
    watcher.publish(topic, &msg(500, 3_000), false).await;
    watcher.publish(topic, &msg(800, 4_000), false).await;
    let s = watcher
        .wait_json("bandwidth2mqtt/ghost", |v| rx(v) == Some(base + 2_000 + 300))
        .await;
    assert_eq!(s["online"], json!(true));
    let log = bridge.log();
    assert_eq!(log.matches("Agent message ignored").count(), 1, "{log}");
    assert_eq!(log.matches("Counter went down without a restart").count(), 1, "{log}");
    // Every state ever published for ghost had a total at least the one before.
    let totals: Vec<u64> = watcher
        .log()
        .iter()
        .filter(|m| m.topic == "bandwidth2mqtt/ghost")
        .filter_map(|m| serde_json::from_str::<Value>(&m.payload).ok().and_then(|v| rx(&v)))
        .collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
}
