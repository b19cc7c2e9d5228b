//! Identity: which physical thing a MAC belongs to (design.md "Devices and ids: one HA device
//! per physical thing"; ha-discovery.md §5 for what HA does with a MAC in two devices).
//!
//! Things that know themselves claim their MACs: configured servers (`mac`, one or a list), the
//! host's own interfaces, mesh nodes (LAN MAC and the WAN MAC the upstream router sees) and
//! routers. A router's or mesh's client entry for a claimed MAC is then only another view of
//! that thing, never a device of its own. Claims are kept in the state file, so the answer does
//! not depend on which source happens to answer first after a restart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::model::{DeviceId, DeviceKind, MacAddr, Observation};

/// Who claims a MAC. Lower `strength` wins when two things claim the same MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub device: DeviceId,
    pub kind: DeviceKind,
    strength: u8,
}

/// Configured servers first, then what things say of themselves: servers (the host), mesh
/// nodes, routers. Clients claim nothing.
fn strength(kind: DeviceKind, configured: bool) -> Option<u8> {
    match (kind, configured) {
        (_, true) => Some(0),
        (DeviceKind::Server, false) => Some(1),
        (DeviceKind::MeshNode, false) => Some(2),
        (DeviceKind::Router, false) => Some(3),
        (DeviceKind::Client, false) => None,
    }
}

/// An observation after routing: which thing it is about, and whether it came in under
/// another name (a client entry that is really a server or a mesh node).
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub observation: Observation,
    /// Another source's view of a thing that knows itself: it names nothing, places nothing.
    pub borrowed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resolver {
    claims: BTreeMap<MacAddr, Claim>,
    /// The router that lists a thing as one of its clients: a mesh node's upstream.
    upstream: BTreeMap<DeviceId, DeviceId>,
}

impl Resolver {
    /// Starts from the configured servers' MACs (check-config guarantees they are distinct).
    pub fn new(settings: &Settings) -> Self {
        let mut resolver = Self::default();
        for server in crate::config::server_macs(settings) {
            let Some(id) = server.claimed_by else { continue };
            for mac in server.macs {
                resolver.claim(*mac, &id, DeviceKind::Server, true);
            }
        }
        resolver
    }

    /// Restores what an earlier run learnt, under the configured claims (config wins).
    pub fn restore(&mut self, saved: &serde_json::Value) {
        let Ok(saved) = serde_json::from_value::<Resolver>(saved.clone()) else {
            tracing::warn!("Saved device identities are unreadable; learning them again.");
            return;
        };
        for (mac, claim) in saved.claims {
            if claim.strength > 0 {
                self.claim(mac, &claim.device, claim.kind, false);
            }
        }
        self.upstream.extend(saved.upstream);
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn claim(&mut self, mac: MacAddr, device: &DeviceId, kind: DeviceKind, configured: bool) -> bool {
        let Some(strength) = strength(kind, configured) else {
            return false;
        };
        if !mac.is_meaningful() {
            return false;
        }
        match self.claims.get(&mac) {
            Some(c) if c.strength < strength => false,
            Some(c) if c.device == *device && c.kind == kind && c.strength == strength => false,
            Some(c) if c.strength == strength && c.device != *device => {
                // Two things of the same standing report one MAC (a cloned MAC, a VM bridge):
                // the first keeps it, so devices never swap on every poll.
                tracing::warn!(%mac, kept = %c.device, ignored = %device, "Two devices report the same MAC; it stays with the first.");
                false
            }
            _ => {
                self.claims.insert(
                    mac,
                    Claim {
                        device: device.clone(),
                        kind,
                        strength,
                    },
                );
                true
            }
        }
    }

    /// Learns claims from one poll; returns whether anything new was learnt.
    pub fn learn(&mut self, observations: &[Observation]) -> bool {
        let mut changed = false;
        for obs in observations.iter().filter(|o| o.kind != DeviceKind::Client) {
            for mac in &obs.info.macs {
                changed |= self.claim(*mac, &obs.device, obs.kind, false);
            }
        }
        for obs in observations.iter().filter(|o| o.kind == DeviceKind::Client) {
            let (Some(claim), Some(via)) = (self.claim_of(obs), obs.info.via.as_ref()) else {
                continue;
            };
            if claim.kind == DeviceKind::MeshNode && claim.device != *via {
                changed |= self.upstream.insert(claim.device.clone(), via.clone()).as_ref() != Some(via);
            }
        }
        changed
    }

    fn claim_of(&self, obs: &Observation) -> Option<&Claim> {
        obs.info
            .macs
            .iter()
            .chain(std::iter::once(&mac_of(&obs.device)?))
            .filter_map(|m| self.claims.get(m))
            .min_by_key(|c| c.strength)
    }

    /// The thing a MAC belongs to, if something claimed it.
    pub fn owner_of(&self, mac: &MacAddr) -> Option<&Claim> {
        self.claims.get(mac)
    }

    /// The router a thing is plugged into, as that router reports it.
    pub fn upstream_of(&self, device: &DeviceId) -> Option<&DeviceId> {
        self.upstream.get(device)
    }

    /// Routes one observation to its thing.
    pub fn route(&self, mut obs: Observation) -> Routed {
        if obs.kind != DeviceKind::Client {
            return Routed {
                observation: obs,
                borrowed: false,
            };
        }
        // A claimed MAC whose client entry already has the thing's id (in access-point mode the
        // router lists a Deco unit by its own MAC) is still the thing, not a client.
        let Some(claim) = self
            .claim_of(&obs)
            .filter(|c| c.device != obs.device || c.kind != obs.kind)
            .cloned()
        else {
            return Routed {
                observation: obs,
                borrowed: false,
            };
        };
        obs.device = claim.device;
        obs.kind = claim.kind;
        // The thing's own source describes it; a router's client entry would rename a
        // configured server after its DHCP host name ("titan" for "Titan").
        obs.info.name = None;
        obs.info.manufacturer = None;
        obs.info.model = None;
        obs.info.sw_version = None;
        obs.info.via = None;
        Routed {
            observation: obs,
            borrowed: true,
        }
    }
}

/// Client and mesh node ids are their MAC; servers' and routers' are names.
fn mac_of(id: &DeviceId) -> Option<MacAddr> {
    let s = id.as_str();
    (s.len() == 12).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
