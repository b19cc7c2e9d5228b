//! `[mqtt] protocol = "auto"` (the default, issue 21): MQTT 5 where the broker speaks it, 3.1.1
//! where it does not. The first attempts use MQTT 5 (link_rumqttc5.rs); a broker that refuses
//! it before ever accepting a connection (link_rumqttc5::Probe) gets the 3.1.1 link
//! (link_rumqttc.rs, with its inbound filter) for the rest of the run, with one info line.
//! A broker that is down, refuses our login or fails TLS is not a reason to fall back, and a
//! broker that has accepted MQTT 5 once is never asked in 3.1.1.
//!
//! The client half is shared by the bridge, so it is a handle whose link is swapped when the
//! protocol falls back; what the old link had queued is lost, and republished by the outbox
//! after the next CONNACK as after any reconnect.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use super::connection::MqttSetupError;
use super::link::{BoxFuture, Link, LinkClient, LinkError, LinkEvent, LinkEvents, LinkOptions, Qos};
use super::link_rumqttc5::Probe;

type Shared = Arc<RwLock<Arc<dyn LinkClient>>>;

pub(super) fn connect(o: &LinkOptions) -> Result<Link, MqttSetupError> {
    let probe = Arc::new(Probe::default());
    let (client, events) = super::link_rumqttc5::connect(o, probe.clone())?;
    let shared: Shared = Arc::new(RwLock::new(client));
    let events = Events {
        events,
        probe: Some(probe),
        client: shared.clone(),
        options: o.clone(),
    };
    Ok((Arc::new(Client(shared)), Box::new(events)))
}

struct Client(Shared);

impl Client {
    fn current(&self) -> Arc<dyn LinkClient> {
        // Every write is a single swap: a poisoned lock still holds a whole link.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl LinkClient for Client {
    fn publish(&self, topic: String, payload: Vec<u8>, qos: Qos, retain: bool) -> BoxFuture<'_, Result<(), LinkError>> {
        let client = self.current();
        Box::pin(async move { client.publish(topic, payload, qos, retain).await })
    }

    fn try_publish(&self, topic: String, payload: Vec<u8>, qos: Qos, retain: bool) -> Result<(), LinkError> {
        self.current().try_publish(topic, payload, qos, retain)
    }

    fn subscribe(&self, filter: String) -> Result<(), LinkError> {
        self.current().subscribe(filter)
    }

    fn unsubscribe(&self, filter: String) -> Result<(), LinkError> {
        self.current().unsubscribe(filter)
    }

    fn disconnect(&self) -> Result<(), LinkError> {
        self.current().disconnect()
    }
}

struct Events {
    events: Box<dyn LinkEvents>,
    /// While MQTT 5 is still being tried; `None` once it was accepted or given up.
    probe: Option<Arc<Probe>>,
    client: Shared,
    options: LinkOptions,
}

impl LinkEvents for Events {
    fn next(&mut self) -> BoxFuture<'_, LinkEvent> {
        Box::pin(async move {
            let event = self.events.next().await;
            match (&event, &self.probe) {
                (LinkEvent::Connected { .. }, Some(_)) => self.probe = None,
                (LinkEvent::Disconnected { error, .. }, Some(probe)) if probe.refused_v5.load(Ordering::SeqCst) => {
                    match super::link_rumqttc::connect_v4(&self.options) {
                        Ok((client, events)) => {
                            tracing::info!(broker = %self.options.url, error = %error, "The MQTT broker refused MQTT 5; using MQTT 3.1.1 (set mqtt.protocol = \"3.1.1\" to skip the attempt).");
                            *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
                            self.events = events;
                            self.probe = None;
                            return self.events.next().await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "Could not set up the MQTT 3.1.1 link; staying on MQTT 5.");
                            self.probe = None;
                        }
                    }
                }
                _ => {}
            }
            event
        })
    }

    fn reset_session(&mut self) {
        self.events.reset_session();
    }
}
