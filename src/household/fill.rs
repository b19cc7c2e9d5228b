//! Periods set from a source's own history (periods.rs header: "filled in from history, never
//! counted again"). A figure is raised to what the history says, never lowered: a period never
//! decreases inside itself, whatever a source's records hold.

use jiff::civil::Date;

use super::periods::{Calendar, Periods, end_of};
use crate::accounting::Totals;
use crate::model::History;

impl Periods {
    /// Sets today, yesterday, this month and last month from `history`, read at `now_ms` with
    /// the counter whose delta the caller then does not add.
    pub fn fill(&mut self, calendar: &Calendar, now_ms: i64, history: &History) {
        self.roll(calendar, now_ms);
        let (Some(day), Some(month)) = (self.day, self.month) else {
            return;
        };
        let since_ms = history.since_s.map(|s| s.saturating_mul(1000));
        // A period the records reach into: its figure, and from when it is whole.
        let reach = |start: Option<i64>, end: i64| -> Option<i64> {
            let start = start?;
            match since_ms {
                Some(s) if s >= end => None,
                Some(s) => Some(s.max(start).min(now_ms)),
                None => Some(start),
            }
        };
        let tomorrow = day.tomorrow().unwrap_or(day);
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
            let figure = month_figure(calendar, history, month, tomorrow);
            raise(&mut self.this_month, &mut self.complete_since.this_month, figure, from);
        }
        let previous = calendar.month_of(end_of(calendar, month));
        if previous < month
            && let Some(from) = reach(calendar.start_ms(previous), month_start.unwrap_or(now_ms))
        {
            let figure = month_figure(calendar, history, previous, month);
            raise(&mut self.last_month, &mut self.complete_since.last_month, figure, from);
        }
    }
}

/// The billing month from `first` (its days before `until`): the source's own month entry when
/// billing months are calendar months and it keeps them, else the sum of its days.
fn month_figure(calendar: &Calendar, history: &History, first: Date, until: Date) -> (u64, u64) {
    if calendar.calendar_months()
        && let Some(m) = history.month(first)
    {
        return m;
    }
    history.days_between(first, until)
}

/// At least `figure`; whole from the earlier of the two moments (the larger figure holds
/// everything either knew).
fn raise(total: &mut Totals, since: &mut Option<i64>, figure: (u64, u64), from: i64) {
    total.rx = total.rx.max(figure.0);
    total.tx = total.tx.max(figure.1);
    *since = Some(since.map_or(from, |s| s.min(from)));
}
