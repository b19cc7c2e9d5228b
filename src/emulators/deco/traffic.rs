//! Per-client traffic at one-second resolution with exact ground truth.
//!
//! Each profile mixes a background trickle with bursts (page loads, video chunks every few
//! seconds, calls, downloads, backups) whose arrival follows the time of day. The emulated Deco
//! reports what a real one plausibly does: the average rate over a short window before the
//! read, rounded to whole units. The bridge only sees those snapshots; the benchmark compares its
//! estimate with the bytes counted here.

use std::collections::VecDeque;
use std::time::Duration;

const DOWN: usize = 0;
const UP: usize = 1;

/// How a client uses the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// Exactly these rates every second (tests that need exact numbers).
    Constant { down_bps: f64, up_bps: f64 },
    /// Nothing at all.
    Idle,
    /// Page loads, video calls, occasional large downloads.
    Laptop,
    /// A TV: evening streaming sessions fetched in 4-second chunks.
    Streamer,
    /// Notifications, browsing, short videos, photo uploads.
    Phone,
    /// A security camera: a steady, noisy upload.
    Camera,
    /// A smart plug: a heartbeat a minute.
    Iot,
    /// A wired NAS: a nightly backup upload and media served to the TV.
    Nas,
}

/// A small deterministic generator (SplitMix64), so a seed always gives the same day.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Heavy-tailed sizes: uniform in log space.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }
}

#[derive(Debug, Clone)]
struct Flow {
    dir: usize,
    remaining: f64,
    /// Bytes per second while it lasts.
    rate: f64,
}

#[derive(Debug, Clone)]
pub struct ClientTraffic {
    profile: Profile,
    rng: Rng,
    flows: Vec<Flow>,
    /// Bytes of the last whole seconds, newest last; as long as the rate window.
    window: VecDeque<[u64; 2]>,
    window_len: usize,
    truth: [u64; 2],
    carry: [f64; 2],
    next_second: i64,
    session_until: i64,
    session_rate: f64,
    next_chunk: i64,
}

impl ClientTraffic {
    pub fn new(profile: Profile, seed: u64, window: Duration, start_ms: i64) -> Self {
        let window_len = usize::try_from(window.as_secs()).unwrap_or(1).max(1);
        Self {
            profile,
            rng: Rng(seed ^ 0x5eed_0000_dec0),
            flows: Vec::new(),
            window: VecDeque::with_capacity(window_len + 1),
            window_len,
            truth: [0; 2],
            carry: [0.0; 2],
            next_second: start_ms.div_euclid(1000),
            session_until: 0,
            session_rate: 0.0,
            next_chunk: 0,
        }
    }

    /// Simulates every whole second before `now_ms`; `online(second)` says whether the client
    /// was connected then (offline seconds carry no traffic and end every transfer).
    pub fn advance(&mut self, now_ms: i64, online: impl Fn(i64) -> bool) {
        let until = now_ms.div_euclid(1000);
        while self.next_second < until {
            let s = self.next_second;
            self.step(s, online(s));
            self.next_second += 1;
        }
    }

    /// Bytes received (download) and sent (upload) since the model started.
    pub fn truth(&self) -> (u64, u64) {
        (self.truth[DOWN], self.truth[UP])
    }

    /// Average bytes per second over the rate window (what the Deco shows as the speed).
    pub fn window_rate(&self) -> (f64, f64) {
        if self.window.is_empty() {
            return (0.0, 0.0);
        }
        let n = self.window.len() as f64;
        let sum = self
            .window
            .iter()
            .fold([0u64; 2], |acc, s| [acc[0] + s[0], acc[1] + s[1]]);
        (sum[DOWN] as f64 / n, sum[UP] as f64 / n)
    }

    fn step(&mut self, s: i64, online: bool) {
        let mut bytes = [0.0f64; 2];
        if online {
            self.spawn(s, &mut bytes);
            for flow in &mut self.flows {
                let take = flow.remaining.min(flow.rate);
                bytes[flow.dir] += take;
                flow.remaining -= take;
            }
            self.flows.retain(|f| f.remaining > 0.5);
        } else {
            self.flows.clear();
            self.session_until = self.session_until.min(s);
        }
        let mut whole = [0u64; 2];
        for dir in [DOWN, UP] {
            let total = bytes[dir] + self.carry[dir];
            let floor = total.floor();
            self.carry[dir] = total - floor;
            whole[dir] = floor as u64;
            self.truth[dir] += whole[dir];
        }
        self.window.push_back(whole);
        while self.window.len() > self.window_len {
            self.window.pop_front();
        }
    }

    fn flow(&mut self, dir: usize, size: f64, rate: f64) {
        self.flows.push(Flow {
            dir,
            remaining: size,
            rate,
        });
    }

    fn trickle(&mut self, bytes: &mut [f64; 2], down: f64, up: f64) {
        bytes[DOWN] += down * self.rng.uniform(0.5, 1.5);
        bytes[UP] += up * self.rng.uniform(0.5, 1.5);
    }

    /// New transfers starting in second `s`, and traffic that is not a transfer.
    fn spawn(&mut self, s: i64, bytes: &mut [f64; 2]) {
        let activity = activity(s);
        match self.profile {
            Profile::Constant { down_bps, up_bps } => {
                bytes[DOWN] += down_bps / 8.0;
                bytes[UP] += up_bps / 8.0;
            }
            Profile::Idle => {}
            Profile::Laptop => {
                self.trickle(bytes, 300.0, 150.0);
                if self.rng.chance(activity / 25.0) {
                    let size = self.rng.log_uniform(1e5, 6e6);
                    let rate = self.rng.uniform(2e6, 6e6);
                    self.flow(DOWN, size, rate);
                    self.flow(UP, size * 0.04, 1e6);
                }
                if self.rng.chance(activity / 9000.0) {
                    let seconds = self.rng.uniform(900.0, 3600.0);
                    self.flow(DOWN, 190e3 * seconds, 190e3);
                    self.flow(UP, 190e3 * seconds, 190e3);
                }
                if self.rng.chance(activity / 14_400.0) {
                    let size = self.rng.log_uniform(5e7, 2e9);
                    let rate = self.rng.uniform(4e6, 12e6);
                    self.flow(DOWN, size, rate);
                    self.flow(UP, size * 0.02, rate * 0.02);
                }
            }
            Profile::Streamer => {
                self.trickle(bytes, 50.0, 20.0);
                if s >= self.session_until && self.rng.chance(activity * activity / 3600.0) {
                    self.session_until = s + self.rng.uniform(1800.0, 9000.0) as i64;
                    self.session_rate = self.rng.uniform(0.6e6, 2.0e6);
                    self.next_chunk = s;
                }
                if s < self.session_until && s >= self.next_chunk {
                    let chunk = self.session_rate * 4.0;
                    self.flow(DOWN, chunk, 10e6);
                    self.flow(UP, chunk * 0.02, 1e6);
                    self.next_chunk = s + 4;
                }
            }
            Profile::Phone => {
                self.trickle(bytes, 150.0, 80.0);
                if self.rng.chance(1.0 / 90.0) {
                    let size = self.rng.log_uniform(5e3, 3e5);
                    self.flow(DOWN, size, 1e6);
                }
                if self.rng.chance(activity / 45.0) {
                    let size = self.rng.log_uniform(2e5, 4e6);
                    self.flow(DOWN, size, 2.5e6);
                    self.flow(UP, size * 0.03, 5e5);
                }
                if self.rng.chance(activity / 2400.0) {
                    let size = self.rng.uniform(5e6, 6e7);
                    self.flow(DOWN, size, 4e5);
                }
                if self.rng.chance(activity / 7200.0) {
                    let size = self.rng.log_uniform(3e6, 6e7);
                    self.flow(UP, size, 1.5e6);
                }
            }
            Profile::Camera => {
                bytes[UP] += 180e3 * self.rng.uniform(0.7, 1.3);
                bytes[DOWN] += 2e3 * self.rng.uniform(0.5, 1.5);
            }
            Profile::Iot => {
                self.trickle(bytes, 2.0, 2.0);
                if s.rem_euclid(60) == 17 {
                    bytes[DOWN] += 1500.0;
                    bytes[UP] += 800.0;
                }
            }
            Profile::Nas => {
                self.trickle(bytes, 500.0, 500.0);
                if s.rem_euclid(86_400) == 2 * 3600 {
                    let size = self.rng.log_uniform(2e9, 2e10);
                    self.flow(UP, size, 25e6);
                    self.flow(DOWN, size * 0.01, 25e4);
                }
                if self.rng.chance(activity / 3600.0) {
                    let size = self.rng.log_uniform(1e8, 1e9);
                    self.flow(UP, size, 3e6);
                }
            }
        }
    }
}

/// How busy the household is at this time of day (UTC hours of the clock), 0–1.
fn activity(s: i64) -> f64 {
    let hour = s.rem_euclid(86_400) as f64 / 3600.0;
    match hour {
        h if h < 6.0 => 0.05,
        h if h < 9.0 => 0.5,
        h if h < 17.0 => 0.6,
        h if h < 23.0 => 1.0,
        _ => 0.4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(2);

    #[test]
    fn constant_traffic_is_exact() {
        let mut t = ClientTraffic::new(
            Profile::Constant {
                down_bps: 8000.0,
                up_bps: 800.0,
            },
            1,
            W,
            0,
        );
        t.advance(10_500, |_| true);
        assert_eq!(t.truth(), (10_000, 1_000));
        assert_eq!(t.window_rate(), (1000.0, 100.0));
        t.advance(20_000, |s| s < 15);
        assert_eq!(t.truth(), (15_000, 1_500), "offline seconds add nothing");
        assert_eq!(t.window_rate(), (0.0, 0.0));
    }

    #[test]
    fn bursty_profiles_are_deterministic_and_busy() {
        let day = 86_400_000;
        for profile in [
            Profile::Laptop,
            Profile::Streamer,
            Profile::Phone,
            Profile::Camera,
            Profile::Iot,
            Profile::Nas,
        ] {
            let mut a = ClientTraffic::new(profile, 7, W, 0);
            let mut b = ClientTraffic::new(profile, 7, W, 0);
            a.advance(day, |_| true);
            b.advance(day, |_| true);
            assert_eq!(a.truth(), b.truth(), "{profile:?}");
            let (down, up) = a.truth();
            assert!(down + up > 50_000, "{profile:?} moves some data: {down} {up}");
        }
        let mut idle = ClientTraffic::new(Profile::Idle, 7, W, 0);
        idle.advance(day, |_| true);
        assert_eq!(idle.truth(), (0, 0));
    }

    #[test]
    fn the_window_is_an_average_of_recent_seconds() {
        let mut t = ClientTraffic::new(Profile::Streamer, 3, Duration::from_secs(5), 0);
        // Evening, so a session is likely to start within the hour.
        t.advance(20 * 3_600_000, |_| true);
        let before = t.truth();
        t.advance(20 * 3_600_000 + 5_000, |_| true);
        let after = t.truth();
        let (down, _) = t.window_rate();
        assert!((down - (after.0 - before.0) as f64 / 5.0).abs() < 1e-9);
    }
}
