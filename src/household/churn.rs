//! Clients that come and go (issue 22 §3: a day of private MACs): what the household
//! remembers of a device it forgot, and the members of the private-address group.
//!
//! - **Forgotten marks.** The ASUS Traffic Analyzer re-reads a day of hourly rows
//!   (protocols/asus.md §6), so a client forgotten an hour ago still has rows. A mark (when it
//!   was forgotten) is kept until [`MARK_KEEP_MS`] — the analyzer's day, the hour a row
//!   spans and a margin — after the device was last online (its last bytes), and while it is
//!   there, hours that ended before the forgetting never count, an observation
//!   that carries nothing newer (no hour after the forgetting, no counter, not online) does
//!   not bring the device back, and a counter it does come back with starts as a baseline
//!   (its old bytes were counted before). A device never seen is not marked: the first
//!   install still takes the analyzer's history.
//! - **Group members.** Under `random_macs = "group"` every private MAC is an interface of the
//!   group device. A member no source lists any more and unseen online for `forget_after` is
//!   forgotten like a device would be: its interface and baseline go, its bytes stay in the
//!   group's total (a total never goes down).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::admission::GROUP_ID;
use crate::model::{DeviceId, DeviceKind, Observation, TrafficSample};

/// How long after a forgotten device was last online its mark is kept: the analyzer's 24 rows,
/// the hour the last of them spans, and one more for a router clock that is off.
pub const MARK_KEEP_MS: i64 = 26 * 3_600_000;

const HOUR_MS: i64 = 3_600_000;

/// When a device was forgotten, and until when that matters (ms): `[at, until]` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark(pub i64, pub i64);

/// Recently forgotten devices; persisted with the household.
pub type Forgotten = BTreeMap<DeviceId, Mark>;

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

/// What may still count of an observation of a device forgotten at `forgotten_ms`: hours that
/// ended before then are dropped; `None` when the device is not `known` again and nothing is
/// left that says it is back (no newer hour with bytes, no counter or rate, not online).
pub fn since_forgetting(mut obs: Observation, forgotten_ms: i64, known: bool) -> Option<Observation> {
    obs.traffic.retain_mut(|reading| match &mut reading.sample {
        TrafficSample::Buckets(b) => {
            b.hours
                .retain(|h| h.start_s.saturating_mul(1000).saturating_add(HOUR_MS) > forgotten_ms);
            !b.hours.is_empty()
        }
        _ => true,
    });
    if known || obs.online == Some(true) || has_live_reading(&obs) {
        return Some(obs);
    }
    let newer_bytes = obs.traffic.iter().any(|r| match &r.sample {
        TrafficSample::Buckets(b) => b.hours.iter().any(|h| h.rx > 0 || h.tx > 0),
        _ => false,
    });
    newer_bytes.then_some(obs)
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
    /// Keeps a mark of a device about to be forgotten (see the module header), if a source
    /// counted it from a counter or hours: one that only gave rates (the Deco) has no history
    /// to come back from, so a household of those keeps no marks at all.
    pub(super) fn mark_forgotten(&mut self, id: &DeviceId, now_ms: i64) {
        let online = self.last_seen.get(id).copied().unwrap_or(now_ms);
        self.mark(id, online, now_ms, &|_| true);
    }

    /// Marks `id` (or the targets of it that `part` says) forgotten at `now_ms`, last online at
    /// `online_ms`, if its history may still come back.
    fn mark(&mut self, id: &DeviceId, online_ms: i64, now_ms: i64, part: &dyn Fn(Option<&str>) -> bool) {
        let until = online_ms.min(now_ms).saturating_add(MARK_KEEP_MS);
        let counted = match member_of(id.as_str()).filter(|_| self.members.contains_key(id)) {
            Some(_) => DeviceId::new(GROUP_ID).is_ok_and(|g| self.ledger.counted_exactly(&g, part)),
            None => self.ledger.counted_exactly(id, part),
        };
        if until > now_ms && counted {
            self.forgotten.insert(id.clone(), Mark(now_ms, until));
            self.dirty = true;
        }
    }

    /// What of `obs` may be applied (see the module header); `None`: nothing. The flag: a
    /// device forgotten lately comes back (its counters start as baselines).
    pub(super) fn after_forgetting(&self, obs: Observation) -> Option<(Observation, bool)> {
        let known = |id: &DeviceId| self.ledger.totals_of(id).is_some() || self.members.contains_key(id);
        if obs.kind == DeviceKind::Client
            && says_nothing(&obs)
            && !known(&obs.device)
            && !obs.info.macs.iter().any(|m| self.resolver.owner_of(m).is_some())
        {
            return None;
        }
        match self.forgotten.get(&obs.device) {
            Some(&Mark(at, _)) => {
                let known = known(&obs.device);
                since_forgetting(obs, at, known).map(|o| (o, !known))
            }
            None => Some((obs, false)),
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
    /// marks older than [`MARK_KEEP_MS`]; returns the group's id if its members changed.
    pub fn forget_members(&mut self, now_ms: i64) -> Option<DeviceId> {
        let before = self.forgotten.len();
        self.forgotten.retain(|_, mark| mark.1 >= now_ms);
        self.dirty |= self.forgotten.len() != before;
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
        for id in &due {
            let of_member = |name: Option<&str>| name.and_then(member_of).as_ref() == Some(id);
            let online = self.members.get(id).map_or(now_ms, |m| m.last_online_ms);
            self.mark(id, online, now_ms, &of_member);
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
            ("forgotten", self.forgotten.len()),
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
    fn only_hours_after_the_forgetting_count_or_bring_a_device_back() {
        let forgot = 10 * HOUR_MS + 600_000; // 10:10
        let old = analyzer_rows(&[(8 * 3600, 500), (9 * 3600, 700)]);
        assert!(since_forgetting(old.clone(), forgot, false).is_none(), "history only");
        let kept = since_forgetting(old, forgot, true).unwrap();
        assert!(kept.traffic.is_empty(), "known again: its old hours still never count");
        // The hour in progress at the forgetting (10:00-11:00) has bytes after it.
        let newer = analyzer_rows(&[(9 * 3600, 700), (10 * 3600, 40)]);
        let back = since_forgetting(newer, forgot, false).unwrap();
        let TrafficSample::Buckets(b) = &back.traffic[0].sample else {
            panic!()
        };
        assert_eq!(b.hours.len(), 1);
        assert_eq!(b.hours[0].rx, 40);
        // Empty newer hours say nothing.
        assert!(since_forgetting(analyzer_rows(&[(10 * 3600, 0)]), forgot, false).is_none());
        // Online in a client list: it is back.
        let mut online = analyzer_rows(&[]);
        online.online = Some(true);
        assert!(since_forgetting(online, forgot, false).is_some());
    }

    #[test]
    fn a_member_is_named_by_the_first_part_of_its_interface() {
        assert_eq!(member_of("daa119000001").unwrap().as_str(), "daa119000001");
        assert_eq!(member_of("daa119000001_wl0").unwrap().as_str(), "daa119000001");
    }
}
