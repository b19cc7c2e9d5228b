//! The Deco source's spec and `[deco.<name>]` tables: a TP-Link Deco mesh.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DecoSource;
use crate::sources::login_journal::LoginJournal;
use crate::sources::{BuildContext, SourceFolder, Spec};
use crate::table::{
    Secret, TableError, check_interval, check_router_url, check_source_name, duration, read_password_file,
};

pub struct Folder;

impl SourceFolder for Folder {
    const SPEC: Spec = Spec {
        kind: "deco",
        // Its totals are estimates from rates, so any counter beats them.
        total_rank: 3,
        rate_rank: 1,
        first_round: 3,
        view_label: "Deco",
        estimates: true,
    };
    type Settings = BTreeMap<String, DecoSettings>;
    type Source = DecoSource;

    fn validate(tables: &Self::Settings) -> Result<(), TableError> {
        for (name, deco) in tables {
            let key = |k: &str| format!("deco.{name}.{k}");
            check_source_name(name).map_err(|m| (format!("deco.{name}"), m))?;
            check_router_url(&deco.url).map_err(|m| (key("url"), m))?;
            if deco.password.as_ref().is_none_or(|p| p.expose().is_empty()) {
                return Err((
                    key("password"),
                    "the Deco owner password is required (or password_file)".into(),
                ));
            }
            check_interval(deco.interval, 1).map_err(|m| (key("interval"), m))?;
            check_interval(deco.timeout, 1).map_err(|m| (key("timeout"), m))?;
            if let Some(fingerprint) = &deco.tls_fingerprint {
                crate::http::TlsPolicy::pinned(fingerprint).map_err(|e| (key("tls_fingerprint"), e.to_string()))?;
            }
        }
        Ok(())
    }

    fn names(tables: &Self::Settings) -> Vec<&str> {
        tables.keys().map(String::as_str).collect()
    }

    fn resolve_files(tables: &mut Self::Settings) -> Result<(), TableError> {
        for (name, deco) in tables {
            read_password_file(
                &mut deco.password,
                deco.password_file.as_deref(),
                &format!("deco.{name}"),
            )?;
        }
        Ok(())
    }

    fn build(tables: &Self::Settings, ctx: BuildContext<'_>) -> Vec<DecoSource> {
        tables
            .iter()
            .map(|(name, cfg)| {
                let mut source = DecoSource::new(name, cfg);
                source.remember_logins(LoginJournal::in_dir(ctx.state_dir, name));
                source
            })
            .collect()
    }
}

/// A TP-Link Deco mesh, read through its main unit's local web API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoSettings {
    /// The main Deco: `http://192.168.68.1`, or `https://…` for firmware that redirects.
    pub url: String,
    /// The Deco owner password (the one of the local web UI; manager accounts cannot log in).
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Per request; `client_list` takes up to 35 s on some models.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// The unit of the Deco's `down_speed`/`up_speed` (unverified on hardware, see README).
    pub speed_unit: SpeedUnit,
    /// Check the certificate of an `https://` URL against the system roots; Decos use
    /// self-signed certificates, so this is off by default.
    pub verify_tls: bool,
    /// SHA-256 fingerprint of the Deco's certificate: accept exactly that one.
    pub tls_fingerprint: Option<String>,
}

impl Default for DecoSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            password: None,
            password_file: None,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(40),
            speed_unit: SpeedUnit::default(),
            verify_tls: false,
            tls_fingerprint: None,
        }
    }
}

/// What one unit of a Deco rate means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeedUnit {
    /// What ha-tplink-deco assumes (raw ÷ 8 shown as kB/s), the longest-used reading.
    #[default]
    KbitPerS,
    KbytePerS,
    BytePerS,
}

impl SpeedUnit {
    pub fn bits_per_unit(self) -> f64 {
        match self {
            Self::KbitPerS => 1000.0,
            Self::KbytePerS => 8000.0,
            Self::BytePerS => 8.0,
        }
    }
}

