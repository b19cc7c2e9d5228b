//! An ASUS router on stock (or Merlin) firmware, through the web API its phone app uses
//! (shared/protocols/asus.md): one login reused across polls, and every hook of a poll in a
//! single `appGet.cgi` request, because the router's web server is single-threaded and slow.
//! Per-client bytes come from the live counters of `getTraffic.asp` ([`live`], one request per
//! poll, asus.md §5) and the hourly Traffic Analyzer ([`traffic_analyzer`], §6); accounting
//! combines them (accounting/reconcile.rs).

pub mod clientlist;
pub mod day_history;
pub mod etiquette;
pub mod hookjson;
pub mod js;
pub mod live;
pub mod live_parse;
mod live_table;
mod spec;
mod observe;
pub mod parse;
pub mod reply;
pub mod row_stamps;
pub mod session;
pub mod traffic_analyzer;

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::{Source, SourceError, SourceKind};
use crate::clock::Clock;
pub use spec::{AsusSettings, Folder};
use crate::http::{TlsPolicy, build_client};
use crate::model::{DeviceId, MacAddr, Observation};
use crate::percent::encode as percent_encode;
use parse::{CpuJiffies, Temperature};
use session::{AsusError, Session};

/// Everything one poll needs, in one request. `;` must travel as `%3B` (asus.md §4.1).
pub const POLL_HOOKS: &str = "netdev(appobj);cpu_usage(appobj);memory_usage(appobj);uptime();get_clientlist();\
nvram_get(productid);nvram_get(firmver);nvram_get(buildno);nvram_get(extendno);nvram_get(label_mac);\
nvram_get(lan_hwaddr);nvram_get(lan_ipaddr);nvram_get(rc_support);nvram_get(bwdpi_db_enable);nvram_get(dns_dpi_trf_analysis);\
nvram_get(wan0_ipaddr)";

pub struct AsusSource {
    name: String,
    id: DeviceId,
    cfg: AsusSettings,
    session: Result<Session, String>,
    last_cpu: Option<CpuJiffies>,
    counters_64_bit: bool,
    temperatures: Vec<Temperature>,
    temperatures_read: Option<Instant>,
    temperature_failed: bool,
    had_rssi: BTreeSet<MacAddr>,
    warned_no_internet: bool,
    /// `None` when switched off in the configuration.
    traffic_analyzer: Option<traffic_analyzer::TrafficAnalyzer>,
    /// From the last reply: the router's clock, its TA switch, and who is online.
    router_now: Option<i64>,
    ta_switch: Option<bool>,
    /// The DNS-based analyzer (`rc_support` has `dns_dpi`): `_Dns` pages (asus.md §6.1).
    dns_analyzer: bool,
    online: Vec<MacAddr>,
    /// Every MAC the client list shows, online or not.
    listed: BTreeSet<MacAddr>,
    /// When the router booted (bridge clock − uptime), from the last reply.
    booted_at: Option<i64>,
    live: live::LiveCounters,
    clock: Clock,
}

impl AsusSource {
    pub fn new(name: &str, cfg: &AsusSettings) -> Self {
        let https = cfg.url.starts_with("https://");
        let policy = match (&cfg.tls_fingerprint, cfg.verify_tls) {
            (Some(fp), _) => TlsPolicy::pinned(fp),
            (None, false) => {
                if https {
                    tracing::warn!(
                        source = name,
                        "TLS certificate checks are off (verify_tls = false); consider tls_fingerprint."
                    );
                }
                Ok(TlsPolicy::Insecure)
            }
            (None, true) => Ok(TlsPolicy::Verify),
        };
        if cfg.interval < Duration::from_secs(10) {
            tracing::warn!(source = name, interval = ?cfg.interval, "Polling a router more often than every 10 s loads its single-threaded web server.");
        }
        let session = policy
            .and_then(|p| build_client(&p, cfg.timeout))
            .map(|http| {
                Session::new(
                    http,
                    &cfg.url,
                    name,
                    &cfg.username,
                    cfg.password.clone().unwrap_or_else(|| crate::table::Secret::new("")),
                )
            })
            .map_err(|e| e.to_string());
        Self {
            name: name.to_owned(),
            id: DeviceId::slugify_or_unnamed(name),
            cfg: cfg.clone(),
            session,
            last_cpu: None,
            counters_64_bit: false,
            temperatures: Vec::new(),
            temperatures_read: None,
            temperature_failed: false,
            had_rssi: BTreeSet::new(),
            warned_no_internet: false,
            traffic_analyzer: cfg
                .traffic_analyzer
                .then(|| traffic_analyzer::TrafficAnalyzer::new(name, DeviceId::slugify_or_unnamed(name))),
            router_now: None,
            ta_switch: None,
            dns_analyzer: false,
            online: Vec::new(),
            listed: BTreeSet::new(),
            booted_at: None,
            live: live::LiveCounters::new(name, DeviceId::slugify_or_unnamed(name)),
            clock: Clock::system(),
        }
    }

    /// `[bridge] timezone` (`None`: the system's): where the Traffic Analyzer's daily history
    /// starts its days.
    pub fn set_time_zone(&mut self, name: Option<&str>) {
        let tz = match name {
            Some(n) => jiff::tz::TimeZone::get(n).unwrap_or_else(|_| jiff::tz::TimeZone::system()),
            None => jiff::tz::TimeZone::system(),
        };
        if let Some(ta) = self.traffic_analyzer.as_mut() {
            ta.set_time_zone(tz);
        }
    }

    /// Remembers refusals and logins spent across restarts (see `login_journal`).
    pub fn remember_logins(&mut self, journal: crate::sources::login_memory::LoginJournal) {
        if let Ok(session) = self.session.as_mut()
            && let Some(reason) = session.attach_journal(journal)
        {
            tracing::warn!(source = %self.name, reason = %reason, "Still holding back logins after a restart: the router refused this password before.");
        }
    }

    /// Logins attempted so far (tests count them; the router locks after 5 failures).
    pub fn logins(&self) -> u64 {
        self.session.as_ref().map(|s| s.logins).unwrap_or(0)
    }

    async fn read_temperatures(&mut self) {
        let due = self
            .temperatures_read
            .is_none_or(|t| t.elapsed() >= self.cfg.temperature_interval);
        let Ok(session) = self.session.as_mut() else {
            return;
        };
        if !due {
            return;
        }
        self.temperatures_read = Some(Instant::now());
        match session.post("/ajax_coretmp.asp", String::new()).await {
            Ok(js) => {
                self.temperatures = parse::temperatures(&js);
                self.temperature_failed = false;
            }
            Err(e) => {
                if !self.temperature_failed {
                    tracing::warn!(source = %self.name, device = %self.id, error = %e, "Cannot read temperatures; keeping the last values.");
                }
                self.temperature_failed = true;
            }
        }
    }
}

/// Puts each client's live counter on that client's observation (the client list made it).
fn attach_live(observations: &mut [Observation], samples: Vec<(MacAddr, crate::model::LiveSample)>) {
    use crate::model::{DeviceKind, TrafficReading, TrafficSample};
    let mut samples: std::collections::BTreeMap<MacAddr, crate::model::LiveSample> = samples.into_iter().collect();
    for obs in observations.iter_mut().filter(|o| o.kind == DeviceKind::Client) {
        if let Some(sample) = obs.info.macs.first().and_then(|m| samples.remove(m)) {
            obs.traffic.push(TrafficReading {
                interface: None,
                sample: TrafficSample::Live(sample),
            });
        }
    }
}

/// Puts the analyzer's hours of a client on the client list's observation, before its live
/// counter, and keeps the rest (clients the list does not show) in front: a live reading after
/// a stop then knows which of its bytes belong to finished hours (a stop across midnight puts
/// the last hour in yesterday). Accounting still reads a fresh counter first (its value is the
/// total so far, which no earlier hour may add to).
fn merge_hours(observations: Vec<Observation>, hours: Vec<Observation>) -> Vec<Observation> {
    if hours.is_empty() {
        return observations;
    }
    // One device may have several (its hours, its apps).
    let mut by_device: std::collections::BTreeMap<DeviceId, Observation> = std::collections::BTreeMap::new();
    for mut o in hours {
        match by_device.get_mut(&o.device) {
            Some(kept) => {
                kept.traffic.append(&mut o.traffic);
                kept.attributes.append(&mut o.attributes);
                if o.history.is_some() {
                    kept.history = o.history.take();
                }
            }
            None => {
                by_device.insert(o.device.clone(), o);
            }
        }
    }
    let mut merged: Vec<Observation> = Vec::with_capacity(observations.len() + by_device.len());
    let mut rest = Vec::with_capacity(observations.len());
    for mut obs in observations {
        if let Some(mut h) = by_device.remove(&obs.device) {
            h.traffic.append(&mut obs.traffic);
            obs.traffic = h.traffic;
            obs.attributes.append(&mut h.attributes);
            if h.history.is_some() {
                obs.history = h.history.take();
            }
        }
        rest.push(obs);
    }
    merged.extend(by_device.into_values());
    merged.extend(rest);
    merged
}

fn to_source_error(e: AsusError) -> SourceError {
    match e {
        AsusError::Auth(m) => SourceError::Auth(m),
        AsusError::Deferred(d)
            if d.reason.contains("password") || d.reason.contains("captcha") || d.reason.contains("locked") =>
        {
            SourceError::Auth(AsusError::Deferred(d).to_string())
        }
        AsusError::Invalid { .. } | AsusError::TooLarge { .. } => SourceError::Invalid(e.to_string()),
        other => SourceError::Unavailable(other.to_string()),
    }
}

impl Source for AsusSource {
    fn set_clock(&mut self, clock: &Clock) {
        self.clock = clock.clone();
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> SourceKind {
        SourceKind::Asus
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }

    async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
        let session = self.session.as_mut().map_err(|e| SourceError::Unavailable(e.clone()))?;
        let body = format!("hook={}", percent_encode(POLL_HOOKS));
        let text = session.post("/appGet.cgi", body).await.map_err(to_source_error)?;
        let at_ms = self.clock.now_ms();
        // Before the observation is built, which carries them: `once` and the first poll of
        // `run` have the temperatures too (the page is read every `temperature_interval`).
        self.read_temperatures().await;
        let booted_before = self.booted_at;
        let mut observations = self.interpret(&text, at_ms)?;
        if let (Some(before), Some(now), Ok(session)) = (booted_before, self.booted_at, self.session.as_mut())
            && !crate::model::Epoch::BootedAt(before).same_as(&crate::model::Epoch::BootedAt(now))
        {
            // Sessions lost to a reboot are not the router ending ours on purpose.
            session.router_restarted();
        }
        let router_now = self.router_now.unwrap_or(at_ms / 1000);
        if let Ok(session) = self.session.as_mut() {
            let samples = self
                .live
                .read(
                    session,
                    &self.listed,
                    self.booted_at,
                    router_now,
                    self.cfg.interval,
                    &self.clock,
                )
                .await;
            if let Some(ta) = self.traffic_analyzer.as_mut() {
                ta.observe_live(&samples);
            }
            attach_live(&mut observations, samples);
        }
        if let (Some(ta), Ok(session)) = (self.traffic_analyzer.as_mut(), self.session.as_mut()) {
            ta.set_enabled_on_router(self.ta_switch);
            ta.set_dns(self.dns_analyzer);
            // The analyzer stamps rows with the router's clock; ask in its terms. Its hours go
            // first: a live reading after a stop then knows which of its bytes belong to
            // finished hours (a stop across midnight puts the last hour in yesterday).
            let hours = ta.run(session, router_now, &self.online, self.cfg.interval).await;
            observations = merge_hours(observations, hours);
        }
        Ok(observations)
    }

    fn cursor(&self) -> Option<serde_json::Value> {
        let mut cursor = serde_json::Map::new();
        if let Some(ta) = &self.traffic_analyzer {
            cursor.insert("traffic_analyzer".into(), ta.cursor());
        }
        cursor.insert("live".into(), self.live.cursor());
        Some(serde_json::Value::Object(cursor))
    }

    fn restore(&mut self, cursor: &serde_json::Value) {
        if let (Some(ta), Some(saved)) = (self.traffic_analyzer.as_mut(), cursor.get("traffic_analyzer")) {
            ta.restore(saved);
        }
        if let Some(saved) = cursor.get("live") {
            self.live.restore(saved);
        }
    }

    fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        use traffic_analyzer::Availability;
        let mut map = serde_json::Map::new();
        let state = match &self.traffic_analyzer {
            None => "off in the configuration",
            Some(ta) => match ta.availability {
                Availability::Unknown => "unknown",
                Availability::Enabled => "enabled",
                Availability::DisabledOnRouter => "disabled on the router",
            },
        };
        map.insert("traffic_analyzer".into(), state.into());
        let live = match self.live.availability {
            live::Availability::Unknown => "unknown",
            live::Availability::Available => "available",
            live::Availability::NotAvailable => "not available (switch on Adaptive QoS)",
        };
        map.insert("live_counters".into(), live.into());
        map.insert("live_counter_requests".into(), self.live.requests.into());
        if let Some(ta) = &self.traffic_analyzer {
            map.insert("traffic_analyzer_requests".into(), ta.requests.into());
            map.insert("traffic_analyzer_rows_stamped".into(), ta.row_stamps().into());
            if let Some(hour) = ta.last_refresh() {
                let at = std::time::UNIX_EPOCH + Duration::from_secs(hour.max(0) as u64);
                map.insert(
                    "traffic_analyzer_hour".into(),
                    humantime::format_rfc3339_seconds(at).to_string().into(),
                );
            }
        }
        map
    }

    fn complete_each_poll(&mut self) {
        if let Some(ta) = self.traffic_analyzer.as_mut() {
            ta.complete_each_poll();
        }
    }

    async fn close(&mut self) {
        if let Ok(session) = self.session.as_mut() {
            session.logout().await;
        }
    }
}

impl AsusSource {
    /// One `appGet.cgi` reply (for [`POLL_HOOKS`]) into observations; no I/O.
    pub fn interpret(&mut self, text: &str, at_ms: i64) -> Result<Vec<Observation>, SourceError> {
        self.interpret_at(text, at_ms, self.clock.mono_ms())
    }

    /// [`Self::interpret`] with the monotonic clock given (tests step the wall clock alone).
    pub fn interpret_at(&mut self, text: &str, at_ms: i64, mono_ms: i64) -> Result<Vec<Observation>, SourceError> {
        let reply = reply::PollReply::parse(text).map_err(|e| SourceError::Invalid(format!("appGet.cgi: {e}")))?;
        if !reply.has_netdev && !reply.has_clientlist {
            return Err(SourceError::Invalid(
                "appGet.cgi: the reply has none of the requested hooks".into(),
            ));
        }

        let reply::PollReply {
            identity,
            netdev,
            uptime_s,
            router_clock_s,
            cpu,
            memory_percent,
            wan_ip,
            clients,
            ..
        } = reply;
        self.router_now = router_clock_s;
        self.dns_analyzer = identity.dns_analyzer;
        self.ta_switch = if identity.dns_analyzer {
            identity.dns_traffic_analyzer
        } else {
            identity.traffic_analyzer
        };
        self.online = clients.iter().filter(|c| c.online).map(|c| c.mac).collect();
        self.listed = clients.iter().map(|c| c.mac).collect();
        // Only listed clients keep their signal entity's memory (private MACs come and go).
        let listed = &self.listed;
        self.had_rssi.retain(|m| listed.contains(m));
        self.booted_at = uptime_s.map(|up| at_ms / 1000 - up as i64);
        if let Some(n) = &netdev {
            self.counters_64_bit |= n.proves_64_bit();
            if n.internet.is_none() && !self.warned_no_internet {
                tracing::warn!(source = %self.name, device = %self.id, "Router reports no INTERNET counters in netdev; WAN totals are not available on this model.");
                self.warned_no_internet = true;
            }
        }
        let cpu_percent = match (self.last_cpu, cpu) {
            (Some(prev), Some(now)) => parse::cpu_percent(prev, now),
            _ => None,
        };
        if cpu.is_some() {
            self.last_cpu = cpu;
        }
        let data = observe::PollData {
            router: &self.id,
            display_name: self.cfg.name.as_deref(),
            identity: &identity,
            netdev: netdev.as_ref(),
            counters_64_bit: self.counters_64_bit,
            uptime_s,
            router_clock_s: self.router_now,
            mono_ms,
            cpu_percent,
            memory_percent,
            temperatures: &self.temperatures,
            wan_ip,
            clients: &clients,
            at_ms,
            interval: self.cfg.interval,
        };
        let mut observations = vec![observe::router(&data)];
        observations.extend(observe::clients(&data, &mut self.had_rssi));
        Ok(observations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketSample, DeviceKind, TrafficReading, TrafficSample};

    fn obs(i: u8) -> Observation {
        Observation::new(DeviceId::from_mac(MacAddr::new([2, 0, 0, 0, 0, i])), DeviceKind::Client)
    }

    fn with_hours(i: u8) -> Observation {
        let mut o = obs(i);
        o.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Buckets(BucketSample { hours: Vec::new() }),
        });
        o
    }

    #[test]
    fn a_clients_hours_and_apps_join_its_list_entry_ahead_of_its_counter() {
        let mut listed = obs(1);
        listed.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Rate(crate::model::RateSample {
                rx_bps: 0.0,
                tx_bps: 0.0,
                at_ms: 0,
                max_gap: Duration::from_secs(60),
            }),
        });
        let mut apps = obs(1);
        apps.attributes.insert("top_apps_24h".into(), serde_json::json!([]));
        // Client 2 is not in the list (offline, or the list is partial): kept, in front.
        let merged = merge_hours(vec![listed, obs(3)], vec![with_hours(1), apps, with_hours(2)]);
        let devices: Vec<&DeviceId> = merged.iter().map(|o| &o.device).collect();
        assert_eq!(devices, [&obs(2).device, &obs(1).device, &obs(3).device]);
        let one = &merged[1];
        assert!(
            matches!(one.traffic[0].sample, TrafficSample::Buckets(_)),
            "hours first"
        );
        assert!(matches!(one.traffic[1].sample, TrafficSample::Rate(_)));
        assert!(one.attributes.contains_key("top_apps_24h"), "the apps are kept too");
    }
}
