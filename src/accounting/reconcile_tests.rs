use std::time::Duration;

use super::*;
use crate::model::{CounterSample, Epoch, HourBucket, WrapRule};

const T0: i64 = 1_795_564_800; // an hour boundary (midnight UTC)

/// A client whose traffic is known minute by minute: the ground truth both the counter and
/// the hours are derived from, like the emulator does.
struct Model {
    /// Bytes `[rx, tx]` booked at each minute start (a minute's bytes are visible at its end).
    minutes: BTreeMap<i64, [u64; 2]>,
    /// Counter restarts (DPI engine restart, reboot) at these times.
    restarts: Vec<i64>,
}

impl Model {
    fn steady(from: i64, to: i64, per_minute: u64) -> Self {
        let minutes = (from..to)
            .step_by(60)
            .map(|m| (m, [per_minute + (m / 60 % 7) as u64 * 1000, per_minute / 10]))
            .collect();
        Self {
            minutes,
            restarts: Vec::new(),
        }
    }

    /// Bytes visible by `t` since `since`.
    fn sum(&self, since: i64, t: i64) -> [u64; 2] {
        self.minutes
            .range(since..)
            .take_while(|(m, _)| *m + 60 <= t)
            .fold([0, 0], |a, (_, v)| [a[0] + v[0], a[1] + v[1]])
    }

    fn truth(&self, t: i64) -> [u64; 2] {
        self.sum(i64::MIN, t)
    }

    fn counter(&self, t: i64) -> LiveSample {
        let epoch_start = self
            .restarts
            .iter()
            .filter(|r| **r <= t)
            .max()
            .copied()
            .unwrap_or(i64::MIN);
        let [rx, tx] = self.sum(epoch_start, t);
        LiveSample {
            counter: CounterSample {
                rx,
                tx,
                epoch: Some(Epoch::Id(format!(
                    "dpi-{}",
                    self.restarts.iter().filter(|r| **r <= t).count()
                ))),
                at_ms: t * 1000,
                wrap: WrapRule::Never,
                rate_window: Duration::from_secs(3600),
            },
            clock_s: t,
        }
    }

    /// The analyzer's 24 hours ending with the hour that holds `t`, as far as written by `t`.
    fn hours(&self, t: i64) -> BucketSample {
        let open = t - t.rem_euclid(HOUR);
        BucketSample {
            hours: (0..24)
                .map(|i| {
                    let start = open - (23 - i) * HOUR;
                    let [rx, tx] = self
                        .minutes
                        .range(start..start + HOUR)
                        .take_while(|(m, _)| *m + 60 <= t)
                        .fold([0, 0], |a, (_, v)| [a[0] + v[0], a[1] + v[1]]);
                    HourBucket { start_s: start, rx, tx }
                })
                .collect(),
        }
    }
}

/// Runs readings at `times` (skipping those in `down`), the analyzer read after each, and
/// returns the channel's total after each reading.
fn run(model: &Model, times: &[i64], down: &[(i64, i64)], ta_every: usize) -> (ChannelState, Vec<(i64, [u64; 2])>) {
    let mut ch = ChannelState::default();
    let mut total = [0u64; 2];
    let mut out = Vec::new();
    for (i, &t) in times.iter().enumerate() {
        if down.iter().any(|(a, b)| (*a..*b).contains(&t)) {
            continue;
        }
        let (step, _, _) = live(&mut ch, &model.counter(t), t * 1000, true, None);
        total = [total[0] + step.rx, total[1] + step.tx];
        if i % ta_every == 0 {
            let step = hours(&mut ch, &model.hours(t));
            total = [total[0] + step.rx, total[1] + step.tx];
        }
        out.push((t, total));
    }
    (ch, out)
}

#[test]
fn without_gaps_the_hours_add_nothing() {
    let model = Model::steady(T0 - 6 * HOUR, T0 + 30 * HOUR, 50_000);
    // Readings every 7 minutes: never on an hour boundary.
    let times: Vec<i64> = (0..(30 * 60 / 7)).map(|i| T0 + 13 + i * 420).collect();
    let (ch, out) = run(&model, &times, &[], 3);
    for (t, total) in &out {
        assert_eq!(*total, model.truth(*t), "at {t}");
    }
    assert_eq!(ch.reconciler.as_ref().map(|r| r.added), Some([0, 0]));
}

#[test]
fn bytes_lost_to_a_restart_are_added_once_when_the_hours_land() {
    let mut model = Model::steady(T0 - 2 * HOUR, T0 + 40 * HOUR, 80_000);
    // Down from 10:00 to 12:00; the counter restarts at 11:20.
    model.restarts.push(T0 + 11 * HOUR + 1200);
    let times: Vec<i64> = (0..40 * 6).map(|i| T0 + i * 600).collect();
    let (ch, out) = run(&model, &times, &[(T0 + 10 * HOUR + 1, T0 + 12 * HOUR)], 2);
    let missed = model.sum(T0 + 10 * HOUR, T0 + 11 * HOUR + 1200);
    let rec = ch.reconciler.as_ref().unwrap();
    assert_eq!(rec.added, missed, "exactly the bytes before the restart");
    let (t, total) = *out.last().unwrap();
    assert_eq!(total, model.truth(t));
    // Never above the truth on the way, and never down.
    let mut last = [0, 0];
    for (t, total) in &out {
        let truth = model.truth(*t);
        assert!(
            total[0] <= truth[0] && total[1] <= truth[1],
            "{t}: {total:?} > {truth:?}"
        );
        assert!(total[0] >= last[0] && total[1] >= last[1]);
        last = *total;
    }
}

#[test]
fn misaligned_readings_never_add_more_than_was_missed() {
    let mut model = Model::steady(T0 - 2 * HOUR, T0 + 60 * HOUR, 80_000);
    model.restarts.push(T0 + 5 * HOUR + 1800);
    model.restarts.push(T0 + 9 * HOUR + 600);
    let times: Vec<i64> = (0..60 * 60 / 7).map(|i| T0 + 17 + i * 420).collect();
    let down = [(T0 + 5 * HOUR, T0 + 6 * HOUR), (T0 + 9 * HOUR, T0 + 9 * HOUR + 1200)];
    let (ch, out) = run(&model, &times, &down, 1);
    // Lost: minutes not yet visible at the last reading before each outage that started
    // before the restart inside it.
    let last_before = |a: i64| times.iter().copied().filter(|t| *t < a).max().unwrap();
    let lost = |a: i64, restart: i64| {
        let seen = last_before(a);
        model
            .minutes
            .range(seen - 59..restart)
            .fold([0, 0], |acc, (_, v)| [acc[0] + v[0], acc[1] + v[1]])
    };
    let missed = [
        lost(T0 + 5 * HOUR, T0 + 5 * HOUR + 1800),
        lost(T0 + 9 * HOUR, T0 + 9 * HOUR + 600),
    ];
    let rec = ch.reconciler.as_ref().unwrap();
    for (d, added) in rec.added.iter().enumerate() {
        let lost = missed[0][d] + missed[1][d];
        assert!(*added <= lost, "{d}: added {added} > lost {lost}");
        // Short by at most one interval's bytes at each edge of the window.
        assert!(added + 2 * 7 * 90_000 >= lost, "{d}: added {added} of {lost}");
    }
    for (t, total) in &out {
        let truth = model.truth(*t);
        assert!(
            total[0] <= truth[0] && total[1] <= truth[1],
            "{t}: {total:?} > {truth:?}"
        );
    }
}

#[test]
fn windows_close_and_a_later_gap_is_added_too() {
    let mut model = Model::steady(T0 - 2 * HOUR, T0 + 100 * HOUR, 30_000);
    model.restarts.push(T0 + 3 * HOUR + 600);
    model.restarts.push(T0 + 70 * HOUR + 900);
    let times: Vec<i64> = (0..100 * 4).map(|i| T0 + i * 900).collect();
    let down = [(T0 + 3 * HOUR + 1, T0 + 4 * HOUR), (T0 + 70 * HOUR + 1, T0 + 71 * HOUR)];
    let (ch, out) = run(&model, &times, &down, 1);
    let rec = ch.reconciler.as_ref().unwrap();
    let first = model.sum(T0 + 3 * HOUR, T0 + 3 * HOUR + 600);
    let second = model.sum(T0 + 70 * HOUR, T0 + 70 * HOUR + 900);
    assert_eq!(rec.added, [first[0] + second[0], first[1] + second[1]]);
    assert!(rec.from.is_some_and(|f| f > T0 + 20 * HOUR), "the first window closed");
    assert!(rec.hours.len() < 80, "old hours are let go: {}", rec.hours.len());
    let (t, total) = *out.last().unwrap();
    assert_eq!(total, model.truth(t));
}

#[test]
fn taking_over_from_counted_hours_counts_nothing_twice() {
    let model = Model::steady(T0 - 10 * HOUR, T0 + 30 * HOUR, 40_000);
    let mut ch = ChannelState::default();
    // Hours only, until 05:30; the open hour was written up to 05:10.
    let step = ch.update_buckets(&model.hours(T0 + 5 * HOUR + 600), 0);
    let mut total = [step.rx, step.tx];
    assert_eq!(total, model.truth(T0 + 5 * HOUR + 600));
    let times: Vec<i64> = (0..25 * 2).map(|i| T0 + 5 * HOUR + 1800 + i * 1800).collect();
    for t in times {
        let (step, _, _) = live(&mut ch, &model.counter(t), t * 1000, false, None);
        total = [total[0] + step.rx, total[1] + step.tx];
        let step = hours(&mut ch, &model.hours(t));
        total = [total[0] + step.rx, total[1] + step.tx];
        let truth = model.truth(t);
        assert!(total[0] <= truth[0], "{t}: {total:?} > {truth:?}");
        // The 20 minutes between the last read hour and the first reading come from the hours.
        if t > T0 + 6 * HOUR {
            assert_eq!(total, truth, "{t}");
        }
    }
}

#[test]
fn survives_the_state_file() {
    let mut model = Model::steady(T0 - 2 * HOUR, T0 + 10 * HOUR, 10_000);
    model.restarts.push(T0 + 4 * HOUR);
    let times: Vec<i64> = (0..8 * 2).map(|i| T0 + i * 1800).collect();
    let (ch, _) = run(&model, &times, &[(T0 + 3 * HOUR + 1, T0 + 5 * HOUR)], 1);
    let persisted = crate::accounting::PersistedChannel {
        device: crate::model::DeviceId::new("phone").unwrap(),
        interface: None,
        source: "home".into(),
        state: ch.clone(),
    };
    let json = serde_json::to_string(&persisted).unwrap();
    let back: crate::accounting::PersistedChannel = serde_json::from_str(&json).unwrap();
    assert_eq!(back.state, ch);
}

#[test]
fn bytes_the_analyzer_shows_before_the_counter_are_not_counted_twice() {
    // The analyzer is read a few minutes after each counter reading (a slow poll, a row flushed
    // later), so its open hour already holds bytes the counter shows only at the next reading.
    let mut model = Model::steady(T0 - 2 * HOUR, T0 + 20 * HOUR, 60_000);
    model.restarts.push(T0 + 6 * HOUR + 900);
    // A burst right after the 08:40 reading.
    model.minutes.insert(T0 + 8 * HOUR + 2460, [2_000_000_000, 1_000]);
    let lag = 300;
    let times: Vec<i64> = (0..30 * 2).map(|i| T0 + 600 + i * 1800).collect();
    let down = (T0 + 6 * HOUR, T0 + 7 * HOUR);
    let mut ch = ChannelState::default();
    let mut total = [0u64; 2];
    let mut last = [0u64; 2];
    for t in times.iter().copied().filter(|t| !(down.0..down.1).contains(t)) {
        let (step, _, _) = live(&mut ch, &model.counter(t), t * 1000, true, None);
        total = [total[0] + step.rx, total[1] + step.tx];
        let step = hours(&mut ch, &model.hours(t + lag));
        total = [total[0] + step.rx, total[1] + step.tx];
        let seen = model.truth(t + lag);
        assert!(total[0] <= seen[0] && total[1] <= seen[1], "{t}: {total:?} > {seen:?}");
        assert!(total[0] >= last[0] && total[1] >= last[1], "{t}: went down");
        last = total;
    }
    let end = *times.last().unwrap();
    // Once traffic stopped, short only by the bytes between the last reading before some hour
    // boundary of the first day and that boundary: hours from before the first reading never
    // count (the first reading already holds them), so the window's first edge is a boundary
    // 20 minutes after a reading.
    let truth = model.truth(end);
    let edge = (1..=6)
        .map(|k| model.sum(T0 + k * HOUR - 1200, T0 + k * HOUR))
        .fold([0, 0], |m, e| [m[0].max(e[0]), m[1].max(e[1])]);
    for d in 0..2 {
        assert!(
            total[d] <= truth[d] && truth[d] - total[d] <= edge[d],
            "{d}: {total:?} of {truth:?}"
        );
    }
}
