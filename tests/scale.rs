//! Scale: 40 servers with 8 interfaces each (1,480 entities) through the real binary and a real
//! broker. Asserts that everything arrives and is right; prints how long it took and the
//! bridge's memory, for the record (no timing assertions).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::Broker;
use support::fake_vnstat::{FakeVnstat, Iface};
use support::process::BridgeProc;
use support::watcher::Watcher;

const SERVERS: usize = 40;
const IFACES: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn forty_servers_with_eight_interfaces_each() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..IFACES).map(|i| format!("eth{i}")).collect();
    let mut config = format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n",
        broker.url()
    );
    for s in 0..SERVERS {
        let fake = FakeVnstat::new(dir.path(), &format!("s{s}"));
        let ifaces: Vec<Iface> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Iface {
                name,
                rx: (s * 1000 + i) as u64 * 1_000_000,
                tx: (s * 1000 + i) as u64 * 1_000,
            })
            .collect();
        fake.set_json(&ifaces, 1_795_559_160, 1_795_000_000);
        config += &format!(
            "[vnstat.server_{s}]\ncommand = {}\ninterval = \"5s\"\n",
            fake.command_toml()
        );
    }
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let started = Instant::now();
    let bridge = BridgeProc::spawn(dir.path(), &config);

    // online, 4 traffic, 8 period totals (today/month/yesterday/last month) per server, 4
    // traffic per interface.
    let expected_configs = SERVERS * (1 + 4 + 8 + 4 * IFACES);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let configs = watcher
            .topics_matching(|t| t.starts_with("homeassistant/") && !t.contains("bandwidth2mqtt_bridge"))
            .len();
        let states = watcher
            .topics_matching(|t| t.starts_with("bandwidth2mqtt/server_"))
            .len();
        if configs == expected_configs && states == SERVERS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{configs}/{expected_configs} configs, {states}/{SERVERS} states"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    for s in [0, SERVERS - 1] {
        let state: Value =
            serde_json::from_str(&watcher.latest(&format!("bandwidth2mqtt/server_{s}")).unwrap().payload).unwrap();
        let expected: u64 = (0..IFACES).map(|i| (s * 1000 + i) as u64 * 1_000_000).sum();
        assert_eq!(state["rx_bytes"], expected);
        assert_eq!(
            state["interfaces"]["eth7"]["rx_bytes"],
            (s * 1000 + 7) as u64 * 1_000_000
        );
    }
    let rss = std::fs::read_to_string(format!("/proc/{}/status", bridge.pid()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        .unwrap_or_default();
    let state_file = std::fs::metadata(dir.path().join("data/state.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "scale: {SERVERS} servers x {IFACES} interfaces: {expected_configs} discovery configs + {SERVERS} states delivered in {elapsed:?}; bridge RSS {rss} kB; state file {state_file} bytes"
    );
}
