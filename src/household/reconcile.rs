//! Reconciliation: the Deco's estimated client totals scaled, hour by hour, to what the ASUS
//! measured exactly on the Deco's uplink (issue 9 §6, design.md "Headline entities").
//!
//! The Deco only shows instantaneous rates; integrating them misses bursts between polls (±30 %
//! per client over a day). The upstream router counts every byte of the Deco's WAN side exactly
//! (Traffic Analyzer hours, or live counters). For each clock hour `H` and direction:
//!
//! ```text
//! target(H)   = uplink(H) − exact(H)          exact: members counted exactly (vnstat, host, ASUS)
//! client c    = target(H) × raw_c(H) / Σ raw(H)
//! ```
//!
//! so the estimated clients together get exactly what crossed the uplink and is not someone
//! else's. Hours the Deco could not see (an outage) are filled the same way: the uplink kept
//! counting, and the missing part is shared like the hours before. An hour whose uplink is not
//! known yet (still open, not read) counts `raw × scale` of the latest known hours.
//!
//! Scaling a whole hour removes what all clients share (a wrong unit, a bias, an outage); a
//! phone's own error (a burst caught or missed by a 2 s snapshot) stays: the uplink says how
//! much crossed it, not whose it was. (Sharing 5-minute slots of a live uplink counter by the
//! slot's estimates was tried and is worse: each slot's leftover lands on whoever happened to be
//! active then, see README "Reconciliation".)
//!
//! Published totals only grow: each is the running maximum of its reconciled sum, so a
//! correction downwards (a provisional hour that was too high) is carried forward, absorbed by
//! later growth, never subtracted. A pure state machine: hours and `now` in, totals out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::SpeedUnit;
use crate::model::{DeviceId, HourBucket};

use super::hours::{HOUR_MS, add, hour_of, scale_of, split, spread, to_bytes};
/// Hours kept open to corrections; the Traffic Analyzer re-reads 24 hours back.
const KEEP_HOURS: i64 = 30;
/// A Deco hour seen for at least this share of its length gives trustworthy shares and scale.
const WELL_COVERED: f64 = 0.9;
/// The provisional scale comes from up to this many recent well-covered hours.
const SCALE_HOURS: usize = 6;
/// Hours with fewer bytes than this (both sides) say nothing about the ratio.
const MEANINGFUL_BYTES: u64 = 500_000;
/// Hours needed before the unit check speaks.
const UNIT_CHECK_HOURS: usize = 3;

/// Bytes `[rx, tx]` in the device's own directions (rx = download).
pub type Pair = [u64; 2];

/// One clock hour of one Deco mesh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Hour {
    /// The uplink's exact bytes of this hour (Traffic Analyzer), largest seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uplink: Option<Pair>,
    /// The uplink's bytes booked from a live counter, when there are no hours.
    #[serde(default)]
    uplink_live: Pair,
    /// Bytes of exactly counted members (servers, clients the ASUS counts).
    #[serde(default)]
    exact: Pair,
    /// The Deco's estimate per estimated member.
    #[serde(default)]
    raw: BTreeMap<DeviceId, Pair>,
    /// Milliseconds of this hour the Deco was polled without a gap.
    #[serde(default)]
    covered_ms: i64,
    /// Milliseconds of this hour the uplink's live counter was read without a gap.
    #[serde(default)]
    live_ms: i64,
}

/// What the reconciliation knows of one estimated member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Member {
    /// Reconciled bytes of hours no longer kept, plus its total when it joined.
    base: [f64; 2],
    /// What was published; never lowered.
    published: Pair,
}

/// The reconciliation of one Deco mesh against its uplink.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconciler {
    hours: BTreeMap<i64, Hour>,
    members: BTreeMap<DeviceId, Member>,
    /// Wall time (ms) of the latest uplink hours read; an hour is known once read after its end.
    #[serde(default)]
    uplink_read_ms: i64,
    /// Whether the uplink ever came as hours (then live deltas are ignored).
    #[serde(default)]
    has_hours: bool,
    /// When the reconciliation started: the uplink of the hour it started in holds bytes from
    /// before, which belong to nobody's total.
    #[serde(default)]
    started_ms: Option<i64>,
    /// The unit warning is given once per run.
    #[serde(skip)]
    unit_warned: bool,
    /// Some hour's uplink has been known: the totals are reconciled, not just raw.
    #[serde(default)]
    reconciled: bool,
}

/// One hour's verdict, per direction.
struct Verdict {
    /// Reconciled bytes per member.
    share: BTreeMap<DeviceId, [f64; 2]>,
}

impl Reconciler {
    /// Whether the uplink has ever been seen (without it, reconciled = raw).
    pub fn has_uplink(&self) -> bool {
        self.has_hours || self.hours.values().any(|h| h.uplink_live != [0, 0])
    }

    /// Whether some hour was reconciled with a known uplink (before that, totals are raw).
    pub fn has_reconciled(&self) -> bool {
        self.reconciled
    }

    /// Whether `id` is an estimated member.
    pub fn is_member(&self, id: &DeviceId) -> bool {
        self.members.contains_key(id)
    }

    /// An estimated member starts (or is known): its published total starts at `total`.
    pub fn join(&mut self, id: &DeviceId, total: Pair) {
        self.members.entry(id.clone()).or_insert_with(|| Member {
            base: [total[0] as f64, total[1] as f64],
            published: total,
        });
    }

    /// A member that left the mesh's estimates (now counted exactly, or merged into another).
    pub fn leave(&mut self, id: &DeviceId) {
        self.members.remove(id);
        for hour in self.hours.values_mut() {
            hour.raw.remove(id);
        }
    }

    /// The Deco was polled over `[from_ms, to_ms]` without a gap.
    pub fn covered(&mut self, from_ms: i64, to_ms: i64) {
        self.started_ms.get_or_insert(from_ms);
        split(from_ms, to_ms, |h, part_ms| {
            self.hours.entry(h).or_default().covered_ms += part_ms;
        });
    }

    /// The Deco's estimate of member `id` grew by `delta` over `[from_ms, to_ms]`.
    pub fn estimate(&mut self, id: &DeviceId, from_ms: i64, to_ms: i64, delta: Pair) {
        if delta == [0, 0] {
            return;
        }
        for (h, part) in spread(from_ms, to_ms, delta, HOUR_MS) {
            let raw = self.hours.entry(h).or_default().raw.entry(id.clone()).or_default();
            *raw = add(*raw, part);
        }
    }

    /// An exactly counted member behind the mesh moved `delta` bytes over `[from_ms, to_ms]`.
    pub fn exact(&mut self, from_ms: i64, to_ms: i64, delta: Pair) {
        for (h, part) in spread(from_ms, to_ms, delta, HOUR_MS) {
            let e = &mut self.hours.entry(h).or_default().exact;
            *e = add(*e, part);
        }
    }

    /// Exact hours of the uplink as the upstream router reported them at `now_ms`.
    pub fn uplink_hours(&mut self, hours: &[HourBucket], now_ms: i64) {
        let oldest = hour_of(now_ms) - KEEP_HOURS * HOUR_MS;
        for b in hours {
            let h = b.start_s.saturating_mul(1000);
            if h < oldest || h > now_ms {
                continue;
            }
            let up = self.hours.entry(h).or_default().uplink.get_or_insert([0, 0]);
            up[0] = up[0].max(b.rx);
            up[1] = up[1].max(b.tx);
        }
        self.has_hours = true;
        self.uplink_read_ms = self.uplink_read_ms.max(now_ms);
    }

    /// The uplink's live counter grew by `delta` over `[from_ms, to_ms]` (read without a gap).
    pub fn uplink_live(&mut self, from_ms: i64, to_ms: i64, delta: Pair) {
        for (h, part) in spread(from_ms, to_ms, delta, HOUR_MS) {
            let hour = self.hours.entry(h).or_default();
            hour.uplink_live = add(hour.uplink_live, part);
        }
        split(from_ms, to_ms, |h, part_ms| {
            self.hours.entry(h).or_default().live_ms += part_ms;
        });
        self.uplink_read_ms = self.uplink_read_ms.max(to_ms);
    }

    /// The published total of a member, if it is one.
    pub fn published(&self, id: &DeviceId) -> Option<Pair> {
        self.members.get(id).map(|m| m.published)
    }

    /// Recomputes every member's total at `now_ms`; returns those whose published total grew.
    pub fn evaluate(&mut self, now_ms: i64) -> Vec<(DeviceId, Pair)> {
        self.fold_old(now_ms);
        self.reconciled |= self
            .hours
            .iter()
            .any(|(&h, hour)| h + HOUR_MS <= now_ms && self.known_uplink(h, hour).is_some());
        let mut ideal: BTreeMap<DeviceId, [f64; 2]> = self.members.iter().map(|(id, m)| (id.clone(), m.base)).collect();
        for v in self.verdicts(now_ms).into_values() {
            for (id, share) in v.share {
                if let Some(sum) = ideal.get_mut(&id) {
                    sum[0] += share[0];
                    sum[1] += share[1];
                }
            }
        }
        let mut grown = Vec::new();
        for (id, member) in &mut self.members {
            let Some(sum) = ideal.get(id) else { continue };
            let next = [
                member.published[0].max(to_bytes(sum[0])),
                member.published[1].max(to_bytes(sum[1])),
            ];
            if next != member.published {
                member.published = next;
                grown.push((id.clone(), next));
            }
        }
        grown
    }

    /// The uplink of hour `h` if it is known: read after the hour ended, and not an empty
    /// hour while the Deco saw traffic (a Traffic Analyzer row written late).
    fn known_uplink(&self, h: i64, hour: &Hour) -> Option<Pair> {
        let ended = h + HOUR_MS;
        if self.uplink_read_ms < ended || self.started_ms.is_some_and(|s| s > h) {
            return None;
        }
        let up = if self.has_hours {
            hour.uplink?
        } else {
            // A live counter counts the hour only if it was read all through it.
            if (hour.live_ms as f64) < HOUR_MS as f64 * WELL_COVERED {
                return None;
            }
            hour.uplink_live
        };
        let raw = sum_raw(hour);
        if up == [0, 0] && raw[0].saturating_add(raw[1]) > MEANINGFUL_BYTES {
            return None;
        }
        Some(up)
    }

    /// Each kept hour's reconciled bytes per member, oldest first.
    fn verdicts(&self, now_ms: i64) -> BTreeMap<i64, Verdict> {
        let mut out = BTreeMap::new();
        // Shares of the latest well-covered hour: how an outage's traffic is divided.
        let mut last_shares: Option<BTreeMap<DeviceId, [f64; 2]>> = None;
        // Scale (target / raw) of recent well-covered known hours, per direction.
        let mut recent: Vec<([f64; 2], [f64; 2])> = Vec::new();
        let mut provisional: Vec<i64> = Vec::new();
        for (&h, hour) in &self.hours {
            let raw = sum_raw(hour);
            let coverage = (hour.covered_ms as f64 / HOUR_MS as f64).min(1.0);
            let shares = shares_of(hour, raw);
            let Some(up) = self.known_uplink(h, hour).filter(|_| h + HOUR_MS <= now_ms) else {
                provisional.push(h);
                continue;
            };
            let target = [up[0].saturating_sub(hour.exact[0]), up[1].saturating_sub(hour.exact[1])];
            let mut share = BTreeMap::new();
            for d in 0..2 {
                // The part of the hour the Deco missed is shared like the latest full hour.
                let seen = if raw[d] > 0 { coverage } else { 0.0 };
                let mut weights: BTreeMap<&DeviceId, f64> = BTreeMap::new();
                for (id, s) in &shares {
                    *weights.entry(id).or_default() += s[d] * seen;
                }
                if seen < 1.0
                    && let Some(last) = &last_shares
                {
                    for (id, s) in last {
                        *weights.entry(id).or_default() += s[d] * (1.0 - seen);
                    }
                }
                let total: f64 = weights.values().sum();
                if total <= 0.0 {
                    continue;
                }
                for (id, w) in weights {
                    let e: &mut [f64; 2] = share.entry(id.clone()).or_default();
                    e[d] = target[d] as f64 * w / total;
                }
            }
            if coverage >= WELL_COVERED && raw[0].saturating_add(raw[1]) > 0 {
                last_shares = Some(shares);
                if raw[0].saturating_add(raw[1]) >= MEANINGFUL_BYTES {
                    recent.push(([target[0] as f64, target[1] as f64], [raw[0] as f64, raw[1] as f64]));
                }
            }
            out.insert(h, Verdict { share });
        }
        let scale = scale_of(&recent, SCALE_HOURS);
        for h in provisional {
            let Some(hour) = self.hours.get(&h) else { continue };
            let share = hour
                .raw
                .iter()
                .map(|(id, r)| (id.clone(), [r[0] as f64 * scale[0], r[1] as f64 * scale[1]]))
                .collect();
            out.insert(h, Verdict { share });
        }
        out
    }

    /// Folds hours older than [`KEEP_HOURS`] into the members' bases and forgets them.
    fn fold_old(&mut self, now_ms: i64) {
        let cut = hour_of(now_ms) - KEEP_HOURS * HOUR_MS;
        if self.hours.first_key_value().is_none_or(|(h, _)| *h >= cut) {
            return;
        }
        let verdicts = self.verdicts(now_ms);
        for (h, v) in verdicts.range(..cut) {
            let _ = h;
            for (id, share) in &v.share {
                if let Some(m) = self.members.get_mut(id) {
                    m.base[0] += share[0];
                    m.base[1] += share[1];
                }
            }
        }
        self.hours = self.hours.split_off(&cut);
    }

    /// When the Deco's raw sum is off from the uplink by about the ratio of two speed units,
    /// the unit the Deco most likely uses (once per run).
    pub fn unit_hint(&mut self, configured: SpeedUnit, now_ms: i64) -> Option<(SpeedUnit, f64)> {
        if self.unit_warned {
            return None;
        }
        let (mut target, mut raw, mut n) = (0u64, 0u64, 0usize);
        for (&h, hour) in &self.hours {
            let Some(up) = self.known_uplink(h, hour).filter(|_| h + HOUR_MS <= now_ms) else {
                continue;
            };
            let r = sum_raw(hour);
            let r = r[0].saturating_add(r[1]);
            let t = up[0]
                .saturating_sub(hour.exact[0])
                .saturating_add(up[1].saturating_sub(hour.exact[1]));
            let coverage = hour.covered_ms as f64 / HOUR_MS as f64;
            if coverage >= WELL_COVERED && r.max(t) >= MEANINGFUL_BYTES && r > 0 {
                target = target.saturating_add(t);
                raw = raw.saturating_add(r);
                n += 1;
            }
        }
        if n < UNIT_CHECK_HOURS || raw == 0 {
            return None;
        }
        let ratio = target as f64 / raw as f64;
        let likely = [SpeedUnit::KbitPerS, SpeedUnit::KbytePerS, SpeedUnit::BytePerS]
            .into_iter()
            .filter(|u| *u != configured)
            .find(|u| {
                let expected = u.bits_per_unit() / configured.bits_per_unit();
                (ratio / expected).ln().abs() < 1.5f64.ln()
            })?;
        self.unit_warned = true;
        Some((likely, ratio))
    }
}

fn sum_raw(hour: &Hour) -> Pair {
    hour.raw.values().fold([0u64, 0u64], |a, r| {
        [a[0].saturating_add(r[0]), a[1].saturating_add(r[1])]
    })
}
fn shares_of(hour: &Hour, raw: Pair) -> BTreeMap<DeviceId, [f64; 2]> {
    hour.raw
        .iter()
        .map(|(id, r)| {
            let part = |d: usize| {
                if raw[d] > 0 { r[d] as f64 / raw[d] as f64 } else { 0.0 }
            };
            (id.clone(), [part(0), part(1)])
        })
        .collect()
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
