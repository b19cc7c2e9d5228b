//! The MQTT 5 link (issue 21, item 1): rumqttc's v5 client over TCP or TLS. MQTT 5 has the
//! bounds that 3.1.1 lacks, so this link need not guess them:
//! - CONNECT carries the bridge's Maximum Packet Size ([`DELIVERED_UP_TO`], 1 MiB): the broker
//!   must not send anything larger (mosquitto drops such a message for this client only), so a
//!   stranger's 17 MiB retained message never reaches the bridge. Below that, the inbound
//!   filter (inbound.rs, in its MQTT 5 framing) skips what is over the bridge's own limit
//!   unread, as over 3.1.1, so an oversized request still gets an error answer.
//! - CONNACK carries the broker's Maximum Packet Size: [`LinkEvent::Connected`] hands it to
//!   connection.rs as the outgoing limit, instead of a limit learnt from disconnects.
//! - A PUBACK with an error reason code (an ACL refusal, a quota) is [`LinkEvent::Refused`].
//!
//! [`Probe`] tells link_auto.rs whether a broker refused MQTT 5 itself (before any CONNACK,
//! after the connection got through: a 3.1.1 broker answers a v5 CONNECT with "unacceptable
//! protocol version" in 3.1.1 framing, or just closes the connection) rather than not being
//! there, or refusing our login.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc5::{
    AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, PubAckReason, PublishOptions, QoS,
};

use super::connection::MqttSetupError;
use super::inbound::{OVERSIZED_TOPIC, parse_notice};
use super::link::{BoxFuture, Link, LinkClient, LinkError, LinkEvent, LinkEvents, LinkOptions, Qos};
use super::tls;
use crate::config::MqttTransport;

/// rumqttc's own request queue: the drain waits on it when full.
const REQUEST_CAPACITY: usize = 256;
/// The Maximum Packet Size told to the broker. Anything larger it drops for us (a stranger's
/// 17 MiB retained message never arrives); below it, what is over the bridge's own limit
/// (`max_incoming`) is skipped unread by the inbound filter as over 3.1.1 — so that an
/// oversized request (a 300 000-character rename) still gets its error answer.
const DELIVERED_UP_TO: usize = 1 << 20;

/// What the first attempts showed about the broker (link_auto.rs).
#[derive(Debug, Default)]
pub(super) struct Probe {
    /// The current attempt got through to the broker (TCP and TLS up).
    reached: AtomicBool,
    /// The broker refused MQTT 5 before ever accepting a connection.
    pub(super) refused_v5: AtomicBool,
}

/// The MQTT 5 link, reporting to `probe`.
pub(super) fn connect(o: &LinkOptions, probe: Arc<Probe>) -> Result<Link, MqttSetupError> {
    let settings = &o.settings;
    let url = &o.url;
    let mut options = MqttOptions::new(settings.client_id.clone(), (url.host.clone(), url.port));
    options.set_keep_alive(settings.keep_alive.as_secs().clamp(5, u64::from(u16::MAX)) as u16);
    options.set_clean_start(true);
    // Told to the broker in CONNECT, and rumqttc's own backstop.
    let incoming = u32::try_from(o.max_incoming.saturating_add(1024).max(DELIVERED_UP_TO)).unwrap_or(u32::MAX);
    options.set_max_packet_size(Some(incoming));
    options.set_request_channel_capacity(REQUEST_CAPACITY);
    options.set_last_will(LastWill::new(
        o.will_topic.clone(),
        "offline",
        QoS::AtLeastOnce,
        true,
        None,
    ));
    if let Some(user) = &settings.username {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options.set_credentials(user.clone(), password.into_bytes());
    }
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
    // The filter skips what is over `max_incoming`, unread, as over 3.1.1 (a request that
    // large still gets its error answer); what is over `incoming` the broker never sends.
    let limit = o.max_incoming;
    let reached = probe.clone();
    options.set_socket_connector(move |host, network_options| {
        let (tls, server, probe) = (tls.clone(), server.clone(), reached.clone());
        async move {
            let stream = super::inbound::connect(host, network_options, tls, server, limit, true).await?;
            probe.reached.store(true, Ordering::SeqCst);
            Ok(stream)
        }
    });
    let (client, eventloop) = AsyncClient::builder(options).capacity(REQUEST_CAPACITY).build();
    let events = Events {
        eventloop,
        probe,
        accepted: false,
    };
    Ok((Arc::new(Client(client)), Box::new(events)))
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

struct Events {
    eventloop: EventLoop,
    probe: Arc<Probe>,
    /// The broker has accepted a connection once: it speaks MQTT 5.
    accepted: bool,
}

impl Events {
    /// A failed attempt before any CONNACK: did the broker refuse MQTT 5 itself?
    fn judge(&self, e: &rumqttc5::ConnectionError) {
        use rumqttc5::{ConnectReturnCode as Code, ConnectionError as E};
        let reached = self.probe.reached.swap(false, Ordering::SeqCst);
        if self.accepted {
            return;
        }
        let refused = match e {
            E::ConnectionRefused(Code::UnsupportedProtocolVersion | Code::RefusedProtocolVersion) => true,
            // A v5 broker that refused our login, or a TLS failure: not the protocol.
            E::ConnectionRefused(_) | E::Tls(_) => false,
            _ => reached,
        };
        if refused {
            self.probe.refused_v5.store(true, Ordering::SeqCst);
        }
    }
}

impl LinkEvents for Events {
    fn next(&mut self) -> BoxFuture<'_, LinkEvent> {
        Box::pin(async move {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                        self.accepted = true;
                        self.probe.reached.store(false, Ordering::SeqCst);
                        let max_packet = ack
                            .properties
                            .and_then(|p| p.max_packet_size)
                            .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
                        return LinkEvent::Connected {
                            max_packet,
                            protocol: "5",
                        };
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
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
                    Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                        return match ack.reason {
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers => LinkEvent::Acked,
                            reason => LinkEvent::Refused {
                                reason: format!("{reason:?}"),
                            },
                        };
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(_))) => return LinkEvent::Wrote,
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return LinkEvent::Closed,
                    Ok(_) => {}
                    Err(e) => {
                        self.judge(&e);
                        // As in 3.1.1 (link_rumqttc.rs): only a broker that closed the link
                        // can have refused our packet; MQTT 5 also says so (DISCONNECT with
                        // "packet too large").
                        let by_broker = matches!(
                            &e,
                            rumqttc5::ConnectionError::Io(_)
                                | rumqttc5::ConnectionError::MqttState(
                                    rumqttc5::StateError::Io(_)
                                        | rumqttc5::StateError::ConnectionAborted
                                        | rumqttc5::StateError::ServerDisconnect { .. }
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
        self.eventloop.reset_session_state();
    }
}
