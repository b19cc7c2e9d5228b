//! vnstat on a Linux server, locally or through any command (`ssh beast vnstat --json f 1`).
//!
//! vnstat's totals survive reboots and bridge downtime, which makes them the best long-term
//! counters; they only move when vnstatd saves (every 5 minutes by default), so rates come from
//! Δtotal/Δ`updated`, never from our own polling interval (shared/protocols/vnstat.md §3).

mod command;
mod history;
mod json;
mod spec;

use std::time::Duration;

pub use spec::{Folder, VnstatSettings};
pub use json::{ParseError, VnstatInterface, VnstatReport, parse};

use super::{Source, SourceError, SourceKind};
use crate::model::{
    CounterSample, DeviceId, DeviceKind, History, Observation, TrafficReading, TrafficSample, WrapRule,
};

/// Shortest window over which a vnstat rate is still reported: it must span at least one
/// save interval (5 min by default) with room for a late save.
const MIN_RATE_WINDOW: Duration = Duration::from_secs(20 * 60);

pub struct VnstatSource {
    name: String,
    id: DeviceId,
    cfg: VnstatSettings,
    warned_missing: Vec<String>,
    /// Billing months start on the 1st: vnstat's month table is read as it is (history.rs).
    calendar_months: bool,
    /// The next poll reads vnstat's day and month tables too: the first one, and the first
    /// after a failure or a gap longer than two intervals.
    history_due: bool,
    /// The command has no history to offer (no `--json` in it, or vnstat refused the mode).
    no_history: bool,
    clock: Option<crate::clock::Clock>,
    last_ok_ms: Option<i64>,
}

impl VnstatSource {
    /// `month_start_day`: `[bridge] month_start_day` (which tables fill the billing months).
    pub fn new(name: &str, cfg: &VnstatSettings, month_start_day: u8) -> Self {
        Self {
            name: name.to_owned(),
            id: DeviceId::slugify_or_unnamed(name),
            cfg: cfg.clone(),
            warned_missing: Vec::new(),
            calendar_months: month_start_day <= 1,
            history_due: true,
            no_history: false,
            clock: None,
            last_ok_ms: None,
        }
    }

    /// Runs `argv` and parses its document.
    async fn read(&self, argv: &[String]) -> Result<VnstatReport, SourceError> {
        let output = command::run(argv, self.cfg.timeout).await?;
        let program = argv.first().map(String::as_str).unwrap_or("vnstat");
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
        parse(&output.stdout).map_err(|e| SourceError::Invalid(e.to_string()))
    }

    /// The day run (whose totals are this poll's reading) and, with calendar months, a month
    /// run of the same database state; `Ok(None)`: no history this time (the plain command
    /// then gives the reading).
    async fn read_history(&mut self) -> Result<Option<(VnstatReport, History)>, SourceError> {
        let wanted = self.cfg.interfaces.as_deref();
        let limit = if self.calendar_months {
            2
        } else {
            history::DAYS_FOR_BILLING_MONTHS
        };
        let Some(day_cmd) = history::with_mode(&self.cfg.command, "d", limit) else {
            self.no_history = true;
            tracing::info!(source = %self.name, device = %self.id, "The vnstat command has no `--json` argument: today and this month count from the first poll, not from vnstat's own tables.");
            return Ok(None);
        };
        let mut days = match self.read(&day_cmd).await {
            Ok(r) if history::has_tables(&r, wanted, false) => r,
            Ok(_) | Err(SourceError::Invalid(_)) => return Ok(self.refused()),
            // The command as such fails (host down): the poll fails as it would.
            Err(e @ SourceError::Unavailable(_)) => match self.read(&self.cfg.command).await {
                Ok(_) => return Ok(self.refused()),
                Err(_) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if !self.calendar_months {
            let h = history::history(&days, None, wanted, limit);
            return Ok(Some((days, h)));
        }
        let Some(month_cmd) = history::with_mode(&self.cfg.command, "m", 2) else {
            return Ok(None);
        };
        // A save between the two runs: once more, then wait for the next poll.
        for _ in 0..2 {
            let months = match self.read(&month_cmd).await {
                Ok(r) if history::has_tables(&r, wanted, true) => r,
                _ => return Ok(self.refused()),
            };
            if history::same_state(&days, &months) {
                let h = history::history(&days, Some(&months), wanted, limit);
                return Ok(Some((days, h)));
            }
            days = match self.read(&day_cmd).await {
                Ok(r) if history::has_tables(&r, wanted, false) => r,
                _ => return Ok(None),
            };
        }
        tracing::debug!(source = %self.name, device = %self.id, "vnstat saved between the day and month runs; its tables are read at the next poll.");
        self.history_due = true;
        Ok(None)
    }

    /// The command with another mode gives no tables (a restricted ssh key, vnStat 1.x without
    /// a limit): said once, and the periods count from the first poll.
    fn refused(&mut self) -> Option<(VnstatReport, History)> {
        self.no_history = true;
        tracing::warn!(source = %self.name, device = %self.id, "vnstat's day/month tables could not be read with the configured command (mode replaced by `d`/`m`); today and this month count from the first poll.");
        None
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
        let now_ms = self.clock.as_ref().map(crate::clock::Clock::now_ms);
        let interval_ms = i64::try_from(self.cfg.interval.as_millis()).unwrap_or(i64::MAX);
        let gap = matches!((now_ms, self.last_ok_ms), (Some(n), Some(l)) if n.saturating_sub(l) > interval_ms.saturating_mul(2));
        let due = (self.history_due || gap) && !self.no_history;
        self.history_due = false;
        let result = async {
            if due && let Some((report, history)) = self.read_history().await? {
                let mut obs = self.observe(report)?;
                obs.history = Some(history);
                return Ok(vec![obs]);
            }
            let report = self.read(&self.cfg.command).await?;
            Ok(vec![self.observe(report)?])
        }
        .await;
        match &result {
            Ok(_) => self.last_ok_ms = now_ms,
            Err(_) => self.history_due = true,
        }
        result
    }

    fn set_clock(&mut self, clock: &crate::clock::Clock) {
        self.clock = Some(clock.clone());
    }
}
