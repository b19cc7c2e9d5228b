//! `bandwidth2mqtt demo`: the emulated household runs a few seconds against a private broker and
//! publishes the devices it should; the table renders from what was published; Ctrl-C stops the
//! binary cleanly; at `--speed N` rates read the simulated rate and today's totals grow N× as
//! fast as real time. The broker chain and credentials: `tests/demo_broker.rs`.
#![cfg(feature = "demo")]

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bandwidth2mqtt::demo::{self, BrokerKind, Demo, Options};
use support::WAIT;
use support::broker::Broker;
use support::screen::Screen;
use support::watcher::Watcher;

fn state_has_totals(v: &serde_json::Value) -> bool {
    v["rx_bytes"].as_u64().is_some_and(|n| n > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_publishes_the_household_and_renders_its_table() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(broker) = Broker::start() else { return };
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt_demo/#", "homeassistant/#"]).await;
    let demo = Demo::start(Options {
        speed: 60.0,
        mqtt_url: Some(broker.url()),
        mqtt_ca_file: None,
        lookup: None,
    })
    .await
    .expect("demo starts");
    assert_eq!(demo.broker.kind, BrokerKind::Given);
    assert_eq!(
        demo.watch_command(),
        format!(
            "mosquitto_sub -h 127.0.0.1 -p {} -t 'bandwidth2mqtt_demo/#' -v",
            broker.port
        )
    );

    // Servers from vnstat: their history plus what they moved since (exact counters).
    for (id, history) in [
        ("titan", 1_524_000_000_000u64),
        ("beast", 4_812_000_000_000),
        ("panda", 210_000_000_000),
    ] {
        let state = watcher
            .wait_json(&format!("bandwidth2mqtt_demo/{id}"), |v| {
                v["rx_bytes"].as_u64().is_some()
            })
            .await;
        assert!(state["rx_bytes"].as_u64().unwrap() >= history, "{id}: {state}");
        assert_eq!(state["online"], true, "{id}: {state}");
    }
    // The ASUS router (WAN), a Deco unit, Deco clients with estimated totals.
    watcher.wait_json("bandwidth2mqtt_demo/home", state_has_totals).await;
    watcher
        .wait_json("bandwidth2mqtt_demo/f0090dfa297c", |v| v["online"] == true)
        .await;
    let tv = watcher
        .wait_json("bandwidth2mqtt_demo/3c22fb100005", |v| v["rx_bytes"].is_u64())
        .await;
    assert_eq!(tv["estimated"], true, "{tv}");
    // Discovery for Home Assistant.
    // (device-based or per-entity, whichever the bridge uses; it may come after the states)
    let deadline = Instant::now() + WAIT;
    while watcher
        .topics_matching(|t| t.starts_with("homeassistant/") && t.contains("titan"))
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no discovery for titan");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The demo's own table, fed by its own subscription.
    let deadline = Instant::now() + WAIT;
    while !demo::household_published(&demo.rows()) {
        assert!(Instant::now() < deadline, "table never filled: {:?}", demo.rows());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table = demo::render(&demo.rows());
    for name in demo::EXPECTED_NAMES {
        assert!(table.lines().any(|l| l.starts_with(name)), "{name} missing:\n{table}");
    }
    let titan = table.lines().find(|l| l.starts_with("Titan")).unwrap();
    assert!(titan.contains("TiB") || titan.contains("GiB"), "{titan}");

    demo.stop().await.expect("clean stop");
    // The bridge said goodbye…
    let log = watcher.log();
    assert!(
        log.iter()
            .any(|m| m.topic == "bandwidth2mqtt_demo/bridge/state" && m.payload == "offline"),
        "no offline on stop"
    );
    // …and nothing of the demo stays retained on a broker it did not start. mosquitto sends the
    // retained messages of each subscription before acknowledging the next one, so once the
    // sentinel arrives, every retained demo message would have arrived before it.
    watcher.publish("sentinel/demo", "here", true).await;
    let late = Watcher::connect(
        &broker.host,
        broker.port,
        &["bandwidth2mqtt_demo/#", "homeassistant/#", "sentinel/#"],
    )
    .await;
    late.wait_payload("sentinel/demo", "here").await;
    let left: Vec<String> = late
        .log()
        .into_iter()
        .filter(|m| m.retain && !m.payload.is_empty() && m.topic != "sentinel/demo")
        .map(|m| m.topic)
        .collect();
    assert!(left.is_empty(), "retained demo messages left behind: {left:?}");
}

/// On a terminal each frame homes the cursor and clears the screen, then draws the intro and
/// the table again, so the table stays in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_mode_redraws_the_table_in_place() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(broker) = Broker::start() else { return };
    let screen = Screen::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let options = Options {
        speed: 1.0,
        mqtt_url: Some(broker.url()),
        mqtt_ca_file: None,
        lookup: None,
    };
    let mut out = screen.clone();
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { demo::run(options, shutdown, demo::Screen::Terminal, &mut out).await }
    });
    let frame_with_titan = |text: &str| {
        text.split("\x1b[H\x1b[2J")
            .skip(1)
            .any(|frame| frame.lines().any(|l| l.starts_with("Titan") && l.contains("TiB")))
    };
    let deadline = Instant::now() + WAIT;
    while !(frame_with_titan(&screen.text()) && screen.text().matches("\x1b[H\x1b[2J").count() >= 2) {
        assert!(
            Instant::now() < deadline,
            "no redrawn frame with Titan:\n{}",
            screen.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = screen.text();
    let last = text.rsplit("\x1b[H\x1b[2J").next().unwrap();
    assert!(
        last.starts_with("bandwidth2mqtt demo"),
        "each frame starts with the intro: {last}"
    );
    assert!(last.contains("mosquitto_sub -h 127.0.0.1"), "{last}");
    assert!(last.contains("device") && last.contains("total ↓/↑"), "{last}");
    shutdown.cancel();
    run.await.unwrap().expect("clean stop");
    assert!(screen.text().ends_with("Stopping the demo…\n"));
}

#[test]
fn binary_prints_the_watch_line_and_a_plain_table_then_stops_on_ctrl_c() {
    let Some(broker) = Broker::start() else { return };
    let mut child = Command::new(support::process::BIN)
        .args(["demo", "--speed", "30", "--mqtt-url", &broker.url()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let deadline = Instant::now() + WAIT + WAIT;
    while !(text.contains("mosquitto_sub") && text.lines().any(|l| l.starts_with("Titan") && l.contains("iB"))) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no table with Titan's totals; output:\n{text}");
        }
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(text.contains(&format!(
        "mosquitto_sub -h 127.0.0.1 -p {} -t 'bandwidth2mqtt_demo/#' -v",
        broker.port
    )));
    assert!(!text.contains('\x1b'), "no terminal escapes into a pipe:\n{text}");
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("demo did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

/// `--speed 10`: the bridge runs on the household's simulated clock, so a steady client's rate
/// reads its simulated rate (not 10×, as when only the emulators ran fast).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_speed_10_rates_read_the_simulated_rate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(broker) = Broker::start() else { return };
    const PRINTER: &str = "bandwidth2mqtt_demo/3c2af4510a11";
    let watcher = Watcher::connect(&broker.host, broker.port, &[PRINTER]).await;
    let demo = Demo::start(Options {
        speed: 10.0,
        mqtt_url: Some(broker.url()),
        mqtt_ca_file: None,
        lookup: None,
    })
    .await
    .expect("demo starts");
    // The printer downloads 40 000 bytes per simulated minute: 5 333 bit/s.
    let (_, printer_rx_min, _) = demo::household::ASUS_OWN
        .iter()
        .find(|(name, ..)| *name == "Printer")
        .map(|(n, _, rx, tx)| (*n, *rx, *tx))
        .expect("the printer");
    let expected = printer_rx_min as f64 * 8.0 / 60.0;
    let rates = |watcher: &Watcher| -> Vec<f64> {
        watcher
            .log()
            .iter()
            .filter(|m| m.topic == PRINTER)
            .filter_map(|m| serde_json::from_str::<serde_json::Value>(&m.payload).ok())
            .filter_map(|v| v["rx_bps"].as_f64())
            .collect()
    };
    let deadline = Instant::now() + WAIT;
    while rates(&watcher).len() < 8 {
        assert!(Instant::now() < deadline, "too few rates: {:?}", rates(&watcher));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    demo.stop().await.expect("clean stop");
    let seen = rates(&watcher);
    // Rounding to whole simulated seconds in the driver makes single windows jitter; their mean
    // is the rate over the whole span.
    let recent = &seen[seen.len() - 6..];
    let mean = recent.iter().sum::<f64>() / recent.len() as f64;
    eprintln!("printer rx_bps {seen:?}, mean of the last 6 {mean:.0}, expected {expected:.0}");
    assert!(
        (mean / expected - 1.0).abs() < 0.05,
        "mean {mean:.0} bit/s, expected {expected:.0}: {seen:?}"
    );
}

/// `--speed 60`: an hour a minute. The printer downloads 40 000 bytes per simulated minute, so
/// its `rx_today` must grow by about 40 000 bytes per real second (not 667, as at real time):
/// the bridge's day totals run on the household's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_speed_60_today_grows_60_times_faster_than_real_time() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(broker) = Broker::start() else { return };
    const PRINTER: &str = "bandwidth2mqtt_demo/3c2af4510a11";
    const SPEED: f64 = 60.0;
    let watcher = Watcher::connect(&broker.host, broker.port, &[PRINTER]).await;
    let demo = Demo::start(Options {
        speed: SPEED,
        mqtt_url: Some(broker.url()),
        mqtt_ca_file: None,
        lookup: None,
    })
    .await
    .expect("demo starts");
    let per_simulated_minute = demo::household::ASUS_OWN
        .iter()
        .find(|(name, ..)| *name == "Printer")
        .map(|(_, _, rx, _)| *rx)
        .expect("the printer");
    let expected = per_simulated_minute as f64 / 60.0 * SPEED;
    // (arrival, rx_today) of each state; a simulated midnight may reset the day: only the run
    // since the last reset counts.
    let samples = |watcher: &Watcher| -> Vec<(Instant, u64)> {
        let mut run: Vec<(Instant, u64)> = Vec::new();
        for m in watcher.log().iter().filter(|m| m.topic == PRINTER) {
            let Some(today) = serde_json::from_str::<serde_json::Value>(&m.payload)
                .ok()
                .and_then(|v| v["rx_today"].as_u64())
            else {
                continue;
            };
            if run.last().is_some_and(|(_, last)| today < *last) {
                run.clear();
            }
            run.push((m.at, today));
        }
        // The first poll sets the baseline and the second catches up on the start-up: steady
        // growth starts after them.
        run.split_off(run.len().min(2))
    };
    let span = |s: &[(Instant, u64)]| match (s.first(), s.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => Duration::ZERO,
    };
    // At least 4 s of real time between the first and last state of one day.
    let deadline = Instant::now() + WAIT + WAIT;
    while span(&samples(&watcher)) < Duration::from_secs(4) {
        assert!(Instant::now() < deadline, "too few states: {:?}", samples(&watcher));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    demo.stop().await.expect("clean stop");
    let seen = samples(&watcher);
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    let rate = (last.1 - first.1) as f64 / (last.0 - first.0).as_secs_f64();
    eprintln!("printer rx_today grew {rate:.0} B per real second; expected {expected:.0}");
    // Message latency on a busy machine blurs the real-time span a little; real time would be
    // 60× off.
    assert!(
        (rate / expected - 1.0).abs() < 0.15,
        "{rate:.0} B/s, expected {expected:.0}: {seen:?}"
    );
}

/// The Deco's main unit shows its traffic from the router's first poll (issue 16 §3): the ASUS
/// has been up for days and counts the Deco's uplink, so the unit's totals come with the first
/// poll that reads them, its rates with the second, and the router's hours from before the first
/// reading are not counted on top of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_deco_unit_shows_its_traffic_from_the_first_router_poll() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(broker) = Broker::start() else { return };
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt_demo/#"]).await;
    let demo = Demo::start(Options {
        speed: 60.0,
        mqtt_url: Some(broker.url()),
        mqtt_ca_file: None,
        lookup: None,
    })
    .await
    .expect("demo starts");
    const ROUTER: &str = "bandwidth2mqtt_demo/home";
    const NODE: &str = "bandwidth2mqtt_demo/f0090dfa297c";
    // Four router polls: each publishes the router's state (with its WAN totals).
    let deadline = Instant::now() + WAIT;
    while watcher.count(ROUTER) < 4 {
        assert!(Instant::now() < deadline, "fewer than 4 router polls");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    demo.stop().await.expect("clean stop");
    let json = |m: &support::watcher::Msg| serde_json::from_str::<serde_json::Value>(&m.payload).ok();
    let log = watcher.log();
    let router_polls: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, m)| m.topic == ROUTER && json(m).is_some_and(|v| v["rx_bytes"].is_u64()))
        .map(|(i, _)| i)
        .collect();
    let node: Vec<(usize, serde_json::Value)> = log
        .iter()
        .enumerate()
        .filter(|(_, m)| m.topic == NODE)
        .filter_map(|(i, m)| Some((i, json(m)?)))
        .collect();
    let node_before = |poll: usize| {
        node.iter()
            .rev()
            .find(|(i, _)| *i < router_polls[poll])
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // Published together with the router's first poll, before its second one.
    let first = node_before(1);
    let hourly = bandwidth2mqtt::demo::household::DECO_WAN_HOURLY;
    assert!(
        first["rx_bytes"].as_u64().is_some_and(|b| b >= hourly.0)
            && first["tx_bytes"].as_u64().is_some_and(|b| b >= hourly.1),
        "the unit's uplink since the router booted, at the first poll: {first}"
    );
    // Rates from the second poll on, like every counter's.
    let third = node_before(3);
    assert!(third["rx_bps"].is_u64() && third["tx_bps"].is_u64(), "{third}");
    // Nothing of the router's hours before the first reading counted again.
    let (start, end) = (first["rx_bytes"].as_u64().unwrap(), third["rx_bytes"].as_u64().unwrap());
    assert!(end >= start && end - start < hourly.0, "{start} → {end}");
    // What the router held before the bridge's first reading is its total, not today's.
    assert!(third["rx_today"].as_u64().is_some_and(|t| t < hourly.0), "{third}");
}
