//! Issue 16 §2 "Done when", the ASUS part, end to end in process: the emulated router (its
//! Traffic Analyzer keeps every row) has counted its clients for ten days; the ASUS source (as
//! `once` runs it: the whole refresh in one poll) reads its live counters, hours and daily
//! history over HTTP, and the household fills the periods. Each client's yesterday and month
//! are within 1 % of the router's own history. Today comes from the hours, which the first
//! refresh holds back until the live counters confirm how rows are stamped (row_stamps.rs):
//! the month then holds its whole days, and today joins it when the hours do (first_hours.rs).

use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::config::{AsusSettings, Secret};
use crate::emulators::asus::{AsusConfig, AsusEmulator};
use crate::sources::asus::day_history::{DAYS, window_date};
use crate::sources::asus::row_stamps::RowStamps;
use crate::sources::{AnySource, Source};

const DAY: i64 = 86_400;
/// 2026-11-20 00:00 UTC.
const MIDNIGHT: i64 = 1_795_132_800;

fn within_1_percent(got: u64, want: u64, what: &str) {
    let diff = got.abs_diff(want) as f64;
    assert!(diff <= want as f64 * 0.01, "{what}: {got} vs the router's {want}");
}

#[tokio::test]
async fn installed_on_the_20th_at_noon_a_clients_yesterday_and_month_are_the_routers_own() {
    let emu = AsusEmulator::start(
        AsusConfig {
            clients: 3,
            live_traffic: true,
            traffic_analyzer: true,
            clock_start: Some(MIDNIGHT - 10 * DAY),
            ..AsusConfig::default()
        },
        false,
    )
    .await
    .unwrap();
    emu.with(|s| {
        // Traffic from the clock's start (the first call starts the generator).
        s.advance();
        s.clock.advance(10 * DAY + 12 * 3600 + 120);
        s.advance();
    });
    let mut settings = Settings::default();
    settings.bridge.timezone = Some("UTC".into());
    // The source's login journal goes here, not into the working directory's `data`.
    let dir = tempfile::tempdir().unwrap();
    settings.bridge.state_dir = dir.path().to_path_buf();
    settings.host.enabled = false;
    settings.asus.insert(
        "home".into(),
        AsusSettings {
            url: emu.url(),
            username: "admin".into(),
            password: Some(Secret::new("router-pass")),
            interval: Duration::from_secs(30),
            ..AsusSettings::default()
        },
    );
    let now = emu.with(|s| s.clock.now());
    let clock = ManualClock::new(now * 1000);
    let mut sources = crate::bridge::build_sources(&settings, &clock.clock());
    let Some(mut source) = sources.pop() else {
        panic!("the ASUS source")
    };
    assert!(matches!(source, AnySource::Asus(_)));
    source.complete_each_poll();
    let feeds = vec![(source.kind().feed(source.name()), "asus")];
    let mut household = Household::new(&settings, feeds, PersistedState::default());
    let observations = source.poll().await.expect("the poll succeeds");
    household.apply("home", observations, now * 1000);

    let macs: Vec<String> = emu.with(|s| s.clients.iter().map(|c| c.mac.to_string().to_uppercase()).collect());
    for mac in &macs {
        let (yesterday, month, today) = emu.with(|s| {
            let days =
                s.ta.day_buckets(Some(mac), window_date(MIDNIGHT, RowStamps::End), DAYS as i64);
            // The window whose last bucket is the row written at 12:00 (the hour 11:00–12:00).
            let hours = s.ta.hour_buckets(Some(mac), now - now % 3600 + 3600 - 31);
            // [tx, rx] pairs: yesterday, the 1st to the 19th, the finished hours of today.
            let rx = |p: &[u64; 2]| p[1];
            let month: u64 = days[DAYS - 19..].iter().map(rx).sum();
            let today: u64 = hours[hours.len() - 12..].iter().map(rx).sum();
            (rx(&days[DAYS - 1]), month, today)
        });
        let id = DeviceId::from_mac(mac.parse().unwrap());
        let p = household.periods.get(&id).cloned().unwrap_or_default();
        assert!(yesterday > 0 && today > 0, "{mac}: the router has traffic");
        within_1_percent(p.yesterday.rx, yesterday, "yesterday");
        within_1_percent(p.this_month.rx - p.today.rx, month, "this month's whole days");
        assert!(
            p.today.rx <= today,
            "{mac}: today holds no more than the router's hours"
        );
    }
}
