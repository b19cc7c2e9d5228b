//! `bandwidth2mqtt agent`: runs on a server and publishes that machine's kernel counters, MACs
//! and boot id to `<base_topic>/agent/<name>/counters` (retained, every `[host] interval`, last
//! will = offline) for a main bridge elsewhere, which reads it as a source. No ssh, no HA
//! discovery of its own: the broker is the only thing between agent and bridge.
//!
//! The counters come from the host source ([`crate::sources::host`]), so an agent reports exactly
//! what a bridge running on that machine would see: `/proc/net/dev`, `/sys/class/net`, `boot_id`.

pub mod payload;
pub mod signing;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, PublishOptions, QoS, Transport};
use tokio_util::sync::CancellationToken;

pub use payload::{AgentMessage, PayloadError, agent_name};

use crate::config::{LoadedConfig, MqttTransport};
use crate::publish::tls;
use crate::sources::host::HostSource;
use crate::sources::{Source, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    #[error("cannot keep the message counter in {dir}: {source}")]
    Seq { dir: String, source: std::io::Error },
}

/// Signs what the agent publishes when `[agent] key` is set (signing.rs); plain otherwise.
struct Signer {
    key: Option<(crate::config::Secret, signing::SeqCounter)>,
    name: String,
}

impl Signer {
    fn payload(&mut self, text: String) -> Option<String> {
        let Some((key, counter)) = &mut self.key else {
            return Some(text);
        };
        match counter.take() {
            Ok(seq) => Some(signing::sign(key.expose().as_bytes(), &self.name, seq, &text)),
            Err(e) => {
                tracing::error!(agent = %self.name, error = %e, "Cannot advance the message counter; nothing published until it can be saved.");
                None
            }
        }
    }
}

fn retained() -> PublishOptions {
    PublishOptions::new(QoS::AtLeastOnce).retain(true)
}

pub fn counters_topic(base: &str, name: &str) -> String {
    format!("{base}/agent/{name}/counters")
}

/// Runs the agent until `shutdown`; publishes the offline message on a clean stop.
pub async fn run(config: LoadedConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let settings = &config.settings;
    let mut host = HostSource::new(&settings.host);
    let name = host.device_id().as_str().to_owned();
    let topic = counters_topic(&settings.mqtt.base_topic, &name);
    let mut signer = Signer {
        key: match &settings.agent.key {
            Some(key) => {
                let dir = &settings.bridge.state_dir;
                let floor = u64::try_from(now_ms()).unwrap_or(0).saturating_mul(1000);
                let counter = signing::SeqCounter::open(dir, floor).map_err(|source| AgentError::Seq {
                    dir: dir.display().to_string(),
                    source,
                })?;
                Some((key.clone(), counter))
            }
            None => None,
        },
        name: name.clone(),
    };
    let offline = serde_json::to_string(&AgentMessage::offline(&name)).unwrap_or_default();
    let offline = signer.payload(offline).unwrap_or_default();

    let url = &config.mqtt_url;
    // Never the bridge's client id: two clients with one id throw each other off the broker.
    let client_id = format!("{}-agent-{name}", settings.mqtt.client_id);
    let mut options = MqttOptions::new(client_id, (url.host.clone(), url.port));
    options.set_keep_alive(settings.mqtt.keep_alive.as_secs().clamp(5, u64::from(u16::MAX)) as u16);
    options.set_last_will(LastWill::new(topic.clone(), offline.clone(), QoS::AtLeastOnce, true));
    if let Some(user) = &settings.mqtt.username {
        let password = settings
            .mqtt
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options.set_credentials(user.clone(), password.into_bytes());
    }
    if url.transport == MqttTransport::Tls {
        let client_auth = settings
            .mqtt
            .client_cert_file
            .as_deref()
            .zip(settings.mqtt.client_key_file.as_deref());
        let tls = tls::client_config(settings.mqtt.ca_file.as_deref(), client_auth)?;
        options.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::new(
            tls,
        ))));
    }
    let (client, mut eventloop) = AsyncClient::builder(options).capacity(16).build();
    let (connected_tx, connected) = tokio::sync::watch::channel(false);
    let broker = url.to_string();
    let loop_task = tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(broker = %broker, "Agent connected to the MQTT broker.");
                    backoff = Duration::from_secs(1);
                    let _ = connected_tx.send(true);
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(e) => {
                    let was = *connected_tx.borrow();
                    let _ = connected_tx.send(false);
                    if was {
                        tracing::warn!(broker = %broker, error = %e, "Agent lost the MQTT broker; retrying.");
                    } else {
                        tracing::debug!(broker = %broker, error = %e, "Agent cannot reach the MQTT broker; retrying.");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    });

    tracing::info!(agent = %name, topic = %topic, broker = %url, "Agent starting.");
    let interval = host.interval();
    let state_dir = settings.bridge.state_dir.clone();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        match host.poll().await {
            Ok(observations) => {
                if last_error.take().is_some() {
                    tracing::info!(agent = %name, "Counters readable again.");
                }
                let boot_id = std::fs::read_to_string(settings.host.proc_dir.join("sys/kernel/random/boot_id"))
                    .ok()
                    .map(|s| s.trim().to_owned());
                for obs in &observations {
                    let msg = AgentMessage::from_host(obs, boot_id.clone(), interval, now_ms());
                    let Some(text) = signer.payload(serde_json::to_string(&msg).unwrap_or_default()) else {
                        continue;
                    };
                    if let Err(e) = client.try_publish(topic.clone(), text, retained()) {
                        tracing::debug!(agent = %name, error = %e, "Counters not queued; the next interval sends fresh ones.");
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(agent = %name, error = %text, "Cannot read this machine's counters; nothing published until they are readable.");
                    last_error = Some(text);
                }
            }
        }
        let _ = crate::bridge::health::write(&state_dir, *connected.borrow(), crate::bridge::health::now_s());
    }

    tracing::info!(agent = %name, "Agent stopping.");
    if *connected.borrow() {
        let _ = client.try_publish(topic, offline, retained());
    }
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(5), loop_task).await;
    crate::bridge::health::remove(&state_dir);
    Ok(())
}
