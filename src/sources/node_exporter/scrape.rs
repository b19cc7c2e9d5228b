//! What one `/metrics` reply says about the server's network: per-interface byte counters
//! (`node_network_receive_bytes_total` / `node_network_transmit_bytes_total`, netdev
//! collector), its boot time (`node_boot_time_seconds`, stat collector) and its clock
//! (`node_time_seconds`, time collector). Everything else in the reply is skipped unread.

use std::collections::HashMap;

use super::text::{LineError, parse_line};

pub const RX: &str = "node_network_receive_bytes_total";
pub const TX: &str = "node_network_transmit_bytes_total";
pub const BOOT_TIME: &str = "node_boot_time_seconds";
pub const TIME: &str = "node_time_seconds";

/// One interface's counters as the exporter printed them (floats; see [`byte_count`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetDev {
    pub device: String,
    pub rx: Option<f64>,
    pub tx: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// In the order the reply lists them; each device once (a repeated sample is ignored).
    pub interfaces: Vec<NetDev>,
    pub boot_time_s: Option<f64>,
    pub time_s: Option<f64>,
    /// Lines of the `node_` families that are not samples, and the first one's number (1-based)
    /// and fault. Other families' lines are not read at all.
    pub bad_lines: usize,
    pub first_bad: Option<(usize, LineError)>,
}

/// Reads a reply. Never fails: what is missing is `None` or absent, and the caller decides.
pub fn read(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    // Device → its place in `interfaces`: a hostile reply may list very many.
    let mut index: HashMap<String, usize> = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        // Cheap filter first: a node_exporter reply is thousands of lines, four families matter.
        // A quoted name (`{"node_…"`) still reaches the parser.
        let start = line.trim_start_matches([' ', '\t']);
        if !(start.starts_with("node_") || start.starts_with('{')) {
            continue;
        }
        let sample = match parse_line(line) {
            Ok(Some(sample)) => sample,
            Ok(None) => continue,
            Err(e) => {
                scrape.bad_lines += 1;
                scrape.first_bad.get_or_insert((number + 1, e));
                continue;
            }
        };
        match sample.name.as_ref() {
            BOOT_TIME => {
                scrape.boot_time_s.get_or_insert(sample.value);
            }
            TIME => {
                scrape.time_s.get_or_insert(sample.value);
            }
            name @ (RX | TX) => {
                let Some(device) = sample.label("device") else {
                    continue;
                };
                let i = *index.entry(device.to_owned()).or_insert_with(|| {
                    scrape.interfaces.push(NetDev {
                        device: device.to_owned(),
                        rx: None,
                        tx: None,
                    });
                    scrape.interfaces.len() - 1
                });
                let entry = &mut scrape.interfaces[i];
                let slot = if name == RX { &mut entry.rx } else { &mut entry.tx };
                slot.get_or_insert(sample.value);
            }
            _ => {}
        }
    }
    scrape
}

/// A byte counter printed as a float: a finite, non-negative whole number that fits `u64`.
/// node_exporter prints the shortest form that reads back exactly (`3.99485594e+08`), and
/// every integer below 2^53 (8 PiB) is exact in a float.
pub fn byte_count(value: f64) -> Option<u64> {
    // 2^64 as a float; anything at or above it does not fit.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    (0.0..LIMIT).contains(&value).then(|| value.trunc() as u64)
}
