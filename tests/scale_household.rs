//! No message can break the MQTT link (issue 11): a Deco mesh with a 10 000-client household
//! through the real binary and a real mosquitto holds one connection, and `bridge/devices`
//! stays complete (split into parts that fit). Brokers that refuse big packets — closing the
//! connection (`max_packet_size`) or silently dropping them (`message_size_limit`) — do not
//! cause a reconnect loop either.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bandwidth2mqtt::emulators::deco::{ClientSpec, Clock, DecoEmulator, EmulatorConfig, Profile, home};
use bandwidth2mqtt::model::MacAddr;
use serde_json::Value;
use support::broker::Broker;
use support::process::BridgeProc;
use support::watcher::Watcher;

const PASSWORD: &str = "deco-Owner-pw1";
/// Many devices take a while on a busy 2-core CI machine; this is a bound, not a measurement.
const SLOW: Duration = Duration::from_secs(240);

fn household(n: usize) -> DecoEmulator {
    let (nodes, _) = home();
    let clients = (0..n)
        .map(|i| {
            let mac = MacAddr::new([0x02, 0x10, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            let mut c = ClientSpec::new(
                mac,
                &format!("Client {i}"),
                i % 2,
                "band5",
                Profile::Constant {
                    down_bps: 8_000.0,
                    up_bps: 800.0,
                },
            );
            c.ip = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
            c
        })
        .collect();
    DecoEmulator::new(EmulatorConfig::new(PASSWORD, nodes, clients, Clock::Real)).unwrap()
}

fn config(broker: &Broker, deco_url: &str, extra_mqtt: &str) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\n{extra_mqtt}\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[deco.mesh]\nurl = \"{deco_url}\"\npassword = \"{PASSWORD}\"\ninterval = \"5s\"\ntimeout = \"20s\"\n",
        broker.url()
    )
}

/// Every device id listed under `bridge/devices` (one array, or the index and its parts).
fn listed_devices(watcher: &Watcher) -> Option<BTreeSet<String>> {
    let main: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/bridge/devices")?.payload).ok()?;
    let arrays: Vec<Value> = match &main {
        Value::Array(_) => vec![main.clone()],
        Value::Object(index) => index["parts"]
            .as_array()?
            .iter()
            .map(|t| serde_json::from_str(&watcher.latest(t.as_str()?)?.payload).ok())
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some(
        arrays
            .iter()
            .flat_map(|a| a.as_array().cloned().unwrap_or_default())
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

fn connects(bridge: &BridgeProc) -> usize {
    bridge.log().matches("Connected to the MQTT broker.").count()
}

/// Waits until `bridge/devices` lists `clients` clients plus the two nodes, and the last
/// client's state has been published twice (so at least two polls went through).
async fn wait_settled(watcher: &Watcher, clients: usize, bridge: &BridgeProc) {
    let last = format!("bandwidth2mqtt/021000{:06x}", clients - 1);
    let deadline = Instant::now() + SLOW;
    loop {
        let listed = listed_devices(watcher).map(|l| l.len()).unwrap_or(0);
        if listed >= clients + 2 && watcher.count(&last) >= 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "listed {listed}, {} states of {last}; log tail: {}",
            watcher.count(&last),
            tail(&bridge.log())
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<_> = log.lines().filter(|l| !l.contains("DEBUG")).collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Brokers clear the retain flag on live deliveries: a new subscriber tells which topics are
/// retained. The retained parts of `bridge/devices` on the broker, with their payloads.
async fn retained_parts(broker: &Broker, expected: usize) -> std::collections::BTreeMap<String, String> {
    let fresh = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/bridge/devices/+"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    // Retained messages come right after the subscription; then a moment of quiet.
    loop {
        let parts = fresh.topics_matching(|_| true);
        if parts.len() >= expected || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fresh
        .topics_matching(|_| true)
        .into_iter()
        .filter_map(|t| fresh.latest(&t))
        .map(|m| {
            assert!(m.retain, "{} is retained", m.topic);
            (m.topic, m.payload)
        })
        .collect()
}

/// Since only changes are rendered (issue 11), this settles in well under a minute in a
/// debug build.
#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_devices_keep_one_connection_and_a_complete_device_list() {
    const CLIENTS: usize = 10_000;
    let Some(broker) = Broker::start() else {
        return;
    };
    let emu = household(CLIENTS);
    let server = emu.serve(0, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), ""));
    wait_settled(&watcher, CLIENTS, &bridge).await;

    let main: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/bridge/devices").unwrap().payload).unwrap();
    assert_eq!(main["count"], CLIENTS + 2, "too big for one packet: an index of parts");
    let parts = main["parts"].as_array().unwrap();
    assert!(parts.len() >= 2, "{main}");
    let on_broker = retained_parts(&broker, parts.len()).await;
    assert_eq!(on_broker.len(), parts.len(), "every part retained, no other");
    for part in parts {
        let payload = &on_broker[part.as_str().unwrap()];
        assert!(payload.len() <= 256 * 1024, "{} bytes", payload.len());
    }
    let listed = listed_devices(&watcher).unwrap();
    assert_eq!(listed.len(), CLIENTS + 2);
    assert!(listed.contains("02100000270f"), "the last client is listed");

    let log = bridge.log();
    assert_eq!(connects(&bridge), 1, "one connection, never torn down: {}", tail(&log));
    assert!(!log.contains("MQTT connection failed"), "{}", tail(&log));
    assert!(!log.contains("larger than the packet limit"), "nothing needed skipping");
    let state: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/02100000270f").unwrap().payload).unwrap();
    assert_eq!(state["online"], true);
}

/// A broker that closes the connection on packets over 20 kB, and a bridge on MQTT 3.1.1 that
/// was not told:
/// after two drops on the same message it learns the limit, splits `bridge/devices` to fit, and
/// stays connected. (The household's `device_joined` events go out on the same link: the
/// refused packet is still found among them.)
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_drops_the_link_on_big_packets_is_learned_not_looped() {
    const CLIENTS: usize = 600;
    let Some(broker) = Broker::start_with("max_packet_size 20000") else {
        return;
    };
    let emu = household(CLIENTS);
    let server = emu.serve(0, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/#"]).await;
    // MQTT 5 would be told the limit in CONNACK (tests/mqtt5.rs): 3.1.1 has to learn it.
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), "protocol = \"3.1.1\""));
    wait_settled(&watcher, CLIENTS, &bridge).await;

    let log = bridge.log();
    assert!(
        log.contains("treating its size as over the broker's packet limit")
            && log.contains("bandwidth2mqtt/bridge/devices"),
        "{}",
        tail(&log)
    );
    let main: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/bridge/devices").unwrap().payload).unwrap();
    assert_eq!(main["count"], CLIENTS + 2, "split to fit what the broker takes: {main}");
    let settled = connects(&bridge);
    assert!(
        settled <= 3,
        "learned after two drops, not a loop: {settled} connections"
    );
    // Two more polls on the same connection.
    let last = format!("bandwidth2mqtt/021000{:06x}", CLIENTS - 1);
    let seen = watcher.count(&last);
    let deadline = Instant::now() + SLOW;
    while watcher.count(&last) < seen + 2 {
        assert!(Instant::now() < deadline, "{}", tail(&bridge.log()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(connects(&bridge), settled, "{}", tail(&bridge.log()));
}

/// The same broker over MQTT 5 (`protocol = "auto"`): its limit comes in CONNACK, so `bridge/devices`
/// is split to fit from the first connection, and nothing is refused or dropped.
#[tokio::test(flavor = "multi_thread")]
async fn over_mqtt5_the_brokers_limit_splits_from_the_first_connection() {
    const CLIENTS: usize = 600;
    let Some(broker) = Broker::start_with("max_packet_size 20000") else {
        return;
    };
    let emu = household(CLIENTS);
    let server = emu.serve(0, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), "protocol = \"auto\""));
    wait_settled(&watcher, CLIENTS, &bridge).await;
    let main: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/bridge/devices").unwrap().payload).unwrap();
    assert_eq!(main["count"], CLIENTS + 2, "split to fit what the broker takes: {main}");
    let log = bridge.log();
    assert_eq!(connects(&bridge), 1, "{}", tail(&log));
    assert!(!log.contains("closed the connection twice"), "{}", tail(&log));
    assert!(log.contains("broker_limit=20000"), "{}", tail(&log));
}

/// A broker that silently drops messages over 16 kB (`message_size_limit`), and a bridge told
/// so: every message fits, nothing is lost, one connection. Restarted with a larger limit, the
/// bridge needs fewer parts and clears the ones the first run left retained.
#[tokio::test(flavor = "multi_thread")]
async fn a_configured_small_limit_splits_and_keeps_everything() {
    const CLIENTS: usize = 600;
    let Some(broker) = Broker::start_with("message_size_limit 16000") else {
        return;
    };
    let emu = household(CLIENTS);
    let server = emu.serve(0, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), "max_packet_size = 8000"));
    wait_settled(&watcher, CLIENTS, &bridge).await;
    let listed = listed_devices(&watcher).unwrap();
    assert_eq!(listed.len(), CLIENTS + 2);
    assert_eq!(connects(&bridge), 1, "{}", tail(&bridge.log()));
    let main: Value = serde_json::from_str(&watcher.latest("bandwidth2mqtt/bridge/devices").unwrap().payload).unwrap();
    let before = main["parts"].as_array().unwrap().len();
    assert!(before >= 6, "{main}");
    assert_eq!(retained_parts(&broker, before).await.len(), before);

    let mut bridge = bridge;
    bridge.terminate();
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), "max_packet_size = 16000"));
    let deadline = Instant::now() + SLOW;
    let after = loop {
        let main: Option<Value> = watcher
            .latest("bandwidth2mqtt/bridge/devices")
            .and_then(|m| serde_json::from_str(&m.payload).ok());
        let parts = main.as_ref().and_then(|m| m["parts"].as_array()).map(Vec::len);
        if let Some(n) = parts.filter(|n| *n < before) {
            break n;
        }
        assert!(Instant::now() < deadline, "{}", tail(&bridge.log()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The clears of the stale parts follow the new index.
    let deadline = Instant::now() + SLOW;
    loop {
        let on_broker = retained_parts(&broker, after).await;
        if on_broker.len() == after {
            assert!((1..=after).all(|n| on_broker.contains_key(&format!("bandwidth2mqtt/bridge/devices/{n}"))));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} parts retained, {after} needed",
            on_broker.len()
        );
    }
}
