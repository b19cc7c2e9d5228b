//! What a router source remembers about its logins across restarts: the router's refusal of our
//! credentials, and the logins spent in the last hour. Restarting the bridge — by hand, from
//! cron (`once`), or in a crash loop under systemd/Docker — must not spend another of the few
//! attempts before the router locks the account (ASUS: 5, Deco: 10), nor log in afresh on every
//! start. A changed password is tried at once. [`LoginJournal`] makes this durable *before* the
//! login request leaves (write-ahead), so even `kill -9` right after the request cannot forget it.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

pub use super::login_journal::LoginJournal;

pub const HOUR: Duration = Duration::from_secs(3600);

/// The on-disk record (one small file per router source; see [`LoginJournal`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginMemory {
    /// Random salt of [`Self::password`], hex.
    #[serde(default)]
    pub salt: String,
    /// A salted, stretched SHA-256 tag of the password the refusals are about (never the
    /// password itself; see [`password_tag`]).
    #[serde(default)]
    pub password: String,
    /// Refusals in a row.
    #[serde(default)]
    pub refusals: u32,
    /// The credentials hold in force, if any.
    #[serde(default)]
    pub hold: Option<RememberedHold>,
    /// Unix seconds of the logins of the last hour that no logout ended.
    #[serde(default)]
    pub attempts: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedHold {
    /// Unix seconds until which no login is tried; `None`: not until the password changes.
    pub until: Option<i64>,
    pub reason: String,
}

impl RememberedHold {
    /// A hold `in_` from now (`None`: indefinitely).
    pub fn lasting(in_: Option<Duration>, reason: &str) -> Self {
        Self {
            until: in_.map(wall_clock),
            reason: reason.to_owned(),
        }
    }

    /// How long from now the hold still lasts (`None` = indefinitely), or `Some(ZERO)` if over.
    pub fn remaining(&self) -> Option<Duration> {
        let until = self.until?;
        Some(Duration::from_secs(until.saturating_sub(unix_now()).max(0) as u64))
    }
}

/// Iterations of the tag's SHA-256 chain: a stolen state directory must not give away a short
/// password by a cheap dictionary run, while one tag still costs only milliseconds per start.
#[cfg(not(fuzzing))]
const TAG_ROUNDS: u32 = 20_000;
/// `cargo fuzz` builds with `--cfg fuzzing`: the stretching is cost, not logic, and at 20,000
/// rounds per router source the config target managed only ~300 executions per second.
#[cfg(fuzzing)]
const TAG_ROUNDS: u32 = 2;

/// A salted, stretched tag of `password` (16 hex digits). Not reversible; with a random salt per
/// record no table can be precomputed, and each guess costs [`TAG_ROUNDS`] hashes.
pub fn password_tag(salt: &str, password: &str) -> String {
    let mut digest = Sha256::digest(format!("bandwidth2mqtt login memory:{salt}:{password}"));
    for _ in 1..TAG_ROUNDS {
        let mut h = Sha256::new();
        h.update(digest);
        h.update(salt.as_bytes());
        digest = h.finalize();
    }
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

pub fn new_salt() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl LoginMemory {
    /// Whether the refusals recorded here were about `password`.
    pub fn applies_to(&self, password: &str) -> bool {
        !self.password.is_empty() && self.password == password_tag(&self.salt, password)
    }
}

/// The logins spent in the last hour, capped: a router that keeps dropping our session, or a
/// bridge that keeps restarting, never logs in more than `per_hour` times an hour.
#[derive(Debug)]
pub struct LoginBudget {
    attempts: VecDeque<Instant>,
    per_hour: usize,
}

impl LoginBudget {
    pub fn new(per_hour: usize) -> Self {
        Self {
            attempts: VecDeque::new(),
            per_hour,
        }
    }

    /// Spends one login now, or says how long until one is free again.
    pub fn spend(&mut self, now: Instant) -> Result<(), Duration> {
        while self
            .attempts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= HOUR)
        {
            self.attempts.pop_front();
        }
        if self.attempts.len() >= self.per_hour
            && let Some(oldest) = self.attempts.front()
        {
            return Err((*oldest + HOUR).saturating_duration_since(now));
        }
        self.attempts.push_back(now);
        Ok(())
    }

    /// The last login was ended by a logout: the router holds no session of ours from it, so
    /// it does not count against the next start (a `once` from cron every few minutes).
    pub fn released(&mut self) {
        self.attempts.pop_back();
    }

    /// The attempts as Unix seconds, for the journal.
    pub fn to_wall(&self, now: Instant) -> Vec<i64> {
        let wall = unix_now();
        self.attempts
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < HOUR)
            .map(|t| wall - now.saturating_duration_since(*t).as_secs() as i64)
            .collect()
    }

    /// Attempts from before a restart, read back onto this process's clock.
    pub fn restore(&mut self, attempts: &[i64], now: Instant) {
        let wall = unix_now();
        let mut ages: Vec<Duration> = attempts
            .iter()
            // An attempt "in the future" (the wall clock stepped back) counts as just now.
            .map(|t| Duration::from_secs(wall.saturating_sub(*t).max(0) as u64))
            .filter(|age| *age < HOUR)
            .collect();
        ages.sort_by(|a, b| b.cmp(a));
        self.attempts = ages
            .into_iter()
            .map(|age| now.checked_sub(age).unwrap_or(now))
            .collect();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn wall_clock(in_: Duration) -> i64 {
    unix_now().saturating_add(in_.as_secs().min(i64::MAX as u64 / 2) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_salted_and_tell_passwords_apart() {
        let salt = new_salt();
        let tag = password_tag(&salt, "hunter2");
        assert_eq!(tag.len(), 16);
        assert!(!tag.contains("hunter2"));
        assert_ne!(tag, password_tag(&new_salt(), "hunter2"), "the salt changes the tag");
        // Not the plain SHA-256 of the password in any spelling.
        let plain: String = Sha256::digest("hunter2").iter().map(|b| format!("{b:02x}")).collect();
        assert!(!plain.starts_with(&tag));
        let m = LoginMemory {
            salt,
            password: tag,
            ..LoginMemory::default()
        };
        assert!(m.applies_to("hunter2") && !m.applies_to("hunter3"));
        assert!(!LoginMemory::default().applies_to(""), "no tag applies to nothing");
    }

    #[test]
    fn a_budget_survives_the_trip_through_the_wall_clock() {
        let now = Instant::now();
        let mut b = LoginBudget::new(3);
        for _ in 0..3 {
            b.spend(now).unwrap();
        }
        assert!(b.spend(now).is_err());
        let mut restarted = LoginBudget::new(3);
        restarted.restore(&b.to_wall(now), now);
        let wait = restarted.spend(now).unwrap_err();
        assert!(wait > HOUR - Duration::from_secs(5), "{wait:?}");
        restarted.released();
        let mut again = LoginBudget::new(3);
        again.restore(&restarted.to_wall(now), now);
        assert!(again.spend(now).is_ok(), "a logged-out login is given back");
        // Attempts older than an hour are forgotten.
        let mut old = LoginBudget::new(1);
        old.restore(&[unix_now() - 3601], now);
        assert!(old.spend(now).is_ok());
    }

    #[test]
    fn a_hold_counts_down_on_the_wall_clock() {
        let hold = RememberedHold::lasting(Some(Duration::from_secs(60)), "x");
        assert!(hold.remaining().is_some_and(|d| d > Duration::from_secs(50)));
        assert_eq!(RememberedHold::lasting(None, "x").remaining(), None);
    }
}
