//! `mqtts://` against a mosquitto TLS listener with a test CA, client certificates, and the
//! `once` command against a real broker.

mod support;

use serde_json::Value;
use support::broker::Broker;
use support::fake_vnstat::FakeVnstat;
use support::pki::make_pki;
use support::process::{BridgeProc, run_cli};
use support::watcher::Watcher;
use support::{WAIT, fixture};

#[tokio::test(flavor = "multi_thread")]
async fn mqtts_with_a_private_ca_and_client_certificate() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let tls_port = support::broker::free_port();
    let extra = format!(
        "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        pki.ca, pki.server_cert, pki.server_key
    );
    let Some(broker) = Broker::start_with(&extra) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeVnstat::new(dir.path(), "beast");
    fake.set_output(&fixture("vnstat/json-f-1.json"), 0);
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let vnstat = format!(
        "[host]\nenabled = false\n[vnstat.beast]\ncommand = {}\ninterval = \"1s\"\n",
        fake.command_toml()
    );

    let config = format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"mqtts://127.0.0.1:{tls_port}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n[bridge]\nstate_dir = \"data\"\n{vnstat}",
        pki.ca, pki.client_cert, pki.client_key
    );
    let bridge = BridgeProc::spawn(dir.path(), &config);
    watcher.wait_payload("bandwidth2mqtt/bridge/state", "online").await;
    let state = watcher
        .wait_json("bandwidth2mqtt/beast", |v| v["rx_bytes"].is_u64())
        .await;
    assert_eq!(state["rx_bytes"], 720_864_692);
    drop(bridge);

    // Without our CA the broker's certificate is not trusted: no connection, and it says why.
    let other = tempfile::tempdir().unwrap();
    let config = format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"mqtts://127.0.0.1:{tls_port}\"\nclient_id = \"untrusting\"\nca_file = \"{}\"\n[bridge]\nstate_dir = \"data\"\n{vnstat}",
        make_pki(other.path()).ca
    );
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    tokio::time::timeout(WAIT, async {
        while !bridge.log().contains("MQTT connection failed") {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("TLS failure logged");
    assert!(bridge.log().to_lowercase().contains("certificate"), "{}", bridge.log());
    assert!(bridge.is_running(), "a broker it cannot reach does not stop the bridge");
}

#[tokio::test(flavor = "multi_thread")]
async fn once_publishes_retained_and_reports_failures() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeVnstat::new(dir.path(), "beast");
    fake.set_output(&fixture("vnstat/json-f-1.json"), 0);
    let broken = FakeVnstat::new(dir.path(), "broken");
    broken.set_output(&fixture("vnstat/err-nodbdir-json.txt"), 1);
    let config = dir.path().join("bw.toml");
    let write = |with_broken: bool| {
        let mut text = format!(
            "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[vnstat.beast]\ncommand = {}\n",
            broker.url(),
            fake.command_toml()
        );
        if with_broken {
            text += &format!("[vnstat.broken]\ncommand = {}\n", broken.command_toml());
        }
        std::fs::write(&config, text).unwrap();
    };
    write(false);
    let out = run_cli(dir.path(), &["once", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // Everything is retained on the broker for whoever connects later.
    let later = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let state = later
        .wait_json("bandwidth2mqtt/beast", |v| v["rx_bytes"].is_u64())
        .await;
    assert_eq!(state["interfaces"]["eth0"]["rx_bytes"], 720_864_692);
    later
        .wait_for("homeassistant/sensor/beast/rx_bytes/config", WAIT, |m| m.retain)
        .await;
    later.wait_payload("bandwidth2mqtt/bridge/source/beast", "online").await;

    // One failing source: exit 1, the other source still published.
    write(true);
    let out = run_cli(dir.path(), &["once", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unable to open database directory"));
    let after = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    after
        .wait_payload("bandwidth2mqtt/bridge/source/broken", "offline")
        .await;
    after.wait_payload("bandwidth2mqtt/bridge/source/beast", "online").await;

    // Dry run: one JSON object per line, nothing published, same exit rule.
    let out = run_cli(dir.path(), &["once", "--dry-run", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["topic"].is_string() && l["retain"].is_boolean() && l["payload"].is_string())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["topic"] == "bandwidth2mqtt/bridge/state" && l["payload"] == "online")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["topic"] == "bandwidth2mqtt/bridge/source/broken" && l["payload"] == "offline")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["topic"] == "homeassistant/sensor/beast/eth0_rx_bytes/config")
    );

    // No broker at all: once fails clearly instead of hanging.
    let dead = format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"mqtt://127.0.0.1:{}\"\n[host]\nenabled = false\n",
        support::broker::free_port()
    );
    std::fs::write(&config, dead).unwrap();
    let started = std::time::Instant::now();
    let out = run_cli(dir.path(), &["once", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the MQTT broker"));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
