//! A simulated day of the emulated household with MAC churn, bridged by the REAL release binary
//! (`bandwidth2mqtt run`) to a real mosquitto, and checked against the emulators' exact truth
//! (issue 22, "Done when"). Run under libfaketime by `bench/day.sh`, which starts this process
//! with a sped-up clock (`FAKETIME_DONT_RESET=1`): the bridge is its child, so both read the
//! same faked instants (REALTIME and MONOTONIC, and their sleeps are scaled).
//!
//! `day_churn --stamping end|start --random-macs track|group|ignore --bridge BIN --mqtt-port N
//!  --dir DIR [--hours 24] [--churn 10] [--factor F]`
//!
//! Every simulated hour it prints one JSON line (also to DIR/hours.jsonl): the control (real
//! seconds that hour and the bridge's polls that hour), the bridge's RSS/HWM/CPU, state.json,
//! retained topics, devices, churn, and the violations seen so far (a total ahead of the truth
//! or going backwards, checked on every state message). At the end it writes DIR/summary.md:
//! each client's error against the truth.

mod probe;
mod report;
mod world;

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bandwidth2mqtt::demo::household::{DECO_PASSWORD, SERVERS};
use bandwidth2mqtt::emulators::asus::Stamping;

use world::{ROUTER_PASSWORD, World};

pub struct Args {
    pub stamping: Stamping,
    pub random_macs: String,
    pub bridge: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    pub hours: i64,
    pub churn: f64,
    pub factor: f64,
}

fn args() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| a.iter().position(|x| x == name).and_then(|i| a.get(i + 1)).cloned();
    let need = |name: &str| get(name).ok_or(format!("{name} is required"));
    Ok(Args {
        stamping: match get("--stamping").as_deref() {
            Some("start") => Stamping::Start,
            _ => Stamping::End,
        },
        random_macs: get("--random-macs").unwrap_or_else(|| "track".into()),
        bridge: need("--bridge")?.into(),
        port: need("--mqtt-port")?.parse().map_err(|e| format!("--mqtt-port: {e}"))?,
        dir: need("--dir")?.into(),
        hours: get("--hours").and_then(|v| v.parse().ok()).unwrap_or(24),
        churn: get("--churn").and_then(|v| v.parse().ok()).unwrap_or(10.0),
        factor: get("--factor").and_then(|v| v.parse().ok()).unwrap_or(0.0),
    })
}

pub fn now_ms() -> i64 {
    bandwidth2mqtt::sources::now_ms()
}

pub fn sim_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn config(a: &Args, w: &World) -> String {
    let state = a.dir.join("state");
    let mut text = format!(
        r#"[mqtt]
url = "mqtt://127.0.0.1:{port}"
client_id = "bandwidth2mqtt_day"
keep_alive = "300s"                # simulated: a few real seconds at the factors used

[bridge]
state_dir = "{state}"
timezone = "UTC"
random_macs = "{mode}"
forget_after = "1h"

[host]
enabled = false

[asus.home]
url = "{asus}"
username = "admin"
password = "{ROUTER_PASSWORD}"
interval = "30s"
timeout = "120s"                   # simulated: 15 s would be ~0.1 real s at ×120
traffic_analyzer = true

[deco.mesh]
url = "{deco}"
password = "{DECO_PASSWORD}"
interval = "30s"
timeout = "120s"
"#,
        port = a.port,
        state = state.display(),
        mode = a.random_macs,
        asus = w.asus.url(),
        deco = w.deco_url,
    );
    for (spec, (_, server)) in SERVERS.iter().zip(&w.vnstat) {
        text.push_str(&format!(
            "\n[vnstat.{key}]\ncommand = [\"cat\", \"{path}\"]\ninterval = \"60s\"\ntimeout = \"120s\"\nname = \"{name}\"\nmac = \"{mac}\"\n",
            key = spec.key,
            name = spec.name,
            path = server.path().display(),
            mac = spec.mac,
        ));
    }
    text
}

/// `(rx, tx)` by MAC.
pub type Truths = BTreeMap<bandwidth2mqtt::model::MacAddr, (u64, u64)>;

/// What the checks compare with: the truth at the start and at midnight, and the exact
/// clients' truth each simulated minute of the last few (a poll's lag).
pub struct Marks {
    pub deco_base: Truths,
    pub midnight: Option<Snapshot>,
    pub recent: VecDeque<(i64, Truths)>,
}

pub struct Snapshot {
    pub exact: Truths,
    pub deco: Truths,
    pub servers: Vec<(&'static str, u64, u64)>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    std::fs::create_dir_all(&a.dir)?;
    let start_ms = now_ms();
    let wall0 = probe::wall_s();
    let world = World::start(&a.dir, a.stamping, a.churn, start_ms).await?;
    let config_path = a.dir.join("bandwidth2mqtt.toml");
    std::fs::write(&config_path, config(&a, &world))?;
    let world = Arc::new(Mutex::new(world));
    lock(&world).tick(now_ms());
    let seen = probe::watch(a.port, world.clone(), || sim_time(now_ms()));

    let log = std::fs::File::create(a.dir.join("bridge.log"))?;
    let mut bridge = std::process::Command::new(&a.bridge)
        .arg("-c")
        .arg(&config_path)
        .arg("run")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let pid = bridge.id();
    let mut marks = Marks {
        deco_base: lock(&world).deco.ground_truth(),
        midnight: None,
        recent: VecDeque::new(),
    };
    let mut hours = report::Hours::new(&a, pid, wall0, start_ms)?;

    let tick = Duration::from_secs(10);
    let end_ms = start_ms + a.hours * 3_600_000;
    let mut next_minute = start_ms + 60_000;
    let mut next_hour = start_ms + 3_600_000;
    let mut frozen_at: Option<i64> = None;
    let mut polls_at_freeze: Option<u64> = None;
    loop {
        tokio::time::sleep(tick).await;
        let now = now_ms();
        if let Ok(Some(status)) = bridge.try_wait() {
            let _ = writeln!(std::io::stderr(), "day: the bridge exited early: {status}");
            break;
        }
        {
            let mut w = lock(&world);
            let before = w_day(now - 10_000);
            w.tick(now);
            if marks.midnight.is_none() && w_day(now) != before && now > start_ms + 60_000 {
                marks.midnight = Some(Snapshot {
                    exact: w.exact_truth(),
                    deco: w.deco.ground_truth(),
                    servers: w.server_truth(),
                });
            }
            if now >= next_minute {
                next_minute += 60_000;
                let listed = w
                    .exact
                    .iter()
                    .filter(|(_, c)| c.listed)
                    .map(|(m, c)| (*m, (c.rx, c.tx)))
                    .collect();
                marks.recent.push_back((now, listed));
                while marks.recent.len() > 4 {
                    marks.recent.pop_front();
                }
            }
        }
        if now >= next_hour {
            next_hour += 3_600_000;
            hours.hour(&world, &seen, &marks, now).await?;
        }
        if now >= end_ms && frozen_at.is_none() {
            // The end of the day: the ASUS's own clients stop and no one arrives, so the last
            // polls catch every byte; five simulated minutes later everything is compared.
            lock(&world).frozen = true;
            frozen_at = Some(now);
        }
        if let Some(f) = frozen_at {
            // Five simulated minutes and three polls of the live counters after the freeze
            // (a starved bridge polls less often), at most an hour.
            let polls = lock(&world)
                .asus
                .with(|r| r.stats.requests.get("/getTraffic.asp").copied().unwrap_or(0));
            let since = *polls_at_freeze.get_or_insert(polls);
            if (now >= f + 300_000 && polls >= since + 3) || now >= f + 3_600_000 {
                break;
            }
        }
    }
    let summary = hours.finish(&world, &seen, &marks, now_ms()).await?;
    // SIGTERM: the bridge publishes offline and stops.
    // SAFETY: kill(2) on the child this process started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = bridge.wait();
    // A full disk must not kill the run (println! panics when it cannot write).
    let _ = write!(std::io::stdout(), "{summary}");
    Ok(())
}

fn lock(w: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

fn w_day(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}
