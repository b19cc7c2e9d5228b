//! The Traffic Analyzer's daily history (`getWanTraffic.asp?client=<MAC>&mode=day&dura=31`,
//! asus.md §6.3): 31 buckets of 86 400 s, oldest first, each summing the rows stamped in its
//! window. A day bucket sums the same rows as the 24 hourly buckets of the same `date`, so the
//! window that makes the hourly buckets the hours of yesterday ([`label_hours`]) makes the
//! daily ones the last 31 whole local days. Read once per client at its first reading: it fills
//! yesterday, this month and last month (design.md "Right from the first poll"); today comes
//! from the hours. A DST change inside the 31 days shifts the days before it by an hour.

use jiff::civil::Date;

use super::row_stamps::RowStamps;
use crate::model::{DatedBytes, History};

const HOUR: i64 = 3600;
/// Days in a `dura=31` reply.
pub const DAYS: usize = 31;

/// The `date` of a request whose last daily bucket is the local day ending at `midnight_s`
/// (the inverse of `label_hours`' hour labelling).
pub fn window_date(midnight_s: i64, stamps: RowStamps) -> i64 {
    match stamps {
        RowStamps::End => midnight_s + HOUR - 31,
        RowStamps::Start => midnight_s - 31,
    }
}

/// The `[tx, rx]` pairs of a window from [`window_date`] as the local days before `today`
/// (whose midnight is `midnight_s`): whole from the first of them, up to that midnight.
pub fn day_history(pairs: &[[u64; 2]], today: Date, midnight_s: i64) -> Option<History> {
    let n = pairs.len();
    if n == 0 {
        return None;
    }
    let mut days = Vec::with_capacity(n);
    for (i, [tx, rx]) in pairs.iter().enumerate() {
        let date = today.checked_sub(jiff::Span::new().days((n - i) as i64)).ok()?;
        days.push(DatedBytes { date, rx: *rx, tx: *tx });
    }
    Some(History {
        days,
        months: Vec::new(),
        since_s: Some(midnight_s - 86_400 * n as i64),
        until_s: Some(midnight_s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::asus::traffic_analyzer::label_hours;

    #[test]
    fn the_window_of_yesterdays_hours_is_the_window_of_the_last_31_days() {
        let midnight = 1_795_132_800;
        for stamps in [RowStamps::End, RowStamps::Start] {
            let date = window_date(midnight, stamps);
            let hours = label_hours(&[[0, 0]; 24], date, stamps).unwrap();
            assert_eq!(hours[0].start_s, midnight - 86_400, "{stamps:?}");
            assert_eq!(hours[23].start_s, midnight - HOUR, "{stamps:?}");
        }
        let today: Date = "2026-11-20".parse().unwrap();
        let h = day_history(&[[1, 10]; DAYS], today, midnight).unwrap();
        assert_eq!(h.days.first().unwrap().date.to_string(), "2026-10-20");
        assert_eq!(h.days.last().unwrap().date.to_string(), "2026-11-19");
        assert_eq!((h.days[0].rx, h.days[0].tx), (10, 1));
        assert_eq!(h.until_s, Some(midnight));
    }
}
