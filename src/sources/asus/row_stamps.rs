//! Which hour a Traffic Analyzer row belongs to, told from the live counters (asus.md §6.4).
//!
//! The router's GPL sources stamp a row when it is written, holding the bytes since the
//! previous write: a row stamped 21:00:05 is 20:00–21:00 ([`RowStamps::End`]). An earlier spec
//! guessed rows stamped with the start of a growing hour ([`RowStamps::Start`]); firmware may
//! differ (BE models, DNS-based analysis builds), and a bridge that files every hour one hour
//! off counts a burst twice. The live counters (`getTraffic.asp`) tell the two apart: early in
//! an hour, the newest bucket holds a whole hour's bytes under end stamps and at most what the
//! counter moved since the hour began under start stamps. Each client with a live counter that
//! ran through the last boundaries votes when its newest bucket arrives; two decisive hours
//! settle the convention, which `bridge/info` reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Epoch, LiveSample, MacAddr};

const HOUR: i64 = 3600;
/// A vote needs this many more bytes on one side than the other could explain (headroom for
/// bytes booked between the live reading and the analyzer request of a poll).
const SLACK_BYTES: u64 = 1 << 20;
/// Evidence is capped so a firmware change is followed within a few hours.
const MAX_SCORE: i32 = 6;
/// Decisive hours, net, that settle the convention.
const SETTLED: i32 = 2;

/// How the router stamps its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStamps {
    /// At the time of writing: the row holds the hour before its stamp (the GPL sources).
    #[default]
    End,
    /// At the start of the hour the row grows in.
    Start,
}

/// What survives a restart: the evidence so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Net decisive hours: positive for end stamps, negative for start stamps.
    #[serde(default)]
    pub score: i32,
    /// The convention the evidence settled on, if it has.
    #[serde(default)]
    pub seen: Option<RowStamps>,
}

/// One client's live counter around the last two hour boundaries.
#[derive(Debug, Clone)]
struct Track {
    epoch: Option<Epoch>,
    last_s: i64,
    value: u64,
    /// `(boundary, last value before it, first value at or after it)`, oldest first.
    marks: [Option<(i64, u64, u64)>; 2],
}

#[derive(Debug, Default)]
pub struct StampJudge {
    tracks: BTreeMap<MacAddr, Track>,
    pub verdict: Verdict,
    /// This refresh hour's votes: `(hour, end, start)`.
    tally: Option<(i64, u32, u32)>,
}

impl StampJudge {
    /// The convention to file rows by: the one seen, else the router sources'.
    pub fn stamps(&self) -> RowStamps {
        self.verdict.seen.unwrap_or_default()
    }

    /// Whether live counters are being watched (so the evidence can come).
    pub fn watching(&self) -> bool {
        !self.tracks.is_empty()
    }

    /// For `bridge/info`.
    pub fn describe(&self) -> &'static str {
        match self.verdict.seen {
            Some(RowStamps::End) => "end of their hour (seen in the live counters)",
            Some(RowStamps::Start) => "start of their hour (seen in the live counters)",
            None if self.watching() => "end of their hour (the router's sources; checking against the live counters)",
            None => "end of their hour (the router's sources; no live counters to check against)",
        }
    }

    /// This poll's live samples. Clients not in it are let go (bounded by the client list).
    pub fn observe(&mut self, samples: &[(MacAddr, LiveSample)]) {
        // Updated in place (every poll, every client); one poll's samples share its clock.
        let Some(now) = samples.first().map(|(_, s)| s.clock_s) else {
            self.tracks.clear();
            return;
        };
        for (mac, sample) in samples {
            let (t, value) = (sample.clock_s, sample.counter.rx.saturating_add(sample.counter.tx));
            match self.tracks.get_mut(mac) {
                Some(track) if track.epoch == sample.counter.epoch && t > track.last_s && value >= track.value => {
                    let boundary = t - t.rem_euclid(HOUR);
                    if track.last_s < boundary {
                        track.marks = [track.marks[1], Some((boundary, track.value, value))];
                    }
                    track.last_s = t;
                    track.value = value;
                }
                _ => {
                    self.tracks.insert(
                        *mac,
                        Track {
                            epoch: sample.counter.epoch.clone(),
                            last_s: t,
                            value,
                            marks: [None, None],
                        },
                    );
                }
            }
        }
        self.tracks.retain(|_, track| track.last_s == now);
    }

    /// The newest bucket of `mac` in the refresh of `hour` (rows stamped in `[hour, hour + 1 h)`)
    /// holds `bytes` (rx + tx): a vote, if the live counter can tell.
    pub fn judge(&mut self, mac: &MacAddr, hour: i64, bytes: u64) {
        let Some(track) = self.tracks.get(mac) else {
            return;
        };
        let Some((boundary, before, _)) = track.marks[1] else {
            return;
        };
        if boundary != hour {
            return;
        }
        // Everything the counter moved since the hour began is at most this.
        let since_hour = track.value.saturating_sub(before);
        let vote = if bytes > since_hour.saturating_add(since_hour / 4).saturating_add(SLACK_BYTES) {
            // More than the hour so far can hold: the row is the hour before.
            Some(RowStamps::End)
        } else {
            // At most the hour so far, while the hour before moved far more (at least what the
            // counter moved between its two boundaries), which an end-stamped row would hold.
            track.marks[0]
                .filter(|(b, _, _)| *b == hour - HOUR)
                .map(|(_, _, prev_after)| before.saturating_sub(prev_after))
                .filter(|hour_before| {
                    bytes <= since_hour + since_hour / 10 + SLACK_BYTES / 4
                        && *hour_before > bytes.saturating_add(bytes / 4).saturating_add(SLACK_BYTES)
                })
                .map(|_| RowStamps::Start)
        };
        let Some(vote) = vote else {
            return;
        };
        let tally = match self.tally {
            Some(t) if t.0 == hour => t,
            _ => (hour, 0, 0),
        };
        self.tally = Some(match vote {
            RowStamps::End => (hour, tally.1 + 1, tally.2),
            RowStamps::Start => (hour, tally.1, tally.2 + 1),
        });
    }

    /// The refresh of `hour` is done: its votes count, once. Returns the convention if the
    /// evidence just settled on it or changed it.
    pub fn finish(&mut self, hour: i64) -> Option<RowStamps> {
        let (h, end, start) = self.tally.take()?;
        if h != hour {
            return None;
        }
        // An hour where several clients agree and none disagrees counts double.
        let step = match (end, start) {
            (e, 0) if e >= 3 => 2,
            (0, s) if s >= 3 => -2,
            (e, s) if e > 3 * s => 1,
            (e, s) if s > 3 * e => -1,
            _ => 0,
        };
        let before = self.verdict.seen;
        self.verdict.score = (self.verdict.score + step).clamp(-MAX_SCORE, MAX_SCORE);
        if self.verdict.score >= SETTLED {
            self.verdict.seen = Some(RowStamps::End);
        } else if self.verdict.score <= -SETTLED {
            self.verdict.seen = Some(RowStamps::Start);
        }
        (self.verdict.seen != before).then_some(self.stamps())
    }
}

#[cfg(test)]
#[path = "row_stamps_tests.rs"]
mod tests;
