//! Interface names as entity id fragments (`unique_id` `<base>_<device>_<iface>_<key>`).
//!
//! Interface names may contain anything but `/` and whitespace, while ids are `[a-z0-9_]`. The
//! plain slug (`br-lan` → `br_lan`) is lossy: `eth-0` and `eth.0`, or `a/b` and `a+b`, slug
//! alike, and two entities with one `unique_id` silently became one. A name that shares its
//! slug with another interface of the device gets a suffix from a hash of its exact spelling,
//! so each keeps an id of its own that depends only on its name; every other name keeps the
//! plain slug it always had.

use std::collections::{BTreeMap, BTreeSet};

/// The id fragment of each interface of one device, collision-free.
pub fn interface_keys<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, String> {
    let names: BTreeSet<&str> = names.into_iter().collect();
    let mut by_slug: BTreeMap<String, usize> = BTreeMap::new();
    for name in &names {
        *by_slug.entry(slug(name)).or_default() += 1;
    }
    names
        .into_iter()
        .map(|name| {
            let plain = slug(name);
            let key = if by_slug.get(&plain).copied().unwrap_or(0) > 1 && plain != name {
                format!("{plain}_{:06x}", fnv1a(name.as_bytes()) & 0xff_ffff)
            } else {
                plain
            };
            (name, key)
        })
        .collect()
}

/// `[a-z0-9_]` only: lower case, anything else becomes `_`.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// FNV-1a, 64 bit: stable across versions and platforms (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 8 item 6: names that slug alike shared one unique_id (18 interfaces → 15 entities).
    #[test]
    fn names_that_slug_alike_get_ids_of_their_own() {
        let names = [
            "a/b", "a+b", "eth-0", "eth.0", "eth_0", "br-lan", "eth0.100", "ETH1", "eth1",
        ];
        let keys = interface_keys(names);
        let distinct: BTreeSet<&String> = keys.values().collect();
        assert_eq!(distinct.len(), names.len(), "{keys:?}");
        for key in keys.values() {
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
        // Names nothing collides with keep the ids they always had.
        assert_eq!(keys["br-lan"], "br_lan");
        assert_eq!(keys["eth0.100"], "eth0_100");
        assert_eq!(keys["eth_0"], "eth_0", "the exact spelling keeps the plain slug");
        assert_eq!(keys["eth1"], "eth1");
        // Stable: the same name always gets the same id.
        assert_eq!(interface_keys(["eth-0", "eth.0"])["eth-0"], keys["eth-0"]);
    }
}

#[cfg(test)]
mod end_to_end {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde_json::Value;

    use crate::accounting::{Feed, Ledger, PersistedState};
    use crate::config::MqttSettings;
    use crate::model::{CounterSample, DeviceId, DeviceKind, Observation, TrafficReading, TrafficSample, WrapRule};
    use crate::publish::state::{StateClock, device_state};
    use crate::publish::{Context, Topics};

    fn server(names: &[&str]) -> Ledger {
        let feeds = vec![Feed {
            name: "beast".into(),
            total_rank: 0,
            rate_rank: 0,
        }];
        let mut ledger = Ledger::new(feeds, PersistedState::default(), BTreeMap::new());
        let mut obs = Observation::new(DeviceId::new("beast").unwrap(), DeviceKind::Server);
        obs.online = Some(true);
        for (i, name) in names.iter().enumerate() {
            obs.traffic.push(TrafficReading {
                interface: Some((*name).to_owned()),
                sample: TrafficSample::Counter(CounterSample {
                    rx: 1000 * (i as u64 + 1),
                    tx: 10,
                    epoch: Some("db".into()),
                    at_ms: 0,
                    wrap: WrapRule::Never,
                    rate_window: Duration::from_secs(600),
                }),
            });
        }
        ledger.apply("beast", vec![obs], 0);
        ledger
    }

    // Issue 8 item 6: an interface named like a state key replaced the device's value.
    #[test]
    fn interfaces_named_like_state_keys_do_not_overwrite_them() {
        let ledger = server(&["rx_bytes", "online", "estimated", "tx_bps"]);
        let device = ledger.device(&DeviceId::new("beast").unwrap()).unwrap();
        let state = device_state(
            device,
            StateClock {
                now_ms: 0,
                consider_home_ms: 0,
                sources_down_ms: None,
            },
        );
        assert_eq!(state["rx_bytes"], Value::from(10_000u64), "{state}");
        assert_eq!(state["online"], Value::Bool(true));
        assert_eq!(state["estimated"], Value::Bool(false));
        assert_eq!(state["interfaces"]["rx_bytes"]["rx_bytes"], Value::from(1000u64));
        assert_eq!(state["interfaces"]["online"]["rx_bytes"], Value::from(2000u64));
    }

    // Issue 8 item 6: 18 interfaces became 15 entities.
    #[test]
    fn every_interface_has_entities_of_its_own() {
        let names = [
            "eth0", "eth1", "a/b", "a+b", "eth-0", "eth.0", "eth_0", "br-lan", "br.lan", "wlan0", "WLAN0", "wg0",
            "tun0", "vlan.10", "vlan-10", "x@y", "x#y", "lo",
        ];
        let ledger = server(&names);
        let device = ledger.device(&DeviceId::new("beast").unwrap()).unwrap();
        let topics = Topics::new(&MqttSettings::default());
        let ctx = Context {
            topics: &topics,
            version: "test",
        };
        let entities = ctx.device_entities(device);
        let ids: std::collections::BTreeSet<String> = entities
            .iter()
            .filter_map(|e| e.payload["unique_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(ids.len(), entities.len(), "every unique_id is unique");
        let bytes = entities
            .iter()
            .filter(|e| {
                e.payload["value_template"]
                    .as_str()
                    .is_some_and(|t| t.contains("interfaces["))
            })
            .filter(|e| {
                e.payload["value_template"]
                    .as_str()
                    .is_some_and(|t| t.contains(".rx_bytes / "))
            })
            .count();
        assert_eq!(bytes, names.len());
    }
}
