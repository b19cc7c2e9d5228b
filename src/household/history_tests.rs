//! Issue 16 §2 "Done when", vnstat part: a server whose vnstat has counted since the 25th of
//! last month; the bridge is installed on the 20th at noon. The real vnstat source runs a fake
//! `vnstat` script (it prints the document of the mode it is asked for, rendered from one
//! database state) on the injected clock. At the first round the periods equal vnstat's own
//! day and month entries; the next polls add exactly the traffic between them; after an outage
//! across midnight yesterday is vnstat's whole day, once.

use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::config::VnstatSettings;
use crate::publish::state::{StateClock, device_state};
use crate::sources::vnstat::VnstatSource;
use crate::sources::{Source, SourceKind};

const DAY: i64 = 86_400;
/// 2026-11-20 00:00 UTC.
const MIDNIGHT: i64 = 1_795_132_800;
/// vnstat began counting on 2026-10-25 (the 25th of last month).
const CREATED: i64 = MIDNIGHT - 26 * DAY;

/// Bytes per second received on a day (a different rate every day), sent: an eighth.
fn rate(day_start: i64) -> u64 {
    10_000 + 700 * ((day_start / DAY) % 7) as u64
}

/// vnstat's database of one interface at a save at `updated` (a multiple of 5 minutes).
struct Db {
    updated: i64,
}

impl Db {
    /// Bytes of the day starting at `day_start` saved by `self.updated`.
    fn day(&self, day_start: i64) -> (u64, u64) {
        let from = day_start.max(CREATED);
        let to = (day_start + DAY).min(self.updated);
        let rx = rate(day_start) * (to - from).max(0) as u64;
        (rx, rx / 8)
    }

    fn days(&self) -> Vec<(i64, (u64, u64))> {
        (0..)
            .map(|n| CREATED + n * DAY)
            .take_while(|d| *d < self.updated)
            .map(|d| (d, self.day(d)))
            .collect()
    }

    /// (first day of month, bytes) for every calendar month with data.
    fn months(&self) -> Vec<(jiff::civil::Date, (u64, u64))> {
        let mut out: Vec<(jiff::civil::Date, (u64, u64))> = Vec::new();
        for (d, (rx, tx)) in self.days() {
            let first = date(d).first_of_month();
            match out.last_mut() {
                Some((m, t)) if *m == first => *t = (t.0 + rx, t.1 + tx),
                _ => out.push((first, (rx, tx))),
            }
        }
        out
    }

    fn total(&self) -> (u64, u64) {
        self.days().iter().fold((0, 0), |a, (_, t)| (a.0 + t.0, a.1 + t.1))
    }

    /// `vnstat --json <mode> <limit>` as vnStat 2.10 prints it.
    fn render(&self, mode: &str, limit: usize) -> String {
        let stamp = |s: i64, time: bool| {
            let d = date(s);
            let t = if time {
                format!(
                    r#","time":{{"hour":{},"minute":{}}}"#,
                    (s % DAY) / 3600,
                    (s % 3600) / 60
                )
            } else {
                String::new()
            };
            format!(
                r#"{{"date":{{"year":{},"month":{},"day":{}}}{t},"timestamp":{s}}}"#,
                d.year(),
                d.month(),
                d.day()
            )
        };
        let newest = |v: Vec<String>| v[v.len().saturating_sub(limit)..].join(",");
        let table = match mode {
            "d" => format!(
                r#","day":[{}]"#,
                newest(
                    self.days()
                        .iter()
                        .enumerate()
                        .map(|(i, (d, (rx, tx)))| {
                            let dt = date(*d);
                            format!(
                                r#"{{"id":{i},"date":{{"year":{},"month":{},"day":{}}},"timestamp":{d},"rx":{rx},"tx":{tx}}}"#,
                                dt.year(),
                                dt.month(),
                                dt.day()
                            )
                        })
                        .collect()
                )
            ),
            "m" => format!(
                r#","month":[{}]"#,
                newest(
                    self.months()
                        .iter()
                        .enumerate()
                        .map(|(i, (m, (rx, tx)))| {
                            format!(
                                r#"{{"id":{i},"date":{{"year":{},"month":{}}},"rx":{rx},"tx":{tx}}}"#,
                                m.year(),
                                m.month()
                            )
                        })
                        .collect()
                )
            ),
            _ => r#","fiveminute":[]"#.to_owned(),
        };
        let (rx, tx) = self.total();
        format!(
            r#"{{"vnstatversion":"2.10","jsonversion":"2","interfaces":[{{"name":"eth0","alias":"","created":{},"updated":{},"traffic":{{"total":{{"rx":{rx},"tx":{tx}}}{table}}}}}]}}"#,
            stamp(CREATED, false),
            stamp(self.updated, true)
        )
    }
}

fn date(s: i64) -> jiff::civil::Date {
    jiff::Timestamp::from_second(s)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// The fake `vnstat`: prints `<dir>/<mode>` for `--json <mode> <limit>`, and counts its runs.
const SCRIPT: &str = r#"dir=$(dirname "$0"); echo "$2 $3" >> "$dir/calls"; cat "$dir/$2""#;

struct Rig {
    dir: tempfile::TempDir,
    clock: ManualClock,
    source: VnstatSource,
    household: Household,
    settings: Settings,
}

impl Rig {
    fn new(month_start_day: u8) -> Self {
        Self::with(month_start_day, |_| {})
    }

    fn with(month_start_day: u8, tune: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("vnstat");
        std::fs::write(&script, SCRIPT).unwrap();
        let cfg = VnstatSettings {
            command: vec![
                "sh".into(),
                script.display().to_string(),
                "--json".into(),
                "f".into(),
                "1".into(),
            ],
            interval: Duration::from_secs(300),
            ..VnstatSettings::default()
        };
        let mut settings = Settings::default();
        settings.bridge.timezone = Some("UTC".into());
        settings.bridge.month_start_day = month_start_day;
        settings.vnstat.insert("titan".into(), cfg.clone());
        tune(&mut settings);
        let clock = ManualClock::new(0);
        let mut source = VnstatSource::new("titan", &cfg, month_start_day);
        source.set_clock(&clock.clock());
        let feeds = vec![(SourceKind::Vnstat.feed("titan"), "vnstat")];
        Self {
            dir,
            clock,
            source,
            household: Household::new(&settings, feeds, PersistedState::default()),
            settings,
        }
    }

    /// The bridge restarts: a new source (its tables are read again) and the household from
    /// what it saved.
    fn restart(&mut self) {
        let cfg = self.settings.vnstat["titan"].clone();
        self.source = VnstatSource::new("titan", &cfg, self.settings.bridge.month_start_day);
        self.source.set_clock(&self.clock.clock());
        let feeds = vec![(SourceKind::Vnstat.feed("titan"), "vnstat")];
        self.household = Household::new(&self.settings, feeds, self.household.to_persisted());
    }

    /// A poll at `at`, vnstat having saved at the last 5 minutes before it.
    async fn poll(&mut self, at: i64) -> Db {
        let db = Db { updated: at - at % 300 };
        for (mode, limit) in [("f", 1), ("d", 63), ("m", 2)] {
            std::fs::write(self.dir.path().join(mode), db.render(mode, limit)).unwrap();
        }
        self.clock.advance_to(at * 1000);
        let obs = self.source.poll().await.expect("the poll succeeds");
        self.household.apply("titan", obs, at * 1000);
        db
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn state(&self, at: i64) -> serde_json::Value {
        let device = self.household.device(&DeviceId::new("titan").unwrap()).unwrap();
        device_state(
            device,
            StateClock {
                now_ms: at * 1000,
                consider_home_ms: 0,
                sources_down_ms: None,
            },
        )
    }
}

fn rx_of(state: &serde_json::Value) -> [u64; 5] {
    ["rx_bytes", "rx_today", "rx_yesterday", "rx_month", "rx_last_month"].map(|k| state[k].as_u64().unwrap())
}

#[tokio::test]
async fn installed_on_the_20th_at_noon_a_server_shows_vnstats_own_days_and_months() {
    let mut rig = Rig::new(1);
    let noon = MIDNIGHT + DAY / 2;
    let db = rig.poll(noon).await;
    assert_eq!(rig.calls(), ["d 2", "m 2"], "the day run carries the reading");
    let s = rig.state(noon);
    let months = db.months();
    assert_eq!(months.len(), 2, "October from the 25th, November");
    assert_eq!(
        rx_of(&s),
        [
            db.total().0,
            db.day(MIDNIGHT).0,
            db.day(MIDNIGHT - DAY).0,
            months[1].1.0,
            months[0].1.0
        ],
        "{s}"
    );
    assert_eq!(s["tx_yesterday"], db.day(MIDNIGHT - DAY).1);
    assert_eq!(s["tx_last_month"], months[0].1.1);
    assert_eq!(s["complete_since"]["month"], "2026-11-01T00:00:00+00:00");
    assert_eq!(
        s["complete_since"]["last_month"], "2026-10-25T00:00:00+00:00",
        "vnstat began then"
    );
    assert_eq!(s["complete_since"]["today"], "2026-11-20T00:00:00+00:00");

    // Two polls later nothing is counted twice: each adds exactly what vnstat saved between.
    let mut before = rx_of(&s);
    for at in [noon + 300, noon + 600] {
        let db = rig.poll(at).await;
        let now = rx_of(&rig.state(at));
        let moved = rate(MIDNIGHT) * 300;
        assert_eq!(
            now,
            [
                before[0] + moved,
                before[1] + moved,
                before[2],
                before[3] + moved,
                before[4]
            ],
            "at {at}"
        );
        assert_eq!(now[1], db.day(MIDNIGHT).0, "still vnstat's own day");
        before = now;
    }
    assert_eq!(rig.calls().len(), 4, "the tables are read once: {:?}", rig.calls());

    // Stopped at 12:10, back at 01:00 the next day: the tables again; yesterday is vnstat's
    // whole 20th, today its 21st so far, once.
    let back = MIDNIGHT + DAY + 3600;
    let db = rig.poll(back).await;
    assert_eq!(rig.calls()[4..], ["d 2", "m 2"]);
    let s = rig.state(back);
    assert_eq!(
        rx_of(&s)[1..],
        [
            db.day(MIDNIGHT + DAY).0,
            db.day(MIDNIGHT).0,
            db.months()[1].1.0,
            months[0].1.0
        ]
    );
    assert_eq!(s["rx_bytes"], db.total().0, "the total grew by the outage, once");
    let db = rig.poll(back + 300).await;
    assert_eq!(rx_of(&rig.state(back + 300))[1], db.day(MIDNIGHT + DAY).0);
}

#[tokio::test]
async fn a_billing_month_from_the_25th_is_summed_from_vnstats_days() {
    let mut rig = Rig::new(25);
    let noon = MIDNIGHT + DAY / 2;
    let db = rig.poll(noon).await;
    assert_eq!(rig.calls(), ["d 63"]);
    let s = rig.state(noon);
    assert_eq!(
        s["rx_month"],
        db.total().0,
        "vnstat began on the 25th: the whole billing month"
    );
    assert_eq!(s["rx_last_month"], 0);
    assert_eq!(s["complete_since"]["last_month"], serde_json::Value::Null);
    assert_eq!(s["complete_since"]["month"], "2026-10-25T00:00:00+00:00");
}

#[tokio::test]
async fn the_isps_meter_reading_counts_once_across_a_restart_and_not_next_month() {
    let mut rig = Rig::with(1, |s| {
        s.plan.insert(
            "titan".into(),
            crate::config::PlanSettings {
                quota: crate::config::ByteSize(1_000_000_000_000),
                period: crate::config::PlanPeriod::Month,
                warn_at: None,
                used_so_far: Some(crate::config::ByteSize(412_000_000_000)),
            },
        );
    });
    let noon = MIDNIGHT + DAY / 2;
    let before = rig.poll(noon).await.day(MIDNIGHT);
    assert_eq!(rig.state(noon)["quota_used"], 412_000_000_000u64, "the ISP's figure");
    rig.restart();
    let at = noon + 600;
    let after = rig.poll(at).await.day(MIDNIGHT);
    let moved = after.0 + after.1 - before.0 - before.1;
    assert_eq!(
        rig.state(at)["quota_used"],
        412_000_000_000 + moved,
        "after a restart the reading is not applied again; the month's growth adds"
    );
    // December: the reading belonged to November.
    let december = MIDNIGHT + 11 * DAY + 3600;
    let db = rig.poll(december).await;
    let (rx, tx) = db.day(MIDNIGHT + 11 * DAY);
    assert_eq!(rig.state(december)["quota_used"], rx + tx);
}
