//! Sources fetch and parse; they return [`Observation`]s and never touch MQTT, timers or totals.
//!
//! The set of sources is closed, so dispatch is one enum ([`AnySource`]) rather than trait
//! objects: adding a source is a folder here, a variant and a match arm in [`build`].

pub mod deco;
pub mod host;
pub mod vnstat;

use std::future::Future;
use std::time::Duration;

use crate::accounting::Feed;
use crate::config::Settings;
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

/// Which kind of source a configured source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Host,
    Vnstat,
    Deco,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Vnstat => "vnstat",
            Self::Deco => "deco",
        }
    }

    /// Who wins when two sources count the same interface: vnstat keeps totals across reboots
    /// and bridge downtime; the kernel gives live rates where vnstat gives 5-minute averages.
    /// The Deco's totals are estimates from rates, so any counter beats them.
    fn ranks(self) -> (u8, u8) {
        match self {
            Self::Vnstat => (0, 1),
            Self::Host => (1, 0),
            Self::Deco => (2, 1),
        }
    }
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
}

pub enum AnySource {
    Host(host::HostSource),
    Vnstat(vnstat::VnstatSource),
    /// Boxed: it carries an HTTP client and session, far larger than the others.
    Deco(Box<deco::DecoSource>),
}

impl AnySource {
    pub fn feed(&self) -> Feed {
        let (total_rank, rate_rank) = self.kind().ranks();
        Feed {
            name: self.name().to_owned(),
            total_rank,
            rate_rank,
        }
    }
}

impl Source for AnySource {
    fn name(&self) -> &str {
        match self {
            Self::Host(s) => s.name(),
            Self::Vnstat(s) => s.name(),
            Self::Deco(s) => s.name(),
        }
    }

    fn kind(&self) -> SourceKind {
        match self {
            Self::Host(s) => s.kind(),
            Self::Vnstat(s) => s.kind(),
            Self::Deco(s) => s.kind(),
        }
    }

    fn interval(&self) -> Duration {
        match self {
            Self::Host(s) => s.interval(),
            Self::Vnstat(s) => s.interval(),
            Self::Deco(s) => s.interval(),
        }
    }

    async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
        match self {
            Self::Host(s) => s.poll().await,
            Self::Vnstat(s) => s.poll().await,
            Self::Deco(s) => s.poll().await,
        }
    }

    async fn close(&mut self) {
        match self {
            Self::Host(s) => s.close().await,
            Self::Vnstat(s) => s.close().await,
            Self::Deco(s) => s.close().await,
        }
    }
}

/// Every source the configuration asks for, in a stable order.
pub fn build(settings: &Settings) -> Vec<AnySource> {
    let mut sources = Vec::new();
    if settings.host.enabled {
        sources.push(AnySource::Host(host::HostSource::new(&settings.host)));
    }
    for (name, cfg) in &settings.vnstat {
        sources.push(AnySource::Vnstat(vnstat::VnstatSource::new(name, cfg)));
    }
    for (name, cfg) in &settings.deco {
        sources.push(AnySource::Deco(Box::new(deco::DecoSource::new(name, cfg))));
    }
    sources
}

/// Milliseconds since the Unix epoch, the clock observations are stamped with.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
