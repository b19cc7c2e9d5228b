//! The demo's own MQTT subscriber: it reads back what the bridge published under the base topic
//! (`bridge/devices` and each device's state), like any other consumer would, and keeps the
//! latest of each for the table. New state keys (e.g. period totals) show up without changes here.
//! It also remembers every retained topic the demo's bridge left on the broker (its base topic
//! and its discovery configs), so that stopping the demo can clear them: on a broker that a
//! Home Assistant uses, the demo household disappears again when the demo ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, PublishOptions, QoS, TlsConfiguration, Transport};
use serde_json::Value;

use super::broker::DemoBroker;
use super::table::{Row, rows};
use crate::config::{MqttTransport, MqttUrl};

#[derive(Default)]
struct Seen {
    devices: Value,
    states: BTreeMap<String, Value>,
    bridge_state: Option<String>,
    /// Retained topics of the demo: everything under the base topic, and discovery configs
    /// whose payload points at it.
    left_behind: BTreeSet<String>,
}

pub struct Watch {
    seen: Arc<Mutex<Seen>>,
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Subscribes to `<base>/#` and `<discovery>/#` on the demo's broker, with its credentials
    /// and over TLS for `mqtts://` (reconnecting on its own if the broker goes away). Fails only
    /// if TLS cannot be set up (an unreadable CA file).
    pub fn start(broker: &DemoBroker, base: &str, discovery: &str) -> Result<Self, String> {
        let (host, port) = broker.host_port();
        let id = format!("bandwidth2mqtt_demo_table_{}", std::process::id());
        let mut options = MqttOptions::new(id, (host, port));
        options.set_max_packet_size(1 << 20, 1 << 20);
        options.set_keep_alive(30);
        let access = &broker.access;
        if let Some(user) = &access.username {
            let password = access.password.as_ref().map(|p| p.expose()).unwrap_or_default();
            options.set_credentials(user.clone(), password.as_bytes().to_vec());
        }
        if MqttUrl::parse(&broker.url).is_ok_and(|u| u.transport == MqttTransport::Tls) {
            let config =
                crate::publish::tls::client_config(access.ca_file.as_deref(), None).map_err(|e| e.to_string())?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))));
        }
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(100).build();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (shared, sub) = (seen.clone(), client.clone());
        let filters = [format!("{base}/#"), format!("{discovery}/#")];
        let prefix = format!("{base}/");
        let discovery_prefix = format!("{discovery}/");
        // A discovery config of the demo names its state topic (or base `~`) under the base topic.
        let ours = format!("\"{base}/");
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    // Subscribe on every (re)connect: the session is clean.
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            let _ = sub.try_subscribe(filter.clone(), QoS::AtMostOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic);
                        let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(rest) = topic.strip_prefix(&prefix) {
                            record(&mut guard, rest, &p.payload);
                            guard.left_behind.insert(topic.into_owned());
                        } else if topic.starts_with(&discovery_prefix)
                            && String::from_utf8_lossy(&p.payload).contains(&ours)
                        {
                            guard.left_behind.insert(topic.into_owned());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        });
        Ok(Self { seen, client, task })
    }

    /// The table's rows from the latest messages.
    pub fn rows(&self) -> Vec<Row> {
        let guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        rows(&guard.devices, &guard.states)
    }

    /// `online`/`offline` from `bridge/state`, once seen.
    pub fn bridge_state(&self) -> Option<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).bridge_state.clone()
    }

    /// Publishes an empty retained message on every retained topic the demo left: the broker
    /// forgets them, and Home Assistant removes the demo's devices. Returns how many.
    pub async fn clear_retained(&self) -> usize {
        let mut topics: Vec<String> = {
            let guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            guard.left_behind.iter().cloned().collect()
        };
        // Discovery configs first: HA removes the entities, and only then do their state topics
        // go empty (an empty state under a live entity is an "Erroneous JSON" warning in HA).
        topics.sort_by_key(|t| !t.ends_with("/config"));
        for topic in &topics {
            let options = PublishOptions::new(QoS::AtLeastOnce).retain(true);
            let _ = self.client.publish(topic.clone(), Vec::<u8>::new(), options).await;
        }
        topics.len()
    }

    pub async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.disconnect()).await;
        self.task.abort();
    }
}

/// One message below the base topic. Anything that is not JSON is ignored (and kept out of the
/// table) rather than trusted.
fn record(seen: &mut Seen, rest: &str, payload: &[u8]) {
    match rest {
        "bridge/devices" => {
            if let Ok(devices @ Value::Array(_)) = serde_json::from_slice(payload) {
                seen.devices = devices;
            }
        }
        "bridge/state" => seen.bridge_state = Some(String::from_utf8_lossy(payload).into_owned()),
        _ if rest.starts_with("bridge/") || rest.contains('/') => {}
        id => {
            if let Ok(state @ Value::Object(_)) = serde_json::from_slice(payload) {
                seen.states.insert(id.to_owned(), state);
            } else if payload.is_empty() {
                seen.states.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_devices_and_states_and_ignores_the_rest() {
        let mut seen = Seen::default();
        record(
            &mut seen,
            "bridge/devices",
            br#"[{"id":"titan","name":"Titan","kind":"server"}]"#,
        );
        record(&mut seen, "titan", br#"{"online":true,"rx_bytes":5,"tx_bytes":6}"#);
        record(&mut seen, "bridge/source/titan", b"online");
        record(&mut seen, "agent/x/counters", b"{}");
        record(&mut seen, "ghost", b"not json");
        record(&mut seen, "bridge/state", b"online");
        assert_eq!(seen.states.keys().collect::<Vec<_>>(), ["titan"]);
        let table = rows(&seen.devices, &seen.states);
        assert_eq!(table.len(), 1);
        assert_eq!(table[0].total, (Some(5), Some(6)));
        record(&mut seen, "bridge/devices", b"garbage");
        assert_eq!(
            rows(&seen.devices, &seen.states).len(),
            1,
            "garbage keeps the last good list"
        );
        assert_eq!(seen.bridge_state.as_deref(), Some("online"));
    }
}
