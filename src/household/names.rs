//! Device names (design.md "Names"): `[devices."<mac>"] name` or a server's configured name >
//! the router's nickname > the router's host name > vendor + the last three MAC bytes
//! ("Espressif 0E:55:17"); never empty, never an IP address, never a bare MAC or vendor.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::MacAddr;

/// What one source calls a device, ranked: lower `rank` is more trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub rank: u8,
    pub name: Option<String>,
    pub vendor: Option<String>,
}

/// Name candidates of one device, by source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    by_source: BTreeMap<String, Candidate>,
}

impl Names {
    /// One source may report a device in several observations of one poll (the ASUS client
    /// list and its Traffic Analyzer): what one of them leaves out does not erase the other.
    pub fn record(&mut self, source: &str, candidate: Candidate) {
        let slot = self.by_source.entry(source.to_owned()).or_insert_with(|| Candidate {
            rank: candidate.rank,
            name: None,
            vendor: None,
        });
        slot.rank = candidate.rank;
        if candidate.name.is_some() {
            slot.name = candidate.name;
        }
        if candidate.vendor.is_some() {
            slot.vendor = candidate.vendor;
        }
    }

    /// Every name any source gave.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.by_source.values().filter_map(|c| c.name.as_deref())
    }

    /// The name to show: `configured` wins; then the most trusted source's usable name; then
    /// vendor and MAC tail; then `fallback` (the device id).
    pub fn choose(&self, configured: Option<&str>, mac: Option<MacAddr>, fallback: &str) -> String {
        if let Some(name) = configured.map(str::trim).filter(|n| !n.is_empty()) {
            return name.to_owned();
        }
        let mut ranked: Vec<(&String, &Candidate)> = self.by_source.iter().collect();
        ranked.sort_by_key(|(source, c)| (c.rank, (*source).clone()));
        let vendor = ranked.iter().find_map(|(_, c)| c.vendor.as_deref().map(str::trim));
        if let Some(name) = ranked
            .iter()
            .filter_map(|(_, c)| c.name.as_deref().map(str::trim))
            .find(|n| usable(n, vendor))
        {
            return name.to_owned();
        }
        match (vendor.map(short_vendor).filter(|v| !v.is_empty()), mac) {
            (Some(v), Some(mac)) => format!("{v} {}", tail(mac)),
            (None, Some(mac)) => format!("Device {}", tail(mac)),
            (Some(v), None) => v,
            (None, None) => fallback.to_owned(),
        }
    }
}

/// A name that says something: not empty, not an address, not just the vendor.
fn usable(name: &str, vendor: Option<&str>) -> bool {
    !name.is_empty()
        && name.parse::<IpAddr>().is_err()
        && name.parse::<MacAddr>().is_err()
        && !vendor.is_some_and(|v| v.eq_ignore_ascii_case(name))
        && !matches!(name.to_ascii_lowercase().as_str(), "unknown" | "*" | "-")
}

/// "Espressif Inc." → "Espressif": the first word reads well in a device list.
fn short_vendor(vendor: &str) -> String {
    vendor
        .split([' ', ','])
        .find(|w| !w.is_empty())
        .unwrap_or_default()
        .to_owned()
}

/// "0E:55:17": the part of a MAC that tells two devices of one vendor apart.
fn tail(mac: MacAddr) -> String {
    let o = mac.octets();
    format!("{:02X}:{:02X}:{:02X}", o[3], o[4], o[5])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[(&str, u8, Option<&str>, Option<&str>)]) -> Names {
        let mut n = Names::default();
        for (source, rank, name, vendor) in list {
            n.record(
                source,
                Candidate {
                    rank: *rank,
                    name: name.map(str::to_owned),
                    vendor: vendor.map(str::to_owned),
                },
            );
        }
        n
    }

    #[test]
    fn configured_then_trusted_source_then_vendor_and_mac() {
        let mac: MacAddr = "24:0a:c4:0e:55:17".parse().unwrap();
        let n = names(&[
            ("mesh", 3, Some("deco-name"), None),
            ("home", 2, Some("asus-name"), None),
        ]);
        assert_eq!(n.choose(Some("Laptop"), Some(mac), "x"), "Laptop");
        assert_eq!(n.choose(None, Some(mac), "x"), "asus-name", "better rank wins");
        let n = names(&[("home", 2, Some("Espressif Inc."), Some("Espressif Inc."))]);
        assert_eq!(n.choose(None, Some(mac), "x"), "Espressif 0E:55:17");
        let n = names(&[
            ("home", 2, Some("24:0A:C4:0E:55:17"), None),
            ("mesh", 3, Some("192.168.1.9"), None),
        ]);
        assert_eq!(
            n.choose(None, Some(mac), "x"),
            "Device 0E:55:17",
            "never a MAC or an IP"
        );
        let mut n = names(&[("home", 2, Some("Pixel 8"), Some("Google"))]);
        n.record(
            "home",
            Candidate {
                rank: 2,
                name: None,
                vendor: None,
            },
        );
        assert_eq!(
            n.choose(None, Some(mac), "x"),
            "Pixel 8",
            "a second nameless entry erases nothing"
        );
        assert_eq!(Names::default().choose(None, None, "titan"), "titan");
        assert_eq!(
            Names::default().choose(Some("  "), None, "titan"),
            "titan",
            "never empty"
        );
    }
}
