//! The machine the bridge runs on: exact per-interface counters from `/proc/net/dev`, identity
//! and link facts from `/sys/class/net`, and `boot_id` + `ifindex` as the counter epoch so a
//! reboot or a re-created interface is recognised as a restart rather than a drop.

mod procnet;
mod spec;
mod sysfs;

use std::path::PathBuf;
use std::time::Duration;

pub use spec::{Folder, HostSettings};
pub use procnet::{InterfaceCounters, ParseError, parse as parse_proc_net_dev};
pub use sysfs::{LinkInfo, read_link};

use super::{Source, SourceError, SourceKind};
use crate::clock::Clock;
use crate::model::{
    CounterSample, DeviceId, DeviceKind, MacAddr, Observation, TrafficReading, TrafficSample, WrapRule,
};

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
    clock: Clock,
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
            clock: Clock::system(),
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

/// How to read a drop of this interface's counters. Some drivers still wrap a 64-bit field at
/// 2^32; that is only told apart from a reset by the link speed (a wrap must fit the rate the
/// link allows). Without a speed (virtio, Wi-Fi, most VMs report -1) a drop is a reset: taking
/// it as a wrap would add up to 4 GiB that never happened, and those drivers keep 64-bit
/// counters anyway.
fn wrap_rule(speed_mbps: Option<u64>) -> WrapRule {
    match speed_mbps {
        Some(mbps) if mbps > 0 => WrapRule::Maybe32 {
            max_bps: mbps as f64 * 1e6 * 1.05,
        },
        _ => WrapRule::Never,
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
    fn set_clock(&mut self, clock: &Clock) {
        self.clock = clock.clone();
    }

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
        let at_ms = self.clock.now_ms();
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
            let wrap = wrap_rule(link.speed_mbps);
            obs.traffic.push(TrafficReading {
                interface: Some(counters.name.clone()),
                sample: TrafficSample::Counter(CounterSample {
                    rx: counters.rx_bytes,
                    tx: counters.tx_bytes,
                    epoch: Some(epoch.into()),
                    at_ms,
                    wrap,
                    rate_window,
                }),
            });
        }
        Ok(vec![obs])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::accounting::{ChannelState, CounterEvent};
    use crate::model::CounterSample;

    // Issue 8 item 5: tx 5,100 → 300 on a NIC with `speed = -1` was taken as a 32-bit wrap
    // against a 100 Gbit/s fallback, adding 4,294,967,396 bytes that never happened.
    #[test]
    fn a_reset_on_a_link_without_speed_is_never_a_wrap() {
        let sample = |tx: u64, at_s: i64, wrap: WrapRule| CounterSample {
            rx: 0,
            tx,
            epoch: Some("boot/2".into()),
            at_ms: at_s * 1000,
            wrap,
            rate_window: Duration::from_secs(30),
        };
        let wrap = wrap_rule(None);
        let (mut ch, _) = ChannelState::start_counter(&sample(5_100, 0, wrap), 0, true);
        let (step, ev) = ch.update_counter(&sample(300, 10, wrap), 10_000);
        assert_eq!((step.tx, ev), (0, Some(CounterEvent::Dropped)));
        let (step, ev) = ch.update_counter(&sample(900, 20, wrap), 20_000);
        assert_eq!((step.tx, ev), (600, Some(CounterEvent::Reset)));
        // With a link speed, a drop from near 2^32 is still counted across the wrap.
        let wrap = wrap_rule(Some(1000));
        let (mut ch, _) = ChannelState::start_counter(&sample(u64::from(u32::MAX) - 99, 0, wrap), 0, true);
        let (step, ev) = ch.update_counter(&sample(400, 10, wrap), 10_000);
        assert_eq!((step.tx, ev), (500, Some(CounterEvent::Wrapped)));
        assert_eq!(wrap_rule(Some(0)), WrapRule::Never);
    }
}
