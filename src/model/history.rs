//! What a source's own records say of a device's recent periods (design.md "Right from the
//! first poll"): vnstat's day and month tables, the Traffic Analyzer's hours. Read together with
//! the device's counter in one poll, so the household can set the periods from it at the first
//! reading (and after an outage) and let the counter's later deltas continue on top.
//!
//! Dates are the source's local calendar dates; the household reads them as its own (the
//! bridge and the source keep the same time zone in every sensible setup).

use jiff::civil::Date;

/// Bytes of one calendar day, or of one month (named by its first day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatedBytes {
    pub date: Date,
    pub rx: u64,
    pub tx: u64,
}

/// A device's history as of the reading it came with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Whole days (today's so far), oldest first; a day missing between `since` and the newest
    /// entry moved no bytes.
    pub days: Vec<DatedBytes>,
    /// Calendar months from the 1st (this month's so far), oldest first; empty when the source
    /// did not read them (a billing month that does not start on the 1st is summed from days).
    pub months: Vec<DatedBytes>,
    /// Unix seconds from which the records are whole (the source started counting then, or
    /// keeps nothing older): a period that began earlier holds only its part from then on.
    /// `None`: whole as far back as the entries go.
    pub since_s: Option<i64>,
    /// Unix seconds up to which the records reach (the Traffic Analyzer's daily buckets end at
    /// the last local midnight); `None`: up to the reading they came with, which they hold (a
    /// vnstat document: that poll's delta is inside its figures and is not added again).
    pub until_s: Option<i64>,
}

impl History {
    /// The bytes of `date`; a day without an entry moved none.
    pub fn day(&self, date: Date) -> (u64, u64) {
        self.days
            .iter()
            .find(|d| d.date == date)
            .map_or((0, 0), |d| (d.rx, d.tx))
    }

    /// The sum of the days in `from..to`.
    pub fn days_between(&self, from: Date, to: Date) -> (u64, u64) {
        self.days
            .iter()
            .filter(|d| d.date >= from && d.date < to)
            .fold((0, 0), |(rx, tx), d| (rx.saturating_add(d.rx), tx.saturating_add(d.tx)))
    }

    /// The calendar month starting at `first`, if the records have it.
    pub fn month(&self, first: Date) -> Option<(u64, u64)> {
        self.months.iter().find(|m| m.date == first).map(|m| (m.rx, m.tx))
    }
}
