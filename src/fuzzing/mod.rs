//! Fuzz entry points: one function per parser, taking raw bytes from outside the process.
//!
//! The cargo-fuzz targets in `fuzz/` and the CI smoke (`tests/fuzz_smoke.rs`) call exactly
//! these functions, so a crash found by either reproduces in the other. Each function must
//! never panic on any input; where a parser has an invariant beyond "no panic" (a round trip,
//! totals that never go down) the function asserts it, and a failed assertion is a bug.
//! Build with overflow checks on (the test profile and `cargo fuzz` both do): an overflow
//! that would wrap silently in release is a crash here.

mod asus;
mod deco;
mod host;
mod state;

pub use asus::{asus_appget, asus_hookjson, asus_js, asus_live, asus_traffic_analyzer, asus_uptime};
pub use deco::{deco_envelope, deco_json};
pub use host::{proc_net_dev, vnstat_json};
pub use state::{channel_sequence, config_toml, state_roundtrip};

/// One fuzz entry point: raw bytes in, a panic on any bug.
pub type Entry = fn(&[u8]);

/// Every target by name, for the smoke test (names match `fuzz/fuzz_targets/`).
pub const TARGETS: &[(&str, Entry)] = &[
    ("vnstat_json", vnstat_json),
    ("proc_net_dev", proc_net_dev),
    ("asus_hookjson", asus_hookjson),
    ("asus_appget", asus_appget),
    ("asus_js", asus_js),
    ("asus_uptime", asus_uptime),
    ("asus_traffic_analyzer", asus_traffic_analyzer),
    ("asus_live", asus_live),
    ("deco_envelope", deco_envelope),
    ("deco_json", deco_json),
    ("config_toml", config_toml),
    ("state_roundtrip", state_roundtrip),
    ("channel_sequence", channel_sequence),
];

/// Parsers read text; invalid UTF-8 reaches them the way the sources decode it.
fn lossy(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}
