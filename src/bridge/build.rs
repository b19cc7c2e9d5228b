//! Every source the configuration asks for, built by its folder (`sources/<kind>/spec.rs`)
//! from its table, in the order of `sources::each_source`.

use crate::clock::Clock;
use crate::config::Settings;
use crate::sources::{AnySource, Source, SourceFolder};

macro_rules! build {
    ($($folder:ident $Variant:ident,)*) => {
        /// Every configured source, in the list's order, on `clock`.
        pub fn build_sources(settings: &Settings, clock: &Clock) -> Vec<AnySource> {
            let ctx = crate::config::build_context(settings);
            let mut sources = Vec::new();
            $(
                let built = <crate::sources::$folder::Folder as SourceFolder>::build(&settings.$folder, ctx);
                sources.extend(built.into_iter().map(|s| AnySource::$Variant(Box::new(s))));
            )*
            for source in &mut sources {
                source.set_clock(clock);
            }
            sources
        }
    };
}

crate::sources::each_source!(build);
