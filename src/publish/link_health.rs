//! What the MQTT connection learns from how it breaks: a pure state machine that takes `now`.
//!
//! - **Reconnect pacing.** A broker restart should cost seconds, not the ~15 s an exponential
//!   backoff from 1 s gives: the first retries come every 0.5–3 s, and only a long outage backs
//!   off to a minute.
//! - **A packet the broker refuses.** mosquitto with `max_packet_size` closes the connection on an
//!   oversized PUBLISH (MQTT 3.1.1 has no way to say "too large"). The suspect is the largest
//!   message written to the link and not acknowledged, if it is larger than anything the broker
//!   ever accepted — not simply the oldest unacknowledged one: the reset that closes the link
//!   also discards the acknowledgements of the messages before it that were still in our socket
//!   buffer. The same suspect twice in a row is taken as over the broker's limit; the outbox
//!   then skips messages that big and splits what it can split into sizes known to go through.
//! - **Another client with our client_id.** The broker closes the older of two connections with
//!   the same id, so two such bridges knock each other off. Connections that keep dying soon after
//!   the broker accepted them, with no refused packet to explain it, are reported once as a likely
//!   client_id clash, and the backoff keeps growing instead of restarting at 0.5 s.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A connection that lived this long was healthy: the next outage starts with fast retries.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Connections dying young this many times in a row look like a client_id take-over.
const TAKEOVER_STREAK: u32 = 3;
const FAST_STEP: Duration = Duration::from_millis(500);
const FAST_TRIES: u32 = 6;
const SLOW_START: Duration = Duration::from_secs(5);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A packet limit learnt from a refusal is given up after this long (the configured one is
/// tried again), in case what looked like a refusal was not one.
pub const RETRY_LIMIT_AFTER: Duration = Duration::from_secs(3600);

/// What to do after the connection failed or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// How long to wait before the next attempt (before jitter).
    pub retry_in: Duration,
    /// The broker refused this message (topic, packet size): skip that size from now on.
    pub refused: Option<(String, usize)>,
    /// The largest packet the broker has acknowledged so far (bytes; 0 before any).
    pub accepted: usize,
    /// Report a likely client_id clash now (once per streak).
    pub takeover: bool,
}

#[derive(Debug, Default)]
pub struct LinkHealth {
    connected_at: Option<Instant>,
    /// Failed attempts or short-lived connections since the last stable one.
    failures: u32,
    short_lived: u32,
    takeover_reported: bool,
    /// Messages handed to the client in this connection and not yet acknowledged, oldest first.
    unacked: VecDeque<(String, usize)>,
    /// How many of `unacked` (from the front) the client has written to the link.
    written: usize,
    largest_accepted: usize,
    last_suspect: Option<(String, usize)>,
    /// When a packet limit was last learnt from a refusal.
    limit_learnt_at: Option<Instant>,
}

impl LinkHealth {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
        self.unacked.clear();
        self.written = 0;
    }

    pub fn sent(&mut self, topic: &str, size: usize) {
        self.unacked.push_back((topic.to_owned(), size));
    }

    /// The client wrote the next of the messages handed to it (rumqttc's outgoing PUBLISH).
    pub fn wrote(&mut self) {
        self.written = (self.written + 1).min(self.unacked.len());
    }

    /// A PUBACK: the oldest outstanding message was accepted.
    pub fn acked(&mut self) {
        if let Some((_, size)) = self.unacked.pop_front() {
            self.largest_accepted = self.largest_accepted.max(size);
            self.written = self.written.saturating_sub(1);
        }
    }

    /// An MQTT 5 PUBACK with an error code: the oldest outstanding message was refused, and
    /// is neither accepted nor a suspect any more. Its topic and size, for the log.
    pub fn refused(&mut self) -> Option<(String, usize)> {
        let refused = self.unacked.pop_front();
        if refused.is_some() {
            self.written = self.written.saturating_sub(1);
        }
        refused
    }

    /// The outbox lowered its packet limit after a refusal (a [`Verdict::refused`]).
    pub fn limit_learnt(&mut self, now: Instant) {
        self.limit_learnt_at = Some(now);
    }

    /// Whether to try the configured packet limit again: once, [`RETRY_LIMIT_AFTER`] after
    /// the last limit was learnt.
    pub fn retry_limit_due(&mut self, now: Instant) -> bool {
        match self.limit_learnt_at {
            Some(at) if now.saturating_duration_since(at) >= RETRY_LIMIT_AFTER => {
                self.limit_learnt_at = None;
                true
            }
            _ => false,
        }
    }

    pub fn is_reporting_takeover(&self) -> bool {
        self.takeover_reported
    }

    /// The connection attempt failed, or an established connection dropped. `closed_by_broker`:
    /// the broker closed the link (the only way MQTT 3.1.1 refuses a packet); a drop for any
    /// other reason (a packet from the broker we could not read) blames none of ours.
    pub fn dropped(&mut self, now: Instant, closed_by_broker: bool) -> Verdict {
        let lived = self.connected_at.take().map(|at| now.saturating_duration_since(at));
        // Only what reached the link can have been refused (all of it when the client's
        // writes were not reported); the first of the largest, as the broker stops at it.
        let on_link = if self.written == 0 {
            self.unacked.len()
        } else {
            self.written
        };
        let suspect = self
            .unacked
            .iter()
            .take(on_link)
            .filter(|(_, size)| closed_by_broker && lived.is_some() && *size > self.largest_accepted)
            .reduce(|best, m| if m.1 > best.1 { m } else { best })
            .cloned();
        self.unacked.clear();
        self.written = 0;
        let mut verdict = Verdict {
            retry_in: Duration::ZERO,
            refused: None,
            accepted: self.largest_accepted,
            takeover: false,
        };
        match lived {
            Some(lived) if lived >= STABLE_AFTER => {
                self.failures = 0;
                self.short_lived = 0;
                self.takeover_reported = false;
            }
            Some(_) => {
                if suspect.is_some() && suspect == self.last_suspect {
                    verdict.refused = suspect.clone();
                    self.last_suspect = None;
                    // Explained: not a take-over, and the next connection should work.
                    self.short_lived = 0;
                    self.failures = 0;
                } else {
                    self.short_lived += 1;
                    self.failures += 1;
                    if self.short_lived >= TAKEOVER_STREAK && suspect.is_none() && !self.takeover_reported {
                        self.takeover_reported = true;
                        verdict.takeover = true;
                    }
                }
            }
            None => self.failures += 1,
        }
        if verdict.refused.is_none() {
            self.last_suspect = suspect;
        }
        verdict.retry_in = delay(self.failures);
        verdict
    }
}

/// 0.5, 1, 1.5, … 3 s for the first tries (a broker restart), then 5, 10, 20, 40, 60 s.
fn delay(failures: u32) -> Duration {
    if failures <= FAST_TRIES {
        return FAST_STEP * failures.max(1);
    }
    let doublings = (failures - FAST_TRIES - 1).min(8);
    (SLOW_START * 2u32.pow(doublings)).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_broker_restart_is_retried_fast_then_backs_off() {
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        h.connected(t0);
        let delays: Vec<_> = (0..12).map(|i| h.dropped(t0 + secs(100 + i), true).retry_in).collect();
        assert_eq!(
            delays[0],
            Duration::from_millis(500),
            "first retry after a stable connection"
        );
        let first_six: Duration = delays[..6].iter().sum();
        assert!(first_six <= secs(11), "{delays:?}");
        assert_eq!(delays[7], secs(5));
        assert_eq!(*delays.last().unwrap(), BACKOFF_MAX);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    }

    #[test]
    fn a_refused_packet_is_named_after_the_second_drop() {
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        for attempt in 0..2 {
            h.connected(t0);
            h.sent("b/state", 30);
            h.sent("b/devices", 300_000);
            h.sent("b/x", 40);
            h.acked();
            let v = h.dropped(t0 + secs(1), true);
            if attempt == 0 {
                assert_eq!(v.refused, None, "one drop proves nothing");
            } else {
                assert_eq!(v.refused, Some(("b/devices".to_owned(), 300_000)));
                assert!(!v.takeover);
                assert_eq!(v.retry_in, FAST_STEP);
            }
        }
    }

    #[test]
    fn the_largest_written_message_is_blamed_even_when_earlier_acks_were_lost() {
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        h.connected(t0);
        h.sent("b/big", 5_000);
        h.acked();
        for attempt in 0..2 {
            h.connected(t0);
            // The acks of the first two never arrived (the reset discarded them).
            h.sent("b/event", 300);
            h.sent("b/state", 200);
            h.sent("b/devices", 70_000);
            h.sent("b/state2", 200);
            h.sent("b/devices/9", 90_000);
            for _ in 0..4 {
                h.wrote();
            }
            let v = h.dropped(t0 + secs(1), true);
            assert_eq!(v.accepted, 5_000);
            if attempt == 1 {
                assert_eq!(
                    v.refused,
                    Some(("b/devices".to_owned(), 70_000)),
                    "the largest on the link; the unwritten one is not blamed"
                );
            }
        }
    }

    #[test]
    fn a_size_the_broker_accepted_before_is_never_blamed() {
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        h.connected(t0);
        h.sent("big", 5000);
        h.acked();
        for _ in 0..3 {
            h.connected(t0);
            h.sent("small", 100);
            assert_eq!(h.dropped(t0 + secs(1), true).refused, None);
        }
    }

    #[test]
    fn connections_that_keep_dying_young_are_reported_once_as_a_client_id_clash() {
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        let mut reports = 0;
        let mut delays = Vec::new();
        for i in 0..10 {
            h.connected(t0 + secs(i * 10));
            let v = h.dropped(t0 + secs(i * 10 + 2), true);
            reports += usize::from(v.takeover);
            delays.push(v.retry_in);
        }
        assert_eq!(reports, 1);
        assert!(h.is_reporting_takeover());
        assert_eq!(*delays.last().unwrap(), secs(40), "{delays:?}");
        // A connection that then holds resets everything.
        h.connected(t0 + secs(1000));
        let v = h.dropped(t0 + secs(1000) + STABLE_AFTER, true);
        assert_eq!(v.retry_in, FAST_STEP);
        assert!(!h.is_reporting_takeover());
    }

    #[test]
    fn a_drop_the_broker_did_not_cause_blames_nothing_of_ours() {
        // Issue 21: a stranger's oversized retained message broke the link on every connect,
        // and the bridge "learnt" limits of 288, 89, then 44 bytes.
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        for _ in 0..5 {
            h.connected(t0);
            h.sent("b/bridge/state", 288);
            h.wrote();
            let v = h.dropped(t0 + secs(1), false);
            assert_eq!(v.refused, None);
        }
    }

    #[test]
    fn a_learnt_limit_is_given_up_after_an_hour_once() {
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        assert!(!h.retry_limit_due(t0 + RETRY_LIMIT_AFTER), "nothing learnt");
        h.limit_learnt(t0);
        assert!(!h.retry_limit_due(t0 + RETRY_LIMIT_AFTER - secs(1)));
        assert!(h.retry_limit_due(t0 + RETRY_LIMIT_AFTER));
        assert!(!h.retry_limit_due(t0 + RETRY_LIMIT_AFTER * 2), "once per learnt limit");
    }

    #[test]
    fn a_publish_refused_by_reason_code_is_neither_accepted_nor_a_suspect() {
        let mut h = LinkHealth::new();
        let t0 = Instant::now();
        h.connected(t0);
        h.sent("small", 100);
        h.sent("big", 9_000);
        h.wrote();
        h.wrote();
        assert_eq!(h.refused(), Some(("small".to_owned(), 100)));
        h.acked();
        // The broker took the 9 kB one: it is what was accepted, the refused one is not blamed.
        let v = h.dropped(t0 + secs(1), true);
        assert_eq!(v.accepted, 9_000);
        assert_eq!(v.refused, None);
        assert_eq!(h.refused(), None, "nothing outstanding");
    }
}
