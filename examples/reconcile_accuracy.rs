//! Prints how close the Deco clients' totals are to the truth over a simulated day, raw and
//! reconciled with the uplink the ASUS counts (the table in README, "Reconciliation").
//!
//! `cargo run --release --example reconcile_accuracy [-- --seed N --hours N --no-outage --no-live]`

use bandwidth2mqtt::demo::accuracy::{DayOptions, simulate_day};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut options = DayOptions::default();
    if let Some(seed) = value("--seed") {
        options.seed = seed;
    }
    if let Some(hours) = value("--hours") {
        options.hours = i64::try_from(hours)?;
    }
    if args.iter().any(|a| a == "--no-outage") {
        options.outage = None;
    }
    if args.iter().any(|a| a == "--no-live") {
        options.live_uplink = false;
    }
    let started = std::time::Instant::now();
    let report = simulate_day(options).await?;
    println!(
        "{} simulated hours, Deco polled every {:?} ± 1.5 s, outage {:?}, seed {} ({:.1} s wall)\n",
        report.options.hours,
        report.options.interval,
        report.options.outage.map(|(from, len)| (from / 60_000, len / 60_000)),
        report.options.seed,
        started.elapsed().as_secs_f64()
    );
    print!("{}", report.table());
    Ok(())
}
