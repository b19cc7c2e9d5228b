//! A router client's hours from before its first reading (issue 16 §2, design.md "Right from
//! the first poll"). The first live reading of a client is its counter's total so far; the
//! Traffic Analyzer's finished hours before it are in that total but in no period, and no later
//! delta repeats them (reconcile.rs counts only what moved after the reading). So, once, at the
//! first hourly rows read after that reading (the same poll with `once`; within the refresh's
//! first 20 minutes with `run`), those hours go to their own days and months: today from
//! midnight, yesterday from the first of the 24 hours. The part of the hour in progress at the
//! first reading stays out (its row holds the whole hour, partly counted by later deltas).

use std::collections::BTreeMap;

use super::Household;
use crate::accounting::Totals;
use crate::model::{DeviceId, DeviceKind, HourBucket, Observation, TrafficSample};

impl Household {
    /// Before accounting: notes clients a live counter reads for the first time (router time of
    /// the reading), and returns the hours this poll read of the clients still waiting.
    pub(super) fn first_hours_before(
        &mut self,
        routed: &[Observation],
        before: &BTreeMap<DeviceId, Totals>,
    ) -> Vec<(DeviceId, Vec<HourBucket>)> {
        let mut out = Vec::new();
        for o in routed.iter().filter(|o| o.kind == DeviceKind::Client) {
            let live = o.traffic.iter().find_map(|r| match &r.sample {
                TrafficSample::Live(l) => Some(l.clock_s),
                _ => None,
            });
            // A client first seen after its source's first poll counts from that hour, the
            // Analyzer's hours filling in the rest of it (churn.rs): its counter's total is not
            // its since-boot total, so no hour before it is held by the reading.
            if let Some(clock_s) = live
                && !before.contains_key(&o.device)
                && !self.counts_from.contains_key(&o.device)
            {
                self.first_reads.entry(o.device.clone()).or_insert(clock_s);
            }
            if !self.first_reads.contains_key(&o.device) {
                continue;
            }
            let hours: Vec<HourBucket> = o
                .traffic
                .iter()
                .filter_map(|r| match &r.sample {
                    TrafficSample::Buckets(b) => Some(b.hours.iter().copied()),
                    _ => None,
                })
                .flatten()
                .collect();
            if !hours.is_empty() {
                out.push((o.device.clone(), hours));
            }
        }
        out
    }

    /// After accounting: the hours that ended by each client's first reading go to their
    /// periods, once, when the source that read them feeds its headline.
    pub(super) fn first_hours_after(&mut self, source: &str, hours: Vec<(DeviceId, Vec<HourBucket>)>, now_ms: i64) {
        for (id, hours) in hours {
            let Some(first_s) = self.first_reads.remove(&id) else {
                continue;
            };
            if !self
                .ledger
                .device(&id)
                .is_some_and(|d| d.total_sources.contains(source))
            {
                continue;
            }
            let held: Vec<HourBucket> = hours.into_iter().filter(|h| h.start_s + 3600 <= first_s).collect();
            self.periods
                .entry(id.clone())
                .or_default()
                .add_hours_before(&self.calendar, now_ms, &held);
            self.dirty = true;
        }
    }
}
