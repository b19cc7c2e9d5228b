//! The bridge in-process on an in-memory MQTT link (publish/link_memory.rs) and tokio's clock:
//! run inside `#[tokio::test(start_paused = true)]`, a day of polls takes milliseconds and
//! nothing waits on a real broker. Tests assert on what the bridge published
//! ([`MemoryBroker::published`]) and act as everyone else on the broker
//! ([`MemoryBroker::deliver`]).
//!
//! Sources must not wait on real I/O with a timeout (paused time would fire it at once): the
//! host source on a [`super::fake_host::FakeHost`] reads files, which is fine.

use std::collections::BTreeMap;
use std::path::Path;

use bandwidth2mqtt::bridge::{self, BridgeError, Parts, Stopped};
use bandwidth2mqtt::clock::Clock;
use bandwidth2mqtt::config::{self, ConfigSource};
pub use bandwidth2mqtt::publish::link_memory::MemoryBroker;
use tokio_util::sync::CancellationToken;

/// 2025-11-19T12:26:00Z, the time of the vnstat captures.
pub const T0_MS: i64 = 1_795_559_160_000;

/// One bridge running in this process on `broker`.
pub struct Bridge {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<Stopped, BridgeError>>,
}

/// `toml` as the bridge's configuration file in `dir`, with `[bridge] state_dir` set to
/// `dir/data` unless it names one.
pub fn parts(dir: &Path, toml: &str, broker: &MemoryBroker) -> Parts {
    let text = if toml.contains("state_dir") {
        toml.to_owned()
    } else if toml.contains("[bridge]") {
        toml.replacen(
            "[bridge]\n",
            &format!("[bridge]\nstate_dir = {:?}\n", dir.join("data").display().to_string()),
            1,
        )
    } else {
        format!(
            "{toml}\n[bridge]\nstate_dir = {:?}\n",
            dir.join("data").display().to_string()
        )
    };
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = config::load_from(ConfigSource::File(path), BTreeMap::new()).expect("valid config");
    Parts::on_clock(loaded, Clock::tokio(T0_MS)).with_link(broker.connector())
}

impl Bridge {
    pub fn start(dir: &Path, toml: &str, broker: &MemoryBroker) -> Self {
        Self::start_parts(parts(dir, toml, broker))
    }

    pub fn start_parts(parts: Parts) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(bridge::run_until(parts, stop.clone()));
        Self { stop, task }
    }

    /// Stops it as SIGTERM would; it must say it shut down.
    pub async fn stop(self) {
        self.stop.cancel();
        let stopped = self.task.await.expect("bridge task");
        assert!(matches!(stopped, Ok(Stopped::Shutdown)), "{stopped:?}");
    }

    /// Waits until the bridge ends on its own (a `restart` request).
    pub async fn ended(self) -> Result<Stopped, BridgeError> {
        self.task.await.expect("bridge task")
    }
}

/// A number at `path` in a JSON value.
pub fn num(v: &serde_json::Value, path: &[&str]) -> Option<u64> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(serde_json::Value::as_u64)
}
