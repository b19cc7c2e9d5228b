//! Reconciliation against ground truth: a simulated day of the seed household (Deco emulator
//! over HTTP, the ASUS Traffic Analyzer database on the same clock, vnstat servers), raw Deco
//! estimates vs the totals reconciled with the uplink the ASUS counts (src/demo/accuracy.rs).
//! `cargo run --example reconcile_accuracy` prints the table.
#![cfg(feature = "demo")]

use std::io::Write;
use std::sync::{Arc, Mutex};

use bandwidth2mqtt::config::SpeedUnit;
use bandwidth2mqtt::demo::accuracy::{DayOptions, DayReport, simulate_day};

/// Runs a simulated day on this thread, with every log line it writes.
fn run(options: DayOptions) -> (DayReport, String) {
    let log = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Capture(sink.clone()))
        .finish();
    let report = tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(simulate_day(options)).unwrap()
    });
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    (report, text)
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_day_with_an_outage_reconciled_against_the_uplink() {
    let (report, log) = run(DayOptions::default());
    println!("{}", report.table());
    assert!(
        report.clients.len() >= 7,
        "every Deco client measured: {:?}",
        report.clients
    );
    assert_eq!(
        report.sources,
        ["reconciled:mesh"],
        "the headline says it is reconciled"
    );
    let (raw, reconciled) = report.total_error();
    assert!(reconciled.abs() <= 0.02, "total within 2 %: {reconciled}");
    assert!(
        reconciled.abs() < raw.abs(),
        "better than raw ({raw}), which lost the outage: {reconciled}"
    );
    let (worst_raw, worst_reconciled) = report.worst_error();
    // Scaling hours removes what clients share, not a phone's own sampling error: the worst
    // client stays about as far off as raw (README "Reconciliation").
    assert!(
        worst_reconciled <= worst_raw + 0.02,
        "worst client {worst_reconciled} vs raw {worst_raw}"
    );
    // Every client totals at least what it moved outside the outage, within its own error.
    for c in &report.clients {
        let (t, k) = (c.truth.0 + c.truth.1, c.reconciled.0 + c.reconciled.1);
        if t >= 10_000_000 {
            assert!((k as f64 / t as f64 - 1.0).abs() < 0.2, "{}: {k} vs {t}", c.name);
        }
    }
    assert!(!log.contains("speed_unit"), "the right unit raises nothing: {log}");
}

#[test]
fn a_wrong_speed_unit_is_named_once_and_reconciled_anyway() {
    let options = DayOptions {
        hours: 8,
        outage: None,
        live_uplink: false,
        // The firmware sends kB/s; the bridge reads kbit/s (the default): raw is 8× too low.
        true_unit: SpeedUnit::KbytePerS,
        ..DayOptions::default()
    };
    let (report, log) = run(options);
    println!("{}\n{log}", report.table());
    let (raw, reconciled) = report.total_error();
    assert!(raw < -0.8, "raw is an eighth: {raw}");
    assert!(reconciled.abs() <= 0.02, "reconciled is right anyway: {reconciled}");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("speed_unit")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {log}");
    assert!(
        warnings[0].contains("kbyte_per_s") && warnings[0].contains("source=mesh"),
        "{}",
        warnings[0]
    );
}
