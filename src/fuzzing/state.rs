//! What the bridge keeps and is told: the TOML configuration, the state file, and the
//! accounting that turns arbitrary sequences of samples into totals.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use crate::accounting::{Ledger, PersistedState};
use crate::config::{ConfigSource, load_from, render};
use crate::model::{
    BucketSample, CounterSample, DeviceId, DeviceKind, Epoch, HourBucket, Observation, RateSample, TrafficReading,
    TrafficSample, WrapRule,
};
use crate::sources::SourceKind;

/// TOML text → validated settings → the sources built from them (what `run` does next), and
/// the `check-config` rendering. No environment overrides.
pub fn config_toml(data: &[u8]) {
    thread_local! {
        static PATH: PathBuf = std::env::temp_dir().join(format!(
            "bandwidth2mqtt-fuzz-config-{}-{:?}.toml",
            std::process::id(),
            std::thread::current().id()
        ));
    }
    PATH.with(|path| {
        if std::fs::write(path, data).is_err() {
            return;
        }
        let Ok(loaded) = load_from(ConfigSource::File(path.clone()), BTreeMap::new()) else {
            return;
        };
        let _ = render(&loaded.settings);
        let _ = crate::bridge::build_sources(&loaded.settings, &crate::clock::Clock::system());
    });
}

/// State file text → state → text → state: equal, and the same text again. A state that loads
/// must also survive the ledger that is built from it.
pub fn state_roundtrip(data: &[u8]) {
    let Ok(state) = serde_json::from_slice::<PersistedState>(data) else {
        return;
    };
    survives_state_file(&state);
    let feeds = [SourceKind::Host, SourceKind::Vnstat, SourceKind::Asus, SourceKind::Deco]
        .map(|k| k.feed(k.as_str()))
        .to_vec();
    let ledger = Ledger::new(feeds, state.clone(), BTreeMap::new());
    let again = ledger.to_persisted();
    assert_eq!(again.devices, state.devices, "the ledger kept every device's totals");
    survives_state_file(&again);
}

/// Saving then loading gives back exactly what was saved; a state that cannot be read back
/// would cost every device its totals at the next start. Compared as saved text: what is
/// deliberately not persisted (a channel's in-memory suspect reading) does not count.
pub fn survives_state_file(state: &PersistedState) {
    let text = match serde_json::to_string(state) {
        Ok(t) => t,
        Err(e) => panic!("state does not serialise: {e}"),
    };
    let back: PersistedState = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => panic!("saved state does not load: {e}\n{text}"),
    };
    let again = serde_json::to_string(&back).unwrap_or_default();
    assert_eq!(again, text, "state changed through the state file");
}

const SOURCES: [SourceKind; 4] = [SourceKind::Host, SourceKind::Vnstat, SourceKind::Asus, SourceKind::Deco];

#[derive(Debug, Arbitrary)]
enum Step {
    /// One poll of `source` reading one sample for `device` (an interface of it if `iface`).
    Sample {
        source: u8,
        device: u8,
        iface: Option<u8>,
        now_step_ms: u32,
        sample: Sample,
    },
    /// The bridge restarts: everything goes through the state file.
    Restart,
    /// A source's poll failed.
    Failed { source: u8 },
}

#[derive(Debug, Arbitrary)]
enum Sample {
    Counter {
        rx: u64,
        tx: u64,
        epoch: Option<EpochIn>,
        at_ms: i64,
        wrap: WrapIn,
        window_s: u32,
    },
    Rate {
        rx_bps: f64,
        tx_bps: f64,
        at_ms: i64,
        max_gap_s: u32,
    },
    Buckets {
        hours: Vec<(i64, u64, u64)>,
    },
}

#[derive(Debug, Arbitrary)]
enum EpochIn {
    Id(u8),
    BootedAt(i64),
}

#[derive(Debug, Arbitrary)]
enum WrapIn {
    Never,
    At32,
    Maybe32(f64),
}

/// Arbitrary sequences of samples from four sources into the ledger's channels: never a
/// panic, and no device's or interface's total ever goes down, across restarts too.
pub fn channel_sequence(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(steps) = Vec::<Step>::arbitrary(&mut u) else {
        return;
    };
    let feeds = || SOURCES.map(|k| k.feed(k.as_str())).to_vec();
    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    let mut now_ms: i64 = 1_700_000_000_000;
    let mut highest: BTreeMap<(DeviceId, Option<String>), (u64, u64)> = BTreeMap::new();
    for step in steps {
        match step {
            Step::Sample {
                source,
                device,
                iface,
                now_step_ms,
                sample,
            } => {
                now_ms = now_ms.saturating_add(i64::from(now_step_ms));
                let source = SOURCES[usize::from(source) % SOURCES.len()].as_str();
                let mut obs = Observation::new(device_id(device), DeviceKind::Server);
                obs.traffic.push(TrafficReading {
                    interface: iface.map(|i| format!("eth{}", i % 3)),
                    sample: sample.into_sample(),
                });
                ledger.apply(source, vec![obs], now_ms);
            }
            Step::Restart => {
                let state = ledger.to_persisted();
                survives_state_file(&state);
                let Ok(text) = serde_json::to_string(&state) else {
                    unreachable!("checked above");
                };
                let Ok(back) = serde_json::from_str(&text) else {
                    unreachable!("checked above");
                };
                ledger = Ledger::new(feeds(), back, BTreeMap::new());
            }
            Step::Failed { source } => {
                ledger.source_failed(SOURCES[usize::from(source) % SOURCES.len()].as_str());
            }
        }
        // The live devices, without building the whole state each step (that was most of the
        // target's time); devices restored but not seen again cannot change, and are checked
        // when they are.
        for device in ledger.devices() {
            let id = &device.id;
            let targets = std::iter::once((None, device.totals)).chain(
                device
                    .interfaces
                    .iter()
                    .map(|(name, iface)| (Some(name.clone()), iface.totals)),
            );
            for (iface, totals) in targets {
                let seen = highest.entry((id.clone(), iface.clone())).or_default();
                assert!(
                    totals.rx >= seen.0 && totals.tx >= seen.1,
                    "{id} {iface:?}: total went down from {seen:?} to {totals:?}"
                );
                *seen = (totals.rx, totals.tx);
            }
        }
    }
}

fn device_id(n: u8) -> DeviceId {
    DeviceId::slugify_or_unnamed(&format!("server {}", n % 3))
}

impl Sample {
    fn into_sample(self) -> TrafficSample {
        match self {
            Self::Counter {
                rx,
                tx,
                epoch,
                at_ms,
                wrap,
                window_s,
            } => TrafficSample::Counter(CounterSample {
                rx,
                tx,
                epoch: epoch.map(|e| match e {
                    EpochIn::Id(i) => Epoch::Id(format!("boot-{}", i % 4)),
                    EpochIn::BootedAt(s) => Epoch::BootedAt(s),
                }),
                at_ms,
                wrap: match wrap {
                    WrapIn::Never => WrapRule::Never,
                    WrapIn::At32 => WrapRule::At32,
                    WrapIn::Maybe32(max_bps) => WrapRule::Maybe32 { max_bps },
                },
                rate_window: Duration::from_secs(u64::from(window_s)),
            }),
            Self::Rate {
                rx_bps,
                tx_bps,
                at_ms,
                max_gap_s,
            } => TrafficSample::Rate(RateSample {
                rx_bps,
                tx_bps,
                at_ms,
                max_gap: Duration::from_secs(u64::from(max_gap_s)),
            }),
            Self::Buckets { hours } => TrafficSample::Buckets(BucketSample {
                hours: hours
                    .into_iter()
                    .map(|(start_s, rx, tx)| HourBucket { start_s, rx, tx })
                    .collect(),
            }),
        }
    }
}
