//! Serves one router emulator with `n` clients on 127.0.0.1 for `bench/run.py`:
//! `cargo run --release --example bench_emulator -- <asus|deco> <clients>`. Prints the URL on
//! the first line; every line read on stdin prints the requests served so far as one JSON
//! object (`{"total": n, "by_path": {...}}`), so the bench can count requests per poll.

use std::collections::BTreeMap;
use std::io::BufRead;

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator};
use bandwidth2mqtt::emulators::deco::{ClientSpec, Clock, DecoEmulator, EmulatorConfig, Profile, home};
use bandwidth2mqtt::model::MacAddr;

pub const DECO_PASSWORD: &str = "bench-Owner-pw1";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "deco".into());
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(250);
    let counts: Box<dyn Fn() -> BTreeMap<String, u64> + Send> = match kind.as_str() {
        "asus" => {
            // Adaptive QoS on (live per-client counters, one request per poll); the Traffic
            // Analyzer off: its hourly per-client refresh (spread over 20 minutes of every
            // hour) is not the steady poll the bench compares with the peer. Every online
            // client sends bytes every router minute, and each poll (`appGet.cgi`) moves the
            // router's clock a minute: every counter moves at every poll, as a real router's do.
            let config = AsusConfig {
                clients: n,
                live_traffic: true,
                traffic_monitor: true,
                traffic_analyzer: false,
                clock_step: Some(60),
                ..AsusConfig::default()
            };
            let emu = AsusEmulator::start(config, false).await?;
            emu.with(|s| s.add_traffic(12_345_678_901, 987_654_321));
            println!("{}", emu.url());
            Box::new(move || emu.with(|s| s.stats.requests.clone()))
        }
        _ => {
            let (nodes, _) = home();
            let clients = (0..n)
                .map(|i| {
                    let mac = MacAddr::new([0x02, 0x10, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
                    let mut c = ClientSpec::new(mac, &format!("Client {i}"), i % 2, "band5", Profile::Laptop);
                    c.ip = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
                    c
                })
                .collect();
            let emu = DecoEmulator::new(EmulatorConfig::new(DECO_PASSWORD, nodes, clients, Clock::Real))?;
            let server = emu.serve(0, false).await?;
            println!("{}", server.url());
            Box::new(move || {
                let _keep = &server;
                emu.stats().calls
            })
        }
    };
    let stdin = tokio::task::spawn_blocking(move || {
        for line in std::io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
            let by_path = counts();
            let total: u64 = by_path.values().sum();
            println!("{}", serde_json::json!({"total": total, "by_path": by_path}));
        }
    });
    stdin.await?;
    Ok(())
}
