//! Late identity claims: a MAC published as a client of its own that a thing claims later (a
//! server's host or agent that came online after the first round, a Deco that was down while
//! the ASUS already listed its WAN MAC, a `mac` added to the config since the last run).
//!
//! The client device is retired: the bridge clears its HA discovery (empty retained config)
//! and state, and the thing that claimed the MAC takes over what it counted: counter
//! baselines (so the next reading continues, nothing is counted twice), each source's view,
//! the headline total and today/this month when the thing has none of its own yet. Totals move
//! across without a jump or a dip.

use crate::accounting::Device;
use crate::model::{DeviceId, DeviceKind, MacAddr};

use super::Household;

impl Household {
    /// Retires every client device whose MAC now belongs to another thing; returns how many.
    pub(super) fn merge_claimed(&mut self) -> usize {
        let candidates: Vec<(DeviceId, DeviceId, DeviceKind)> = self
            .ledger
            .known_ids()
            .filter_map(|id| {
                let mac: MacAddr = (id.as_str().len() == 12).then(|| id.as_str().parse().ok())??;
                let owner = self.resolver.owner_of(&mac)?;
                (owner.device != *id).then(|| (id.clone(), owner.device.clone(), owner.kind))
            })
            .collect();
        let mut merged = 0;
        for (from, to, kind) in candidates {
            // Only a client stands in for another thing; a mesh node keeps its own device.
            if self.ledger.device(&from).is_some_and(|d| d.kind != DeviceKind::Client) {
                continue;
            }
            // A server counts itself; a mesh node's traffic is what the router counted of the
            // client entry, so it continues from there.
            let server = kind == DeviceKind::Server;
            let Some(retired) = self.ledger.merge_into(&from, &to, !server) else {
                continue;
            };
            if let Some(periods) = self.periods.remove(&from).filter(|_| !server) {
                self.periods.entry(to.clone()).or_insert(periods);
            }
            // The client's names and `via` were another source's view of the thing.
            self.placement.remove(&from);
            for rec in self.meshes.reconcilers.values_mut() {
                rec.leave(&from);
            }
            tracing::info!(device = %from, into = %to, "A client's MAC belongs to another device; merged into it and removed from Home Assistant.");
            self.retired.push(retired);
            merged += 1;
        }
        merged
    }

    /// Devices retired by a merge since the last call: their HA configs and states must go.
    pub fn take_retired(&mut self) -> Vec<Device> {
        std::mem::take(&mut self.retired)
    }
}
