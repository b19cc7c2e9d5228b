//! Hour arithmetic of the reconciliation: cutting a span of bytes into the clock hours it
//! touches, in proportion to time, without losing or inventing a byte.

use super::reconcile::Pair;

pub(super) const HOUR_MS: i64 = 3_600_000;

pub(super) fn add(a: Pair, b: Pair) -> Pair {
    [a[0].saturating_add(b[0]), a[1].saturating_add(b[1])]
}

/// `delta` over `[from_ms, to_ms]` cut into periods of `len_ms`, in proportion to time; the
/// parts add up to `delta` exactly.
pub(super) fn spread(from_ms: i64, to_ms: i64, delta: Pair, len_ms: i64) -> Vec<(i64, Pair)> {
    let start = |t: i64| t - t.rem_euclid(len_ms);
    if to_ms <= from_ms {
        return vec![(start(to_ms), delta)];
    }
    let span = (to_ms - from_ms) as u128;
    let mut out = Vec::new();
    let mut t = from_ms;
    let mut given = [0u64; 2];
    while t < to_ms {
        let p = start(t);
        let end = (p + len_ms).min(to_ms);
        let upto = (end - from_ms) as u128;
        let part = [0, 1].map(|d| {
            let cum = u64::try_from(delta[d] as u128 * upto / span).unwrap_or(u64::MAX);
            let v = cum.saturating_sub(given[d]);
            given[d] = cum;
            v
        });
        out.push((p, part));
        t = end;
    }
    out
}

pub(super) fn to_bytes(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 { v as u64 } else { 0 }
}

/// Each member's part of the hour's raw sum, per direction.
/// Target over raw of the `last` few hours, per direction; 1 when nothing is known.
pub(super) fn scale_of(recent: &[([f64; 2], [f64; 2])], last: usize) -> [f64; 2] {
    let tail = &recent[recent.len().saturating_sub(last)..];
    let mut out = [1.0, 1.0];
    for (d, slot) in out.iter_mut().enumerate() {
        let (t, r) = tail.iter().fold((0.0, 0.0), |(t, r), (a, b)| (t + a[d], r + b[d]));
        if r > 0.0 && t > 0.0 {
            *slot = t / r;
        }
    }
    out
}

pub(super) fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// Calls `f(hour, ms of the span in that hour)` for each hour of `[from_ms, to_ms)`.
pub(super) fn split(from_ms: i64, to_ms: i64, mut f: impl FnMut(i64, i64)) {
    let mut t = from_ms;
    while t < to_ms {
        let h = hour_of(t);
        let end = (h + HOUR_MS).min(to_ms);
        f(h, end - t);
        t = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_cut_at_hour_boundaries_and_no_byte_is_lost() {
        // 30 s across a boundary, 10 s before it: a third before, two thirds after.
        let parts = spread(HOUR_MS - 10_000, HOUR_MS + 20_000, [3_001, 0], HOUR_MS);
        assert_eq!(parts, vec![(0, [1_000, 0]), (HOUR_MS, [2_001, 0])]);
        // A point in time: everything in its hour.
        assert_eq!(spread(5_000, 5_000, [7, 1], HOUR_MS), vec![(0, [7, 1])]);
        // Three hours and a bit, odd bytes: parts add up exactly.
        let parts = spread(1_234, 3 * HOUR_MS + 99_999, [1_000_003, 17], HOUR_MS);
        assert_eq!(parts.len(), 4);
        let sum = parts.iter().fold([0, 0], |a, (_, p)| add(a, *p));
        assert_eq!(sum, [1_000_003, 17]);
        let mut covered = Vec::new();
        split(HOUR_MS / 2, HOUR_MS * 2, |h, ms| covered.push((h, ms)));
        assert_eq!(covered, vec![(0, HOUR_MS / 2), (HOUR_MS, HOUR_MS)]);
    }
}
