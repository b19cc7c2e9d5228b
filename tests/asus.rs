//! The ASUS source end to end: the emulated router, the real bridge binary and a real
//! mosquitto, down to the published state; every fault, session expiry, a wrong password,
//! 32-bit wraps and reboots.

mod support;

use std::time::Duration;

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator, Fault};
use serde_json::Value;
use support::WAIT;
use support::broker::Broker;
use support::fake_host::FakeHost;
use support::process::BridgeProc;
use support::watcher::Watcher;

fn asus_table(emu: &AsusEmulator, extra: &str) -> String {
    format!(
        "[asus.home]\nurl = \"{}\"\npassword = \"router-pass\"\ninterval = \"1s\"\ntimeout = \"2s\"\ntemperature_interval = \"1s\"\n{extra}\n",
        emu.url()
    )
}

fn config(broker: &Broker, tables: &str) -> String {
    format!(
        "[mqtt]\ndiscovery = \"entity\"\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\nconsider_home = \"3s\"\n[host]\nenabled = false\n{tables}",
        broker.url()
    )
}

fn num(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

async fn watch(broker: &Broker) -> Watcher {
    Watcher::connect(&broker.host, broker.port, &["#"]).await
}

/// Waits until the router's published WAN totals equal the emulator's ground truth.
async fn totals_match(watcher: &Watcher, emu: &AsusEmulator) -> Value {
    let (rx, tx) = emu.with(|s| (s.lifetime_rx, s.lifetime_tx));
    watcher
        .wait_json("bandwidth2mqtt/home", |v| {
            num(v, "rx_bytes") == Some(rx) && num(v, "tx_bytes") == Some(tx)
        })
        .await
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn router_and_clients_end_to_end() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    emu.with(|s| s.add_traffic(5_000_000_000, 700_000_000));
    let dir = tempfile::tempdir().unwrap();
    let watcher = watch(&broker).await;
    let _bridge = BridgeProc::spawn(dir.path(), &config(&broker, &asus_table(&emu, "")));

    let state = totals_match(&watcher, &emu).await;
    assert_eq!(state["online"], true);
    assert_eq!(state["wan_ip"], "203.0.113.7");
    assert_eq!(num(&state, "clients"), Some(10), "12 clients, 2 of them offline");
    assert!(num(&state, "uptime").is_some_and(|u| u > 86_400 * 3));
    assert!(state["memory_percent"].as_f64().is_some_and(|m| m > 0.0 && m < 100.0));
    // WAN traffic: exact totals and a rate from consecutive reads.
    emu.with(|s| s.add_traffic(1_234_567, 89_012));
    let state = totals_match(&watcher, &emu).await;
    assert!(num(&state, "rx_bps").is_some_and(|r| r > 0), "{state}");
    let state = watcher
        .wait_json("bandwidth2mqtt/home", |v| v["cpu_percent"].is_number())
        .await;
    assert!(
        state["cpu_percent"]
            .as_f64()
            .is_some_and(|c| (0.0..=100.0).contains(&c))
    );
    assert!(
        state["temperature_cpu"]
            .as_f64()
            .is_some_and(|t| (61.0..66.0).contains(&t)),
        "{state}"
    );
    assert!(state["temperature_5ghz"].as_f64().is_some_and(|t| t >= 52.0), "{state}");

    let router_cfg = watcher
        .wait_for("homeassistant/sensor/home/rx_bytes/config", WAIT, |_| true)
        .await;
    let router_cfg: Value = serde_json::from_str(&router_cfg.payload).unwrap();
    assert_eq!(router_cfg["name"], "WAN downloaded");
    assert_eq!(router_cfg["device"]["manufacturer"], "ASUS");
    assert_eq!(router_cfg["device"]["model"], "RT-AX86U Pro");
    assert_eq!(router_cfg["device"]["sw_version"], "3.0.0.4.388_24353-g1c2d3e4");
    assert_eq!(
        router_cfg["device"]["connections"],
        serde_json::json!([["mac", "04:42:1a:10:20:30"]])
    );
    assert_eq!(router_cfg["device"]["name"], "RT-AX86U Pro");

    // Client 0 is "Pixel-8" on 5 GHz, online; client 4 ("iPhone") is offline.
    let pixel = watcher
        .wait_json("bandwidth2mqtt/021a11000000", |v| v["presence"] == "home")
        .await;
    assert_eq!(pixel["online"], true);
    assert_eq!(pixel["connection"], "5 GHz");
    assert_eq!(pixel["ip"], "192.168.50.10");
    assert!(pixel["rssi"].as_i64().is_some_and(|r| r < 0));
    // Tracker attributes have a topic of their own, written only when they change.
    let attributes = watcher
        .wait_json("bandwidth2mqtt/021a11000000/attributes", |v| v["mac"].is_string())
        .await;
    assert_eq!(attributes["mac"], "02:1a:11:00:00:00");
    assert_eq!(attributes["ip"], "192.168.50.10");
    assert_eq!(attributes["host_name"], "Pixel 8");
    assert_eq!(attributes["vendor"], "Google");
    assert!(
        attributes.get("connected_for").is_none(),
        "changes every poll: not a tracker attribute"
    );
    let offline = watcher
        .wait_json("bandwidth2mqtt/021a11000004", |v| v["online"] == false)
        .await;
    assert_eq!(offline["presence"], "not_home");
    let nas = watcher
        .wait_json("bandwidth2mqtt/021a11000005", |v| v["online"] == true)
        .await;
    assert_eq!(nas["connection"], "wired");
    assert!(nas.get("rssi").is_none(), "no signal entity for a wired client: {nas}");

    let tracker = watcher
        .wait_for(
            "homeassistant/device_tracker/021a11000000/presence/config",
            WAIT,
            |_| true,
        )
        .await;
    let tracker: Value = serde_json::from_str(&tracker.payload).unwrap();
    assert_eq!(tracker["source_type"], "router");
    assert_eq!(tracker["name"], Value::Null);
    assert_eq!(tracker["default_entity_id"], "device_tracker.pixel_8");
    assert_eq!(tracker["device"]["via_device"], "bandwidth2mqtt_home");
    assert_eq!(
        tracker["device"]["connections"],
        serde_json::json!([["mac", "02:1a:11:00:00:00"]])
    );
    assert_eq!(
        tracker["availability"],
        serde_json::json!([
            {"topic": "bandwidth2mqtt/bridge/state"},
            {"topic": "bandwidth2mqtt/021a11000000", "value_template": "{{ 'online' if value_json.presence_available | default(true) else 'offline' }}"}
        ]),
        "a router outage shorter than consider_home keeps the tracker; the state says when not"
    );

    // A client leaves: online at once, presence after consider_home (3 s here).
    emu.with(|s| s.clients[0].online = false);
    let gone = watcher
        .wait_json("bandwidth2mqtt/021a11000000", |v| v["online"] == false)
        .await;
    assert_eq!(gone["presence"], "home", "within consider_home");
    watcher
        .wait_json("bandwidth2mqtt/021a11000000", |v| v["presence"] == "not_home")
        .await;

    // Etiquette: one login, one appGet request per poll with every hook in it (%3B-encoded),
    // the app's User-Agent.
    let stats = emu.with(|s| s.stats.clone());
    assert_eq!(stats.logins, 1);
    assert!(
        stats.last_user_agent.starts_with("asusrouter-"),
        "{}",
        stats.last_user_agent
    );
    let hook = stats.hook_fields.last().unwrap();
    assert!(
        hook.starts_with("netdev(appobj);cpu_usage(appobj);") && hook.contains("get_clientlist()"),
        "{hook}"
    );
    let app_gets = stats.requests.get("/appGet.cgi").copied().unwrap_or(0);
    assert!(app_gets >= 5);
    let other: u64 = stats
        .requests
        .iter()
        .filter(|(p, _)| {
            ![
                "/appGet.cgi",
                "/ajax_coretmp.asp",
                "/getAppTraffic.asp",
                "/getWanTraffic.asp",
                "/getTraffic.asp",
            ]
            .contains(&p.as_str())
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(other, 1, "besides polls only the login: {:?}", stats.requests);
    // QoS is off on this router: getTraffic.asp was probed once, not asked every poll.
    assert_eq!(stats.requests.get("/getTraffic.asp"), Some(&1));
    // The Traffic Analyzer's first refresh is a catch-up (1 discovery, 12 devices' hours and
    // their apps); later refreshes are spread: one request per poll at most here.
    let ta = stats.requests.get("/getWanTraffic.asp").copied().unwrap_or(0)
        + stats.requests.get("/getAppTraffic.asp").copied().unwrap_or(0);
    assert!(ta <= 25 + app_gets, "{ta} TA requests in {app_gets} polls");
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_take_only_the_router_offline_and_totals_continue_exactly() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    emu.with(|s| s.add_traffic(3_000_000, 400_000));
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("eth0", 1000, 100)]);
    let watcher = watch(&broker).await;
    let tables = format!(
        "{}{}",
        asus_table(&emu, ""),
        host.config("1s").replace("[host]\n", "[host]\nenabled = true\n")
    );
    let cfg = config(&broker, &tables).replace("[host]\nenabled = false\n", "");
    let bridge = BridgeProc::spawn(dir.path(), &cfg);
    totals_match(&watcher, &emu).await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/host", "online")
        .await;

    let faults: [(&str, Option<Fault>, &str); 5] = [
        ("down", None, "cannot connect"),
        ("HTTP 500", Some(Fault::ServerError), "HTTP 500"),
        ("garbage", Some(Fault::Garbage), "appGet.cgi: not a hook reply"),
        ("truncated", Some(Fault::Truncated), "appGet.cgi: not a hook reply"),
        ("slow", Some(Fault::Slow(Duration::from_secs(4))), "timed out"),
    ];
    for (what, fault, expected) in faults {
        match fault {
            None => emu.set_down(true).await.unwrap(),
            Some(f) => emu.with(|s| s.fault = Some(f)),
        }
        watcher
            .wait_json("bandwidth2mqtt/bridge/info", |v| {
                v["sources"]["home"]["status"] == "error"
                    && v["sources"]["home"]["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains(expected))
            })
            .await;
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/home", "offline")
            .await;
        assert_eq!(
            watcher.latest("bandwidth2mqtt/bridge/source/host").unwrap().payload,
            "online",
            "{what}"
        );
        // Traffic keeps flowing while we cannot see it; it is counted once the router answers.
        emu.with(|s| s.add_traffic(777_777, 11_111));
        match fault {
            None => emu.set_down(false).await.unwrap(),
            Some(_) => emu.with(|s| s.fault = None),
        }
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/home", "online")
            .await;
        totals_match(&watcher, &emu).await;
    }
    assert!(!bridge.log().contains("panicked"));
    // Every published router total only went up.
    let mut last = 0;
    for m in watcher.log().iter().filter(|m| m.topic == "bandwidth2mqtt/home") {
        let rx = serde_json::from_str::<Value>(&m.payload)
            .ok()
            .and_then(|v| num(&v, "rx_bytes"))
            .unwrap();
        assert!(rx >= last);
        last = rx;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_sessions_wrap_and_reboot() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let emu = AsusEmulator::start(
        AsusConfig {
            counters_32_bit: true,
            ..AsusConfig::default()
        },
        false,
    )
    .await
    .unwrap();
    emu.with(|s| s.add_traffic(4_294_000_000, 1_000));
    let dir = tempfile::tempdir().unwrap();
    let watcher = watch(&broker).await;
    let _bridge = BridgeProc::spawn(dir.path(), &config(&broker, &asus_table(&emu, "")));
    totals_match(&watcher, &emu).await;

    // The router forgets every session: one re-login, and the source never goes offline.
    emu.with(|s| s.sessions.clear());
    emu.with(|s| s.add_traffic(1_000, 1_000));
    totals_match(&watcher, &emu).await;
    assert_eq!(emu.with(|s| s.stats.logins), 2);
    let availability: Vec<String> = watcher
        .log()
        .into_iter()
        .filter(|m| m.topic == "bandwidth2mqtt/bridge/source/home")
        .map(|m| m.payload)
        .collect();
    assert_eq!(
        availability,
        ["offline", "online"],
        "offline only before the first poll, never after"
    );

    // The 32-bit counter wraps (4 294 001 000 + 5 MB crosses 2^32): counted exactly.
    emu.with(|s| s.add_traffic(5_000_000, 0));
    let state = totals_match(&watcher, &emu).await;
    assert!(num(&state, "rx_bytes").unwrap() > 1u64 << 32);
    assert!(
        emu.with(|s| s.netdev_wan().0) < 10_000_000,
        "the router's own counter did wrap"
    );
    // More wraps, in steps a real link could carry between two polls (a drop that would
    // need more than 10 Gbit/s is a reset, not a wrap).
    let mut wraps = 0;
    for _ in 0..5 {
        let before = emu.with(|s| s.netdev_wan().0);
        emu.with(|s| s.add_traffic(1_200_000_000, 0));
        wraps += usize::from(emu.with(|s| s.netdev_wan().0) < before);
        totals_match(&watcher, &emu).await;
    }
    assert!(wraps >= 1, "the steps crossed 2^32 again");

    // Reboot: counters and sessions restart; the total continues from where it was, no spike.
    let before = totals_match(&watcher, &emu).await;
    emu.with(|s| s.reboot());
    emu.with(|s| s.add_traffic(12_345, 678));
    // The reboot also ends the session, the second loss within minutes: by design the next
    // login waits 30 s (the etiquette), so this wait is longer.
    let (rx, tx) = emu.with(|s| (s.lifetime_rx, s.lifetime_tx));
    let after = watcher
        .wait_for("bandwidth2mqtt/home", Duration::from_secs(60), |m| {
            serde_json::from_str::<Value>(&m.payload)
                .is_ok_and(|v| num(&v, "rx_bytes") == Some(rx) && num(&v, "tx_bytes") == Some(tx))
        })
        .await;
    let after: Value = serde_json::from_str(&after.payload).unwrap();
    assert_eq!(
        num(&after, "rx_bytes").unwrap() - num(&before, "rx_bytes").unwrap(),
        12_345
    );
    assert!(num(&after, "uptime").unwrap() < 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_never_trips_the_lockout() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let watcher = watch(&broker).await;
    let table = asus_table(&emu, "").replace("router-pass", "wrong-pass");
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &table));
    watcher
        .wait_json("bandwidth2mqtt/bridge/info", |v| {
            v["sources"]["home"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("rejected the username or password"))
        })
        .await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/home", "offline")
        .await;
    // The poller keeps trying every second or two, but the session holds off for 30 min.
    until("more polls", || {
        bridge.log().matches("Source still failing").count() >= 3
    })
    .await;
    let (attempts, failed, locked) = emu.with(|s| (s.stats.logins, s.stats.failed_logins, s.locked_until.is_some()));
    assert_eq!(
        (attempts, failed, locked),
        (1, 1, false),
        "one failed login, far from the lockout of 5"
    );
    let log = bridge.log();
    assert_eq!(
        log.matches("rejected the username or password; not trying again")
            .count(),
        1,
        "said once, clearly"
    );
    assert!(log.contains("ERROR"));
    assert!(
        !log.contains("wrong-pass") && !log.contains("router-pass"),
        "no password in the log"
    );

    // Restarting with the same wrong password does not spend another attempt...
    let mut bridge = bridge;
    bridge.terminate();
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &table));
    until("the restarted bridge to hold back", || {
        bridge.log().contains("Still holding back logins after a restart")
            && bridge.log().matches("Source still failing").count() >= 2
    })
    .await;
    assert_eq!(emu.with(|s| s.stats.logins), 1, "no login attempt after the restart");
    // ...while the corrected password is tried at once.
    let mut bridge = bridge;
    bridge.terminate();
    let _bridge = BridgeProc::spawn(dir.path(), &config(&broker, &asus_table(&emu, "")));
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/home", "online")
        .await;
    assert_eq!(emu.with(|s| (s.stats.logins, s.stats.failed_logins)), (2, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_pinned_certificate_and_newer_login_variants() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let emu = AsusEmulator::start(
        AsusConfig {
            secure_cookie_name: true,
            ..AsusConfig::default()
        },
        true,
    )
    .await
    .unwrap();
    emu.with(|s| s.add_traffic(42_000, 4_200));
    let pin: String = bandwidth2mqtt::http::fingerprint(&emu.certificate().unwrap())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let nonce_emu = AsusEmulator::start(
        AsusConfig {
            nonce_login_only: true,
            ..AsusConfig::default()
        },
        false,
    )
    .await
    .unwrap();
    nonce_emu.with(|s| s.add_traffic(99, 9));
    let tables = format!(
        "{}[asus.newfw]\nurl = \"{}\"\npassword = \"router-pass\"\ninterval = \"1s\"\n",
        asus_table(&emu, &format!("tls_fingerprint = \"{pin}\"")),
        nonce_emu.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let watcher = watch(&broker).await;
    let _bridge = BridgeProc::spawn(dir.path(), &config(&broker, &tables));
    assert!(emu.url().starts_with("https://"));
    totals_match(&watcher, &emu).await;
    watcher
        .wait_json("bandwidth2mqtt/newfw", |v| num(v, "rx_bytes") == Some(99))
        .await;
    assert_eq!(
        nonce_emu.with(|s| s.stats.requests.get("/login_v2.cgi").copied()),
        Some(1)
    );

    // Verification against system roots refuses the self-signed certificate, and says so.
    let other = tempfile::tempdir().unwrap();
    let strict = config(&broker, &asus_table(&emu, "")).replace("state_dir = \"data\"", "state_dir = \"data2\"");
    let strict = strict.replace("[mqtt]\n", "[mqtt]\nclient_id = \"strict\"\nbase_topic = \"strict\"\n");
    let bridge = BridgeProc::spawn(other.path(), &strict);
    let info = watcher
        .wait_json("strict/bridge/info", |v| v["sources"]["home"]["status"] == "error")
        .await;
    let error = info["sources"]["home"]["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("unknownissuer"),
        "{error}"
    );
    drop(bridge);
}

/// `once` has the router's temperatures: the page is read before the router's observation is
/// built, not after it (issue 16 §3: `once` had none, `run` only from its second poll).
#[tokio::test(flavor = "multi_thread")]
async fn once_publishes_the_routers_temperatures() {
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n{}",
        asus_table(&emu, "traffic_analyzer = false")
    );
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        support::process::run_cli(&path, &["once", "--dry-run", "-c", "c.toml"], &[])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let router = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["topic"] == "bandwidth2mqtt/home")
        .expect("the router's state");
    let state: Value = serde_json::from_str(router["payload"].as_str().unwrap()).unwrap();
    assert!(
        state["temperature_cpu"]
            .as_f64()
            .is_some_and(|t| (61.0..66.0).contains(&t)),
        "{state}"
    );
    assert!(state["temperature_5ghz"].as_f64().is_some(), "{state}");
}
