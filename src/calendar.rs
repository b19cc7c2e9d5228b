//! Proleptic Gregorian calendar arithmetic (Howard Hinnant's algorithms), for the few places
//! that turn dates printed by devices into Unix time and back, without a date crate.

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Unix seconds of a civil date plus seconds into that day; `None` for a year so far out that
/// the arithmetic would overflow (devices print whatever their clock holds, e.g. year 9e18).
pub fn unix_seconds(year: i64, month: u32, day: u32, secs_of_day: i64) -> Option<i64> {
    const MAX_YEAR: i64 = 1_000_000_000;
    if !(-MAX_YEAR..=MAX_YEAR).contains(&year) {
        return None;
    }
    days_from_civil(year, month, day)
        .checked_mul(86_400)?
        .checked_add(secs_of_day)
}

/// The civil date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 24) * 86_400, 1_795_478_400);
        for days in [-800_000, -1, 0, 59, 60, 11_016, 20_000, 20_781, 1_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
        assert_eq!(unix_seconds(2026, 11, 24, 60), Some(1_795_478_460));
        assert_eq!(unix_seconds(i64::MAX, 1, 1, 0), None);
        assert_eq!(unix_seconds(-i64::MAX, 12, 31, 0), None);
    }
}
