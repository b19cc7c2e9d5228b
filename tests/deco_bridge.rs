//! The bridge end to end with a Deco: the real binary, a private mosquitto, and the Deco
//! emulator serving HTTP on 127.0.0.1 from this test process (real clock, 1 s polls).

mod support;

use std::time::{Duration, Instant};

use bandwidth2mqtt::emulators::Server;
use bandwidth2mqtt::emulators::deco::{
    ClientSpec, Clock, DecoEmulator, EmulatorConfig, Faults, Garbage, Profile, b64, home,
};
use bandwidth2mqtt::model::MacAddr;
use serde_json::Value;
use support::broker::Broker;
use support::fake_vnstat::FakeVnstat;
use support::process::{BridgeProc, run_cli};
use support::watcher::Watcher;
use support::{WAIT, fixture};

const PASSWORD: &str = "deco-Owner-pw1";
const LAPTOP: &str = "bandwidth2mqtt/3c22fb100001";
const SENSOR: &str = "bandwidth2mqtt/3c22fb100008";
const MASTER: &str = "bandwidth2mqtt/f0090dfa297c";
const SATELLITE: &str = "bandwidth2mqtt/f0090dfa2984";
/// 800 kbit/s down = 100 000 bytes/s.
const LAPTOP_DOWN_BPS: f64 = 800_000.0;

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// The home mesh's two nodes with clients whose rates are exact.
fn mesh(password: &str) -> DecoEmulator {
    let (nodes, _) = home();
    let mut laptop = ClientSpec::new(
        mac("3c:22:fb:10:00:01"),
        "Laptop",
        1,
        "band5",
        Profile::Constant {
            down_bps: LAPTOP_DOWN_BPS,
            up_bps: 80_000.0,
        },
    );
    laptop.ip = "192.168.68.100".into();
    let mut sensor = ClientSpec::new(
        mac("3c:22:fb:10:00:08"),
        "",
        0,
        "band2_4",
        Profile::Constant {
            down_bps: 8_000.0,
            up_bps: 8_000.0,
        },
    );
    sensor.name_field = b64(b"Sensor \xff\xfe");
    sensor.ip = "UNKNOWN".into();
    sensor.interface = Some("iot".into());
    let mut nameless = ClientSpec::new(mac("3c:22:fb:10:00:0a"), "No MAC", 0, "wired", Profile::Idle);
    nameless.raw_mac = Some(String::new());
    DecoEmulator::new(EmulatorConfig::new(
        password,
        nodes,
        vec![laptop, sensor, nameless],
        Clock::Real,
    ))
    .unwrap()
}

fn config(broker: &Broker, deco_url: &str, password: &str, extra: &str) -> String {
    format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[deco.mesh]\nurl = \"{deco_url}\"\npassword = \"{password}\"\ninterval = \"1s\"\ntimeout = \"2s\"\n{extra}",
        broker.url()
    )
}

fn num(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves the emulator again on the port it had (a Deco coming back after a reboot).
async fn serve_again(emu: &DecoEmulator, port: u16) -> Server {
    let deadline = Instant::now() + WAIT;
    loop {
        match emu.serve(port, false).await {
            Ok(server) => return server,
            Err(e) => {
                assert!(Instant::now() < deadline, "port {port} not free again: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn assert_no_secrets(log: &str, emu: &DecoEmulator, password: &str) {
    assert!(!log.contains(password), "the password leaked into the log");
    if let Some((stok, cookie)) = emu.session_tokens() {
        assert!(!log.contains(&stok), "the stok leaked into the log");
        assert!(!log.contains(&cookie), "the sysauth cookie leaked into the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deco_clients_and_nodes_reach_mqtt() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let emu = mesh(PASSWORD);
    let server = emu.serve(0, false).await.unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let mut bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), PASSWORD, ""));

    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/mesh", "online")
        .await;
    let laptop = watcher
        .wait_json(LAPTOP, |v| num(v, "rx_bytes").is_some_and(|b| b > 0))
        .await;
    assert_eq!(laptop["online"], true);
    assert_eq!(laptop["estimated"], true);
    assert_eq!(num(&laptop, "rx_bps"), Some(800_000));
    assert_eq!(num(&laptop, "tx_bps"), Some(80_000));

    let disc: Value = serde_json::from_str(
        &watcher
            .wait_for("homeassistant/sensor/3c22fb100001/rx_bytes/config", WAIT, |m| {
                !m.payload.is_empty()
            })
            .await
            .payload,
    )
    .unwrap();
    assert_eq!(disc["device"]["name"], "Laptop");
    assert_eq!(
        disc["device"]["via_device"], "bandwidth2mqtt_f0090dfa2984",
        "via its node"
    );
    assert_eq!(
        disc["device"]["connections"],
        serde_json::json!([["mac", "3c:22:fb:10:00:01"]])
    );
    assert_eq!(disc["availability"][1]["topic"], "bandwidth2mqtt/bridge/source/mesh");

    let sensor = watcher.wait_json(SENSOR, |v| v["online"] == true).await;
    assert_eq!(num(&sensor, "rx_bps"), Some(8_000));
    let sensor_disc: Value = serde_json::from_str(
        &watcher
            .wait_for("homeassistant/sensor/3c22fb100008/rx_bytes/config", WAIT, |m| {
                !m.payload.is_empty()
            })
            .await
            .payload,
    )
    .unwrap();
    assert_eq!(sensor_disc["device"]["name"], "Sensor", "invalid UTF-8 dropped");

    let master = watcher.wait_json(MASTER, |v| v.get("cpu_percent").is_some()).await;
    assert_eq!(master["online"], true);
    assert!(master["memory_percent"].as_f64().is_some_and(|m| m > 40.0));
    assert_eq!(num(&master, "clients"), Some(1), "the sensor");
    let satellite = watcher.wait_json(SATELLITE, |v| num(v, "clients").is_some()).await;
    assert_eq!(num(&satellite, "clients"), Some(1), "the laptop");
    assert!(satellite.get("cpu_percent").is_none(), "master only");
    let node_disc: Value = serde_json::from_str(
        &watcher
            .wait_for("homeassistant/sensor/f0090dfa297c/cpu_percent/config", WAIT, |m| {
                !m.payload.is_empty()
            })
            .await
            .payload,
    )
    .unwrap();
    assert_eq!(node_disc["device"]["name"], "Living Room");
    assert_eq!(node_disc["device"]["model"], "Deco X50");
    assert_eq!(node_disc["device"]["manufacturer"], "TP-Link");
    assert_eq!(node_disc["device"]["sw_version"], "1.8.0 Build 25102213 Rel. 43970");
    assert_eq!(
        node_disc["device"]["connections"],
        serde_json::json!([["mac", "f0:09:0d:fa:29:7c"], ["mac", "f0:09:0d:fa:29:7d"]]),
        "the WAN MAC too"
    );
    assert_eq!(node_disc["device"]["via_device"], "bandwidth2mqtt_bridge");

    let devices = watcher
        .wait_json("bandwidth2mqtt/bridge/devices", |v| {
            v.as_array().is_some_and(|a| a.len() == 4)
        })
        .await;
    let laptop_entry = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "3c22fb100001")
        .unwrap();
    assert_eq!(laptop_entry["kind"], "client");
    assert_eq!(laptop_entry["ip"], "192.168.68.100");
    let info = watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| v["sources"]["mesh"]["status"] == "ok")
        .await;
    assert_eq!(info["sources"]["mesh"]["kind"], "deco");

    // Totals grow with the rate (100 kB/s) and are estimates.
    let first = num(&laptop, "rx_bytes").unwrap();
    let later = watcher
        .wait_json(LAPTOP, |v| num(v, "rx_bytes").is_some_and(|b| b >= first + 200_000))
        .await;
    assert_eq!(later["estimated"], true);

    let log = bridge.log();
    assert!(log.contains("Logged in to the Deco."), "{log}");
    assert_no_secrets(&log, &emu, PASSWORD);
    assert!(bridge.terminate().success());
    let stats = emu.stats();
    assert_eq!(stats.logouts, 1, "logout on shutdown");
    assert_eq!(stats.login_attempts, 1, "one session for the whole run");
    assert!(bridge.log().contains("Logged out of the Deco."));
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_deco_fault_takes_only_the_deco_offline_and_totals_continue() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let emu = mesh(PASSWORD);
    let mut server = emu.serve(0, false).await.unwrap();
    let port = server.addr.port();
    let fake = FakeVnstat::new(dir.path(), "beast");
    fake.set_output(&fixture("vnstat/json-f-1.json"), 0);
    let extra = format!("[vnstat.beast]\ncommand = {}\ninterval = \"1s\"\n", fake.command_toml());
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), PASSWORD, &extra));
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/beast", "online")
        .await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/mesh", "online")
        .await;
    watcher
        .wait_json(LAPTOP, |v| num(v, "rx_bytes").is_some_and(|b| b > 0))
        .await;

    // Each fault: the Deco goes offline with a message naming the problem; clearing it brings
    // the Deco back. `expected` is part of bridge/info's last_error.
    let faults: Vec<(&str, Faults, &str)> = vec![
        (
            "garbage",
            Faults {
                garbage: Some(Garbage::Html),
                ..Faults::default()
            },
            // Whichever endpoint the poll asks first (device_list is read on a slower cadence).
            "the reply is not JSON",
        ),
        (
            "undecryptable",
            Faults {
                garbage: Some(Garbage::WrongKey),
                ..Faults::default()
            },
            "the reply does not decrypt",
        ),
        (
            "wrong shape",
            Faults {
                garbage: Some(Garbage::WrongShape),
                ..Faults::default()
            },
            "is not a list",
        ),
        (
            "HTTP 500",
            Faults {
                client_list_http_500: true,
                ..Faults::default()
            },
            "admin/client?form=client_list: HTTP 500",
        ),
        (
            "Deco-side timeout",
            Faults {
                client_list_timeout_code: true,
                ..Faults::default()
            },
            "error_code \"timeout\"",
        ),
        (
            "slow",
            Faults {
                client_list_delay: Some(Duration::from_secs(4)),
                ..Faults::default()
            },
            "admin/client?form=client_list: cannot reach the Deco: no answer within 2s",
        ),
    ];
    for (what, fault, expected) in faults {
        emu.set_faults(fault);
        watcher
            .wait_json("bandwidth2mqtt/bridge/info", |v| {
                v["sources"]["mesh"]["status"] == "error"
                    && v["sources"]["mesh"]["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains(expected))
            })
            .await;
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/mesh", "offline")
            .await;
        emu.set_faults(Faults::default());
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/mesh", "online")
            .await;
        assert!(
            bridge.log().contains(expected),
            "{what}: one log line names the endpoint and problem"
        );
    }

    // The Deco is down (rebooting): connection refused, then it comes back on the same port.
    server.stop();
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["mesh"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("cannot reach the Deco: connection failed"))
        })
        .await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/mesh", "offline")
        .await;
    server = serve_again(&emu, port).await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/mesh", "online")
        .await;

    // The owner logs in elsewhere once: the bridge logs in again and the poll succeeds.
    let logins = emu.stats().logins_ok;
    let rejected = emu.stats().sessions_rejected;
    emu.kick_session();
    wait_until("a new login after the kick", || emu.stats().logins_ok == logins + 1).await;
    assert_eq!(emu.stats().sessions_rejected, rejected + 1);
    wait_until("the re-login logged", || {
        bridge.log().contains("Deco session ended; logging in again.")
    })
    .await;

    // Totals after all that: more than before, and no step ever jumped: each is at most the
    // laptop's rate over the longest interval that is integrated (3 × 1 s), so no outage was
    // filled in with invented traffic.
    let last_before = watcher.wait_json(LAPTOP, |v| v["online"] == true).await;
    let target = num(&last_before, "rx_bytes").unwrap() + 300_000;
    watcher
        .wait_json(LAPTOP, |v| num(v, "rx_bytes").is_some_and(|b| b >= target))
        .await;
    let totals: Vec<u64> = watcher
        .log()
        .iter()
        .filter(|m| m.topic == LAPTOP)
        .filter_map(|m| serde_json::from_str::<Value>(&m.payload).ok())
        .filter_map(|v| num(&v, "rx_bytes"))
        .collect();
    let max_step = (LAPTOP_DOWN_BPS / 8.0 * 3.0) as u64;
    for pair in totals.windows(2) {
        assert!(pair[1] >= pair[0], "never backwards: {pair:?}");
        assert!(pair[1] - pair[0] <= max_step, "no jump: {pair:?} (max {max_step})");
    }

    // vnstat was never affected.
    let log = watcher.log();
    let beast = "bandwidth2mqtt/bridge/source/beast";
    let first_online = log
        .iter()
        .position(|m| m.topic == beast && m.payload == "online")
        .expect("vnstat came online");
    assert!(
        log[first_online..]
            .iter()
            .all(|m| !(m.topic == beast && m.payload == "offline")),
        "vnstat stayed online"
    );
    let stats = emu.stats();
    assert_eq!(stats.wrong_passwords, 0);
    assert_eq!(stats.bad_signs, 0);
    assert!(
        stats.logins_ok <= 4,
        "logins: start, after the reboot, after the kick (+1 slack): {stats:?}"
    );
    assert_no_secrets(&bridge.log(), &emu, PASSWORD);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_tried_once_and_never_locks_the_deco() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let emu = mesh(PASSWORD);
    let server = emu.serve(0, false).await.unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let wrong = "not-the-0wner-pw";
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), wrong, ""));

    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["mesh"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("wrong owner password (Deco error -5002, 9 attempts left"))
        })
        .await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/mesh", "offline")
        .await;
    // Several more polls happen; none of them reaches the Deco.
    wait_until("three more failing polls", || {
        bridge.log().matches("Source still failing.").count() >= 3
    })
    .await;
    let stats = emu.stats();
    assert_eq!(stats.login_attempts, 1, "{stats:?}");
    assert_eq!((stats.max_failures, stats.locked_answers), (1, 0));
    let log = bridge.log();
    assert_eq!(
        log.matches("Source rejected our credentials").count(),
        1,
        "one error line for the event:\n{log}"
    );
    assert_no_secrets(&log, &emu, wrong);
    assert_no_secrets(&log, &emu, PASSWORD);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_busy_in_the_app_is_not_kicked_out_every_poll() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let emu = mesh(PASSWORD);
    emu.set_faults(Faults {
        owner_active: true,
        ..Faults::default()
    });
    let server = emu.serve(0, false).await.unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &server.url(), PASSWORD, ""));
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["mesh"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("Deco session taken by another owner login"))
        })
        .await;
    wait_until("three more failing polls", || {
        bridge.log().matches("Source still failing.").count() >= 3
    })
    .await;
    assert_eq!(
        emu.stats().login_attempts,
        2,
        "one login and one retry, then a pause of minutes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn once_over_https_with_a_pinned_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let emu = mesh(PASSWORD);
    let server = emu.serve(0, true).await.unwrap();
    let pin: String = bandwidth2mqtt::http::fingerprint(server.certificate.as_ref().unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let config = format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"mqtt://127.0.0.1:1\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n[deco.mesh]\nurl = \"{}\"\npassword = \"{PASSWORD}\"\ntimeout = \"5s\"\ntls_fingerprint = \"{pin}\"\n",
        server.url()
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let out = run_cli(dir.path(), &["once", "-c", "c.toml", "--dry-run"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let laptop = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["topic"] == LAPTOP)
        .expect("the laptop's state");
    let state: Value = serde_json::from_str(laptop["payload"].as_str().unwrap()).unwrap();
    assert_eq!(num(&state, "rx_bps"), Some(800_000));
    assert_eq!(emu.stats().logouts, 1, "once logs out too");

    // A wrong pin refuses the Deco.
    let config = std::fs::read_to_string(dir.path().join("c.toml"))
        .unwrap()
        .replace(&pin, &"00".repeat(32));
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let out = run_cli(dir.path(), &["once", "-c", "c.toml", "--dry-run"], &[]);
    assert_eq!(out.status.code(), Some(1), "the source failed");
    assert_eq!(emu.stats().logins_ok, 1);
}
