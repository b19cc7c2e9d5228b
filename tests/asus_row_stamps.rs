//! The Traffic Analyzer's row stamps, end to end in-process (issue 22 §2): the real ASUS source
//! polls the emulated router over HTTP on 127.0.0.1 every 30 router seconds (a stepping clock,
//! no waiting), and the household counts. The router stamps rows at the end of their hour (its
//! GPL sources) or at the start (the old guess): either way the source finds out from the live
//! counters, says so in its details, and every client stays at or under the truth at every
//! poll, exact again once the analyzer has filled in what an engine restart during an outage
//! lost, a burst included.

use std::collections::BTreeMap;
use std::time::Duration;

use bandwidth2mqtt::accounting::PersistedState;
use bandwidth2mqtt::config::{AsusSettings, Secret, Settings};
use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator, Stamping};
use bandwidth2mqtt::household::Household;
use bandwidth2mqtt::model::{DeviceId, MacAddr};
use bandwidth2mqtt::sources::asus::AsusSource;
use bandwidth2mqtt::sources::{Source, SourceKind};

const MIDNIGHT: i64 = 1_795_564_800;
const STEP: i64 = 30;

struct Rig {
    emu: AsusEmulator,
    source: AsusSource,
    household: Household,
    macs: Vec<MacAddr>,
}

impl Rig {
    async fn start(stamping: Stamping) -> Self {
        let emu = AsusEmulator::start(
            AsusConfig {
                clients: 6,
                steady_clients: 2,
                live_traffic: true,
                traffic_monitor: true,
                clock_start: Some(MIDNIGHT),
                clock_step: Some(STEP),
                ta_stamping: stamping,
                ..AsusConfig::default()
            },
            false,
        )
        .await
        .unwrap();
        // Ten minutes of traffic before the bridge starts, so the counters list every client.
        emu.with(|s| {
            s.advance();
            s.clock.advance(600 - STEP);
            s.advance();
        });
        let (username, password, macs) = emu.with(|s| {
            let macs = s.clients.iter().filter(|c| c.online).map(|c| c.mac).collect();
            (s.config.username.clone(), s.config.password.clone(), macs)
        });
        let settings = AsusSettings {
            url: emu.url(),
            username,
            password: Some(Secret::new(password)),
            interval: Duration::from_secs(STEP as u64),
            traffic_analyzer: true,
            ..AsusSettings::default()
        };
        let mut household_settings = Settings::default();
        household_settings.bridge.timezone = Some("UTC".into());
        Self {
            source: AsusSource::new("home", &settings),
            household: Household::new(
                &household_settings,
                vec![(SourceKind::Asus.feed("home"), "asus")],
                PersistedState::default(),
            ),
            emu,
            macs,
        }
    }

    fn router_time(&self) -> i64 {
        self.emu.with(|s| s.clock.now())
    }

    /// One poll: the router's clock steps 30 s, the household counts what the source saw.
    async fn poll(&mut self) {
        let observations = self.source.poll().await.expect("the emulator answers");
        let now_ms = self.router_time() * 1000;
        self.household.apply("home", observations, now_ms);
    }

    /// Every client's total and the router's truth, by MAC.
    fn totals(&self) -> BTreeMap<MacAddr, ([u64; 2], [u64; 2])> {
        self.macs
            .iter()
            .map(|mac| {
                let total = self
                    .household
                    .device(&DeviceId::from_mac(*mac))
                    .map(|d| [d.totals.rx, d.totals.tx])
                    .unwrap_or_default();
                let (rx, tx) = self.emu.with(|s| s.ta.truth(&mac.to_string()));
                (*mac, (total, [rx, tx]))
            })
            .collect()
    }

    /// Polls until router time `until`; no client is ever ahead of the truth.
    async fn poll_until(&mut self, until: i64) {
        while self.router_time() < until {
            self.poll().await;
            let t = self.router_time();
            for (mac, (total, truth)) in self.totals() {
                assert!(
                    total[0] <= truth[0] && total[1] <= truth[1],
                    "{mac} at router time {t}: {total:?} ahead of the truth {truth:?}"
                );
            }
        }
    }
}

async fn row_stamps_are_found_and_every_client_ends_exact(stamping: Stamping, expected: &str) {
    let mut rig = Rig::start(stamping).await;
    rig.poll_until(MIDNIGHT + 3 * 3600).await;
    let details = rig.source.details();
    let found = details["traffic_analyzer_rows_stamped"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(found.starts_with(expected), "{stamping:?}: {found}");
    assert!(found.contains("seen in the live counters"), "{stamping:?}: {found}");

    // An outage of 40 minutes: a burst, then the DPI engine restarts. The counters lose both.
    let burst = rig.macs[3];
    rig.emu.with(|s| {
        s.clock.advance(1200);
        s.advance();
        s.add_client_traffic(burst, "Steam", 2_000_000_000, 20_000_000);
        s.clock.advance(600);
        s.advance();
        s.dpi_restart();
        s.clock.advance(600);
        s.advance();
    });
    let back = rig.router_time();
    rig.poll_until(back + 3 * 3600).await;
    for (mac, (total, truth)) in rig.totals() {
        for d in 0..2 {
            let error = (truth[d] - total[d]) as f64 / truth[d] as f64;
            println!(
                "{stamping:?} {mac} [{d}]: {} of {} ({:.4} % short)",
                total[d],
                truth[d],
                error * 100.0
            );
            assert!(error <= 0.001, "{stamping:?} {mac}: {total:?} against {truth:?}");
        }
    }
}

#[tokio::test]
async fn end_stamped_rows_are_the_hour_before_their_stamp() {
    row_stamps_are_found_and_every_client_ends_exact(Stamping::End, "end of their hour").await;
}

#[tokio::test]
async fn start_stamped_rows_are_found_and_filed_under_their_own_hour() {
    row_stamps_are_found_and_every_client_ends_exact(Stamping::Start, "start of their hour").await;
}
