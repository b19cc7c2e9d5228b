//! One task per source: poll, report, wait; back off while the source keeps failing.
//! Polls are scheduled and stamped on the bridge's [`Clock`]; only the time a poll took
//! (`/metrics`) and the logout budget are real time.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::model::Observation;
use crate::sources::{AnySource, Source, SourceError};

/// The result of one poll, sent to the core.
#[derive(Debug)]
pub struct PollReport {
    pub source: String,
    pub result: Result<Vec<Observation>, SourceError>,
    pub at_ms: i64,
    /// The source's cursor after this poll, saved with the totals.
    pub cursor: Option<serde_json::Value>,
    pub details: serde_json::Map<String, serde_json::Value>,
    /// How long the poll took (`/metrics`).
    pub duration: Duration,
}

impl PollReport {
    /// The poll's result, stamped now on `clock`.
    pub fn of(source: &AnySource, result: Result<Vec<Observation>, SourceError>, clock: &Clock) -> Self {
        Self {
            source: source.name().to_owned(),
            result,
            at_ms: clock.now_ms(),
            cursor: source.cursor(),
            details: source.details(),
            duration: Duration::ZERO,
        }
    }
}

/// How long a source may take to release its router session on the way out. Docker sends
/// SIGKILL 10 s after SIGTERM; an unreachable router (whose HTTP timeout is 15 s) must not
/// keep the bridge from stopping, and the session expires on the router by itself anyway.
const CLOSE_BUDGET: Duration = Duration::from_secs(1);

/// [`Source::close`], given at most [`CLOSE_BUDGET`].
pub async fn close(source: &mut AnySource) {
    if tokio::time::timeout(CLOSE_BUDGET, source.close()).await.is_err() {
        tracing::info!(source = %source.name(), "Logout did not finish within 1 s; the session expires on the router by itself.");
    }
}

/// Longest wait between attempts of a failing source, unless its interval is longer.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub fn backoff(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let cap = interval.max((interval * 8).min(MAX_BACKOFF));
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    interval.saturating_mul(factor).min(cap)
}

/// `poll_now` is the `poll` command: each change starts a poll at once.
pub async fn poll_loop(
    mut source: AnySource,
    reports: mpsc::Sender<PollReport>,
    cancel: CancellationToken,
    mut poll_now: tokio::sync::watch::Receiver<u64>,
    clock: Clock,
) {
    let interval = source.interval();
    let mut failures = 0u32;
    loop {
        let started = clock.mono();
        // Real time: how long the router took to answer, not simulated time.
        let took = Instant::now();
        let result = tokio::select! {
            r = source.poll() => r,
            _ = cancel.cancelled() => break,
        };
        // An unreachable device costs nothing to ask again, and must be seen back within an
        // interval of its return (a rebooted router); only answers that are wrong back off.
        failures = match &result {
            Ok(_) | Err(SourceError::Unavailable(_)) => 0,
            Err(_) => failures.saturating_add(1),
        };
        let mut report = PollReport::of(&source, result, &clock);
        report.duration = took.elapsed();
        if reports.send(report).await.is_err() {
            break;
        }
        let wait = backoff(interval, failures);
        let requested = async {
            if poll_now.changed().await.is_err() {
                // The core is gone: no more requests, keep the schedule until cancelled.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = clock.sleep_until(started + wait) => {}
            _ = requested => {}
            _ = cancel.cancelled() => break,
        }
    }
    close(&mut source).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(10), 0), s(10));
        assert_eq!(backoff(s(10), 1), s(10));
        assert_eq!(backoff(s(10), 2), s(20));
        assert_eq!(backoff(s(10), 4), s(80));
        assert_eq!(backoff(s(10), 10), s(80));
        assert_eq!(backoff(s(60), 10), s(300));
        assert_eq!(backoff(s(600), 10), s(600), "never shorter than the interval");
    }
}
