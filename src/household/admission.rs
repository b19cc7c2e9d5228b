//! Which network clients Home Assistant sees: `[bridge] include`/`exclude` (by MAC or name)
//! and `random_macs` for locally administered ("private", randomised) MACs: `track` them like
//! any device, `ignore` them, or `group` them into one "Private-address devices" device that
//! sums their traffic. Only network clients are subject to this; servers, routers and mesh
//! nodes are the network itself. A MAC named under `[devices]` or listed in `include` is always
//! tracked: the user asked for it.

use std::collections::BTreeSet;

use crate::config::{RandomMacs, Settings};
use crate::model::{DeviceId, MacAddr, Observation};

/// The device every grouped private-address client is counted in.
pub const GROUP_ID: &str = "private_devices";
pub const GROUP_NAME: &str = "Private-address devices";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Track,
    Drop,
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    Mac(MacAddr),
    /// Lower case.
    Name(String),
}

impl Matcher {
    fn parse(entry: &str) -> Self {
        match entry.parse::<MacAddr>() {
            Ok(mac) => Self::Mac(mac),
            Err(_) => Self::Name(entry.trim().to_lowercase()),
        }
    }

    fn matches(&self, mac: Option<MacAddr>, names: &[&str]) -> bool {
        match self {
            Self::Mac(m) => mac == Some(*m),
            Self::Name(n) => names.iter().any(|name| name.trim().to_lowercase() == *n),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    random: RandomMacs,
    include: Vec<Matcher>,
    exclude: Vec<Matcher>,
    /// MACs with a `[devices]` entry.
    configured: BTreeSet<MacAddr>,
}

impl Rules {
    pub fn from_settings(settings: &Settings) -> Self {
        let bridge = &settings.bridge;
        Self {
            random: bridge.random_macs,
            include: bridge.include.iter().map(|e| Matcher::parse(e)).collect(),
            exclude: bridge.exclude.iter().map(|e| Matcher::parse(e)).collect(),
            configured: settings.devices.keys().filter_map(|m| m.parse().ok()).collect(),
        }
    }

    /// What to do with a network client known by `mac` and called `names` (by any source, by
    /// the config or by a rename).
    pub fn admit(&self, mac: Option<MacAddr>, names: &[&str]) -> Admission {
        if self.exclude.iter().any(|m| m.matches(mac, names)) {
            return Admission::Drop;
        }
        let included = self.include.iter().any(|m| m.matches(mac, names));
        if !self.include.is_empty() && !included {
            return Admission::Drop;
        }
        let chosen = included || mac.is_some_and(|m| self.configured.contains(&m));
        match mac {
            Some(m) if m.is_locally_administered() && !chosen => match self.random {
                RandomMacs::Track => Admission::Track,
                RandomMacs::Ignore => Admission::Drop,
                RandomMacs::Group => Admission::Group,
            },
            _ => Admission::Track,
        }
    }
}

impl super::Household {
    /// Whether a network client may be published, as itself or in the private-address group.
    pub(super) fn admit(&self, obs: &Observation) -> Admission {
        if self.kept_out.contains(&obs.device) {
            return Admission::Drop;
        }
        let mac = obs
            .info
            .macs
            .first()
            .copied()
            .or_else(|| obs.device.as_str().parse().ok());
        let mut names: Vec<&str> = obs.info.name.as_deref().into_iter().collect();
        names.extend(mac.and_then(|m| self.configured_names.get(&m)).map(String::as_str));
        names.extend(self.renamed().get(&obs.device).map(String::as_str));
        if let Some(place) = self.placement.get(&obs.device) {
            names.extend(place.names.all());
        }
        self.admission.admit(mac, &names)
    }

    /// Whether the rules keep this client out by its MAC alone, whatever it is called.
    pub(super) fn dropped_by_mac(&self, obs: &Observation) -> bool {
        let mac = obs
            .info
            .macs
            .first()
            .copied()
            .or_else(|| obs.device.as_str().parse().ok());
        mac.is_some() && self.admission.admit(mac, &[]) == Admission::Drop
    }

    /// A device the rules keep out: if it was ever published (or is in the state file), the
    /// bridge removes it from HA and the state file.
    pub(super) fn evict(&mut self, id: &DeviceId) {
        if self.ledger.device(id).is_some() || self.ledger.totals_of(id).is_some() {
            self.evicted.insert(id.clone());
        }
    }
}

/// A private-address client's observation, turned into a part of the group device: its
/// traffic under an interface named by its MAC (each keeps its own counter baseline, the group
/// total is their sum), and nothing that describes one phone (name, IP, band, signal).
pub fn into_group(mut obs: Observation) -> Observation {
    let part = obs.device.as_str().to_owned();
    for reading in &mut obs.traffic {
        reading.interface = Some(match &reading.interface {
            Some(iface) => format!("{part}_{iface}"),
            None => part.clone(),
        });
    }
    obs.device = DeviceId::new(GROUP_ID).unwrap_or_else(|_| DeviceId::slugify_or_unnamed(GROUP_ID));
    obs.info = crate::model::DeviceInfo {
        name: Some(GROUP_NAME.to_owned()),
        ..Default::default()
    };
    obs.metrics.clear();
    obs.labels.clear();
    obs.attributes.clear();
    obs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceKind;

    const PRIVATE: &str = "da:a1:19:00:00:01";
    const GLOBAL: &str = "3c:22:fb:10:00:01";

    fn rules(toml_text: &str) -> Rules {
        Rules::from_settings(&toml::from_str(toml_text).unwrap())
    }

    fn mac(s: &str) -> Option<MacAddr> {
        s.parse().ok()
    }

    #[test]
    fn random_macs_follow_the_setting_unless_the_user_named_them() {
        let r = rules("");
        assert_eq!(r.admit(mac(PRIVATE), &[]), Admission::Track, "track is the default");
        let r = rules("[bridge]\nrandom_macs = \"ignore\"");
        assert_eq!(r.admit(mac(PRIVATE), &["iPhone"]), Admission::Drop);
        assert_eq!(r.admit(mac(GLOBAL), &["Pixel"]), Admission::Track);
        let r = rules("[bridge]\nrandom_macs = \"group\"\n[devices.\"DA:A1:19:00:00:01\"]\nname = \"Anna\"");
        assert_eq!(r.admit(mac(PRIVATE), &[]), Admission::Track, "configured: tracked");
        assert_eq!(r.admit(mac("da:a1:19:00:00:02"), &[]), Admission::Group);
    }

    #[test]
    fn include_and_exclude_by_mac_or_name() {
        let r = rules("[bridge]\nexclude = [\"Guest TV\", \"3C-22-FB-10-00-01\"]");
        assert_eq!(r.admit(mac(GLOBAL), &[]), Admission::Drop, "by MAC, any spelling");
        assert_eq!(r.admit(mac("3c:22:fb:10:00:02"), &["guest tv"]), Admission::Drop);
        assert_eq!(r.admit(mac("3c:22:fb:10:00:02"), &["Kitchen"]), Admission::Track);
        let r = rules("[bridge]\nrandom_macs = \"ignore\"\ninclude = [\"Anna's iPhone\"]");
        assert_eq!(
            r.admit(mac(PRIVATE), &["Anna's iPhone"]),
            Admission::Track,
            "included wins"
        );
        assert_eq!(r.admit(mac(GLOBAL), &["Pixel"]), Admission::Drop, "not included");
    }

    #[test]
    fn a_grouped_client_keeps_its_own_counter_under_the_group() {
        let id = DeviceId::from_mac(PRIVATE.parse().unwrap());
        let mut obs = Observation::new(id, DeviceKind::Client);
        obs.info.name = Some("iPhone".into());
        obs.info.ip = Some("192.168.50.23".into());
        obs.attributes.insert("band".into(), "5 GHz".into());
        obs.traffic.push(crate::model::TrafficReading {
            interface: None,
            sample: crate::model::TrafficSample::Buckets(crate::model::BucketSample { hours: vec![] }),
        });
        let g = into_group(obs);
        assert_eq!(g.device.as_str(), GROUP_ID);
        assert_eq!(g.info.name.as_deref(), Some(GROUP_NAME));
        assert!(g.info.macs.is_empty() && g.info.ip.is_none() && g.attributes.is_empty());
        assert_eq!(g.traffic[0].interface.as_deref(), Some("daa119000001"));
    }
}
