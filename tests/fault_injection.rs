//! Fault injection (issue 8, must-have 3): garbage and absurd numbers from every source,
//! counter resets and wraps, steps of the bridge's wall clock, `kill -9` in the middle of
//! saves, a full disk. Each asserts: no panic, only the failing source affected, totals exact
//! or held (never down), the bridge stays up.
//!
//! Garbage and absurd numbers run in-process on the in-memory link and a manual clock (each
//! jump one poll of each source, asserted on what was published); kill -9 and the full disk
//! need the binary and stay processes.
//!
//! Broker restarts are in bridge_mqtt.rs, HA's birth in bridge_inproc.rs; router outages and session-expiry
//! storms in asus.rs and deco_bridge.rs; state-file edge cases in the store's own tests.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bandwidth2mqtt::accounting::{Ledger, PersistedState};
use bandwidth2mqtt::clock::ManualClock;
use bandwidth2mqtt::model::TrafficSample;
use bandwidth2mqtt::sources::SourceKind;
use serde_json::Value;
use support::broker::Broker;
use support::fake_host::FakeHost;
use support::fake_vnstat::{FakeVnstat, Iface};
use support::inmem::MemoryBroker;
use support::inproc::InProcess;
use support::process::BridgeProc;
use support::watcher::Watcher;
use support::{WAIT, fixture};

const T0: i64 = 1_795_559_160;

fn num(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn never_down(values: &[u64], what: &str) {
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{what} went down: {values:?}");
}

/// A fake host whose `eth0` reports no link speed (virtio, Wi-Fi, most VMs: `speed = -1`).
fn speedless_host(dir: &std::path::Path) -> FakeHost {
    let host = FakeHost::new(dir);
    host.add_interface("eth0", "52:54:00:12:34:56", 2, false);
    host
}

/// In-process on the in-memory link and a manual clock (see the garbage test below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_counters_from_vnstat_and_the_kernel_are_ignored_and_counting_continues() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeVnstat::new(dir.path(), "beast");
    let host = speedless_host(dir.path());
    host.set_counters(&[("eth0", 10_000, 5_100)]);
    fake.set_json(
        &[Iface {
            name: "eth0",
            rx: 1000,
            tx: 100,
        }],
        T0,
        T0 - 86_400,
    );
    let broker = MemoryBroker::new().waiting(WAIT);
    let clock = ManualClock::new((T0 + 60) * 1000);
    let config = in_process_config(dir.path(), &host, &fake);
    let bridge = InProcess::start_on(dir.path(), &config, &clock, Some(broker.connector()));
    let step = Duration::from_secs(10);
    broker
        .wait_json("bandwidth2mqtt/beast", |v| num(v, "rx_bytes") == Some(1000))
        .await;
    broker
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(10_000))
        .await;

    // vnstat prints 2^64−1 once; the kernel shows a petabyte once: two whole polls of each
    // count nothing.
    fake.set_json(
        &[Iface {
            name: "eth0",
            rx: u64::MAX,
            tx: 200,
        }],
        T0 + 300,
        T0 - 86_400,
    );
    host.set_counters(&[("eth0", 1_000_000_000_000_000, 5_100)]);
    bridge.step(&clock, "beast", step).await;
    bridge.step(&clock, "beast", step).await;
    let latest = |topic: &str| broker.last(topic).map(|m| m.json()).unwrap_or_default();
    assert_eq!(num(&latest("bandwidth2mqtt/beast"), "rx_bytes"), Some(1000));
    assert_eq!(num(&latest("bandwidth2mqtt/titan"), "rx_bytes"), Some(10_000));

    // Back to normal: counted exactly from the last good reading, not "went down".
    fake.set_json(
        &[Iface {
            name: "eth0",
            rx: 5000,
            tx: 300,
        }],
        T0 + 600,
        T0 - 86_400,
    );
    host.set_counters(&[("eth0", 20_000, 5_100)]);
    bridge.step(&clock, "beast", step).await;
    let beast = broker
        .wait_json("bandwidth2mqtt/beast", |v| num(v, "rx_bytes") == Some(5000))
        .await;
    assert_eq!(num(&beast, "tx_bytes"), Some(300));
    broker
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(20_000))
        .await;

    // A counter reset on the speed-less NIC (tx 5,100 → 300) is no 32-bit wrap: nothing
    // invented (the drop is held for a poll), and what came after the reset counts.
    host.set_counters(&[("eth0", 100, 300)]);
    bridge.step(&clock, "beast", step).await;
    assert_eq!(num(&latest("bandwidth2mqtt/titan"), "tx_bytes"), Some(5_100));
    host.set_counters(&[("eth0", 700, 900)]);
    bridge.step(&clock, "beast", step).await;
    let titan = broker
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "tx_bytes") == Some(5_700))
        .await;
    assert_eq!(num(&titan, "rx_bytes"), Some(20_600));

    for (topic, key) in [
        ("bandwidth2mqtt/beast", "rx_bytes"),
        ("bandwidth2mqtt/beast", "tx_bytes"),
        ("bandwidth2mqtt/titan", "rx_bytes"),
        ("bandwidth2mqtt/titan", "tx_bytes"),
    ] {
        let values: Vec<u64> = broker
            .published_to(topic)
            .iter()
            .filter_map(|m| num(&m.json(), key))
            .collect();
        never_down(&values, &format!("{topic} {key}"));
        assert!(
            values.iter().all(|v| *v <= 1_000_000),
            "{topic} {key} never inflated: {values:?}"
        );
    }
    // Garbage is not an outage: no source went offline, the bridge stayed up.
    for source in ["host", "beast"] {
        let seen: Vec<String> = broker
            .published_to(&format!("bandwidth2mqtt/bridge/source/{source}"))
            .into_iter()
            .map(|m| m.payload)
            .collect();
        // Sources start offline until their first poll; after that, never again.
        let after_first: Vec<_> = seen.iter().skip_while(|p| *p == "offline").collect();
        assert!(
            !after_first.is_empty() && after_first.iter().all(|p| *p == "online"),
            "{source} stayed online: {seen:?}"
        );
    }

    // The totals survive a restart with the state file the faults went through.
    bridge.stop().await;
    let mark = broker.mark();
    let bridge = InProcess::start_on(dir.path(), &config, &clock, Some(broker.connector()));
    let titan = broker
        .wait_for_after(mark, "bandwidth2mqtt/titan", |m| num(&m.json(), "rx_bytes").is_some())
        .await
        .json();
    assert_eq!(
        (num(&titan, "rx_bytes"), num(&titan, "tx_bytes")),
        (Some(20_600), Some(5_700))
    );
    bridge.stop().await;
}

/// The bridge's configuration for the in-process tests: the host and vnstat `beast`.
fn in_process_config(dir: &std::path::Path, host: &FakeHost, fake: &FakeVnstat) -> String {
    format!(
        "[bridge]\nstate_dir = {:?}\n{}[vnstat.beast]\ncommand = {}\ninterval = \"1s\"\n",
        dir.join("data").display().to_string(),
        host.config("1s"),
        fake.command_toml()
    )
}

/// In-process on the in-memory link and a manual clock: each jump polls both sources once,
/// the failing source's backoff (up to 8 intervals) included, so nothing waits for real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_output_takes_only_that_source_offline_and_totals_hold() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeVnstat::new(dir.path(), "beast");
    let host = speedless_host(dir.path());
    host.set_counters(&[("eth0", 10_000, 100)]);
    fake.set_json(
        &[Iface {
            name: "eth0",
            rx: 1000,
            tx: 100,
        }],
        T0,
        T0 - 86_400,
    );
    let broker = MemoryBroker::new().waiting(WAIT);
    let clock = ManualClock::new((T0 + 60) * 1000);
    let config = in_process_config(dir.path(), &host, &fake);
    let bridge = InProcess::start_on(dir.path(), &config, &clock, Some(broker.connector()));
    broker
        .wait_json("bandwidth2mqtt/beast", |v| num(v, "rx_bytes") == Some(1000))
        .await;
    // Longer than the failing source's longest backoff: each step is one poll of each source.
    let step = Duration::from_secs(10);

    // Garbage of every shape from vnstat, while the host keeps counting.
    let garbage = [
        "\u{0}\u{1}binary\u{ff}".to_owned(),
        fixture("vnstat/alias-with-quote-json-eth0-INVALID-JSON.json")[..200].to_owned(),
        r#"{"vnstatversion":"2.10","jsonversion":"2","interfaces":[{"name":"eth0","created":{"date":{"year":2026,"month":1,"day":1}},"updated":{"date":{"year":9223372036854775807,"month":1,"day":1}},"traffic":{"total":{"rx":1,"tx":1}}}]}"#.to_owned(),
        r#"{"vnstatversion":"2.10","jsonversion":"2","interfaces":[{"name":"eth0","traffic":{"total":{"rx":-1,"tx":1e400}}}]}"#.to_owned(),
    ];
    for (i, text) in garbage.iter().enumerate() {
        fake.set_output(text, 0);
        host.set_counters(&[("eth0", 10_000 + 1000 * (i as u64 + 1), 100)]);
        bridge.step(&clock, "beast", step).await;
        broker
            .wait_payload("bandwidth2mqtt/bridge/source/beast", "offline")
            .await;
        // Two more whole polls see the same garbage.
        bridge.step(&clock, "beast", step).await;
        bridge.step(&clock, "beast", step).await;
    }
    let titan = broker
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(14_000))
        .await;
    assert_eq!(titan["online"], Value::Bool(true), "the host is not affected");
    let host_availability: Vec<String> = broker
        .published_to("bandwidth2mqtt/bridge/source/host")
        .into_iter()
        .map(|m| m.payload)
        .collect();
    let after_first: Vec<_> = host_availability.iter().skip_while(|p| *p == "offline").collect();
    assert!(
        !after_first.is_empty() && after_first.iter().all(|p| *p == "online"),
        "the host stayed online: {host_availability:?}"
    );
    // vnstat back: its total was held and continues exactly.
    fake.set_json(
        &[Iface {
            name: "eth0",
            rx: 3000,
            tx: 100,
        }],
        T0 + 300,
        T0 - 86_400,
    );
    bridge.step(&clock, "beast", step).await;
    broker
        .wait_json("bandwidth2mqtt/beast", |v| num(v, "rx_bytes") == Some(3000))
        .await;
    let beast_rx: Vec<u64> = broker
        .published_to("bandwidth2mqtt/beast")
        .iter()
        .filter_map(|m| num(&m.json(), "rx_bytes"))
        .collect();
    never_down(&beast_rx, "beast rx");
    let bridge_state = broker.last("bandwidth2mqtt/bridge/state").map(|m| m.payload);
    assert_eq!(bridge_state.as_deref(), Some("online"));
    bridge.stop().await;
}

/// The ASUS router through the real parsing path, with the bridge's wall clock stepping by
/// ±5 minutes between polls (NTP on a Pi without RTC, a VM resume, a manual `date`).
#[test]
fn a_wall_clock_step_never_counts_the_router_wan_again() {
    use bandwidth2mqtt::config::{AsusSettings, Secret};
    use bandwidth2mqtt::emulators::asus::{AsusConfig, RouterState, app_get};
    use bandwidth2mqtt::sources::asus::{AsusSource, POLL_HOOKS};
    let settings = AsusSettings {
        url: "http://127.0.0.1:9".into(),
        password: Some(Secret::new("unused")),
        ..AsusSettings::default()
    };
    let mut router = RouterState::new(AsusConfig {
        clients: 1,
        ..AsusConfig::default()
    });
    router.add_traffic(31_300_000_000, 2_000_000_000);
    let feeds = vec![SourceKind::Asus.feed("home")];
    let mut ledger = Ledger::new(feeds.clone(), PersistedState::default(), BTreeMap::new());
    let mut source = AsusSource::new("home", &settings);
    let wall0 = T0 * 1000;
    let poll = |source: &mut AsusSource, ledger: &mut Ledger, router: &mut RouterState, t_s: i64, step_s: i64| {
        let at_ms = wall0 + (t_s + step_s) * 1000;
        let observations = source
            .interpret_at(&app_get(router, POLL_HOOKS), at_ms, t_s * 1000)
            .unwrap();
        let router_id = observations[0].device.clone();
        ledger.apply("home", observations, at_ms);
        (router_id.clone(), ledger.device(&router_id).unwrap().totals)
    };
    let (id, first) = poll(&mut source, &mut ledger, &mut router, 0, 0);
    assert_eq!((first.rx, first.tx), (31_300_000_000, 2_000_000_000));
    let mut expected = first;
    for (t, step) in [(30, 300), (60, -300), (90, 200), (120, 0), (150, -250)] {
        router.add_traffic(1_000_000, 10_000);
        expected.rx += 1_000_000;
        expected.tx += 10_000;
        let (_, totals) = poll(&mut source, &mut ledger, &mut router, t, step);
        assert_eq!(totals, expected, "wall clock stepped by {step} s at {t} s");
    }

    // One absurd WAN reading (2^64−1) is ignored; the next normal one counts exactly.
    let real = router.wan_rx;
    router.wan_rx = u64::MAX;
    let (_, totals) = poll(&mut source, &mut ledger, &mut router, 180, 0);
    assert_eq!(totals, expected, "an absurd counter is not counted");
    router.wan_rx = real;
    router.add_traffic(5_000, 0);
    expected.rx += 5_000;
    let (_, totals) = poll(&mut source, &mut ledger, &mut router, 210, 0);
    assert_eq!(totals, expected);

    // A restart of the bridge while its clock is 5 minutes off: no monotonic link survives a
    // restart, but the router's own clock says it is the same boot.
    let persisted = ledger.to_persisted();
    let text = serde_json::to_string(&persisted).unwrap();
    let mut ledger = Ledger::new(feeds, serde_json::from_str(&text).unwrap(), BTreeMap::new());
    let mut source = AsusSource::new("home", &settings);
    router.add_traffic(7_000, 0);
    expected.rx += 7_000;
    let (_, totals) = poll(&mut source, &mut ledger, &mut router, 5, 540);
    assert_eq!(totals, expected, "restart with a stepped clock");

    // A real reboot still counts what the router moved since its boot.
    router.reboot();
    router.add_traffic(9_000, 900);
    expected.rx += 9_000;
    expected.tx += 900;
    let (_, totals) = poll(&mut source, &mut ledger, &mut router, 35, 540);
    assert_eq!(totals, expected, "after a reboot");
    assert!(
        ledger.device(&id).unwrap().sources.contains("home"),
        "still the same router device"
    );
}

/// The router unreachable for an hour (simulated clocks, real parsing path): what its WAN
/// counter moved meanwhile is counted exactly once it answers again, with no rate claimed for
/// the gap; an hour's worth of bytes is no implausible jump.
#[test]
fn a_router_down_for_an_hour_counts_the_gap_exactly() {
    use bandwidth2mqtt::config::{AsusSettings, Secret};
    use bandwidth2mqtt::emulators::asus::{AsusConfig, RouterState, app_get};
    use bandwidth2mqtt::sources::asus::{AsusSource, POLL_HOOKS};
    let settings = AsusSettings {
        url: "http://127.0.0.1:9".into(),
        password: Some(Secret::new("unused")),
        ..AsusSettings::default()
    };
    let mut router = RouterState::new(AsusConfig {
        clients: 1,
        ..AsusConfig::default()
    });
    router.add_traffic(1_000_000_000, 100_000_000);
    let mut ledger = Ledger::new(
        vec![SourceKind::Asus.feed("home")],
        PersistedState::default(),
        BTreeMap::new(),
    );
    let mut source = AsusSource::new("home", &settings);
    let mut poll = |router: &mut RouterState, t_s: i64| {
        let observations = source
            .interpret_at(&app_get(router, POLL_HOOKS), (T0 + t_s) * 1000, t_s * 1000)
            .unwrap();
        let id = observations[0].device.clone();
        ledger.apply("home", observations, (T0 + t_s) * 1000);
        ledger.device(&id).unwrap().clone()
    };
    poll(&mut router, 0);
    router.add_traffic(1_000_000, 0);
    let before = poll(&mut router, 30);
    assert!(before.rates.rx_bps.is_some());
    // An hour of a busy 500 Mbit/s link while the router did not answer us; its uptime went
    // on by the same hour.
    router.add_traffic(225_000_000_000, 2_000_000_000);
    router.booted_at -= Duration::from_secs(3600);
    let after = poll(&mut router, 3630);
    assert_eq!(after.totals.rx, before.totals.rx + 225_000_000_000);
    assert_eq!(after.totals.tx, before.totals.tx + 2_000_000_000);
    assert_eq!(after.rates.rx_bps, None, "no rate over an hour's gap");
}

/// Sanity of the helper above: the router observation carries the boot on its own clocks.
#[test]
fn the_router_epoch_is_the_router_uptime() {
    use bandwidth2mqtt::config::{AsusSettings, Secret};
    use bandwidth2mqtt::emulators::asus::{AsusConfig, RouterState, app_get};
    use bandwidth2mqtt::model::Epoch;
    use bandwidth2mqtt::sources::asus::{AsusSource, POLL_HOOKS};
    let settings = AsusSettings {
        url: "http://127.0.0.1:9".into(),
        password: Some(Secret::new("unused")),
        ..AsusSettings::default()
    };
    let mut router = RouterState::new(AsusConfig::default());
    router.add_traffic(1, 1);
    let mut source = AsusSource::new("home", &settings);
    let obs = source
        .interpret_at(&app_get(&mut router, POLL_HOOKS), T0 * 1000, 0)
        .unwrap();
    let TrafficSample::Counter(c) = &obs[0].traffic[0].sample else {
        panic!("WAN counters");
    };
    let Some(Epoch::Uptime(boot)) = &c.epoch else {
        panic!("an uptime epoch: {:?}", c.epoch);
    };
    assert_eq!(boot.uptime_s, router.uptime());
    assert!(boot.device_boot_s.is_some(), "the router's own clock is used");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_in_the_middle_of_saves_never_loses_or_inflates_totals() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let host = speedless_host(dir.path());
    let mut rx = 1_000_000u64;
    host.set_counters(&[("eth0", rx, 0)]);
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n{}",
        broker.url(),
        host.config("1s")
    );
    let mut seen = Vec::new();
    for round in 0..8u64 {
        let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/titan"]).await;
        let mut bridge = BridgeProc::spawn(dir.path(), &config);
        let state = watcher
            .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(rx))
            .await;
        seen.push(num(&state, "rx_bytes").unwrap_or(0));
        // Traffic keeps flowing; the bridge dies at a different point of its save cycle.
        rx += 12_345;
        host.set_counters(&[("eth0", rx, 0)]);
        tokio::time::sleep(Duration::from_millis(137 * (round % 9))).await;
        bridge.kill9();
        let path = dir.path().join("data/state.json");
        if path.exists() {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                serde_json::from_str::<Value>(&text).is_ok(),
                "round {round}: the state file is whole"
            );
        }
    }
    never_down(&seen, "titan rx across kill -9");
    // Exact: every restart continues from the saved baseline, whatever the kill interrupted.
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/titan"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(rx))
        .await;
    assert!(!bridge.log().contains("unreadable"), "no state file was ever torn");
}

/// A tmpfs of 64 KiB as the state directory, filled up. Needs root (mount); skipped otherwise.
struct TinyDisk {
    path: std::path::PathBuf,
}

impl TinyDisk {
    fn mount(path: &std::path::Path) -> Option<Self> {
        std::fs::create_dir_all(path).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Self {
            path: path.to_path_buf(),
        })
    }

    /// Fills the file system until a write fails.
    fn fill(&self) {
        let block = vec![b'x'; 4096];
        let mut file = std::fs::File::create(self.path.join("filler")).unwrap();
        use std::io::Write;
        while file.write_all(&block).is_ok() && file.sync_all().is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for TinyDisk {
    /// Unmounts; lazily if something still holds a file in it, so no mount outlives the test.
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(&self.path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_keeps_the_bridge_up_and_saving_resumes() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = TinyDisk::mount(&dir.path().join("data")) else {
        return;
    };
    let host = speedless_host(dir.path());
    host.set_counters(&[("eth0", 5_000, 50)]);
    // A previous run's totals, then the disk fills up.
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n{}",
        broker.url(),
        host.config("1s")
    );
    disk.fill();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(5_000))
        .await;
    until("the save failure is reported", || {
        bridge.log().contains("Cannot save totals")
    })
    .await;
    host.set_counters(&[("eth0", 6_000, 60)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(6_000))
        .await;
    assert!(bridge.is_running(), "a full disk is no reason to stop");
    assert_eq!(
        watcher
            .latest("bandwidth2mqtt/bridge/state")
            .map(|m| m.payload)
            .as_deref(),
        Some("online")
    );
    assert_eq!(
        bridge.log().matches("Cannot save totals").count(),
        1,
        "reported once, not every poll"
    );

    disk.free();
    let state = dir.path().join("data/state.json");
    until("a save after space came back", || {
        std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some()
    })
    .await;
    host.set_counters(&[("eth0", 7_000, 70)]);
    watcher
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes") == Some(7_000))
        .await;
    bridge.terminate();
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/titan"]).await;
    let restarted = BridgeProc::spawn(dir.path(), &config);
    let titan = watcher
        .wait_json("bandwidth2mqtt/titan", |v| num(v, "rx_bytes").is_some())
        .await;
    assert_eq!(num(&titan, "rx_bytes"), Some(7_000), "totals survived the full disk");
    // The bridge holds its lock file in the tmpfs: stop it before unmounting.
    drop(restarted);
    drop(disk);
}
