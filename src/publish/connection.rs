//! The MQTT connection, on the bridge's side of the link port (link.rs): the link's events read
//! in their own task, with the reconnect backoff that the link does not do itself, and a drain
//! task that feeds the [`Outbox`] into the link. The same code runs over rumqttc (the daemon)
//! and over the in-memory link (tests), so whatever a stranger publishes meets the same limits
//! (intake.rs) either way.
//!
//! The event task never awaits anything that depends on the rest of the bridge (a full
//! request channel would deadlock it); it only uses non-blocking `try_*` calls and an unbounded
//! event channel.
//!
//! No message can break the link: the drain task skips (and logs once) any message over the
//! packet limit before the link sees it, and [`LinkHealth`] learns a lower limit when the broker
//! drops the connection over a packet. A republish is paced so that it never floods the broker
//! and never holds up a fresh state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::intake::{self, Inbox, Intake, Kind, LinkStats, LogGate};
use super::link::{Connector, LinkClient, LinkEvent, LinkEvents, LinkOptions, Qos};
use super::link_health::LinkHealth;
use super::outbox::{Outbox, Priority};
use super::tls;
use super::topics::Topics;
use crate::config::{MqttSettings, MqttUrl};

/// The largest PUBLISH read from the broker (remaining length): the largest of the per-topic
/// limits (intake.rs). A larger one never reaches the bridge whole (the port's contract,
/// link.rs; checked again here), so it can never drop the link.
pub const MAX_INCOMING: usize = intake::SCAN_CONFIG_MAX + 1024;

/// Bytes kept free under an MQTT 5 broker's Maximum Packet Size: the outbox measures packets
/// as MQTT 3.1.1 frames them, and MQTT 5 adds at least a property length byte.
const V5_MARGIN: usize = 16;

pub(super) type Health = Arc<Mutex<LinkHealth>>;

pub(super) fn lock(health: &Health) -> std::sync::MutexGuard<'_, LinkHealth> {
    // Every update is a single push or pop: a poisoned lock is still consistent.
    health.lock().unwrap_or_else(|p| p.into_inner())
}

/// Now, on tokio's clock (the real one, or a test's paused time).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// What the connection tells the rest of the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttEvent {
    /// (Re)connected; everything has been queued for republishing. `first` on the first one,
    /// when the discovery scan (migration.rs) starts.
    Connected { first: bool },
    /// Home Assistant announced itself on its status topic.
    HaOnline,
    /// A discovery config seen during the scan.
    Config { topic: String, payload: Vec<u8> },
    /// Every retained config of the scan has been reported (the scan's marker came back).
    ScanDone,
}

#[derive(Debug, thiserror::Error)]
pub enum MqttSetupError {
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
}

/// A message on one of the extra subscriptions (commands, agents).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    /// A request too large to read (its size): `payload` is empty, the answer an error.
    pub oversized: Option<usize>,
}

pub struct MqttLink {
    client: Arc<dyn LinkClient>,
    events: mpsc::UnboundedReceiver<MqttEvent>,
    configs: mpsc::Receiver<MqttEvent>,
    ha_online_pending: Arc<AtomicBool>,
    incoming: Option<Inbox>,
    stats: Arc<LinkStats>,
    connected: watch::Receiver<bool>,
    shutting_down: Arc<AtomicBool>,
    loop_task: JoinHandle<()>,
    drain_task: JoinHandle<()>,
    topics: Topics,
    scanning: Arc<AtomicBool>,
    outbox: Arc<Outbox>,
    scan_marker: String,
}

/// The end of the discovery scan, without waiting out [`super::migration::SCAN_FOR`]: after
/// subscribing to the configs, the link publishes a marker to a topic of its own. The broker
/// handles our packets in order, so the retained configs are queued to us before the marker;
/// when the marker comes back, every retained config has been seen. (A broker that does not
/// let us publish there just leaves the scan to its time limit.)
fn scan_marker_topic(topics: &Topics) -> String {
    format!("{}/bridge/scan/{:016x}", topics.base, rand::random::<u64>())
}

impl MqttLink {
    /// Starts connecting in the background over `connector`'s link; returns at once. The
    /// messages on `filters` come out of [`MqttLink::take_incoming`].
    pub fn start(
        connector: &dyn Connector,
        settings: &MqttSettings,
        url: &MqttUrl,
        topics: &Topics,
        outbox: Arc<Outbox>,
        filters: Vec<String>,
    ) -> Result<Self, MqttSetupError> {
        let (client, link_events) = connector.connect(&LinkOptions {
            settings: settings.clone(),
            url: url.clone(),
            will_topic: topics.bridge_state(),
            max_incoming: MAX_INCOMING,
            max_outgoing: settings.max_packet_size.max(outbox.packet_limit()),
        })?;
        let (event_tx, events) = mpsc::unbounded_channel();
        let (config_tx, configs) = mpsc::channel(intake::SCAN_QUEUE);
        let ha_online_pending = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(LinkStats::default());
        let (intake, inbox) = Intake::new(stats.clone());
        let (connected_tx, connected) = watch::channel(false);
        let shutting_down = Arc::new(AtomicBool::new(false));
        let health: Health = Arc::default();
        let scanning = Arc::new(AtomicBool::new(false));
        let scan_marker = scan_marker_topic(topics);

        let loop_task = tokio::spawn(run_event_loop(EventLoopTask {
            link: link_events,
            client: client.clone(),
            topics: topics.clone(),
            broker: url.to_string(),
            client_id: settings.client_id.clone(),
            outbox: outbox.clone(),
            events: event_tx,
            configs: config_tx,
            ha_online_pending: ha_online_pending.clone(),
            intake,
            stats: stats.clone(),
            oversized_log: LogGate::default(),
            refused_log: LogGate::default(),
            configured_limit: settings.max_packet_size,
            filters,
            connected: connected_tx,
            shutting_down: shutting_down.clone(),
            health: health.clone(),
            scanning: scanning.clone(),
            scan_marker: scan_marker.clone(),
            first_connect: true,
        }));
        let drain_task = tokio::spawn(super::drain::drain(
            client.clone(),
            outbox.clone(),
            connected.clone(),
            health,
        ));
        Ok(Self {
            client,
            events,
            configs,
            ha_online_pending,
            incoming: Some(inbox),
            stats,
            connected,
            shutting_down,
            loop_task,
            drain_task,
            topics: topics.clone(),
            scanning,
            outbox,
            scan_marker,
        })
    }

    /// Ends the discovery scan: no more configs are reported.
    pub fn end_scan(&self) {
        if self.scanning.swap(false, Ordering::SeqCst) {
            let marker = self.scan_marker.clone();
            for filter in super::migration::scan_filters(&self.topics).into_iter().chain([marker]) {
                if let Err(e) = self.client.unsubscribe(filter) {
                    tracing::debug!(error = %e, "Could not end the discovery scan subscription.");
                }
            }
        }
    }

    pub async fn next_event(&mut self) -> Option<MqttEvent> {
        let event = tokio::select! {
            biased;
            Some(e) = self.events.recv() => Some(e),
            Some(e) = self.configs.recv() => Some(e),
            else => None,
        };
        if event == Some(MqttEvent::HaOnline) {
            self.ha_online_pending.store(false, Ordering::SeqCst);
        }
        event
    }

    /// The messages of the extra subscriptions (bounded queues, intake.rs), to be received
    /// beside [`MqttLink::next_event`]. `None` after the first call.
    pub fn take_incoming(&mut self) -> Option<Inbox> {
        self.incoming.take()
    }

    /// What the link refused on the way in (for `bridge/info`).
    pub fn stats(&self) -> Arc<LinkStats> {
        self.stats.clone()
    }

    /// Publishes as soon as possible, not retained and not deduplicated: command responses and
    /// events are messages, not states, so two equal ones must both go out. They wait in the
    /// outbox's bounded queue (messages.rs) while the broker is away or the client is busy, and
    /// go through the drain task so that acknowledgements stay matched to what was sent.
    pub fn publish_now(&self, topic: String, payload: String) {
        self.outbox.push_message(topic, payload);
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until the broker accepted the connection, up to `limit`.
    pub async fn wait_connected(&mut self, limit: Duration) -> bool {
        let mut rx = self.connected.clone();
        tokio::time::timeout(limit, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Clean stop: nothing more from the outbox, `offline` on the bridge state, then DISCONNECT
    /// once the broker acknowledged what was in flight.
    pub async fn shutdown(self, publish_offline: bool) {
        self.drain_task.abort();
        let _ = self.drain_task.await;
        self.shutting_down.store(true, Ordering::SeqCst);
        // Responses and events still waiting (a restart's own response among them).
        while let Some((topic, payload)) = self.outbox.next_message() {
            if let Err(e) = self
                .client
                .try_publish(topic.clone(), payload.into_bytes(), Qos::AtLeastOnce, false)
            {
                tracing::warn!(topic = %topic, error = %e, "Could not queue a response or event before stopping; dropped.");
                break;
            }
        }
        if publish_offline && *self.connected.borrow() {
            let offline = b"offline".to_vec();
            if let Err(e) = self
                .client
                .try_publish(self.topics.bridge_state(), offline, Qos::AtLeastOnce, true)
            {
                tracing::warn!(error = %e, "Could not queue the offline state.");
            }
        }
        let _ = self.client.disconnect();
        if tokio::time::timeout(Duration::from_secs(5), self.loop_task)
            .await
            .is_err()
        {
            tracing::warn!("MQTT connection did not close within 5 s; leaving it.");
        }
    }
}

struct EventLoopTask {
    link: Box<dyn LinkEvents>,
    client: Arc<dyn LinkClient>,
    topics: Topics,
    broker: String,
    client_id: String,
    outbox: Arc<Outbox>,
    events: mpsc::UnboundedSender<MqttEvent>,
    configs: mpsc::Sender<MqttEvent>,
    /// An `HaOnline` is queued and not read yet: a flood of `online` costs one event.
    ha_online_pending: Arc<AtomicBool>,
    intake: Intake,
    stats: Arc<LinkStats>,
    oversized_log: LogGate,
    refused_log: LogGate,
    configured_limit: usize,
    filters: Vec<String>,
    connected: watch::Sender<bool>,
    shutting_down: Arc<AtomicBool>,
    health: Health,
    scanning: Arc<AtomicBool>,
    scan_marker: String,
    first_connect: bool,
}

impl EventLoopTask {
    /// MQTT 5: the broker said in CONNACK how large a packet it takes. That, not a guess from
    /// disconnects, is the outgoing limit (with a margin for MQTT 5's property bytes, which the
    /// outbox does not count), and it replaces whatever was learnt before.
    fn take_broker_limit(&mut self, broker_limit: usize) {
        let limit = self.configured_limit.min(broker_limit.saturating_sub(V5_MARGIN)).max(1);
        if limit < self.configured_limit && self.outbox.packet_limit() != limit {
            tracing::info!(broker = %self.broker, broker_limit, limit, "The broker takes packets up to its Maximum Packet Size; larger messages are skipped.");
        }
        self.outbox.restore_limit(limit);
    }

    /// A PUBLISH too large to read (`topic` maybe cut): counted, logged once a minute, and a
    /// request still gets its answer (an error), so the requester is not left waiting.
    fn on_oversized(&mut self, original: &str, size: usize) {
        let now = tokio::time::Instant::now();
        LinkStats::count(&self.stats.oversized);
        if let Some(n) = self.oversized_log.hit(now) {
            tracing::warn!(topic = %original, size, limit = MAX_INCOMING, skipped = n, "MQTT message from the broker larger than the bridge reads; skipped unread, the link stays up (one line a minute).");
        }
        if !self.filters.is_empty() && original.starts_with(&self.topics.bridge_requests().replace('#', "")) {
            self.intake.offer_unread(Kind::Request, original, size, now);
        }
    }

    /// Sorts one PUBLISH from the broker, each kind within its own limit (intake.rs).
    fn on_publish(&mut self, topic: &str, payload: &[u8], retain: bool) {
        let now = tokio::time::Instant::now();
        if payload.len() > MAX_INCOMING {
            // The link should not have handed this over (link.rs); bounded all the same.
            self.on_oversized(topic, payload.len());
        } else if topic == self.topics.ha_status {
            match payload {
                // A flood of `online` costs one event (`ha_online_pending`).
                b"online" if !self.ha_online_pending.swap(true, Ordering::SeqCst) => {
                    tracing::info!("Home Assistant came online; republishing states.");
                    let _ = self.events.send(MqttEvent::HaOnline);
                }
                b"offline" => tracing::info!("Home Assistant went offline."),
                _ => {}
            }
        } else if topic == self.scan_marker {
            if self.scanning.load(Ordering::SeqCst) {
                let _ = self.events.send(MqttEvent::ScanDone);
            }
        } else if super::migration::is_discovery_topic(&self.topics, topic) {
            // Only retained configs: the scan is about what was there before us.
            if retain && self.scanning.load(Ordering::SeqCst) {
                if payload.len() > intake::SCAN_CONFIG_MAX {
                    LinkStats::count(&self.stats.too_large);
                    return;
                }
                let config = MqttEvent::Config {
                    topic: topic.to_owned(),
                    payload: payload.to_vec(),
                };
                if self.configs.try_send(config).is_err() {
                    LinkStats::count(&self.stats.scan_dropped);
                }
            }
        } else if !self.filters.is_empty() {
            let kind = if crate::agent::agent_name(&self.topics.base, topic).is_some() {
                Kind::Agent
            } else {
                Kind::Request
            };
            self.intake.offer(kind, topic, payload, now);
        }
    }
}

async fn run_event_loop(mut t: EventLoopTask) {
    let mut last_error: Option<String> = None;
    loop {
        match t.link.next().await {
            LinkEvent::Connected { max_packet, protocol } => {
                lock(&t.health).connected(now());
                if lock(&t.health).retry_limit_due(now()) && t.outbox.packet_limit() < t.configured_limit {
                    tracing::info!(
                        limit = t.configured_limit,
                        "Trying the configured MQTT packet limit again (the lower one was learnt over an hour ago)."
                    );
                    t.outbox.restore_limit(t.configured_limit);
                }
                // After the retry above: the broker's own word wins.
                if let Some(broker_limit) = max_packet {
                    t.take_broker_limit(broker_limit);
                }
                last_error = None;
                tracing::info!(broker = %t.broker, protocol, "Connected to the MQTT broker.");
                // Subscriptions do not survive a reconnect with a clean session.
                if let Err(e) = t.client.subscribe(t.topics.ha_status.clone()) {
                    tracing::warn!(error = %e, "Could not subscribe to Home Assistant's status topic.");
                }
                for filter in &t.filters {
                    if let Err(e) = t.client.subscribe(filter.clone()) {
                        tracing::warn!(filter = %filter, error = %e, "Could not subscribe.");
                    }
                }
                let first = std::mem::take(&mut t.first_connect);
                if first {
                    // Retained configs of ours in the other shape are migrated (migration.rs).
                    t.scanning.store(true, Ordering::SeqCst);
                    let marker = t.scan_marker.clone();
                    for filter in super::migration::scan_filters(&t.topics).into_iter().chain([marker]) {
                        if let Err(e) = t.client.subscribe(filter) {
                            tracing::warn!(error = %e, "Could not look for discovery configs to migrate.");
                        }
                    }
                    // Through the drain task, behind the subscriptions (scan_marker_topic).
                    t.outbox.push_message(t.scan_marker.clone(), String::new());
                }
                t.outbox
                    .put(t.topics.bridge_state(), "online", true, Priority::BridgeState);
                t.outbox.mark_all();
                let _ = t.connected.send(true);
                let _ = t.events.send(MqttEvent::Connected { first });
            }
            LinkEvent::Message { topic, payload, retain } => t.on_publish(&topic, &payload, retain),
            LinkEvent::Oversized { topic, size } => t.on_oversized(&topic, size),
            LinkEvent::Acked => lock(&t.health).acked(),
            LinkEvent::Refused { reason } => {
                let refused = lock(&t.health).refused();
                if let Some((topic, size)) = refused
                    && t.refused_log.hit(tokio::time::Instant::now()).is_some()
                {
                    tracing::warn!(broker = %t.broker, topic = %topic, size, reason = %reason, "The broker refused one of our messages (MQTT 5 reason code); check its ACL for the bridge's user (one line a minute).");
                }
            }
            LinkEvent::Wrote => lock(&t.health).wrote(),
            LinkEvent::Closed if t.shutting_down.load(Ordering::SeqCst) => {
                let _ = t.connected.send(false);
                return;
            }
            LinkEvent::Closed => {}
            LinkEvent::Disconnected { by_broker, error } => {
                let _ = t.connected.send(false);
                if t.shutting_down.load(Ordering::SeqCst) {
                    return;
                }
                t.link.reset_session();
                let verdict = lock(&t.health).dropped(now(), by_broker);
                let retry_in = verdict.retry_in;
                if let Some((topic, size)) = &verdict.refused {
                    tracing::error!(
                        broker = %t.broker,
                        topic = %topic,
                        size,
                        "The broker closed the connection twice right after this message; treating its size as over the broker's packet limit and skipping messages this large (set mqtt.max_packet_size below it)."
                    );
                    t.outbox.learn_refusal(*size, verdict.accepted);
                    lock(&t.health).limit_learnt(now());
                }
                if verdict.takeover {
                    tracing::error!(
                        broker = %t.broker,
                        client_id = %t.client_id,
                        "The broker keeps closing our connection soon after accepting it: another MQTT client probably uses the same client_id. Give every bridge its own mqtt.client_id; backing off meanwhile."
                    );
                }
                if last_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!(broker = %t.broker, error = %error, retry_in = ?retry_in, "MQTT connection failed; retrying with backoff.");
                    last_error = Some(error);
                } else {
                    tracing::debug!(broker = %t.broker, error = %error, retry_in = ?retry_in, "MQTT connection still failing.");
                }
                tokio::time::sleep(jitter(retry_in)).await;
            }
        }
    }
}

/// Up to +25 % so that many bridges do not reconnect in lockstep after a broker restart.
fn jitter(d: Duration) -> Duration {
    let extra = rand::random::<f64>() * 0.25;
    d.mul_f64(1.0 + extra)
}
