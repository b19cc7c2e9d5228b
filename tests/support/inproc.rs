//! The bridge started in-process (`bridge::Parts` + `run_until`) on a test's clock, usually a
//! `ManualClock`: the test moves time, each source polls once per jump of at least its interval,
//! and [`InProcess::step`] returns once the bridge has handled that poll (its `/metrics` poll
//! counter), so a test never sleeps for time to pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bandwidth2mqtt::bridge::{self, BridgeError, Parts, Stopped};
use bandwidth2mqtt::clock::ManualClock;
use bandwidth2mqtt::config::{self, ConfigSource};
use bandwidth2mqtt::publish::Connector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::WAIT;
use super::broker::free_port;

/// One bridge running in this process; `toml` is its whole configuration but `[metrics]`.
pub struct InProcess {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<Stopped, BridgeError>>,
    metrics: u16,
}

impl InProcess {
    pub fn start(dir: &Path, toml: &str, clock: &ManualClock) -> Self {
        Self::start_on(dir, toml, clock, None)
    }

    /// As [`InProcess::start`], on another MQTT link than rumqttc (the in-memory broker).
    pub fn start_on(dir: &Path, toml: &str, clock: &ManualClock, link: Option<Arc<dyn Connector>>) -> Self {
        let metrics = free_port();
        let text = format!("{toml}\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:{metrics}\"\n");
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        let loaded = config::load_from(ConfigSource::File(path), BTreeMap::new()).expect("valid config");
        let stop = CancellationToken::new();
        let mut parts = Parts::on_clock(loaded, clock.clock());
        if let Some(link) = link {
            parts = parts.with_link(link);
        }
        let task = tokio::spawn(bridge::run_until(parts, stop.clone()));
        Self { stop, task, metrics }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let stopped = self.task.await.expect("bridge task");
        assert!(matches!(stopped, Ok(Stopped::Shutdown)), "{stopped:?}");
    }

    /// Polls of `source` the bridge has handled (published), from its `/metrics`.
    pub async fn polls(&self, source: &str) -> u64 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics)).await else {
            return 0;
        };
        let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).await.is_err() {
            return 0;
        }
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text).await;
        let prefix = format!("bandwidth2mqtt_source_polls_total{{source=\"{source}\"");
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    pub async fn wait_polls(&self, source: &str, at_least: u64) {
        let deadline = Instant::now() + WAIT;
        while self.polls(source).await < at_least {
            assert!(Instant::now() < deadline, "{source}: never reached {at_least} polls");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Moves the clock on by `by` (at least one interval): `source` polls once, and this
    /// returns when the bridge has handled that poll.
    pub async fn step(&self, clock: &ManualClock, source: &str, by: Duration) {
        let before = self.polls(source).await;
        clock.advance(by);
        self.wait_polls(source, before + 1).await;
    }
}
