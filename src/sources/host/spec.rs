//! The host source's spec and `[host]` table: the machine the bridge runs on.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HostSource;
use crate::model::DeviceId;
use crate::sources::{BuildContext, ServerMacs, SourceFolder, Spec};
use crate::table::{MacList, RESERVED_IDS, TableError, check_interval, duration};

pub struct Folder;

impl SourceFolder for Folder {
    const SPEC: Spec = Spec {
        kind: "host",
        // The kernel's exact counters and live rates; vnstat's totals survive reboots.
        total_rank: 1,
        rate_rank: 0,
        first_round: 1,
        view_label: "host",
        estimates: false,
    };
    type Settings = HostSettings;
    type Source = HostSource;

    fn validate(host: &HostSettings) -> Result<(), TableError> {
        if !host.enabled {
            return Ok(());
        }
        let err = |key: &str, m: String| (format!("host.{key}"), m);
        check_interval(host.interval, 1).map_err(|m| err("interval", m))?;
        if let Some(name) = &host.name {
            match DeviceId::slugify(name) {
                Some(id) if !RESERVED_IDS.contains(&id.as_str()) => {}
                _ => return Err(err("name", format!("`{name}` cannot be used as a device name"))),
            }
        }
        if host.interfaces.as_ref().is_some_and(Vec::is_empty) {
            return Err(err(
                "interfaces",
                "an empty list would monitor nothing; leave it out for the default".into(),
            ));
        }
        Ok(())
    }

    /// The host reports its MACs itself (with its interfaces' own), so the config claims none.
    fn server_macs(host: &HostSettings) -> Vec<ServerMacs<'_>> {
        host.enabled
            .then(|| ServerMacs {
                key: "host.mac".into(),
                macs: &host.mac,
                claimed_by: None,
            })
            .into_iter()
            .collect()
    }

    fn build(host: &HostSettings, _ctx: BuildContext<'_>) -> Vec<HostSource> {
        host.enabled.then(|| HostSource::new(host)).into_iter().collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSettings {
    pub enabled: bool,
    /// Device name; defaults to the hostname.
    pub name: Option<String>,
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Interfaces to monitor; default: every interface except `lo` and virtual ones.
    pub interfaces: Option<Vec<String>>,
    /// Interface names to leave out; a trailing `*` matches a prefix (`veth*`).
    pub exclude: Vec<String>,
    /// Ties this machine to what routers report for these MACs (one or a list); its
    /// interfaces' own MACs always count too.
    pub mac: MacList,
    /// Where the kernel's `/proc` and `/sys` are (a container sees the host's at `/host/proc`).
    pub proc_dir: PathBuf,
    pub sys_dir: PathBuf,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            name: None,
            interval: Duration::from_secs(10),
            interfaces: None,
            exclude: Vec::new(),
            mac: MacList::default(),
            proc_dir: PathBuf::from("/proc"),
            sys_dir: PathBuf::from("/sys"),
        }
    }
}

