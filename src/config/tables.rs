//! The configuration's side of the source list: what runs over every source folder's table
//! (their checks, names, server MACs, secret files), generated from `sources::each_source`.
//! The folders declare their tables (`sources/<kind>/spec.rs`); nothing here names a kind.

use super::{ConfigError, ConfigSource, Settings};
use crate::sources::{BuildContext, ServerMacs, SourceFolder};
use crate::table::TableError;

macro_rules! tables {
    ($($folder:ident $Variant:ident,)*) => {
        /// Every table's own checks, in the list's order.
        pub(super) fn validate_tables(settings: &Settings) -> Result<(), TableError> {
            $(<crate::sources::$folder::Folder as SourceFolder>::validate(&settings.$folder)?;)*
            Ok(())
        }

        /// Every configured source name, with its table (`vnstat`).
        pub(super) fn named(settings: &Settings) -> Vec<(&'static str, &str)> {
            let mut names = Vec::new();
            $(
                let kind = <crate::sources::$folder::Folder as SourceFolder>::SPEC.kind;
                let these = <crate::sources::$folder::Folder as SourceFolder>::names(&settings.$folder);
                names.extend(these.into_iter().map(|n| (kind, n)));
            )*
            names
        }

        /// Every configured server and the MACs routers see of it (identity hints).
        pub fn server_macs(settings: &Settings) -> Vec<ServerMacs<'_>> {
            let mut servers = Vec::new();
            $(servers.extend(<crate::sources::$folder::Folder as SourceFolder>::server_macs(&settings.$folder));)*
            servers
        }

        /// Reads every table's secret files.
        pub(super) fn resolve_files(settings: &mut Settings, source: &ConfigSource) -> Result<(), ConfigError> {
            $(
                <crate::sources::$folder::Folder as SourceFolder>::resolve_files(&mut settings.$folder)
                    .map_err(|(key, m)| ConfigError::at(source, key, m))?;
            )*
            Ok(())
        }
    };
}

crate::sources::each_source!(tables);

/// What building a source may need beyond its own table.
pub fn build_context(settings: &Settings) -> BuildContext<'_> {
    BuildContext {
        state_dir: &settings.bridge.state_dir,
        month_start_day: settings.bridge.month_start_day,
        timezone: settings.bridge.timezone.as_deref(),
    }
}
