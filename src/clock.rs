//! The bridge's one clock: wall time to stamp observations and decide days and months, monotonic
//! time and sleeps to schedule polls and period ticks.
//!
//! Injected (see [`crate::bridge::Parts`]) so that the same bridge runs on:
//! - [`Clock::system`]: the real clock (the daemon);
//! - [`ManualClock`]: stands still until a test moves it; a day of polls, a midnight and a month
//!   end take milliseconds, while sockets (mosquitto, the emulators) stay real, which tokio's
//!   paused time would not allow;
//! - [`Clock::scaled`]: `demo --speed N`, N simulated seconds per real second, like the emulators,
//!   so rates derived from their counters read the simulated rate and today's totals move N×.
//!
//! What is about the real link (MQTT keepalive and reconnect backoff, router login etiquette,
//! HTTP timeouts, the health file) stays on real time: a broker or a router does not run faster
//! because the demo does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a clock implementation provides; [`Clock`] wraps one.
trait TimeSource: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Monotonic time since the clock was made.
    fn mono(&self) -> Duration;
    /// Completes once [`TimeSource::mono`] has reached `deadline`.
    fn sleep_until(&self, deadline: Duration) -> Sleep;
}

/// A cheap, cloneable handle on one clock.
#[derive(Clone)]
pub struct Clock(Arc<dyn TimeSource>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock").field("now_ms", &self.now_ms()).finish()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The real clock; sleeps are tokio's.
    pub fn system() -> Self {
        Self(Arc::new(Scaled::new(system_now_ms(), 1.0)))
    }

    /// Wall time starts at `start_ms` and runs `speed` times as fast as real time; sleeps last
    /// 1/`speed` of what they ask for.
    pub fn scaled(start_ms: i64, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        Self(Arc::new(Scaled::new(start_ms, speed)))
    }

    /// Wall time starts at `start_ms` and follows tokio's clock alone (not the host's): with
    /// `#[tokio::test(start_paused = true)]`, days pass in milliseconds and the bridge's own
    /// timers (the link's pacing, refresh, birth delay) move with its polls.
    pub fn tokio(start_ms: i64) -> Self {
        let mut scaled = Scaled::new(start_ms, 1.0);
        scaled.system_wall = false;
        Self(Arc::new(scaled))
    }

    /// Milliseconds since the Unix epoch: what observations are stamped with.
    pub fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }

    pub fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.now_ms()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// Monotonic time since the clock was made: immune to steps of the wall clock (NTP, a VM
    /// resume), comparable only within one clock.
    pub fn mono(&self) -> Duration {
        self.0.mono()
    }

    pub fn mono_ms(&self) -> i64 {
        i64::try_from(self.mono().as_millis()).unwrap_or(i64::MAX)
    }

    /// Sleeps until [`Clock::mono`] reaches `deadline`.
    pub fn sleep_until(&self, deadline: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.0.sleep_until(deadline)
    }

    pub fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.0.sleep_until(self.mono().saturating_add(duration))
    }

    /// Ticks now and then every `period`; a late tick delays the next ones (no bursts), like
    /// tokio's `MissedTickBehavior::Delay`.
    pub fn interval(&self, period: Duration) -> Interval {
        self.interval_at(self.mono(), period)
    }

    /// Ticks at `start` (monotonic) and then every `period`.
    pub fn interval_at(&self, start: Duration, period: Duration) -> Interval {
        Interval {
            clock: self.clone(),
            next: start,
            period: period.max(Duration::from_millis(1)),
        }
    }
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualClock").field("now_ms", &self.now_ms()).finish()
    }
}

/// See [`Clock::interval`].
pub struct Interval {
    clock: Clock,
    next: Duration,
    period: Duration,
}

impl Interval {
    /// Waits for the next tick; returns when it fired (monotonic).
    pub async fn tick(&mut self) -> Duration {
        self.clock.sleep_until(self.next).await;
        let now = self.clock.mono();
        self.next = now.max(self.next).saturating_add(self.period);
        now
    }
}

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Real time, optionally sped up. Built on tokio's clock, so `#[tokio::test(start_paused)]`
/// moves it too.
struct Scaled {
    base: tokio::time::Instant,
    /// The wall clock at `base`. Speed 1 reads the system clock itself instead, so that a step
    /// of the host's clock (NTP) is seen, as before.
    base_wall_ms: i64,
    speed: f64,
    /// Speed 1 reads the host's wall clock ([`Clock::system`]), unless made by [`Clock::tokio`].
    system_wall: bool,
}

impl Scaled {
    fn new(base_wall_ms: i64, speed: f64) -> Self {
        Self {
            base: tokio::time::Instant::now(),
            base_wall_ms,
            speed,
            system_wall: true,
        }
    }
}

impl TimeSource for Scaled {
    fn now_ms(&self) -> i64 {
        if self.speed == 1.0 && self.system_wall {
            return system_now_ms();
        }
        let ms = i64::try_from(self.mono().as_millis()).unwrap_or(i64::MAX);
        self.base_wall_ms.saturating_add(ms)
    }

    fn mono(&self) -> Duration {
        self.base.elapsed().mul_f64(self.speed)
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        let real = self.base + deadline.div_f64(self.speed);
        Box::pin(tokio::time::sleep_until(real))
    }
}

/// A clock that moves only when told ([`ManualClock::advance`]); sleepers wake as soon as it
/// passes their deadline. Tests hold the `ManualClock` and give the bridge [`ManualClock::clock`].
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Manual>,
}

struct Manual {
    start_ms: i64,
    mono: watch::Sender<Duration>,
}

impl ManualClock {
    /// A clock reading `start_ms` (Unix ms) until moved.
    pub fn new(start_ms: i64) -> Self {
        Self {
            inner: Arc::new(Manual {
                start_ms,
                mono: watch::Sender::new(Duration::ZERO),
            }),
        }
    }

    /// Starting at a wall time such as `"2026-03-14T23:50:00+01:00"`.
    pub fn at(timestamp: jiff::Timestamp) -> Self {
        Self::new(timestamp.as_millisecond())
    }

    pub fn clock(&self) -> Clock {
        Clock(self.inner.clone())
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }

    /// Moves the clock on, waking every sleeper whose deadline it passes.
    pub fn advance(&self, by: Duration) {
        self.inner.mono.send_modify(|m| *m = m.saturating_add(by));
    }

    /// Moves the clock on to `wall_ms` (never back).
    pub fn advance_to(&self, wall_ms: i64) {
        let by = wall_ms.saturating_sub(self.now_ms()).max(0);
        self.advance(Duration::from_millis(by.unsigned_abs()));
    }
}

impl TimeSource for Manual {
    fn now_ms(&self) -> i64 {
        let ms = i64::try_from(self.mono().as_millis()).unwrap_or(i64::MAX);
        self.start_ms.saturating_add(ms)
    }

    fn mono(&self) -> Duration {
        *self.mono.borrow()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        let mut rx = self.mono.subscribe();
        Box::pin(async move {
            // The sender lives as long as any clock handle; if it is gone, nothing will ever
            // move this clock again.
            if rx.wait_for(|now| *now >= deadline).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_the_clock_passes_their_deadline() {
        let manual = ManualClock::new(1_000);
        let clock = manual.clock();
        let mut sleeper = tokio::spawn(clock.sleep(Duration::from_secs(10)));
        manual.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut sleeper)
                .await
                .is_err(),
            "woke early"
        );
        manual.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now_ms(), 11_000);
        assert_eq!(clock.mono(), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_manual_interval_ticks_once_per_jump_without_bursts() {
        let manual = ManualClock::new(0);
        let mut every = manual.clock().interval(Duration::from_secs(30));
        assert_eq!(every.tick().await, Duration::ZERO, "first tick at once");
        manual.advance(Duration::from_secs(300));
        assert_eq!(every.tick().await, Duration::from_secs(300));
        let next = tokio::time::timeout(Duration::from_millis(20), every.tick()).await;
        assert!(next.is_err(), "a late tick delays the next instead of bursting");
        manual.advance(Duration::from_secs(30));
        assert_eq!(every.tick().await, Duration::from_secs(330));
    }

    #[tokio::test]
    async fn a_scaled_clock_runs_n_times_faster_and_sleeps_n_times_shorter() {
        let clock = Clock::scaled(1_000_000, 1_000.0);
        let real = std::time::Instant::now();
        clock.sleep(Duration::from_secs(20)).await;
        let took = real.elapsed();
        assert!(took >= Duration::from_millis(19), "{took:?}");
        assert!(took < Duration::from_secs(5), "slept in real time: {took:?}");
        let simulated = clock.now_ms() - 1_000_000;
        assert!(simulated >= 20_000, "{simulated}");
        assert!(
            simulated as f64 >= took.as_secs_f64() * 1_000.0 * 900.0,
            "{simulated} ms in {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_follows_paused_time_from_its_start() {
        let clock = Clock::tokio(5_000);
        assert_eq!(clock.now_ms(), 5_000);
        clock.sleep(Duration::from_secs(86_400)).await;
        assert_eq!(clock.now_ms(), 5_000 + 86_400_000);
        assert_eq!(clock.mono(), Duration::from_secs(86_400));
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let clock = Clock::system();
        assert!((clock.now_ms() - system_now_ms()).abs() < 1_000);
        assert!(clock.now() > jiff::Timestamp::UNIX_EPOCH);
    }
}
