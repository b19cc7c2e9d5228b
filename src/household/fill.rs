//! Periods set from a source's own history (periods.rs header: "filled in from history, never
//! counted again"). A figure is raised to what the history says, never lowered: a period never
//! decreases inside itself, whatever a source's records hold.

use jiff::civil::Date;

use super::periods::{Calendar, Periods, end_of};
use crate::accounting::Totals;
use crate::model::{History, HourBucket};

impl Periods {
    /// Sets today, yesterday, this month and last month from `history`, read at `now_ms` with
    /// the counter whose delta the caller then does not add.
    pub fn fill(&mut self, calendar: &Calendar, now_ms: i64, history: &History) {
        self.roll(calendar, now_ms);
        let (Some(day), Some(month)) = (self.day, self.month) else {
            return;
        };
        let since_ms = history.since_s.map(|s| s.saturating_mul(1000));
        // Records that end before now (closed days only) say nothing of what came after.
        let until_ms = history.until_s.map_or(now_ms, |u| u.saturating_mul(1000).min(now_ms));
        // A period the records reach into: from when its figure is whole.
        let reach = |start: Option<i64>, end: i64| -> Option<i64> {
            let start = start?;
            if start >= until_ms {
                return None;
            }
            match since_ms {
                Some(s) if s >= end => None,
                Some(s) => Some(s.max(start).min(now_ms)),
                None => Some(start),
            }
        };
        let today_start = calendar.start_ms(day);
        if let Some(from) = reach(today_start, now_ms) {
            raise(&mut self.today, &mut self.complete_since.today, history.day(day), from);
        }
        if let Ok(yesterday) = day.yesterday()
            && let Some(from) = reach(calendar.start_ms(yesterday), today_start.unwrap_or(now_ms))
        {
            raise(
                &mut self.yesterday,
                &mut self.complete_since.yesterday,
                history.day(yesterday),
                from,
            );
        }
        let month_start = calendar.start_ms(month);
        if let Some(from) = reach(month_start, now_ms) {
            // The month's days before today, and today as the periods now have it.
            let figure = month_figure(calendar, history, month, day).map_or_else(
                || history.month(month).unwrap_or_default(),
                |(rx, tx)| (rx.saturating_add(self.today.rx), tx.saturating_add(self.today.tx)),
            );
            // Whole from `from` only if today is whole too.
            let today_whole = self.complete_since.today.is_some_and(|t| Some(t) <= today_start);
            let from = if today_whole {
                from
            } else {
                self.complete_since.this_month.unwrap_or(now_ms)
            };
            raise(&mut self.this_month, &mut self.complete_since.this_month, figure, from);
        }
        let previous = calendar.month_of(end_of(calendar, month));
        if previous < month
            && let Some(from) = reach(calendar.start_ms(previous), month_start.unwrap_or(now_ms))
        {
            let figure = month_figure(calendar, history, previous, month)
                .unwrap_or_else(|| history.month(previous).unwrap_or_default());
            raise(&mut self.last_month, &mut self.complete_since.last_month, figure, from);
        }
    }
}

impl Periods {
    /// The finished hours a client's first reading already held (its live counter's total so
    /// far, which no later delta repeats): each in its own day and month (`add_at`), once. The
    /// periods they reach are whole from the first hour on.
    pub fn add_hours_before(&mut self, calendar: &Calendar, now_ms: i64, hours: &[HourBucket]) {
        let Some(first) = hours.iter().map(|h| h.start_s).min() else {
            return;
        };
        for h in hours {
            self.add_at(
                calendar,
                h.start_s.saturating_mul(1000),
                now_ms,
                Totals { rx: h.rx, tx: h.tx },
            );
        }
        let (Some(day), Some(month)) = (self.day, self.month) else {
            return;
        };
        let from = first.saturating_mul(1000).min(now_ms);
        let previous = calendar.month_of(end_of(calendar, month));
        let (today, this_month) = (calendar.start_ms(day), calendar.start_ms(month));
        let c = &mut self.complete_since;
        // (figure's wholeness, its period's start, its end): only periods the hours reach into.
        for (since, start, end) in [
            (&mut c.today, today, Some(now_ms)),
            (
                &mut c.yesterday,
                day.yesterday().ok().and_then(|d| calendar.start_ms(d)),
                today,
            ),
            (&mut c.this_month, this_month, Some(now_ms)),
            (&mut c.last_month, calendar.start_ms(previous), this_month),
        ] {
            let (Some(start), Some(end)) = (start, end) else {
                continue;
            };
            let whole = from.max(start);
            if whole < end {
                *since = Some(since.map_or(whole, |s| s.min(whole)));
            }
        }
    }
}

/// The billing month from `first`, its days before `until`: `None` when the source's own month
/// entry is to be used (billing months are calendar months and it keeps them), else the sum of
/// its days.
fn month_figure(calendar: &Calendar, history: &History, first: Date, until: Date) -> Option<(u64, u64)> {
    if calendar.calendar_months() && history.month(first).is_some() {
        return None;
    }
    Some(history.days_between(first, until))
}

/// At least `figure`; whole from the earlier of the two moments (the larger figure holds
/// everything either knew).
fn raise(total: &mut Totals, since: &mut Option<i64>, figure: (u64, u64), from: i64) {
    total.rx = total.rx.max(figure.0);
    total.tx = total.tx.max(figure.1);
    *since = Some(since.map_or(from, |s| s.min(from)));
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::model::DatedBytes;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn entry(date: &str, rx: u64) -> DatedBytes {
        DatedBytes {
            date: date.parse().unwrap(),
            rx,
            tx: rx / 10,
        }
    }

    fn history() -> History {
        History {
            days: vec![
                entry("2026-10-31", 7_000),
                entry("2026-11-19", 5_000),
                entry("2026-11-20", 300),
            ],
            months: vec![entry("2026-10-01", 70_000), entry("2026-11-01", 90_000)],
            since_s: Some(ms("2026-10-25T00:00:00Z") / 1000),
            until_s: None,
        }
    }

    #[test]
    fn a_first_reading_sets_every_period_and_later_deltas_add_on_top() {
        let cal = Calendar::new(Some("UTC"), 1).unwrap();
        let mut p = Periods::default();
        let noon = ms("2026-11-20T12:00:00Z");
        p.fill(&cal, noon, &history());
        assert_eq!(
            (p.today.rx, p.yesterday.rx, p.this_month.rx, p.last_month.rx),
            (300, 5_000, 90_000, 70_000)
        );
        assert_eq!(p.today.tx, 30);
        let c = p.complete_since;
        assert_eq!(c.today, Some(ms("2026-11-20T00:00:00Z")));
        assert_eq!(c.yesterday, Some(ms("2026-11-19T00:00:00Z")));
        assert_eq!(c.this_month, Some(ms("2026-11-01T00:00:00Z")));
        assert_eq!(
            c.last_month,
            Some(ms("2026-10-25T00:00:00Z")),
            "vnstat began on the 25th"
        );
        // The next two polls add exactly what moved between them.
        p.add(&cal, noon + 300_000, Totals { rx: 40, tx: 4 });
        p.add(&cal, noon + 600_000, Totals { rx: 60, tx: 6 });
        assert_eq!((p.today.rx, p.this_month.rx), (400, 90_100));
        assert_eq!(
            (p.yesterday.rx, p.last_month.rx),
            (5_000, 70_000),
            "closed periods stay"
        );
        // The same history read again (a restart) raises nothing it already holds.
        p.fill(&cal, noon + 600_000, &history());
        assert_eq!((p.today.rx, p.this_month.rx), (400, 90_100));
    }

    #[test]
    fn billing_months_that_do_not_start_on_the_1st_are_summed_from_days() {
        let cal = Calendar::new(Some("UTC"), 25).unwrap();
        let mut p = Periods::default();
        let mut h = history();
        h.months.clear();
        p.fill(&cal, ms("2026-11-20T12:00:00Z"), &h);
        assert_eq!(p.this_month.rx, 12_300, "31 October, 19 and 20 November");
        assert_eq!(p.complete_since.this_month, Some(ms("2026-10-25T00:00:00Z")));
        // The billing month before began on 25 September, before vnstat did: nothing known.
        assert_eq!((p.last_month.rx, p.complete_since.last_month), (0, None));
    }

    #[test]
    fn records_younger_than_a_period_make_it_whole_only_from_their_start() {
        let cal = Calendar::new(Some("UTC"), 1).unwrap();
        let mut p = Periods::default();
        let mut h = history();
        // The Traffic Analyzer's last 24 hours, from 13:00 yesterday.
        h.since_s = Some(ms("2026-11-19T13:00:00Z") / 1000);
        h.months.clear();
        h.days = vec![entry("2026-11-19", 2_000), entry("2026-11-20", 300)];
        p.fill(&cal, ms("2026-11-20T12:30:00Z"), &h);
        assert_eq!((p.today.rx, p.yesterday.rx, p.this_month.rx), (300, 2_000, 2_300));
        assert_eq!(p.complete_since.today, Some(ms("2026-11-20T00:00:00Z")));
        assert_eq!(p.complete_since.yesterday, Some(ms("2026-11-19T13:00:00Z")));
        assert_eq!(p.complete_since.this_month, Some(ms("2026-11-19T13:00:00Z")));
        assert_eq!((p.last_month.rx, p.complete_since.last_month), (0, None));
    }
}
