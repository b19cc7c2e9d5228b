//! Sources fetch and parse; they return [`Observation`]s and never touch MQTT, timers or totals.
//!
//! The set of sources is closed, so dispatch is one enum ([`AnySource`]) rather than trait
//! objects: adding a source is a folder here, a variant and a match arm in [`build`].

pub mod asus;
pub mod body;
pub mod deco;
pub mod host;
pub mod login_journal;
pub mod login_memory;
pub mod scalar;
pub mod vnstat;

use std::future::Future;
use std::time::Duration;

use crate::accounting::Feed;
use crate::clock::Clock;
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
    Asus,
    Deco,
    /// `bandwidth2mqtt agent` on another machine, read from MQTT rather than polled.
    Agent,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Vnstat => "vnstat",
            Self::Asus => "asus",
            Self::Deco => "deco",
            Self::Agent => "agent",
        }
    }

    /// Who wins when two sources count the same interface: vnstat keeps totals across reboots
    /// and bridge downtime; the kernel gives live rates where vnstat gives 5-minute averages.
    /// The Deco's totals are estimates from rates, so any counter beats them.
    fn ranks(self) -> (u8, u8) {
        match self {
            Self::Vnstat => (0, 1),
            // An agent is the host source of another machine.
            Self::Host | Self::Agent => (1, 0),
            // Router counters are exact; a server's own view of itself still wins.
            Self::Asus => (2, 2),
            Self::Deco => (3, 1),
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

pub enum AnySource {
    Host(host::HostSource),
    Vnstat(vnstat::VnstatSource),
    Asus(Box<asus::AsusSource>),
    /// Boxed: it carries an HTTP client and session, far larger than the others.
    Deco(Box<deco::DecoSource>),
}

impl SourceKind {
    /// How accounting sees a source of this kind named `name`.
    pub fn feed(self, name: &str) -> Feed {
        let (total_rank, rate_rank) = self.ranks();
        Feed {
            name: name.to_owned(),
            total_rank,
            rate_rank,
        }
    }
}

impl AnySource {
    pub fn feed(&self) -> Feed {
        self.kind().feed(self.name())
    }
}

impl Source for AnySource {
    fn name(&self) -> &str {
        match self {
            Self::Host(s) => s.name(),
            Self::Vnstat(s) => s.name(),
            Self::Asus(s) => s.name(),
            Self::Deco(s) => s.name(),
        }
    }

    fn kind(&self) -> SourceKind {
        match self {
            Self::Host(s) => s.kind(),
            Self::Vnstat(s) => s.kind(),
            Self::Asus(s) => s.kind(),
            Self::Deco(s) => s.kind(),
        }
    }

    fn interval(&self) -> Duration {
        match self {
            Self::Host(s) => s.interval(),
            Self::Vnstat(s) => s.interval(),
            Self::Asus(s) => s.interval(),
            Self::Deco(s) => s.interval(),
        }
    }

    async fn poll(&mut self) -> Result<Vec<Observation>, SourceError> {
        match self {
            Self::Host(s) => s.poll().await,
            Self::Vnstat(s) => s.poll().await,
            Self::Asus(s) => s.poll().await,
            Self::Deco(s) => s.poll().await,
        }
    }

    async fn close(&mut self) {
        match self {
            Self::Host(s) => s.close().await,
            Self::Vnstat(s) => s.close().await,
            Self::Asus(s) => s.close().await,
            Self::Deco(s) => s.close().await,
        }
    }

    fn cursor(&self) -> Option<serde_json::Value> {
        match self {
            Self::Host(s) => s.cursor(),
            Self::Vnstat(s) => s.cursor(),
            Self::Asus(s) => s.cursor(),
            Self::Deco(s) => s.cursor(),
        }
    }

    fn restore(&mut self, cursor: &serde_json::Value) {
        match self {
            Self::Host(s) => s.restore(cursor),
            Self::Vnstat(s) => s.restore(cursor),
            Self::Asus(s) => s.restore(cursor),
            Self::Deco(s) => s.restore(cursor),
        }
    }

    fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Self::Host(s) => s.details(),
            Self::Vnstat(s) => s.details(),
            Self::Asus(s) => s.details(),
            Self::Deco(s) => s.details(),
        }
    }

    fn set_clock(&mut self, clock: &Clock) {
        match self {
            Self::Host(s) => s.set_clock(clock),
            Self::Vnstat(s) => s.set_clock(clock),
            Self::Asus(s) => s.set_clock(clock),
            Self::Deco(s) => s.set_clock(clock),
        }
    }

    fn complete_each_poll(&mut self) {
        match self {
            Self::Host(s) => s.complete_each_poll(),
            Self::Vnstat(s) => s.complete_each_poll(),
            Self::Asus(s) => s.complete_each_poll(),
            Self::Deco(s) => s.complete_each_poll(),
        }
    }
}

/// Every source the configuration asks for, in a stable order, on `clock`.
pub fn build(settings: &Settings, clock: &Clock) -> Vec<AnySource> {
    let mut sources = Vec::new();
    if settings.host.enabled {
        sources.push(AnySource::Host(host::HostSource::new(&settings.host)));
    }
    for (name, cfg) in &settings.vnstat {
        sources.push(AnySource::Vnstat(vnstat::VnstatSource::new(
            name,
            cfg,
            settings.bridge.month_start_day,
        )));
    }
    let journal = |name: &str| login_journal::LoginJournal::in_dir(&settings.bridge.state_dir, name);
    for (name, cfg) in &settings.asus {
        let mut source = asus::AsusSource::new(name, cfg);
        source.set_time_zone(settings.bridge.timezone.as_deref());
        source.remember_logins(journal(name));
        sources.push(AnySource::Asus(Box::new(source)));
    }
    for (name, cfg) in &settings.deco {
        let mut source = deco::DecoSource::new(name, cfg);
        source.remember_logins(journal(name));
        sources.push(AnySource::Deco(Box::new(source)));
    }
    for source in &mut sources {
        source.set_clock(clock);
    }
    sources
}

/// Milliseconds since the Unix epoch on the real clock (emulators, agents, the health file); the
/// bridge stamps observations with its injected [`Clock`] instead.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
