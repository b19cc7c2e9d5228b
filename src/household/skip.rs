//! Observations that say nothing new (issue 11): a client whose observation hashes the same as
//! the last one its source gave — timestamps left out — is handed to the ledger's fast path
//! (`Ledger::apply_unchanged`), which moves only its timestamps when every reading is idle.
//! Such a device is not touched: no routing, no names, no periods, no rendering.
//!
//! The digest only says "same as last time"; whether that changes nothing is the ledger's call
//! (a counter that just stopped still drops its rate to 0 through the full path). An entry is
//! dropped whenever something else may have changed what the same observation would do: the
//! device was applied in full from another source, routed elsewhere, admitted otherwise,
//! forgotten, or identities were learnt; a source that failed starts over.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::model::{DeviceId, Observation, TrafficSample, WrapRule};
use crate::publish::render_cache::hash_value;

#[derive(Debug, Clone, Copy)]
struct Entry {
    digest: u64,
    /// The poll of its source that last reported the device (fast or not).
    poll: u64,
}

#[derive(Debug, Default)]
struct SourceBook {
    entries: HashMap<DeviceId, Entry>,
    poll: u64,
    /// When the source's previous poll was applied (ms).
    last_apply_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub(super) struct Skips {
    sources: HashMap<String, SourceBook>,
}

impl Skips {
    /// A new poll of `source`; returns when its previous one was applied.
    pub fn begin(&mut self, source: &str, now_ms: i64) -> Option<i64> {
        if !self.sources.contains_key(source) {
            self.sources.insert(source.to_owned(), SourceBook::default());
        }
        let book = self.sources.get_mut(source)?;
        book.poll += 1;
        book.last_apply_ms.replace(now_ms)
    }

    /// Whether `digest` is what `source` last said of `device`; if so, marks it seen.
    pub fn same(&mut self, source: &str, device: &DeviceId, digest: u64) -> bool {
        let Some(book) = self.sources.get_mut(source) else {
            return false;
        };
        let poll = book.poll;
        match book.entries.get_mut(device) {
            Some(e) if e.digest == digest => {
                e.poll = poll;
                true
            }
            _ => false,
        }
    }

    /// `source` reported `device` in this poll, applied in full; `digest` if it may take the
    /// fast path next time. Other sources' entries of the device are dropped.
    pub fn record(&mut self, source: &str, device: &DeviceId, digest: Option<u64>) {
        for (name, book) in &mut self.sources {
            if name == source {
                match digest {
                    Some(digest) => {
                        let poll = book.poll;
                        match book.entries.get_mut(device) {
                            Some(e) => *e = Entry { digest, poll },
                            None => {
                                book.entries.insert(device.clone(), Entry { digest, poll });
                            }
                        }
                    }
                    None => {
                        book.entries.remove(device);
                    }
                }
            } else {
                book.entries.remove(device);
            }
        }
    }

    /// Whether `source`'s current poll reported `device` through the fast path.
    pub fn seen_now(&self, source: &str, device: &DeviceId) -> bool {
        self.sources
            .get(source)
            .and_then(|b| b.entries.get(device).map(|e| e.poll == b.poll))
            .unwrap_or(false)
    }

    /// Entries over every source (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sources.values().map(|b| b.entries.len()).sum()
    }

    pub fn forget_device(&mut self, device: &DeviceId) {
        for book in self.sources.values_mut() {
            book.entries.remove(device);
        }
    }

    pub fn forget_source(&mut self, source: &str) {
        if let Some(book) = self.sources.get_mut(source) {
            book.entries.clear();
        }
    }

    pub fn clear(&mut self) {
        for book in self.sources.values_mut() {
            book.entries.clear();
        }
    }
}

/// Everything of an observation the household and the ledger act on, except the times its
/// samples were taken (and a counter's epoch, which moves with the uptime: the ledger checks it
/// is the same boot).
pub(super) fn digest(obs: &Observation) -> u64 {
    let mut h = DefaultHasher::new();
    obs.device.hash(&mut h);
    obs.kind.hash(&mut h);
    let info = &obs.info;
    (&info.name, &info.macs, &info.ip, &info.manufacturer).hash(&mut h);
    (&info.model, &info.sw_version, &info.via, obs.online).hash(&mut h);
    obs.traffic.len().hash(&mut h);
    for reading in &obs.traffic {
        reading.interface.hash(&mut h);
        std::mem::discriminant(&reading.sample).hash(&mut h);
        match &reading.sample {
            TrafficSample::Counter(c) => hash_counter(&mut h, c),
            TrafficSample::Live(l) => hash_counter(&mut h, &l.counter),
            TrafficSample::Rate(r) => (r.rx_bps.to_bits(), r.tx_bps.to_bits(), r.max_gap).hash(&mut h),
            TrafficSample::Buckets(b) => {
                for hour in &b.hours {
                    (hour.start_s, hour.rx, hour.tx).hash(&mut h);
                }
            }
        }
    }
    for m in &obs.metrics {
        (
            &m.key,
            &m.name,
            std::mem::discriminant(&m.unit),
            m.value.map(f64::to_bits),
        )
            .hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for l in &obs.labels {
        (&l.key, &l.name, &l.value).hash(&mut h);
    }
    0xffu8.hash(&mut h);
    for (key, value) in &obs.attributes {
        key.hash(&mut h);
        hash_value(&mut h, value);
    }
    h.finish()
}

fn hash_counter(h: &mut DefaultHasher, c: &crate::model::CounterSample) {
    (c.rx, c.tx, c.rate_window, c.epoch.is_some()).hash(h);
    match c.wrap {
        WrapRule::Never => 0u8.hash(h),
        WrapRule::At32 => 1u8.hash(h),
        WrapRule::Maybe32 { max_bps } => (2u8, max_bps.to_bits()).hash(h),
    }
}
