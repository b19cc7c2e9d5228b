//! How close are the Deco's estimated totals to what really crossed the network?
//!
//! Runs the emulated home mesh on a simulated clock for a day (default) of bursty traffic,
//! polls it every 30 s (± a little jitter, like a real scheduler) through the real Deco source
//! over HTTP on 127.0.0.1, integrates the rates with the real ledger, and compares each
//! client's estimated totals with the emulator's ground truth over the same span.
//!
//! `cargo bench --bench deco_accuracy [-- --days N --window SECS --seed N --interval SECS]`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bandwidth2mqtt::accounting::Ledger;
use bandwidth2mqtt::config::{DecoSettings, Secret};
use bandwidth2mqtt::emulators::deco::{Clock, DecoEmulator, EmulatorConfig};
use bandwidth2mqtt::model::{DeviceId, MacAddr};
use bandwidth2mqtt::sources::deco::DecoSource;
use bandwidth2mqtt::sources::deco::names::decode_name;
use bandwidth2mqtt::sources::{Source, SourceKind};

const PASSWORD: &str = "benchmark-owner";
/// 2026-01-01 00:00 UTC: the day starts at midnight.
const START_MS: i64 = 1_767_225_600_000;

struct Args {
    days: f64,
    window_s: u64,
    seed: u64,
    interval_s: u64,
}

fn args() -> Args {
    let mut out = Args {
        days: 1.0,
        window_s: 2,
        seed: 1,
        interval_s: 30,
    };
    let list: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        list.iter()
            .position(|a| a == name)
            .and_then(|i| list.get(i + 1))
            .cloned()
    };
    if let Some(v) = value("--days").and_then(|v| v.parse().ok()) {
        out.days = v;
    }
    if let Some(v) = value("--window").and_then(|v| v.parse().ok()) {
        out.window_s = v;
    }
    if let Some(v) = value("--seed").and_then(|v| v.parse().ok()) {
        out.seed = v;
    }
    if let Some(v) = value("--interval").and_then(|v| v.parse().ok()) {
        out.interval_s = v;
    }
    out
}

fn percent(estimate: u64, truth: u64) -> String {
    if truth == 0 {
        return if estimate == 0 { "exact".into() } else { "n/a".into() };
    }
    format!("{:+.2} %", (estimate as f64 - truth as f64) / truth as f64 * 100.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = args();
    let clock = Clock::simulated(START_MS);
    let mut config = EmulatorConfig::home(PASSWORD, clock.clone());
    config.rate_window = Duration::from_secs(args.window_s);
    config.seed = args.seed;
    let names: BTreeMap<MacAddr, String> = config
        .clients
        .iter()
        .map(|c| {
            let name = decode_name(&c.name_field).unwrap_or_else(|| c.mac.to_string());
            (c.mac, name)
        })
        .collect();
    let emulator = DecoEmulator::new(config).expect("emulator keys");
    let server = emulator.serve(0, false).await.expect("serve on 127.0.0.1");
    let interval = Duration::from_secs(args.interval_s);
    let settings = DecoSettings {
        url: server.url(),
        password: Some(Secret::new(PASSWORD)),
        interval,
        timeout: Duration::from_secs(10),
        ..DecoSettings::default()
    };
    let mut source = DecoSource::with_clock("mesh", &settings, clock.bridge_clock());
    let mut ledger = Ledger::new(vec![SourceKind::Deco.feed("mesh")], Default::default(), BTreeMap::new());

    let polls = (args.days * 86_400.0 / args.interval_s as f64) as u64;
    let wall = Instant::now();
    let mut truth_start = None;
    // Deterministic jitter of up to ±1.5 s around each interval.
    let mut lcg: u64 = 0x2545_f491_4f6c_dd1d ^ args.seed;
    for _ in 0..polls {
        lcg = lcg
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let jitter_ms = (lcg >> 33) % 3001;
        clock.advance(interval - Duration::from_millis(1500) + Duration::from_millis(jitter_ms));
        let obs = source.poll().await.expect("poll");
        ledger.apply("mesh", obs, clock.now_ms());
        if truth_start.is_none() {
            truth_start = Some(emulator.ground_truth());
        }
    }
    let truth_end = emulator.ground_truth();
    let truth_start = truth_start.unwrap_or_default();

    println!(
        "Deco accuracy: {:.2} simulated day(s), {} polls every {} s ± 1.5 s, rate window {} s, seed {} ({:.1} s wall)",
        args.days,
        polls,
        args.interval_s,
        args.window_s,
        args.seed,
        wall.elapsed().as_secs_f64()
    );
    println!(
        "{:<20} {:>12} {:>12} {:>9} {:>12} {:>12} {:>9}",
        "client", "rx true MB", "rx est MB", "rx err", "tx true MB", "tx est MB", "tx err"
    );
    let (mut all_true, mut all_est) = (0u64, 0u64);
    let mut worst: f64 = 0.0;
    for (mac, end) in &truth_end {
        let start = truth_start.get(mac).copied().unwrap_or((0, 0));
        let truth = (end.0 - start.0, end.1 - start.1);
        let Some(device) = ledger.device(&DeviceId::from_mac(*mac)) else {
            println!("{:<20} (not observed: no MAC in the list)", names[mac]);
            continue;
        };
        let est = (device.totals.rx, device.totals.tx);
        println!(
            "{:<20} {:>12} {:>12} {:>9} {:>12} {:>12} {:>9}",
            names[mac],
            mb(truth.0),
            mb(est.0),
            percent(est.0, truth.0),
            mb(truth.1),
            mb(est.1),
            percent(est.1, truth.1)
        );
        let both_true = truth.0 + truth.1;
        if both_true > 10_000_000 {
            let e = (est.0 + est.1) as f64 / both_true as f64 - 1.0;
            worst = worst.max(e.abs());
        }
        all_true += both_true;
        all_est += est.0 + est.1;
    }
    println!(
        "overall: {} MB true, {} MB estimated, error {}; worst client above 10 MB: {:.2} %",
        mb(all_true),
        mb(all_est),
        percent(all_est, all_true),
        worst * 100.0
    );
    source.close().await;
    drop(server);
}
