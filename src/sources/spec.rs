//! What a source folder says about itself, in one place (issue 17 item 3): its kind, how much
//! its numbers are trusted, when it goes in the first round, how its views are labelled, its
//! config table with the table's checks, and how it is built. The bridge, the household and
//! `check-config` read these instead of matching on source kinds, so a new source is a new
//! folder with one [`SourceFolder`] impl plus one line in [`super::each_source`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use std::path::Path;

use super::Source;
use crate::model::DeviceId;
use crate::table::{MacList, TableError};

/// The constant facts of a kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The config table (`[vnstat.<name>]`) and the `kind` in `bridge/info`, metrics and the
    /// state's `headline_source`.
    pub kind: &'static str,
    /// Who owns a device's totals when two sources count it: lower wins. Read by accounting
    /// (`Feed`); the values are compared across kinds, so they are listed side by side in
    /// `sources/mod.rs` ([`super::each_source`]'s doc).
    pub total_rank: u8,
    /// Who owns a device's rates: lower wins.
    pub rate_rank: u8,
    /// First round: sources with a lower value are folded in first (a server's own counters
    /// before a router's view of it, exact before estimated), ties by source name.
    pub first_round: u8,
    /// How the household labels a device's view from this kind (`ASUS home`).
    pub view_label: &'static str,
    /// Its per-client totals are estimates from rates (the Deco): the household reconciles
    /// them and never lets them feed a configured server's headline.
    pub estimates: bool,
}

/// One configured thing whose MACs tie router clients to a server: `key` names it in messages
/// (`vnstat.titan.mac`).
pub struct ServerMacs<'a> {
    pub key: String,
    pub macs: &'a MacList,
    /// The device the configuration claims them for before any poll (identity hints); `None`
    /// when the source reports them itself in its observations (the host).
    pub claimed_by: Option<DeviceId>,
}

/// What building a source may need beyond its own table.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// Where sources keep files of their own (the routers' login journals).
    pub state_dir: &'a Path,
    /// `[bridge] month_start_day`: which history a source reads for the billing month.
    pub month_start_day: u8,
    /// `[bridge] timezone`: where a source's daily history starts (local midnight).
    pub timezone: Option<&'a str>,
}

/// A source folder: implemented once per folder by a unit type named `Folder`.
pub trait SourceFolder {
    const SPEC: Spec;
    /// What `[<kind>]` holds in the config file: one table (the host) or one per name.
    type Settings: Clone + std::fmt::Debug + Default + Serialize + DeserializeOwned;
    type Source: Source;

    /// The table's own checks, after parsing (messages name the key).
    fn validate(settings: &Self::Settings) -> Result<(), TableError>;

    /// The source names this table creates: one namespace over all tables (they name
    /// `bridge/source/<name>` and device ids).
    fn names(_settings: &Self::Settings) -> Vec<&str> {
        Vec::new()
    }

    /// Servers this table configures, with the MACs routers see of them.
    fn server_macs(_settings: &Self::Settings) -> Vec<ServerMacs<'_>> {
        Vec::new()
    }

    /// Reads `password_file`-like twins at load time, so a missing secret fails at start-up.
    fn resolve_files(_settings: &mut Self::Settings) -> Result<(), TableError> {
        Ok(())
    }

    /// The sources the table asks for.
    fn build(settings: &Self::Settings, ctx: BuildContext<'_>) -> Vec<Self::Source>;
}
