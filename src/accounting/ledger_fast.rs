//! The fast path (issue 11): an observation whose every reading says nothing new — the same
//! counters as the channel's baseline with its rate already at 0, a rate of 0 that was 0,
//! hours already seen — changes only timestamps. [`Ledger::apply_unchanged`] moves exactly
//! those, in place and without allocating, instead of the full [`Ledger::apply`] (keys, owner
//! lookups, views, info merge): with 5 000 clients that do nothing, that was most of a poll.
//!
//! Each `idle_*` below mirrors the full update of its sample kind (channel.rs, reconcile.rs) and
//! says yes only where that update would change nothing but what [`Idle`] lists; anything else
//! (a rate that must still drop to 0, a new epoch, a suspect, a stale rate to forget, an hour
//! boundary for the reconciler) goes the full way. The tests compare both paths.

use super::{ChannelKey, Ledger};
use crate::accounting::channel::{ChannelKind, ChannelState, Rates};
use crate::accounting::plausible;
use crate::model::{BucketSample, CounterSample, Observation, RateSample, TrafficSample};

/// What a zero delta over a positive interval within the rate window gives.
const ZERO: Rates = Rates {
    rx_bps: Some(0.0),
    tx_bps: Some(0.0),
};

/// Readings per observation the fast path plans for (a client has one; servers with many
/// interfaces take the full path).
const MAX_READINGS: usize = 4;

/// What an idle reading changes in its channel.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Idle {
    Nothing,
    /// The reading's time (and a live counter's boot reading) moves on.
    Advance {
        at_ms: i64,
    },
    /// Hourly buckets: only when they were last looked at.
    Touch,
}

impl Ledger {
    /// Applies `obs` of `source` if it says nothing new (see the module), moving only its
    /// timestamps; returns `false` without changing anything otherwise.
    pub fn apply_unchanged(&mut self, source: &str, obs: &Observation, now_ms: i64) -> bool {
        if obs.traffic.len() > MAX_READINGS {
            return false;
        }
        let Some(device) = self.devices.get(&obs.device) else {
            return false;
        };
        if device.kind != obs.kind || !device.sources.contains(source) {
            return false;
        }
        // The source's opinion was changed meanwhile (it dropped the device from a list).
        if let Some(online) = obs.online
            && device.online_by_source.get(source) != Some(&online)
        {
            return false;
        }
        let mut key = match self.scratch.take() {
            Some(mut key) => {
                key.device.assign(&obs.device);
                key.source.clear();
                key.source.push_str(source);
                key
            }
            None => ChannelKey {
                device: obs.device.clone(),
                interface: None,
                source: source.to_owned(),
            },
        };
        let mut plan = [Idle::Nothing; MAX_READINGS];
        let mut idle = true;
        for (slot, reading) in plan.iter_mut().zip(&obs.traffic) {
            set_interface(&mut key.interface, reading.interface.as_deref());
            match self
                .channels
                .get(&key)
                .and_then(|ch| idle_reading(ch, &reading.sample, now_ms))
            {
                Some(what) => *slot = what,
                None => {
                    idle = false;
                    break;
                }
            }
        }
        if idle {
            for (what, reading) in plan.iter().zip(&obs.traffic) {
                set_interface(&mut key.interface, reading.interface.as_deref());
                if let Some(ch) = self.channels.get_mut(&key) {
                    advance(ch, *what, &reading.sample, now_ms);
                }
            }
            if obs.online == Some(true)
                && let Some(device) = self.devices.get_mut(&obs.device)
            {
                device.last_online_ms = Some(now_ms);
            }
            self.mark_stale();
        }
        self.scratch = Some(key);
        idle
    }
}

/// Sets the key's interface, reusing its buffer.
fn set_interface(slot: &mut Option<String>, interface: Option<&str>) {
    match (slot.as_mut(), interface) {
        (Some(buf), Some(name)) => {
            buf.clear();
            buf.push_str(name);
        }
        (_, name) => *slot = name.map(str::to_owned),
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn idle_reading(ch: &ChannelState, sample: &TrafficSample, now_ms: i64) -> Option<Idle> {
    match sample {
        TrafficSample::Counter(c) => idle_counter(ch, c, now_ms),
        TrafficSample::Live(l) => {
            // reconcile::live: the counter, then a reading of zero bytes at `clock_s`.
            let reconciler = ch.reconciler.as_ref()?;
            let what = idle_counter(ch, &l.counter, now_ms)?;
            reconciler.idle_at(l.clock_s).then_some(what)
        }
        TrafficSample::Rate(r) => idle_rate(ch, r),
        TrafficSample::Buckets(b) => match &ch.reconciler {
            Some(reconciler) => reconciler.holds(b).then_some(Idle::Nothing),
            None => idle_buckets(ch, b).then_some(Idle::Touch),
        },
    }
}

/// `ChannelState::update_counter` with the baseline's own counters.
fn idle_counter(ch: &ChannelState, c: &CounterSample, now_ms: i64) -> Option<Idle> {
    if ch.suspect.is_some() || ch.kind != ChannelKind::Counter || c.rx != ch.rx || c.tx != ch.tx {
        return None;
    }
    let new_epoch = match (&c.epoch, &ch.epoch) {
        (Some(new), Some(old)) => !new.same_as(old),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if new_epoch {
        return None;
    }
    let window = millis(c.rate_window);
    let dt = c.at_ms.saturating_sub(ch.at_ms);
    if dt == 0 {
        // Nothing new: only a rate gone stale would change (to unknown).
        let stale = now_ms.saturating_sub(ch.advanced_ms) > window;
        return (!stale || ch.rates == Rates::UNKNOWN).then_some(Idle::Nothing);
    }
    if dt < 0 {
        return None;
    }
    let rates = if dt <= window { ZERO } else { Rates::UNKNOWN };
    (rates == ch.rates).then_some(Idle::Advance { at_ms: c.at_ms })
}

/// `ChannelState::update_rate` of 0 after 0: the trapezoid adds nothing and keeps the fraction.
fn idle_rate(ch: &ChannelState, r: &RateSample) -> Option<Idle> {
    if ch.kind != ChannelKind::Rate || r.rx_bps != 0.0 || r.tx_bps != 0.0 || ch.rates != ZERO {
        return None;
    }
    if r.at_ms > ch.at_ms {
        Some(Idle::Advance { at_ms: r.at_ms })
    } else {
        Some(Idle::Nothing)
    }
}

/// `ChannelState::update_buckets_dated` with hours no larger than already seen.
fn idle_buckets(ch: &ChannelState, b: &BucketSample) -> bool {
    ch.kind == ChannelKind::Buckets
        && b.hours.iter().all(|h| {
            h.start_s < ch.settled_before
                || (plausible::hour_bytes(h.rx.max(h.tx)).is_ok()
                    && ch
                        .buckets
                        .get(&h.start_s)
                        .is_some_and(|seen| seen[0] >= h.rx && seen[1] >= h.tx))
        })
}

fn advance(ch: &mut ChannelState, what: Idle, sample: &TrafficSample, now_ms: i64) {
    match what {
        Idle::Nothing => {}
        Idle::Touch => ch.advanced_ms = now_ms,
        Idle::Advance { at_ms } => {
            let counter = match sample {
                TrafficSample::Counter(c) => Some(c),
                TrafficSample::Live(l) => Some(&l.counter),
                _ => None,
            };
            // The boot reading moves with the uptime (the next epoch check compares to it).
            if let Some(c) = counter
                && ch.epoch != c.epoch
            {
                ch.epoch.clone_from(&c.epoch);
            }
            ch.at_ms = at_ms;
            ch.advanced_ms = now_ms;
        }
    }
    if let (TrafficSample::Live(l), Some(reconciler)) = (sample, ch.reconciler.as_mut()) {
        reconciler.note_idle(l.clock_s);
    }
}

#[cfg(test)]
#[path = "ledger_fast_tests.rs"]
mod tests;
