//! The bridge in-process on a manual clock (`bridge::Parts` + `clock::ManualClock`) and the
//! in-memory MQTT link (no broker), against the repo's vnstat stand-in and Deco emulator: day and month rollovers in
//! the configured time zone (also while the source is down), outages shorter and longer than
//! `consider_home`, a rename, a restart on the same state dir. Simulated hours take
//! milliseconds: the clock jumps, each source polls once per jump, and the test waits for the
//! bridge to have handled that poll (its `/metrics` poll counter) before it looks. Real tokio
//! time, not paused: the vnstat stand-in is a process and the Deco speaks HTTP, whose
//! timeouts paused time would fire at once.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bandwidth2mqtt::clock::ManualClock;
use bandwidth2mqtt::emulators::deco::{ClientSpec, Clock, DecoEmulator, EmulatorConfig, Profile, home};
use serde_json::Value;
use support::fake_vnstat::{FakeVnstat, Iface};
use support::inmem::MemoryBroker;
use support::inproc::InProcess;

const TITAN: &str = "bandwidth2mqtt/titan";
const LAPTOP: &str = "bandwidth2mqtt/3c22fb100001";
const INTERVAL: Duration = Duration::from_secs(10);
/// vnstat's `updated` has minutes only: a document changes from one minute to the next.
const MINUTE: Duration = Duration::from_secs(60);
/// vnstat's database creation time in the documents (any time well before the tests).
const CREATED: i64 = 1_700_000_000;

fn at(text: &str) -> ManualClock {
    ManualClock::at(text.parse().expect("timestamp"))
}

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().expect("timestamp").as_millisecond()
}

fn base_config(dir: &Path, bridge_extra: &str, sources: &str) -> String {
    format!(
        "[mqtt]\ndiscovery = \"entity\"\n[bridge]\nstate_dir = \"{}\"\n{bridge_extra}\n[host]\nenabled = false\n{sources}",
        dir.join("state").display()
    )
}

fn titan_config(dir: &Path, vnstat: &FakeVnstat, bridge_extra: &str) -> String {
    let titan = format!(
        "[vnstat.titan]\ncommand = {}\ninterval = \"10s\"\nname = \"Titan\"\nmac = \"d8:bb:c1:1e:00:01\"\n",
        vnstat.command_toml()
    );
    base_config(dir, bridge_extra, &titan)
}

/// Titan's vnstat says `rx`/`tx` from now on, saved `ahead` of the clock's now (the
/// next poll's time: the clock moves after the document is written, so no poll sees it early).
fn counters(vnstat: &FakeVnstat, clock: &ManualClock, ahead: Duration, rx: u64, tx: u64) {
    let updated = (clock.now_ms() + ahead.as_millis() as i64) / 1000;
    vnstat.set_json(&[Iface { name: "eno1", rx, tx }], updated, CREATED);
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// The period totals of a state: (rx_today, rx_month).
fn periods(v: &Value) -> (u64, u64) {
    (num(v, "rx_today"), num(v, "rx_month"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_rolls_over_at_local_midnight_while_the_source_is_down() {
    let broker = MemoryBroker::new().waiting(support::WAIT);
    let dir = tempfile::tempdir().unwrap();
    let watcher = broker.clone();
    // 23:40 in Berlin (UTC+1 in March) is 22:40 UTC: a UTC day would not end at 23:00 local.
    let clock = at("2026-03-13T22:40:00Z");
    let vnstat = FakeVnstat::new(dir.path(), "titan");
    counters(&vnstat, &clock, Duration::ZERO, 1_000_000, 100_000);
    let toml = titan_config(dir.path(), &vnstat, "timezone = \"Europe/Berlin\"");
    let started = Instant::now();
    let bridge = InProcess::start_on(dir.path(), &toml, &clock, Some(broker.connector()));

    watcher.wait_json(TITAN, |v| v["rx_bytes"] == 1_000_000).await;
    counters(&vnstat, &clock, MINUTE, 1_500_000, 150_000);
    bridge.step(&clock, "titan", MINUTE).await;
    let before = watcher.wait_json(TITAN, |v| v["rx_bytes"] == 1_500_000).await;
    let (today, month) = periods(&before);
    assert!(
        today >= 500_000 && month >= today,
        "the half megabyte counts today: {before}"
    );

    // 23:00 UTC is midnight in Berlin: nothing rolls at 00:00 UTC, everything at 00:00 local.
    vnstat.set_output("vnstat: database locked", 1);
    bridge.step(&clock, "titan", MINUTE).await;
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/titan", "offline")
        .await;
    bridge.step(&clock, "titan", Duration::from_secs(10 * 60)).await;
    let late = watcher.last(TITAN).unwrap().payload;
    let late: Value = serde_json::from_str(&late).unwrap();
    assert_eq!(periods(&late), (today, month), "still the same day at 23:52: {late}");

    clock.advance_to(ms("2026-03-13T23:00:31Z"));
    let rolled = watcher
        .wait_json(TITAN, |v| v["rx_today"] == 0 && v["rx_month"].is_u64())
        .await;
    assert_eq!(num(&rolled, "rx_month"), month, "the month keeps going: {rolled}");
    assert_eq!(num(&rolled, "rx_bytes"), 1_500_000, "totals untouched: {rolled}");

    // Back after midnight: its new bytes are today's and the month's.
    counters(&vnstat, &clock, MINUTE, 1_800_000, 160_000);
    bridge.step(&clock, "titan", MINUTE).await;
    let after = watcher.wait_json(TITAN, |v| v["rx_bytes"] == 1_800_000).await;
    assert_eq!(periods(&after), (300_000, month + 300_000), "{after}");
    // Never lower inside a period: every rx_month published stayed at or above the last.
    let months: Vec<u64> = watcher
        .published()
        .iter()
        .filter(|m| m.topic == TITAN)
        .filter_map(|m| serde_json::from_str::<Value>(&m.payload).ok())
        .filter_map(|v| v["rx_month"].as_u64())
        .collect();
    assert!(months.windows(2).all(|w| w[1] >= w[0]), "{months:?}");
    bridge.stop().await;
    let took = started.elapsed();
    eprintln!("a simulated 20 minutes across midnight took {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_month_rolls_over_on_month_start_day_and_totals_survive_a_restart() {
    let broker = MemoryBroker::new().waiting(support::WAIT);
    let dir = tempfile::tempdir().unwrap();
    let watcher = broker.clone();
    let clock = at("2026-03-14T23:55:00Z");
    let vnstat = FakeVnstat::new(dir.path(), "titan");
    counters(&vnstat, &clock, Duration::ZERO, 5_000_000, 500_000);
    let toml = titan_config(dir.path(), &vnstat, "timezone = \"UTC\"\nmonth_start_day = 15");
    let bridge = InProcess::start_on(dir.path(), &toml, &clock, Some(broker.connector()));
    watcher.wait_json(TITAN, |v| v["rx_bytes"] == 5_000_000).await;
    counters(&vnstat, &clock, MINUTE, 5_400_000, 540_000);
    bridge.step(&clock, "titan", MINUTE).await;
    let before = watcher.wait_json(TITAN, |v| v["rx_bytes"] == 5_400_000).await;
    let (today, month) = periods(&before);
    assert!(today >= 400_000 && month >= today, "{before}");

    // The 15th at 00:00: a new billing month (and day) begins.
    clock.advance_to(ms("2026-03-15T00:00:05Z"));
    counters(&vnstat, &clock, MINUTE, 5_600_000, 560_000);
    bridge.step(&clock, "titan", MINUTE).await;
    let after = watcher.wait_json(TITAN, |v| v["rx_bytes"] == 5_600_000).await;
    assert_eq!(
        periods(&after),
        (200_000, 200_000),
        "only the bytes since 00:00: {after}"
    );

    // A restart on the same state dir: totals, today and the month are where they were.
    bridge.stop().await;
    clock.advance(Duration::from_secs(60));
    counters(&vnstat, &clock, Duration::ZERO, 5_700_000, 570_000);
    let bridge = InProcess::start_on(dir.path(), &toml, &clock, Some(broker.connector()));
    bridge.wait_polls("titan", 1).await;
    let again = watcher.wait_json(TITAN, |v| v["rx_bytes"] == 5_700_000).await;
    assert_eq!(periods(&again), (300_000, 300_000), "kept across the restart: {again}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_changes_only_the_name() {
    let broker = MemoryBroker::new().waiting(support::WAIT);
    let dir = tempfile::tempdir().unwrap();
    let watcher = broker.clone();
    let clock = at("2026-03-14T12:00:00Z");
    let vnstat = FakeVnstat::new(dir.path(), "titan");
    counters(&vnstat, &clock, Duration::ZERO, 7_000_000, 700_000);
    let toml = titan_config(dir.path(), &vnstat, "");
    let bridge = InProcess::start_on(dir.path(), &toml, &clock, Some(broker.connector()));
    let config_topic = "homeassistant/sensor/titan/rx_bytes/config";
    let before = watcher
        .wait_json(config_topic, |v| v["device"]["name"] == "Titan")
        .await;
    let state = watcher.wait_json(TITAN, |v| v["rx_bytes"] == 7_000_000).await;
    assert!(before["unique_id"].is_string(), "{before}");

    watcher.deliver(
        "bandwidth2mqtt/bridge/request/device/rename",
        r#"{"id":"titan","name":"Titan Prime","transaction":"r1"}"#,
        false,
    );
    let response = watcher
        .wait_json("bandwidth2mqtt/bridge/response/device/rename", |v| {
            v["transaction"] == "r1"
        })
        .await;
    assert_eq!(response["status"], "ok", "{response}");
    let after = watcher
        .wait_json(config_topic, |v| v["device"]["name"] == "Titan Prime")
        .await;
    for key in [
        "unique_id",
        "object_id",
        "default_entity_id",
        "state_topic",
        "value_template",
    ] {
        assert_eq!(before.get(key), after.get(key), "{key} changed");
    }
    assert_eq!(before["device"]["identifiers"], after["device"]["identifiers"]);
    // Totals unchanged, also after the next poll.
    bridge.step(&clock, "titan", MINUTE).await;
    let now: Value = serde_json::from_str(&watcher.last(TITAN).unwrap().payload).unwrap();
    for key in ["rx_bytes", "tx_bytes", "rx_today", "rx_month"] {
        assert_eq!(now[key], state[key], "{key}");
    }
    bridge.stop().await;
}

/// The home mesh with one laptop online at a constant rate, on the test's clock.
fn mesh(clock: &ManualClock) -> DecoEmulator {
    let (nodes, _) = home();
    let mut laptop = ClientSpec::new(
        "3c:22:fb:10:00:01".parse().unwrap(),
        "Laptop",
        1,
        "band5",
        Profile::Constant {
            down_bps: 800_000.0,
            up_bps: 80_000.0,
        },
    );
    laptop.ip = "192.168.68.100".into();
    DecoEmulator::new(EmulatorConfig::new(
        "deco-Owner-pw1",
        nodes,
        vec![laptop],
        Clock::Shared(clock.clock()),
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deco_outage_shorter_than_consider_home_keeps_trackers_where_they_were() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = MemoryBroker::new().waiting(support::WAIT);
    let dir = tempfile::tempdir().unwrap();
    let watcher = broker.clone();
    let clock = at("2026-03-14T12:00:00Z");
    let emu = mesh(&clock);
    let server = emu.serve(0, false).await.unwrap();
    let deco = format!(
        "[deco.mesh]\nurl = \"{}\"\npassword = \"deco-Owner-pw1\"\ninterval = \"10s\"\ntimeout = \"2s\"\n",
        server.url()
    );
    let toml = base_config(dir.path(), "consider_home = \"3m\"", &deco);
    let bridge = InProcess::start_on(dir.path(), &toml, &clock, Some(broker.connector()));
    let home = |v: &Value| v["presence"] == "home" && v["presence_available"] == true;
    watcher.wait_json(LAPTOP, home).await;
    bridge.step(&clock, "mesh", INTERVAL).await;

    // The Deco reboots: 170 s of failed polls, every one handled, the tracker stays home.
    server.stop();
    for _ in 0..17 {
        bridge.step(&clock, "mesh", INTERVAL).await;
        let state: Value = serde_json::from_str(&watcher.last(LAPTOP).unwrap().payload).unwrap();
        assert!(home(&state), "flapped during a short outage: {state}");
    }
    let flaps = watcher
        .published()
        .iter()
        .filter(|m| m.topic == LAPTOP)
        .filter_map(|m| serde_json::from_str::<Value>(&m.payload).ok())
        .filter(|v| !home(v))
        .count();
    assert_eq!(flaps, 0, "no not_home or unavailable published");

    // Longer than consider_home: the tracker is unavailable (the contract), not a guess.
    bridge.step(&clock, "mesh", Duration::from_secs(30)).await;
    watcher.wait_json(LAPTOP, |v| v["presence_available"] == false).await;
    bridge.stop().await;
}
