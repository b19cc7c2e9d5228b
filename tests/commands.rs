//! What of the commands needs the real binary and a real mosquitto: the `health` subcommand,
//! main's restart loop, the Prometheus endpoint. The requests and their answers run
//! in-process in commands_inproc.rs.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};
use support::broker::{Broker, free_port};
use support::fake_vnstat::FakeVnstat;
use support::process::{BridgeProc, run_cli};
use support::watcher::Watcher;
use support::{WAIT, fixture};

const GHOST: &str = "bandwidth2mqtt/agent/ghost/counters";

fn config(broker: &Broker, extra: &str) -> String {
    format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[agents.ghost]\n{extra}",
        broker.url()
    )
}

fn ghost(rx: u64, at_ms: i64) -> String {
    json!({"v": 1, "name": "ghost", "online": true, "interval_s": 60, "at_ms": at_ms,
           "macs": ["aa:bb:cc:00:00:09"],
           "interfaces": {"eth0": {"rx_bytes": rx, "tx_bytes": 10, "epoch": "b1/2", "max_bps": 1e9}}})
    .to_string()
}

async fn request(watcher: &Watcher, command: &str, payload: &str, transaction: &str) -> Value {
    watcher
        .publish(&format!("bandwidth2mqtt/bridge/request/{command}"), payload, false)
        .await;
    watcher
        .wait_json(&format!("bandwidth2mqtt/bridge/response/{command}"), |v| {
            v["transaction"] == transaction
        })
        .await
}

/// What only the binary shows: the `health` subcommand agrees with a running bridge and with a
/// stopped one, and a `restart` request goes through main's loop (offline, then online again
/// in the same process). The requests themselves are in commands_inproc.rs.
#[tokio::test(flavor = "multi_thread")]
async fn the_health_subcommand_and_mains_restart_loop() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vnstat = FakeVnstat::new(dir.path(), "beast");
    vnstat.set_output(&fixture("vnstat/json-f-1.json"), 0);
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let extra = format!(
        "[vnstat.beast]\ncommand = {}\ninterval = \"1h\"\n",
        vnstat.command_toml()
    );
    let mut bridge = BridgeProc::spawn(dir.path(), &config(&broker, &extra));
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    watcher.publish(GHOST, &ghost(1_000, 1), false).await;
    watcher
        .wait_json("bandwidth2mqtt/ghost", |v| v["rx_bytes"].is_u64())
        .await;

    // The health subcommand agrees while the bridge runs.
    let out = run_cli(dir.path(), &["health", "-c", "config.toml"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // restart: offline, then online again, in the same process.
    let r = request(&watcher, "restart", r#"{"transaction":"t6"}"#, "t6").await;
    assert_eq!(r["status"], "ok");
    let deadline = std::time::Instant::now() + WAIT;
    while !bridge.log().contains("Restarting on request") {
        assert!(std::time::Instant::now() < deadline, "no restart in the log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    let states: Vec<String> = watcher
        .log()
        .into_iter()
        .filter(|m| m.topic == "bandwidth2mqtt/bridge/state")
        .map(|m| m.payload)
        .collect();
    assert!(
        states.ends_with(&["offline".to_owned(), "online".to_owned()]),
        "{states:?}"
    );

    // Stopped: the health subcommand says so.
    assert!(bridge.terminate().success());
    let out = run_cli(dir.path(), &["health", "-c", "config.toml"], &[]);
    assert!(!out.status.success());
}

fn scrape(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_endpoint_serves_devices_and_sources() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let extra = format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n");
    let _bridge = BridgeProc::spawn(dir.path(), &config(&broker, &extra));
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    watcher.publish(GHOST, &ghost(1_000, 1), false).await;
    watcher.publish(GHOST, &ghost(1_500, 60_001), false).await;
    watcher
        .wait_json("bandwidth2mqtt/ghost", |v| v["rx_bps"].as_f64().is_some())
        .await;
    let deadline = std::time::Instant::now() + WAIT;
    let text = loop {
        if let Some(text) = scrape(port)
            && text.contains("bandwidth2mqtt_device_rx_bits_per_second{device=\"ghost\"")
        {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "metrics never showed ghost");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    let total = text
        .lines()
        .find(|l| l.starts_with("bandwidth2mqtt_device_rx_bytes_total{device=\"ghost\""))
        .unwrap_or_else(|| panic!("{text}"));
    let value: f64 = total.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 500.0, "{total}");
    assert!(
        text.contains("bandwidth2mqtt_source_polls_total{source=\"agent_ghost\",kind=\"agent\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("bandwidth2mqtt_device_online{device=\"ghost\",name=\"ghost\",kind=\"server\"} 1"),
        "{text}"
    );
    assert!(text.contains("bandwidth2mqtt_mqtt_queue_depth "), "{text}");
    // Every family the README documents, with its type.
    for (family, kind) in [
        ("build_info", "gauge"),
        ("mqtt_queue_depth", "gauge"),
        ("device_rx_bytes_total", "counter"),
        ("device_tx_bytes_total", "counter"),
        ("device_rx_bits_per_second", "gauge"),
        ("device_tx_bits_per_second", "gauge"),
        ("device_online", "gauge"),
        ("source_polls_total", "counter"),
        ("source_errors_total", "counter"),
        ("source_up", "gauge"),
        ("source_last_success_timestamp_seconds", "gauge"),
        ("source_poll_duration_seconds", "gauge"),
    ] {
        let name = format!("bandwidth2mqtt_{family}");
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}: {text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&name) && !l.starts_with(&format!("{name}_"))),
            "no sample of {name}: {text}"
        );
    }
}
