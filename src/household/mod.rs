//! The household: the stage between accounting and publishing (sources → accounting →
//! household → publisher). It decides which physical thing each observation is about
//! ([`identity`]), what each thing is called ([`names`]) and what it hangs off (`via`), so that
//! Home Assistant sees one device per physical thing (design.md "Devices and ids").
//!
//! Accounting (the [`Ledger`]) still counts: monotonic totals per source, the headline fed by
//! the best source, every other source's view kept as a secondary one.

pub mod admission;
mod apply;
pub mod churn;
mod estimates;
mod fill;
mod first_hours;
pub mod forget;
mod hours;
pub mod identity;
mod merge;
pub mod names;
pub mod periods;
mod persist;
pub mod plans;
pub mod reconcile;
mod skip;

pub use apply::Applied;

use std::collections::BTreeMap;

use crate::accounting::{Device, Feed, Ledger, PersistedState};
use crate::config::Settings;
use crate::model::{DeviceId, DeviceKind, MacAddr, Observation};
use identity::Resolver;
use names::{Candidate, Names};
use periods::{Calendar, PeriodBook};
use serde::{Deserialize, Serialize};

/// Where the household keeps its memory in the state file, beside the sources' cursors; `@`
/// cannot start a source name, so it never collides with one.
const CURSOR_KEY: &str = "@household";

/// Facts one source gave about a device's place in the network.
#[derive(Debug, Clone, Default)]
struct Placement {
    names: Names,
    /// `via` as each source reports it.
    via: BTreeMap<String, DeviceId>,
}

/// What the household keeps in the state file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    identity: Resolver,
    #[serde(default)]
    periods: PeriodBook,
    /// `[plan.*] used_so_far` readings applied (plans.rs).
    #[serde(default)]
    meters: plans::Meters,
    #[serde(default)]
    last_seen: forget::LastSeen,
    #[serde(default)]
    entity_slugs: BTreeMap<DeviceId, String>,
    #[serde(default)]
    counts_from: churn::CountsFrom,
    #[serde(default)]
    polled: churn::Polled,
    #[serde(default)]
    group_members: churn::Members,
    /// Per uplink (the mesh node an upstream router counts): the Deco's reconciliation.
    #[serde(default)]
    reconcile: BTreeMap<DeviceId, reconcile::Reconciler>,
}

pub struct Household {
    resolver: Resolver,
    calendar: Calendar,
    periods: PeriodBook,
    ledger: Ledger,
    feeds: BTreeMap<String, Feed>,
    /// Source name → its kind (`vnstat`), for the `source` key of the state.
    kinds: BTreeMap<String, &'static str>,
    configured_names: BTreeMap<MacAddr, String>,
    placement: BTreeMap<DeviceId, Placement>,
    plans: BTreeMap<DeviceId, plans::Plan>,
    meters: plans::Meters,
    /// Clients first read in this run by a live counter, waiting for their hours from before
    /// (router time of that reading; first_hours.rs).
    first_reads: BTreeMap<DeviceId, i64>,
    admission: admission::Rules,
    /// Devices the rules now keep out of HA (excluded, or a private MAC to ignore or group)
    /// that were published before: the bridge removes them.
    evicted: std::collections::BTreeSet<DeviceId>,
    /// Clients the rules kept out in this run: a source that does not know the name an
    /// exclusion matched must not bring them back.
    kept_out: std::collections::BTreeSet<DeviceId>,
    last_seen: forget::LastSeen,
    forget_after: std::time::Duration,
    /// Clients first seen after their source's first poll: from which hour they count (churn.rs).
    counts_from: churn::CountsFrom,
    /// Each source's last successful poll (churn.rs).
    polled: churn::Polled,
    /// The private-address group's members (churn.rs).
    members: churn::Members,
    /// The device part of each device's suggested entity ids, fixed when it was first
    /// published: a rename (config or command) changes the HA name only, never the ids.
    entity_slugs: BTreeMap<DeviceId, String>,
    meshes: estimates::Meshes,
    /// Client devices merged into the thing that claimed their MAC, not yet cleared in HA.
    retired: Vec<Device>,
    /// Whether restored devices were checked against the claims of this run.
    merged_once: bool,
    /// What each source said last of each client (the fast path, skip.rs).
    skips: skip::Skips,
    /// `[bridge] consider_home`: how long an offline client's presence may still change.
    consider_home: std::time::Duration,
    /// The household's own persisted memory changed since the last save (persist.rs); `stale`:
    /// only last-seen times did.
    dirty: bool,
    stale: bool,
}

impl Household {
    /// `sources`: (feed, kind) of every configured source.
    pub fn new(settings: &Settings, sources: Vec<(Feed, &'static str)>, mut state: PersistedState) -> Self {
        let mut resolver = Resolver::new(settings);
        let mut periods = PeriodBook::new();
        let mut meters = plans::Meters::new();
        let mut last_seen = forget::LastSeen::new();
        let mut entity_slugs = BTreeMap::new();
        let mut counts_from = churn::CountsFrom::new();
        let mut polled = churn::Polled::new();
        let mut members = churn::Members::new();
        let mut meshes = estimates::Meshes::new(settings);
        // Taken out of the cursors: it is written from the household's own data (persist.rs).
        if let Some(saved) = state.sources.remove(CURSOR_KEY) {
            match serde_json::from_value::<Saved>(saved) {
                Ok(saved) => {
                    resolver.restore(&serde_json::to_value(&saved.identity).unwrap_or_default());
                    periods = saved.periods;
                    meters = saved.meters;
                    last_seen = saved.last_seen;
                    entity_slugs = saved.entity_slugs;
                    counts_from = saved.counts_from;
                    polled = saved.polled;
                    members = saved.group_members;
                    meshes.reconcilers = saved.reconcile;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Saved household state is unreadable; identities are learnt again, today's and this month's totals start over.")
                }
            }
        }
        let bridge = &settings.bridge;
        // check-config has validated both keys; a fallback only guards library callers.
        let calendar = Calendar::new(bridge.timezone.as_deref(), bridge.month_start_day).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Invalid [bridge] timezone or month_start_day; using the system's zone and the 1st.");
            Calendar::system()
        });
        let configured_names = settings
            .devices
            .iter()
            .filter_map(|(mac, d)| Some((mac.parse().ok()?, d.name.clone()?)))
            .collect();
        let kinds = sources.iter().map(|(f, k)| (f.name.clone(), *k)).collect();
        let feeds: BTreeMap<String, Feed> = sources.iter().map(|(f, _)| (f.name.clone(), f.clone())).collect();
        let ledger = Ledger::new(feeds.values().cloned().collect(), state, BTreeMap::new());
        Self {
            resolver,
            calendar,
            periods,
            ledger,
            feeds,
            kinds,
            configured_names,
            placement: BTreeMap::new(),
            plans: plans::from_settings(settings),
            meters,
            first_reads: BTreeMap::new(),
            admission: admission::Rules::from_settings(settings),
            evicted: Default::default(),
            kept_out: Default::default(),
            last_seen,
            forget_after: settings.bridge.forget_after,
            counts_from,
            polled,
            members,
            entity_slugs,
            meshes,
            retired: Vec::new(),
            merged_once: false,
            skips: skip::Skips::default(),
            consider_home: bridge.consider_home,
            dirty: false,
            stale: false,
        }
    }

    /// Fixes the device's entity-id slug at its first publication (from its name then, as HA
    /// itself would derive it) and hands it to the publisher on the device.
    pub fn pin_entity_slug(&mut self, id: &DeviceId) {
        let Some(device) = self.ledger.device_mut(id) else {
            return;
        };
        if !self.entity_slugs.contains_key(id) {
            let mut slug = DeviceId::slugify(device.name()).map_or_else(|| id.to_string(), |d| d.to_string());
            // Two things with one name (two "NAS"): the later one gets its id appended, so the
            // ids do not depend on which HA discovers first (HA itself would append `_2`).
            if self.entity_slugs.values().any(|s| *s == slug) {
                slug = format!("{slug}_{id}");
            }
            self.entity_slugs.insert(id.clone(), slug);
            self.dirty = true;
        }
        device.entity_slug = self.entity_slugs.get(id).cloned();
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn device(&self, id: &DeviceId) -> Option<&Device> {
        self.ledger.device(id)
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.ledger.devices()
    }

    pub fn set_cursor(&mut self, source: &str, cursor: serde_json::Value) {
        self.ledger.set_cursor(source, cursor);
    }

    /// Learns who is who from polls not yet applied, so that the first published picture is
    /// already the right one whichever source answered first.
    pub fn learn(&mut self, observations: &[Observation]) {
        self.resolver.learn(observations);
    }

    /// Rolls periods over when a day or month ended, even with no source answering; returns
    /// the devices whose periods started anew.
    pub fn tick(&mut self, now_ms: i64) -> Vec<DeviceId> {
        let mut rolled = Vec::new();
        for (id, periods) in &mut self.periods {
            if periods.roll(&self.calendar, now_ms) {
                rolled.push(id.clone());
            }
        }
        for id in &rolled {
            self.settle(id);
        }
        if !rolled.is_empty() {
            self.dirty = true;
        }
        rolled
    }

    /// A source's poll failed.
    pub fn source_failed(&mut self, source: &str) -> Vec<DeviceId> {
        // Back, its devices' availability changes: the first poll goes the full way.
        self.skips.forget_source(source);
        self.ledger.source_failed(source)
    }

    /// Renames a device in HA only; its id, totals and history stay (design.md "Names"). A
    /// name for a device not seen yet (restored at start) applies when it appears.
    pub fn rename(&mut self, id: &DeviceId, name: &str) -> bool {
        // The ledger remembers every rename (bridge/commands.rs keeps them in a file).
        self.ledger.rename(id, name);
        let known = self.ledger.device(id).is_some();
        let mac = self
            .ledger
            .device(id)
            .and_then(|d| d.info.macs.first().copied())
            .or_else(|| id.as_str().parse::<MacAddr>().ok());
        match mac {
            Some(mac) => {
                self.configured_names.insert(mac, name.to_owned());
            }
            None => {
                let place = self.placement.entry(id.clone()).or_default();
                place.names.record(
                    "@rename",
                    Candidate {
                        rank: 0,
                        name: Some(name.to_owned()),
                        vendor: None,
                    },
                );
            }
        }
        if known {
            self.settle(id);
        }
        known
    }

    /// Every name given by a rename, by device.
    pub fn renamed(&self) -> &BTreeMap<DeviceId, String> {
        self.ledger.renamed()
    }

    /// A source that appears while running (an agent on another machine).
    pub fn add_feed(&mut self, feed: Feed, kind: &'static str) {
        self.skips.clear();
        self.kinds.entry(feed.name.clone()).or_insert(kind);
        self.feeds.entry(feed.name.clone()).or_insert_with(|| feed.clone());
        self.ledger.add_feed(feed);
    }

    /// Forgets a device at `now_ms`: its totals and baselines go; the caller clears its HA
    /// configs. Its history read again later does not bring it back (churn.rs).
    pub fn remove(&mut self, id: &DeviceId, now_ms: i64) -> bool {
        self.dirty = true;
        self.counts_from.remove(id);
        self.forgot_at(now_ms);
        if id.as_str() == admission::GROUP_ID {
            self.members.clear();
        }
        self.skips.forget_device(id);
        self.placement.remove(id);
        self.periods.remove(id);
        self.last_seen.remove(id);
        self.entity_slugs.remove(id);
        // Back later, it starts from nothing, not from what it was reconciled to.
        self.meshes.forget(id);
        self.ledger.forget(id).is_some() | self.ledger.remove(id)
    }

    /// Name, `via` and the headline's source of one device, from everything known now.
    fn settle(&mut self, id: &DeviceId) {
        let Some(device) = self.ledger.device(id) else {
            return;
        };
        let place = self.placement.get(id).cloned().unwrap_or_default();
        let configured = device
            .info
            .macs
            .iter()
            .find_map(|m| self.configured_names.get(m))
            .cloned();
        let name = place.names.choose(
            configured.as_deref(),
            device.primary_mac().filter(|_| device.kind == DeviceKind::Client),
            id.as_str(),
        );
        let via = self.choose_via(device, &place);
        let headline = device.total_sources.iter().next().map(|s| {
            let kind = if device.reconciled {
                "reconciled"
            } else {
                self.kinds.get(s).copied().unwrap_or("source")
            };
            format!("{kind}:{s}")
        });
        let kinds = &self.kinds;
        let periods = self.periods.get(id).cloned();
        let plan = self.plans.get(id).copied();
        if let (Some(plan), Some(p)) = (&plan, &periods)
            && let Some(meter) = plans::read_meter(plan, p, self.meters.get(id))
        {
            tracing::info!(device = %id, reading = meter.reading, added = meter.extra, "Plan: the ISP's meter reading (used_so_far) applied to this period.");
            self.meters.insert(id.clone(), meter);
            self.dirty = true;
        }
        let meter = self.meters.get(id).copied();
        let calendar = &self.calendar;
        if let Some(device) = self.ledger.device_mut(id) {
            if device.has_traffic {
                let p = periods.unwrap_or_default();
                device.today = Some(p.today);
                device.this_month = Some(p.this_month);
                device.yesterday = Some(p.yesterday);
                device.last_month = Some(p.last_month);
                let since = |ms: Option<i64>| ms.and_then(|ms| calendar.local_time(ms));
                let c = p.complete_since;
                device.complete_since = Some(serde_json::json!({
                    "today": since(c.today),
                    "month": since(c.this_month),
                    "yesterday": since(c.yesterday),
                    "last_month": since(c.last_month),
                }));
                device.quota = plan.map(|plan| plans::usage(&plan, &p, meter.as_ref()));
            }
            device.info.name = Some(name);
            device.info.via = via;
            device.headline_source = headline;
            for (source, view) in &mut device.views {
                view.label = Some(view_label(kinds.get(source).copied(), source, view.estimated));
            }
        }
    }

    /// What a device hangs off in HA: a client its mesh node (the Deco knows the node, the
    /// upstream router only the mesh) or else its router; a mesh node its master or the router
    /// upstream; servers and routers the bridge. Only devices that exist qualify.
    fn choose_via(&self, device: &Device, place: &Placement) -> Option<DeviceId> {
        let exists = |id: &DeviceId| id != &device.id && self.ledger.device(id).is_some();
        let kind_of = |id: &DeviceId| self.ledger.device(id).map(|d| d.kind);
        match device.kind {
            DeviceKind::Server | DeviceKind::Router => None,
            DeviceKind::MeshNode => place
                .via
                .values()
                .find(|v| exists(v))
                .or_else(|| self.resolver.upstream_of(&device.id).filter(|v| exists(v)))
                .cloned(),
            DeviceKind::Client => {
                let candidates: Vec<&DeviceId> = place.via.values().filter(|v| exists(v)).collect();
                candidates
                    .iter()
                    .find(|v| kind_of(v) == Some(DeviceKind::MeshNode))
                    .or_else(|| candidates.first())
                    .map(|v| (*v).clone())
            }
        }
    }
}

/// How a secondary entity names its source: "Deco estimate", "ASUS home".
fn view_label(kind: Option<&str>, source: &str, estimated: bool) -> String {
    // Each kind's label is in its folder's spec (`ASUS`); an unknown kind is shown as it is.
    let kind = match kind {
        Some(kind) => crate::sources::spec_of(kind).map_or(kind, |spec| spec.view_label),
        None => "source",
    };
    if estimated {
        format!("{kind} estimate")
    } else {
        format!("{kind} {source}")
    }
}

#[cfg(test)]
#[path = "household_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "rules_tests.rs"]
mod rules_tests;

#[cfg(test)]
#[path = "skip_tests.rs"]
mod skip_tests;

#[cfg(test)]
#[path = "first_day_tests.rs"]
mod first_day_tests;

#[cfg(test)]
#[path = "history_tests.rs"]
mod history_tests;

#[cfg(test)]
#[path = "asus_history_tests.rs"]
mod asus_history_tests;
