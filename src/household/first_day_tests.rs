//! Right from the first day (issue 16 §1): an ASUS client read through its live counter and
//! the Traffic Analyzer, whose rows the emulator's database stamps as the router does (at the
//! end of their hour, asus.md §6.4). Observations are made the way the ASUS source makes them:
//! the analyzer's hours first, filed by `label_hours`, then the client list with the counter.
//! Bytes that a reading already holds are never added again, whichever source reports them
//! later: after a first reading at 23:50 following a busy evening, after an hour's stop, and
//! after a stop across midnight, whose last hour must land in yesterday, once.

use std::time::Duration;

use super::*;
use crate::emulators::asus::{Stamping, TrafficDb};
use crate::model::{BucketSample, CounterSample, Epoch, LiveSample, TrafficReading, TrafficSample, WrapRule};
use crate::sources::SourceKind;
use crate::sources::asus::row_stamps::RowStamps;
use crate::sources::asus::traffic_analyzer::label_hours;

const HOUR: i64 = 3600;
/// 2026-11-20 00:00 UTC: the evening is the 19th's.
const MIDNIGHT: i64 = 1_795_132_800;
const PC: &str = "AA:BB:CC:00:00:0A";
const TV: &str = "AA:BB:CC:00:00:0B";
/// A client the router has counted all along that joins the client list later.
const LATE: &str = "AA:BB:CC:00:00:0C";

/// The router, its two clients' traffic minute by minute, and the bridge's household.
struct Rig {
    db: TrafficDb,
    stamps: RowStamps,
    /// Router time up to which traffic was generated.
    t: i64,
    household: Household,
    /// From when the client list shows `LATE`.
    late_listed_from: i64,
    /// The next poll also reads each client's daily history (`mode=day&dura=31`).
    read_days: bool,
}

impl Rig {
    fn new(stamping: Stamping, start: i64) -> Self {
        let mut settings = Settings::default();
        settings.bridge.timezone = Some("UTC".into());
        let feeds = vec![(SourceKind::Asus.feed("home"), "asus")];
        let stamps = match stamping {
            Stamping::End => RowStamps::End,
            Stamping::Start => RowStamps::Start,
        };
        let mut db = TrafficDb::with_stamping(1, stamping);
        db.catch_up(start);
        Self {
            db,
            stamps,
            t: start,
            household: Household::new(&settings, feeds, PersistedState::default()),
            late_listed_from: i64::MAX,
            read_days: false,
        }
    }

    /// The PC pulls 1.8 MB/s from 20:00 to 23:30 and idles at 15 kB/s; the TV streams a
    /// steady 29 kB/s. Generated up to router time `to`.
    fn run_to(&mut self, to: i64) {
        while self.t + 60 <= to {
            let minute = self.t - MIDNIGHT;
            let busy = (-4 * HOUR..-HOUR / 2).contains(&minute);
            let pc = if busy { 108_000_000 } else { 900_000 };
            self.db.record(PC, "Steam", self.t, pc, pc / 20);
            self.db.record(TV, "Netflix", self.t, 1_740_000, 30_000);
            self.db.record(LATE, "Web", self.t, 600_000, 60_000);
            self.t += 60;
        }
        self.db.catch_up(to);
    }

    /// One poll at router time `at` (the bridge's clock agrees): the analyzer's window of this
    /// hour for each client, then the client list with the live counters.
    fn poll(&mut self, at: i64) {
        self.run_to(at);
        let router = DeviceId::new("home").unwrap();
        let hour = at - at.rem_euclid(HOUR);
        let mut observations = Vec::new();
        let mut router_obs = Observation::new(router.clone(), DeviceKind::Router);
        router_obs.online = Some(true);
        observations.push(router_obs);
        let late = (at >= self.late_listed_from).then_some(LATE);
        for mac in [PC, TV].into_iter().chain(late) {
            // As the ASUS source merges them: the hours, then the live counter.
            let pairs = self.db.hour_buckets(Some(mac), hour + HOUR - 31);
            let hours = label_hours(&pairs, hour + HOUR - 31, self.stamps).unwrap();
            let [tx, rx] = self.db.live.get(mac).copied().unwrap_or_default();
            let mut obs = client(mac, &router);
            if self.read_days {
                use crate::sources::asus::day_history::{DAYS, day_history, window_date};
                let midnight = at - at.rem_euclid(86_400);
                let date = window_date(midnight, self.stamps);
                let pairs = self.db.day_buckets(Some(mac), date, DAYS as i64);
                let today = self.household.calendar.day_of(at * 1000);
                obs.history = day_history(&pairs, today, midnight);
            }
            obs.traffic.push(TrafficReading {
                interface: None,
                sample: TrafficSample::Buckets(BucketSample { hours }),
            });
            obs.traffic.push(TrafficReading {
                interface: None,
                sample: TrafficSample::Live(LiveSample {
                    counter: CounterSample {
                        rx,
                        tx,
                        epoch: Some(Epoch::Id("dpi-0".into())),
                        at_ms: at * 1000,
                        wrap: WrapRule::Never,
                        rate_window: Duration::from_secs(90),
                    },
                    clock_s: at,
                }),
            });
            observations.push(obs);
        }
        self.household.apply("home", observations, at * 1000);
    }

    /// Polls every 30 s from `from` to `to` (both included).
    fn poll_every_30_s(&mut self, from: i64, to: i64) {
        for t in (from..=to).step_by(30) {
            self.poll(t);
        }
    }

    fn total(&self, mac: &str) -> [u64; 2] {
        let t = self.household.device(&id(mac)).map(|d| d.totals).unwrap_or_default();
        [t.rx, t.tx]
    }

    fn periods(&self, mac: &str) -> periods::Periods {
        self.household.periods.get(&id(mac)).cloned().unwrap_or_default()
    }

    /// The router's bytes of `mac` booked between readings at `from` and `to` (a minute's
    /// bytes are booked at its end; both on the minute).
    fn truth(&self, mac: &str, from: i64, to: i64) -> [u64; 2] {
        let _ = self;
        let mut sum = [0u64; 2];
        for m in (from..to).step_by(60) {
            let minute = m - MIDNIGHT;
            let [rx, tx] = match mac {
                PC if (-4 * HOUR..-HOUR / 2).contains(&minute) => [108_000_000, 5_400_000],
                PC => [900_000, 45_000],
                _ => [1_740_000, 30_000],
            };
            sum = [sum[0] + rx, sum[1] + tx];
        }
        sum
    }
}

/// A minute's bytes are booked at its end: what a reading at `t` holds ends at the minute.
fn on_minute(t: i64) -> i64 {
    t - t.rem_euclid(60)
}

fn id(mac: &str) -> DeviceId {
    DeviceId::from_mac(mac.parse().unwrap())
}

fn client(mac: &str, router: &DeviceId) -> Observation {
    let m: MacAddr = mac.parse().unwrap();
    let mut obs = Observation::new(DeviceId::from_mac(m), DeviceKind::Client);
    obs.info.macs.push(m);
    obs.info.via = Some(router.clone());
    obs.online = Some(true);
    obs
}

fn grew(after: [u64; 2], before: [u64; 2]) -> [u64; 2] {
    [after[0] - before[0], after[1] - before[1]]
}

#[test]
fn a_first_reading_after_a_busy_evening_then_hours_later_counts_each_byte_once() {
    for stamping in [Stamping::End, Stamping::Start] {
        // The router (and its engine) came up at noon; the bridge is installed at 23:50.
        let mut rig = Rig::new(stamping, MIDNIGHT - 12 * HOUR);
        let first = MIDNIGHT - 600;
        rig.poll(first);
        let at_first = rig.total(PC);
        assert_eq!(
            at_first,
            rig.truth(PC, MIDNIGHT - 12 * HOUR, first),
            "{stamping:?}: the since-boot counter"
        );
        // The next reading three hours later (another `once`): exactly what the counter moved.
        let next = first + 3 * HOUR;
        rig.poll(next);
        for mac in [PC, TV] {
            let before = if mac == PC {
                at_first
            } else {
                rig.truth(TV, MIDNIGHT - 12 * HOUR, first)
            };
            assert_eq!(
                grew(rig.total(mac), before),
                rig.truth(mac, first, next),
                "{stamping:?} {mac}: the 23:00 hour counted again"
            );
            // The periods hold the finished hours the first reading held (from 12:00 to 23:00,
            // first_hours.rs), then what the total added; the 50 minutes of the hour in progress
            // at the first reading are in the total only.
            let p = rig.periods(mac);
            let held = rig.truth(mac, MIDNIGHT - 12 * HOUR, MIDNIGHT - HOUR);
            let moved = rig.truth(mac, first, next);
            assert_eq!(
                [p.today.rx + p.yesterday.rx, p.today.tx + p.yesterday.tx],
                [held[0] + moved[0], held[1] + moved[1]],
                "{stamping:?} {mac}"
            );
            // The whole hours after midnight are today's.
            assert!(p.today.rx >= rig.truth(mac, MIDNIGHT, MIDNIGHT + 2 * HOUR)[0]);
        }
        // Polls every 30 s for two more hours: still exact, never ahead.
        let mut last = rig.total(PC);
        for t in (next + 30..next + 2 * HOUR).step_by(30) {
            rig.poll(t);
            let total = rig.total(PC);
            let moved = rig.truth(PC, first, on_minute(t));
            let exact = [at_first[0] + moved[0], at_first[1] + moved[1]];
            assert_eq!(total, exact, "{stamping:?} at {t}");
            assert!(total[0] >= last[0] && total[1] >= last[1]);
            last = total;
        }
    }
}

#[test]
fn a_restart_after_an_hours_stop_counts_the_stop_once() {
    for stamping in [Stamping::End, Stamping::Start] {
        let start = MIDNIGHT - 6 * HOUR;
        let mut rig = Rig::new(stamping, start - 6 * HOUR);
        rig.poll_every_30_s(start, start + 2 * HOUR);
        let before = rig.total(PC);
        // Stopped from 20:00 + 10 min for an hour and a quarter, across the busy evening.
        let back = start + 2 * HOUR + 75 * 60;
        rig.poll_every_30_s(back, back + 3 * HOUR);
        let end = back + 3 * HOUR;
        assert_eq!(
            grew(rig.total(PC), before),
            rig.truth(PC, start + 2 * HOUR, end),
            "{stamping:?}"
        );
        let tv_first = rig.truth(TV, start - 6 * HOUR, start);
        assert_eq!(
            rig.total(TV),
            {
                let t = rig.truth(TV, start, end);
                [tv_first[0] + t[0], tv_first[1] + t[1]]
            },
            "{stamping:?}"
        );
    }
}

#[test]
fn a_stop_across_midnight_puts_the_last_hour_in_yesterday_once() {
    let start = MIDNIGHT - 3 * HOUR;
    let mut rig = Rig::new(Stamping::End, start - 6 * HOUR);
    rig.poll_every_30_s(start, MIDNIGHT - 40 * 60);
    let before = rig.total(PC);
    let yesterday_before = rig.periods(PC).today;
    // Stopped at 23:20, back at 00:40: the analyzer's 23:00 hour is written by then.
    let back = MIDNIGHT + 40 * 60;
    rig.poll(back);
    let p = rig.periods(PC);
    let truth_yesterday = rig.truth(PC, MIDNIGHT - 40 * 60, MIDNIGHT);
    assert_eq!(
        [
            p.yesterday.rx - yesterday_before.rx,
            p.yesterday.tx - yesterday_before.tx
        ],
        truth_yesterday,
        "the last hour's part after the stop lands in yesterday"
    );
    assert_eq!(
        [p.today.rx, p.today.tx],
        rig.truth(PC, MIDNIGHT, back),
        "today only after midnight"
    );
    assert_eq!(grew(rig.total(PC), before), rig.truth(PC, MIDNIGHT - 40 * 60, back));
    // Later polls add nothing twice to either day.
    rig.poll_every_30_s(back + 30, back + 2 * HOUR);
    let p = rig.periods(PC);
    assert_eq!(
        [
            p.yesterday.rx - yesterday_before.rx,
            p.yesterday.tx - yesterday_before.tx
        ],
        truth_yesterday
    );
    assert_eq!([p.today.rx, p.today.tx], rig.truth(PC, MIDNIGHT, back + 2 * HOUR));
}

/// A device another source listed first without traffic (a Deco unit, from the Deco's poll):
/// the first counter that counts it (the ASUS's live counter of the unit's uplink, since the
/// router booted days ago) is its total so far, not today's traffic (issue 16 §3: the demo's
/// main Deco unit read 105 GiB "today" at 03:00).
#[test]
fn a_device_listed_first_without_traffic_does_not_book_its_first_total_today() {
    let mut settings = Settings::default();
    settings.bridge.timezone = Some("UTC".into());
    let feeds = vec![
        (SourceKind::Asus.feed("home"), "asus"),
        (SourceKind::Deco.feed("mesh"), "deco"),
    ];
    let mut household = Household::new(&settings, feeds, PersistedState::default());
    let node = DeviceId::new("f0090dfa297c").unwrap();
    let at = MIDNIGHT + 3 * HOUR;
    let mut listed = Observation::new(node.clone(), DeviceKind::MeshNode);
    listed.online = Some(true);
    household.apply("mesh", vec![listed], at * 1000);
    let counted = |rx: u64, tx: u64, at: i64| {
        let mut obs = Observation::new(node.clone(), DeviceKind::MeshNode);
        obs.online = Some(true);
        obs.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Live(LiveSample {
                counter: CounterSample {
                    rx,
                    tx,
                    epoch: Some(Epoch::Id("dpi-0".into())),
                    at_ms: at * 1000,
                    wrap: WrapRule::Never,
                    rate_window: Duration::from_secs(90),
                },
                clock_s: at,
            }),
        });
        obs
    };
    household.apply(
        "home",
        vec![counted(111_000_000_000, 29_000_000_000, at + 5)],
        (at + 5) * 1000,
    );
    let totals = household.device(&node).map(|d| d.totals).unwrap_or_default();
    assert_eq!(
        [totals.rx, totals.tx],
        [111_000_000_000, 29_000_000_000],
        "its total so far"
    );
    let p = household.periods.get(&node).cloned().unwrap_or_default();
    assert_eq!([p.today.rx, p.today.tx, p.this_month.rx, p.this_month.tx], [0; 4]);
    // What it moves from then on is today's.
    household.apply(
        "home",
        vec![counted(111_004_000_000, 29_001_000_000, at + 35)],
        (at + 35) * 1000,
    );
    let p = household.periods.get(&node).cloned().unwrap_or_default();
    assert_eq!([p.today.rx, p.today.tx], [4_000_000, 1_000_000]);
    assert_eq!([p.this_month.rx, p.this_month.tx], [4_000_000, 1_000_000]);
}

/// Issue 16 §2, the router's part: installed on the 20th at noon, a client's today is the
/// router's own hours since midnight and yesterday its hours from noon (all the 24 hourly rows
/// reach); later polls add exactly what the counter moved.
#[test]
fn installed_at_noon_a_clients_today_is_the_routers_own_hours() {
    let noon = MIDNIGHT + 12 * HOUR;
    let mut rig = Rig::new(Stamping::End, MIDNIGHT - 36 * HOUR);
    let first = noon + 120;
    rig.poll(first);
    let iso = |s: i64| {
        format!(
            "{}",
            jiff::Timestamp::from_second(s)
                .unwrap()
                .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        )
    };
    for mac in [PC, TV] {
        let p = rig.periods(mac);
        let today = rig.truth(mac, MIDNIGHT, noon);
        let yesterday = rig.truth(mac, MIDNIGHT - 12 * HOUR, MIDNIGHT);
        assert_eq!([p.today.rx, p.today.tx], today, "{mac}: every hour since midnight");
        assert_eq!(
            [p.yesterday.rx, p.yesterday.tx],
            yesterday,
            "{mac}: the hours from noon"
        );
        assert_eq!(
            [p.this_month.rx, p.this_month.tx],
            [today[0] + yesterday[0], today[1] + yesterday[1]]
        );
        let state = crate::publish::state::device_state(
            rig.household.device(&id(mac)).unwrap(),
            crate::publish::state::StateClock {
                now_ms: first * 1000,
                consider_home_ms: 0,
                sources_down_ms: None,
            },
        );
        let since = &state["complete_since"];
        assert_eq!(since["today"], iso(MIDNIGHT), "{state}");
        assert_eq!(
            since["yesterday"],
            iso(MIDNIGHT - 12 * HOUR),
            "only the last 24 hours are kept"
        );
        assert_eq!(since["month"], iso(MIDNIGHT - 12 * HOUR));
        assert_eq!(state["rx_yesterday"], yesterday[0]);
    }
    // Two polls later nothing is counted twice: today grows by what the total grew.
    let (p0, t0) = (rig.periods(PC), rig.total(PC));
    for at in [noon + 32 * 60, noon + HOUR + 5 * 60] {
        rig.poll(at);
        let (p, t) = (rig.periods(PC), rig.total(PC));
        assert_eq!(
            [p.today.rx - p0.today.rx, p.today.tx - p0.today.tx],
            grew(t, t0),
            "at {at}"
        );
        assert_eq!(p.yesterday, p0.yesterday);
        assert_eq!(grew(t, t0), rig.truth(PC, on_minute(first), on_minute(at)));
    }
}

/// A client that joins the list after the source's first poll counts from that hour (churn.rs):
/// its first live reading is its total so far (what the router counted for it), none of its
/// earlier hours goes to its periods, and from then on they add exactly what its total added.
#[test]
fn a_client_listed_after_the_first_poll_gets_no_hours_from_before_in_its_periods() {
    let noon = MIDNIGHT + 12 * HOUR;
    let mut rig = Rig::new(Stamping::End, MIDNIGHT - 36 * HOUR);
    rig.late_listed_from = noon + 40 * 60;
    rig.poll_every_30_s(noon, noon + 40 * 60);
    let (p0, t0) = (rig.periods(LATE), rig.total(LATE));
    assert!(t0[0] > 0, "its first reading is its total so far");
    assert_eq!([p0.today.rx, p0.today.tx], [0, 0], "and not today's traffic");
    rig.poll_every_30_s(noon + 40 * 60 + 30, noon + 2 * HOUR + 30 * 60);
    let p = rig.periods(LATE);
    let total = rig.total(LATE);
    assert_eq!(
        [p.today.rx, p.today.tx],
        [total[0] - t0[0], total[1] - t0[1]],
        "today is what its total added, nothing from before"
    );
    assert_eq!(p.yesterday, crate::accounting::Totals::default());
}

/// Issue 16 "Done when", the router's part with its daily history: installed on the 20th at
/// noon, a client's yesterday, this month and last month are the router's own (exact here, the
/// emulator keeps every row), today its hours; two polls later nothing is counted twice.
#[test]
fn with_the_daily_history_a_clients_month_and_yesterday_are_the_routers_own() {
    const DAY: i64 = 86_400;
    let noon = MIDNIGHT + 12 * HOUR;
    let november = MIDNIGHT - 19 * DAY;
    let booted = MIDNIGHT - 23 * DAY;
    let mut rig = Rig::new(Stamping::End, booted);
    rig.read_days = true;
    let first = noon + 120;
    rig.poll(first);
    rig.read_days = false;
    for mac in [PC, TV] {
        let p = rig.periods(mac);
        let pair = |t: crate::accounting::Totals| [t.rx, t.tx];
        assert_eq!(pair(p.yesterday), rig.truth(mac, MIDNIGHT - DAY, MIDNIGHT), "{mac}");
        assert_eq!(pair(p.today), rig.truth(mac, MIDNIGHT, noon), "{mac}");
        assert_eq!(pair(p.this_month), rig.truth(mac, november, noon), "{mac}");
        assert_eq!(pair(p.last_month), rig.truth(mac, booted, november), "{mac}");
        let c = p.complete_since;
        assert_eq!(c.yesterday, Some((MIDNIGHT - DAY) * 1000));
        assert_eq!(c.this_month, Some(november * 1000));
        assert_eq!(
            c.last_month,
            Some((MIDNIGHT - 31 * DAY) * 1000),
            "the 31 days reach 20 October"
        );
    }
    let (p0, t0) = (rig.periods(PC), rig.total(PC));
    for at in [noon + 32 * 60, noon + HOUR + 5 * 60] {
        rig.poll(at);
        let (p, t) = (rig.periods(PC), rig.total(PC));
        let grown = grew(t, t0);
        assert_eq!([p.today.rx - p0.today.rx, p.today.tx - p0.today.tx], grown, "at {at}");
        assert_eq!(
            [p.this_month.rx - p0.this_month.rx, p.this_month.tx - p0.this_month.tx],
            grown
        );
        assert_eq!((p.yesterday, p.last_month), (p0.yesterday, p0.last_month));
    }
}
