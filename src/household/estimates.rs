//! Feeds each Deco mesh's [`Reconciler`] from the polls the household applies, and makes its
//! reconciled totals the headline of the clients the Deco estimates.
//!
//! Who is what follows from the ledger, so nothing here is persisted twice: a *member* of mesh
//! `D` is a client or server `D` counted traffic for; it is *estimated* while `D` feeds its
//! headline, *exact* otherwise (vnstat, the host, the ASUS in access-point mode). The *uplink*
//! of `D` is the mesh node `D` reports that an upstream router counts (double NAT: the ASUS
//! lists the Deco's WAN MAC, which identity routes to the node).

use std::collections::BTreeMap;
use std::time::Duration;

use super::Household;
use super::reconcile::{Pair, Reconciler};
use crate::accounting::Totals;
use crate::config::{Settings, SpeedUnit};
use crate::model::{DeviceId, DeviceKind, HourBucket, Observation, TrafficSample};

/// Per Deco source: what the reconciliation needs from the configuration and the last poll.
#[derive(Debug, Clone, Default)]
pub(super) struct Meshes {
    /// By the mesh node whose uplink an upstream router counts (persisted).
    pub reconcilers: BTreeMap<DeviceId, Reconciler>,
    /// Deco source → its uplink node, learnt from its polls.
    mesh_of: BTreeMap<String, DeviceId>,
    /// Longest poll gap still integrated (the Deco source's `max_gap`).
    max_gap_ms: BTreeMap<String, i64>,
    speed_unit: BTreeMap<String, SpeedUnit>,
    last_poll_ms: BTreeMap<String, i64>,
    /// When each uplink's counter was last read.
    last_uplink_ms: BTreeMap<DeviceId, i64>,
    /// When each exactly counted device's counter was last true, by (device, source).
    last_exact_ms: BTreeMap<(DeviceId, String), i64>,
}

impl Meshes {
    /// A device forgotten: nothing of it stays (its counters' last times).
    pub(super) fn forget(&mut self, id: &DeviceId) {
        self.last_exact_ms.retain(|(d, _), _| d != id);
        for rec in self.reconcilers.values_mut() {
            rec.leave(id);
        }
    }

    #[cfg(test)]
    pub(super) fn footprint(&self) -> usize {
        self.last_exact_ms.len()
    }
}

/// A counter's own time is trusted as wall-clock time this close to ours (vnstat before 2.10
/// stamps local time; then the span ends now).
const SAMPLE_CLOCK_SLACK_MS: i64 = 10 * 60_000;

/// Longest gap between two readings of the uplink's live counter that still spreads evenly.
const UPLINK_GAP_MS: i64 = 5 * 60_000;

impl Meshes {
    pub fn new(settings: &Settings) -> Self {
        let mut out = Self::default();
        for (name, deco) in &settings.deco {
            let gap = deco.interval.saturating_mul(3).max(Duration::from_secs(1));
            out.max_gap_ms
                .insert(name.clone(), i64::try_from(gap.as_millis()).unwrap_or(i64::MAX));
            out.speed_unit.insert(name.clone(), deco.speed_unit);
        }
        out
    }
}

/// What the devices of one poll counted before it was applied.
#[derive(Debug, Default)]
pub(super) struct Before {
    headline: BTreeMap<DeviceId, Totals>,
    /// The polling source's own view of each device.
    view: BTreeMap<DeviceId, Totals>,
    /// Exact hours an upstream router reported for a mesh node (its uplink).
    uplink_hours: BTreeMap<DeviceId, Vec<HourBucket>>,
    /// Mesh nodes an upstream router read a counter of.
    uplink_live: std::collections::BTreeSet<DeviceId>,
    /// When each device's counters in this poll were true (the latest of its samples).
    sample_ms: BTreeMap<DeviceId, i64>,
    /// Mesh nodes the poll reported.
    nodes: Vec<DeviceId>,
}

fn pair(t: Totals) -> Pair {
    [t.rx, t.tx]
}

fn minus(a: Totals, b: Totals) -> Pair {
    [a.rx.saturating_sub(b.rx), a.tx.saturating_sub(b.tx)]
}

impl Household {
    fn is_deco(&self, source: &str) -> bool {
        self.kinds
            .get(source)
            .and_then(|kind| crate::sources::spec_of(kind))
            .is_some_and(|spec| spec.estimates)
    }

    /// The Deco source whose estimate feeds a device's headline, if one does.
    fn estimating_mesh(&self, id: &DeviceId) -> Option<String> {
        let device = self.ledger.device(id)?;
        let mut owners = device.total_sources.iter();
        let only = owners.next().filter(|_| owners.next().is_none())?;
        (device.kind == DeviceKind::Client && device.interfaces.is_empty() && self.is_deco(only)).then(|| only.clone())
    }

    /// The reconciliation of Deco source `mesh`, once an upstream router counts its uplink.
    fn reconciler_mut(&mut self, mesh: &str) -> Option<&mut Reconciler> {
        let node = self.meshes.mesh_of.get(mesh)?;
        self.meshes.reconcilers.get_mut(node).filter(|r| r.has_uplink())
    }

    /// Takes note of what a poll's devices counted before it is applied.
    pub(super) fn before_estimates(&self, source: &str, routed: &[Observation]) -> Before {
        let mut before = Before::default();
        for obs in routed {
            if let Some(d) = self.ledger.device(&obs.device) {
                before.headline.insert(obs.device.clone(), d.totals);
                if let Some(v) = d.views.get(source) {
                    before.view.insert(obs.device.clone(), v.totals);
                }
            }
            if obs.kind == DeviceKind::MeshNode {
                before.nodes.push(obs.device.clone());
            }
            for reading in &obs.traffic {
                match &reading.sample {
                    TrafficSample::Counter(c) => {
                        let t = before.sample_ms.entry(obs.device.clone()).or_insert(c.at_ms);
                        *t = (*t).max(c.at_ms);
                        if obs.kind == DeviceKind::MeshNode {
                            before.uplink_live.insert(obs.device.clone());
                        }
                    }
                    TrafficSample::Live(_) if obs.kind == DeviceKind::MeshNode => {
                        before.uplink_live.insert(obs.device.clone());
                    }
                    TrafficSample::Buckets(b) if obs.kind == DeviceKind::MeshNode => before
                        .uplink_hours
                        .entry(obs.device.clone())
                        .or_default()
                        .extend(b.hours.iter().copied()),
                    _ => {}
                }
            }
        }
        before
    }

    /// Books an applied poll into the reconciliations and puts each estimated client's
    /// reconciled total in its headline; returns the devices whose headline changed that the
    /// poll did not touch, with their totals before.
    pub(super) fn after_estimates(&mut self, source: &str, before: Before, now_ms: i64) -> Vec<(DeviceId, Totals)> {
        if self.is_deco(source) {
            self.book_estimates(source, &before, now_ms);
        } else {
            self.book_uplink(source, &before, now_ms);
        }
        self.book_exact(source, &before, now_ms);
        self.publish_reconciled(now_ms, &before.headline)
    }

    /// A Deco poll: how far each estimated client's raw estimate grew, and over which span.
    fn book_estimates(&mut self, source: &str, before: &Before, now_ms: i64) {
        // The mesh's uplink is the one of its nodes an upstream router counts.
        if let Some(node) = before.nodes.iter().find(|n| self.meshes.reconcilers.contains_key(*n)) {
            self.meshes.mesh_of.insert(source.to_owned(), node.clone());
        }
        let gap = self.meshes.max_gap_ms.get(source).copied().unwrap_or(i64::MAX);
        let last = self.meshes.last_poll_ms.insert(source.to_owned(), now_ms);
        let from = last
            .filter(|last| *last <= now_ms && now_ms - last <= gap)
            .unwrap_or(now_ms);
        // Until an upstream router has counted the uplink there is nothing to reconcile with,
        // and nothing is kept (a mesh of thousands of clients without one costs nothing).
        if self.reconciler_mut(source).is_none() {
            return;
        }
        let mut joins = Vec::new();
        let mut leaves = Vec::new();
        for id in self
            .ledger
            .devices()
            .filter(|d| d.sources.contains(source))
            .map(|d| d.id.clone())
            .collect::<Vec<_>>()
        {
            let Some(device) = self.ledger.device(&id) else {
                continue;
            };
            if self.estimating_mesh(&id).as_deref() == Some(source) {
                // A device new in this poll starts from its current total.
                let old = before.headline.get(&id).copied().unwrap_or(device.totals);
                let view = device.views.get(source).map(|v| v.totals).unwrap_or_default();
                let old_view = before.view.get(&id).copied().unwrap_or(view);
                joins.push((id, pair(old), minus(view, old_view)));
            } else {
                leaves.push(id);
            }
        }
        let Some(rec) = self.reconciler_mut(source) else { return };
        rec.covered(from, now_ms);
        for (id, old, delta) in joins {
            rec.join(&id, old);
            rec.estimate(&id, from, now_ms, delta);
        }
        for id in leaves {
            if rec.is_member(&id) {
                rec.leave(&id);
            }
        }
    }

    /// A router's poll: the exact hours or counter of a mesh node's uplink.
    fn book_uplink(&mut self, source: &str, before: &Before, now_ms: i64) {
        let uplinks: std::collections::BTreeSet<&DeviceId> =
            before.uplink_hours.keys().chain(before.uplink_live.iter()).collect();
        for id in uplinks {
            let Some(device) = self.ledger.device(id) else { continue };
            let view = device.views.get(source).map(|v| v.totals);
            let old_view = before.view.get(id).copied();
            let last = self.meshes.last_uplink_ms.insert(id.clone(), now_ms);
            let rec = self.meshes.reconcilers.entry(id.clone()).or_default();
            if let Some(hours) = before.uplink_hours.get(id) {
                rec.uplink_hours(hours, now_ms);
            }
            if before.uplink_live.contains(id)
                && let (Some(view), Some(old_view)) = (view, old_view)
            {
                // Spread evenly since the last reading if it was recent.
                let from = last
                    .filter(|l| *l <= now_ms && now_ms - l <= UPLINK_GAP_MS)
                    .unwrap_or(now_ms);
                if from < now_ms {
                    rec.uplink_live(from, now_ms, minus(view, old_view));
                }
            }
        }
    }

    /// Exactly counted members behind a mesh: their headline growth is not the estimates' to
    /// share.
    fn book_exact(&mut self, source: &str, before: &Before, now_ms: i64) {
        for (id, old) in &before.headline {
            let Some(device) = self.ledger.device(id) else { continue };
            if !matches!(device.kind, DeviceKind::Client | DeviceKind::Server) || self.estimating_mesh(id).is_some() {
                continue;
            }
            let delta = minus(device.totals, *old);
            let meshes: Vec<String> = device.views.keys().filter(|s| self.is_deco(s)).cloned().collect();
            // The span the counter's growth covers: from its previous reading to this one, on
            // its own clock when that agrees with ours.
            let at = before
                .sample_ms
                .get(id)
                .copied()
                .filter(|t| (now_ms - t).abs() <= SAMPLE_CLOCK_SLACK_MS)
                .unwrap_or(now_ms);
            let from = self
                .meshes
                .last_exact_ms
                .insert((id.clone(), source.to_owned()), at)
                .filter(|f| *f <= at && at - f <= SAMPLE_CLOCK_SLACK_MS)
                .unwrap_or(at);
            // A source's first reading of a device is its history (a database's months), not
            // traffic of this hour.
            if delta == [0, 0] || !before.view.contains_key(id) {
                continue;
            }
            for mesh in meshes {
                if let Some(rec) = self.reconciler_mut(&mesh) {
                    rec.exact(from, at, delta);
                }
            }
        }
    }

    /// Evaluates every mesh and writes the reconciled totals into the ledger's headlines.
    fn publish_reconciled(&mut self, now_ms: i64, touched: &BTreeMap<DeviceId, Totals>) -> Vec<(DeviceId, Totals)> {
        let mut changed = Vec::new();
        let meshes: Vec<(String, DeviceId)> = self
            .meshes
            .mesh_of
            .iter()
            .map(|(m, n)| (m.clone(), n.clone()))
            .collect();
        for (mesh, node) in meshes {
            let configured = self.meshes.speed_unit.get(&mesh).copied().unwrap_or_default();
            let Some(rec) = self.meshes.reconcilers.get_mut(&node) else {
                continue;
            };
            rec.evaluate(now_ms);
            if let Some((likely, ratio)) = rec.unit_hint(configured, now_ms) {
                tracing::warn!(
                    source = %mesh,
                    device = %node,
                    ratio,
                    configured = unit_key(configured),
                    likely = unit_key(likely),
                    "The Deco's estimates are off from the uplink the router counts by about the ratio of two speed units; set speed_unit = \"{}\" in [deco.{mesh}].",
                    unit_key(likely)
                );
            }
            let rec = &self.meshes.reconcilers[&node];
            let reconciled = rec.has_reconciled();
            let ids: Vec<(DeviceId, Pair)> = self
                .ledger
                .devices()
                .filter_map(|d| Some((d.id.clone(), rec.published(&d.id)?)))
                .collect();
            for (id, published) in ids {
                if self.estimating_mesh(&id).as_deref() != Some(mesh.as_str()) {
                    continue;
                }
                let Some(device) = self.ledger.device_mut(&id) else {
                    continue;
                };
                let old = device.totals;
                // The ledger added the raw estimate; the headline is the reconciled total.
                device.totals = Totals {
                    rx: published[0],
                    tx: published[1],
                };
                device.estimated = true;
                device.reconciled = reconciled;
                if !touched.contains_key(&id) && device.totals != old {
                    changed.push((id, old));
                }
            }
        }
        changed
    }

    /// The reconciliation's memory, for the state file.
    pub(super) fn saved_reconcilers(&self) -> &BTreeMap<DeviceId, Reconciler> {
        &self.meshes.reconcilers
    }
}

/// How the unit is written in the config file.
fn unit_key(unit: SpeedUnit) -> &'static str {
    match unit {
        SpeedUnit::KbitPerS => "kbit_per_s",
        SpeedUnit::KbytePerS => "kbyte_per_s",
        SpeedUnit::BytePerS => "byte_per_s",
    }
}
