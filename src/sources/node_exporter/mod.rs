//! A server that already runs Prometheus' node_exporter (seed §1.3/§4.5): its `/metrics` page
//! gives the kernel's exact per-interface byte counters, so it needs neither vnstat nor our
//! agent. One GET per poll, the body read with a cap; a reboot is told by a new boot time
//! (`node_boot_time_seconds`), placed with the server's uptime when its clock is exported too
//! (`node_time_seconds`), so a step of either clock is not taken for a reboot.
//!
//! Like a vnstat server, it is a configured server: `mac` ties the router's client entries to
//! it, and its exact counters own its totals and rates (ranks in `spec.rs`).

mod scrape;
mod spec;
pub mod text;

use std::time::Duration;

pub use scrape::{NetDev, Scrape, byte_count, read};
pub use spec::{Folder, NodeExporterSettings};

use super::body::{self, BodyError};
use super::{Source, SourceError, SourceKind};
use crate::clock::Clock;
use crate::http::{TlsPolicy, build_client};
use crate::model::{Boot, CounterSample, DeviceId, DeviceKind, Epoch, Observation, TrafficReading, TrafficSample, WrapRule};

/// A full node_exporter page is a few hundred kB (many CPUs, disks and interfaces: a few MB).
pub const BODY_CAP: usize = 8 * body::MIB;

/// Names of virtual interfaces left out unless `interfaces` names them (as the host does
/// when sysfs cannot tell): containers come and go, and each would become sensors.
const VIRTUAL_PREFIXES: [&str; 8] = ["lo", "docker", "veth", "br-", "virbr", "ifb", "tap", "vnet"];

pub struct NodeExporterSource {
    name: String,
    id: DeviceId,
    cfg: NodeExporterSettings,
    http: Option<reqwest::Client>,
    clock: Clock,
    warned_missing: Vec<String>,
    warned: Warned,
}

/// Things said once per run, not on every poll.
#[derive(Default)]
struct Warned {
    bad_lines: bool,
    no_boot_time: bool,
    bad_counter: Vec<String>,
}

impl NodeExporterSource {
    pub fn new(name: &str, cfg: &NodeExporterSettings) -> Self {
        let http = match build_client(&TlsPolicy::Verify, cfg.timeout) {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::error!(source = %name, error = %e, "Cannot set up the HTTP client; the source stays offline.");
                None
            }
        };
        Self {
            name: name.to_owned(),
            id: DeviceId::slugify_or_unnamed(name),
            cfg: cfg.clone(),
            http,
            clock: Clock::system(),
            warned_missing: Vec::new(),
            warned: Warned::default(),
        }
    }

    async fn fetch(&self) -> Result<String, SourceError> {
        let http = self
            .http
            .as_ref()
            .ok_or_else(|| SourceError::Unavailable("the HTTP client could not be set up".into()))?;
        let response = http
            .get(&self.cfg.url)
            .header(reqwest::header::ACCEPT, "text/plain")
            .send()
            .await
            .map_err(|e| SourceError::Unavailable(describe(&e, self.cfg.timeout)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(SourceError::Unavailable(format!(
                "node_exporter answered HTTP {}",
                status.as_u16()
            )));
        }
        let bytes = body::read_capped(response, BODY_CAP).await.map_err(|e| match e {
            BodyError::TooLarge { .. } => SourceError::Invalid(e.to_string()),
            BodyError::Transport(e) => SourceError::Unavailable(describe(&e, self.cfg.timeout)),
        })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Turns one reply, read at `at_ms` (bridge clock), into the server's observation.
    pub fn observe(&mut self, scrape: &Scrape, at_ms: i64) -> Result<Observation, SourceError> {
        if scrape.bad_lines > 0 && !self.warned.bad_lines {
            let (line, fault) = scrape.first_bad.map_or((0, String::new()), |(l, e)| (l, e.to_string()));
            tracing::warn!(source = %self.name, device = %self.id, lines = scrape.bad_lines, first_line = line, fault = %fault, "Some node_exporter lines could not be read; they are skipped.");
            self.warned.bad_lines = true;
        }
        if scrape.interfaces.is_empty() {
            return Err(SourceError::Invalid(format!(
                "the reply has no `{}` (is node_exporter's netdev collector on?)",
                scrape::RX
            )));
        }
        let epoch = self.epoch(scrape, at_ms);
        let rate_window = (self.cfg.interval * 3).max(Duration::from_secs(30));
        let mut obs = Observation::new(self.id.clone(), DeviceKind::Server);
        obs.info.name = Some(self.cfg.name.clone().unwrap_or_else(|| self.name.clone()));
        obs.info.macs.extend(self.cfg.mac.iter().copied());
        obs.info.model = Some("Server".into());
        obs.online = Some(true);
        for dev in &scrape.interfaces {
            if !self.wanted(&dev.device) {
                continue;
            }
            let (Some(rx), Some(tx)) = (dev.rx.and_then(byte_count), dev.tx.and_then(byte_count)) else {
                if !self.warned.bad_counter.contains(&dev.device) {
                    tracing::warn!(source = %self.name, device = %self.id, interface = %dev.device, "node_exporter gives no usable byte counters for this interface (missing, negative or not a number); skipped.");
                    self.warned.bad_counter.push(dev.device.clone());
                }
                continue;
            };
            obs.traffic.push(TrafficReading {
                interface: Some(dev.device.clone()),
                sample: TrafficSample::Counter(CounterSample {
                    rx,
                    tx,
                    epoch: epoch.clone(),
                    at_ms,
                    wrap: WrapRule::Never,
                    rate_window,
                }),
            });
        }
        if let Some(wanted) = &self.cfg.interfaces {
            for name in wanted {
                if !scrape.interfaces.iter().any(|d| &d.device == name) && !self.warned_missing.contains(name) {
                    tracing::warn!(source = %self.name, device = %self.id, interface = %name, "Configured interface is not in node_exporter's reply; skipped until it appears.");
                    self.warned_missing.push(name.clone());
                }
            }
            if obs.traffic.is_empty() {
                return Err(SourceError::Invalid(format!(
                    "none of the configured interfaces ({}) is in node_exporter's reply",
                    wanted.join(", ")
                )));
            }
        }
        Ok(obs)
    }

    fn wanted(&self, device: &str) -> bool {
        match &self.cfg.interfaces {
            Some(list) => list.iter().any(|w| w == device),
            None => !VIRTUAL_PREFIXES.iter().any(|p| device.starts_with(p)),
        }
    }

    /// The counters' life: the server's boot. With its clock exported, the boot is placed by
    /// its uptime (immune to a step of either clock); with only the boot time, by that
    /// (within [`Epoch::BOOT_TOLERANCE_S`]); without it, none, and a reboot shows only as
    /// counters going down (held, then taken as a reset).
    fn epoch(&mut self, scrape: &Scrape, at_ms: i64) -> Option<Epoch> {
        let Some(boot) = scrape.boot_time_s.filter(|b| b.is_finite() && *b > 0.0 && *b < 1e15) else {
            if !self.warned.no_boot_time {
                tracing::warn!(source = %self.name, device = %self.id, "The reply has no `node_boot_time_seconds` (is the stat collector on?); a reboot is told only by counters going down.");
                self.warned.no_boot_time = true;
            }
            return None;
        };
        let now = scrape.time_s.filter(|t| t.is_finite() && *t >= boot && *t < 1e15);
        Some(match now {
            Some(now) => Epoch::Uptime(Boot::from_uptime(
                (now - boot) as u64,
                at_ms,
                self.clock.mono_ms(),
                Some(now as i64),
            )),
            None => Epoch::BootedAt(boot.round() as i64),
        })
    }
}

/// A transport error in the user's terms (the URL holds no secret: check-config refuses
/// credentials in it).
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    crate::http::describe_error(
        e,
        || format!("node_exporter did not answer within {}", humantime::format_duration(timeout)),
        "cannot connect to node_exporter",
        "request to node_exporter failed",
    )
}

impl Source for NodeExporterSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> SourceKind {
        SourceKind::NodeExporter
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }

    fn set_clock(&mut self, clock: &Clock) {
        self.clock = clock.clone();
    }

    async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
        let text = self.fetch().await?;
        let at_ms = self.clock.now_ms();
        let scrape = read(&text);
        Ok(vec![self.observe(&scrape, at_ms)?])
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod text_tests;

#[cfg(test)]
#[path = "source_tests.rs"]
mod source_tests;
