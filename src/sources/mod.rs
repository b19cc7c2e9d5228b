//! Sources fetch and parse; they return [`Observation`]s and never touch MQTT, timers or totals.
//!
//! The set of sources is closed, so dispatch is one enum ([`AnySource`]) rather than trait
//! objects, generated from one list ([`each_source`]): adding a source is a folder here (with
//! its [`SourceFolder`] impl, see `spec.rs`) and one line in that list.

pub mod body;
pub mod login_journal;
pub mod login_memory;
pub mod scalar;
mod spec;

pub use spec::{BuildContext, ServerMacs, SourceFolder, Spec};

/// Every source folder, one line each: `folder Variant`. The list's order is the order sources
/// are built, checked and listed in. Who wins when two sources count one device (lower wins;
/// totals, rates), from each folder's `SPEC`:
///
/// | kind | totals | rates | why |
/// |---|---|---|---|
/// | vnstat | 0 | 1 | totals survive reboots and bridge downtime; rates are 5-minute averages |
/// | host, agent, node_exporter | 1 | 0 | the kernel's exact counters, live rates |
/// | asus | 2 | 2 | router counters are exact; a server's own view of itself still wins |
/// | deco | 3 | 1 | totals are estimates from rates, so any counter beats them |
macro_rules! each_source {
    ($then:ident) => {
        $then! {
            host Host,
            vnstat Vnstat,
            asus Asus,
            deco Deco,
            node_exporter NodeExporter,
        }
    };
}
pub(crate) use each_source;

use std::future::Future;
use std::time::Duration;

use crate::clock::Clock;
use crate::model::Observation;

/// Why a poll failed. The message is shown to users (log, `bridge/info`), so it must say what
/// went wrong in their terms, and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The data could not be fetched: command missing or failed, host unreachable, timeout.
    #[error("{0}")]
    Unavailable(String),
    /// The data arrived but does not make sense: invalid JSON, an unexpected format.
    #[error("{0}")]
    Invalid(String),
    /// The device refused our credentials; retrying soon could lock the account.
    #[error("{0}")]
    Auth(String),
}

/// A polled data source.
pub trait Source: Send {
    /// The configured name: `host`, or the table key (`[vnstat.beast]` → `beast`).
    fn name(&self) -> &str;
    fn kind(&self) -> SourceKind;
    fn interval(&self) -> Duration;
    /// One poll: fetch, parse, normalise.
    fn poll(&mut self) -> impl Future<Output = Result<Vec<Observation>, SourceError>> + Send;
    /// Release what the source holds upstream (router sessions); called once on shutdown.
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// What the source must remember across restarts (e.g. which hours it has fetched); saved
    /// atomically with the totals after every poll.
    fn cursor(&self) -> Option<serde_json::Value> {
        None
    }

    /// Hands back the cursor saved by the previous run, before the first poll.
    fn restore(&mut self, _cursor: &serde_json::Value) {}

    /// Facts for `bridge/info` beyond ok/error (e.g. "Traffic Analyzer: disabled").
    fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    /// The bridge's clock, for stamping observations (given before the first poll). Sources
    /// whose data carries no time of ours (vnstat's documents) ignore it.
    fn set_clock(&mut self, _clock: &Clock) {}

    /// For `once`: a poll must finish all the work it would otherwise spread over later polls
    /// (the ASUS Traffic Analyzer refresh), still one request at a time.
    fn complete_each_poll(&mut self) {}
}

/// The kind of the agent receiver (`bridge/agents.rs`): not a folder here, it is read from
/// MQTT rather than polled. An agent is the host source of another machine.
pub const AGENT: Spec = Spec {
    kind: "agent",
    total_rank: 1,
    rate_rank: 0,
    first_round: u8::MAX,
    view_label: "agent",
    estimates: false,
};

/// Generates, from [`each_source`]'s list, the folder modules, [`SourceKind`] and [`AnySource`]
/// with its dispatch. What runs over every folder's config table is generated the same way in
/// `config/tables.rs`, and building them all in `bridge/build.rs`.
macro_rules! dispatch {
    ($($folder:ident $Variant:ident,)*) => {
        $(pub mod $folder;)*

        /// Which kind of source a configured source is.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum SourceKind {
            $($Variant,)*
            /// `bandwidth2mqtt agent` on another machine, read from MQTT rather than polled.
            Agent,
        }

        impl SourceKind {
            /// Every kind of polled source, in the list's order.
            pub const POLLED: &'static [SourceKind] = &[$(Self::$Variant,)*];

            pub fn spec(self) -> &'static Spec {
                match self {
                    $(Self::$Variant => &<$folder::Folder as SourceFolder>::SPEC,)*
                    Self::Agent => &AGENT,
                }
            }
        }

        /// One configured source of any kind.
        pub enum AnySource {
            $($Variant(Box<<$folder::Folder as SourceFolder>::Source>),)*
        }

        impl Source for AnySource {
            fn name(&self) -> &str {
                match self { $(Self::$Variant(s) => s.name(),)* }
            }

            fn kind(&self) -> SourceKind {
                match self { $(Self::$Variant(s) => s.kind(),)* }
            }

            fn interval(&self) -> Duration {
                match self { $(Self::$Variant(s) => s.interval(),)* }
            }

            async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
                match self { $(Self::$Variant(s) => s.poll().await,)* }
            }

            async fn close(&mut self) {
                match self { $(Self::$Variant(s) => s.close().await,)* }
            }

            fn cursor(&self) -> Option<serde_json::Value> {
                match self { $(Self::$Variant(s) => s.cursor(),)* }
            }

            fn restore(&mut self, cursor: &serde_json::Value) {
                match self { $(Self::$Variant(s) => s.restore(cursor),)* }
            }

            fn details(&self) -> serde_json::Map<String, serde_json::Value> {
                match self { $(Self::$Variant(s) => s.details(),)* }
            }

            fn set_clock(&mut self, clock: &Clock) {
                match self { $(Self::$Variant(s) => s.set_clock(clock),)* }
            }

            fn complete_each_poll(&mut self) {
                match self { $(Self::$Variant(s) => s.complete_each_poll(),)* }
            }
        }
    };
}

each_source!(dispatch);

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        self.spec().kind
    }

    /// The kind whose table is `kind` (`"vnstat"`), the agent's included.
    pub fn from_kind(kind: &str) -> Option<Self> {
        SourceKind::POLLED
            .iter()
            .copied()
            .chain([SourceKind::Agent])
            .find(|k| k.as_str() == kind)
    }
}

/// The spec of a kind named by its table (`"deco"`), if it is one.
pub fn spec_of(kind: &str) -> Option<&'static Spec> {
    SourceKind::from_kind(kind).map(SourceKind::spec)
}

/// Milliseconds since the Unix epoch on the real clock (emulators, agents, the health file); the
/// bridge stamps observations with its injected [`Clock`] instead.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
