//! The bridge: runs the sources, feeds their reports through accounting, and keeps the outbox
//! saying what Home Assistant should see. `run` is the daemon, `once` a single pass.

mod agents;
mod commands;
mod events;
pub mod health;
mod observe;
mod poller;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use poller::{PollReport, backoff};

/// Why [`run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT/SIGTERM.
    Shutdown,
    /// The `restart` command: the caller runs the bridge again with a freshly loaded config.
    Restart,
}

use crate::accounting::StateStore;
use crate::config::DiscoveryMode;
use crate::config::LoadedConfig;
use crate::household::Household;
use crate::model::DeviceId;
use crate::publish::device_discovery::Packager;
use crate::publish::devices_index::DevicesIndex;
use crate::publish::discovery::{Context, EntityConfig};
use crate::publish::migration::{self, Migration};
use crate::publish::render_cache::{self, Part, RenderCache};
use crate::publish::state::{StateClock, bridge_info, device_state, device_summary, tracker_attributes};
use crate::publish::{MqttEvent, MqttLink, Outbox, Priority, SourceStatus, Topics};
use crate::sources::{self, AnySource, Source, SourceError};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// HA sends its birth once its discovery burst settled; a short pause plus jitter is enough
/// before republishing, and keeps several bridges from answering at the same instant.
const BIRTH_DELAY: Duration = Duration::from_secs(1);
const INFO_REFRESH: Duration = Duration::from_secs(60);
/// A source that has not answered by then (a router timing out) does not hold the others back.
const FIRST_ROUND_WAIT: Duration = Duration::from_secs(60);
const PERIOD_TICK: Duration = Duration::from_secs(30);
/// First-round order: a server's own counters before a router's view of it, exact before
/// estimated, so the first totals come from the best source.
const SOURCE_ORDER: [&str; 4] = ["vnstat", "host", "asus", "deco"];

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
    /// [`FIRST_ROUND_WAIT`] passed): identities are decided before anything is published.
    first_round: Option<(Vec<PollReport>, Instant)>,
    store: StateStore,
    statuses: BTreeMap<String, SourceStatus>,
    /// When each currently failing source started failing (ms); drives tracker availability.
    failing_since: BTreeMap<String, i64>,
    persist: bool,
    save_failing: bool,
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
    events: events::EventTracker,
    metrics: Option<Arc<crate::metrics::MetricsHub>>,
    /// Responses and events for the run loop to publish (not retained, not deduplicated).
    messages: Vec<(String, String)>,
}

impl Core {
    fn new(config: LoadedConfig, sources: &mut [AnySource], persist: bool) -> Result<Self, BridgeError> {
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
        let feeds = sources.iter().map(|s| (s.feed(), s.kind().as_str())).collect();
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
            first_round: Some((Vec::new(), Instant::now())),
            store,
            statuses,
            failing_since: BTreeMap::new(),
            persist,
            save_failing: false,
            info_published: None,
            devices_index: DevicesIndex::new(),
            discovery_mode: config.settings.mqtt.discovery,
            packager: Packager::new(),
            renders: RenderCache::new(),
            migration: Migration::new(),
            agents: agents::AgentBook::default(),
            events: known,
            metrics: None,
            messages: Vec::new(),
            config,
        })
    }

    fn connect(&self) -> Result<MqttLink, BridgeError> {
        self.connect_subscribed(Vec::new())
    }

    fn connect_subscribed(&self, filters: Vec<String>) -> Result<MqttLink, BridgeError> {
        let settings = &self.config.settings.mqtt;
        Ok(MqttLink::start_subscribed(
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
        if all || started.elapsed() >= FIRST_ROUND_WAIT {
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
            (
                SOURCE_ORDER
                    .iter()
                    .position(|k| *k == kind)
                    .unwrap_or(SOURCE_ORDER.len()),
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
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let touched = match result {
            Ok(observations) => {
                self.failing_since.remove(&source);
                let touched = self.household.apply(&source, observations, at_ms);
                if let Some(status) = self.statuses.get_mut(&source) {
                    if status.status == "error" {
                        tracing::info!(source = %source, "Source recovered.");
                    }
                    status.status = "ok";
                    status.last_success = Some(now);
                    status.devices = touched.len();
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

    fn save(&mut self) {
        if !self.persist {
            return;
        }
        match self.store.save(&self.household.to_persisted()) {
            Ok(()) => {
                if self.save_failing {
                    tracing::info!(path = %self.store.path().display(), "State file writable again.");
                }
                self.save_failing = false;
            }
            Err(e) => {
                if !self.save_failing {
                    tracing::error!(error = %e, "Cannot save totals; they will be lost on restart until this is fixed.");
                }
                self.save_failing = true;
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

    /// Clears old discovery topics whose entities have moved to the new shape.
    fn clear_migrated(&mut self, now: std::time::Instant) {
        let due = self.migration.due(now);
        if !due.is_empty() {
            tracing::info!(
                topics = due.len(),
                mode = ?self.discovery_mode,
                "Discovery migrated; clearing the old configs."
            );
        }
        for topic in due {
            self.outbox.clear(topic, Priority::Discovery);
        }
    }

    /// Renders what changed of one device (render_cache.rs): its discovery only when its
    /// description changed, its state and tracker attributes only when they did.
    fn render_device(&mut self, id: &DeviceId) {
        let Some(device) = self.household.device(id) else {
            return;
        };
        let now_ms = sources::now_ms();
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

    fn put_bridge_info(&mut self) {
        let significant = self
            .statuses
            .iter()
            .map(|(name, s)| format!("{name}:{}:{}:{:?}", s.status, s.devices, s.last_error))
            .collect::<Vec<_>>()
            .join("|");
        let due = match &self.info_published {
            Some((last, at)) => *last != significant || at.elapsed() >= INFO_REFRESH,
            None => true,
        };
        if due {
            self.outbox.put(
                self.topics.bridge_info(),
                bridge_info(VERSION, &self.statuses).to_string(),
                true,
                Priority::BridgeMeta,
            );
            self.info_published = Some((significant, Instant::now()));
        }
    }

    fn render_bridge(&mut self) {
        let names: Vec<String> = self.statuses.keys().cloned().collect();
        let entities = self.context().bridge_entities(&names);
        self.put_discovery(entities);
        self.put_bridge_info();
        // Devices added or forgotten outside `handle`: take the whole list again.
        if self.household.devices().count() != self.devices_index.len() {
            let household = &self.household;
            self.renders.retain(|id| household.device(id).is_some());
            self.devices_index.replace_all(
                self.household
                    .devices()
                    .map(|d| (d.id.clone(), device_summary(d).to_string())),
            );
        }
        if let Some(messages) = self.devices_index.render(&self.topics, self.outbox.part_limit()) {
            for (topic, payload) in messages {
                self.outbox.put(topic, payload, true, Priority::BridgeMeta);
            }
        }
    }
}

/// Runs the bridge until `shutdown` is cancelled (a `restart` command also ends it).
pub async fn run(config: LoadedConfig, shutdown: CancellationToken) -> Result<(), BridgeError> {
    run_until(config, shutdown).await.map(|_| ())
}

/// Runs the bridge until `shutdown` is cancelled or a `restart` command; says which.
pub async fn run_until(config: LoadedConfig, shutdown: CancellationToken) -> Result<Stopped, BridgeError> {
    let _lock = crate::accounting::lock_state_dir(&config.settings.bridge.state_dir, false)?;
    let mut sources = sources::build(&config.settings);
    let mut core = Core::new(config, &mut sources, true)?;
    let settings = core.config.settings.clone();
    // Until the scan for configs to migrate is over (migration.rs).
    core.outbox.hold_discovery(true);
    let mut link = core.connect_subscribed(vec![core.topics.bridge_requests(), core.topics.agent_counters()])?;
    let mut incoming = link.take_incoming();
    let side_tasks = CancellationToken::new();
    let mut metrics_task = None;
    if settings.metrics.enabled {
        let hub = Arc::new(crate::metrics::MetricsHub::new(VERSION, core.outbox.clone()));
        match crate::metrics::serve(settings.metrics.listen, hub.clone(), side_tasks.clone()).await {
            Ok(task) => {
                core.metrics = Some(hub);
                metrics_task = Some(task);
            }
            Err(e) => {
                tracing::error!(listen = %settings.metrics.listen, error = %e, "Cannot serve metrics; running without them.")
            }
        }
    }
    tracing::info!(
        version = VERSION,
        config = %core.config.source,
        broker = %core.config.mqtt_url,
        sources = ?core.statuses.keys().collect::<Vec<_>>(),
        state = %core.store.path().display(),
        "Bridge starting."
    );
    for name in core.statuses.keys() {
        core.outbox.put(
            core.topics.source_availability(name),
            "offline",
            true,
            Priority::Availability,
        );
    }
    core.render_bridge();

    let (report_tx, mut reports) = mpsc::channel(64);
    let pollers = CancellationToken::new();
    let (poll_now, poll_now_rx) = tokio::sync::watch::channel(0u64);
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        tasks.spawn(poller::poll_loop(
            source,
            report_tx.clone(),
            pollers.clone(),
            poll_now_rx.clone(),
        ));
    }
    drop(report_tx);

    let mut refresh = tokio::time::interval_at(
        Instant::now() + settings.mqtt.refresh_interval,
        settings.mqtt.refresh_interval,
    );
    let mut republish_at: Option<Instant> = None;
    // Days and months end even while every source is down.
    let mut period_tick = tokio::time::interval(PERIOD_TICK);
    period_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scan_end_at: Option<Instant> = None;
    let mut housekeeping = tokio::time::interval(Duration::from_secs(2));
    let state_dir = settings.bridge.state_dir.clone();
    let mut health_tick = tokio::time::interval(health::REFRESH);
    let mut health_failing = false;
    let mut agents_tick = tokio::time::interval(Duration::from_secs(1));
    let mut stopped = Stopped::Shutdown;
    loop {
        let scan_end = async {
            match scan_end_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let birth = async {
            match republish_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(report) = reports.recv() => core.handle_report(report),
            Some(incoming) = incoming.recv() => {
                if let Some(name) = crate::agent::agent_name(&core.topics.base, &incoming.topic) {
                    core.on_agent_message(name, &incoming.payload, Instant::now());
                } else if let Some(request) = commands::parse(&core.topics.base, &incoming.topic, &incoming.payload) {
                    let (topic, response, action) = core.on_request(request);
                    link.publish_now(topic, response.to_string());
                    match action {
                        commands::Action::None => {}
                        commands::Action::PollNow => poll_now.send_modify(|n| *n += 1),
                        commands::Action::Restart => {
                            stopped = Stopped::Restart;
                            break;
                        }
                    }
                }
            }
            _ = agents_tick.tick() => core.check_silent_agents(Instant::now()),
            _ = health_tick.tick() => {
                match health::write(&state_dir, link.is_connected(), health::now_s()) {
                    Ok(()) => health_failing = false,
                    Err(e) if !health_failing => {
                        health_failing = true;
                        tracing::warn!(dir = %state_dir.display(), error = %e, "Cannot write the health file; `bandwidth2mqtt health` will report unhealthy.");
                    }
                    Err(_) => {}
                }
            }
            Some(event) = link.next_event() => match event {
                MqttEvent::Connected { first } => {
                    if first {
                        scan_end_at = Some(Instant::now() + migration::SCAN_FOR);
                    }
                    let _ = health::write(&state_dir, true, health::now_s());
                }
                MqttEvent::Config { topic, payload } => core.found_config(topic, &payload),
                MqttEvent::ScanDone => scan_end_at = scan_end_at.map(|_| Instant::now()),
                MqttEvent::HaOnline => {
                    let jitter = Duration::from_millis(rand::random::<u64>() % 1000);
                    republish_at = Some(Instant::now() + BIRTH_DELAY + jitter);
                }
            },
            _ = birth => {
                republish_at = None;
                core.outbox.mark(&[Priority::BridgeState, Priority::Availability, Priority::BridgeMeta, Priority::State]);
            }
            _ = scan_end => {
                scan_end_at = None;
                link.end_scan();
                core.outbox.hold_discovery(false);
            }
            _ = housekeeping.tick(), if !core.migration.is_idle() => {
                core.clear_migrated(std::time::Instant::now());
            }
            _ = refresh.tick() => core.outbox.mark(&[Priority::State]),
            _ = period_tick.tick() => core.tick_periods(sources::now_ms()),
        }
        for (topic, payload) in core.take_messages() {
            link.publish_now(topic, payload);
        }
    }

    tracing::info!(restart = stopped == Stopped::Restart, "Stopping.");
    pollers.cancel();
    side_tasks.cancel();
    // The totals first: nothing below may keep them from disk before a SIGKILL follows.
    while let Ok(report) = reports.try_recv() {
        core.handle(report);
    }
    core.save();
    // Each poller ends its poll at once and gets 1 s to log out; never wait much longer.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    // A restart binds the same port again.
    if let Some(task) = metrics_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    for (topic, payload) in core.take_messages() {
        link.publish_now(topic, payload);
    }
    link.shutdown(true).await;
    health::remove(&state_dir);
    tracing::info!("Stopped.");
    Ok(stopped)
}

/// What `once` did.
pub struct OnceOutcome {
    pub failed_sources: Vec<String>,
    /// With `--dry-run`: every message that would have been published.
    pub messages: Vec<crate::publish::Message>,
}

/// Polls every source once and publishes (or, dry, only renders) the result.
pub async fn once(config: LoadedConfig, dry_run: bool) -> Result<OnceOutcome, BridgeError> {
    let _lock = crate::accounting::lock_state_dir(&config.settings.bridge.state_dir, dry_run)?;
    let mut sources = sources::build(&config.settings);
    let mut core = Core::new(config, &mut sources, !dry_run)?;
    let mut link = if dry_run {
        None
    } else {
        core.outbox.hold_discovery(true);
        let mut link = core.connect()?;
        if !link.wait_connected(Duration::from_secs(15)).await {
            link.shutdown(false).await;
            return Err(BridgeError::BrokerUnreachable(core.config.mqtt_url.to_string()));
        }
        Some(link)
    };

    // Each source runs in its own task, so one slow source does not hold up the others.
    let mut polls = tokio::task::JoinSet::new();
    for mut source in sources.drain(..) {
        polls.spawn(async move {
            source.complete_each_poll();
            let result = source.poll().await;
            poller::close(&mut source).await;
            PollReport::of(&source, result)
        });
    }
    if let Some(link) = link.as_mut() {
        // The discovery scan (migration.rs) runs while the sources are polled.
        let scan_end = Instant::now() + migration::SCAN_FOR;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(scan_end) => break,
                Some(event) = link.next_event() => match event {
                    MqttEvent::Config { topic, payload } => core.found_config(topic, &payload),
                    MqttEvent::ScanDone => break,
                    _ => {}
                },
            }
        }
        link.end_scan();
        core.outbox.hold_discovery(false);
    }
    let mut reports = Vec::new();
    while let Some(joined) = polls.join_next().await {
        match joined {
            Ok(report) => reports.push(report),
            Err(e) => tracing::error!(error = %e, "A source task failed."),
        }
    }
    reports.sort_by(|a, b| a.source.cmp(&b.source));
    let failed_sources = reports
        .iter()
        .filter(|r| r.result.is_err())
        .map(|r| r.source.clone())
        .collect();
    for report in reports {
        core.take(report);
    }
    core.flush_first_round();
    core.render_bridge();
    core.outbox
        .put(core.topics.bridge_state(), "online", true, Priority::BridgeState);

    if dry_run {
        return Ok(OnceOutcome {
            failed_sources,
            messages: core.outbox.snapshot(),
        });
    }
    if let Some(mut link) = link.take() {
        let deadline = Instant::now() + Duration::from_secs(15);
        for round in 0..2 {
            while core.outbox.has_dirty() && Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = link.next_event() => {}
                }
            }
            // The new configs went out: now the migrated old topics can be cleared.
            if round == 0 && !core.migration.is_idle() {
                core.clear_migrated(std::time::Instant::now() + migration::CLEAR_AFTER);
            }
        }
        link.shutdown(false).await;
    }
    Ok(OnceOutcome {
        failed_sources,
        messages: Vec::new(),
    })
}
