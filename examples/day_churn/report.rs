//! The hourly line and the closing table of the day run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bandwidth2mqtt::demo::household::{SERVERS, deco_clients};
use bandwidth2mqtt::model::MacAddr;
use serde_json::json;

use super::probe::{self, Seen, id_of};
use super::world::{CONSOLE, Kind, World};
use super::{Args, Marks, sim_time};

/// The Deco's main node (its LAN MAC), where the ASUS's view of the Deco's WAN MAC lands.
const DECO_NODE: &str = "f0090dfa297c";

pub struct Hours {
    pid: u32,
    port: u16,
    state: PathBuf,
    out: std::fs::File,
    dir: PathBuf,
    wall0: f64,
    start_ms: i64,
    last_wall: f64,
    last_requests: BTreeMap<String, u64>,
    n: u64,
    lines: Vec<serde_json::Value>,
    header: String,
}

fn pct(published: u64, truth: u64) -> f64 {
    if truth == 0 {
        return if published == 0 { 0.0 } else { f64::INFINITY };
    }
    (published as f64 - truth as f64) / truth as f64 * 100.0
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Exact clients: (worst error % beyond the poll lag, clients checked, clients beyond 0.1 %).
/// Within the lag = between the truth a few minutes ago and the truth now.
fn exact_errors(w: &World, seen: &Seen, marks: &Marks, kinds: &[Kind]) -> (f64, u64, u64) {
    let old = marks.recent.front().map(|(_, m)| m);
    let (mut worst, mut n, mut beyond) = (0.0f64, 0, 0);
    for (mac, c) in w.exact.iter().filter(|(_, c)| c.listed && kinds.contains(&c.kind)) {
        let Some(p) = seen.states.get(&id_of(mac)) else {
            continue;
        };
        n += 1;
        let (now, p) = (c.rx + c.tx, p.rx + p.tx);
        let before = old.and_then(|o| o.get(mac)).map_or(0, |(rx, tx)| rx + tx);
        let err = if p > now {
            pct(p, now)
        } else if p < before {
            pct(p, before)
        } else {
            0.0
        };
        if err.abs() > 0.1 {
            beyond += 1;
        }
        if err.abs() > worst.abs() {
            worst = err;
        }
    }
    (worst, n, beyond)
}

/// Deco clients (estimated, reconciled): worst error % among those that moved ≥ 10 MB.
fn deco_errors(w: &World, seen: &Seen, marks: &Marks) -> f64 {
    let truth = w.deco.ground_truth();
    let mut worst = 0.0f64;
    for spec in deco_clients().iter().skip(SERVERS.len()) {
        let (Some(t), Some(p)) = (truth.get(&spec.mac), seen.states.get(&id_of(&spec.mac))) else {
            continue;
        };
        let base = marks.deco_base.get(&spec.mac).copied().unwrap_or((0, 0));
        let t = t.0 - base.0 + t.1 - base.1;
        if t >= 10_000_000 {
            let e = pct(p.rx + p.tx, t);
            if e.abs() > worst.abs() {
                worst = e;
            }
        }
    }
    worst
}

impl Hours {
    pub fn new(a: &Args, pid: u32, wall0: f64, start_ms: i64) -> std::io::Result<Self> {
        let header = format!(
            "stamping {:?}, random_macs = \"{}\", forget_after = \"1h\", churn {}/min, factor {}",
            a.stamping, a.random_macs, a.churn, a.factor
        );
        Ok(Self {
            pid,
            port: a.port,
            state: a.dir.join("state").join("state.json"),
            out: std::fs::File::create(a.dir.join("hours.jsonl"))?,
            dir: a.dir.clone(),
            wall0,
            start_ms,
            last_wall: wall0,
            last_requests: BTreeMap::new(),
            n: 0,
            lines: Vec::new(),
            header,
        })
    }

    pub async fn hour(
        &mut self,
        world: &Arc<Mutex<World>>,
        seen: &Arc<Mutex<Seen>>,
        marks: &Marks,
        now: i64,
    ) -> std::io::Result<()> {
        self.n += 1;
        let wall = probe::wall_s();
        let retained = probe::retained(self.port, self.n).await;
        let (rss, hwm, cpu) = probe::memory(self.pid);
        let state_json = std::fs::metadata(&self.state).map_or(0, |m| m.len());
        let line = {
            let w = lock(world);
            let s = lock(seen);
            let requests = w.asus.with(|r| r.stats.requests.clone());
            let delta = |path: &str| {
                requests.get(path).copied().unwrap_or(0) - self.last_requests.get(path).copied().unwrap_or(0)
            };
            let ta: u64 = ["/getWanTraffic.asp", "/getAppTraffic.asp"]
                .iter()
                .map(|p| delta(p))
                .sum();
            let fixed = exact_errors(&w, &s, marks, &[Kind::Steady, Kind::Bursty, Kind::Uplink]);
            let churn = exact_errors(&w, &s, marks, &[Kind::Churn]);
            let line = json!({
                "hour": self.n,
                "sim": sim_time(now),
                "wall_s": (wall - self.last_wall),
                "factor_measured": 3600.0 / (wall - self.last_wall).max(1e-9),
                "live_polls": delta("/getTraffic.asp"),
                "appget": delta("/appGet.cgi"),
                "ta_requests": ta,
                "rss_kb": rss, "hwm_kb": hwm, "cpu_s": cpu,
                "state_json": state_json,
                "retained": retained.0, "configs": retained.1, "retained_bytes": retained.2,
                "largest_retained": retained.3,
                "states": s.states.len(),
                "group_members": s.states.get("private_devices").and_then(|p| p.members),
                "churn_seen": w.churn_seen, "churn_listed": w.churn_listed(),
                "live_entries": w.asus.with(|r| r.ta.live.len()),
                "ahead": s.ahead, "backwards": s.backwards,
                "removed_events": s.removed.values().sum::<u32>(),
                "console_removed": s.removed.get(&id_of(&CONSOLE)).copied().unwrap_or(0),
                "fixed_worst_pct": fixed.0, "fixed_beyond": fixed.2,
                "churn_checked": churn.1, "churn_worst_pct": churn.0, "churn_beyond": churn.2,
                "deco_worst_pct": deco_errors(&w, &s, marks),
                // A starved bridge's requests time out: counted so far in its log.
                "failures": std::fs::read_to_string(self.dir.join("bridge.log")).map_or(0, |t| t.matches("failed").count()),
            });
            self.last_requests = requests;
            line
        };
        self.last_wall = wall;
        let _ = writeln!(std::io::stdout(), "{line}");
        let _ = writeln!(self.out, "{line}");
        self.lines.push(line);
        Ok(())
    }

    /// The closing tables (also written to DIR/summary.md).
    pub async fn finish(
        &mut self,
        world: &Arc<Mutex<World>>,
        seen: &Arc<Mutex<Seen>>,
        marks: &Marks,
        now: i64,
    ) -> std::io::Result<String> {
        let wall = probe::wall_s() - self.wall0;
        let sim_s = (now - self.start_ms) as f64 / 1000.0;
        let (rss, hwm, cpu) = probe::memory(self.pid);
        let w = lock(world);
        let s = lock(seen);
        let requests = w.asus.with(|r| r.stats.requests.clone());
        let polls = requests.get("/getTraffic.asp").copied().unwrap_or(0);
        let mut out = format!("### {}\n\n", self.header);
        out += &format!(
            "Control: {sim_s:.0} simulated s in {wall:.0} real s (×{:.1}); the bridge read the live counters {polls} times \
             (every 30 simulated s: {:.0} expected; {:.0} if its clock were not sped up). \
             Bridge at the end: RSS {:.1} MB, peak {:.1} MB, CPU {cpu:.0} s.\n\n",
            sim_s / wall,
            sim_s / 30.0,
            wall / 30.0,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        out += "| client | counted by | true MB | published MB | error | raw Deco estimate error | today true MB | today error |\n|---|---|---:|---:|---:|---:|---:|---:|\n";
        let midnight = marks.midnight.as_ref();
        let mut row = |name: &str,
                       by: &str,
                       truth: (u64, u64),
                       published: Option<&probe::Published>,
                       today: Option<(u64, u64)>| {
            let t = truth.0 + truth.1;
            let (p, e) = match published {
                Some(p) => (
                    format!("{:.3}", (p.rx + p.tx) as f64 / 1e6),
                    format!("{:+.4} %", pct(p.rx + p.tx, t)),
                ),
                None => ("—".into(), "not published".into()),
            };
            let (tt, te) = match (today, published.and_then(|p| Some(p.rx_today? + p.tx_today?))) {
                (Some(d), Some(pd)) => (
                    format!("{:.3}", (d.0 + d.1) as f64 / 1e6),
                    format!("{:+.4} %", pct(pd, d.0 + d.1)),
                ),
                (Some(d), None) => (format!("{:.3}", (d.0 + d.1) as f64 / 1e6), "—".into()),
                _ => ("—".into(), "—".into()),
            };
            let raw = published
                .and_then(|p| p.raw)
                .map_or("—".into(), |r| format!("{:+.2} %", pct(r, t)));
            out += &format!(
                "| {name} | {by} | {:.3} | {p} | {e} | {raw} | {tt} | {te} |\n",
                t as f64 / 1e6
            );
        };
        for (mac, c) in w.exact.iter().filter(|(_, c)| c.kind != Kind::Churn) {
            let today = midnight
                .and_then(|m| m.exact.get(mac))
                .map(|b| (c.rx - b.0, c.tx - b.1));
            // The Deco's WAN MAC is merged into its main node's device.
            let (by, published) = if c.kind == Kind::Uplink {
                (
                    "ASUS live (Deco uplink, on the main node's device)",
                    s.states.get(&id_of(mac)).or(s.states.get(DECO_NODE)),
                )
            } else {
                ("ASUS live", s.states.get(&id_of(mac)))
            };
            row(
                &format!("{} ({:?})", c.name, c.kind),
                by,
                (c.rx, c.tx),
                published,
                today,
            );
        }
        let truth = w.deco.ground_truth();
        let mut specs = deco_clients();
        specs.push(bandwidth2mqtt::emulators::deco::ClientSpec::new(
            CONSOLE,
            "Game Console",
            1,
            "wired",
            bandwidth2mqtt::emulators::deco::Profile::Laptop,
        ));
        for spec in specs.iter().skip(SERVERS.len()) {
            let (t, base) = (
                truth.get(&spec.mac).copied().unwrap_or((0, 0)),
                marks.deco_base.get(&spec.mac).copied().unwrap_or((0, 0)),
            );
            let today = midnight
                .and_then(|m| m.deco.get(&spec.mac))
                .map(|b| (t.0 - b.0, t.1 - b.1));
            let name = bandwidth2mqtt::sources::deco::names::decode_name(&spec.name_field).unwrap_or_default();
            row(
                &name,
                "Deco, reconciled",
                (t.0 - base.0, t.1 - base.1),
                s.states.get(&id_of(&spec.mac)),
                today,
            );
        }
        // All estimated Deco clients together (what the uplink reconciles).
        let (mut sum_t, mut sum_p, mut sum_today_t, mut sum_today_p, mut sum_raw) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for spec in specs.iter().skip(SERVERS.len()) {
            let (t, base) = (
                truth.get(&spec.mac).copied().unwrap_or((0, 0)),
                marks.deco_base.get(&spec.mac).copied().unwrap_or((0, 0)),
            );
            sum_t += t.0 - base.0 + t.1 - base.1;
            if let Some(m) = midnight.and_then(|m| m.deco.get(&spec.mac)) {
                sum_today_t += t.0 - m.0 + t.1 - m.1;
            }
            if let Some(p) = s.states.get(&id_of(&spec.mac)) {
                sum_p += p.rx + p.tx;
                sum_raw += p.raw.unwrap_or(p.rx + p.tx);
                sum_today_p += p.rx_today.unwrap_or(0) + p.tx_today.unwrap_or(0);
            }
        }
        let sum = probe::Published {
            rx: sum_p,
            tx: 0,
            rx_today: Some(sum_today_p),
            tx_today: Some(0),
            raw: Some(sum_raw),
            ..Default::default()
        };
        row(
            "all Deco clients (sum)",
            "Deco, reconciled",
            (sum_t, 0),
            Some(&sum),
            midnight.map(|_| (sum_today_t, 0)),
        );
        for (key, rx, tx) in w.server_truth() {
            let today = midnight
                .and_then(|m| m.servers.iter().find(|x| x.0 == key))
                .map(|b| (rx - b.1, tx - b.2));
            // A server's `views.mesh` is the Deco's estimate since the bridge started, not comparable.
            let exact = s.states.get(key).map(|p| probe::Published { raw: None, ..*p });
            row(key, "vnstat (history included)", (rx, tx), exact.as_ref(), today);
        }
        // The churn: each private MAC's last published total (totals never go backwards, so
        // the highest) against its truth.
        let churn: Vec<(&MacAddr, _)> = w.exact.iter().filter(|(_, c)| c.kind == Kind::Churn).collect();
        let group_truth = churn.iter().fold((0, 0), |a, (_, c)| (a.0 + c.rx, a.1 + c.tx));
        if let Some(p) = s.states.get("private_devices") {
            row(
                "Private-address devices (group)",
                "ASUS live, summed",
                group_truth,
                Some(p),
                None,
            );
        }
        let (mut published, mut exact, mut beyond, mut ahead, mut worst) = (0, 0, 0, 0, 0.0f64);
        for (mac, c) in &churn {
            let Some(&(rx, tx)) = s.high.get(&id_of(mac)) else {
                continue;
            };
            published += 1;
            let e = pct(rx + tx, c.rx + c.tx);
            exact += u64::from(rx == c.rx && tx == c.tx);
            beyond += u64::from(e.abs() > 0.1);
            ahead += u64::from(rx > c.rx || tx > c.tx);
            if e.abs() > worst.abs() {
                worst = e;
            }
        }
        let removed_churn = s
            .removed
            .iter()
            .filter(|(id, _)| probe::mac_of(id).is_some_and(|m| w.exact.get(&m).is_some_and(|c| c.kind == Kind::Churn)))
            .count();
        let removed_other: Vec<String> = s
            .removed
            .iter()
            .filter(|(id, _)| {
                !probe::mac_of(id).is_some_and(|m| w.exact.get(&m).is_some_and(|c| c.kind == Kind::Churn))
            })
            .map(|(id, n)| format!("{id} ×{n}"))
            .collect();
        out += &format!(
            "\nChurn: {} private MACs over the day, {published} published as devices; of those {exact} exact to the byte, \
             {beyond} off by more than 0.1 %, {ahead} ahead of the truth, worst {worst:+.4} %; {removed_churn} removed (`device_removed`). \
             Other devices removed: {}. Violations seen on every state message: {} ahead of the truth, {} totals going backwards; \
             largest state message {} B.\n",
            churn.len(),
            if removed_other.is_empty() {
                "none".to_owned()
            } else {
                removed_other.join(", ")
            },
            s.ahead,
            s.backwards,
            s.largest_state,
        );
        for line in &s.lines {
            out += &format!("- `{line}`\n");
        }
        out += "\n| hour | sim | real s | live polls | TA req | RSS MB | HWM MB | CPU s | state.json kB | retained | configs | states | group members | churn seen / listed | live entries | ahead | backwards | fixed worst % | churn worst % (beyond 0.1 %) | Deco worst % | failed requests |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|\n";
        for l in &self.lines {
            out += &format!(
                "| {} | {} | {:.1} | {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {:+.3} | {:+.3} ({}) | {:+.2} | {} |\n",
                l["hour"],
                l["sim"].as_str().unwrap_or(""),
                l["wall_s"].as_f64().unwrap_or(0.0),
                l["live_polls"],
                l["ta_requests"],
                l["rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
                l["hwm_kb"].as_f64().unwrap_or(0.0) / 1024.0,
                l["cpu_s"].as_f64().unwrap_or(0.0),
                l["state_json"].as_f64().unwrap_or(0.0) / 1000.0,
                l["retained"],
                l["configs"],
                l["states"],
                l["group_members"].as_u64().map_or("—".into(), |m| m.to_string()),
                l["churn_seen"],
                l["churn_listed"],
                l["live_entries"],
                l["ahead"],
                l["backwards"],
                l["fixed_worst_pct"].as_f64().unwrap_or(0.0),
                l["churn_worst_pct"].as_f64().unwrap_or(0.0),
                l["churn_beyond"],
                l["deco_worst_pct"].as_f64().unwrap_or(0.0),
                l["failures"],
            );
        }
        std::fs::write(self.dir.join("summary.md"), &out)?;
        let dump: String = s
            .states
            .iter()
            .map(|(id, p)| format!("{id} {} {} {:?} {:?}\n", p.rx, p.tx, p.rx_today, p.tx_today))
            .collect();
        std::fs::write(self.dir.join("states.txt"), dump)?;
        Ok(out)
    }
}
