//! The configuration contract of `../shared/design.md`: a TOML file, `BANDWIDTH2MQTT__…`
//! environment overrides, `password_file` twins, and loud failure on anything unknown.

mod household_rules;
mod load;
mod plan;
mod tables;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use household_rules::plan_device;
pub use load::{ConfigError, ConfigSource, LoadedConfig, load, load_from, render, resolve_path};
pub use plan::{ByteSize, PlanPeriod, PlanSettings, RandomMacs, Share};
pub use tables::{build_context, server_macs};
pub use validate::{MqttTransport, MqttUrl};

use crate::table::duration;
pub use crate::table::{MacList, Secret};

// The source tables live in their folders; these names stay for library users.
pub use crate::sources::asus::AsusSettings;
pub use crate::sources::deco::{DecoSettings, SpeedUnit};
pub use crate::sources::host::HostSettings;
pub use crate::sources::vnstat::VnstatSettings;

/// Generates [`Settings`] with one field per source folder (`[vnstat.<name>]` → `vnstat`), of
/// the type the folder declares (`sources/<kind>/spec.rs`), between `bridge` and `devices`.
macro_rules! settings {
    ($($folder:ident $Variant:ident,)*) => {
        /// Everything the bridge can be told. Every table and key is optional.
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Settings {
            pub mqtt: MqttSettings,
            pub bridge: BridgeSettings,
            $(pub $folder: <crate::sources::$folder::Folder as crate::sources::SourceFolder>::Settings,)*
            /// Friendly names and options for network clients, keyed by MAC.
            pub devices: BTreeMap<String, DeviceSettings>,
            /// Data plans, keyed by device id (`wan`: the router's internet link).
            pub plan: BTreeMap<String, PlanSettings>,
            /// The optional Prometheus endpoint.
            pub metrics: MetricsSettings,
            /// The agents (`bandwidth2mqtt agent` on other servers) this bridge reads, keyed by
            /// the agent's name. An agent not named here creates nothing.
            pub agents: BTreeMap<String, AgentSettings>,
            /// This machine as an agent (`bandwidth2mqtt agent`): the key that signs its messages.
            pub agent: AgentKeySettings,
        }
    };
}

crate::sources::each_source!(settings);

/// One agent the bridge accepts (issue 21: the broker is shared, not trusted).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// The key the agent signs its messages with (HMAC-SHA256); with it, unsigned, forged and
    /// replayed messages count nothing. `key_file` is its twin (Docker secrets).
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    /// MACs this server may claim: a router client with one of them becomes this server.
    /// Other MACs the agent reports are ignored (an agent never takes a router's client
    /// unless it is named here).
    pub mac: MacList,
    /// Fastest plausible link (bit/s) of any interface; default: what the agent first
    /// reported for it.
    pub max_bps: Option<f64>,
}

/// `[agent]`: the side of `bandwidth2mqtt agent` itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentKeySettings {
    /// Signs every message (the bridge's `[agents.<name>] key` must be the same).
    pub key: Option<Secret>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// Loopback by default: the numbers say who is home; expose them on purpose only.
    pub listen: std::net::SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9101)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// `mqtt://host:1883`, or `mqtts://host:8883` for TLS.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub client_id: String,
    pub base_topic: String,
    pub discovery_prefix: String,
    /// Where HA announces itself; defaults to `<discovery_prefix>/status`.
    pub ha_status_topic: Option<String>,
    pub retain_state: bool,
    /// CA bundle (PEM) for `mqtts://`; without it the system roots are used.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for brokers that require TLS client auth.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    #[serde(with = "duration")]
    pub keep_alive: Duration,
    /// Every state is published again this often even when nothing changed.
    #[serde(with = "duration")]
    pub refresh_interval: Duration,
    /// Largest MQTT packet we send (bytes); bigger messages are logged and skipped, and
    /// `bridge/devices` is split to fit. Set it to the broker's limit if it has one.
    pub max_packet_size: usize,
    /// `device`: one discovery config per device (HA 2024.11+); `entity`: one per entity.
    pub discovery: DiscoveryMode,
    /// `3.1.1` (the default for now), `5`, or `auto` (MQTT 5, or 3.1.1 with a broker that
    /// refuses 5). Not yet `auto` by default: `once` over MQTT 5 can lose its last messages
    /// (tests/mqtt_tls_and_once.rs fails over 5, intermittently).
    pub protocol: MqttProtocol,
}

/// The MQTT protocol version (issue 21): MQTT 5 lets the bridge tell the broker the largest
/// packet it takes and learn the broker's, instead of guessing it from disconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MqttProtocol {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "5")]
    V5,
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
}

/// The shape of HA discovery configs (shared/protocols/ha-discovery.md §1.2, §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryMode {
    #[default]
    Device,
    Entity,
}

/// `bandwidth2mqtt_<hostname>`: stable across restarts of one bridge (so a restarted bridge
/// takes over its own stale session), different between hosts (two bridges with one id would
/// knock each other off the broker forever).
pub fn default_client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .take(40)
        .collect();
    if host.is_empty() {
        "bandwidth2mqtt".into()
    } else {
        format!("bandwidth2mqtt_{host}")
    }
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            password_file: None,
            client_id: default_client_id(),
            base_topic: "bandwidth2mqtt".into(),
            discovery_prefix: "homeassistant".into(),
            ha_status_topic: None,
            retain_state: true,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(600),
            max_packet_size: crate::publish::outbox::DEFAULT_MAX_PACKET,
            discovery: DiscoveryMode::Device,
            protocol: MqttProtocol::V311,
        }
    }
}

impl MqttSettings {
    pub fn ha_status_topic(&self) -> String {
        self.ha_status_topic
            .clone()
            .unwrap_or_else(|| format!("{}/status", self.discovery_prefix))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// Totals and counter baselines that must survive a restart live here.
    pub state_dir: PathBuf,
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` wins when set.
    pub log_level: String,
    /// `text` (default) or `json` (one JSON object per line, for log shippers).
    pub log_format: String,
    /// How long a network client that disappeared still counts as home (HA's consider_home).
    #[serde(with = "duration")]
    pub consider_home: Duration,
    /// IANA time zone of "today" and "this month" (e.g. `Europe/Berlin`); default: the system's.
    pub timezone: Option<String>,
    /// Day of the month a data plan's month starts on (1–28).
    pub month_start_day: u8,
    /// Network clients with a randomised (locally administered) MAC: track, ignore or group.
    pub random_macs: RandomMacs,
    /// A network client or mesh node unseen this long is removed from HA and the state file;
    /// `0s` keeps every device forever.
    #[serde(with = "duration")]
    pub forget_after: Duration,
    /// Publish only these network clients (MACs or names); empty = all.
    pub include: Vec<String>,
    /// Never publish these network clients (MACs or names).
    pub exclude: Vec<String>,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("./data"),
            log_level: "info".into(),
            log_format: "text".into(),
            consider_home: Duration::from_secs(180),
            timezone: None,
            month_start_day: 1,
            random_macs: RandomMacs::Track,
            forget_after: Duration::from_secs(30 * 24 * 3600),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceSettings {
    pub name: Option<String>,
}
