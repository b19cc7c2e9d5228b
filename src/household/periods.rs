//! Today and this month (design.md "Period totals and data plans"): bytes since local midnight
//! and since the start of the billing month, in the configured time zone.
//!
//! Periods add the headline's deltas, so they inherit its guarantee: never decreasing inside a
//! period. A period rolls over on the first delta or tick after its end, even while every
//! source is down (the bridge ticks once a minute).
//!
//! **Filled in from history, never counted again** (design.md "Right from the first poll",
//! fill.rs): an observation that carries its source's own history (vnstat's day and month
//! tables, the Traffic Analyzer's hours) *sets* the periods it covers, at a device's first
//! reading and after an outage, to at least what the history says, and the delta of that same
//! poll is not added on top (the history, read with the counter, already holds it). Every later
//! poll adds only the counter's growth since that reading, which the history cannot hold. So a
//! byte is in a period either from history or from a delta, never from both. Each figure says
//! from when it is whole (`complete_since`): its period's start, or the moment the bridge (or
//! the source's records) began counting inside it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::accounting::Totals;
use crate::model::{DeviceId, HourBucket};

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("`{0}` is not a time zone known to this system (e.g. \"Europe/Berlin\")")]
    TimeZone(String),
    #[error("must be between 1 and 28, got {0}")]
    MonthStartDay(u8),
}

/// Where periods start: local midnight, and `month_start_day` of each month.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    month_start_day: u8,
}

impl Calendar {
    /// `timezone`: an IANA name, or `None` for the system's.
    pub fn new(timezone: Option<&str>, month_start_day: u8) -> Result<Self, CalendarError> {
        if !(1..=28).contains(&month_start_day) {
            return Err(CalendarError::MonthStartDay(month_start_day));
        }
        let tz = match timezone {
            Some(name) => TimeZone::get(name).map_err(|_| CalendarError::TimeZone(name.to_owned()))?,
            None => TimeZone::system(),
        };
        Ok(Self { tz, month_start_day })
    }

    /// The system's zone, months from the 1st.
    pub fn system() -> Self {
        Self {
            tz: TimeZone::system(),
            month_start_day: 1,
        }
    }

    fn date(&self, now_ms: i64) -> Date {
        Timestamp::from_millisecond(now_ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned(self.tz.clone())
            .date()
    }

    /// The local date a day period is named by.
    pub fn day_of(&self, now_ms: i64) -> Date {
        self.date(now_ms)
    }

    /// Local midnight at the start of `date`, in Unix ms.
    pub fn start_ms(&self, date: Date) -> Option<i64> {
        date.to_zoned(self.tz.clone())
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    }

    /// `ms` as a local time with its offset (`2026-11-20T00:00:00+01:00`).
    pub fn local_time(&self, ms: i64) -> Option<String> {
        let z = Timestamp::from_millisecond(ms).ok()?.to_zoned(self.tz.clone());
        Some(z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
    }

    /// Whether billing months are calendar months.
    pub fn calendar_months(&self) -> bool {
        self.month_start_day == 1
    }

    /// The first day of the billing month containing `now_ms`.
    pub fn month_of(&self, now_ms: i64) -> Date {
        let d = self.date(now_ms);
        let start_day = self.month_start_day as i8;
        let this_month = Date::new(d.year(), d.month(), start_day).unwrap_or(d);
        if d.day() >= start_day {
            this_month
        } else {
            this_month
                .checked_sub(jiff::Span::new().months(1))
                .unwrap_or(this_month)
        }
    }
}

/// One device's day and month totals, and the ones just before: an hour read after midnight
/// that happened before it still counts for the day it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Periods {
    pub day: Option<Date>,
    pub today: Totals,
    pub month: Option<Date>,
    pub this_month: Totals,
    /// The day before `day` and the billing month before `month`.
    #[serde(default)]
    pub yesterday: Totals,
    #[serde(default)]
    pub last_month: Totals,
    /// From when each figure is whole.
    #[serde(default)]
    pub complete_since: CompleteSince,
}

/// Unix ms from which each period's figure holds every byte (`None`: not known, a state file
/// from before this was kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteSince {
    pub today: Option<i64>,
    pub this_month: Option<i64>,
    pub yesterday: Option<i64>,
    pub last_month: Option<i64>,
}

impl Periods {
    /// Starts new periods when `now_ms` is past the current ones; returns whether it did. A
    /// device's first periods are whole from now; later ones from their start.
    pub fn roll(&mut self, calendar: &Calendar, now_ms: i64) -> bool {
        let (day, month) = (calendar.day_of(now_ms), calendar.month_of(now_ms));
        let mut rolled = false;
        let since = &mut self.complete_since;
        // Only forward: a clock stepping back does not reopen (and lower) yesterday.
        if self.day.is_none_or(|d| day > d) {
            rolled |= self.day.is_some();
            let ended = std::mem::take(&mut self.today);
            (self.yesterday, since.yesterday) = match self.day {
                Some(d) if d.tomorrow().ok() == Some(day) => (ended, since.today),
                // The bridge was not running through it: not known.
                _ => (Totals::default(), None),
            };
            since.today = match self.day {
                Some(_) => calendar.start_ms(day),
                None => Some(now_ms),
            };
            self.day = Some(day);
        }
        if self.month.is_none_or(|m| month > m) {
            rolled |= self.month.is_some();
            let ended = std::mem::take(&mut self.this_month);
            let previous = calendar.month_of(end_of(calendar, month));
            (self.last_month, since.last_month) = match self.month {
                Some(m) if previous == m => (ended, since.this_month),
                _ => (Totals::default(), None),
            };
            since.this_month = match self.month {
                Some(_) => calendar.start_ms(month),
                None => Some(now_ms),
            };
            self.month = Some(month);
        }
        rolled
    }

    /// Bytes that moved just now: always in the current day and month. After the clock steps
    /// back across midnight (an NTP correction) "now" reads as yesterday, but the periods never
    /// roll back, so these bytes still belong to the day that is open.
    pub fn add(&mut self, calendar: &Calendar, now_ms: i64, delta: Totals) {
        self.roll(calendar, now_ms);
        grow(&mut self.today, delta);
        grow(&mut self.this_month, delta);
    }

    /// Bytes that moved at `happened_ms` (the start of a Traffic Analyzer hour), learnt at
    /// `now_ms`: they count for their own day and month. Bytes from before yesterday or the
    /// last month count in no period (the device total has them). A time after `now_ms` (a
    /// router clock ahead of ours) counts as now: periods never run ahead of the clock.
    pub fn add_at(&mut self, calendar: &Calendar, happened_ms: i64, now_ms: i64, delta: Totals) {
        self.roll(calendar, now_ms);
        let at = happened_ms.min(now_ms);
        let (day, month) = (calendar.day_of(at), calendar.month_of(at));
        let day_slot = match self.day {
            Some(d) if d == day => Some(&mut self.today),
            Some(d) if d.yesterday().ok() == Some(day) => Some(&mut self.yesterday),
            _ => None,
        };
        if let Some(t) = day_slot {
            grow(t, delta);
        }
        let month_slot = match self.month {
            Some(m) if m == month => Some(&mut self.this_month),
            Some(m) if calendar.month_of(end_of(calendar, m)) == month => Some(&mut self.last_month),
            _ => None,
        };
        if let Some(t) = month_slot {
            grow(t, delta);
        }
    }
}

/// Adds one poll's headline growth `delta`: the part that hourly buckets dated goes to the
/// period of its hour, the rest to now. The dated part never exceeds `delta`, so the periods
/// add exactly what the total added.
pub fn add_dated(periods: &mut Periods, calendar: &Calendar, now_ms: i64, delta: Totals, hours: &[HourBucket]) {
    let mut left = delta;
    for h in hours {
        let part = Totals {
            rx: h.rx.min(left.rx),
            tx: h.tx.min(left.tx),
        };
        left.rx -= part.rx;
        left.tx -= part.tx;
        periods.add_at(calendar, h.start_s.saturating_mul(1000), now_ms, part);
    }
    periods.add(calendar, now_ms, left);
}

fn grow(t: &mut Totals, delta: Totals) {
    t.rx = t.rx.saturating_add(delta.rx);
    t.tx = t.tx.saturating_add(delta.tx);
}

/// A moment on the last day before `date` (noon, clear of any DST change): its billing month
/// is the one before the month starting at `date`.
pub(super) fn end_of(calendar: &Calendar, date: Date) -> i64 {
    date.yesterday()
        .ok()
        .and_then(|d| d.at(12, 0, 0, 0).to_zoned(calendar.tz.clone()).ok())
        .map_or(i64::MIN, |z| z.timestamp().as_millisecond())
}

/// Period totals of every device, persisted with the household.
pub type PeriodBook = BTreeMap<DeviceId, Periods>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn days_and_billing_months_in_the_configured_zone() {
        let cal = Calendar::new(Some("Europe/Berlin"), 15).unwrap();
        // 23:30 UTC on 14 March is already the 15th in Berlin: a new billing month.
        assert_eq!(cal.day_of(ms("2026-03-14T23:30:00Z")).to_string(), "2026-03-15");
        assert_eq!(cal.month_of(ms("2026-03-14T23:30:00Z")).to_string(), "2026-03-15");
        assert_eq!(cal.month_of(ms("2026-03-14T22:30:00Z")).to_string(), "2026-02-15");
        assert!(Calendar::new(Some("Mars/Olympus"), 1).is_err());
        assert!(Calendar::new(None, 29).is_err());
    }

    fn hour(start: &str, rx: u64) -> HourBucket {
        HourBucket {
            start_s: ms(start) / 1000,
            rx,
            tx: rx / 10,
        }
    }

    #[test]
    fn a_traffic_analyzer_hour_counts_for_its_own_day_and_month() {
        let cal = Calendar::new(Some("Europe/Berlin"), 1).unwrap();
        let mut p = Periods::default();
        // 31 January, 23:10 in Berlin: 100 B read live.
        p.add(&cal, ms("2026-01-31T22:10:00Z"), Totals { rx: 100, tx: 10 });
        // 00:05 on 1 February in Berlin: the analyzer's 23:00 hour grew by 900 B, its 00:00
        // hour by 40 B, and 60 B of the poll's growth carry no hour.
        let hours = [hour("2026-01-31T22:00:00Z", 900), hour("2026-01-31T23:00:00Z", 40)];
        add_dated(
            &mut p,
            &cal,
            ms("2026-01-31T23:05:00Z"),
            Totals { rx: 1000, tx: 100 },
            &hours,
        );
        assert_eq!(p.day.unwrap().to_string(), "2026-02-01");
        assert_eq!(p.today, Totals { rx: 100, tx: 10 }, "40 B of its own hour + 60 B now");
        assert_eq!(p.yesterday, Totals { rx: 1000, tx: 100 }, "100 B live + the 900 B hour");
        assert_eq!(p.this_month, Totals { rx: 100, tx: 10 });
        assert_eq!(p.last_month, Totals { rx: 1000, tx: 100 }, "January keeps its hour");

        // An hour from two days back belongs to no day period but to this month.
        let mut p = Periods::default();
        p.add(&cal, ms("2026-02-10T10:00:00Z"), Totals::default());
        add_dated(
            &mut p,
            &cal,
            ms("2026-02-10T10:00:00Z"),
            Totals { rx: 500, tx: 50 },
            &[hour("2026-02-08T10:00:00Z", 500)],
        );
        assert_eq!((p.today.rx, p.yesterday.rx, p.this_month.rx), (0, 0, 500));

        // A router clock ahead of ours: its next hour is counted now, not in a future day;
        // buckets claiming more than the total grew are capped at the growth.
        let now = ms("2026-02-10T22:58:00Z");
        add_dated(
            &mut p,
            &cal,
            now,
            Totals { rx: 70, tx: 7 },
            &[hour("2026-02-10T23:00:00Z", 80)],
        );
        assert_eq!(p.day.unwrap().to_string(), "2026-02-10");
        assert_eq!((p.today.rx, p.this_month.rx), (70, 570));
    }

    #[test]
    fn yesterday_and_last_month_only_follow_consecutive_periods() {
        let cal = Calendar::new(Some("UTC"), 15).unwrap();
        let mut p = Periods::default();
        p.add(&cal, ms("2026-03-14T12:00:00Z"), Totals { rx: 5, tx: 0 });
        p.roll(&cal, ms("2026-03-15T00:00:01Z"));
        assert_eq!(
            (p.yesterday.rx, p.last_month.rx),
            (5, 5),
            "15 March starts a billing month"
        );
        // Three quiet days later, yesterday is not the 14th any more.
        p.roll(&cal, ms("2026-03-18T00:00:01Z"));
        assert_eq!((p.yesterday.rx, p.last_month.rx), (0, 5));
        // Two billing months later, nothing is carried.
        p.roll(&cal, ms("2026-05-16T00:00:01Z"));
        assert_eq!(p.last_month.rx, 0);
    }

    #[test]
    fn periods_roll_at_midnight_and_never_decrease_inside() {
        let cal = Calendar::new(Some("UTC"), 1).unwrap();
        let mut p = Periods::default();
        p.add(&cal, ms("2026-01-31T23:00:00Z"), Totals { rx: 100, tx: 10 });
        p.add(&cal, ms("2026-01-31T23:59:00Z"), Totals { rx: 50, tx: 5 });
        assert_eq!(p.today, Totals { rx: 150, tx: 15 });
        assert!(p.roll(&cal, ms("2026-02-01T00:00:30Z")), "a tick rolls with no traffic");
        assert_eq!(p.today, Totals::default());
        assert_eq!(p.this_month, Totals::default(), "1 February starts a month");
        p.add(&cal, ms("2026-02-01T00:01:00Z"), Totals { rx: 7, tx: 0 });
        // A clock stepping back an hour does not reopen January.
        assert!(!p.roll(&cal, ms("2026-01-31T23:30:00Z")));
        assert_eq!(p.this_month.rx, 7);
    }

    #[test]
    fn bytes_read_after_the_clock_stepped_back_past_midnight_count_today() {
        let cal = Calendar::new(Some("UTC"), 1).unwrap();
        let mut p = Periods::default();
        p.add(&cal, ms("2026-01-31T23:50:00Z"), Totals { rx: 100, tx: 10 });
        p.add(&cal, ms("2026-02-01T00:05:00Z"), Totals { rx: 7, tx: 1 });
        // NTP steps the clock back an hour: it reads 23:06 on 31 January again.
        p.add(&cal, ms("2026-01-31T23:06:00Z"), Totals { rx: 20, tx: 2 });
        add_dated(&mut p, &cal, ms("2026-01-31T23:07:00Z"), Totals { rx: 30, tx: 3 }, &[]);
        assert_eq!(p.day.unwrap().to_string(), "2026-02-01", "the open day stays open");
        assert_eq!(p.today, Totals { rx: 57, tx: 6 }, "bytes moved now count today");
        assert_eq!(p.this_month, Totals { rx: 57, tx: 6 });
        assert_eq!(p.yesterday, Totals { rx: 100, tx: 10 }, "yesterday is closed");
        assert_eq!(p.last_month, Totals { rx: 100, tx: 10 });
        // The clock catches up to the real midnight again: the same day goes on.
        p.add(&cal, ms("2026-02-01T00:01:00Z"), Totals { rx: 3, tx: 0 });
        assert_eq!(p.today.rx, 60);
    }
}
