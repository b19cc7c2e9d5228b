//! Today and this month (design.md "Period totals and data plans"): bytes since local midnight
//! and since the start of the billing month, in the configured time zone.
//!
//! Periods add the headline's deltas, so they inherit its guarantee: never decreasing inside a
//! period. A period rolls over on the first delta or tick after its end, even while every
//! source is down (the bridge ticks once a minute).

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::accounting::Totals;
use crate::model::DeviceId;

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

/// One device's day and month totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Periods {
    pub day: Option<Date>,
    pub today: Totals,
    pub month: Option<Date>,
    pub this_month: Totals,
}

impl Periods {
    /// Starts new periods when `now_ms` is past the current ones; returns whether it did.
    pub fn roll(&mut self, calendar: &Calendar, now_ms: i64) -> bool {
        let (day, month) = (calendar.day_of(now_ms), calendar.month_of(now_ms));
        let mut rolled = false;
        // Only forward: a clock stepping back does not reopen (and lower) yesterday.
        if self.day.is_none_or(|d| day > d) {
            rolled |= self.day.is_some();
            self.day = Some(day);
            self.today = Totals::default();
        }
        if self.month.is_none_or(|m| month > m) {
            rolled |= self.month.is_some();
            self.month = Some(month);
            self.this_month = Totals::default();
        }
        rolled
    }

    pub fn add(&mut self, calendar: &Calendar, now_ms: i64, delta: Totals) {
        self.roll(calendar, now_ms);
        for t in [&mut self.today, &mut self.this_month] {
            t.rx = t.rx.saturating_add(delta.rx);
            t.tx = t.tx.saturating_add(delta.tx);
        }
    }
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
}
