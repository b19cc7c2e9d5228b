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
use crate::config::{SpeedUnit, Settings};
use crate::model::{DeviceId, DeviceKind, HourBucket, Observation, TrafficSample};

/// Per Deco source: what the reconciliation needs from the configuration and the last poll.
#[derive(Debug, Clone, Default)]
pub(super) struct Meshes {
    pub reconcilers: BTreeMap<String, Reconciler>,
    /// Longest poll gap still integrated (the Deco source's `max_gap`).
    max_gap_ms: BTreeMap<String, i64>,
    speed_unit: BTreeMap<String, SpeedUnit>,
    last_poll_ms: BTreeMap<String, i64>,
    /// When each mesh's uplink counter was last read.
    last_uplink_ms: BTreeMap<String, i64>,
    /// When each exactly counted device's counter was last true, by (device, source).
    last_exact_ms: BTreeMap<(DeviceId, String), i64>,
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
}

fn pair(t: Totals) -> Pair {
    [t.rx, t.tx]
}

fn minus(a: Totals, b: Totals) -> Pair {
    [a.rx.saturating_sub(b.rx), a.tx.saturating_sub(b.tx)]
}

impl Household {
    fn is_deco(&self, source: &str) -> bool {
        self.kinds.get(source).copied() == Some("deco")
    }

    /// The Deco source whose estimate feeds a device's headline, if one does.
    fn estimating_mesh(&self, id: &DeviceId) -> Option<String> {
        let device = self.ledger.device(id)?;
        let mut owners = device.total_sources.iter();
        let only = owners.next().filter(|_| owners.next().is_none())?;
        (device.kind == DeviceKind::Client && device.interfaces.is_empty() && self.is_deco(only)).then(|| only.clone())
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
            for reading in &obs.traffic {
                if let TrafficSample::Counter(c) = &reading.sample {
                    let t = before.sample_ms.entry(obs.device.clone()).or_insert(c.at_ms);
                    *t = (*t).max(c.at_ms);
                }
            }
            if obs.kind == DeviceKind::MeshNode {
                for reading in &obs.traffic {
                    match &reading.sample {
                        TrafficSample::Buckets(b) => before
                            .uplink_hours
                            .entry(obs.device.clone())
                            .or_default()
                            .extend(b.hours.iter().copied()),
                        TrafficSample::Live(_) | TrafficSample::Counter(_) => {
                            before.uplink_live.insert(obs.device.clone());
                        }
                        TrafficSample::Rate(_) => {}
                    }
                }
            }
        }
        before
    }

    /// Books an applied poll into the reconciliations and puts each estimated client's
    /// reconciled total in its headline; returns the devices whose headline changed that the
    /// poll did not touch, with their totals before.
    pub(super) fn after_estimates(&mut self, source: &str, before: Before, now_ms: i64) -> Vec<(DeviceId, Totals)> {
        let deco = self.is_deco(source);
        if deco {
            let gap = self.meshes.max_gap_ms.get(source).copied().unwrap_or(i64::MAX);
            let from = self
                .meshes
                .last_poll_ms
                .insert(source.to_owned(), now_ms)
                .filter(|last| *last <= now_ms && now_ms - last <= gap)
                .unwrap_or(now_ms);
            let rec = self.meshes.reconcilers.entry(source.to_owned()).or_default();
            rec.covered(from, now_ms);
            for (id, old) in &before.headline {
                let estimated = self.estimating_mesh(id).as_deref() == Some(source);
                let Some(device) = self.ledger.device(id) else { continue };
                let rec = self.meshes.reconcilers.entry(source.to_owned()).or_default();
                if estimated {
                    let view = device.views.get(source).map(|v| v.totals).unwrap_or_default();
                    let old_view = before.view.get(id).copied().unwrap_or_default();
                    rec.join(id, pair(*old));
                    rec.estimate(id, from, now_ms, minus(view, old_view));
                } else {
                    if rec.is_member(id) {
                        rec.leave(id);
                    }
                }
            }
            // Devices this poll saw for the first time: no "before" yet, they start now.
            let new: Vec<DeviceId> = self
                .ledger
                .devices()
                .filter(|d| d.sources.contains(source) && !before.headline.contains_key(&d.id))
                .map(|d| d.id.clone())
                .collect();
            for id in new {
                if self.estimating_mesh(&id).as_deref() == Some(source) {
                    let total = self.ledger.device(&id).map(|d| d.totals).unwrap_or_default();
                    self.meshes
                        .reconcilers
                        .entry(source.to_owned())
                        .or_default()
                        .join(&id, pair(total));
                }
            }
        }
        // Exactly counted members: their headline growth is not the estimates' to share.
        for (id, old) in &before.headline {
            let Some(device) = self.ledger.device(id) else { continue };
            if !matches!(device.kind, DeviceKind::Client | DeviceKind::Server) || self.estimating_mesh(id).is_some() {
                continue;
            }
            let delta = minus(device.totals, *old);
            // The span the counter's growth covers: from its previous reading to this one, on
            // its own clock when that agrees with ours.
            let at = before
                .sample_ms
                .get(id)
                .copied()
                .filter(|t| (now_ms - t).abs() <= SAMPLE_CLOCK_SLACK_MS)
                .unwrap_or(now_ms);
            let key = (id.clone(), source.to_owned());
            let from = self
                .meshes
                .last_exact_ms
                .insert(key, at)
                .filter(|f| *f <= at && at - f <= SAMPLE_CLOCK_SLACK_MS)
                .unwrap_or(at);
            if delta == [0, 0] {
                continue;
            }
            let meshes: Vec<String> = device.views.keys().filter(|s| self.is_deco(s)).cloned().collect();
            for mesh in meshes {
                self.meshes.reconcilers.entry(mesh).or_default().exact(from, at, delta);
            }
        }
        // The uplink: a mesh node as an upstream router counts it.
        if !deco {
            for (id, old) in &before.headline {
                let Some(device) = self.ledger.device(id).filter(|d| d.kind == DeviceKind::MeshNode) else {
                    continue;
                };
                let Some(mesh) = device.sources.iter().find(|s| self.is_deco(s)).cloned() else {
                    continue;
                };
                let view = device.views.get(source).map(|v| v.totals);
                let old_view = before.view.get(id).copied();
                let last = self.meshes.last_uplink_ms.get(&mesh).copied();
                let rec = self.meshes.reconcilers.entry(mesh.clone()).or_default();
                if let Some(hours) = before.uplink_hours.get(id) {
                    rec.uplink_hours(hours, now_ms);
                }
                if before.uplink_live.contains(id)
                    && let (Some(view), Some(old_view)) = (view, old_view)
                {
                    // Spread evenly since the last reading if it was recent, else booked now.
                    let from = last
                        .filter(|l| *l <= now_ms && now_ms - l <= UPLINK_GAP_MS)
                        .unwrap_or(now_ms);
                    if from < now_ms {
                        rec.uplink_live(from, now_ms, minus(view, old_view));
                    }
                    self.meshes.last_uplink_ms.insert(mesh, now_ms);
                }
                let _ = old;
            }
        }
        self.publish_reconciled(now_ms, &before.headline)
    }

    /// Evaluates every mesh and writes the reconciled totals into the ledger's headlines.
    fn publish_reconciled(&mut self, now_ms: i64, touched: &BTreeMap<DeviceId, Totals>) -> Vec<(DeviceId, Totals)> {
        let mut changed = Vec::new();
        let meshes: Vec<String> = self.meshes.reconcilers.keys().cloned().collect();
        for mesh in meshes {
            let configured = self.meshes.speed_unit.get(&mesh).copied().unwrap_or_default();
            let Some(rec) = self.meshes.reconcilers.get_mut(&mesh) else { continue };
            rec.evaluate(now_ms);
            if let Some((likely, ratio)) = rec.unit_hint(configured, now_ms) {
                tracing::warn!(
                    source = %mesh,
                    ratio,
                    configured = ?configured,
                    likely = ?likely,
                    "The Deco's estimates are off from the uplink the router counts by about the ratio of two speed units; set speed_unit = \"{}\" in [deco.{mesh}].",
                    unit_key(likely)
                );
            }
            let rec = &self.meshes.reconcilers[&mesh];
            let reconciled = rec.has_uplink();
            let ids: Vec<DeviceId> = self
                .ledger
                .devices()
                .filter(|d| rec.is_member(&d.id))
                .map(|d| d.id.clone())
                .collect();
            for id in ids {
                let Some(published) = rec.published(&id) else { continue };
                if self.estimating_mesh(&id).as_deref() != Some(mesh.as_str()) {
                    continue;
                }
                let Some(device) = self.ledger.device_mut(&id) else { continue };
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
    pub(super) fn saved_reconcilers(&self) -> &BTreeMap<String, Reconciler> {
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
