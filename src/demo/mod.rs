//! `bandwidth2mqtt demo`: the seed's household emulated on 127.0.0.1 (ASUS + Traffic Analyzer,
//! a Deco mesh in double NAT, three vnstat servers, phones, laptops, a TV, plugs), bridged by the
//! real bridge to a broker, and shown live in the terminal as the broker sees it.
//!
//! Test and demo equipment (cargo feature `demo`): nothing in the bridge depends on it.

pub mod access;
pub mod accuracy;
pub mod broker;
mod broker_front;
mod driver;
pub mod household;
pub mod logging;
pub mod table;
mod watch;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use broker::{BrokerKind, DemoBroker, Lookup};
pub use household::Household;
pub use table::{Row, render};

use crate::bridge::{BridgeError, Parts};
use crate::clock::Clock;
use crate::config::{self, ConfigSource};

/// The demo's base topic: apart from a real bridge's `bandwidth2mqtt` on the same broker.
pub const BASE_TOPIC: &str = "bandwidth2mqtt_demo";
/// Home Assistant's default, so that an HA on the same broker shows the household live.
pub const DISCOVERY_PREFIX: &str = "homeassistant";

/// Devices the household publishes: router, 2 Deco units, 3 servers, 10 Deco clients
/// (3 of them the servers' own NICs), the Deco and 2 clients on the ASUS.
pub const EXPECTED_NAMES: [&str; 6] = [
    "Titan",
    "Beast",
    "Panda",
    "Living Room TV",
    "Anna's Phone",
    "Kitchen Plug",
];

#[derive(Debug, Clone)]
pub struct Options {
    /// Simulated seconds per real second (1 = real time).
    pub speed: f64,
    /// Use this broker (credentials may be in the URL); otherwise the chain in [`broker`].
    pub mqtt_url: Option<String>,
    /// The CA that signed an `mqtts://` broker's certificate, when no system root did.
    pub mqtt_ca_file: Option<PathBuf>,
    /// Where the chain looks; `None` = 127.0.0.1:1883 and the installed mosquitto.
    pub lookup: Option<Lookup>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            speed: 1.0,
            mqtt_url: None,
            mqtt_ca_file: None,
            lookup: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error("cannot start the emulated household: {0}")]
    Household(std::io::Error),
    #[error("the demo's own configuration is invalid (a bug): {0}")]
    Config(#[from] config::ConfigError),
    #[error("cannot write the demo's files in {0}: {1}")]
    Files(PathBuf, std::io::Error),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error("cannot connect the table to the broker: {0}")]
    Watch(String),
}

/// A running demo: household, bridge, broker and the table's subscriber.
pub struct Demo {
    pub broker: DemoBroker,
    pub config_path: PathBuf,
    dir: PathBuf,
    stop: CancellationToken,
    bridge: JoinHandle<Result<(), BridgeError>>,
    driver: JoinHandle<()>,
    watch: watch::Watch,
    pub speed: f64,
}

impl Demo {
    pub async fn start(options: Options) -> Result<Self, DemoError> {
        let dir = household::scratch_dir();
        std::fs::create_dir_all(&dir).map_err(|e| DemoError::Files(dir.clone(), e))?;
        let lookup = options.lookup.clone().unwrap_or_else(|| Lookup {
            default_port: 1883,
            mosquitto: broker::find_mosquitto(),
            dir: dir.join("mosquitto"),
        });
        let speed = if options.speed.is_finite() {
            options.speed.max(1.0)
        } else {
            1.0
        };
        let mut broker = broker::choose(options.mqtt_url.as_deref(), &lookup).await?;
        if broker.kind == BrokerKind::Given {
            broker.access.ca_file = options.mqtt_ca_file.clone();
        }
        // One clock for the household and the bridge: at `--speed N` the bridge's polls, stamps,
        // rates and days run on the same simulated time as the emulators' traffic.
        let clock = if speed > 1.0 {
            Clock::scaled(crate::sources::now_ms(), speed)
        } else {
            Clock::system()
        };
        let mut household = Household::start(&dir, speed, &clock)
            .await
            .map_err(DemoError::Household)?;

        let config_path = dir.join("bandwidth2mqtt-demo.toml");
        let access = broker
            .access
            .config_lines(&dir)
            .map_err(|e| DemoError::Files(dir.clone(), e))?;
        let text = household.config_toml(&broker.url, &access, &dir.join("state"));
        std::fs::write(&config_path, text).map_err(|e| DemoError::Files(config_path.clone(), e))?;
        let loaded = config::load_from(ConfigSource::File(config_path.clone()), BTreeMap::new())?;
        // The table reads back what the bridge publishes, with the same credentials and trust.
        let watch = watch::Watch::start(&broker, BASE_TOPIC, DISCOVERY_PREFIX).map_err(DemoError::Watch)?;

        let stop = CancellationToken::new();
        // The household moves first, so the vnstat documents exist before the first poll.
        let mut driver = driver::Driver::new(&household);
        driver.tick(&mut household);
        let ticking = stop.clone();
        let driver = tokio::spawn(async move {
            let mut every = tokio::time::interval(driver::TICK);
            loop {
                tokio::select! {
                    _ = ticking.cancelled() => return,
                    _ = every.tick() => { driver.tick(&mut household); }
                }
            }
        });
        let bridge = tokio::spawn(crate::bridge::run(Parts::on_clock(loaded, clock), stop.child_token()));
        Ok(Self {
            broker,
            config_path,
            dir,
            stop,
            bridge,
            driver,
            watch,
            speed,
        })
    }

    /// The table's rows, from what the broker has seen so far.
    pub fn rows(&self) -> Vec<Row> {
        self.watch.rows()
    }

    pub fn bridge_state(&self) -> Option<String> {
        self.watch.bridge_state()
    }

    /// The line to paste into another terminal to watch the broker.
    pub fn watch_command(&self) -> String {
        let (host, port) = self.broker.host_port();
        let access = self.broker.access.mosquitto_sub_options(&self.broker.url);
        format!("mosquitto_sub -h {host} -p {port}{access} -t '{BASE_TOPIC}/#' -v")
    }

    /// Stops the bridge (it publishes `offline` and logs out of the routers), the household,
    /// the broker it started, clears the retained messages it left on a broker it did not
    /// start, and removes its files.
    pub async fn stop(mut self) -> Result<(), DemoError> {
        self.stop.cancel();
        let bridge = match self.bridge.await {
            Ok(result) => result.map_err(DemoError::from),
            Err(e) => {
                tracing::error!(error = %e, "The demo's bridge task failed.");
                Ok(())
            }
        };
        let _ = self.driver.await;
        // Give the table's subscriber a moment to see `offline`, then let it go.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.watch.bridge_state().as_deref() != Some("offline") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if matches!(self.broker.kind, BrokerKind::Given | BrokerKind::Running) {
            let cleared = self.watch.clear_retained().await;
            tracing::debug!(topics = cleared, "Cleared the demo's retained messages.");
            // Let the client send them before it disconnects.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        self.watch.stop().await;
        self.broker.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
        bridge
    }
}

/// How the table reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// A terminal: redraw in place every second.
    Terminal,
    /// A pipe or file: the table as plain lines every 10 s.
    Plain,
}

/// Runs the demo until `shutdown`, drawing the table on `out`.
pub async fn run(
    options: Options,
    shutdown: CancellationToken,
    screen: Screen,
    out: &mut (dyn Write + Send),
) -> Result<(), DemoError> {
    let started = Instant::now();
    let demo = Demo::start(options).await?;
    let intro = intro(&demo);
    let _ = write!(out, "{intro}");
    let _ = out.flush();
    // Readiness is checked often (for the start-up time); the table is drawn every second on
    // a terminal, every 5 s as plain lines.
    let draw_every = match screen {
        Screen::Terminal => 5,
        Screen::Plain => 25,
    };
    let mut ready_after: Option<Duration> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        ticks += 1;
        let rows = demo.rows();
        if ready_after.is_none() && household_published(&rows) {
            ready_after = Some(started.elapsed());
            if screen == Screen::Plain {
                let _ = writeln!(
                    out,
                    "\nThe household is on the broker: {} devices after {:.1} s.",
                    rows.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        } else if ticks % draw_every != 1 {
            continue;
        }
        let status = status_line(started.elapsed(), demo.speed, ready_after, rows.len());
        let frame = match screen {
            // Home, clear below: the table replaces itself; the intro stays on top.
            Screen::Terminal => format!("\x1b[H\x1b[2J{intro}\n{status}\n\n{}", render(&rows)),
            Screen::Plain => format!("\n{status}\n{}", render(&rows)),
        };
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }
    let _ = writeln!(out, "\nStopping the demo…");
    let _ = out.flush();
    demo.stop().await
}

/// Whether every expected device has published totals.
pub fn household_published(rows: &[Row]) -> bool {
    EXPECTED_NAMES
        .iter()
        .all(|name| rows.iter().any(|r| r.name == *name && r.total.0.is_some()))
}

fn intro(demo: &Demo) -> String {
    let home_assistant = match demo.broker.kind {
        BrokerKind::Given | BrokerKind::Running => {
            "A Home Assistant on this broker shows the household (MQTT discovery, homeassistant/) until Ctrl-C."
        }
        BrokerKind::Mosquitto | BrokerKind::Embedded => {
            "To see it in Home Assistant, run the demo with --mqtt-url pointing at the broker your Home Assistant uses."
        }
    };
    format!(
        "bandwidth2mqtt demo — an emulated household (ASUS + Traffic Analyzer → Deco mesh → servers, phones, TV, plugs)\n\
         Broker: {}{} ({})\n\
         Watch it: {}\n\
         {home_assistant}\n\
         The bridge's configuration: {}\n\
         Ctrl-C stops everything the demo started.\n",
        demo.broker.url,
        demo.broker
            .access
            .username
            .as_ref()
            .map(|u| format!(" as user {u}"))
            .unwrap_or_default(),
        demo.broker.kind.describe(),
        demo.watch_command(),
        demo.config_path.display(),
    )
}

fn status_line(elapsed: Duration, speed: f64, ready: Option<Duration>, devices: usize) -> String {
    let clock = if speed > 1.0 {
        format!("simulated time ×{speed}")
    } else {
        "real time".into()
    };
    let ready = match ready {
        Some(t) => format!("household published after {:.1} s", t.as_secs_f64()),
        None => "waiting for the first polls…".into(),
    };
    format!(
        "running {} s, {clock}, {devices} devices, {ready}. ↓ = download (rx), ↑ = upload (tx); — = not published (yet).",
        elapsed.as_secs()
    )
}
