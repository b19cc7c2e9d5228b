//! Shared test harness: a private mosquitto per test, an MQTT watcher, the bridge as a child
//! process or in-process on a manual clock or on an in-memory link and paused time (inmem.rs),
//! and fakes for vnstat and /proc + /sys.
#![allow(dead_code)]

pub mod broker;
pub mod fake_host;
pub mod fake_vnstat;
#[cfg(feature = "emulators")]
pub mod inmem;
pub mod inproc;
#[cfg(feature = "emulators")]
pub mod pki;
pub mod process;
pub mod python;
#[cfg(feature = "demo")]
pub mod screen;
pub mod stranger;
pub mod watcher;

use std::time::Duration;

/// Generous: CI machines are slow and busy; tests wait for conditions, never for time.
pub const WAIT: Duration = Duration::from_secs(20);

/// Path of a file under the repository's tests/fixtures.
pub fn fixture(rel: &str) -> String {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}
