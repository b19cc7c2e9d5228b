//! The MQTT connection: rumqttc's event loop in its own task, with the reconnect backoff that
//! rumqttc does not do itself, and a drain task that feeds the [`Outbox`] into the client.
//!
//! The event loop task never awaits anything that depends on the rest of the bridge (a full
//! request channel would deadlock it); it only uses non-blocking `try_*` calls and an unbounded
//! event channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, PublishOptions, QoS, Transport};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::outbox::{Outbox, Priority};
use super::tls;
use super::topics::Topics;
use crate::config::{MqttSettings, MqttTransport, MqttUrl};

/// HA discovery payloads of big devices exceed rumqttc's 10 KiB default.
const MAX_PACKET: usize = 256 * 1024;
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What the connection tells the rest of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttEvent {
    /// (Re)connected; everything has been queued for republishing.
    Connected,
    /// Home Assistant announced itself on its status topic.
    HaOnline,
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
}

pub struct MqttLink {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<MqttEvent>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    connected: watch::Receiver<bool>,
    shutting_down: Arc<AtomicBool>,
    loop_task: JoinHandle<()>,
    drain_task: JoinHandle<()>,
    topics: Topics,
}

impl MqttLink {
    /// Starts connecting in the background; returns at once.
    pub fn start(
        settings: &MqttSettings,
        url: &MqttUrl,
        topics: &Topics,
        outbox: Arc<Outbox>,
    ) -> Result<Self, MqttSetupError> {
        Self::start_subscribed(settings, url, topics, outbox, Vec::new())
    }

    /// As [`MqttLink::start`], also subscribed to `filters`; their messages come out of
    /// [`MqttLink::next_incoming`].
    pub fn start_subscribed(
        settings: &MqttSettings,
        url: &MqttUrl,
        topics: &Topics,
        outbox: Arc<Outbox>,
        filters: Vec<String>,
    ) -> Result<Self, MqttSetupError> {
        let mut options = MqttOptions::new(settings.client_id.clone(), (url.host.clone(), url.port));
        options.set_keep_alive(settings.keep_alive.as_secs().clamp(5, u64::from(u16::MAX)) as u16);
        options.set_clean_session(true);
        options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        options.set_request_channel_capacity(256);
        options.set_last_will(LastWill::new(topics.bridge_state(), "offline", QoS::AtLeastOnce, true));
        if let Some(user) = &settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            options.set_credentials(user.clone(), password.into_bytes());
        }
        if url.transport == MqttTransport::Tls {
            let client_auth = settings
                .client_cert_file
                .as_deref()
                .zip(settings.client_key_file.as_deref());
            let config = tls::client_config(settings.ca_file.as_deref(), client_auth)?;
            options.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::new(
                config,
            ))));
        }
        let (client, eventloop) = AsyncClient::builder(options).capacity(256).build();
        let (event_tx, events) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let (connected_tx, connected) = watch::channel(false);
        let shutting_down = Arc::new(AtomicBool::new(false));

        let loop_task = tokio::spawn(run_event_loop(EventLoopTask {
            eventloop,
            client: client.clone(),
            topics: topics.clone(),
            broker: url.to_string(),
            outbox: outbox.clone(),
            events: event_tx,
            incoming: incoming_tx,
            filters,
            connected: connected_tx,
            shutting_down: shutting_down.clone(),
        }));
        let drain_task = tokio::spawn(drain(client.clone(), outbox, connected.clone()));
        Ok(Self {
            client,
            events,
            incoming,
            connected,
            shutting_down,
            loop_task,
            drain_task,
            topics: topics.clone(),
        })
    }

    pub async fn next_event(&mut self) -> Option<MqttEvent> {
        self.events.recv().await
    }

    /// The messages of the extra subscriptions, to be received beside [`MqttLink::next_event`].
    pub fn take_incoming(&mut self) -> mpsc::UnboundedReceiver<Incoming> {
        std::mem::replace(&mut self.incoming, mpsc::unbounded_channel().1)
    }

    /// Publishes at once, not retained, outside the outbox: command responses and events are
    /// messages, not states, so two equal ones must both go out. Dropped (logged) when the
    /// client's queue is full or the broker is away.
    pub fn publish_now(&self, topic: String, payload: String) {
        if let Err(e) = self
            .client
            .try_publish(topic.clone(), payload, PublishOptions::new(QoS::AtLeastOnce))
        {
            tracing::warn!(topic = %topic, error = %e, "Could not queue a response or event; dropped.");
        }
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
        if publish_offline && *self.connected.borrow() {
            let offline = PublishOptions::new(QoS::AtLeastOnce).retain(true);
            if let Err(e) = self.client.try_publish(self.topics.bridge_state(), "offline", offline) {
                tracing::warn!(error = %e, "Could not queue the offline state.");
            }
        }
        let _ = self.client.try_disconnect_with_timeout(Duration::from_secs(3));
        if tokio::time::timeout(Duration::from_secs(5), self.loop_task)
            .await
            .is_err()
        {
            tracing::warn!("MQTT connection did not close within 5 s; leaving it.");
        }
    }
}

struct EventLoopTask {
    eventloop: rumqttc::EventLoop,
    client: AsyncClient,
    topics: Topics,
    broker: String,
    outbox: Arc<Outbox>,
    events: mpsc::UnboundedSender<MqttEvent>,
    incoming: mpsc::UnboundedSender<Incoming>,
    filters: Vec<String>,
    connected: watch::Sender<bool>,
    shutting_down: Arc<AtomicBool>,
}

async fn run_event_loop(mut t: EventLoopTask) {
    let mut backoff = BACKOFF_START;
    let mut last_error: Option<String> = None;
    loop {
        match t.eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_START;
                last_error = None;
                tracing::info!(broker = %t.broker, "Connected to the MQTT broker.");
                // Subscriptions do not survive a reconnect with a clean session.
                if let Err(e) = t.client.try_subscribe(t.topics.ha_status.clone(), QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "Could not subscribe to Home Assistant's status topic.");
                }
                for filter in &t.filters {
                    if let Err(e) = t.client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(filter = %filter, error = %e, "Could not subscribe.");
                    }
                }
                t.outbox
                    .put(t.topics.bridge_state(), "online", true, Priority::BridgeState);
                t.outbox.mark_all();
                let _ = t.connected.send(true);
                let _ = t.events.send(MqttEvent::Connected);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.topic.as_ref() == t.topics.ha_status.as_bytes() {
                    match p.payload.as_ref() {
                        b"online" => {
                            tracing::info!("Home Assistant came online; republishing states.");
                            let _ = t.events.send(MqttEvent::HaOnline);
                        }
                        b"offline" => tracing::info!("Home Assistant went offline."),
                        _ => {}
                    }
                } else if !t.filters.is_empty() {
                    let topic = String::from_utf8_lossy(p.topic.as_ref()).into_owned();
                    let _ = t.incoming.send(Incoming {
                        topic,
                        payload: p.payload.to_vec(),
                    });
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) if t.shutting_down.load(Ordering::SeqCst) => {
                let _ = t.connected.send(false);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = t.connected.send(false);
                if t.shutting_down.load(Ordering::SeqCst) {
                    return;
                }
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(broker = %t.broker, error = %text, retry_in = ?backoff, "MQTT connection failed; retrying with backoff.");
                    last_error = Some(text);
                } else {
                    tracing::debug!(broker = %t.broker, error = %text, retry_in = ?backoff, "MQTT connection still failing.");
                }
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Up to +25 % so that many bridges do not reconnect in lockstep after a broker restart.
fn jitter(d: Duration) -> Duration {
    let extra = rand::random::<f64>() * 0.25;
    d.mul_f64(1.0 + extra)
}

/// Feeds dirty outbox messages to the client while connected.
async fn drain(client: AsyncClient, outbox: Arc<Outbox>, mut connected: watch::Receiver<bool>) {
    loop {
        if connected.wait_for(|c| *c).await.is_err() {
            return;
        }
        while *connected.borrow() {
            let Some(message) = outbox.next() else { break };
            let options = PublishOptions::new(QoS::AtLeastOnce).retain(message.retain);
            let payload = message.payload.as_bytes().to_vec();
            if let Err(e) = client.publish(message.topic.clone(), payload, options).await {
                tracing::debug!(topic = %message.topic, error = %e, "Publish not queued; will retry.");
                outbox.retry(message);
                break;
            }
        }
        tokio::select! {
            _ = outbox.changed() => {}
            r = connected.changed() => if r.is_err() { return },
        }
    }
}
