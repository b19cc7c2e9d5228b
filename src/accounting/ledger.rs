//! The ledger: every device the bridge knows, with totals that never go down.
//!
//! Each (device, interface, source) is a channel with its own counter baseline. For every
//! target (a device, or one interface of it) one source *owns* the totals and one the rates,
//! chosen by rank among the configured sources: vnstat's long-term totals beat the kernel's,
//! the kernel's live rates beat vnstat's 5-minute averages. Published totals are accumulators
//! that only ever add an owner's deltas, so switching owners or losing a source can never make
//! a total jump back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::channel::{ChannelKind, ChannelState, Rates, Step};
use super::reconcile;
use super::store::{PersistedDevice, PersistedState};
use crate::model::{DeviceId, DeviceInfo, DeviceKind, HourBucket, MacAddr, Observation, TrafficSample};

/// Cumulative bytes; only ever increased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub rx: u64,
    pub tx: u64,
}

impl Totals {
    fn add(&mut self, step: &Step) {
        self.rx = self.rx.saturating_add(step.rx);
        self.tx = self.tx.saturating_add(step.tx);
    }
}

/// A configured source as accounting sees it: a name and how much to trust its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub name: String,
    /// Lower wins ownership of totals.
    pub total_rank: u8,
    /// Lower wins ownership of rates.
    pub rate_rank: u8,
}

/// Traffic of one interface of a device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interface {
    pub totals: Totals,
    pub rates: Rates,
    pub total_source: Option<String>,
    pub rate_source: Option<String>,
    pub estimated: bool,
}

/// One source's own view of a device's traffic: every delta that source counted, whether or not
/// it feeds the headline. Published as the disabled-by-default secondary entities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub totals: Totals,
    pub rates: Rates,
    pub estimated: bool,
    /// How HA names this view ("Deco estimate"); the household fills it in.
    pub label: Option<String>,
    /// Rates per reading target (`None` = the whole device); `rates` is their sum.
    target_rates: BTreeMap<Option<String>, Rates>,
}

impl View {
    /// Whether this source ever measured a rate for the device (hourly buckets do not).
    pub fn has_rates(&self) -> bool {
        !self.target_rates.is_empty()
    }

    fn record(&mut self, interface: Option<&String>, step: &Step) {
        self.totals.add(step);
        self.estimated = step.estimated;
        if step.no_rates {
            return;
        }
        self.target_rates.insert(interface.cloned(), step.rates);
        self.sum_rates();
    }

    /// Forgets the rates of the targets `part` says (a group member that left).
    fn forget_targets(&mut self, part: &dyn Fn(&str) -> bool) {
        self.target_rates.retain(|k, _| !k.as_deref().is_some_and(part));
        self.sum_rates();
    }

    fn sum_rates(&mut self) {
        let sum = |f: fn(&Rates) -> Option<f64>| {
            self.target_rates
                .values()
                .filter_map(f)
                .fold(None, |acc: Option<f64>, v| Some(acc.unwrap_or(0.0) + v))
        };
        self.rates = Rates {
            rx_bps: sum(|r| r.rx_bps),
            tx_bps: sum(|r| r.tx_bps),
        };
    }
}

/// Everything known about one device, ready to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: DeviceId,
    pub kind: DeviceKind,
    pub info: DeviceInfo,
    pub totals: Totals,
    pub rates: Rates,
    pub interfaces: BTreeMap<String, Interface>,
    /// Sources that have reported this device, in name order.
    pub sources: BTreeSet<String>,
    /// Sources that own the device-level totals (directly, or through an interface).
    pub total_sources: BTreeSet<String>,
    pub rate_sources: BTreeSet<String>,
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Latest value of every gauge ever reported, by key.
    pub metrics: BTreeMap<String, crate::model::Metric>,
    /// Which source reported each gauge (for its availability).
    pub metric_sources: BTreeMap<String, String>,
    pub labels: BTreeMap<String, crate::model::Label>,
    pub label_sources: BTreeMap<String, String>,
    /// When a source last said the device was online (ms); drives presence ("consider home").
    pub last_online_ms: Option<i64>,
    pub estimated: bool,
    /// Whether any traffic was ever reported (a device without it gets no traffic entities).
    pub has_traffic: bool,
    /// Every source's own count of this device, by source name (headline or not).
    pub views: BTreeMap<String, View>,
    /// `kind:name` of the source feeding the headline totals; the household fills it in.
    pub headline_source: Option<String>,
    /// Headline bytes since local midnight and since the billing month began (household).
    pub today: Option<Totals>,
    pub this_month: Option<Totals>,
    /// The closed day and billing month before them, final at the rollover (household).
    pub yesterday: Option<Totals>,
    pub last_month: Option<Totals>,
    /// From when each period's figure is whole (household): `{"today", "month", "yesterday",
    /// "last_month"}`, local times (RFC 3339) or null.
    pub complete_since: Option<serde_json::Value>,
    /// The device part of its entity ids, fixed by the household at first publication.
    pub entity_slug: Option<String>,
    /// The device's data plan, if it has one (household).
    pub quota: Option<crate::model::Quota>,
    /// The headline totals are the Deco's estimate reconciled with the uplink (the household
    /// writes them); the raw estimate stays a secondary view.
    pub reconciled: bool,
    online_by_source: BTreeMap<String, bool>,
    /// Sources whose latest poll listed this client or mesh node, online or not (a Deco keeps
    /// offline clients in its list): such a device is not forgotten (forget.rs).
    listed_by: BTreeSet<String>,
    field_owners: BTreeMap<&'static str, String>,
}

impl Device {
    fn new(id: DeviceId, kind: DeviceKind, restored: Option<PersistedDevice>) -> Self {
        let restored = restored.unwrap_or_default();
        let has_traffic = restored.totals != Totals::default() || !restored.interfaces.is_empty();
        let views = restored
            .views
            .iter()
            .map(|(source, totals)| {
                (
                    source.clone(),
                    View {
                        totals: *totals,
                        ..View::default()
                    },
                )
            })
            .collect();
        Self {
            id,
            kind,
            info: DeviceInfo::default(),
            totals: restored.totals,
            rates: Rates::UNKNOWN,
            interfaces: restored
                .interfaces
                .into_iter()
                .map(|(name, totals)| {
                    (
                        name,
                        Interface {
                            totals,
                            ..Interface::default()
                        },
                    )
                })
                .collect(),
            sources: BTreeSet::new(),
            total_sources: BTreeSet::new(),
            rate_sources: BTreeSet::new(),
            attributes: BTreeMap::new(),
            metrics: BTreeMap::new(),
            metric_sources: BTreeMap::new(),
            labels: BTreeMap::new(),
            label_sources: BTreeMap::new(),
            last_online_ms: None,
            estimated: false,
            has_traffic,
            views,
            headline_source: None,
            today: None,
            this_month: None,
            yesterday: None,
            last_month: None,
            complete_since: None,
            entity_slug: None,
            quota: None,
            reconciled: false,
            online_by_source: BTreeMap::new(),
            listed_by: BTreeSet::new(),
            field_owners: BTreeMap::new(),
        }
    }

    /// Online if any source says so; `None` until some source has an opinion.
    pub fn online(&self) -> Option<bool> {
        if self.online_by_source.is_empty() {
            None
        } else {
            Some(self.online_by_source.values().any(|v| *v))
        }
    }

    pub fn name(&self) -> &str {
        self.info.name.as_deref().unwrap_or(self.id.as_str())
    }

    /// Whether some source's latest poll still listed the device (online or offline).
    pub fn listed(&self) -> bool {
        !self.listed_by.is_empty()
    }

    /// `home` while online or seen online within `consider_home`, like HA's own trackers;
    /// a phone that drops off Wi-Fi for a minute is not "away".
    pub fn presence(&self, now_ms: i64, consider_home_ms: i64) -> &'static str {
        let recently = self.last_online_ms.is_some_and(|t| now_ms - t < consider_home_ms);
        if self.online() == Some(true) || recently {
            "home"
        } else {
            "not_home"
        }
    }

    pub fn primary_mac(&self) -> Option<MacAddr> {
        self.info.macs.first().copied()
    }

    /// Each descriptive field belongs to the first source that filled it: only that source may
    /// change it later. Two sources that disagree (a hostname vs. a configured name) would
    /// otherwise flip it on every poll and churn the discovery configs.
    fn merge_info(&mut self, source: &str, info: &DeviceInfo) {
        let DeviceInfo {
            name,
            macs,
            ip,
            manufacturer,
            model,
            sw_version,
            via,
        } = info;
        let owners = &mut self.field_owners;
        let mut set = |field: &'static str, slot: &mut Option<String>, value: &Option<String>| {
            if value.is_none() {
                return;
            }
            let owner = owners.entry(field).or_insert_with(|| source.to_owned());
            if owner == source {
                slot.clone_from(value);
            }
        };
        set("name", &mut self.info.name, name);
        set("ip", &mut self.info.ip, ip);
        set("manufacturer", &mut self.info.manufacturer, manufacturer);
        set("model", &mut self.info.model, model);
        set("sw_version", &mut self.info.sw_version, sw_version);
        if via.is_some() {
            let owner = owners.entry("via").or_insert_with(|| source.to_owned());
            if owner == source {
                self.info.via.clone_from(via);
            }
        }
        for mac in macs {
            if !self.info.macs.contains(mac) {
                self.info.macs.push(*mac);
            }
        }
    }
}

#[path = "ledger_fast.rs"]
mod fast;
#[path = "ledger_log.rs"]
mod log;
use log::log_counter_event;
#[path = "ledger_persist.rs"]
mod persist;
pub use persist::{Persist, PersistedRef};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ChannelKey {
    device: DeviceId,
    interface: Option<String>,
    source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Totals,
    Rates,
}

/// All devices and channels, plus the persisted totals of devices not seen yet this run.
#[derive(Debug, Default)]
pub struct Ledger {
    feeds: BTreeMap<String, Feed>,
    devices: BTreeMap<DeviceId, Device>,
    channels: BTreeMap<ChannelKey, ChannelState>,
    restored: BTreeMap<DeviceId, PersistedDevice>,
    cursors: BTreeMap<String, serde_json::Value>,
    friendly_names: BTreeMap<MacAddr, String>,
    /// Names given by the `device/rename` command; they beat every source's.
    renamed: BTreeMap<DeviceId, String>,
    /// Headline bytes of the last [`Ledger::apply`] that hourly buckets dated, by device.
    dated: BTreeMap<DeviceId, Vec<HourBucket>>,
    persist: Persist,
    /// A lookup key reused by the fast path (ledger_fast.rs), so it allocates nothing.
    scratch: Option<ChannelKey>,
    /// Targets whose first counter reading is a baseline, counted from the hour given (Unix
    /// s): a client first seen after its source's first poll (household/churn.rs); cleared
    /// after each apply.
    from_hour: BTreeMap<(DeviceId, Option<String>), i64>,
}

impl Ledger {
    pub fn new(feeds: Vec<Feed>, state: PersistedState, friendly_names: BTreeMap<MacAddr, String>) -> Self {
        let channels = state
            .channels
            .into_iter()
            .map(|c| {
                (
                    ChannelKey {
                        device: c.device,
                        interface: c.interface,
                        source: c.source,
                    },
                    c.state,
                )
            })
            .collect();
        Self {
            feeds: feeds.into_iter().map(|f| (f.name.clone(), f)).collect(),
            devices: BTreeMap::new(),
            channels,
            restored: state.devices,
            cursors: state.sources,
            friendly_names,
            renamed: BTreeMap::new(),
            dated: BTreeMap::new(),
            persist: Persist::default(),
            scratch: None,
            from_hour: BTreeMap::new(),
        }
    }

    /// The headline bytes of the last [`Ledger::apply`] that came from hourly buckets, with
    /// the hour each grew in (the rest of a device's growth happened at the poll).
    pub fn take_dated(&mut self) -> BTreeMap<DeviceId, Vec<HourBucket>> {
        std::mem::take(&mut self.dated)
    }

    /// A source that appears while running (an agent on another machine).
    pub fn add_feed(&mut self, feed: Feed) {
        self.mark_dirty();
        self.feeds.entry(feed.name.clone()).or_insert(feed);
    }

    /// The user's name for a device; applies now if the device is known, else when it appears.
    pub fn rename(&mut self, id: &DeviceId, name: &str) {
        self.mark_dirty();
        self.renamed.insert(id.clone(), name.to_owned());
        if let Some(device) = self.devices.get_mut(id) {
            device.info.name = Some(name.to_owned());
        }
    }

    pub fn renamed(&self) -> &BTreeMap<DeviceId, String> {
        &self.renamed
    }

    /// Forgets a device: its totals, baselines and name. A source that reports it again
    /// brings it back as a new device.
    pub fn forget(&mut self, id: &DeviceId) -> Option<Device> {
        self.mark_dirty();
        self.restored.remove(id);
        self.renamed.remove(id);
        self.channels.retain(|k, _| &k.device != id);
        self.devices.remove(id)
    }

    pub fn device(&self, id: &DeviceId) -> Option<&Device> {
        self.devices.get(id)
    }

    /// In the next apply, a counter of this target that has no baseline yet starts one: it
    /// counts nothing of what it already shows. A live counter (reconciled with hours) is
    /// counted as at install, and only the hours from `hour_s` on may add to it (reconcile.rs).
    pub fn count_from(&mut self, device: DeviceId, interface: Option<String>, hour_s: i64) {
        self.from_hour.insert((device, interface), hour_s);
    }

    /// Whether a target of `device` (its interfaces that `part` says, or the whole device when
    /// `part` takes `None`) was counted from a counter or hourly history — something a source
    /// may report again after it is forgotten — rather than from rates alone.
    pub fn counted_exactly(&self, device: &DeviceId, part: &dyn Fn(Option<&str>) -> bool) -> bool {
        let start = ChannelKey {
            device: device.clone(),
            interface: None,
            source: String::new(),
        };
        self.channels
            .range(start..)
            .take_while(|(k, _)| &k.device == device)
            .any(|(k, c)| c.kind != ChannelKind::Rate && part(k.interface.as_deref()))
    }

    /// Forgets the interfaces of `device` that `part` says (a group member gone for good):
    /// their baselines, rates and per-interface totals go; the device's total keeps their
    /// bytes (a total never goes down). Returns whether any was known.
    pub fn forget_interfaces(&mut self, device: &DeviceId, part: &dyn Fn(&str) -> bool) -> bool {
        let before = self.channels.len();
        self.channels
            .retain(|k, _| &k.device != device || !k.interface.as_deref().is_some_and(part));
        let mut known = self.channels.len() != before;
        if let Some(d) = self.devices.get_mut(device) {
            let before = d.interfaces.len();
            d.interfaces.retain(|name, _| !part(name));
            known |= d.interfaces.len() != before;
            for view in d.views.values_mut() {
                view.forget_targets(part);
            }
            if !d.interfaces.is_empty() {
                roll_up_interfaces(d);
            }
        }
        if let Some(saved) = self.restored.get_mut(device) {
            let before = saved.interfaces.len();
            saved.interfaces.retain(|name, _| !part(name));
            known |= saved.interfaces.len() != before;
        }
        if known {
            self.mark_dirty();
        }
        known
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Sizes of the ledger's per-device maps (tests: nothing stays of a forgotten device).
    #[cfg(test)]
    pub fn footprint(&self) -> [(&'static str, usize); 5] {
        [
            ("ledger.devices", self.devices.len()),
            ("ledger.channels", self.channels.len()),
            ("ledger.restored", self.restored.len()),
            ("ledger.renamed", self.renamed.len()),
            ("ledger.dated", self.dated.len()),
        ]
    }

    /// Devices of the state file that no source has reported in this run yet.
    pub fn restored_ids(&self) -> impl Iterator<Item = &DeviceId> {
        self.restored.keys()
    }

    /// Ids of every device seen this run or restored from the state file.
    pub fn known_ids(&self) -> impl Iterator<Item = &DeviceId> {
        self.devices.keys().chain(self.restored.keys())
    }

    /// Headline totals of a device seen this run or restored from the state file.
    pub fn totals_of(&self, id: &DeviceId) -> Option<Totals> {
        self.devices
            .get(id)
            .map(|d| d.totals)
            .or_else(|| self.restored.get(id).map(|d| d.totals))
    }

    /// For the household, which owns names and `via` (what a device is, not what it counted).
    pub fn device_mut(&mut self, id: &DeviceId) -> Option<&mut Device> {
        self.devices.get_mut(id)
    }

    /// Folds device `from` into `to` (a MAC first seen as a client turned out to be a server's
    /// or a mesh node's): its counter baselines move over where `to` has none, so the next
    /// reading continues instead of counting again; its views continue in `to`'s; with
    /// `carry_totals`, `to` takes its headline totals if it has none of its own yet (a server
    /// counts itself: it does not). Returns `from` as it was, for clearing it in HA; `None` if
    /// it was not known.
    pub fn merge_into(&mut self, from: &DeviceId, to: &DeviceId, carry_totals: bool) -> Option<Device> {
        self.mark_dirty();
        let retired = match self.devices.remove(from) {
            Some(d) => d,
            None => {
                let restored = self.restored.remove(from)?;
                Device::new(from.clone(), DeviceKind::Client, Some(restored))
            }
        };
        let moved: Vec<ChannelKey> = self.channels.keys().filter(|k| &k.device == from).cloned().collect();
        for key in moved {
            let Some(state) = self.channels.remove(&key) else {
                continue;
            };
            let target = ChannelKey {
                device: to.clone(),
                ..key
            };
            self.channels.entry(target).or_insert(state);
        }
        if let Some(name) = self.renamed.remove(from) {
            self.renamed.entry(to.clone()).or_insert(name);
        }
        match self.devices.get_mut(to) {
            Some(target) => {
                for (source, view) in &retired.views {
                    target.views.entry(source.clone()).or_insert_with(|| view.clone());
                }
                if carry_totals && !target.has_traffic && retired.has_traffic {
                    target.totals = retired.totals;
                    target.has_traffic = true;
                }
            }
            None => {
                let saved = self.restored.entry(to.clone()).or_insert_with(|| PersistedDevice {
                    totals: if carry_totals {
                        retired.totals
                    } else {
                        Totals::default()
                    },
                    ..PersistedDevice::default()
                });
                for (source, view) in &retired.views {
                    saved.views.entry(source.clone()).or_insert(view.totals);
                }
            }
        }
        Some(retired)
    }

    /// Forgets a device entirely: its totals, its views and every counter baseline.
    pub fn remove(&mut self, id: &DeviceId) -> bool {
        self.mark_dirty();
        let known = self.devices.remove(id).is_some() | self.restored.remove(id).is_some();
        self.channels.retain(|k, _| &k.device != id);
        known
    }

    pub fn cursor(&self, source: &str) -> Option<&serde_json::Value> {
        self.cursors.get(source)
    }

    pub fn set_cursor(&mut self, source: &str, cursor: serde_json::Value) {
        if self.cursors.get(source) != Some(&cursor) {
            self.mark_dirty();
            self.cursors.insert(source.to_owned(), cursor);
        }
    }

    /// Folds one successful poll of `source` into the ledger; returns the devices it touched.
    pub fn apply(&mut self, source: &str, observations: Vec<Observation>, now_ms: i64) -> Vec<DeviceId> {
        self.apply_changed(source, observations, now_ms, &|_| false);
        self.devices
            .values()
            .filter(|d| d.sources.contains(source))
            .map(|d| d.id.clone())
            .collect()
    }

    /// [`Ledger::apply`] of the observations that changed; `also_seen` says which devices were
    /// in the poll unchanged (the fast path took them). Returns the devices of `observations`
    /// and those that dropped out of the source's list just now, in id order.
    pub fn apply_changed(
        &mut self,
        source: &str,
        observations: Vec<Observation>,
        now_ms: i64,
        also_seen: &dyn Fn(&DeviceId) -> bool,
    ) -> Vec<DeviceId> {
        self.dated.clear();
        let mut touched: Vec<DeviceId> = observations.iter().map(|o| o.device.clone()).collect();
        touched.sort();
        touched.dedup();
        for obs in observations {
            self.apply_one(source, obs, now_ms);
        }
        // A client or mesh node that dropped out of its source's list is gone from the network
        // as far as that source knows, whatever it said last time.
        let mut dropped = Vec::new();
        for (id, device) in &mut self.devices {
            if !matches!(device.kind, DeviceKind::Client | DeviceKind::MeshNode)
                || touched.binary_search(id).is_ok()
                || also_seen(id)
            {
                continue;
            }
            device.listed_by.remove(source);
            if let Some(online) = device.online_by_source.get_mut(source)
                && *online
            {
                *online = false;
                dropped.push(id.clone());
            }
        }
        if !dropped.is_empty() {
            touched.extend(dropped);
            touched.sort();
        }
        self.from_hour.clear();
        touched
    }

    /// How many devices `source` has reported in this run.
    pub fn count_of(&self, source: &str) -> usize {
        self.devices.values().filter(|d| d.sources.contains(source)).count()
    }

    fn apply_one(&mut self, source: &str, obs: Observation, now_ms: i64) {
        let id = obs.device.clone();
        if !self.devices.contains_key(&id) {
            self.mark_dirty();
            let restored = self.restored.remove(&id);
            self.devices
                .insert(id.clone(), Device::new(id.clone(), obs.kind, restored));
        }
        let friendly = obs.info.macs.iter().find_map(|m| self.friendly_names.get(m)).cloned();

        // A fresh live counter is read before the hours that came with it: its value is the
        // total so far, and hours from before it must not count (reconcile.rs). An existing
        // one after them: its step then knows which of its bytes belong to finished hours.
        let fresh_live = |r: &crate::model::TrafficReading| {
            matches!(r.sample, TrafficSample::Live(_))
                && !self.channels.contains_key(&ChannelKey {
                    device: id.clone(),
                    interface: r.interface.clone(),
                    source: source.to_owned(),
                })
        };
        // Empty: as they came (the usual case, no allocation).
        let mut order: Vec<usize> = Vec::new();
        if obs.traffic.len() > 1 && obs.traffic.iter().any(fresh_live) {
            order = (0..obs.traffic.len()).collect();
            order.sort_by_key(|&i| !fresh_live(&obs.traffic[i]));
        }
        for n in 0..obs.traffic.len() {
            let reading = &obs.traffic[order.get(n).copied().unwrap_or(n)];
            let key = ChannelKey {
                device: id.clone(),
                interface: reading.interface.clone(),
                source: source.to_owned(),
            };
            let target_is_new = !self.target_has_history(&id, reading.interface.as_deref());
            let from_hour = if target_is_new { self.starts_from(&key) } else { None };
            let count_existing = target_is_new && from_hour.is_none();
            let mut grown = Vec::new();
            let (step, event) = match (&reading.sample, self.channels.get_mut(&key)) {
                (TrafficSample::Counter(c), Some(ch)) => ch.update_counter(c, now_ms),
                (TrafficSample::Rate(r), Some(ch)) => (ch.update_rate(r, now_ms), None),
                (TrafficSample::Counter(c), None) => {
                    self.persist.dirty = true;
                    let (ch, step) = ChannelState::start_counter(c, now_ms, count_existing);
                    self.channels.insert(key.clone(), ch);
                    (step, None)
                }
                (TrafficSample::Rate(r), None) => {
                    self.persist.dirty = true;
                    let (ch, step) = ChannelState::start_rate(r, now_ms);
                    self.channels.insert(key.clone(), ch);
                    (step, None)
                }
                (TrafficSample::Buckets(b), existing) => {
                    let ch = match existing {
                        Some(ch) => ch,
                        None => self.channels.entry(key.clone()).or_default(),
                    };
                    if ch.reconciler.is_some() {
                        (reconcile::hours(ch, b), None)
                    } else {
                        let (step, dated) = ch.update_buckets_dated(b, now_ms);
                        grown = dated;
                        (step, None)
                    }
                }
                (TrafficSample::Live(l), existing) => {
                    let ch = match existing {
                        Some(ch) => ch,
                        None => {
                            self.persist.dirty = true;
                            self.channels.entry(key.clone()).or_default()
                        }
                    };
                    // A live counter of a client first seen mid-run holds only what it moved
                    // since it joined (a new private MAC's): counted, as at install. Its hours
                    // start at `from_hour`, and they only add what the counter did not count.
                    let (step, event, dated) = reconcile::live(ch, l, now_ms, target_is_new, from_hour);
                    grown = dated;
                    (step, event)
                }
            };
            // Bytes, a new baseline or an estimate moved: the state file must follow. A counter
            // that only advanced its timestamp is recoverable from the baseline.
            let counted = matches!(reading.sample, TrafficSample::Counter(_) | TrafficSample::Live(_));
            if step.rx > 0 || step.tx > 0 || event.is_some() || !counted {
                self.mark_dirty();
            } else {
                self.mark_stale();
            }
            if let Some(event) = event {
                log_counter_event(source, &id, reading.interface.as_deref(), event);
            }
            if let Some(why) = step.rejected {
                let interface = reading.interface.as_deref().unwrap_or("-");
                tracing::warn!(source, device = %id, interface, reason = %why, "Implausible number ignored; totals kept.");
            }
            let iface = reading.interface.as_deref();
            let owns_totals = self.owner(&id, iface, Role::Totals).as_deref() == Some(source)
                && self.feeds_headline(&id, source, iface.is_some(), Role::Totals);
            let owns_rates = !step.no_rates
                && self.owner(&id, iface, Role::Rates).as_deref() == Some(source)
                && self.feeds_headline(&id, source, iface.is_some(), Role::Rates);
            let Some(device) = self.devices.get_mut(&id) else {
                continue;
            };
            device.has_traffic = true;
            if owns_totals && !grown.is_empty() {
                self.dated.entry(id.clone()).or_default().extend(grown);
            }
            device
                .views
                .entry(source.to_owned())
                .or_default()
                .record(reading.interface.as_ref(), &step);
            match &reading.interface {
                Some(name) => {
                    let iface = device.interfaces.entry(name.clone()).or_default();
                    if owns_totals {
                        iface.totals.add(&step);
                        iface.total_source = Some(source.to_owned());
                        iface.estimated = step.estimated;
                        device.totals.add(&step);
                    }
                    if owns_rates {
                        iface.rates = step.rates;
                        iface.rate_source = Some(source.to_owned());
                    }
                }
                None => {
                    if owns_totals {
                        device.totals.add(&step);
                        device.estimated = step.estimated;
                        device.total_sources = BTreeSet::from([source.to_owned()]);
                    }
                    if owns_rates {
                        device.rates = step.rates;
                        device.rate_sources = BTreeSet::from([source.to_owned()]);
                    }
                }
            }
        }

        let Some(device) = self.devices.get_mut(&id) else {
            return;
        };
        device.sources.insert(source.to_owned());
        device.merge_info(source, &obs.info);
        if let Some(name) = friendly {
            device.info.name = Some(name);
        }
        if let Some(name) = self.renamed.get(&id) {
            device.info.name = Some(name.clone());
        }
        if let Some(online) = obs.online {
            // Only a client list says online or not; an hourly history (online unknown) does
            // not list a device.
            if !device.listed_by.contains(source) {
                device.listed_by.insert(source.to_owned());
            }
            device.online_by_source.insert(source.to_owned(), online);
            if online {
                device.last_online_ms = Some(now_ms);
            }
        }
        for label in obs.labels {
            device.label_sources.insert(label.key.clone(), source.to_owned());
            device.labels.insert(label.key.clone(), label);
        }
        device.attributes.extend(obs.attributes);
        for metric in obs.metrics {
            device.metric_sources.insert(metric.key.clone(), source.to_owned());
            device.metrics.insert(metric.key.clone(), metric);
        }
        if !device.interfaces.is_empty() {
            roll_up_interfaces(device);
        }
    }

    /// A source's poll failed: servers it vouched for are no longer known to be up.
    pub fn source_failed(&mut self, source: &str) -> Vec<DeviceId> {
        let mut touched = Vec::new();
        for device in self.devices.values_mut() {
            if device.kind == DeviceKind::Server
                && let Some(online) = device.online_by_source.get_mut(source)
                && *online
            {
                *online = false;
                touched.push(device.id.clone());
            }
        }
        touched
    }

    /// The hour [`Ledger::count_from`] gave this channel's target.
    fn starts_from(&self, key: &ChannelKey) -> Option<i64> {
        if self.from_hour.is_empty() {
            return None;
        }
        self.from_hour
            .get(&(key.device.clone(), key.interface.clone()))
            .copied()
    }

    fn target_has_history(&self, device: &DeviceId, interface: Option<&str>) -> bool {
        let has_channel = self.target_channels(device, interface).next().is_some();
        let has_totals = self.devices.get(device).is_some_and(|d| match interface {
            Some(name) => d.interfaces.get(name).is_some_and(|i| i.totals != Totals::default()),
            None => d.totals != Totals::default() && d.interfaces.is_empty(),
        });
        has_channel || has_totals
    }

    /// The channels of one target, found by range in the ordered map.
    fn target_channels<'a>(
        &'a self,
        device: &'a DeviceId,
        interface: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ChannelKey, &'a ChannelState)> + 'a {
        let start = ChannelKey {
            device: device.clone(),
            interface: interface.map(str::to_owned),
            source: String::new(),
        };
        self.channels
            .range(start..)
            .take_while(move |(k, _)| &k.device == device && k.interface.as_deref() == interface)
    }

    /// The configured source that owns a target's totals or rates: best rank, then name.
    /// Hourly buckets carry no rate, so they never own one.
    fn owner(&self, device: &DeviceId, interface: Option<&str>, role: Role) -> Option<String> {
        self.target_channels(device, interface)
            .filter(|(_, state)| role == Role::Totals || state.kind != ChannelKind::Buckets)
            .filter_map(|(k, _)| self.feeds.get(&k.source))
            .min_by_key(|f| match role {
                Role::Totals => (f.total_rank, f.name.clone()),
                Role::Rates => (f.rate_rank, f.name.clone()),
            })
            .map(|f| f.name.clone())
    }

    /// Whether a reading of `source` may feed the device's headline numbers at all. The best
    /// source of the whole device decides: when it counts per interface, other sources' interface
    /// counts compete per target (vnstat and the kernel on one server) but a whole-device
    /// reading (a router's estimate of that server) is only a secondary view; when it counts
    /// the whole device, it alone feeds the headline. Exact beats estimated through the ranks.
    fn feeds_headline(&self, device: &DeviceId, source: &str, per_interface: bool, role: Role) -> bool {
        let start = ChannelKey {
            device: device.clone(),
            interface: None,
            source: String::new(),
        };
        let channels = || {
            self.channels
                .range(start.clone()..)
                .take_while(|(k, _)| &k.device == device)
                .filter(|(_, state)| role == Role::Totals || state.kind != ChannelKind::Buckets)
        };
        let best = channels()
            .filter_map(|(k, _)| self.feeds.get(&k.source))
            .min_by_key(|f| match role {
                Role::Totals => (f.total_rank, f.rate_rank, f.name.clone()),
                Role::Rates => (f.rate_rank, f.total_rank, f.name.clone()),
            });
        let Some(best) = best else {
            return true;
        };
        if best.name == source {
            return true;
        }
        let best_per_interface = channels().any(|(k, _)| k.source == best.name && k.interface.is_some());
        per_interface && best_per_interface
    }
}

/// Device-level rates and owners follow from its interfaces.
fn roll_up_interfaces(device: &mut Device) {
    let mut rx = None;
    let mut tx = None;
    let mut total_sources = BTreeSet::new();
    let mut rate_sources = BTreeSet::new();
    let mut estimated = false;
    for iface in device.interfaces.values() {
        if let Some(v) = iface.rates.rx_bps {
            rx = Some(rx.unwrap_or(0.0) + v);
        }
        if let Some(v) = iface.rates.tx_bps {
            tx = Some(tx.unwrap_or(0.0) + v);
        }
        total_sources.extend(iface.total_source.clone());
        rate_sources.extend(iface.rate_source.clone());
        estimated |= iface.estimated;
    }
    device.rates = Rates { rx_bps: rx, tx_bps: tx };
    device.total_sources = total_sources;
    device.rate_sources = rate_sources;
    device.estimated = estimated;
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
