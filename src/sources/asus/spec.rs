//! The ASUS source's spec and `[asus.<name>]` tables: a router on stock or Merlin firmware.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AsusSource;
use crate::sources::login_journal::LoginJournal;
use crate::sources::{BuildContext, SourceFolder, Spec};
use crate::table::{
    Secret, TableError, check_interval, check_router_url, check_source_name, duration, read_password_file,
};

pub struct Folder;

impl SourceFolder for Folder {
    const SPEC: Spec = Spec {
        kind: "asus",
        // Router counters are exact; a server's own view of itself still wins.
        total_rank: 2,
        rate_rank: 2,
        first_round: 2,
        view_label: "ASUS",
        estimates: false,
    };
    type Settings = BTreeMap<String, AsusSettings>;
    type Source = AsusSource;

    fn validate(tables: &Self::Settings) -> Result<(), TableError> {
        for (name, asus) in tables {
            let key = |k: &str| format!("asus.{name}.{k}");
            check_source_name(name).map_err(|m| (format!("asus.{name}"), m))?;
            check_router_url(&asus.url).map_err(|m| (key("url"), m))?;
            if asus.password.is_none() {
                return Err((key("password"), "required (or password_file)".into()));
            }
            if asus.username.trim().is_empty() {
                return Err((key("username"), "must not be empty".into()));
            }
            check_interval(asus.interval, 1).map_err(|m| (key("interval"), m))?;
            check_interval(asus.timeout, 1).map_err(|m| (key("timeout"), m))?;
            check_interval(asus.temperature_interval, 1).map_err(|m| (key("temperature_interval"), m))?;
            if let Some(fp) = &asus.tls_fingerprint {
                crate::http::TlsPolicy::pinned(fp).map_err(|e| (key("tls_fingerprint"), e.to_string()))?;
            }
        }
        Ok(())
    }

    fn names(tables: &Self::Settings) -> Vec<&str> {
        tables.keys().map(String::as_str).collect()
    }

    fn resolve_files(tables: &mut Self::Settings) -> Result<(), TableError> {
        for (name, asus) in tables {
            read_password_file(
                &mut asus.password,
                asus.password_file.as_deref(),
                &format!("asus.{name}"),
            )?;
        }
        Ok(())
    }

    fn build(tables: &Self::Settings, ctx: BuildContext<'_>) -> Vec<AsusSource> {
        tables
            .iter()
            .map(|(name, cfg)| {
                let mut source = AsusSource::new(name, cfg);
                source.set_time_zone(ctx.timezone);
                source.remember_logins(LoginJournal::in_dir(ctx.state_dir, name));
                source
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsusSettings {
    /// `http://192.168.50.1` or `https://192.168.50.1:8443`.
    pub url: String,
    pub username: String,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// Display name; defaults to the router's model.
    pub name: Option<String>,
    #[serde(with = "duration")]
    pub interval: Duration,
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Check the HTTPS certificate against the system roots. Routers use self-signed ones:
    /// set `false`, or better pin it with `tls_fingerprint`.
    pub verify_tls: bool,
    /// SHA-256 fingerprint of the router's certificate (`AB:CD:…`); implies accepting it.
    pub tls_fingerprint: Option<String>,
    /// Read per-device byte counts from the Traffic Analyzer when it is switched on.
    pub traffic_analyzer: bool,
    /// The temperature page is read this often, not on every poll.
    #[serde(with = "duration")]
    pub temperature_interval: Duration,
}

impl Default for AsusSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            username: "admin".into(),
            password: None,
            password_file: None,
            name: None,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(15),
            verify_tls: true,
            tls_fingerprint: None,
            traffic_analyzer: true,
            temperature_interval: Duration::from_secs(300),
        }
    }
}

