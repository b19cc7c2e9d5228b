//! Runs the ASUS emulator on 127.0.0.1 until Ctrl-C, printing its URL; for poking at it with
//! curl or a client library. `cargo run --example asus_emulator [port]`.

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let emulator = AsusEmulator::start(AsusConfig::default(), false).await?;
    emulator.with(|s| s.add_traffic(12_345_678_901, 987_654_321));
    println!("{}", emulator.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
