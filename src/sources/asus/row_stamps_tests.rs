use std::time::Duration;

use super::*;
use crate::model::{CounterSample, WrapRule};

const H: i64 = 1_795_557_600; // an hour boundary

fn sample(t: i64, value: u64) -> (MacAddr, LiveSample) {
    (
        MacAddr::new([2, 0, 0, 0, 0, 1]),
        LiveSample {
            counter: CounterSample {
                rx: value,
                tx: 0,
                epoch: Some(Epoch::Id("dpi-0".into())),
                at_ms: t * 1000,
                wrap: WrapRule::Never,
                rate_window: Duration::from_secs(90),
            },
            clock_s: t,
        },
    )
}

/// A client moving `per_s` bytes a second, read every 30 s from `from` to `to`.
fn watch(judge: &mut StampJudge, from: i64, to: i64, per_s: u64) {
    for t in (from..=to).step_by(30) {
        judge.observe(&[sample(t, (t - (H - 7200)) as u64 * per_s)]);
    }
}

#[test]
fn a_whole_hour_in_the_newest_bucket_early_in_the_hour_is_the_hour_before() {
    let mac = MacAddr::new([2, 0, 0, 0, 0, 1]);
    let mut judge = StampJudge::default();
    assert_eq!(judge.stamps(), RowStamps::End, "the router's sources until seen");
    watch(&mut judge, H - 3000, H + 300, 100_000);
    // End stamps: the newest bucket holds 3600 s of traffic, 5 minutes into the hour.
    judge.judge(&mac, H, 3600 * 100_000);
    assert_eq!(judge.finish(H), None, "one hour is not yet settled");
    watch(&mut judge, H + 330, H + 3900, 100_000);
    judge.judge(&mac, H + 3600, 3600 * 100_000);
    assert_eq!(judge.finish(H + 3600), Some(RowStamps::End));
    assert_eq!(judge.verdict.seen, Some(RowStamps::End));
}

#[test]
fn the_hour_so_far_in_the_newest_bucket_is_start_stamping() {
    let mac = MacAddr::new([2, 0, 0, 0, 0, 1]);
    let mut judge = StampJudge::default();
    // Watched across two boundaries: the hour before moved 360 MB.
    watch(&mut judge, H - 4000, H + 600, 100_000);
    // Start stamps: the newest bucket holds what moved since H (10 minutes).
    judge.judge(&mac, H, 600 * 100_000);
    judge.finish(H);
    watch(&mut judge, H + 630, H + 3600 + 600, 100_000);
    judge.judge(&mac, H + 3600, 600 * 100_000);
    assert_eq!(judge.finish(H + 3600), Some(RowStamps::Start));
    // Evidence that stays ambiguous (a quiet client) changes nothing.
    let mut quiet = StampJudge::default();
    watch(&mut quiet, H - 4000, H + 600, 10);
    quiet.judge(&mac, H, 36_000);
    assert_eq!(quiet.finish(H), None);
    assert_eq!(quiet.verdict.score, 0);
}

#[test]
fn a_counter_that_restarted_gives_no_evidence() {
    let mac = MacAddr::new([2, 0, 0, 0, 0, 1]);
    let mut judge = StampJudge::default();
    watch(&mut judge, H - 600, H - 30, 100_000);
    // A new epoch after the boundary: the marks start over.
    let (m, mut s) = sample(H + 30, 5);
    s.counter.epoch = Some(Epoch::Id("dpi-1".into()));
    judge.observe(&[(m, s)]);
    judge.judge(&mac, H, 3600 * 100_000);
    assert_eq!(judge.finish(H), None);
    assert_eq!(judge.verdict.score, 0);
}
