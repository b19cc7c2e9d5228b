//! The real Prometheus node_exporter (Debian's `prometheus-node-exporter`) on a free port of
//! 127.0.0.1, read by the bridge: its totals for the loopback interface must follow the
//! kernel's `/proc/net/dev` (within the traffic of one poll), and the server must appear in the
//! published discovery. Skipped with a printed reason when the exporter is not installed,
//! unless BANDWIDTH2MQTT_REQUIRE_NODE_EXPORTER=1 (CI).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::{Broker, free_port};
use support::process::{BridgeProc, run_cli};
use support::watcher::Watcher;

struct Exporter {
    child: Child,
    url: String,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exporter_bin() -> Option<PathBuf> {
    let found = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"]
        .iter()
        .flat_map(|d| ["prometheus-node-exporter", "node_exporter"].map(|b| Path::new(d).join(b)))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("BANDWIDTH2MQTT_REQUIRE_NODE_EXPORTER").is_ok_and(|v| v == "1") {
            panic!("node_exporter is required here (apt-get install prometheus-node-exporter)");
        }
        eprintln!("SKIP: prometheus-node-exporter is not installed");
    }
    found
}

/// Starts the exporter with only the collectors the source reads (and `lo` not excluded, as
/// it is by default), and waits until it answers with the loopback counters.
fn start_exporter(bin: &Path) -> Exporter {
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--collector.disable-defaults",
            "--collector.netdev",
            "--collector.stat",
            "--collector.time",
            "--collector.netdev.device-exclude=^$",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let exporter = Exporter {
        child,
        url: format!("http://127.0.0.1:{port}/metrics"),
    };
    let deadline = Instant::now() + support::WAIT;
    loop {
        if fetch(&exporter.url).is_some_and(|t| t.contains("node_network_receive_bytes_total{device=\"lo\"}")) {
            return exporter;
        }
        assert!(
            Instant::now() < deadline,
            "node_exporter did not answer on {}",
            exporter.url
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.0 GET (it also makes loopback traffic).
fn fetch(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.").then_some(text)
}

/// The kernel's loopback counters (rx, tx), read the way any tool would.
fn loopback() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap();
    text.lines()
        .find_map(|l| {
            let (name, rest) = l.split_once(':')?;
            (name.trim() == "lo").then(|| {
                let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
                (f[0], f[8])
            })
        })
        .expect("lo in /proc/net/dev")
}

fn config(url: &str, extra: &str) -> String {
    format!(
        "{extra}[host]\nenabled = false\n[node_exporter.real]\nurl = \"{url}\"\ninterval = \"1s\"\ninterfaces = [\"lo\"]\nmac = \"02:00:00:00:00:17\"\n"
    )
}

#[test]
fn bridge_once_with_real_node_exporter() {
    let Some(bin) = exporter_bin() else { return };
    let exporter = start_exporter(&bin);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bw.toml");
    std::fs::write(&path, config(&exporter.url, "")).unwrap();

    let before = loopback();
    let out = run_cli(dir.path(), &["once", "--dry-run", "-c", path.to_str().unwrap()], &[]);
    let after = loopback();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let state = lines
        .iter()
        .find(|l| l["topic"] == "bandwidth2mqtt/real")
        .expect("state published");
    let state: Value = serde_json::from_str(state["payload"].as_str().unwrap()).unwrap();
    assert_eq!(state["online"], Value::Bool(true), "{state}");
    // The first reading of a new device is its counter: the kernel's, between our two reads.
    let (rx, tx) = (state["rx_bytes"].as_u64().unwrap(), state["tx_bytes"].as_u64().unwrap());
    assert!(
        before.0 <= rx && rx <= after.0,
        "rx {rx} not within {before:?}..{after:?}"
    );
    assert!(
        before.1 <= tx && tx <= after.1,
        "tx {tx} not within {before:?}..{after:?}"
    );
    // The server's device, with its configured MAC, in device-based discovery.
    let config = lines
        .iter()
        .find(|l| l["topic"] == "homeassistant/device/real/config" && l["retain"] == true)
        .expect("device config");
    let config: Value = serde_json::from_str(config["payload"].as_str().unwrap()).unwrap();
    assert_eq!(config["components"]["rx_bytes"]["platform"], "sensor", "{config}");
    assert_eq!(config["device"]["name"], "real", "{config}");
    let connections = config["device"]["connections"].to_string();
    assert!(connections.contains("02:00:00:00:00:17"), "{connections}");
}

#[tokio::test]
async fn bridge_totals_follow_the_kernel_poll_after_poll() {
    let Some(bin) = exporter_bin() else { return };
    let Some(broker) = Broker::start() else { return };
    let exporter = start_exporter(&bin);
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/#", "homeassistant/#"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mqtt = format!("[mqtt]\nurl = \"{}\"\n", broker.url());
    let _bridge = BridgeProc::spawn(dir.path(), &config(&exporter.url, &mqtt));

    let first = watcher
        .wait_json("bandwidth2mqtt/real", |v| v["rx_bytes"].is_u64())
        .await;
    let first_rx = first["rx_bytes"].as_u64().unwrap();
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/real", "online")
        .await;
    // The server's device in discovery (published around its first state, in either order).
    let config = watcher
        .wait_json("homeassistant/device/real/config", |v| {
            v["components"]["rx_bytes"].is_object()
        })
        .await;
    assert_eq!(config["device"]["name"], "real", "{config}");
    for _ in 0..3 {
        // Loopback traffic of our own (a few scrapes), then the kernel's count after it: the
        // bridge must reach it by a later poll and never pass what the kernel counts.
        for _ in 0..5 {
            fetch(&exporter.url).expect("scrape");
        }
        let floor = loopback().0;
        assert!(floor > first_rx);
        let state = watcher
            .wait_json("bandwidth2mqtt/real", |v| {
                v["rx_bytes"].as_u64().is_some_and(|rx| rx >= floor)
            })
            .await;
        let ceiling = loopback().0;
        let rx = state["rx_bytes"].as_u64().unwrap();
        assert!(rx <= ceiling, "the bridge counts {rx}, the kernel only {ceiling}");
    }
}
