//! Runs the Deco emulator (the home mesh, real clock) on 127.0.0.1 until Ctrl-C, for trying
//! clients against it by hand: `cargo run --example deco_emulator -- [port] [password]`.

use bandwidth2mqtt::emulators::deco::{Clock, DecoEmulator, EmulatorConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let password = args.next().unwrap_or_else(|| "emulated-owner".into());
    let emulator = DecoEmulator::new(EmulatorConfig::home(&password, Clock::Real))?;
    let server = emulator.serve(port, false).await?;
    println!("Deco emulator at {} (owner password: {password})", server.url());
    tokio::signal::ctrl_c().await?;
    let stats = emulator.stats();
    println!(
        "logins: {} ok of {} attempts; logouts: {}; calls: {:?}",
        stats.logins_ok, stats.login_attempts, stats.logouts, stats.calls
    );
    Ok(())
}
