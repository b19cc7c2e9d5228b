//! Issue 21, "the broker is shared, not trusted", against a real mosquitto: what any other user
//! of the broker can publish must not silence the bridge or make it skip its own messages.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::Broker;
use support::fake_host::FakeHost;
use support::process::BridgeProc;
use support::stranger;
use support::watcher::Watcher;

fn rx(v: &Value) -> Option<u64> {
    v.pointer("/interfaces/eth0/rx_bytes").and_then(Value::as_u64)
}

/// Over MQTT 3.1.1 the broker sends the bridge everything: the inbound filter (inbound.rs)
/// skips the oversized messages unread, and `bridge/info` counts them.
#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_oversized_retained_message_never_silences_the_bridge() {
    oversized_retained_message("3.1.1").await;
}

/// Over MQTT 5 (the default with mosquitto) the broker knows the bridge's Maximum Packet Size
/// from CONNECT and never delivers the oversized messages at all.
#[tokio::test(flavor = "multi_thread")]
async fn over_mqtt5_a_strangers_oversized_message_is_never_delivered() {
    oversized_retained_message("auto").await;
}

async fn oversized_retained_message(protocol: &str) {
    let v5 = protocol != "3.1.1";
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    // 17 MiB: over rumqttc's own 16 MiB incoming limit, which used to fail the link on every
    // connect (21 connections in 25 s, nothing published).
    let huge = vec![b'x'; 17 * 1024 * 1024];
    for topic in ["homeassistant/status", "bandwidth2mqtt/agent/x/counters"] {
        stranger::publish(&broker.host, broker.port, topic, &huge, true);
    }
    let watcher = Watcher::connect(
        &broker.host,
        broker.port,
        &[
            "bandwidth2mqtt/titan",
            "bandwidth2mqtt/bridge/info",
            "bandwidth2mqtt/bridge/state",
        ],
    )
    .await;
    let config = format!(
        "[mqtt]\nurl = \"{}\"\nprotocol = \"{protocol}\"\n[bridge]\nstate_dir = \"data\"\n{}",
        broker.url(),
        host.config("1s")
    );
    let started = Instant::now();
    let mut bridge = BridgeProc::spawn(dir.path(), &config);

    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(10_000))
        .await;
    eprintln!("first state {:?} after the bridge started", started.elapsed());
    host.set_counters(&[("eth0", 20_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_000))
        .await;
    let info = if v5 {
        // Not delivered, so not even counted (the states above came after it).
        let info = watcher.wait_json("bandwidth2mqtt/bridge/info", |_| true).await;
        assert!(info["link"].get("incoming_oversized").is_none(), "{info}");
        info
    } else {
        watcher
            .wait_json("bandwidth2mqtt/bridge/info", |v| {
                v.pointer("/link/incoming_oversized").and_then(Value::as_u64) == Some(2)
            })
            .await
    };
    assert!(info["link"].get("packet_limit_learnt").is_none(), "{info}");

    // The stranger clears them: nothing of ours is skipped afterwards.
    for topic in ["homeassistant/status", "bandwidth2mqtt/agent/x/counters"] {
        stranger::publish(&broker.host, broker.port, topic, b"", true);
    }
    host.set_counters(&[("eth0", 30_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(30_000))
        .await;
    // And HA's birth still works.
    stranger::publish(&broker.host, broker.port, "homeassistant/status", b"online", false);
    let log_has = |bridge: &BridgeProc, text: &str| bridge.log().contains(text);
    let deadline = Instant::now() + support::WAIT;
    while !log_has(&bridge, "Home Assistant came online") {
        assert!(Instant::now() < deadline, "HA's birth not seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bridge.terminate();
    let log = bridge.log();
    assert_eq!(log.matches("Connected to the MQTT broker.").count(), 1, "{log}");
    assert!(!log.contains("larger than the packet limit"), "{log}");
    assert!(!log.contains("closed the connection twice"), "{log}");
    let expected = if v5 { 0 } else { 1 };
    assert_eq!(
        log.matches("larger than the bridge reads").count(),
        expected,
        "logged once a minute over 3.1.1, never seen over 5: {log}"
    );
    let used = if v5 { "protocol=\"5\"" } else { "protocol=\"3.1.1\"" };
    assert!(log.contains(used), "{log}");
}

fn passwords(dir: &std::path::Path, users: &[&str]) -> std::path::PathBuf {
    let file = dir.join("passwords");
    for (i, user) in users.iter().enumerate() {
        let mut cmd = std::process::Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let status = cmd
            .args(["-b", file.to_str().unwrap(), user, &format!("{user}-pw")])
            .status()
            .expect("mosquitto_passwd");
        assert!(status.success());
    }
    file
}

/// README "Securing the broker": with docker/mosquitto/acl, another broker user can neither
/// speak for an agent nor invent one, whatever the bridge itself accepts.
#[tokio::test(flavor = "multi_thread")]
async fn with_the_acl_file_a_stranger_cannot_write_agent_topics() {
    if std::process::Command::new("mosquitto_passwd")
        .arg("-h")
        .output()
        .is_err()
    {
        // CI installs mosquitto (which ships it): there, a missing tool is a failure.
        assert!(
            std::env::var("BANDWIDTH2MQTT_REQUIRE_BROKER").as_deref() != Ok("1"),
            "BANDWIDTH2MQTT_REQUIRE_BROKER=1 but mosquitto_passwd is missing"
        );
        eprintln!("SKIP: no mosquitto_passwd");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = passwords(dir.path(), &["bandwidth2mqtt", "homeassistant", "beast", "mallory"]);
    let acl = format!("{}/docker/mosquitto/acl", env!("CARGO_MANIFEST_DIR"));
    let Some(broker) = Broker::start_with(&format!("password_file {}\nacl_file {acl}\n", pw.display())) else {
        return;
    };
    let as_user = |user: &'static str| Some((user, Box::leak(format!("{user}-pw").into_boxed_str()) as &str));
    let watcher = Watcher::connect_as(
        &broker.host,
        broker.port,
        as_user("homeassistant"),
        &["bandwidth2mqtt/#"],
    )
    .await;
    // The bridge takes any message on beast's topic (no key): only the broker stands guard.
    let config = format!(
        "[mqtt]\nurl = \"{}\"\nusername = \"bandwidth2mqtt\"\npassword = \"bandwidth2mqtt-pw\"\n\
         [bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[agents.beast]\n[agents.evil]\n",
        broker.url()
    );
    let bridge = BridgeProc::spawn(dir.path(), &config);
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    let topic = "bandwidth2mqtt/agent/beast/counters";
    let msg = |name: &str, rx: u64| {
        serde_json::json!({"v": 1, "name": name, "online": true, "interval_s": 60, "at_ms": 1,
               "boot_id": "b1", "interfaces": {"eth0": {"rx_bytes": rx, "tx_bytes": 10, "epoch": "b1/2", "max_bps": 1e9}}})
        .to_string()
    };
    let (host, port) = (broker.host.clone(), broker.port);
    let beast = as_user("beast");
    stranger::publish_all(&host, port, beast, &[(topic, msg("beast", 1_000).as_bytes(), true)]);
    let base = rx(&watcher.wait_json("bandwidth2mqtt/beast", |v| rx(v).is_some()).await).unwrap();

    // mallory: a forged total for beast, an agent of her own, a huge HA status.
    let huge = vec![b'x'; 17 * 1024 * 1024];
    let evil = msg("evil", 5);
    let forged = msg("beast", 1_000_000_000_000_000_000);
    stranger::publish_all(
        &host,
        port,
        as_user("mallory"),
        &[
            (topic, forged.as_bytes(), true),
            ("bandwidth2mqtt/agent/evil/counters", evil.as_bytes(), true),
            ("bandwidth2mqtt/agent/mallory/counters", evil.as_bytes(), true),
            ("homeassistant/status", &huge, true),
        ],
    );
    // beast's next real message is the only thing that counts.
    stranger::publish_all(&host, port, beast, &[(topic, msg("beast", 3_000).as_bytes(), true)]);
    watcher
        .wait_json("bandwidth2mqtt/beast", |v| rx(v) == Some(base + 2_000))
        .await;
    let totals: Vec<u64> = watcher
        .log()
        .iter()
        .filter(|m| m.topic == "bandwidth2mqtt/beast")
        .filter_map(|m| serde_json::from_str::<Value>(&m.payload).ok().and_then(|v| rx(&v)))
        .collect();
    assert!(totals.iter().all(|t| *t <= base + 2_000), "{totals:?}");
    assert!(watcher.latest("bandwidth2mqtt/evil").is_none());
    let log = bridge.log();
    assert!(!log.contains("agent=evil"), "the broker refused it: {log}");
    // mallory may write her own agent topic (the ACL's pattern); the bridge names no such agent.
    assert!(log.contains("add [agents.mallory] to accept it"), "{log}");
    assert!(
        !log.contains("larger than the bridge reads"),
        "the broker dropped it: {log}"
    );
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Issue 21, findings 4 to 6 over a real broker: 3 000 agent ids, 10 000 requests with long
/// transactions and a 300 000-character rename from a stranger leave the bridge's memory where
/// it was and its own entities current.
#[tokio::test(flavor = "multi_thread")]
async fn floods_from_a_stranger_leave_memory_and_entities_as_they_were() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    let watcher = Watcher::connect(
        &broker.host,
        broker.port,
        &[
            "bandwidth2mqtt/titan",
            "bandwidth2mqtt/bridge/info",
            "bandwidth2mqtt/bridge/response/#",
        ],
    )
    .await;
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n{}",
        broker.url(),
        host.config("1s")
    );
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(10_000))
        .await;
    let (h, p) = (broker.host.clone(), broker.port);

    // A 300 000-character rename: answered with an error, nothing renamed.
    let name = "n".repeat(300_000);
    let rename = format!(r#"{{"id":"titan","name":"{name}","transaction":"r1"}}"#);
    stranger::publish(
        &h,
        p,
        "bandwidth2mqtt/bridge/request/device/rename",
        rename.as_bytes(),
        false,
    );
    let answer = watcher
        .wait_json("bandwidth2mqtt/bridge/response/device/rename", |v| {
            v["status"] == "error"
        })
        .await;
    assert!(answer.to_string().len() < 300, "{answer}");
    // A long transaction: an error, not echoed.
    let long = format!(r#"{{"transaction":"{}"}}"#, "t".repeat(1_500));
    stranger::publish(
        &h,
        p,
        "bandwidth2mqtt/bridge/request/health_check",
        long.as_bytes(),
        false,
    );
    let answer = watcher
        .wait_json("bandwidth2mqtt/bridge/response/health_check", |v| {
            v["status"] == "error"
        })
        .await;
    assert!(answer.get("transaction").is_none(), "{answer}");

    host.set_counters(&[("eth0", 20_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(20_000))
        .await;
    let before = rss_kb(bridge.pid());

    let agents: Vec<(String, String)> = (0..3_000)
        .map(|i| {
            let msg = serde_json::json!({"v": 1, "name": format!("x{i}"), "online": true, "interval_s": 10,
                "at_ms": 1, "macs": ["02:00:00:00:00:01"],
                "interfaces": {"eth0": {"rx_bytes": 1_000_000_000_000_000_000u64, "tx_bytes": 1, "epoch": "e", "max_bps": 4e11}}});
            (format!("bandwidth2mqtt/agent/x{i}/counters"), msg.to_string())
        })
        .collect();
    let messages: Vec<(&str, &[u8], bool)> = agents.iter().map(|(t, m)| (t.as_str(), m.as_bytes(), true)).collect();
    stranger::publish_all(&h, p, None, &messages);
    let request = format!(r#"{{"transaction":"{}"}}"#, "t".repeat(1_800));
    let requests: Vec<(&str, &[u8], bool)> = (0..10_000)
        .map(|_| ("bandwidth2mqtt/bridge/request/health_check", request.as_bytes(), false))
        .collect();
    stranger::publish_all(&h, p, None, &requests);

    // The bridge's own entities stay current.
    host.set_counters(&[("eth0", 30_000, 1_000)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(30_000))
        .await;
    let info = watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            // Each of the 3 000 that reaches the bridge is refused (no such agent), or dropped
            // first when the bounded queue is full; how many reach it depends on the load (the
            // broker itself drops QoS 0 messages for a busy subscriber). None is taken (below).
            let count = |k: &str| v.pointer(&format!("/link/{k}")).and_then(Value::as_u64).unwrap_or(0);
            count("agent_messages_refused") + count("agent_messages_dropped") >= 500
                && v.pointer("/link/requests_dropped").and_then(Value::as_u64).is_some()
        })
        .await;
    let after = rss_kb(bridge.pid());
    eprintln!(
        "RSS before the floods {before} kB, after {after} kB; bridge/info link: {}",
        info["link"]
    );
    let seen = ["agent_messages_refused", "agent_messages_dropped"]
        .iter()
        .filter_map(|k| info["link"][k].as_u64())
        .sum::<u64>();
    assert!(seen <= 3_000, "{info}");
    assert!(
        info["sources"].as_object().unwrap().len() <= 2,
        "no agent was taken: {info}"
    );
    assert!(after < before + 10 * 1024, "RSS {before} kB → {after} kB");
    bridge.terminate();
    let log = bridge.log();
    assert!(
        log.matches("configuration does not name").count() <= 101,
        "one line per unknown agent, at most 100: {}",
        log.matches("configuration does not name").count()
    );
}

/// The issue's own flood figures, for the record (not a pass/fail rule): run with
/// `BANDWIDTH2MQTT_BIN=target/release/bandwidth2mqtt cargo nextest run --test broker_trust
/// --run-ignored only --no-capture`. Prints RSS before, at its peak and after each flood.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn measure_rss_under_the_issues_floods() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 10_000, 1_000)]);
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/titan"]).await;
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n{}",
        broker.url(),
        host.config("1s")
    );
    let bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(10_000))
        .await;
    let pid = bridge.pid();
    let (h, p) = (broker.host.clone(), broker.port);
    let mut counter = 10_000;
    let mut settle = async |label: &str, peak: u64| {
        counter += 10_000;
        host.set_counters(&[("eth0", counter, 1_000)]);
        watcher
            .wait_json("bandwidth2mqtt/titan", |v| rx(v) == Some(counter))
            .await;
        eprintln!("{label}: peak {peak} kB, after {} kB", rss_kb(pid));
    };
    let flood = |messages: Vec<(String, Vec<u8>, bool)>| {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    peak = peak.max(rss_kb(pid));
                    std::thread::sleep(Duration::from_millis(20));
                }
                peak
            })
        };
        let borrowed: Vec<(&str, &[u8], bool)> = messages
            .iter()
            .map(|(t, m, r)| (t.as_str(), m.as_slice(), *r))
            .collect();
        stranger::publish_all(&h, p, None, &borrowed);
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        sampler.join().unwrap()
    };
    eprintln!("start: {} kB", rss_kb(pid));
    let big = format!(r#"{{"transaction":"{}"}}"#, "t".repeat(200_000));
    for n in [3_000, 9_000] {
        let peak = flood(
            (0..n)
                .map(|_| {
                    (
                        "bandwidth2mqtt/bridge/request/health_check".to_owned(),
                        big.clone().into_bytes(),
                        false,
                    )
                })
                .collect(),
        );
        settle(&format!("{n} requests with a 200 kB transaction"), peak).await;
    }
    let small = r#"{"transaction":"t"}"#;
    let peak = flood(
        (0..10_000)
            .map(|_| {
                (
                    "bandwidth2mqtt/bridge/request/health_check".to_owned(),
                    small.as_bytes().to_vec(),
                    false,
                )
            })
            .collect(),
    );
    settle("10 000 small requests", peak).await;
    let peak = flood(
        (0..3_000)
            .map(|i| {
                let msg = serde_json::json!({"v": 1, "name": format!("x{i}"), "online": true, "interval_s": 10, "at_ms": 1,
                    "interfaces": {"eth0": {"rx_bytes": 1, "tx_bytes": 1, "epoch": "e", "max_bps": 1e9}}});
                (format!("bandwidth2mqtt/agent/x{i}/counters"), msg.to_string().into_bytes(), true)
            })
            .collect(),
    );
    settle("3 000 agent ids", peak).await;
    let huge = vec![b'x'; 17 * 1024 * 1024];
    let peak = flood(vec![("bandwidth2mqtt/agent/x/counters".to_owned(), huge, true)]);
    settle("a 17 MiB retained agent message", peak).await;
}
