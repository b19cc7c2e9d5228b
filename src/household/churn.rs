//! Clients that come and go (issue 22 §3: a day of private MACs): where the bytes of a client
//! first seen mid-run start, and the members of the private-address group.
//!
//! - **Counted from when it was first seen.** A source's first poll in this household is its
//!   install: every client it lists brings its history (the router's since-boot counter, the
//!   Traffic Analyzer's day of hours). A client first seen after that counts from the hour of
//!   the source's previous poll ([`CountsFrom`]): older hours never count, so the analyzer's day
//!   of rows neither brings a forgotten client back nor adds its old hours again (`forget_after`
//!   is at least an hour, so its last bytes lie in an hour before that poll). Its ASUS live
//!   counter is counted from its value, as at install: a new MAC's counter holds only what it
//!   moved since it joined, and the hours from the start on add only what the counter did not
//!   count. A plain counter starts as a baseline. Nothing is remembered of a forgotten device,
//!   so under any churn the memory stays that of the devices that live.
//!   What this costs: a client that joined while the bridge was stopped counts from the hour of
//!   the last poll before the stop (the analyzer's hours since then fill it in); and a forgotten
//!   client that comes back with an ASUS live counter the router kept for it while it was away
//!   counts that counter's old bytes again. Whether the DPI engine keeps counters of absent
//!   clients is unverified (asus.md §5). Baselines would avoid that, but a day of churn on the
//!   emulators lost most new MACs' first bytes with them: the analyzer's hours, which would fill
//!   them in, are often read after a short-lived MAC has left the client list.
//! - **Group members.** Under `random_macs = "group"` every private MAC is an interface of the
//!   group device. A member no source lists any more and unseen online for `forget_after` is
//!   forgotten like a device would be: its interface and baseline go, its bytes stay in the
//!   group's total (a total never goes down).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::admission::GROUP_ID;
use crate::model::{DeviceId, DeviceKind, Observation, TrafficSample};

/// How long a device's [`CountsFrom`] start is kept: the analyzer's 24 rows, the hour the last
/// of them spans, and one more for a router clock that is off. After it no source serves an
/// hour from before the start.
pub const START_KEEP_S: i64 = 26 * 3600;

const HOUR_S: i64 = 3600;

/// Clients (or group members) first seen after their source's first poll, and the hour (Unix
/// seconds) from which they count; kept [`START_KEEP_S`] or until the device is forgotten.
pub type CountsFrom = BTreeMap<DeviceId, i64>;

/// Per source past its first poll: until when (ms) the bytes of the clients it listed are
/// accounted for — its last successful poll, or a later forgetting (whose device's last bytes
/// lie at least `forget_after`, an hour, before it).
pub type Polled = BTreeMap<String, i64>;

/// One member of the private-address group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// When a source last said it was online (ms); when it joined, if never.
    pub last_online_ms: i64,
    /// Sources whose latest poll listed it, online or not.
    #[serde(skip)]
    pub listed_by: BTreeSet<String>,
}

/// The group's members by their own id (the MAC's); persisted with the household.
pub type Members = BTreeMap<DeviceId, Member>;

/// Drops the hours of `obs` that start before `from_s`.
pub fn hours_from(obs: &mut Observation, from_s: i64) {
    obs.traffic.retain_mut(|reading| match &mut reading.sample {
        TrafficSample::Buckets(b) => {
            b.hours.retain(|h| h.start_s >= from_s);
            !b.hours.is_empty()
        }
        _ => true,
    });
}

/// The top of the hour at or before `t_s`.
pub fn floor_hour(t_s: i64) -> i64 {
    t_s - t_s.rem_euclid(HOUR_S)
}

/// An observation of hours without a byte, or of no traffic at all, that does not say whether
/// the device is online (the analyzer's rows of a quiet device, its per-app split): it does
/// not make a device of its own.
pub fn says_nothing(obs: &Observation) -> bool {
    obs.online.is_none()
        && obs.traffic.iter().all(|r| match &r.sample {
            TrafficSample::Buckets(b) => b.hours.iter().all(|h| h.rx == 0 && h.tx == 0),
            _ => false,
        })
}

/// A reading of what is moving now (a counter or a rate), not of past hours.
pub fn has_live_reading(obs: &Observation) -> bool {
    obs.traffic
        .iter()
        .any(|r| !matches!(r.sample, TrafficSample::Buckets(_)))
}

/// The member an interface of the group belongs to: its name is the member's id, or that id,
/// `_` and the member's own interface (admission.rs `into_group`).
pub fn member_of(interface: &str) -> Option<DeviceId> {
    let id = interface.split('_').next()?;
    DeviceId::new(id).ok()
}

impl super::Household {
    /// What of `obs` may be applied, and from which hour its device counts (see the module
    /// header); `None`: nothing (a device unknown here that this observation does not bring).
    pub(super) fn counted_from(&self, source: &str, mut obs: Observation) -> Option<(Observation, Option<i64>)> {
        if obs.kind != DeviceKind::Client {
            return Some((obs, None));
        }
        let known = self.ledger.totals_of(&obs.device).is_some()
            || self.members.contains_key(&obs.device)
            || obs.info.macs.iter().any(|m| self.resolver.owner_of(m).is_some());
        let from = match self.counts_from.get(&obs.device) {
            Some(&from) => Some(from),
            None if known => None,
            // A source past its first poll: the hour up to which its clients are accounted for.
            None => self.polled.get(source).map(|&ms| floor_hour(ms.div_euclid(1000))),
        };
        if let Some(from) = from {
            hours_from(&mut obs, from);
        }
        if !known && says_nothing(&obs) {
            return None;
        }
        Some((obs, from))
    }

    /// `obs` of a device that counts `from` an hour was admitted as `device`: remember the
    /// start for its later readings, and start its counters as baselines from that hour.
    pub(super) fn count_from(&mut self, reported: &DeviceId, device: &DeviceId, obs: &Observation, from: i64) {
        if !self.counts_from.contains_key(reported) {
            self.counts_from.insert(reported.clone(), from);
            self.dirty = true;
        }
        for reading in &obs.traffic {
            if !matches!(reading.sample, TrafficSample::Buckets(_)) {
                self.ledger.count_from(device.clone(), reading.interface.clone(), from);
            }
        }
    }

    /// A device or member was forgotten at `now_ms`: a client first seen from now on counts
    /// from that hour at the earliest, even if its source was away since (router down).
    pub(super) fn forgot_at(&mut self, now_ms: i64) {
        for at in self.polled.values_mut() {
            *at = (*at).max(now_ms);
        }
    }

    /// After a successful poll of `source` at `now_ms`.
    pub(super) fn polled(&mut self, source: &str, now_ms: i64) {
        match self.polled.get_mut(source) {
            Some(at) => {
                *at = (*at).max(now_ms);
                self.stale = true;
            }
            None => {
                self.polled.insert(source.to_owned(), now_ms);
                self.dirty = true;
            }
        }
    }

    /// A member of the group was in `source`'s poll.
    pub(super) fn member_seen(&mut self, source: &str, member: &DeviceId, online: Option<bool>, now_ms: i64) {
        let entry = match self.members.get_mut(member) {
            Some(m) => m,
            None => {
                self.dirty = true;
                self.members.entry(member.clone()).or_insert(Member {
                    last_online_ms: now_ms,
                    listed_by: BTreeSet::new(),
                })
            }
        };
        if online.is_some() && !entry.listed_by.contains(source) {
            entry.listed_by.insert(source.to_owned());
        }
        if online == Some(true) {
            entry.last_online_ms = now_ms;
            self.stale = true;
        }
    }

    /// After a poll of `source`: members it listed before and not now are off its list.
    pub(super) fn members_listed(&mut self, source: &str, listed: &BTreeSet<DeviceId>) {
        for (id, member) in &mut self.members {
            if !listed.contains(id) {
                member.listed_by.remove(source);
            }
        }
    }

    /// Forgets group members no source lists that were unseen online for `forget_after`, and
    /// starts older than [`START_KEEP_S`]; returns the group's id if its members changed.
    pub fn forget_members(&mut self, now_ms: i64) -> Option<DeviceId> {
        let before = self.counts_from.len();
        let now_s = now_ms.div_euclid(1000);
        self.counts_from.retain(|_, from| *from + START_KEEP_S > now_s);
        self.dirty |= self.counts_from.len() != before;
        let group = DeviceId::new(GROUP_ID).ok()?;
        // Members of a state file from before members were kept: their clock starts now.
        let parts: Vec<DeviceId> = self
            .ledger
            .device(&group)
            .map(|d| d.interfaces.keys().filter_map(|n| member_of(n)).collect())
            .unwrap_or_default();
        for id in parts {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.members.entry(id) {
                slot.insert(Member {
                    last_online_ms: now_ms,
                    listed_by: BTreeSet::new(),
                });
                self.dirty = true;
            }
        }
        let limit = i64::try_from(self.forget_after.as_millis()).unwrap_or(i64::MAX);
        if limit == 0 {
            return None;
        }
        let due: Vec<DeviceId> = self
            .members
            .iter()
            .filter(|(_, m)| m.listed_by.is_empty() && now_ms.saturating_sub(m.last_online_ms) > limit)
            .map(|(id, _)| id.clone())
            .collect();
        if due.is_empty() {
            return None;
        }
        self.forgot_at(now_ms);
        for id in &due {
            self.counts_from.remove(id);
            self.members.remove(id);
            self.skips.forget_device(id);
        }
        let gone: BTreeSet<&str> = due.iter().map(DeviceId::as_str).collect();
        let part = |name: &str| name.split('_').next().is_some_and(|m| gone.contains(m));
        self.ledger.forget_interfaces(&group, &part);
        self.dirty = true;
        tracing::info!(device = %group, members = due.len(), left = self.members.len(), "Private-address group members unseen for forget_after forgotten; their bytes stay in the group's total.");
        self.settle(&group);
        Some(group)
    }
}

impl super::Household {
    /// Sizes of every per-device map of the household and its ledger (tests: after churn
    /// and forgetting they are back where they were).
    #[cfg(test)]
    pub fn footprint(&self) -> Vec<(&'static str, usize)> {
        let mut out = vec![
            ("placement", self.placement.len()),
            ("periods", self.periods.len()),
            ("last_seen", self.last_seen.len()),
            ("entity_slugs", self.entity_slugs.len()),
            ("kept_out", self.kept_out.len()),
            ("evicted", self.evicted.len()),
            ("counts_from", self.counts_from.len()),
            ("members", self.members.len()),
            ("skips", self.skips.len()),
            ("retired", self.retired.len()),
            ("meshes.last_exact_ms", self.meshes.footprint()),
        ];
        out.extend(self.ledger.footprint());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketSample, HourBucket, TrafficReading};

    fn analyzer_rows(hours: &[(i64, u64)]) -> Observation {
        let mut o = Observation::new(DeviceId::new("daa119000001").unwrap(), DeviceKind::Client);
        o.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Buckets(BucketSample {
                hours: hours
                    .iter()
                    .map(|(start_s, rx)| HourBucket {
                        start_s: *start_s,
                        rx: *rx,
                        tx: 0,
                    })
                    .collect(),
            }),
        });
        o
    }

    #[test]
    fn hours_before_the_start_are_dropped() {
        let mut obs = analyzer_rows(&[(8 * 3600, 500), (9 * 3600, 700), (10 * 3600, 40)]);
        hours_from(&mut obs, 10 * 3600);
        let TrafficSample::Buckets(b) = &obs.traffic[0].sample else {
            panic!()
        };
        assert_eq!(b.hours.iter().map(|h| h.rx).collect::<Vec<_>>(), [40]);
        let mut old = analyzer_rows(&[(8 * 3600, 500)]);
        hours_from(&mut old, 10 * 3600);
        assert!(old.traffic.is_empty());
        assert!(says_nothing(&old), "nothing left says the device is there");
    }

    #[test]
    fn a_start_is_the_top_of_an_hour() {
        assert_eq!(floor_hour(10 * 3600 + 59), 10 * 3600);
        assert_eq!(floor_hour(10 * 3600), 10 * 3600);
        assert_eq!(floor_hour(-1), -3600);
    }

    #[test]
    fn a_member_is_named_by_the_first_part_of_its_interface() {
        assert_eq!(member_of("daa119000001").unwrap().as_str(), "daa119000001");
        assert_eq!(member_of("daa119000001_wl0").unwrap().as_str(), "daa119000001");
    }
}
