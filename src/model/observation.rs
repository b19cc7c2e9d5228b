use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DeviceId, Epoch, MacAddr};

/// What kind of physical thing a device is; decides its entities and how "online" is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A Linux machine: the bridge's own host or a vnstat server.
    Server,
    Router,
    MeshNode,
    /// Anything a router or mesh node lists as connected to it.
    Client,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Router => "router",
            Self::MeshNode => "mesh_node",
            Self::Client => "client",
        }
    }
}

/// Descriptive facts about a device. Every field is optional: each source knows only part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: Option<String>,
    /// MACs the device is known by; the first is its primary one.
    pub macs: Vec<MacAddr>,
    pub ip: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub sw_version: Option<String>,
    /// The device this one is reached through (a client's router); `None` = via the bridge.
    pub via: Option<DeviceId>,
}

/// One device as one source saw it in one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub device: DeviceId,
    pub kind: DeviceKind,
    pub info: DeviceInfo,
    pub online: Option<bool>,
    pub traffic: Vec<TrafficReading>,
    /// Gauges such as CPU %, memory %, temperature, uptime, client count, signal strength.
    pub metrics: Vec<Metric>,
    /// Short texts worth an entity of their own (IP address, connection type).
    pub labels: Vec<Label>,
    /// Extra facts published as attributes (connection type, band, parent node, ...).
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// The source's own day and month figures, read with the traffic above (at its first
    /// reading, or after an outage): the household sets the periods from them.
    pub history: Option<super::History>,
}

impl Observation {
    pub fn new(device: DeviceId, kind: DeviceKind) -> Self {
        Self {
            device,
            kind,
            info: DeviceInfo::default(),
            online: None,
            traffic: Vec::new(),
            metrics: Vec::new(),
            labels: Vec::new(),
            attributes: BTreeMap::new(),
            history: None,
        }
    }

    /// Adds a text entity; `None` publishes as unknown.
    pub fn label(&mut self, key: &str, name: &str, value: Option<String>) {
        self.labels.push(Label {
            key: key.to_owned(),
            name: name.to_owned(),
            value,
        });
    }

    /// Adds a gauge; `None` publishes as unknown.
    pub fn metric(&mut self, key: &str, name: &str, unit: MetricUnit, value: Option<f64>) {
        self.metrics.push(Metric {
            key: key.to_owned(),
            name: name.to_owned(),
            unit,
            value,
        });
    }
}

/// A point-in-time reading that is not traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// State key and entity id suffix: `[a-z0-9_]+`, stable forever (e.g. `cpu_percent`).
    pub key: String,
    /// Entity name shown in HA (e.g. "CPU").
    pub name: String,
    pub unit: MetricUnit,
    pub value: Option<f64>,
}

/// A short text reading (an IP address, "5 GHz").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// State key and entity id suffix, `[a-z0-9_]+`.
    pub key: String,
    pub name: String,
    pub value: Option<String>,
}

/// What a metric measures; decides its Home Assistant unit, device class and category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricUnit {
    /// 0–100 (CPU, memory).
    Percent,
    Celsius,
    /// A duration in seconds (uptime).
    Seconds,
    /// A number of things (connected clients).
    Count,
    /// Signal strength.
    Dbm,
    /// A link rate (Wi-Fi PHY rate), not traffic.
    MbitPerSecond,
}

/// Traffic of a device, or of one of its interfaces when `interface` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficReading {
    pub interface: Option<String>,
    pub sample: TrafficSample,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrafficSample {
    /// Raw byte counters as the source keeps them; accounting makes them monotonic.
    Counter(CounterSample),
    /// Instantaneous rates only (Deco); accounting integrates them into estimated totals.
    Rate(RateSample),
    /// Exact bytes per clock hour (the ASUS Traffic Analyzer); a bucket may still grow while its
    /// hour is open, and may be re-read any number of times.
    Buckets(BucketSample),
    /// A running counter that hourly buckets of the same source reconcile (ASUS `getTraffic.asp`
    /// with the Traffic Analyzer): counted like [`TrafficSample::Counter`], and it says on which
    /// clock hour boundary side its bytes fall, so bytes it missed can be taken from the hours.
    Live(LiveSample),
}

/// A counter reading stamped on the clock its hourly buckets use (the router's).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSample {
    pub counter: CounterSample,
    /// When the counter was read, in Unix seconds on the buckets' clock.
    pub clock_s: i64,
}

/// Hourly byte counts for a stretch of hours, as the source reported them.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSample {
    pub hours: Vec<HourBucket>,
}

/// Bytes moved in the hour that starts at `start_s` (Unix seconds, a multiple of 3600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourBucket {
    pub start_s: i64,
    pub rx: u64,
    pub tx: u64,
}

/// Byte counters read from a source, in the source's own terms.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterSample {
    /// Bytes the device received (its download).
    pub rx: u64,
    /// Bytes the device sent (its upload).
    pub tx: u64,
    /// Identity of the counter's life: when it changes (reboot, interface re-created, database
    /// re-created) the counter restarted from zero.
    pub epoch: Option<Epoch>,
    /// When the counters were true, in milliseconds on the source's clock. Only differences are
    /// used, so a source whose clock is not UTC (vnstat < 2.10) still gives correct rates.
    pub at_ms: i64,
    pub wrap: WrapRule,
    /// Longest interval over which a rate is still meaningful; over a longer gap (suspend,
    /// outage) the bytes are counted but no rate is claimed. Also: if `at_ms` does not advance
    /// for this long, the data is stale and the rate becomes unknown.
    pub rate_window: Duration,
}

/// How to read a counter that went down without a new epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WrapRule {
    /// A decrease is a reset we cannot explain: re-baseline and count nothing for the interval.
    Never,
    /// The counter is 32 bits wide and a decrease is always a wrap.
    At32,
    /// 64-bit field that some drivers still wrap at 2^32: a decrease from below 2^32 is a wrap
    /// if the implied rate is at most `max_bps`, otherwise a reset.
    Maybe32 { max_bps: f64 },
}

/// Instantaneous rates in bit/s as a source reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSample {
    pub rx_bps: f64,
    pub tx_bps: f64,
    pub at_ms: i64,
    /// Longest gap between two samples that is still integrated; longer gaps add nothing.
    pub max_gap: Duration,
}
