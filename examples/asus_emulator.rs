//! Runs the ASUS emulator on 127.0.0.1 until Ctrl-C, printing its URL; for poking at it with
//! curl or a client library. `cargo run --example asus_emulator [clock speed]`: with a speed
//! (e.g. 360 = an hour every 10 s), clients generate traffic into the Traffic Analyzer.

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let speed: Option<f64> = std::env::args().nth(1).and_then(|s| s.parse().ok());
    let config = AsusConfig {
        live_traffic: speed.is_some(),
        clock_speed: speed.unwrap_or(1.0),
        ..AsusConfig::default()
    };
    let emulator = AsusEmulator::start(config, false).await?;
    emulator.with(|s| s.add_traffic(12_345_678_901, 987_654_321));
    println!("{}", emulator.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
