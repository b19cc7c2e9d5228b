//! Which MQTT broker the demo uses, so that it works on a machine with nothing installed:
//! `--mqtt-url` if given, else a broker already answering on 127.0.0.1:1883, else a private
//! `mosquitto` on a free port if the binary is installed, else rumqttd (a maintained Rust
//! broker, bytebeamio/rumqtt) inside this process, for MQTT 3.1.1 and MQTT 5 clients on one
//! port (`broker_front`). Whatever the demo starts, it stops.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::access::{Access, split_url};

/// Where the chain looks. Tests point it elsewhere (another port, no mosquitto).
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The broker a user may already run.
    pub default_port: u16,
    /// The mosquitto binary, if any (see [`find_mosquitto`]).
    pub mosquitto: Option<PathBuf>,
    /// Private files (mosquitto's config and log) go here.
    pub dir: PathBuf,
}

/// The broker the demo talks to, and what it started for it.
pub struct DemoBroker {
    /// Without credentials: safe to print.
    pub url: String,
    pub kind: BrokerKind,
    /// Credentials and CA for a broker given with `--mqtt-url` (none for the others).
    pub access: Access,
    /// A private mosquitto; killed on drop.
    child: Option<tokio::process::Child>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `--mqtt-url`.
    Given,
    /// Already answering on 127.0.0.1:1883.
    Running,
    /// A private mosquitto the demo started.
    Mosquitto,
    /// rumqttd in this process.
    Embedded,
}

impl BrokerKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Given => "the broker given with --mqtt-url",
            Self::Running => "the broker already running on this machine",
            Self::Mosquitto => "a private mosquitto started for the demo",
            Self::Embedded => "the built-in broker (rumqttd, in this process)",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot start the built-in MQTT broker: {0}")]
    Embedded(String),
    #[error("no free port on 127.0.0.1: {0}")]
    NoPort(std::io::Error),
    /// Never quotes the URL: it may hold a password.
    #[error("--mqtt-url: {0}")]
    Url(String),
}

impl DemoBroker {
    /// The host and port of the URL, for the `mosquitto_sub` line.
    pub fn host_port(&self) -> (String, u16) {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let rest = rest.split('/').next().unwrap_or(rest);
        match rest.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(1883)),
            None => (rest.to_owned(), 1883),
        }
    }

    /// Stops a private mosquitto (the embedded broker ends with the process).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// Walks the chain.
pub async fn choose(given: Option<&str>, lookup: &Lookup) -> Result<DemoBroker, BrokerError> {
    if let Some(given) = given {
        let (url, access) = split_url(given).map_err(BrokerError::Url)?;
        return Ok(DemoBroker {
            url,
            kind: BrokerKind::Given,
            access,
            child: None,
        });
    }
    if answers_mqtt(lookup.default_port).await {
        return Ok(DemoBroker {
            url: format!("mqtt://127.0.0.1:{}", lookup.default_port),
            kind: BrokerKind::Running,
            access: Access::default(),
            child: None,
        });
    }
    if let Some(bin) = &lookup.mosquitto {
        match start_mosquitto(bin, &lookup.dir).await {
            Ok((child, port)) => {
                return Ok(DemoBroker {
                    url: format!("mqtt://127.0.0.1:{port}"),
                    kind: BrokerKind::Mosquitto,
                    access: Access::default(),
                    child: Some(child),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, binary = %bin.display(), "mosquitto did not start; using the built-in broker.")
            }
        }
    }
    let port = start_embedded().await?;
    Ok(DemoBroker {
        url: format!("mqtt://127.0.0.1:{port}"),
        kind: BrokerKind::Embedded,
        access: Access::default(),
        child: None,
    })
}

/// `mosquitto` on the PATH or in the sbin directories Debian installs it to.
pub fn find_mosquitto() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// Whether an MQTT broker answers on 127.0.0.1:`port`: a CONNECT (MQTT 3.1.1, clean session,
/// anonymous) gets a CONNACK that accepts it. Anything else on the port (or nothing, or a
/// broker that wants a password the demo does not have) is not a broker we can use.
pub async fn answers_mqtt(port: u16) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.ok()?;
        // Fixed header, "MQTT" level 4, clean session, keep-alive 10 s, client id "b2m-probe"
        // (the MQTT 5 probe uses ids of its own).
        let mut connect = vec![0x10, 0];
        connect.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10]);
        let id = b"b2m-probe";
        connect.extend_from_slice(&[0, id.len() as u8]);
        connect.extend_from_slice(id);
        connect[1] = (connect.len() - 2) as u8;
        stream.write_all(&connect).await.ok()?;
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack).await.ok()?;
        // DISCONNECT, politely.
        let _ = stream.write_all(&[0xe0, 0]).await;
        // Return code 0: accepted (5 = not authorized).
        Some(connack[0] == 0x20 && connack[1] == 2 && connack[3] == 0)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Some(true))
    )
}

/// A port nothing listens on right now (it can be taken before we bind: callers retry).
pub fn free_port() -> Result<u16, BrokerError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(BrokerError::NoPort)
}

async fn wait_answering(port: u16, tries: u32) -> bool {
    for _ in 0..tries {
        if answers_mqtt(port).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn start_mosquitto(bin: &Path, dir: &Path) -> Result<(tokio::process::Child, u16), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut last = String::from("no port");
    // A port can be taken between probing and binding: try a few.
    for _ in 0..5 {
        let port = free_port().map_err(|e| e.to_string())?;
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "per_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlistener {port} 127.0.0.1\n"
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("mosquitto.log")).map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        if wait_answering(port, 60).await {
            return Ok((child, port));
        }
        let _ = child.kill().await;
        last = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
    }
    Err(format!("mosquitto exited: {}", last.trim()))
}

/// rumqttd in threads of its own (it runs its own runtimes), with a 3.1.1 and an MQTT 5
/// listener on ports of their own behind one front port (`broker_front`), the one returned;
/// it lives as long as the process.
async fn start_embedded() -> Result<u16, BrokerError> {
    let mut last = String::new();
    for _ in 0..5 {
        // The front's port is bound here and now; rumqttd's two can be taken before it binds
        // them (then nothing answers, and we try again).
        let front = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(BrokerError::NoPort)?;
        let port = front.local_addr().map_err(BrokerError::NoPort)?.port();
        let backends = super::broker_front::Backends {
            v4: free_port()?,
            v5: free_port()?,
        };
        let config = embedded_config(backends);
        let spawned = std::thread::Builder::new().name("demo-broker".into()).spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "Built-in MQTT broker stopped.");
            }
        });
        if let Err(e) = spawned {
            return Err(BrokerError::Embedded(e.to_string()));
        }
        tokio::spawn(super::broker_front::serve(front, backends));
        if wait_answering(port, 100).await && super::broker_front::wait_answering_v5(backends.v5, 100).await {
            return Ok(port);
        }
        last = format!("nothing answered on port {} or {}", backends.v4, backends.v5);
    }
    Err(BrokerError::Embedded(last))
}

/// rumqttd with its 3.1.1 listener only, on a free port, in threads of its own: a broker that
/// refuses MQTT 5 (tests/mqtt5.rs: the bridge's fallback). It lives as long as the process.
pub async fn start_embedded_v4_only() -> Result<u16, BrokerError> {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let mut config = embedded_config(super::broker_front::Backends { v4: port, v5: port });
        config.v5 = None;
        let spawned = std::thread::Builder::new()
            .name("demo-broker-v4".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "Built-in MQTT broker stopped.");
                }
            });
        if let Err(e) = spawned {
            return Err(BrokerError::Embedded(e.to_string()));
        }
        if wait_answering(port, 100).await {
            return Ok(port);
        }
        last = format!("nothing answered on port {port}");
    }
    Err(BrokerError::Embedded(last))
}

fn embedded_config(backends: super::broker_front::Backends) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        // Discovery and bridge/devices payloads are a few kB; room for a large household.
        max_payload_size: 1 << 20,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = |name: &str, port: u16| {
        let settings = rumqttd::ServerSettings {
            name: name.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            tls: None,
            next_connection_delay_ms: 1,
            connections: connections.clone(),
        };
        Some([(name.to_owned(), settings)].into_iter().collect())
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 1000,
            max_segment_size: 8 << 20,
            max_segment_count: 4,
            ..Default::default()
        },
        v4: server("demo", backends.v4),
        v5: server("demo-v5", backends.v5),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_urls() {
        let broker = |url: &str| DemoBroker {
            url: url.into(),
            kind: BrokerKind::Given,
            access: Access::default(),
            child: None,
        };
        assert_eq!(
            broker("mqtt://127.0.0.1:18830").host_port(),
            ("127.0.0.1".into(), 18830)
        );
        assert_eq!(broker("mqtt://u:p@nas.lan").host_port(), ("nas.lan".into(), 1883));
        assert_eq!(broker("mqtts://broker:8883/").host_port(), ("broker".into(), 8883));
    }

    /// One MQTT packet: its first byte and its body.
    async fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        let kind = byte[0];
        let (mut len, mut shift) = (0usize, 0);
        loop {
            stream.read_exact(&mut byte).await.unwrap();
            len |= usize::from(byte[0] & 0x7f) << shift;
            shift += 7;
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.unwrap();
        (kind, body)
    }

    /// What Home Assistant 2026.x does on the demo's built-in broker: an MQTT 5 client on the
    /// port the demo prints gets the retained messages a 3.1.1 client (the bridge) published.
    #[tokio::test]
    async fn the_built_in_broker_takes_mqtt5_and_311_clients_on_one_port() {
        let port = start_embedded().await.unwrap();
        // 3.1.1: CONNECT, then a retained PUBLISH (QoS 0).
        let mut v4 = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.unwrap();
        let mut connect = vec![
            0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 3, b'v', b'4', b'c',
        ];
        connect[1] = (connect.len() - 2) as u8;
        v4.write_all(&connect).await.unwrap();
        let (kind, body) = read_packet(&mut v4).await;
        assert_eq!((kind, body[1]), (0x20, 0), "3.1.1 CONNACK accepted");
        let topic = b"homeassistant/device/v5test/config";
        let mut publish = vec![0x31, 0, 0, topic.len() as u8];
        publish.extend_from_slice(topic);
        publish.extend_from_slice(b"{\"v\":5}");
        publish[1] = (publish.len() - 2) as u8;
        v4.write_all(&publish).await.unwrap();
        // MQTT 5: CONNECT (level 5), SUBSCRIBE with properties, the retained PUBLISH back.
        let mut v5 = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.unwrap();
        v5.write_all(&super::super::broker_front::connect_v5(b"v5c"))
            .await
            .unwrap();
        let (kind, body) = read_packet(&mut v5).await;
        assert_eq!(kind, 0x20, "MQTT 5 CONNACK");
        assert_eq!(body[1], 0, "reason code: success");
        let filter = b"homeassistant/#";
        // Packet id 1, no properties, the filter, options: QoS 0.
        let mut subscribe = vec![0x82, 0, 0, 1, 0, 0, filter.len() as u8];
        subscribe.extend_from_slice(filter);
        subscribe.push(0);
        subscribe[1] = (subscribe.len() - 2) as u8;
        v5.write_all(&subscribe).await.unwrap();
        let mut got = None;
        for _ in 0..10 {
            let (kind, body) = tokio::time::timeout(Duration::from_secs(10), read_packet(&mut v5))
                .await
                .expect("a packet");
            match kind & 0xf0 {
                // SUBACK: packet id, properties length, reason code 0 (granted QoS 0).
                0x90 => assert_eq!((body[0], body[1], body[3]), (0, 1, 0)),
                0x30 => {
                    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                    let topic = String::from_utf8_lossy(&body[2..2 + topic_len]).into_owned();
                    // MQTT 5: a properties length follows the topic (QoS 0: no packet id).
                    let props = usize::from(body[2 + topic_len]);
                    let payload = body[3 + topic_len + props..].to_vec();
                    got = Some((kind & 0x01, topic, payload));
                    break;
                }
                other => panic!("unexpected packet type {other:#x}"),
            }
        }
        // Published before the subscription: it arrived because it was retained. rumqttd 0.20
        // delivers it with RETAIN 0 (MQTT 5 §3.3.1.3 wants 1); HA's discovery does not look.
        let (_retain, topic, payload) = got.expect("the retained message reached the MQTT 5 client");
        assert_eq!(topic, "homeassistant/device/v5test/config");
        assert_eq!(payload, b"{\"v\":5}");
    }

    #[tokio::test]
    async fn nothing_listening_is_not_a_broker() {
        let port = free_port().unwrap();
        assert!(!answers_mqtt(port).await);
    }
}
