//! The `getTraffic.asp` table as a whole (asus.md §5): does a reply go on from the counters we
//! know, or did the DPI engine restart? One odd reply must not decide that alone.
//!
//! A reply whose table fell (most clients lower than before, or the router's own pair lower
//! when too few clients can tell) looks like an engine restart, but so does a half-initialised
//! table after a service restart, or a reply with every counter at a fraction of its value.
//! Taking it for a restart at once would start a new counter epoch, whose values are counted
//! as new bytes: when the next reply goes on from the old values, every client's since-boot
//! bytes would be counted again. So the odd table is *held* ([`Held`]) and the next reply
//! decides, as accounting/channel.rs does for one counter (README "Glitches"): goes on from the
//! old baseline → it was a glitch; goes on from the held table → a real restart.
//!
//! A MAC listed twice in one reply is one client: copies that agree are one entry, copies that
//! disagree are resolved by the baseline (the copy that continues it), else skipped this poll.

use std::collections::BTreeMap;

use super::live_parse::Entry;
use crate::model::MacAddr;

/// Raw `[rx, tx]` per client.
pub type Table = BTreeMap<MacAddr, [u64; 2]>;

/// A reply that looked like a restart, kept (in memory only) until the next one decides.
/// An emptied table is held with no clients: it can never confirm a restart by itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Held {
    pub clients: Table,
    pub router: Option<[u64; 2]>,
}

impl Held {
    pub fn of(entries: &[Entry], router: Option<[u64; 2]>) -> Self {
        Self {
            clients: entries.iter().map(|e| (e.mac, [e.rx, e.tx])).collect(),
            router,
        }
    }
}

/// Whether a reply fell below a baseline as a whole. With at least two clients in common the
/// clients decide (at least two fell, and at least half): their counters are what is counted,
/// so a router pair that fell while they went on is no restart of theirs. With fewer, the
/// router's own pair decides. `wrapped(old, new)` tells a 32-bit wrap from a fall.
pub fn fell(
    entries: &[Entry],
    router: Option<[u64; 2]>,
    clients: &Table,
    base_router: Option<[u64; 2]>,
    wrapped: impl Fn(u64, u64) -> bool,
) -> bool {
    let lower = |old: u64, new: u64| new < old && !wrapped(old, new);
    let (mut common, mut dropped) = (0usize, 0usize);
    for e in entries {
        if let Some(old) = clients.get(&e.mac) {
            common += 1;
            if lower(old[0], e.rx) || lower(old[1], e.tx) {
                dropped += 1;
            }
        }
    }
    if common >= 2 {
        return dropped >= 2 && dropped * 2 >= common;
    }
    match (base_router, router) {
        (Some(old), Some(new)) => (0..2).any(|d| lower(old[d], new[d])),
        _ => false,
    }
}

/// Whether a reply goes on from a held table: it did not fall below it, and something in
/// common moved on (the same odd table again says nothing).
pub fn goes_on_from(entries: &[Entry], router: Option<[u64; 2]>, held: &Held) -> bool {
    let grew = |old: [u64; 2], new: [u64; 2]| new[0] >= old[0] && new[1] >= old[1] && new != old;
    let moved = entries
        .iter()
        .any(|e| held.clients.get(&e.mac).is_some_and(|old| grew(*old, [e.rx, e.tx])))
        || matches!((held.router, router), (Some(old), Some(new)) if grew(old, new));
    moved && !fell(entries, router, &held.clients, held.router, |_, _| false)
}

/// One entry per MAC. Copies that agree are one; copies that disagree: the smallest copy that
/// is at or above the first baseline that has the MAC (in both directions), else the MAC is
/// skipped this poll. Returns the entries (in the reply's order) and the skipped MACs.
pub fn dedupe(entries: Vec<Entry>, baselines: &[&Table]) -> (Vec<Entry>, Vec<MacAddr>) {
    let mut macs: Vec<MacAddr> = entries.iter().map(|e| e.mac).collect();
    macs.sort_unstable();
    if macs.windows(2).all(|w| w[0] != w[1]) {
        return (entries, Vec::new());
    }
    let mut copies: BTreeMap<MacAddr, Vec<Entry>> = BTreeMap::new();
    for e in &entries {
        copies.entry(e.mac).or_default().push(*e);
    }
    let mut skipped = Vec::new();
    let mut chosen: BTreeMap<MacAddr, Entry> = BTreeMap::new();
    for (mac, list) in copies {
        if list.iter().all(|e| *e == list[0]) {
            chosen.insert(mac, list[0]);
            continue;
        }
        let pick = baselines.iter().find_map(|b| b.get(&mac)).and_then(|old| {
            list.iter()
                .filter(|e| e.rx >= old[0] && e.tx >= old[1])
                .min_by_key(|e| e.rx.saturating_add(e.tx))
                .copied()
        });
        match pick {
            Some(e) => {
                chosen.insert(mac, e);
            }
            None => skipped.push(mac),
        }
    }
    let out = entries.into_iter().filter_map(|e| chosen.remove(&e.mac)).collect();
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(i: u8, rx: u64, tx: u64) -> Entry {
        Entry {
            mac: MacAddr::new([2, 0, 0, 0, 0, i]),
            rx,
            tx,
        }
    }

    fn table(entries: &[Entry]) -> Table {
        Held::of(entries, None).clients
    }

    #[test]
    fn clients_decide_and_the_router_pair_only_when_they_cannot() {
        let base = table(&[e(1, 1000, 100), e(2, 2000, 200), e(3, 3000, 300)]);
        let never = |_: u64, _: u64| false;
        // Two of three fell: the table fell.
        assert!(fell(
            &[e(1, 1, 1), e(2, 2, 2), e(3, 3100, 310)],
            None,
            &base,
            None,
            never
        ));
        // One fell: a reset of that client (the channel handles it), not of the table.
        assert!(!fell(
            &[e(1, 1, 1), e(2, 2100, 210), e(3, 3100, 310)],
            None,
            &base,
            None,
            never
        ));
        // The clients went on: a router pair that fell is no restart of their counters.
        let grown = [e(1, 1100, 110), e(2, 2100, 210)];
        assert!(!fell(&grown, Some([5, 5]), &base, Some([9000, 900]), never));
        // Too few clients to tell: the router pair decides.
        assert!(fell(&[e(1, 1100, 110)], Some([5, 5]), &base, Some([9000, 900]), never));
        assert!(!fell(
            &[e(1, 1100, 110)],
            Some([9500, 950]),
            &base,
            Some([9000, 900]),
            never
        ));
        // A wrap is not a fall.
        assert!(!fell(&[e(1, 1, 1), e(2, 2, 2)], None, &base, None, |_, _| true));
    }

    #[test]
    fn only_a_reply_that_moved_on_from_the_held_table_confirms_it() {
        let held = Held::of(&[e(1, 10, 1), e(2, 20, 2)], Some([30, 3]));
        assert!(goes_on_from(&[e(1, 15, 1), e(2, 25, 3)], Some([40, 4]), &held));
        assert!(
            !goes_on_from(&[e(1, 10, 1), e(2, 20, 2)], Some([30, 3]), &held),
            "the same table again"
        );
        assert!(
            !goes_on_from(&[e(1, 5, 1), e(2, 5, 1)], Some([40, 4]), &held),
            "fell below it"
        );
        assert!(
            !goes_on_from(&[e(1, 15, 1)], None, &Held::default()),
            "an emptied table confirms nothing"
        );
    }

    #[test]
    fn duplicate_macs_are_one_entry_or_skipped() {
        // No duplicates: untouched.
        let plain = vec![e(1, 5, 5), e(2, 6, 6)];
        assert_eq!(dedupe(plain.clone(), &[]), (plain, vec![]));
        // Copies that agree are one entry.
        let (out, skipped) = dedupe(vec![e(1, 5, 5), e(2, 6, 6), e(1, 5, 5)], &[]);
        assert_eq!((out, skipped), (vec![e(1, 5, 5), e(2, 6, 6)], vec![]));
        // The second copy at half: the copy that continues the baseline wins.
        let last = table(&[e(1, 1000, 100), e(2, 2000, 200)]);
        let reply = vec![e(1, 1100, 110), e(2, 2100, 210), e(1, 550, 55), e(2, 1050, 105)];
        let (out, skipped) = dedupe(reply.clone(), &[&last]);
        assert_eq!(out, vec![e(1, 1100, 110), e(2, 2100, 210)]);
        assert!(skipped.is_empty());
        // Several copies above the baseline: the smallest (the others ran ahead).
        let (out, _) = dedupe(vec![e(1, 5000, 500), e(1, 1100, 110)], &[&last]);
        assert_eq!(out, vec![e(1, 1100, 110)]);
        // No baseline, or no copy continues it: skipped this poll.
        let (out, skipped) = dedupe(reply, &[]);
        assert!(out.is_empty());
        assert_eq!(skipped.len(), 2);
        let (out, skipped) = dedupe(vec![e(1, 10, 1), e(1, 5, 1), e(2, 2100, 210)], &[&last]);
        assert_eq!((out, skipped), (vec![e(2, 2100, 210)], vec![e(1, 0, 0).mac]));
    }
}
