//! The daemon's loop and `once`, started in-process from [`Parts`]: everything the bridge takes
//! from outside (configuration with the state dir and the MQTT settings, the sources, the
//! clock, the MQTT link) comes in through that one struct, so `main`, the demo and the tests
//! start the same bridge and differ only in what they inject: the in-process tests give it an
//! in-memory link (publish/link_memory.rs) and tokio's paused time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
// Real time: the MQTT link's pacing (birth, discovery scan, migration, refresh of retained
// states, health file, agent silence). The broker does not run faster in the demo.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{BIRTH_DELAY, BridgeError, Core, PERIOD_TICK, PollReport, Stopped, VERSION, commands, health, poller};
use crate::clock::Clock;
use crate::config::LoadedConfig;
use crate::publish::link_rumqttc::Rumqttc;
use crate::publish::{Connector, MqttEvent, Priority, migration};
use crate::sources::{AnySource, Source};

/// What a bridge is made of. `config` holds the settings, the state dir
/// (`settings.bridge.state_dir`) and the MQTT connection (`settings.mqtt`, `mqtt_url`).
pub struct Parts {
    pub config: LoadedConfig,
    pub sources: Vec<AnySource>,
    /// Stamps observations, schedules polls and decides days and months.
    pub clock: Clock,
    /// Makes the MQTT link (publish/link.rs): rumqttc to `mqtt_url` unless replaced.
    pub link: Arc<dyn Connector>,
}

impl Parts {
    /// The configured sources on the real clock: the daemon.
    pub fn new(config: LoadedConfig) -> Self {
        Self::on_clock(config, Clock::system())
    }

    /// The configured sources on `clock`.
    pub fn on_clock(config: LoadedConfig, clock: Clock) -> Self {
        let sources = super::build_sources(&config.settings, &clock);
        Self {
            config,
            sources,
            clock,
            link: Arc::new(Rumqttc),
        }
    }

    /// Another MQTT link than rumqttc (tests: an in-memory broker).
    pub fn with_link(mut self, link: Arc<dyn Connector>) -> Self {
        self.link = link;
        self
    }

    /// Other sources than the configured ones (tests); they are put on this bridge's clock.
    pub fn with_sources(mut self, mut sources: Vec<AnySource>) -> Self {
        for source in &mut sources {
            source.set_clock(&self.clock);
        }
        self.sources = sources;
        self
    }

    pub fn state_dir(&self) -> &Path {
        &self.config.settings.bridge.state_dir
    }
}

/// Runs the bridge until `shutdown` is cancelled (a `restart` command also ends it).
pub async fn run(parts: Parts, shutdown: CancellationToken) -> Result<(), BridgeError> {
    run_until(parts, shutdown).await.map(|_| ())
}

/// Runs the bridge until `shutdown` is cancelled or a `restart` command; says which.
pub async fn run_until(parts: Parts, shutdown: CancellationToken) -> Result<Stopped, BridgeError> {
    let Parts {
        config,
        mut sources,
        clock,
        link: connector,
    } = parts;
    let _lock = crate::accounting::lock_state_dir(&config.settings.bridge.state_dir, false)?;
    let mut core = Core::new(config, &mut sources, true, clock.clone())?;
    let settings = core.config.settings.clone();
    // Until the scan for configs to migrate is over (migration.rs).
    core.outbox.hold_discovery(true);
    let filters = vec![core.topics.bridge_requests(), core.topics.agent_counters()];
    let mut link = core.connect(connector.as_ref(), filters)?;
    let Some(mut incoming) = link.take_incoming() else {
        unreachable!("a new link has its inbox")
    };
    core.link_stats = Some(link.stats());
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
    // Sent discovery configs are dropped and rendered again when a reconnect replays them
    // (replay.rs): the loop below answers the outbox's requests.
    core.outbox.forget_sent_discovery();
    let outbox = core.outbox.clone();

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
            clock.clone(),
        ));
    }
    drop(report_tx);

    let mut refresh = tokio::time::interval_at(
        Instant::now() + settings.mqtt.refresh_interval,
        settings.mqtt.refresh_interval,
    );
    let mut republish_at: Option<Instant> = None;
    // Days and months end even while every source is down.
    let mut period_tick = clock.interval(PERIOD_TICK);
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
            wanted = outbox.wanted() => core.render_again(wanted),
            Some(incoming) = incoming.recv() => {
                if let Some(name) = crate::agent::agent_name(&core.topics.base, &incoming.topic) {
                    core.on_agent_message(name, &incoming.payload, Instant::now());
                } else if let Some(request) = match incoming.oversized {
                    Some(size) => commands::too_large(&core.topics.base, &incoming.topic, size),
                    None => commands::parse(&core.topics.base, &incoming.topic, &incoming.payload),
                } {
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
                if core.migration.is_idle() {
                    scan_end_at = None;
                    link.end_scan();
                    core.outbox.hold_discovery(false);
                } else {
                    // Old topics still to clear: the new configs wait for them (migration.rs).
                    core.clear_migrated(std::time::Instant::now());
                    scan_end_at = Some(Instant::now() + Duration::from_millis(200));
                }
            }
            _ = housekeeping.tick(), if !core.migration.is_idle() => {
                core.clear_migrated(std::time::Instant::now());
            }
            _ = refresh.tick() => core.outbox.mark(&[Priority::State]),
            _ = period_tick.tick() => core.tick_periods(clock.now_ms()),
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
    core.save_final();
    core.save_agent_memory(true);
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
pub async fn once(parts: Parts, dry_run: bool) -> Result<OnceOutcome, BridgeError> {
    let Parts {
        config,
        mut sources,
        clock,
        link: connector,
    } = parts;
    let _lock = crate::accounting::lock_state_dir(&config.settings.bridge.state_dir, dry_run)?;
    let mut core = Core::new(config, &mut sources, !dry_run, clock.clone())?;
    let mut link = if dry_run {
        None
    } else {
        core.outbox.hold_discovery(true);
        let mut link = core.connect(connector.as_ref(), Vec::new())?;
        if !link.wait_connected(Duration::from_secs(15)).await {
            link.shutdown(false).await;
            return Err(BridgeError::BrokerUnreachable(core.config.mqtt_url.to_string()));
        }
        Some(link)
    };

    // Each source runs in its own task, so one slow source does not hold up the others.
    let mut polls = tokio::task::JoinSet::new();
    for mut source in sources.drain(..) {
        let clock = clock.clone();
        polls.spawn(async move {
            source.complete_each_poll();
            let result = source.poll().await;
            poller::close(&mut source).await;
            PollReport::of(&source, result, &clock)
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
        // Old topics are cleared before the new configs go (migration.rs).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !core.migration.is_idle() && Instant::now() < deadline {
            core.clear_migrated(std::time::Instant::now() + migration::CLEAR_AFTER);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = link.next_event() => {}
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
    core.save_final();
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
        while core.outbox.has_dirty() && Instant::now() < deadline {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = link.next_event() => {}
            }
        }
        link.shutdown(false).await;
    }
    Ok(OnceOutcome {
        failed_sources,
        messages: Vec::new(),
    })
}
