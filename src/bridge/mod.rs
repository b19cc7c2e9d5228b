//! The bridge: runs the sources, feeds their reports through accounting, and keeps the outbox
//! saying what Home Assistant should see. This file is the core's state and what it does with
//! one poll; `run.rs` has the daemon's loop (`run_until`) and `once`, with the [`Parts`] they
//! are given (config, sources, clock).

mod agents;
mod build;
mod commands;
mod events;
mod forgetting;
pub mod health;
mod info;
mod observe;
mod permit_join;
mod poller;
mod replay;
mod run;
mod save;
#[cfg(test)]
mod test_core;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

// Real time for what is about the link to the broker (bridge/info refresh pacing).
use tokio::time::Instant;

pub use build::build_sources;
pub use poller::{PollReport, backoff};
pub use run::{OnceOutcome, Parts, once, run, run_until};

/// Why [`run_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT/SIGTERM.
    Shutdown,
    /// The `restart` command: the caller runs the bridge again with a freshly loaded config.
    Restart,
}

use crate::accounting::StateStore;
use crate::clock::Clock;
use crate::config::DiscoveryMode;
use crate::config::LoadedConfig;
use crate::household::Household;
use crate::model::DeviceId;
use crate::publish::device_discovery::Packager;
use crate::publish::devices_index::DevicesIndex;
use crate::publish::discovery::{Context, EntityConfig};
use crate::publish::migration::{self, Migration};
use crate::publish::render_cache::{self, Part, RenderCache};
use crate::publish::state::{StateClock, device_state, device_summary, tracker_attributes};
use crate::publish::{Connector, MqttLink, Outbox, Priority, SourceStatus, Topics};
use crate::sources::{AnySource, Source, SourceError};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// HA sends its birth once its discovery burst settled; a short pause plus jitter is enough
/// before republishing, and keeps several bridges from answering at the same instant.
const BIRTH_DELAY: Duration = Duration::from_secs(1);
const INFO_REFRESH: Duration = Duration::from_secs(60);
/// The bridge's own device and `bridge/info` name at most this many sources, so they stay far
/// below any packet limit however many sources there are (issue 21, finding 4); the rest are
/// counted in `bridge/info` (`sources_omitted`), failing ones listed first.
const SOURCES_SHOWN: usize = 100;
/// A source that has not answered by then (a router timing out) does not hold the others back.
const FIRST_ROUND_WAIT: Duration = Duration::from_secs(60);
const PERIOD_TICK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Mqtt(#[from] crate::publish::connection::MqttSetupError),
    #[error(transparent)]
    Store(#[from] crate::accounting::StoreError),
    #[error("cannot reach the MQTT broker at {0}")]
    BrokerUnreachable(String),
}

/// The core's state: everything between the sources and the outbox.
struct Core {
    config: LoadedConfig,
    topics: Topics,
    outbox: Arc<Outbox>,
    household: Household,
    /// Polls of the first round, held until every source has answered once (or
    /// [`FIRST_ROUND_WAIT`] passed on `clock`): identities are decided before anything is
    /// published.
    first_round: Option<(Vec<PollReport>, Duration)>,
    /// Stamps and periods: the injected clock (real, manual in tests, scaled in the demo).
    clock: Clock,
    store: StateStore,
    statuses: BTreeMap<String, SourceStatus>,
    /// When each currently failing source started failing (ms); drives tracker availability.
    failing_since: BTreeMap<String, i64>,
    persist: bool,
    save_failing: bool,
    /// When the state file was last written and fsync'd (save.rs).
    saving: save::Pacing,
    /// `bridge/info` without its timestamps, and when it was last put: timestamps alone
    /// change on every poll and are refreshed at most once a minute.
    info_published: Option<(String, Instant)>,
    devices_index: DevicesIndex,
    discovery_mode: DiscoveryMode,
    packager: Packager,
    /// What each device's payloads were last rendered from: only changes are rendered.
    renders: RenderCache,
    migration: Migration,
    agents: agents::AgentBook,
    /// The join window, while open (permit_join.rs).
    join_window: Option<permit_join::JoinWindow>,
    events: events::EventTracker,
    metrics: Option<Arc<crate::metrics::MetricsHub>>,
    /// What the MQTT link refused on the way in (connection.rs), once connected.
    link_stats: Option<Arc<crate::publish::intake::LinkStats>>,
    /// Responses and events for the run loop to publish (not retained, not deduplicated).
    messages: Vec<(String, String)>,
}

impl Core {
    fn new(config: LoadedConfig, sources: &mut [AnySource], persist: bool, clock: Clock) -> Result<Self, BridgeError> {
        let dir = &config.settings.bridge.state_dir;
        let store = if persist {
            StateStore::new(dir)
        } else {
            StateStore::read_only(dir)
        };
        let persisted = store.load()?;
        let known = events::EventTracker::new(persisted.devices.keys().cloned());
        for source in sources.iter_mut() {
            if let Some(cursor) = persisted.sources.get(source.name()) {
                source.restore(cursor);
            }
        }
        let feeds = sources
            .iter()
            .map(|s| (s.kind().feed(s.name()), s.kind().as_str()))
            .collect();
        let mut household = Household::new(&config.settings, feeds, persisted);
        commands::restore_names(&mut household, &config.settings.bridge.state_dir);
        let statuses = sources
            .iter()
            .map(|s| {
                (
                    s.name().to_owned(),
                    SourceStatus {
                        kind: s.kind().as_str(),
                        status: "pending",
                        ..SourceStatus::default()
                    },
                )
            })
            .collect();
        let max_packet = config.settings.mqtt.max_packet_size;
        Ok(Self {
            topics: Topics::new(&config.settings.mqtt),
            outbox: Arc::new(Outbox::with_limit(max_packet)),
            household,
            first_round: Some((Vec::new(), clock.mono())),
            clock,
            store,
            statuses,
            failing_since: BTreeMap::new(),
            persist,
            save_failing: false,
            saving: save::Pacing::default(),
            info_published: None,
            devices_index: DevicesIndex::new(),
            discovery_mode: config.settings.mqtt.discovery,
            packager: Packager::new(),
            renders: RenderCache::new(),
            migration: Migration::new(),
            agents: agents::AgentBook::default(),
            join_window: None,
            events: known,
            metrics: None,
            link_stats: None,
            messages: Vec::new(),
            config,
        })
    }

    fn connect(&self, connector: &dyn Connector, filters: Vec<String>) -> Result<MqttLink, BridgeError> {
        let settings = &self.config.settings.mqtt;
        Ok(MqttLink::start(
            connector,
            settings,
            &self.config.mqtt_url,
            &self.topics,
            self.outbox.clone(),
            filters,
        )?)
    }

    fn context(&self) -> Context<'_> {
        Context {
            topics: &self.topics,
            version: VERSION,
        }
    }

    /// Takes one poll. During the first round polls are held back until every source has
    /// answered once, then applied together, best source first, after learning who is who from
    /// all of them (the ASUS lists the Deco as a client; only the Deco says that MAC is itself).
    fn take(&mut self, report: PollReport) {
        let Some((pending, started)) = &mut self.first_round else {
            self.handle(report);
            return;
        };
        pending.push(report);
        let answered: std::collections::BTreeSet<&str> = pending.iter().map(|r| r.source.as_str()).collect();
        let all = self.statuses.keys().all(|s| answered.contains(s.as_str()));
        if all || self.clock.mono().saturating_sub(*started) >= FIRST_ROUND_WAIT {
            self.flush_first_round();
        }
    }

    fn flush_first_round(&mut self) {
        let Some((mut pending, _)) = self.first_round.take() else {
            return;
        };
        for report in &pending {
            if let Ok(observations) = &report.result {
                self.household.learn(observations);
            }
        }
        let rank = |r: &PollReport| {
            let kind = self.statuses.get(&r.source).map(|s| s.kind).unwrap_or("");
            // Each kind's place is in its spec: a server's own counters before a router's view
            // of it, exact before estimated, so the first totals come from the best source.
            (
                crate::sources::spec_of(kind).map_or(u8::MAX, |s| s.first_round),
                r.source.clone(),
            )
        };
        pending.sort_by_key(rank);
        for report in pending {
            self.handle(report);
        }
    }

    /// Folds one poll into the household and the outbox.
    fn handle(&mut self, report: PollReport) {
        let PollReport {
            source,
            result,
            at_ms,
            cursor,
            details,
            ..
        } = report;
        if let Some(cursor) = cursor {
            self.household.set_cursor(&source, cursor);
        }
        if let Some(status) = self.statuses.get_mut(&source) {
            status.details = details;
        }
        let now = jiff::Timestamp::from_second(self.clock.now_ms().div_euclid(1000))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_string();
        let touched = match result {
            Ok(observations) => {
                self.failing_since.remove(&source);
                let applied = self.household.apply_poll(&source, observations, at_ms);
                let touched = applied.touched;
                self.clear_retired();
                if let Some(status) = self.statuses.get_mut(&source) {
                    if status.status == "error" {
                        tracing::info!(source = %source, "Source recovered.");
                    }
                    status.status = "ok";
                    status.last_success = Some(now);
                    status.devices = applied.devices;
                }
                self.outbox.put(
                    self.topics.source_availability(&source),
                    "online",
                    true,
                    Priority::Availability,
                );
                self.save();
                touched
            }
            Err(error) => {
                self.log_failure(&source, &error);
                if let Some(status) = self.statuses.get_mut(&source) {
                    status.status = "error";
                    status.last_error = Some(error.to_string());
                    status.last_error_at = Some(now);
                }
                self.outbox.put(
                    self.topics.source_availability(&source),
                    "offline",
                    true,
                    Priority::Availability,
                );
                self.failing_since.entry(source.clone()).or_insert(at_ms);
                let mut touched = self.household.source_failed(&source);
                // Trackers of this source's clients: their availability depends on how long
                // the outage has lasted.
                touched.extend(
                    self.household
                        .devices()
                        .filter(|d| d.kind == crate::model::DeviceKind::Client && d.sources.contains(&source))
                        .map(|d| d.id.clone()),
                );
                touched
            }
        };
        for id in &touched {
            self.render_device(id);
            if let Some(device) = self.household.device(id)
                && self
                    .renders
                    .changed(id, Part::Summary, render_cache::summary_print(device))
            {
                self.devices_index.set(id, device_summary(device).to_string());
            }
        }
        self.render_bridge();
    }

    /// Client devices merged into the thing that claimed their MAC: HA forgets them (empty
    /// retained discovery and state), and `bridge/devices` no longer lists them.
    fn clear_retired(&mut self) {
        let retired = self.household.take_retired();
        if retired.is_empty() {
            return;
        }
        for device in &retired {
            let entities = self.context().device_entities(device);
            self.clear_discovery(&entities);
            self.unpublish(&device.id);
        }
        self.devices_index.replace_all(
            self.household
                .devices()
                .map(|d| (d.id.clone(), device_summary(d).to_string())),
        );
    }

    /// Starts new days and months; devices whose periods rolled are published again.
    fn tick_periods(&mut self, now_ms: i64) {
        if self.first_round.is_some() {
            return;
        }
        let rolled = self.household.tick(now_ms);
        for id in &rolled {
            self.render_device(id);
        }
        if !rolled.is_empty() {
            self.save();
        }
        self.forget_due(now_ms);
    }

    /// One line per event: the first failure (and every change of error) is a warning, repeats
    /// of the same error are debug, so a source that stays down does not flood the log.
    fn log_failure(&self, source: &str, error: &SourceError) {
        let text = error.to_string();
        let same = self
            .statuses
            .get(source)
            .is_some_and(|s| s.status == "error" && s.last_error.as_deref() == Some(text.as_str()));
        let kind = self.statuses.get(source).map(|s| s.kind).unwrap_or("?");
        match (same, error) {
            (true, _) => tracing::debug!(source, kind, error = %text, "Source still failing."),
            (false, SourceError::Auth(_)) => {
                tracing::error!(source, kind, error = %text, "Source rejected our credentials; its entities are unavailable.")
            }
            (false, _) => {
                tracing::warn!(source, kind, error = %text, "Source failed; its entities are unavailable until it answers again.")
            }
        }
    }

    /// One device's discovery, per entity or packaged per device (`mqtt.discovery`).
    fn put_discovery(&mut self, entities: Vec<EntityConfig>) {
        match self.discovery_mode {
            DiscoveryMode::Entity => {
                for entity in entities {
                    self.outbox.put(
                        entity.topic(&self.topics),
                        entity.payload.to_string(),
                        true,
                        Priority::Discovery,
                    );
                }
            }
            DiscoveryMode::Device => {
                if let Some((topic, payload)) = self.packager.package(&self.topics, &entities) {
                    self.outbox.put(topic, payload, true, Priority::Discovery);
                }
            }
        }
    }

    /// Deletes one device's discovery in HA, in the configured shape.
    fn clear_discovery(&self, entities: &[EntityConfig]) {
        match self.discovery_mode {
            DiscoveryMode::Entity => {
                for entity in entities {
                    self.outbox.clear(entity.topic(&self.topics), Priority::Discovery);
                }
            }
            DiscoveryMode::Device => {
                if let Some(first) = entities.first() {
                    let topic = crate::publish::device_discovery::device_topic(&self.topics, &first.node);
                    self.outbox.clear(topic, Priority::Discovery);
                }
            }
        }
    }

    /// A retained config seen by the discovery scan: ours in the other shape is migrated; a
    /// `bridge/devices` part of an earlier run is cleared unless still needed.
    fn found_config(&mut self, topic: String, payload: &[u8]) {
        if let Some(n) = crate::publish::devices_index::part_number(&self.topics, &topic) {
            self.devices_index.saw_part(n);
            return;
        }
        if migration::is_ours_to_migrate(&self.topics, self.discovery_mode, &topic, payload) {
            tracing::debug!(topic = %topic, "Migrating a discovery config to the configured shape.");
            self.outbox
                .put(topic.clone(), migration::MIGRATE_PAYLOAD, true, Priority::Migrate);
            self.migration.started(topic, std::time::Instant::now());
        }
    }

    /// Clears old discovery topics whose migrate message went out (before the new configs go:
    /// migration.rs); the others wait for the next call.
    fn clear_migrated(&mut self, now: std::time::Instant) {
        let (due, unsent): (Vec<String>, Vec<String>) = self
            .migration
            .due(now)
            .into_iter()
            .partition(|t| !self.outbox.is_dirty(t));
        for topic in unsent {
            self.migration.not_yet(topic, now);
        }
        if !due.is_empty() {
            tracing::info!(
                topics = due.len(),
                mode = ?self.discovery_mode,
                "Discovery migrated; clearing the old configs."
            );
        }
        for topic in due {
            // Migrate priority: it goes while the new configs are still held back.
            self.outbox.clear(topic, Priority::Migrate);
        }
    }

    /// Renders what changed of one device (render_cache.rs): its discovery only when its
    /// description changed, its state and tracker attributes only when they did.
    fn render_device(&mut self, id: &DeviceId) {
        self.household.pin_entity_slug(id);
        let Some(device) = self.household.device(id) else {
            return;
        };
        let now_ms = self.clock.now_ms();
        // Since when every source of this device has been failing (the latest of their
        // failures' starts), if they all are.
        let down_since = device
            .sources
            .iter()
            .map(|s| self.failing_since.get(s).copied())
            .collect::<Option<Vec<i64>>>()
            .and_then(|v| v.into_iter().max());
        let clock = StateClock {
            now_ms,
            consider_home_ms: self.config.settings.bridge.consider_home.as_millis() as i64,
            sources_down_ms: down_since.map(|since| now_ms - since),
        };
        if device.kind == crate::model::DeviceKind::Client
            && self
                .renders
                .changed(id, Part::Attributes, render_cache::attributes_print(device))
        {
            self.outbox.put(
                self.topics.device_attributes(id),
                tracker_attributes(device).to_string(),
                true,
                Priority::State,
            );
        }
        if self
            .renders
            .changed(id, Part::State, render_cache::state_print(device, clock))
        {
            self.outbox.put(
                self.topics.device_state(id),
                device_state(device, clock).to_string(),
                self.config.settings.mqtt.retain_state,
                Priority::State,
            );
        }
        if self
            .renders
            .changed(id, Part::Description, render_cache::description_print(device))
        {
            let entities = self.context().device_entities(device);
            self.put_discovery(entities);
            if self.packager.last_removed() {
                self.renders.invalidate(id, Part::Description);
            }
        }
    }
}
