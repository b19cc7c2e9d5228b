//! What the MQTT link lets in, and how much of it may wait (issue 21: the broker is shared, not
//! trusted). Every message from the broker is judged here before anything parses it:
//!
//! - **Per-topic size limits**, far below the packet limit: an agent message is a few kB, a
//!   request a few hundred bytes, HA's status a word. A larger one is dropped and counted.
//! - **Bounded queues** between the event loop and the bridge: the event loop never waits for the
//!   bridge (it only `try_send`s), so a full queue drops the message and counts it.
//! - **Requests are rate-limited** (a token bucket): a flood costs a counter, not memory.
//! - Every drop is counted in [`LinkStats`] (shown in `bridge/info`) and logged at most once a
//!   minute per kind, with how many were dropped since the last line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::connection::Incoming;

/// An agent message with a few dozen interfaces and its signature fits easily.
pub const AGENT_MAX: usize = 16 * 1024;
/// A request: a command's few fields, a 255-character name (up to 4 bytes each in UTF-8) and a
/// 256-byte transaction.
pub const REQUEST_MAX: usize = 2 * 1024;
/// `online` / `offline`.
pub const HA_STATUS_MAX: usize = 64;
/// Retained configs read by the discovery scan (migration.rs): one entity's or device's config.
pub const SCAN_CONFIG_MAX: usize = 128 * 1024;
pub const AGENT_QUEUE: usize = 256;
pub const REQUEST_QUEUE: usize = 16;
/// The discovery scan must see every retained config the bridge left (a reconnect's clean-up
/// of stale parts and configs depends on it), and arrives all at once at start: room for a
/// large household's (10 000 devices in the scale tests), with a bound. It only runs until the
/// bridge's own marker comes back, so only what was retained before the start can fill it.
pub const SCAN_QUEUE: usize = 16_384;
/// Requests: a burst of this many, then [`REQUEST_RATE`] per second.
const REQUEST_BURST: f64 = 20.0;
const REQUEST_RATE: f64 = 5.0;
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What was refused on the way in; read by the bridge for `bridge/info`.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// PUBLISH packets over the incoming packet limit (inbound.rs), never read.
    pub oversized: AtomicU64,
    /// Messages over their topic's own limit.
    pub too_large: AtomicU64,
    /// Requests over the rate limit or with the request queue full.
    pub requests_dropped: AtomicU64,
    /// Agent messages with the agent queue full.
    pub agents_dropped: AtomicU64,
    /// Retained configs the discovery scan could not take (queue full).
    pub scan_dropped: AtomicU64,
}

impl LinkStats {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The non-zero counters, for `bridge/info`.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (key, counter) in [
            ("incoming_oversized", &self.oversized),
            ("incoming_too_large", &self.too_large),
            ("requests_dropped", &self.requests_dropped),
            ("agent_messages_dropped", &self.agents_dropped),
            ("scan_configs_dropped", &self.scan_dropped),
        ] {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                out.insert(key.into(), json!(n));
            }
        }
        Value::Object(out)
    }
}

/// At most one log line per [`LOG_EVERY`], saying how many events it stands for.
#[derive(Debug, Default)]
pub struct LogGate {
    last: Option<Instant>,
    pending: u64,
}

impl LogGate {
    /// Counts one event; `Some(n)` when a line is due now (n events since the last line).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        if self.last.is_some_and(|at| now.duration_since(at) < LOG_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            tokens: REQUEST_BURST,
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.at).as_secs_f64() * REQUEST_RATE;
        self.tokens = (self.tokens + refill).min(REQUEST_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Which queue a message on an extra subscription goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Agent,
    Request,
}

/// The receiving ends, for the bridge's loop.
pub struct Inbox {
    pub agents: mpsc::Receiver<Incoming>,
    pub requests: mpsc::Receiver<Incoming>,
}

impl Inbox {
    /// The next message of either queue; requests first.
    pub async fn recv(&mut self) -> Option<Incoming> {
        tokio::select! {
            biased;
            Some(m) = self.requests.recv() => Some(m),
            Some(m) = self.agents.recv() => Some(m),
            else => None,
        }
    }
}

/// The event loop's side: judges and queues messages of the extra subscriptions.
pub struct Intake {
    agents: mpsc::Sender<Incoming>,
    requests: mpsc::Sender<Incoming>,
    bucket: Bucket,
    stats: Arc<LinkStats>,
    too_large_log: LogGate,
    requests_log: LogGate,
    agents_log: LogGate,
}

impl Intake {
    pub fn new(stats: Arc<LinkStats>) -> (Self, Inbox) {
        let (agents, agents_rx) = mpsc::channel(AGENT_QUEUE);
        let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
        let intake = Self {
            agents,
            requests,
            bucket: Bucket::new(Instant::now()),
            stats,
            too_large_log: LogGate::default(),
            requests_log: LogGate::default(),
            agents_log: LogGate::default(),
        };
        (
            intake,
            Inbox {
                agents: agents_rx,
                requests: requests_rx,
            },
        )
    }

    /// Queues one message, or drops and counts it. Never waits.
    pub fn offer(&mut self, kind: Kind, topic: &str, payload: &[u8], now: Instant) {
        self.admit(kind, topic, payload.len(), payload, now);
    }

    /// A message of `size` bytes that was never read (inbound.rs): a request is still answered.
    pub fn offer_unread(&mut self, kind: Kind, topic: &str, size: usize, now: Instant) {
        self.admit(kind, topic, size, &[], now);
    }

    fn admit(&mut self, kind: Kind, topic: &str, size: usize, payload: &[u8], now: Instant) {
        let limit = match kind {
            Kind::Agent => AGENT_MAX,
            Kind::Request => REQUEST_MAX,
        };
        let oversized = (size > limit).then_some(size);
        if oversized.is_some() {
            LinkStats::count(&self.stats.too_large);
            if let Some(n) = self.too_large_log.hit(now) {
                tracing::warn!(topic = %topic, size, limit, dropped = n, "MQTT message larger than its topic allows; dropped unread (one line a minute).");
            }
            // A request is still answered (with an error); an agent message just goes.
            if kind == Kind::Agent {
                return;
            }
        }
        if kind == Kind::Request && !self.bucket.take(now) {
            return self.drop_request(topic, "rate limit", now);
        }
        let message = Incoming {
            topic: topic.to_owned(),
            payload: if oversized.is_some() {
                Vec::new()
            } else {
                payload.to_vec()
            },
            oversized,
        };
        let queue = match kind {
            Kind::Agent => &self.agents,
            Kind::Request => &self.requests,
        };
        match queue.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => match kind {
                Kind::Request => self.drop_request(topic, "queue full", now),
                Kind::Agent => {
                    LinkStats::count(&self.stats.agents_dropped);
                    if let Some(n) = self.agents_log.hit(now) {
                        tracing::warn!(topic = %topic, dropped = n, "Agent messages arrive faster than the bridge reads them; dropped (one line a minute).");
                    }
                }
            },
        }
    }

    fn drop_request(&mut self, topic: &str, why: &str, now: Instant) {
        LinkStats::count(&self.stats.requests_dropped);
        if let Some(n) = self.requests_log.hit(now) {
            tracing::warn!(topic = %topic, reason = why, dropped = n, "Bridge requests arrive too fast; dropped without an answer (one line a minute).");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_flood_is_cut_to_the_rate_and_the_queue() {
        let stats = Arc::new(LinkStats::default());
        let (mut intake, mut inbox) = Intake::new(stats.clone());
        let now = Instant::now();
        for _ in 0..10_000 {
            intake.offer(Kind::Request, "b/bridge/request/health_check", b"{}", now);
        }
        let mut queued = 0;
        while inbox.requests.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, REQUEST_QUEUE);
        assert_eq!(
            stats.requests_dropped.load(Ordering::Relaxed),
            10_000 - REQUEST_QUEUE as u64
        );
        // The bucket refills with time.
        let later = now + Duration::from_secs(2);
        intake.offer(Kind::Request, "b/bridge/request/poll", b"{}", later);
        assert!(inbox.requests.try_recv().is_ok());
    }

    #[tokio::test]
    async fn each_topic_has_its_own_size_limit_and_agents_their_own_queue() {
        let stats = Arc::new(LinkStats::default());
        let (mut intake, mut inbox) = Intake::new(stats.clone());
        let now = Instant::now();
        intake.offer(Kind::Request, "b/bridge/request/poll", &[b' '; REQUEST_MAX + 1], now);
        intake.offer(Kind::Agent, "b/agent/x/counters", &[b' '; AGENT_MAX + 1], now);
        assert_eq!(stats.too_large.load(Ordering::Relaxed), 2);
        // The request is queued unread, to be answered with an error.
        let answered = inbox.requests.try_recv().unwrap();
        assert_eq!((answered.payload.len(), answered.oversized), (0, Some(REQUEST_MAX + 1)));
        assert!(inbox.agents.try_recv().is_err());
        for _ in 0..AGENT_QUEUE + 5 {
            intake.offer(Kind::Agent, "b/agent/x/counters", b"{}", now);
        }
        // Requests still get through while the agent queue is full.
        intake.offer(Kind::Request, "b/bridge/request/poll", b"{}", now);
        assert_eq!(stats.agents_dropped.load(Ordering::Relaxed), 5);
        assert_eq!(inbox.recv().await.unwrap().topic, "b/bridge/request/poll");
        assert_eq!(
            stats.to_json(),
            json!({"incoming_too_large": 2, "agent_messages_dropped": 5})
        );
    }

    #[tokio::test]
    async fn drops_are_logged_once_a_minute_with_their_count() {
        let mut gate = LogGate::default();
        let t0 = Instant::now();
        assert_eq!(gate.hit(t0), Some(1));
        assert_eq!(gate.hit(t0 + Duration::from_secs(1)), None);
        assert_eq!(gate.hit(t0 + Duration::from_secs(59)), None);
        assert_eq!(gate.hit(t0 + Duration::from_secs(60)), Some(3));
    }
}
