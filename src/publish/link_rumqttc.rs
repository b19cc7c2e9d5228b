//! The production link: rumqttc (MQTT 3.1.1) over TCP or TLS — or MQTT 5 (link_rumqttc5.rs,
//! link_auto.rs) as `[mqtt] protocol` says — with the inbound filter
//! (inbound.rs) under it so that an oversized PUBLISH from the broker becomes
//! [`LinkEvent::Oversized`] instead of failing the connection — the port's contract (link.rs).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, PublishOptions, QoS};

use super::connection::MqttSetupError;
use super::inbound::{OVERSIZED_TOPIC, parse_notice};
use super::link::{BoxFuture, Connector, Link, LinkClient, LinkError, LinkEvent, LinkEvents, LinkOptions, Qos};
use super::tls;
use crate::config::{MqttProtocol, MqttTransport};

/// rumqttc's own request queue: the drain waits on it when full.
const REQUEST_CAPACITY: usize = 256;

/// The rumqttc link (the daemon's).
#[derive(Debug, Default, Clone, Copy)]
pub struct Rumqttc;

impl Connector for Rumqttc {
    /// The protocol `[mqtt] protocol` asks for: MQTT 5 (link_rumqttc5.rs), 3.1.1 (here), or
    /// 5 with a fall-back to 3.1.1 (link_auto.rs).
    fn connect(&self, o: &LinkOptions) -> Result<Link, MqttSetupError> {
        match o.settings.protocol {
            MqttProtocol::Auto => super::link_auto::connect(o),
            MqttProtocol::V5 => super::link_rumqttc5::connect(o, Arc::default()),
            MqttProtocol::V311 => connect_v4(o),
        }
    }
}

/// The MQTT 3.1.1 link.
pub(super) fn connect_v4(o: &LinkOptions) -> Result<Link, MqttSetupError> {
    {
        let settings = &o.settings;
        let url = &o.url;
        let mut options = MqttOptions::new(settings.client_id.clone(), (url.host.clone(), url.port));
        options.set_keep_alive(settings.keep_alive.as_secs().clamp(5, u64::from(u16::MAX)) as u16);
        options.set_clean_session(true);
        // The inbound filter comes first; rumqttc's own limit is a backstop.
        options.set_max_packet_size(o.max_incoming + 1024, o.max_outgoing);
        options.set_request_channel_capacity(REQUEST_CAPACITY);
        options.set_last_will(LastWill::new(o.will_topic.clone(), "offline", QoS::AtLeastOnce, true));
        if let Some(user) = &settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            options.set_credentials(user.clone(), password.into_bytes());
        }
        // TLS is done in our connector, below the inbound filter (which must see plain MQTT).
        let tls = match url.transport {
            MqttTransport::Tls => {
                let client_auth = settings
                    .client_cert_file
                    .as_deref()
                    .zip(settings.client_key_file.as_deref());
                Some(Arc::new(tls::client_config(settings.ca_file.as_deref(), client_auth)?))
            }
            MqttTransport::Tcp => None,
        };
        let server = url.host.clone();
        let limit = o.max_incoming;
        options.set_socket_connector(move |host, network_options| {
            super::inbound::connect(host, network_options, tls.clone(), server.clone(), limit, false)
        });
        let (client, eventloop) = AsyncClient::builder(options).capacity(REQUEST_CAPACITY).build();
        Ok((Arc::new(Client(client)), Box::new(Events(eventloop))))
    }
}

fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

fn error(e: impl std::fmt::Display) -> LinkError {
    LinkError(e.to_string())
}

struct Client(AsyncClient);

impl LinkClient for Client {
    fn publish(&self, topic: String, payload: Vec<u8>, q: Qos, retain: bool) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move {
            let options = PublishOptions::new(qos(q)).retain(retain);
            self.0.publish(topic, payload, options).await.map_err(error)
        })
    }

    fn try_publish(&self, topic: String, payload: Vec<u8>, q: Qos, retain: bool) -> Result<(), LinkError> {
        let options = PublishOptions::new(qos(q)).retain(retain);
        self.0.try_publish(topic, payload, options).map_err(error)
    }

    fn subscribe(&self, filter: String) -> Result<(), LinkError> {
        self.0.try_subscribe(filter, QoS::AtLeastOnce).map_err(error)
    }

    fn unsubscribe(&self, filter: String) -> Result<(), LinkError> {
        self.0.try_unsubscribe(filter).map_err(error)
    }

    fn disconnect(&self) -> Result<(), LinkError> {
        self.0
            .try_disconnect_with_timeout(Duration::from_secs(3))
            .map_err(error)
    }
}

struct Events(EventLoop);

impl LinkEvents for Events {
    fn next(&mut self) -> BoxFuture<'_, LinkEvent> {
        Box::pin(async move {
            loop {
                match self.0.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        return LinkEvent::Connected {
                            max_packet: None,
                            protocol: "3.1.1",
                        };
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(p.topic.as_ref()).into_owned();
                        if topic == OVERSIZED_TOPIC {
                            let (size, topic) = parse_notice(p.payload.as_ref()).unwrap_or_default();
                            return LinkEvent::Oversized { topic, size };
                        }
                        return LinkEvent::Message {
                            topic,
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        };
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => return LinkEvent::Acked,
                    Ok(Event::Outgoing(Outgoing::Publish(_))) => return LinkEvent::Wrote,
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return LinkEvent::Closed,
                    Ok(_) => {}
                    Err(e) => {
                        // Only a broker that closed the link can have refused our packet; a
                        // stream we could not read (a protocol error of the broker's making)
                        // proves nothing. (A reset while reading arrives wrapped as a read
                        // error: mosquitto resets the link after an over-limit packet.)
                        let by_broker = matches!(
                            &e,
                            rumqttc::ConnectionError::Io(_)
                                | rumqttc::ConnectionError::MqttState(
                                    rumqttc::StateError::Io(_)
                                        | rumqttc::StateError::ConnectionAborted
                                        | rumqttc::StateError::Deserialization(rumqttc::Error::Io(_))
                                )
                        );
                        return LinkEvent::Disconnected {
                            by_broker,
                            error: e.to_string(),
                        };
                    }
                }
            }
        })
    }

    fn reset_session(&mut self) {
        // rumqttc would replay the unacknowledged messages of the lost session, the one that
        // broke it included; the outbox republishes everything anyway.
        self.0.reset_session_state();
    }
}
