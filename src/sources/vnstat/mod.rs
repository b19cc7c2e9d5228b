//! vnstat on a Linux server, locally or through any command (`ssh beast vnstat --json f 1`).
//!
//! vnstat's totals survive reboots and bridge downtime, which makes them the best long-term
//! counters; they only move when vnstatd saves (every 5 minutes by default), so rates come from
//! Δtotal/Δ`updated`, never from our own polling interval (shared/protocols/vnstat.md §3).

mod command;
mod json;
mod spec;

use std::time::Duration;

pub use spec::{Folder, VnstatSettings};
pub use json::{ParseError, VnstatInterface, VnstatReport, parse};

use super::{Source, SourceError, SourceKind};
use crate::model::{CounterSample, DeviceId, DeviceKind, Observation, TrafficReading, TrafficSample, WrapRule};

/// Shortest window over which a vnstat rate is still reported: it must span at least one
/// save interval (5 min by default) with room for a late save.
const MIN_RATE_WINDOW: Duration = Duration::from_secs(20 * 60);

pub struct VnstatSource {
    name: String,
    id: DeviceId,
    cfg: VnstatSettings,
    warned_missing: Vec<String>,
}

impl VnstatSource {
    pub fn new(name: &str, cfg: &VnstatSettings) -> Self {
        Self {
            name: name.to_owned(),
            id: DeviceId::slugify_or_unnamed(name),
            cfg: cfg.clone(),
            warned_missing: Vec::new(),
        }
    }

    /// Turns one run's output into the server's observation.
    pub fn observe(&mut self, report: VnstatReport) -> Result<Observation, SourceError> {
        if report.repaired_alias {
            tracing::warn!(source = %self.name, device = %self.id, "vnstat printed an interface alias that is not valid JSON (a quote or backslash in it); repaired it. Consider a simpler alias.");
        }
        let rate_window = (self.cfg.interval * 3).max(MIN_RATE_WINDOW);
        let mut obs = Observation::new(self.id.clone(), DeviceKind::Server);
        obs.info.name = Some(self.cfg.name.clone().unwrap_or_else(|| self.name.clone()));
        obs.info.macs.extend(self.cfg.mac.iter().copied());
        obs.info.model = Some("Server".into());
        obs.online = Some(true);
        if let Some(version) = &report.vnstat_version {
            obs.attributes.insert("vnstat_version".into(), version.clone().into());
        }
        for iface in &report.interfaces {
            if self.cfg.interfaces.as_ref().is_some_and(|w| !w.contains(&iface.name)) {
                continue;
            }
            obs.traffic.push(TrafficReading {
                interface: Some(iface.name.clone()),
                sample: TrafficSample::Counter(CounterSample {
                    rx: iface.rx,
                    tx: iface.tx,
                    epoch: Some(iface.created.clone().into()),
                    at_ms: iface.updated_ms,
                    wrap: WrapRule::Never,
                    rate_window,
                }),
            });
        }
        if let Some(wanted) = &self.cfg.interfaces {
            for name in wanted {
                if !report.interfaces.iter().any(|i| &i.name == name) && !self.warned_missing.contains(name) {
                    tracing::warn!(source = %self.name, device = %self.id, interface = %name, "Configured interface is not in vnstat's database; skipped.");
                    self.warned_missing.push(name.clone());
                }
            }
            if obs.traffic.is_empty() {
                return Err(SourceError::Invalid(format!(
                    "none of the configured interfaces ({}) is in vnstat's database",
                    wanted.join(", ")
                )));
            }
        }
        Ok(obs)
    }
}

impl Source for VnstatSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> SourceKind {
        SourceKind::Vnstat
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }

    async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
        let output = command::run(&self.cfg.command, self.cfg.timeout).await?;
        let program = self.cfg.command.first().map(String::as_str).unwrap_or("vnstat");
        if !output.status.success() {
            // vnstat prints its errors on stdout; ssh and shells on stderr.
            let text = [output.stdout.trim(), output.stderr.trim()]
                .into_iter()
                .find(|t| !t.is_empty())
                .and_then(|t| t.lines().next())
                .unwrap_or("no output")
                .chars()
                .take(300)
                .collect::<String>();
            let status = output
                .status
                .code()
                .map(|c| format!("status {c}"))
                .unwrap_or_else(|| "a signal".into());
            return Err(SourceError::Unavailable(format!(
                "`{program}` exited with {status}: {text}"
            )));
        }
        let report = parse(&output.stdout).map_err(|e| SourceError::Invalid(e.to_string()))?;
        Ok(vec![self.observe(report)?])
    }
}
