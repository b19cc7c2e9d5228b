//! One core for the bridge's unit tests: the host off, the state in `dir`, the ASUS feed
//! `home` known, on the given clock; `extra` goes into `[bridge]`.

use std::path::Path;

use super::{Core, PollReport};
use crate::clock::Clock;
use crate::config::{ConfigSource, LoadedConfig, MqttUrl, Settings};
use crate::model::Observation;
use crate::sources::SourceKind;

pub(super) fn core(dir: &Path, extra: &str, persist: bool, clock: Clock) -> Core {
    let text = format!(
        "[host]\nenabled = false\n[bridge]\nstate_dir = {:?}\n{extra}",
        dir.display().to_string()
    );
    let settings: Settings = toml::from_str(&text).unwrap();
    let config = LoadedConfig {
        settings,
        source: ConfigSource::Defaults,
        mqtt_url: MqttUrl::parse("mqtt://127.0.0.1:1883").unwrap(),
    };
    let mut core = Core::new(config, &mut [], persist, clock).unwrap();
    core.household.add_feed(SourceKind::Asus.feed("home"), "asus");
    core
}

/// A successful poll of the feed `home` at `at_ms`.
pub(super) fn report(observations: Vec<Observation>, at_ms: i64) -> PollReport {
    PollReport {
        source: "home".into(),
        result: Ok(observations),
        at_ms,
        cursor: None,
        details: Default::default(),
        duration: std::time::Duration::ZERO,
    }
}
