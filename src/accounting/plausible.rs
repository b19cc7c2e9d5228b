//! The one plausibility gate every number from outside passes before it may touch a total.
//!
//! Sources parse what devices print; devices print garbage now and then (vnstat `rx =
//! 2^64−1` once, a Deco `down_speed` of `1e306` that becomes `inf` after unit scaling, a
//! counter that jumps by a petabyte in five minutes). A total only ever goes up, so one such
//! number accepted is wrong forever. Every kind of channel (counters, rates, hourly buckets)
//! asks this gate first; a number it refuses is logged at warn by the ledger and ignored, and
//! the channel keeps its last good baseline so the next normal reading counts correctly.

/// The fastest link any device we read can have: 400 Gbit/s Ethernet. Nothing a home or small
/// office network carries comes close, so a number above this is a fault, never traffic.
pub const MAX_LINK_BPS: f64 = 400e9;

/// Slack added to an interval before bytes are compared with the link's limit: vnstat stamps
/// its saves to the minute, and drivers update their counters in batches, so a real interval
/// can be up to a minute longer than the timestamps say.
const SLACK_S: f64 = 60.0;

/// Bytes a counter may already show at its first reading (its value becomes the start of a
/// total): 2^60 B ≈ 1.15 EB, 400 Gbit/s for 730 years. Above that it is a sign-extended −1 or
/// similar garbage.
pub const MAX_FIRST_READING: u64 = 1 << 60;

/// Why a number was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Implausible {
    /// NaN or ±inf.
    NotFinite(f64),
    /// A rate below zero.
    Negative(f64),
    /// A rate above what any link carries, in bit/s.
    RateTooHigh(f64),
    /// More bytes than the link could move in the interval.
    TooManyBytes { bytes: u64, secs: f64 },
    /// A first reading beyond any real counter.
    CounterTooLarge(u64),
}

impl std::fmt::Display for Implausible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFinite(v) => write!(f, "rate {v} is not a finite number"),
            Self::Negative(v) => write!(f, "rate {v} bit/s is negative"),
            Self::RateTooHigh(v) => write!(f, "rate {v:e} bit/s is above any link ({MAX_LINK_BPS:e} bit/s)"),
            Self::TooManyBytes { bytes, secs } => {
                write!(f, "{bytes} bytes in {secs:.0} s is more than any link carries")
            }
            Self::CounterTooLarge(v) => write!(f, "counter value {v} is beyond any real counter"),
        }
    }
}

/// A rate in bit/s as a source reported it: finite, not negative, not above any link.
pub fn rate(bps: f64) -> Result<f64, Implausible> {
    if !bps.is_finite() {
        Err(Implausible::NotFinite(bps))
    } else if bps < 0.0 {
        Err(Implausible::Negative(bps))
    } else if bps > MAX_LINK_BPS {
        Err(Implausible::RateTooHigh(bps))
    } else {
        Ok(bps)
    }
}

/// Bytes a counter advanced by over `dt_ms` (> 0): at most what `limit_bps` allows over the
/// interval plus slack. `limit_bps` is the link's speed when the source knows it.
pub fn delta(bytes: u64, dt_ms: i64, limit_bps: f64) -> Result<u64, Implausible> {
    let secs = dt_ms.max(0) as f64 / 1000.0;
    let limit = limit_bps.clamp(0.0, MAX_LINK_BPS);
    if bytes as f64 * 8.0 > limit * (secs + SLACK_S) {
        Err(Implausible::TooManyBytes { bytes, secs })
    } else {
        Ok(bytes)
    }
}

/// Bytes in one clock hour.
pub fn hour_bytes(bytes: u64) -> Result<u64, Implausible> {
    delta(bytes, 3_600_000, MAX_LINK_BPS)
}

/// A counter's value at its first reading, when it becomes the start of a total.
pub fn first_reading(value: u64) -> Result<u64, Implausible> {
    if value > MAX_FIRST_READING {
        Err(Implausible::CounterTooLarge(value))
    } else {
        Ok(value)
    }
}

/// A float that goes into the state file: JSON has no inf or NaN (serde writes `null`, which
/// then fails to load), so anything non-finite is stored as 0.
pub fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_finite_non_negative_and_below_any_link() {
        assert_eq!(rate(8e6), Ok(8e6));
        assert_eq!(rate(0.0), Ok(0.0));
        assert!(matches!(rate(f64::INFINITY), Err(Implausible::NotFinite(_))));
        assert!(matches!(rate(f64::NAN), Err(Implausible::NotFinite(_))));
        assert!(matches!(rate(-1.0), Err(Implausible::Negative(_))));
        assert!(matches!(rate(1e306), Err(Implausible::RateTooHigh(_))));
    }

    #[test]
    fn deltas_are_bounded_by_the_link_over_the_interval() {
        // 1 Gbit/s for 10 s (+60 s slack) = 8.75 GB at most.
        assert!(delta(1_250_000_000, 10_000, 1e9).is_ok());
        assert!(delta(8_750_000_000, 10_000, 1e9).is_ok());
        assert!(delta(8_750_000_001, 10_000, 1e9).is_err());
        // One petabyte in five minutes is no link at all.
        assert!(delta(1_000_000_000_000_000, 300_000, f64::INFINITY).is_err());
        assert!(delta(u64::MAX, 300_000, MAX_LINK_BPS).is_err());
        // A week offline at 400 Gbit/s is still fine.
        assert!(delta(30_000_000_000_000, 7 * 86_400_000, MAX_LINK_BPS).is_ok());
    }

    #[test]
    fn first_readings_and_stored_floats() {
        assert!(first_reading(720_864_692).is_ok());
        assert!(first_reading(u64::MAX).is_err());
        assert_eq!(finite_or_zero(f64::NAN), 0.0);
        assert_eq!(finite_or_zero(0.25), 0.25);
    }
}
