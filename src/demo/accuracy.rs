//! A simulated day of the seed household on one clock, to measure how close the Deco clients'
//! totals are to what really crossed the network: raw (integrated rates) and reconciled with
//! the uplink the ASUS counts (household/reconcile.rs).
//!
//! The Deco emulator runs over HTTP on 127.0.0.1 and the real Deco source polls it every 30 s
//! (± 1.5 s); every byte its clients move is booked, on the same clock, into the ASUS
//! emulator's Traffic Analyzer database as traffic of the Deco's WAN MAC (cut exactly at hour
//! boundaries, as the router stamps rows), and into the servers' own counters (vnstat). The
//! household gets the polls as the bridge would hand them over. Used by a test (goals) and an
//! example (the table in README).

use std::collections::BTreeMap;
use std::time::Duration;

use super::household::{DECO_PASSWORD, DECO_WAN, SERVERS, deco_clients};
use crate::accounting::{PersistedState, Totals};
use crate::config::{DecoSettings, MacList, Secret, Settings, VnstatSettings};
use crate::emulators::asus::TrafficDb;
use crate::emulators::deco::{self, Clock, DecoEmulator, EmulatorConfig};
use crate::household::Household;
use crate::model::{
    BucketSample, CounterSample, DeviceId, DeviceKind, LiveSample, MacAddr, Observation, TrafficReading, TrafficSample,
    WrapRule,
};
use crate::sources::asus::row_stamps::RowStamps;
use crate::sources::asus::traffic_analyzer::label_hours;
use crate::sources::deco::DecoSource;
use crate::sources::deco::names::decode_name;
use crate::sources::{Source, SourceKind};

/// 2026-01-01 00:00 UTC.
pub const START_MS: i64 = 1_767_225_600_000;
const HOUR_MS: i64 = 3_600_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct DayOptions {
    pub hours: i64,
    pub seed: u64,
    pub interval: Duration,
    /// The Deco does not answer over `[from, from + len)` (ms after the start).
    pub outage: Option<(i64, i64)>,
    /// The unit the Deco really uses; the bridge is configured with the default (kbit/s).
    pub true_unit: crate::config::SpeedUnit,
    /// The ASUS also has live per-client counters (Adaptive QoS), read every 30 s.
    pub live_uplink: bool,
}

impl Default for DayOptions {
    fn default() -> Self {
        Self {
            hours: 24,
            seed: 1,
            interval: Duration::from_secs(30),
            // 30 minutes without the Deco in the evening.
            outage: Some((19 * HOUR_MS + 10 * 60_000, 30 * 60_000)),
            true_unit: crate::config::SpeedUnit::KbitPerS,
            live_uplink: true,
        }
    }
}

/// One client's bytes over the day: `(rx, tx)` each.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub name: String,
    pub truth: (u64, u64),
    pub raw: (u64, u64),
    pub reconciled: (u64, u64),
}

#[derive(Debug, Clone)]
pub struct DayReport {
    pub options: DayOptions,
    /// The Deco's estimated clients (servers are counted exactly by vnstat).
    pub clients: Vec<ClientRow>,
    /// Every `source` key the reconciled clients' states carried at the end.
    pub sources: Vec<String>,
}

/// Relative error of `estimate` against `truth` (0.01 = 1 %).
pub fn error(estimate: u64, truth: u64) -> f64 {
    if truth == 0 {
        return if estimate == 0 { 0.0 } else { f64::INFINITY };
    }
    (estimate as f64 - truth as f64) / truth as f64
}

impl DayReport {
    /// Errors of the sums over all clients, both directions: (raw, reconciled).
    pub fn total_error(&self) -> (f64, f64) {
        let sum = |f: fn(&ClientRow) -> (u64, u64)| self.clients.iter().map(|c| f(c).0 + f(c).1).sum::<u64>();
        let truth = sum(|c| c.truth);
        (error(sum(|c| c.raw), truth), error(sum(|c| c.reconciled), truth))
    }

    /// Worst single-client error (rx + tx) among clients that moved at least 10 MB.
    pub fn worst_error(&self) -> (f64, f64) {
        let mut worst = (0.0f64, 0.0f64);
        for c in self.clients.iter().filter(|c| c.truth.0 + c.truth.1 >= 10_000_000) {
            let t = c.truth.0 + c.truth.1;
            worst.0 = worst.0.max(error(c.raw.0 + c.raw.1, t).abs());
            worst.1 = worst.1.max(error(c.reconciled.0 + c.reconciled.1, t).abs());
        }
        worst
    }

    /// The table as README shows it.
    pub fn table(&self) -> String {
        let mb = |b: u64| format!("{:.1}", b as f64 / 1e6);
        let pct = |e: f64| format!("{:+.1} %", e * 100.0);
        let mut out = String::from(
            "| client | true MB | raw MB | raw error | reconciled MB | reconciled error |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for c in &self.clients {
            let t = c.truth.0 + c.truth.1;
            let (r, k) = (c.raw.0 + c.raw.1, c.reconciled.0 + c.reconciled.1);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                c.name,
                mb(t),
                mb(r),
                pct(error(r, t)),
                mb(k),
                pct(error(k, t))
            ));
        }
        let (raw, rec) = self.total_error();
        let (wraw, wrec) = self.worst_error();
        out.push_str(&format!(
            "| **all clients** | | | **{}** | | **{}** |\n\nWorst client above 10 MB: raw {:.1} %, reconciled {:.1} %.\n",
            pct(raw),
            pct(rec),
            wraw * 100.0,
            wrec * 100.0
        ));
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DayError {
    #[error("emulator: {0}")]
    Emulator(String),
}

fn settings(url: &str, interval: Duration) -> Settings {
    let mut s = Settings::default();
    for server in &SERVERS {
        s.vnstat.insert(
            server.key.to_owned(),
            VnstatSettings {
                name: Some(server.name.to_owned()),
                mac: MacList(vec![server.mac]),
                ..VnstatSettings::default()
            },
        );
    }
    s.deco.insert(
        "mesh".into(),
        DecoSettings {
            url: url.to_owned(),
            password: Some(Secret::new(DECO_PASSWORD)),
            interval,
            timeout: Duration::from_secs(10),
            ..DecoSettings::default()
        },
    );
    s
}

/// A vnstat reading of one server: its history plus what it moved.
fn vnstat(server: usize, truth: (u64, u64), at_ms: i64) -> Observation {
    // `at_ms`: when vnstat last saved its database, as its JSON says.
    let spec = &SERVERS[server];
    let mut o = Observation::new(DeviceId::slugify_or_unnamed(spec.key), DeviceKind::Server);
    o.info.name = Some(spec.name.to_owned());
    o.info.macs.push(spec.mac);
    o.online = Some(true);
    o.traffic.push(TrafficReading {
        interface: Some(spec.iface.to_owned()),
        sample: TrafficSample::Counter(CounterSample {
            rx: spec.history.0 + truth.0,
            tx: spec.history.1 + truth.1,
            epoch: Some("db".into()),
            at_ms,
            wrap: WrapRule::Never,
            rate_window: Duration::from_secs(600),
        }),
    });
    o
}

/// The ASUS's view: itself and the Deco's WAN MAC with its live counter (`live`: bytes since
/// the start) and, with `hours`, the Traffic Analyzer's last 24 hours.
fn asus(db: &TrafficDb, now_ms: i64, live: Option<(u64, u64)>, hours: bool) -> Vec<Observation> {
    let mut router = Observation::new(DeviceId::slugify_or_unnamed("home"), DeviceKind::Router);
    router
        .info
        .macs
        .push(MacAddr::new([0x04, 0x42, 0x1a, 0x10, 0x20, 0x30]));
    router.online = Some(true);
    let mut deco = Observation::new(DeviceId::from_mac(DECO_WAN), DeviceKind::Client);
    deco.info.macs.push(DECO_WAN);
    deco.info.via = Some(router.device.clone());
    deco.online = Some(true);
    if let Some((rx, tx)) = live {
        deco.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Live(LiveSample {
                counter: CounterSample {
                    rx,
                    tx,
                    epoch: Some("dpi".into()),
                    at_ms: now_ms,
                    wrap: WrapRule::Never,
                    rate_window: Duration::from_secs(90),
                },
                clock_s: now_ms / 1000,
            }),
        });
    }
    if !hours {
        return vec![router, deco];
    }
    let now_s = now_ms / 1000;
    let end = now_s - now_s.rem_euclid(3600);
    let wan = DECO_WAN.to_string().to_uppercase();
    // Asked as the bridge asks the DNS pages (the window's last bucket holds the rows written
    // in this hour) and filed as it files them (rows stamped at the end of their hour,
    // asus.md §6.4).
    let pairs = db.hour_buckets_dns(Some(&wan), end + 3600);
    let hours = label_hours(&pairs, end + 3600 - 31, RowStamps::End).unwrap_or_default();
    deco.traffic.push(TrafficReading {
        interface: None,
        sample: TrafficSample::Buckets(BucketSample { hours }),
    });
    vec![router, deco]
}

/// Runs the day; returns each estimated client's truth, raw and reconciled bytes.
pub async fn simulate_day(options: DayOptions) -> Result<DayReport, DayError> {
    let clock = Clock::simulated(START_MS);
    let clients = deco_clients();
    let names: BTreeMap<MacAddr, String> = clients
        .iter()
        .map(|c| (c.mac, decode_name(&c.name_field).unwrap_or_else(|| c.mac.to_string())))
        .collect();
    let mut mesh = EmulatorConfig::new(DECO_PASSWORD, deco::home().0, clients, clock.clone());
    mesh.wan.mac = DECO_WAN;
    mesh.seed = options.seed;
    mesh.speed_unit = options.true_unit;
    let emulator = DecoEmulator::new(mesh).map_err(|e| DayError::Emulator(e.to_string()))?;
    let server = emulator
        .serve(0, false)
        .await
        .map_err(|e| DayError::Emulator(e.to_string()))?;
    let settings = settings(&server.url(), options.interval);
    let deco_settings = settings.deco.get("mesh").cloned().unwrap_or_default();
    let mut source = DecoSource::with_clock("mesh", &deco_settings, clock.bridge_clock());
    let mut feeds = vec![
        (SourceKind::Asus.feed("home"), "asus"),
        (SourceKind::Deco.feed("mesh"), "deco"),
    ];
    for s in &SERVERS {
        feeds.push((SourceKind::Vnstat.feed(s.key), "vnstat"));
    }
    let mut household = Household::new(&settings, feeds, PersistedState::default());
    let mut db = TrafficDb::new(options.seed);
    let wan = DECO_WAN.to_string();

    let start_truth = emulator.ground_truth();
    let mut last_truth = start_truth.clone();
    let end_ms = START_MS + options.hours * HOUR_MS;
    let interval = i64::try_from(options.interval.as_millis()).unwrap_or(30_000);
    let mut lcg: u64 = 0x2545_f491_4f6c_dd1d ^ options.seed;
    // Next time of each event. vnstat saves its database every 5 minutes and is read every
    // minute; the ASUS is read every 30 s, 13 s after the Deco; its analyzer every 10 minutes.
    let (mut deco_at, mut save_at, mut vnstat_at) = (START_MS, START_MS, START_MS);
    let (mut live_at, mut ta_at) = (START_MS + 13_000, START_MS + 5 * 60_000);
    let mut saved: BTreeMap<MacAddr, (u64, u64)> = BTreeMap::new();
    let mut saved_at = START_MS;
    let mut uplink = (0u64, 0u64);
    let mut now = START_MS;
    loop {
        // Carry what the clients moved since the last event up the network: the ASUS counts
        // all of it as the Deco's. Events fall on every hour boundary (vnstat saves every 5
        // minutes), so each hour's row holds exactly that hour's bytes.
        let truth = emulator.ground_truth();
        for (mac, &(rx, tx)) in &truth {
            let (prx, ptx) = last_truth.get(mac).copied().unwrap_or((rx, tx));
            let (drx, dtx) = (rx.saturating_sub(prx), tx.saturating_sub(ptx));
            if drx + dtx > 0 {
                db.record(&wan, "General HTTPS", (now - 1) / 1000, drx, dtx);
                uplink = (uplink.0 + drx, uplink.1 + dtx);
            }
        }
        last_truth = truth;
        if now >= save_at {
            saved = last_truth.clone();
            saved_at = now;
            save_at += 5 * 60_000;
        }
        if now >= vnstat_at {
            for (i, spec) in SERVERS.iter().enumerate() {
                let end = saved.get(&spec.mac).copied().unwrap_or_default();
                let begin = start_truth.get(&spec.mac).copied().unwrap_or_default();
                let obs = vnstat(i, (end.0 - begin.0, end.1 - begin.1), saved_at);
                household.apply(spec.key, vec![obs], now);
            }
            vnstat_at += 60_000;
        }
        let ta = now >= ta_at || now >= end_ms;
        let live = options.live_uplink && now >= live_at;
        if ta || live {
            db.catch_up(now / 1000);
            household.apply("home", asus(&db, now, live.then_some(uplink), ta), now);
            if ta {
                ta_at += 10 * 60_000;
            }
            if live {
                live_at += 30_000;
            }
        }
        if now >= deco_at {
            let down = options
                .outage
                .is_some_and(|(from, len)| (START_MS + from..START_MS + from + len).contains(&now));
            if down {
                household.source_failed("mesh");
            } else if let Ok(obs) = source.poll().await {
                household.apply("mesh", obs, now);
            }
            lcg = lcg
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let jitter = i64::try_from((lcg >> 33) % 3001).unwrap_or(0) - 1500;
            deco_at = now + interval + jitter;
        }
        if now >= end_ms {
            break;
        }
        let live_next = if options.live_uplink { live_at } else { i64::MAX };
        let next = [deco_at, save_at, vnstat_at, live_next, ta_at, end_ms]
            .into_iter()
            .min()
            .unwrap_or(end_ms)
            .max(now + 1);
        clock.advance(Duration::from_millis(u64::try_from(next - now).unwrap_or(0)));
        now = next;
    }
    // The analyzer writes the last hour's row at the top of the next hour (asus.md §6.4): read
    // it two minutes later, with no traffic since, so the day is reconciled to its end.
    let after = end_ms + 120_000;
    db.catch_up(after / 1000);
    household.apply(
        "home",
        asus(&db, after, options.live_uplink.then_some(uplink), true),
        after,
    );
    source.close().await;
    drop(server);

    let server_macs: Vec<MacAddr> = SERVERS.iter().map(|s| s.mac).collect();
    let mut rows = Vec::new();
    let mut sources = Vec::new();
    for (mac, end) in &last_truth {
        if server_macs.contains(mac) {
            continue;
        }
        let begin = start_truth.get(mac).copied().unwrap_or_default();
        let Some(device) = household.device(&DeviceId::from_mac(*mac)) else {
            continue;
        };
        let raw = device.views.get("mesh").map(|v| v.totals).unwrap_or_default();
        let Totals { rx, tx } = device.totals;
        sources.extend(device.headline_source.clone());
        rows.push(ClientRow {
            name: names.get(mac).cloned().unwrap_or_else(|| mac.to_string()),
            truth: (end.0 - begin.0, end.1 - begin.1),
            raw: (raw.rx, raw.tx),
            reconciled: (rx, tx),
        });
    }
    sources.sort();
    sources.dedup();
    Ok(DayReport {
        options,
        clients: rows,
        sources,
    })
}
