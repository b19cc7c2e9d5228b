//! The machine the bridge runs on: exact per-interface counters from `/proc/net/dev`, identity
//! and link facts from `/sys/class/net`, and `boot_id` + `ifindex` as the counter epoch so a
//! reboot or a re-created interface is recognised as a restart rather than a drop.

mod procnet;
mod sysfs;

use std::path::PathBuf;
use std::time::Duration;

pub use procnet::{InterfaceCounters, ParseError, parse as parse_proc_net_dev};
pub use sysfs::{LinkInfo, read_link};

use super::{Source, SourceError, SourceKind, now_ms};
use crate::config::HostSettings;
use crate::model::{
    CounterSample, DeviceId, DeviceKind, MacAddr, Observation, TrafficReading, TrafficSample, WrapRule,
};

/// Used for the 32-bit wrap plausibility check when the driver does not report a link speed.
const FALLBACK_MAX_BPS: f64 = 100e9;
/// Prefixes of virtual interfaces, for when sysfs cannot tell (e.g. inside some containers).
const VIRTUAL_PREFIXES: [&str; 8] = ["lo", "docker", "veth", "br-", "virbr", "ifb", "tap", "vnet"];

pub struct HostSource {
    id: DeviceId,
    display_name: String,
    interval: Duration,
    interfaces: Option<Vec<String>>,
    exclude: Vec<String>,
    mac: Vec<MacAddr>,
    proc_dir: PathBuf,
    sys_dir: PathBuf,
    warned_missing: Vec<String>,
    warned_bad_lines: bool,
}

impl HostSource {
    pub fn new(cfg: &HostSettings) -> Self {
        let display_name = cfg.name.clone().unwrap_or_else(|| hostname(cfg));
        let id = DeviceId::slugify_or_unnamed(&display_name);
        Self {
            id,
            display_name,
            interval: cfg.interval,
            interfaces: cfg.interfaces.clone(),
            exclude: cfg.exclude.clone(),
            mac: cfg.mac.0.clone(),
            proc_dir: cfg.proc_dir.clone(),
            sys_dir: cfg.sys_dir.clone(),
            warned_missing: Vec::new(),
            warned_bad_lines: false,
        }
    }

    pub fn device_id(&self) -> &DeviceId {
        &self.id
    }

    fn selected<'a>(&mut self, all: &'a [InterfaceCounters]) -> Vec<(&'a InterfaceCounters, LinkInfo)> {
        if let Some(wanted) = &self.interfaces {
            for name in wanted {
                if !all.iter().any(|c| &c.name == name) && !self.warned_missing.contains(name) {
                    tracing::warn!(source = "host", device = %self.id, interface = %name, "Configured interface does not exist; it is skipped until it appears.");
                    self.warned_missing.push(name.clone());
                }
            }
            return all
                .iter()
                .filter(|c| wanted.contains(&c.name))
                .map(|c| (c, read_link(&self.sys_dir, &c.name)))
                .collect();
        }
        let candidates: Vec<_> = all
            .iter()
            .filter(|c| c.name != "lo" && !self.is_excluded(&c.name))
            .map(|c| (c, read_link(&self.sys_dir, &c.name)))
            .collect();
        let physical: Vec<_> = candidates.iter().filter(|(_, l)| !l.is_virtual).cloned().collect();
        if !physical.is_empty() {
            return physical;
        }
        // Inside a container every interface is virtual (veth); fall back to names.
        candidates
            .into_iter()
            .filter(|(c, _)| !VIRTUAL_PREFIXES.iter().any(|p| c.name.starts_with(p)))
            .collect()
    }

    fn is_excluded(&self, name: &str) -> bool {
        self.exclude.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        })
    }
}

fn hostname(cfg: &HostSettings) -> String {
    std::fs::read_to_string(cfg.proc_dir.join("sys/kernel/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "host".to_owned())
}

impl Source for HostSource {
    fn name(&self) -> &str {
        "host"
    }

    fn kind(&self) -> SourceKind {
        SourceKind::Host
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
        let dev_path = self.proc_dir.join("net/dev");
        let text = tokio::fs::read_to_string(&dev_path)
            .await
            .map_err(|e| SourceError::Unavailable(format!("cannot read {}: {e}", dev_path.display())))?;
        let at_ms = now_ms();
        let (all, bad) = parse_proc_net_dev(&text).map_err(|e| SourceError::Invalid(e.0))?;
        if !bad.is_empty() && !self.warned_bad_lines {
            tracing::warn!(source = "host", device = %self.id, lines = ?bad, "Some /proc/net/dev lines could not be parsed; those interfaces are skipped.");
            self.warned_bad_lines = true;
        }
        let boot_id = tokio::fs::read_to_string(self.proc_dir.join("sys/kernel/random/boot_id"))
            .await
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let rate_window = (self.interval * 3).max(Duration::from_secs(30));

        let mut obs = Observation::new(self.id.clone(), DeviceKind::Server);
        obs.info.name = Some(self.display_name.clone());
        obs.info.manufacturer = Some("Linux".into());
        obs.info.model = Some("Server".into());
        obs.info.sw_version = std::fs::read_to_string(self.proc_dir.join("sys/kernel/osrelease"))
            .ok()
            .map(|s| s.trim().to_owned());
        obs.info.macs.extend(self.mac.iter().copied());
        obs.online = Some(true);
        for (counters, link) in self.selected(&all) {
            obs.info.macs.extend(link.mac.filter(|m| !obs.info.macs.contains(m)));
            let epoch = format!("{boot_id}/{}", link.ifindex.map(|i| i.to_string()).unwrap_or_default());
            let max_bps = link
                .speed_mbps
                .map(|mbps| mbps as f64 * 1e6 * 1.05)
                .unwrap_or(FALLBACK_MAX_BPS);
            obs.traffic.push(TrafficReading {
                interface: Some(counters.name.clone()),
                sample: TrafficSample::Counter(CounterSample {
                    rx: counters.rx_bytes,
                    tx: counters.tx_bytes,
                    epoch: Some(epoch.into()),
                    at_ms,
                    wrap: WrapRule::Maybe32 { max_bps },
                    rate_window,
                }),
            });
        }
        Ok(vec![obs])
    }
}
