//! When the bridge may log in to the Deco (deco.md §4, §6; deco-notes.md §1–2).
//!
//! The Deco has one owner session: each of our logins kicks the owner out of the app and web UI,
//! and ten wrong passwords lock the account (-5003). So: keep one session; after a lost session
//! log in again at once only if sessions are not being lost repeatedly; after a wrong password
//! wait long, and stop for good before the Deco's counter gets anywhere near ten.

use std::time::{Duration, Instant};

use crate::sources::login_memory::{LoginBudget, LoginMemory, RememberedHold};

/// Each of our logins throws the owner out of the app: never more than this many an hour,
/// whatever happens (sessions lost, the bridge restarting in a loop).
pub const MAX_LOGINS_PER_HOUR: usize = 6;

/// Pause after the first and second wrong-password answers in a row; the third stops logins.
const WRONG_PASSWORD_HOLDS: [Duration; 2] = [Duration::from_secs(30 * 60), Duration::from_secs(2 * 3600)];
/// Stop when the Deco says this few attempts are left (others may be typing wrong passwords too).
const MIN_ATTEMPTS_LEFT: i64 = 5;
const LOCKED_HOLD: Duration = Duration::from_secs(30 * 60);
/// Two lost sessions this close together mean someone is using the owner account right now.
const CONTEST_WINDOW: Duration = Duration::from_secs(10 * 60);
const CONTESTED_HOLDS: [Duration; 3] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(20 * 60),
];

/// Why logins are paused; the text is shown to users unchanged for as long as the pause lasts,
/// so the bridge logs it once rather than on every poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub until: Option<Instant>,
    pub message: String,
    /// The Deco refused our credentials (as opposed to: the session is in use elsewhere).
    pub credentials: bool,
}

/// What to do about a session the Deco no longer accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLoss {
    LoginAgain,
    Wait(Hold),
}

#[derive(Debug)]
pub struct LoginGate {
    hold: Option<Hold>,
    wrong_passwords: usize,
    contested: usize,
    last_loss: Option<Instant>,
    pub attempts: u64,
    budget: LoginBudget,
}

impl Default for LoginGate {
    fn default() -> Self {
        Self {
            hold: None,
            wrong_passwords: 0,
            contested: 0,
            last_loss: None,
            attempts: 0,
            budget: LoginBudget::new(MAX_LOGINS_PER_HOUR),
        }
    }
}

impl LoginGate {
    /// What a restart must not forget: the credentials hold in force (a contested session is
    /// not kept) and the logins spent.
    pub fn memory(&self, now: Instant) -> LoginMemory {
        let hold = self
            .hold
            .as_ref()
            .filter(|h| h.credentials && h.until.is_none_or(|until| until > now))
            .map(|h| RememberedHold::lasting(h.until.map(|until| until - now), &h.message));
        LoginMemory {
            refusals: self.wrong_passwords as u32,
            hold,
            attempts: self.budget.to_wall(tokio::time::Instant::from_std(now)),
            ..LoginMemory::default()
        }
    }

    /// What the previous run remembered; its refusals only if they were about this same
    /// password. Returns whether a credentials hold is back in force.
    pub fn recall(&mut self, memory: &LoginMemory, same_password: bool, now: Instant) -> bool {
        self.budget
            .restore(&memory.attempts, tokio::time::Instant::from_std(now));
        if !same_password {
            return false;
        }
        self.wrong_passwords = memory.refusals as usize;
        let Some(hold) = &memory.hold else {
            return false;
        };
        let until = match hold.remaining() {
            None => None,
            Some(r) if r.is_zero() => return false,
            Some(r) => Some(now + r),
        };
        self.hold = Some(Hold {
            until,
            message: hold.reason.clone(),
            credentials: true,
        });
        true
    }

    /// `Err` while logins are paused.
    pub fn check(&mut self, now: Instant) -> Result<(), Hold> {
        match &self.hold {
            Some(hold) if hold.until.is_none_or(|until| now < until) => Err(hold.clone()),
            Some(_) => {
                self.hold = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Spends one login of the hourly budget, right before the login request.
    pub fn attempt(&mut self, now: Instant) -> Result<(), Hold> {
        if let Err(wait) = self.budget.spend(tokio::time::Instant::from_std(now)) {
            let hold = Hold {
                until: Some(now + wait),
                message: format!(
                    "{MAX_LOGINS_PER_HOUR} logins in the last hour already (sessions lost, or the bridge restarting); next login in {}",
                    humantime::format_duration(Duration::from_secs(wait.as_secs()))
                ),
                credentials: false,
            };
            self.hold = Some(hold.clone());
            return Err(hold);
        }
        self.attempts += 1;
        Ok(())
    }

    /// The logout ended the last login's session.
    pub fn logged_out(&mut self) {
        self.budget.released();
    }

    pub fn login_ok(&mut self) {
        self.wrong_passwords = 0;
        self.hold = None;
    }

    /// -5002. `attempts_left` is the Deco's `attemptsAllowed`.
    pub fn wrong_password(&mut self, now: Instant, attempts_left: Option<i64>) -> Hold {
        self.wrong_passwords += 1;
        let left = attempts_left
            .map(|n| format!(", {n} attempts left before the Deco locks the account"))
            .unwrap_or_default();
        let stop =
            self.wrong_passwords > WRONG_PASSWORD_HOLDS.len() || attempts_left.is_some_and(|n| n <= MIN_ATTEMPTS_LEFT);
        let hold = if stop {
            Hold {
                until: None,
                message: format!(
                    "wrong owner password (Deco error -5002{left}); no more login attempts until the bridge restarts, so the account is never locked: fix the password and restart"
                ),
                credentials: true,
            }
        } else {
            let wait = WRONG_PASSWORD_HOLDS[self.wrong_passwords - 1];
            Hold {
                until: Some(now + wait),
                message: format!(
                    "wrong owner password (Deco error -5002{left}); next login attempt in {}",
                    humantime::format_duration(wait)
                ),
                credentials: true,
            }
        };
        self.hold = Some(hold.clone());
        hold
    }

    /// -5003: too many failed logins (ours or anyone's).
    pub fn locked(&mut self, now: Instant) -> Hold {
        let hold = Hold {
            until: Some(now + LOCKED_HOLD),
            message: format!(
                "the Deco has locked the owner account after too many failed logins (error -5003); next login attempt in {}; rebooting the Deco clears the lock",
                humantime::format_duration(LOCKED_HOLD)
            ),
            credentials: true,
        };
        self.hold = Some(hold.clone());
        hold
    }

    /// The Deco stopped accepting our session (HTTP 403, empty data): log in again once, unless
    /// the last loss was recent, which means the owner account is in use elsewhere.
    pub fn session_lost(&mut self, now: Instant) -> AfterLoss {
        let recent = self
            .last_loss
            .is_some_and(|t| now.saturating_duration_since(t) < CONTEST_WINDOW);
        self.last_loss = Some(now);
        if recent {
            AfterLoss::Wait(self.contested(now))
        } else {
            self.contested = 0;
            AfterLoss::LoginAgain
        }
    }

    /// The session was taken again right after we logged in, or the login itself was refused
    /// with HTTP 403: another owner login is active. Back off so its user can finish.
    pub fn contested(&mut self, now: Instant) -> Hold {
        let wait = CONTESTED_HOLDS[self.contested.min(CONTESTED_HOLDS.len() - 1)];
        self.contested += 1;
        self.last_loss = Some(now);
        let hold = Hold {
            until: Some(now + wait),
            message: format!(
                "Deco session taken by another owner login (Deco app or web UI); next login in {} (a manager account in the app avoids this)",
                humantime::format_duration(wait)
            ),
            credentials: false,
        };
        self.hold = Some(hold.clone());
        hold
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_refusal_is_remembered_across_a_restart_for_the_same_password_only() {
        let now = Instant::now();
        let mut gate = LoginGate::default();
        gate.attempt(now).unwrap();
        gate.wrong_password(now, Some(9));
        let memory = gate.memory(now);
        assert!(memory.hold.is_some(), "a credentials hold");
        let mut restarted = LoginGate::default();
        assert!(restarted.recall(&memory, true, now));
        assert!(restarted.check(now + Duration::from_secs(60)).is_err());
        // The count came back: the next refusal waits the second, longer hold.
        let second = restarted.wrong_password(now, Some(8));
        assert_eq!(second.until, Some(now + WRONG_PASSWORD_HOLDS[1]));
        let mut fixed = LoginGate::default();
        assert!(!fixed.recall(&memory, false, now));
        assert!(fixed.check(now).is_ok());
        // A contested session is not a credentials problem and is not remembered.
        let mut busy = LoginGate::default();
        busy.contested(now);
        assert!(busy.memory(now).hold.is_none());
        // The hourly budget comes back whatever the password.
        let mut spent = LoginGate::default();
        for _ in 0..MAX_LOGINS_PER_HOUR {
            spent.attempt(now).unwrap();
        }
        let mut restarted = LoginGate::default();
        restarted.recall(&spent.memory(now), false, now);
        assert!(restarted.attempt(now).is_err());
    }

    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn wrong_passwords_pause_long_and_stop_far_from_the_lockout() {
        let t0 = Instant::now();
        let mut gate = LoginGate::default();
        assert!(gate.check(t0).is_ok());
        let hold = gate.wrong_password(t0, Some(9));
        assert!(hold.credentials);
        assert!(hold.message.contains("-5002, 9 attempts left"), "{}", hold.message);
        assert!(hold.message.contains("30m"), "{}", hold.message);
        assert_eq!(gate.check(t0 + 29 * MIN), Err(hold.clone()), "same text every time");
        assert!(gate.check(t0 + 31 * MIN).is_ok());
        let hold = gate.wrong_password(t0 + 31 * MIN, Some(8));
        assert!(hold.message.contains("2h"), "{}", hold.message);
        assert!(gate.check(t0 + 152 * MIN).is_ok());
        let hold = gate.wrong_password(t0 + 152 * MIN, Some(7));
        assert_eq!(hold.until, None);
        assert!(gate.check(t0 + 100_000 * MIN).is_err(), "stopped for good");
    }

    #[test]
    fn few_attempts_left_stops_at_once_and_success_resets() {
        let t0 = Instant::now();
        let mut gate = LoginGate::default();
        assert_eq!(gate.wrong_password(t0, Some(5)).until, None);

        let mut gate = LoginGate::default();
        gate.wrong_password(t0, Some(9));
        gate.login_ok();
        assert!(gate.check(t0).is_ok());
        gate.wrong_password(t0, Some(9));
        gate.login_ok();
        gate.wrong_password(t0, Some(9));
        assert!(
            gate.check(t0 + 31 * MIN).is_ok(),
            "the count restarts after a successful login"
        );
    }

    #[test]
    fn lockout_waits() {
        let t0 = Instant::now();
        let mut gate = LoginGate::default();
        let hold = gate.locked(t0);
        assert!(hold.message.contains("-5003") && hold.message.contains("reboot"));
        assert!(gate.check(t0 + 10 * MIN).is_err());
        assert!(gate.check(t0 + 31 * MIN).is_ok());
    }

    #[test]
    fn an_isolated_loss_logs_in_again_repeated_losses_back_off() {
        let t0 = Instant::now();
        let mut gate = LoginGate::default();
        assert_eq!(gate.session_lost(t0), AfterLoss::LoginAgain);
        assert_eq!(gate.session_lost(t0 + 60 * MIN), AfterLoss::LoginAgain);
        let AfterLoss::Wait(hold) = gate.session_lost(t0 + 61 * MIN) else {
            panic!("a second loss within minutes is contested");
        };
        assert!(!hold.credentials);
        assert!(hold.message.contains("another owner login"), "{}", hold.message);
        assert!(hold.message.contains("5m"));
        assert!(gate.check(t0 + 65 * MIN).is_err());
        assert!(gate.check(t0 + 67 * MIN).is_ok());
        let hold = gate.contested(t0 + 67 * MIN);
        assert!(hold.message.contains("10m"), "{}", hold.message);
        let hold = gate.contested(t0 + 80 * MIN);
        assert!(hold.message.contains("20m"));
        let hold = gate.contested(t0 + 120 * MIN);
        assert!(hold.message.contains("20m"), "capped");
    }
}
