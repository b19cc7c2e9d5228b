//! The vnstat source's spec and `[vnstat.<name>]` tables: a server read through its vnstat.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::VnstatSource;
use crate::model::DeviceId;
use crate::sources::{BuildContext, ServerMacs, SourceFolder, Spec};
use crate::table::{MacList, TableError, check_interval, check_source_name, duration};

pub struct Folder;

impl SourceFolder for Folder {
    const SPEC: Spec = Spec {
        kind: "vnstat",
        // Totals that survive reboots and bridge downtime beat everyone's; its rates are
        // 5-minute averages, so the kernel's live ones beat them.
        total_rank: 0,
        rate_rank: 1,
        first_round: 0,
        view_label: "vnstat",
        estimates: false,
    };
    type Settings = BTreeMap<String, VnstatSettings>;
    type Source = VnstatSource;

    fn validate(tables: &Self::Settings) -> Result<(), TableError> {
        for (name, vnstat) in tables {
            let key = |k: &str| format!("vnstat.{name}.{k}");
            check_source_name(name).map_err(|m| (format!("vnstat.{name}"), m))?;
            if vnstat.command.is_empty() || vnstat.command[0].trim().is_empty() {
                return Err((
                    key("command"),
                    "must name a program, e.g. [\"vnstat\", \"--json\", \"f\", \"1\"]".into(),
                ));
            }
            check_interval(vnstat.interval, 1).map_err(|m| (key("interval"), m))?;
            check_interval(vnstat.timeout, 1).map_err(|m| (key("timeout"), m))?;
        }
        Ok(())
    }

    fn names(tables: &Self::Settings) -> Vec<&str> {
        tables.keys().map(String::as_str).collect()
    }

    fn server_macs(tables: &Self::Settings) -> Vec<ServerMacs<'_>> {
        tables
            .iter()
            .map(|(name, v)| ServerMacs {
                key: format!("vnstat.{name}.mac"),
                macs: &v.mac,
                claimed_by: Some(DeviceId::slugify_or_unnamed(name)),
            })
            .collect()
    }

    fn build(tables: &Self::Settings, ctx: BuildContext<'_>) -> Vec<VnstatSource> {
        tables
            .iter()
            .map(|(name, cfg)| VnstatSource::new(name, cfg, ctx.month_start_day))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VnstatSettings {
    /// Program and arguments, run without a shell (e.g. `["ssh", "beast", "vnstat", "--json", "f", "1"]`).
    pub command: Vec<String>,
    #[serde(with = "duration")]
    pub interval: Duration,
    /// A run that takes longer is killed and counts as a failure.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Display name; defaults to the table key.
    pub name: Option<String>,
    /// One MAC or a list: what routers see of this server (each NIC, Wi-Fi and cable).
    pub mac: MacList,
    /// Interfaces to publish; default: every interface in the vnstat database.
    pub interfaces: Option<Vec<String>>,
}

impl Default for VnstatSettings {
    fn default() -> Self {
        Self {
            command: ["vnstat", "--json", "f", "1"].map(String::from).to_vec(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            name: None,
            mac: MacList::default(),
            interfaces: None,
        }
    }
}

