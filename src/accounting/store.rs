//! The on-disk state: one JSON document under `state_dir`, replaced atomically (write a temp
//! file, rename) so a crash or `kill -9` leaves either the old or the new version, never a
//! torn one. The page cache is enough for that; `durable` saves also fsync the file and the
//! directory, against power loss (the bridge decides how often: bridge/save.rs).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::channel::ChannelState;
use super::ledger::Totals;
use crate::model::DeviceId;

const FILE_NAME: &str = "state.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot write state file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "state_dir {path} is in use by another bandwidth2mqtt{}; two bridges must not share one state_dir: stop the other one or give each its own",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<u32> },
}

fn first_version() -> u32 {
    1
}

/// [`PersistedState`] as written, with the current format version, from borrowed parts.
#[derive(Serialize)]
struct Versioned<'a, D, C, S> {
    version: u32,
    devices: &'a D,
    channels: &'a C,
    sources: &'a S,
}

/// Everything that must survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersistedState {
    #[serde(default = "first_version")]
    pub version: u32,
    /// Published totals per device.
    #[serde(default)]
    pub devices: BTreeMap<DeviceId, PersistedDevice>,
    /// Counter baselines per (device, interface, source).
    #[serde(default)]
    pub channels: Vec<PersistedChannel>,
    /// Free-form cursors that sources keep between polls (e.g. the last folded hour).
    #[serde(default)]
    pub sources: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersistedDevice {
    pub totals: Totals,
    #[serde(default)]
    pub interfaces: BTreeMap<String, Totals>,
    /// Each source's own view of the device (the secondary entities), by source name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub views: BTreeMap<String, Totals>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedChannel {
    pub device: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    pub source: String,
    #[serde(flatten)]
    pub state: ChannelState,
}

/// Reads and writes [`PersistedState`] in one directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    /// `once --dry-run`: read what is there, never move, copy or write anything.
    read_only: bool,
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            read_only: false,
            writes: Default::default(),
        }
    }

    /// A store that only reads (`once --dry-run`).
    pub fn read_only(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            read_only: true,
            writes: Default::default(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Loads the state; never a reason not to start. A missing file is a first start; a file
    /// that cannot be read at all is moved aside under a unique name and reported; a device or
    /// counter that cannot be read is left out alone (the others keep their totals) and the
    /// original file is copied aside for inspection. See `store_load`.
    pub fn load(&self) -> Result<PersistedState, StoreError> {
        Ok(super::store_load::load(&self.path(), FORMAT_VERSION, self.read_only))
    }

    /// Writes `state` durably (fsync'd).
    pub fn save(&self, state: &PersistedState) -> Result<(), StoreError> {
        self.save_parts(&state.devices, &state.channels, &state.sources, true)
    }

    /// Writes the state file from its three parts, serialised as [`PersistedState`]'s fields
    /// (the household lends its own maps: nothing is copied per save).
    pub fn save_parts(
        &self,
        devices: &impl Serialize,
        channels: &impl Serialize,
        sources: &impl Serialize,
        durable: bool,
    ) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| StoreError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.path();
        // The state_dir lock keeps other bridges out; the pid keeps even a stray second
        // process from writing into our temp file.
        let tmp = self.dir.join(format!(".{FILE_NAME}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            // Buffered: straight into the file, serde_json makes a write(2) per token, which
            // was half of the bridge's CPU per poll with 5 000 devices (issue 11 profile).
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&tmp)?);
            let versioned = Versioned {
                version: FORMAT_VERSION,
                devices,
                channels,
                sources,
            };
            serde_json::to_writer(&mut out, &versioned)?;
            out.write_all(b"\n")?;
            let file = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
            if durable {
                file.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            if durable { sync_dir(&self.dir) } else { Ok(()) }
        };
        let result = write();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        result.map_err(|source| StoreError::Write { path, source })
    }

    /// Makes what the last non-durable saves wrote durable: fsync of the file and the directory.
    pub fn sync(&self) -> Result<(), StoreError> {
        let path = self.path();
        let sync = || -> std::io::Result<()> {
            std::fs::File::open(&path)?.sync_all()?;
            sync_dir(&self.dir)
        };
        sync().map_err(|source| StoreError::Write {
            path: path.clone(),
            source,
        })
    }

    /// How many times the state file was written by this store (tests, metrics).
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("nested"));
        let mut state = store.load().unwrap();
        assert!(state.devices.is_empty());
        state.devices.insert(
            DeviceId::new("titan").unwrap(),
            PersistedDevice {
                totals: Totals { rx: 5, tx: 7 },
                interfaces: BTreeMap::new(),
                views: BTreeMap::new(),
            },
        );
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), state);

        // Every kind of channel memory survives the round trip through the file.
        let mut with_channels = state.clone();
        let mut buckets = crate::accounting::ChannelState::default();
        buckets.update_buckets(
            &crate::model::BucketSample {
                hours: vec![crate::model::HourBucket {
                    start_s: 1_795_478_400,
                    rx: 10,
                    tx: 1,
                }],
            },
            0,
        );
        with_channels.channels.push(PersistedChannel {
            device: DeviceId::new("aabbccddeeff").unwrap(),
            interface: None,
            source: "home".into(),
            state: buckets,
        });
        with_channels.channels.push(PersistedChannel {
            device: DeviceId::new("titan").unwrap(),
            interface: Some("eth0".into()),
            source: "host".into(),
            state: crate::accounting::ChannelState {
                epoch: Some(crate::model::Epoch::BootedAt(1_795_000_000)),
                rx: 5,
                ..Default::default()
            },
        });
        store.save(&with_channels).unwrap();
        assert_eq!(store.load().unwrap(), with_channels);

        std::fs::write(store.path(), "{ truncated").unwrap();
        let fresh = store.load().unwrap();
        assert!(fresh.devices.is_empty());
        let aside: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
            .collect();
        assert_eq!(aside.len(), 1, "the unreadable file is kept for inspection");
    }
}
