//! The wire format of `<base_topic>/agent/<name>/counters` (shared/design.md): what
//! `bandwidth2mqtt agent` publishes about its machine, and how the main bridge turns it back
//! into the [`Observation`] the host source would have produced on that machine.
//!
//! Version 1, retained, one JSON object:
//! `{"v":1,"name":"beast","online":true,"display_name":"Beast","boot_id":"…","interval_s":10,
//!   "at_ms":…,"sw_version":"6.1.0","macs":["aa:bb:cc:dd:ee:01"],
//!   "interfaces":{"eth0":{"rx_bytes":…,"tx_bytes":…,"epoch":"<boot_id>/<ifindex>","max_bps":…}}}`
//! The agent's last will is `{"v":1,"name":"beast","online":false}` on the same topic.
//! Counters are the kernel's raw 64-bit values; the bridge's accounting makes them monotonic,
//! exactly as for its own host (a new `epoch` is a reboot or a re-created interface).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{
    CounterSample, DeviceId, DeviceKind, MacAddr, Observation, TrafficReading, TrafficSample, WrapRule,
};

pub const VERSION: u32 = 1;
/// Rates stay meaningful over gaps up to this long, however short the agent's interval.
const MIN_RATE_WINDOW: Duration = Duration::from_secs(30);
/// An agent is silent after three missed intervals, but never sooner than this.
const MIN_SILENCE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMessage {
    pub v: u32,
    pub name: String,
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sw_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<MacAddr>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<String, AgentInterface>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInterface {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub epoch: String,
    /// Fastest plausible rate of the link (bit/s), for telling a 2^32 wrap from a reset.
    pub max_bps: f64,
}

/// Why a message on an agent topic was refused; shown in the log and `bridge/info`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("not agent JSON: {0}")]
    Json(String),
    #[error("unsupported agent payload version {0} (this bridge reads {VERSION})")]
    Version(u32),
    #[error("payload names agent `{payload}` but arrived on the topic of `{topic}`")]
    NameMismatch { topic: String, payload: String },
    #[error("agent name `{0}` is not a device id ([a-z0-9_]+)")]
    BadName(String),
    #[error("online report without at_ms or interval_s")]
    Incomplete,
}

impl AgentMessage {
    /// The will, published by the broker when the agent vanishes (and by the agent on a clean stop).
    pub fn offline(name: &str) -> Self {
        Self {
            v: VERSION,
            name: name.to_owned(),
            online: false,
            display_name: None,
            boot_id: None,
            interval_s: None,
            at_ms: None,
            sw_version: None,
            macs: Vec::new(),
            interfaces: BTreeMap::new(),
        }
    }

    /// The agent side: what the host source saw, as the message to publish.
    pub fn from_host(obs: &Observation, boot_id: Option<String>, interval: Duration, at_ms: i64) -> Self {
        let mut msg = Self::offline(obs.device.as_str());
        msg.online = true;
        msg.display_name = obs.info.name.clone();
        msg.boot_id = boot_id;
        msg.interval_s = Some(interval.as_secs().max(1));
        msg.at_ms = Some(at_ms);
        msg.sw_version = obs.info.sw_version.clone();
        msg.macs = obs.info.macs.clone();
        for reading in &obs.traffic {
            let (Some(name), TrafficSample::Counter(c)) = (&reading.interface, &reading.sample) else {
                continue;
            };
            let epoch = match &c.epoch {
                Some(crate::model::Epoch::Id(id)) => id.clone(),
                _ => String::new(),
            };
            let max_bps = match c.wrap {
                WrapRule::Maybe32 { max_bps } => max_bps,
                _ => 0.0,
            };
            msg.interfaces.insert(
                name.clone(),
                AgentInterface {
                    rx_bytes: c.rx,
                    tx_bytes: c.tx,
                    epoch,
                    max_bps,
                },
            );
        }
        msg
    }

    /// The bridge side: parses and checks a message that arrived for agent `topic_name`.
    pub fn parse(topic_name: &str, payload: &[u8]) -> Result<Self, PayloadError> {
        let msg: Self = serde_json::from_slice(payload).map_err(|e| PayloadError::Json(e.to_string()))?;
        if msg.v != VERSION {
            return Err(PayloadError::Version(msg.v));
        }
        if msg.name != topic_name {
            return Err(PayloadError::NameMismatch {
                topic: topic_name.to_owned(),
                payload: msg.name,
            });
        }
        DeviceId::new(msg.name.clone()).map_err(|_| PayloadError::BadName(msg.name.clone()))?;
        if msg.online && (msg.at_ms.is_none() || msg.interval_s.is_none()) {
            return Err(PayloadError::Incomplete);
        }
        Ok(msg)
    }

    /// How long without a message before the agent counts as silent: three intervals.
    pub fn silent_after(&self) -> Duration {
        Duration::from_secs(self.interval_s.unwrap_or(10).saturating_mul(3)).max(MIN_SILENCE)
    }

    /// The observation the host source on that machine would have made.
    pub fn to_observation(&self) -> Option<Observation> {
        let id = DeviceId::new(self.name.clone()).ok()?;
        let mut obs = Observation::new(id, DeviceKind::Server);
        obs.online = Some(self.online);
        if !self.online {
            return Some(obs);
        }
        obs.info.name = self.display_name.clone().or_else(|| Some(self.name.clone()));
        obs.info.manufacturer = Some("Linux".into());
        obs.info.model = Some("Server (agent)".into());
        obs.info.sw_version = self.sw_version.clone();
        obs.info.macs = self.macs.clone();
        let at_ms = self.at_ms.unwrap_or(0);
        let rate_window = self.silent_after().max(MIN_RATE_WINDOW);
        for (name, iface) in &self.interfaces {
            let max_bps = if iface.max_bps.is_finite() && iface.max_bps > 0.0 {
                iface.max_bps
            } else {
                100e9
            };
            obs.traffic.push(TrafficReading {
                interface: Some(name.clone()),
                sample: TrafficSample::Counter(CounterSample {
                    rx: iface.rx_bytes,
                    tx: iface.tx_bytes,
                    epoch: (!iface.epoch.is_empty()).then(|| iface.epoch.clone().into()),
                    at_ms,
                    wrap: WrapRule::Maybe32 { max_bps },
                    rate_window,
                }),
            });
        }
        Some(obs)
    }
}

/// `<base>/agent/<name>/counters` → `name`.
pub fn agent_name<'a>(base: &str, topic: &'a str) -> Option<&'a str> {
    topic
        .strip_prefix(base)?
        .strip_prefix("/agent/")?
        .strip_suffix("/counters")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online() -> AgentMessage {
        let mut m = AgentMessage::offline("beast");
        m.online = true;
        m.at_ms = Some(1_000);
        m.interval_s = Some(10);
        m.macs = vec!["aa:bb:cc:dd:ee:01".parse().unwrap()];
        m.interfaces.insert(
            "eth0".into(),
            AgentInterface {
                rx_bytes: 5,
                tx_bytes: 7,
                epoch: "boot-1/2".into(),
                max_bps: 1e9,
            },
        );
        m
    }

    #[test]
    fn round_trip_to_an_observation() {
        let text = serde_json::to_vec(&online()).unwrap();
        let back = AgentMessage::parse("beast", &text).unwrap();
        let obs = back.to_observation().unwrap();
        assert_eq!(obs.device.as_str(), "beast");
        assert_eq!(obs.online, Some(true));
        assert_eq!(obs.info.macs.len(), 1);
        let TrafficSample::Counter(c) = &obs.traffic[0].sample else {
            panic!("counter expected")
        };
        assert_eq!((c.rx, c.tx, c.at_ms), (5, 7, 1_000));
        assert_eq!(c.epoch, Some("boot-1/2".into()));
        assert_eq!(c.rate_window, Duration::from_secs(30));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let e = |s: &str| AgentMessage::parse("beast", s.as_bytes()).unwrap_err();
        assert!(matches!(e("not json"), PayloadError::Json(_)));
        assert!(matches!(
            e(r#"{"v":2,"name":"beast","online":false}"#),
            PayloadError::Version(2)
        ));
        assert!(matches!(
            e(r#"{"v":1,"name":"titan","online":false}"#),
            PayloadError::NameMismatch { .. }
        ));
        assert!(matches!(
            e(r#"{"v":1,"name":"beast","online":true}"#),
            PayloadError::Incomplete
        ));
        assert!(matches!(
            e(
                r#"{"v":1,"name":"beast","online":true,"at_ms":1,"interval_s":1,"interfaces":{"eth0":{"rx_bytes":-1,"tx_bytes":0,"epoch":"x","max_bps":1}}}"#
            ),
            PayloadError::Json(_)
        ));
        assert!(matches!(
            AgentMessage::parse("Be ast", br#"{"v":1,"name":"Be ast","online":false}"#).unwrap_err(),
            PayloadError::BadName(_)
        ));
    }

    #[test]
    fn topic_names() {
        assert_eq!(agent_name("b2m", "b2m/agent/beast/counters"), Some("beast"));
        assert_eq!(agent_name("b2m", "b2m/agent//counters"), None);
        assert_eq!(agent_name("b2m", "b2m/agent/a/b/counters"), None);
        assert_eq!(agent_name("b2m", "other/agent/beast/counters"), None);
    }
}
