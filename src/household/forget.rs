//! Forgetting (issue 9, rule 7): a network client or mesh node that no source has seen online
//! for `[bridge] forget_after` (default 30 days) is removed from Home Assistant and from the
//! state file, so phones of past guests do not pile up — unless a source still lists it,
//! offline (issue 22 §3: the Deco lists offline clients; forgetting one it lists would bring it
//! back at the next poll). What is remembered of it afterwards is churn.rs's. A device named under `[devices]` is
//! kept: the user said it matters. Pure: the caller says what time it is.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::{DeviceId, DeviceKind, MacAddr};

/// When each device was last seen online (ms); persisted with the household.
pub type LastSeen = BTreeMap<DeviceId, i64>;

/// Devices among `candidates` unseen for longer than `forget_after` at `now_ms`; `keep` are
/// never forgotten. A candidate never seen starts its clock now (a state file from before
/// this rule, or a device restored but not reported since): nothing goes at the first start.
/// `forget_after` of zero forgets nothing.
pub fn stale<'a>(
    last_seen: &mut LastSeen,
    candidates: impl IntoIterator<Item = &'a DeviceId>,
    keep: &BTreeSet<DeviceId>,
    now_ms: i64,
    forget_after: Duration,
) -> Vec<DeviceId> {
    let limit = i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for id in candidates {
        let seen = *last_seen.entry(id.clone()).or_insert(now_ms);
        if limit > 0 && !keep.contains(id) && now_ms.saturating_sub(seen) > limit {
            out.push(id.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

impl super::Household {
    /// Devices to remove from HA and the state file now: network clients and mesh nodes
    /// unseen for `forget_after`, and those the include/exclude/random-MAC rules keep out.
    pub fn forget_due(&mut self, now_ms: i64) -> Vec<DeviceId> {
        // A device a source still lists, even as offline (the Deco keeps offline clients in
        // its list), is not forgotten: it would come back at the next poll as a new device.
        // Its clock is not restarted by such a listing, so once no source lists it any more it
        // goes as soon as it has been unseen online for `forget_after`.
        let dynamic = self
            .ledger
            .devices()
            .filter(|d| matches!(d.kind, DeviceKind::Client | DeviceKind::MeshNode) && !d.listed())
            .map(|d| &d.id);
        // Restored devices not reported yet: clients and mesh nodes are the MAC-named ones
        // (and the private-address group).
        let restored = self
            .ledger
            .restored_ids()
            .filter(|id| id.as_str().parse::<MacAddr>().is_ok() || id.as_str() == super::admission::GROUP_ID);
        let keep = self.configured_names.keys().map(|m| DeviceId::from_mac(*m)).collect();
        let candidates: Vec<DeviceId> = dynamic.chain(restored).cloned().collect();
        let mut due = stale(&mut self.last_seen, &candidates, &keep, now_ms, self.forget_after);
        due.extend(std::mem::take(&mut self.evicted));
        due.sort();
        due.dedup();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn id(s: &str) -> DeviceId {
        DeviceId::new(s).unwrap()
    }

    #[test]
    fn unseen_for_longer_than_forget_after_and_not_kept() {
        let thirty = Duration::from_secs(30 * 86_400);
        let now = 100 * DAY;
        let mut seen = LastSeen::from([
            (id("old_phone"), now - 31 * DAY),
            (id("laptop"), now - 29 * DAY),
            (id("named_tv"), now - 90 * DAY),
        ]);
        let keep = BTreeSet::from([id("named_tv")]);
        let candidates = [id("old_phone"), id("laptop"), id("named_tv"), id("restored")];
        assert_eq!(stale(&mut seen, &candidates, &keep, now, thirty), [id("old_phone")]);
        assert_eq!(seen[&id("restored")], now, "its clock starts now");
        assert_eq!(
            stale(&mut seen, &candidates, &keep, now + 30 * DAY, thirty),
            [id("laptop"), id("old_phone")],
            "exactly 30 days is not yet longer than 30 days"
        );
        assert_eq!(
            stale(&mut seen, &candidates, &keep, now + 31 * DAY, thirty),
            [id("laptop"), id("old_phone"), id("restored")]
        );
        assert!(
            stale(&mut seen, &candidates, &keep, now + 900 * DAY, Duration::ZERO).is_empty(),
            "0s forgets nothing"
        );
    }
}
