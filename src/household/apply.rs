//! One successful poll folded into the household. Observations that say nothing new take the
//! fast path (skip.rs) and are not touched; the rest are routed, admitted, named and applied
//! in full. Time still passes for the untouched: their timestamps move (ledger), and clients
//! whose presence may have just turned `not_home` are touched so the bridge renders them.

use std::collections::{BTreeMap, BTreeSet};

use super::admission::{self, Admission};
use super::names::Candidate;
use super::{Household, periods, skip};
use crate::accounting::{Device, Totals};
use crate::model::{DeviceId, DeviceKind, History, Observation};

/// What [`Household::apply`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Devices whose published state may have changed: to render.
    pub touched: Vec<DeviceId>,
    /// Devices the source has reported in this run (its `devices` in `bridge/info`).
    pub devices: usize,
}

impl Household {
    /// Folds one successful poll in; returns the devices it touched.
    pub fn apply(&mut self, source: &str, observations: Vec<Observation>, now_ms: i64) -> Vec<DeviceId> {
        self.apply_poll(source, observations, now_ms).touched
    }

    /// [`Household::apply`], also counting the source's devices.
    pub fn apply_poll(&mut self, source: &str, observations: Vec<Observation>, now_ms: i64) -> Applied {
        let learnt = self.resolver.learn(&observations);
        if learnt || !self.merged_once {
            self.merged_once = true;
            self.merge_claimed();
            self.skips.clear();
            self.dirty = true;
        }
        let previous_ms = self.skips.begin(source, now_ms);
        // A Deco mesh reconciled with its uplink spreads the router's hours over every member
        // on each poll (estimates.rs): all of its members go the full way.
        let reconciled = self.meshes.reconcilers.values().any(|r| r.has_uplink());
        // Not in a poll that taught who is who (routes may have changed), but its digests are
        // kept for the next one.
        let fast = !learnt && !reconciled;
        let rank = self.feeds.get(source).map_or(u8::MAX, |f| f.total_rank);
        let mut routed = Vec::with_capacity(if fast { 16 } else { observations.len() });
        // (device as reported, digest if it may take the fast path next time)
        let mut recorded: Vec<(DeviceId, Option<u64>)> = Vec::new();
        let mut group_online = None;
        // Group members in this poll, online or not (churn.rs).
        let mut members_listed = BTreeSet::new();
        for obs in observations {
            // A client first seen after its source's first poll counts from then (churn.rs).
            let Some((obs, from)) = self.counted_from(source, obs) else {
                continue;
            };
            let digest = (!reconciled && obs.kind == DeviceKind::Client).then(|| skip::digest(&obs));
            if let Some(d) = digest.filter(|_| fast && obs.history.is_none())
                && self.skips.same(source, &obs.device, d)
                && self.ledger.apply_unchanged(source, &obs, now_ms)
            {
                if obs.online == Some(true) {
                    self.seen_online(&obs.device, now_ms);
                }
                continue;
            }
            let reported = obs.device.clone();
            let r = self.resolver.route(obs);
            let mut obs = r.observation;
            let mut plain = !r.borrowed && obs.device == reported;
            if !r.borrowed && obs.kind == DeviceKind::Client {
                match self.admit(&obs) {
                    Admission::Track => {}
                    Admission::Drop => {
                        self.evict(&obs.device);
                        // Remembered only when a name decided it (a source that does not know
                        // the name must not bring it back); a MAC decides the same every time,
                        // and a set of every private MAC ever seen would only grow.
                        if !self.dropped_by_mac(&obs) {
                            self.kept_out.insert(obs.device.clone());
                        }
                        recorded.push((reported, None));
                        continue;
                    }
                    Admission::Group => {
                        self.evict(&obs.device);
                        self.member_seen(source, &obs.device, obs.online, now_ms);
                        if obs.online.is_some() {
                            members_listed.insert(obs.device.clone());
                        }
                        obs = admission::into_group(obs);
                        group_online = Some(group_online.unwrap_or(false) | (obs.online == Some(true)));
                        plain = false;
                    }
                }
            }
            if let Some(from) = from {
                self.count_from(&reported, &obs.device, &obs, from);
            }
            recorded.push((reported, digest.filter(|_| plain)));
            if !r.borrowed {
                let place = self.placement.entry(obs.device.clone()).or_default();
                place.names.record(
                    source,
                    Candidate {
                        rank,
                        name: obs.info.name.clone(),
                        vendor: obs.info.manufacturer.clone(),
                    },
                );
                // An observation without `via` (a Traffic Analyzer entry) says nothing of it.
                if let Some(via) = &obs.info.via {
                    place.via.insert(source.to_owned(), via.clone());
                }
            }
            // Names and `via` are the household's to decide (below), not first-come.
            obs.info.name = None;
            obs.info.via = None;
            routed.push(obs);
        }
        for (reported, digest) in &recorded {
            self.skips.record(source, reported, *digest);
        }
        if !self.members.is_empty() {
            self.members_listed(source, &members_listed);
        }
        // The group is online while any of its members is, whichever came last in the poll.
        if let Some(online) = group_online {
            for obs in routed.iter_mut().filter(|o| o.device.as_str() == admission::GROUP_ID) {
                obs.online = Some(online);
            }
        }
        // Devices with traffic counted before this poll. One that another source listed without
        // traffic (a Deco unit, before the ASUS counts its uplink) is new to the periods: its
        // first total is not today's traffic.
        let mut before: BTreeMap<DeviceId, Totals> = routed
            .iter()
            .filter_map(|o| {
                let totals = match self.ledger.device(&o.device) {
                    Some(device) => device.has_traffic.then_some(device.totals)?,
                    // Restored from the state file, not seen in this run yet.
                    None => self.ledger.totals_of(&o.device)?,
                };
                Some((o.device.clone(), totals))
            })
            .collect();
        let estimates = self.before_estimates(source, &routed);
        let first_hours = self.first_hours_before(&routed, &before);
        // Histories read with this poll's counters (fill.rs): taken out before accounting.
        let mut histories: BTreeMap<DeviceId, History> = routed
            .iter_mut()
            .filter_map(|o| Some((o.device.clone(), o.history.take()?)))
            .collect();
        let skips = &self.skips;
        let mut touched = self
            .ledger
            .apply_changed(source, routed, now_ms, &|id| skips.seen_now(source, id));
        // Reconciled headlines may move on any poll (the uplink's hours come from the router).
        for (id, old) in self.after_estimates(source, estimates, now_ms) {
            self.dirty = true;
            before.entry(id.clone()).or_insert(old);
            touched.push(id);
        }
        let mut dated = self.ledger.take_dated();
        self.first_hours_after(source, first_hours, now_ms);
        for id in &touched {
            if self.ledger.device(id).and_then(Device::online) == Some(true) {
                self.seen_online(id, now_ms);
            }
            // Periods add what the headline added; a device's first appearance (a restored
            // total, a database's history) is not today's traffic, but its periods start now
            // (whether its next observation takes the fast path or not). A history that came
            // with the headline's own reading sets them (fill.rs); one that holds that reading
            // (vnstat's tables) also holds this poll's delta, which is then not added
            // (periods.rs: nothing filled in is counted again).
            let history = histories
                .remove(id)
                .filter(|_| self.ledger.device(id).is_some_and(|d| d.total_sources.contains(source)));
            let holds_reading = history.as_ref().is_some_and(|h| h.until_s.is_none());
            if holds_reading {
                dated.remove(id);
            } else if let Some(device) = self.ledger.device(id) {
                let (delta, hours) = match before.get(id) {
                    Some(old) => (
                        Totals {
                            rx: device.totals.rx.saturating_sub(old.rx),
                            tx: device.totals.tx.saturating_sub(old.tx),
                        },
                        dated.remove(id).unwrap_or_default(),
                    ),
                    None => (Totals::default(), Vec::new()),
                };
                periods::add_dated(
                    self.periods.entry(id.clone()).or_default(),
                    &self.calendar,
                    now_ms,
                    delta,
                    &hours,
                );
            }
            if let Some(history) = history {
                self.periods
                    .entry(id.clone())
                    .or_default()
                    .fill(&self.calendar, now_ms, &history);
            }
            self.settle(id);
        }
        self.presence_may_change(source, previous_ms, &mut touched);
        self.polled(source, now_ms);
        touched.sort();
        touched.dedup();
        Applied {
            touched,
            devices: self.ledger.count_of(source),
        }
    }

    /// Seen online now: the forgetting clock starts over (a new device: its first entry).
    fn seen_online(&mut self, id: &DeviceId, now_ms: i64) {
        match self.last_seen.get_mut(id) {
            Some(t) => {
                *t = now_ms;
                self.stale = true;
            }
            None => {
                self.last_seen.insert(id.clone(), now_ms);
                self.dirty = true;
            }
        }
    }

    /// Clients of `source` that are offline but were still `home` at its previous poll
    /// (`consider_home` had not run out): their presence may have turned since, so they are
    /// rendered whether or not anything else changed.
    fn presence_may_change(&self, source: &str, previous_ms: Option<i64>, touched: &mut Vec<DeviceId>) {
        let consider_ms = i64::try_from(self.consider_home.as_millis()).unwrap_or(i64::MAX);
        for device in self.ledger.devices() {
            if device.kind == DeviceKind::Client
                && device.online() != Some(true)
                && device
                    .last_online_ms
                    .is_some_and(|t| previous_ms.is_none_or(|prev| prev.saturating_sub(t) < consider_ms))
                && device.sources.contains(source)
            {
                touched.push(device.id.clone());
            }
        }
    }
}
