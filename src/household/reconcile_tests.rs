use super::*;

const H: i64 = HOUR_MS;
/// Midnight, 1 Jan 2026 UTC.
const T0: i64 = 1_767_225_600_000;

fn id(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn hour(start_ms: i64, rx: u64, tx: u64) -> HourBucket {
    HourBucket {
        start_s: start_ms / 1000,
        rx,
        tx,
    }
}

/// A mesh polled every 30 s through `[from, to)` (fully covered), with the given raw deltas
/// booked evenly per member.
fn polled(rec: &mut Reconciler, from: i64, to: i64, raw: &[(&str, Pair)]) {
    let steps = (to - from) / 30_000;
    for (name, _) in raw {
        rec.join(&id(name), [0, 0]);
    }
    for i in 0..steps {
        let (a, b) = (from + i * 30_000, from + (i + 1) * 30_000);
        rec.covered(a, b);
        for (name, total) in raw {
            // Even parts, the remainder in the last one: the hour gets exactly `total`.
            let at = |k: i64| [total[0] * k as u64 / steps as u64, total[1] * k as u64 / steps as u64];
            let (lo, hi) = (at(i), at(i + 1));
            rec.estimate(&id(name), a, b, [hi[0] - lo[0], hi[1] - lo[1]]);
        }
    }
}

#[test]
fn an_hour_is_scaled_to_the_uplink_minus_exact_members() {
    let mut rec = Reconciler::default();
    polled(
        &mut rec,
        T0,
        T0 + H,
        &[("a", [1_200_000, 120_000]), ("b", [3_600_000, 0])],
    );
    rec.exact(T0 + H / 4, T0 + H / 2, [2_000_000, 40_000]);
    // Not read yet: provisional, raw × 1.
    rec.evaluate(T0 + H);
    assert_eq!(rec.published(&id("a")), Some([1_200_000, 120_000]));
    rec.uplink_hours(&[hour(T0, 10_000_000, 200_000)], T0 + H + 60_000);
    rec.evaluate(T0 + H + 60_000);
    // 8 MB to share 1:3 for rx, 160 kB all to `a` for tx.
    assert_eq!(rec.published(&id("a")), Some([2_000_000, 160_000]));
    assert_eq!(rec.published(&id("b")), Some([6_000_000, 0]));
}

#[test]
fn an_open_hour_counts_raw_times_the_latest_scale() {
    let mut rec = Reconciler::default();
    polled(&mut rec, T0, T0 + H, &[("a", [4_000_000, 400_000])]);
    rec.uplink_hours(&[hour(T0, 5_000_000, 500_000)], T0 + H);
    polled(&mut rec, T0 + H, T0 + H + H / 2, &[("a", [2_000_000, 200_000])]);
    rec.evaluate(T0 + H + H / 2);
    assert_eq!(
        rec.published(&id("a")),
        Some([7_500_000, 750_000]),
        "5 MB + 2 MB × 1.25"
    );
}

#[test]
fn an_outage_is_filled_from_the_uplink_with_the_shares_before_it() {
    let mut rec = Reconciler::default();
    polled(&mut rec, T0, T0 + H, &[("a", [1_000_000, 0]), ("b", [3_000_000, 0])]);
    // The Deco is unreachable for the whole second hour; the uplink keeps counting.
    rec.uplink_hours(&[hour(T0, 4_000_000, 0), hour(T0 + H, 8_000_000, 0)], T0 + 2 * H);
    rec.evaluate(T0 + 2 * H);
    assert_eq!(rec.published(&id("a")), Some([3_000_000, 0]));
    assert_eq!(rec.published(&id("b")), Some([9_000_000, 0]));
}

#[test]
fn a_partial_outage_mixes_the_hour_with_the_one_before() {
    let mut rec = Reconciler::default();
    polled(&mut rec, T0, T0 + H, &[("a", [1_000_000, 0]), ("b", [1_000_000, 0])]);
    // Half of the next hour seen, only `b` moving in that half.
    polled(&mut rec, T0 + H, T0 + H + H / 2, &[("b", [2_000_000, 0])]);
    rec.uplink_hours(&[hour(T0, 2_000_000, 0), hour(T0 + H, 4_000_000, 0)], T0 + 2 * H);
    rec.evaluate(T0 + 2 * H);
    // Hour 2: b has 0.5 (seen) + 0.25, a 0.25 of 4 MB.
    assert_eq!(rec.published(&id("a")), Some([2_000_000, 0]));
    assert_eq!(rec.published(&id("b")), Some([4_000_000, 0]));
}

#[test]
fn a_correction_downwards_is_carried_forward_not_subtracted() {
    let mut rec = Reconciler::default();
    polled(&mut rec, T0, T0 + H, &[("a", [1_000_000, 0])]);
    rec.uplink_hours(&[hour(T0, 2_000_000, 0)], T0 + H);
    // The second hour runs at the first one's scale (×2) until its uplink is read ...
    polled(&mut rec, T0 + H, T0 + 2 * H, &[("a", [1_000_000, 0])]);
    rec.evaluate(T0 + 2 * H - 1);
    assert_eq!(rec.published(&id("a")), Some([4_000_000, 0]));
    // ... which says only 1 MB crossed: the total stays, the next hour absorbs it.
    rec.uplink_hours(&[hour(T0 + H, 1_000_000, 0)], T0 + 2 * H + 1);
    assert!(rec.evaluate(T0 + 2 * H + 1).is_empty());
    assert_eq!(rec.published(&id("a")), Some([4_000_000, 0]));
    polled(&mut rec, T0 + 2 * H, T0 + 3 * H, &[("a", [1_000_000, 0])]);
    rec.uplink_hours(&[hour(T0 + 2 * H, 2_000_000, 0)], T0 + 3 * H);
    rec.evaluate(T0 + 3 * H);
    assert_eq!(rec.published(&id("a")), Some([5_000_000, 0]), "2 + 1 + 2 MB");
}

#[test]
fn an_unwritten_hour_is_not_an_empty_one() {
    let mut rec = Reconciler::default();
    polled(&mut rec, T0, T0 + H, &[("a", [3_000_000, 0])]);
    // The router has not flushed the hour yet: it reads 0.
    rec.uplink_hours(&[hour(T0, 0, 0)], T0 + H + 1);
    rec.evaluate(T0 + H + 1);
    assert_eq!(rec.published(&id("a")), Some([3_000_000, 0]));
}

#[test]
fn bytes_before_the_start_belong_to_nobody() {
    let mut rec = Reconciler::default();
    // Started at half past: the uplink's first hour has bytes from before.
    polled(&mut rec, T0 + H / 2, T0 + H, &[("a", [1_000_000, 0])]);
    rec.uplink_hours(&[hour(T0, 5_000_000, 0)], T0 + H);
    rec.evaluate(T0 + H);
    assert_eq!(rec.published(&id("a")), Some([1_000_000, 0]));
}

#[test]
fn old_hours_fold_into_the_base_and_survive_a_restart() {
    let mut rec = Reconciler::default();
    for i in 0..40 {
        let h = T0 + i * H;
        polled(&mut rec, h, h + H, &[("a", [1_000_000, 0])]);
        rec.uplink_hours(&[hour(h, 2_000_000, 0)], h + H);
        rec.evaluate(h + H);
    }
    assert!(rec.hours.len() <= KEEP_HOURS as usize + 1);
    assert_eq!(rec.published(&id("a")), Some([80_000_000, 0]));
    let json = serde_json::to_string(&rec).unwrap();
    let mut back: Reconciler = serde_json::from_str(&json).unwrap();
    let h = T0 + 40 * H;
    polled(&mut back, h, h + H, &[("a", [1_000_000, 0])]);
    back.uplink_hours(&[hour(h, 2_000_000, 0)], h + H);
    back.evaluate(h + H);
    assert_eq!(back.published(&id("a")), Some([82_000_000, 0]));
}

#[test]
fn a_raw_sum_eight_times_too_small_names_kbyte_per_s_once() {
    let mut rec = Reconciler::default();
    for i in 0..4 {
        let h = T0 + i * H;
        polled(&mut rec, h, h + H, &[("a", [2_000_000, 200_000])]);
        rec.uplink_hours(&[hour(h, 16_000_000, 1_600_000)], h + H);
    }
    let now = T0 + 4 * H;
    let hint = rec.unit_hint(SpeedUnit::KbitPerS, now);
    assert!(
        matches!(hint, Some((SpeedUnit::KbytePerS, r)) if (r - 8.0).abs() < 0.01),
        "{hint:?}"
    );
    assert_eq!(rec.unit_hint(SpeedUnit::KbitPerS, now), None, "once");
    // Right unit: nothing to say.
    let mut ok = Reconciler::default();
    for i in 0..4 {
        let h = T0 + i * H;
        polled(&mut ok, h, h + H, &[("a", [2_000_000, 200_000])]);
        ok.uplink_hours(&[hour(h, 2_100_000, 190_000)], h + H);
    }
    assert_eq!(ok.unit_hint(SpeedUnit::KbitPerS, now), None);
    // Bytes per second read as kbit/s: raw 125 times too large.
    let mut bytes = Reconciler::default();
    for i in 0..4 {
        let h = T0 + i * H;
        polled(&mut bytes, h, h + H, &[("a", [250_000_000, 0])]);
        bytes.uplink_hours(&[hour(h, 2_000_000, 0)], h + H);
    }
    assert!(matches!(
        bytes.unit_hint(SpeedUnit::KbitPerS, now),
        Some((SpeedUnit::BytePerS, _))
    ));
}

#[test]
fn without_an_uplink_the_estimate_is_the_raw_one() {
    let mut rec = Reconciler::default();
    polled(&mut rec, T0, T0 + 3 * H, &[("a", [3_333_333, 1_111])]);
    rec.evaluate(T0 + 3 * H);
    assert!(!rec.has_uplink());
    let published = rec.published(&id("a")).unwrap();
    assert_eq!(published, [3_333_333, 1_111], "raw, to the byte");
}

#[test]
fn a_live_uplink_counter_read_all_hour_is_as_good_as_the_hours() {
    let mut rec = Reconciler::default();
    polled(&mut rec, T0, T0 + H, &[("a", [1_000_000, 100_000])]);
    // Read every 30 s, 10 s after the Deco; 1000 B/s down, 100 B/s up all along.
    let mut t = T0 - 20_000;
    while t < T0 + H + 10_000 {
        rec.uplink_live(t, t + 30_000, [30_000, 3_000]);
        t += 30_000;
    }
    rec.evaluate(t);
    // Readings across the hour's edges are shared by time.
    assert_eq!(rec.published(&id("a")), Some([3_600_000, 360_000]));
    // A counter read only part of an hour does not know the hour.
    let mut part = Reconciler::default();
    polled(&mut part, T0, T0 + H, &[("a", [1_000_000, 0])]);
    part.uplink_live(T0, T0 + H / 2, [9_000_000, 0]);
    part.evaluate(T0 + H + 1);
    assert_eq!(part.published(&id("a")), Some([1_000_000, 0]));
}
