//! Login etiquette: the router locks the account after 5 failed logins for 300 s, and older
//! firmware evicts other sessions (the owner's phone app, a browser) when too many logins pile
//! up (shared/notes/asus-notes.md §2). So the bridge logs in once, reuses the token, and this
//! guard decides whether another login may be attempted now:
//!
//! - never more than [`MAX_LOGINS_PER_HOUR`] attempts in any hour, whatever the router does;
//! - after a wrong password, nothing for 30 min, doubling up to 6 h (one failure per hold-off,
//!   so the router's 5-failure lock can never be reached);
//! - while the router says it is locked, nothing until the lock has expired;
//! - after a captcha demand, nothing for 6 h: a human must act;
//! - a session lost once is renewed at once; lost again soon after, the next login waits.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::sources::login_memory::{LoginBudget, LoginMemory, RememberedHold};

pub const MAX_LOGINS_PER_HOUR: usize = 6;
#[cfg(test)]
const HOUR: Duration = crate::sources::login_memory::HOUR;
const WRONG_PASSWORD_HOLD: Duration = Duration::from_secs(30 * 60);
const LONGEST_HOLD: Duration = Duration::from_secs(6 * 3600);
/// A session shorter than this counts as "lost soon after login".
const SHORT_SESSION: Duration = Duration::from_secs(10 * 60);
/// Waits before re-logins after the 1st, 2nd, 3rd, … quick loss in a row.
const RELOGIN_STEPS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(300),
];

/// Why a login is not attempted now, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub until: Instant,
    /// The same moment on the wall clock, for messages that stay identical poll after poll.
    pub until_wall: SystemTime,
    pub reason: String,
}

impl Deferred {
    fn new(now: Instant, wait: Duration, reason: impl Into<String>) -> Self {
        Self {
            until: now + wait,
            until_wall: SystemTime::now() + wait,
            reason: reason.into(),
        }
    }

    pub fn wait(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }
}

#[derive(Debug)]
pub struct LoginGuard {
    budget: LoginBudget,
    hold: Option<Deferred>,
    /// The hold is about our credentials (wrong password, lock, captcha): worth remembering
    /// across a restart.
    credentials_hold: bool,
    wrong_passwords: u32,
    last_login: Option<Instant>,
    quick_losses: usize,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self {
            budget: LoginBudget::new(MAX_LOGINS_PER_HOUR),
            hold: None,
            credentials_hold: false,
            wrong_passwords: 0,
            last_login: None,
            quick_losses: 0,
        }
    }
}

impl LoginGuard {
    /// May a login be attempted now? Records the attempt when it may.
    pub fn permit(&mut self, now: Instant) -> Result<(), Deferred> {
        if let Some(hold) = &self.hold {
            if now < hold.until {
                return Err(hold.clone());
            }
            self.hold = None;
        }
        if let Err(wait) = self.budget.spend(now) {
            let hold = Deferred::new(
                now,
                wait,
                format!(
                    "{MAX_LOGINS_PER_HOUR} logins in the last hour already; the router keeps dropping the session, or the bridge keeps restarting"
                ),
            );
            self.hold = Some(hold.clone());
            return Err(hold);
        }
        Ok(())
    }

    pub fn succeeded(&mut self, now: Instant) {
        self.wrong_passwords = 0;
        self.credentials_hold = false;
        self.last_login = Some(now);
    }

    /// The logout ended the last login's session.
    pub fn logged_out(&mut self) {
        self.budget.released();
    }

    /// What a restart must not forget: the credentials hold in force and the logins spent.
    pub fn memory(&self, now: Instant) -> LoginMemory {
        let hold = self
            .hold
            .as_ref()
            .filter(|h| self.credentials_hold && h.until > now)
            .map(|h| RememberedHold::lasting(Some(h.until - now), &h.reason));
        LoginMemory {
            refusals: self.wrong_passwords,
            hold,
            attempts: self.budget.to_wall(now),
            ..LoginMemory::default()
        }
    }

    /// What the previous run remembered; its refusals only if they were about this same
    /// password. Returns whether a credentials hold is back in force.
    pub fn recall(&mut self, memory: &LoginMemory, same_password: bool, now: Instant) -> bool {
        self.budget.restore(&memory.attempts, now);
        if !same_password {
            return false;
        }
        self.wrong_passwords = memory.refusals;
        let remaining = memory.hold.as_ref().and_then(|h| Some((h.remaining()?, h)));
        match remaining.filter(|(r, _)| !r.is_zero()) {
            Some((remaining, hold)) => {
                self.hold = Some(Deferred::new(now, remaining, hold.reason.clone()));
                self.credentials_hold = true;
                true
            }
            None => false,
        }
    }

    /// The session was gone: the first time log in again at once, repeated quick losses wait.
    /// `router_stayed_up`: false when the router was unreachable or rebooted since our login;
    /// such a loss is not the router ending a session we just made, so it never waits.
    pub fn session_lost(&mut self, now: Instant, router_stayed_up: bool) {
        if !router_stayed_up {
            self.quick_losses = 0;
            return;
        }
        let quick = self.last_login.is_some_and(|t| now.duration_since(t) < SHORT_SESSION);
        self.quick_losses = if quick { self.quick_losses + 1 } else { 0 };
        let step = self.quick_losses.saturating_sub(1).min(RELOGIN_STEPS.len() - 1);
        let wait = RELOGIN_STEPS[step];
        if !wait.is_zero() {
            self.hold = Some(Deferred::new(
                now,
                wait,
                "the router keeps ending our session soon after login",
            ));
        }
    }

    /// A reboot explains the losses before it: forget them, and any hold they caused.
    pub fn router_restarted(&mut self) {
        self.quick_losses = 0;
        if !self.credentials_hold {
            self.hold = None;
        }
    }

    /// Returns how long nothing will be tried.
    pub fn wrong_password(&mut self, now: Instant) -> Duration {
        self.wrong_passwords += 1;
        let factor = 2u32.saturating_pow(self.wrong_passwords.saturating_sub(1).min(8));
        let hold = WRONG_PASSWORD_HOLD.saturating_mul(factor).min(LONGEST_HOLD);
        self.hold = Some(Deferred::new(now, hold, "the router rejected the username or password"));
        self.credentials_hold = true;
        hold
    }

    pub fn locked(&mut self, now: Instant, remaining: Duration) {
        let wait = remaining + Duration::from_secs(30);
        self.hold = Some(Deferred::new(
            now,
            wait,
            "the router has locked logins after too many failures",
        ));
        self.credentials_hold = true;
    }

    pub fn captcha(&mut self, now: Instant) {
        let reason = "the router demands a captcha; log in once in a browser, or turn the captcha off";
        self.hold = Some(Deferred::new(now, LONGEST_HOLD, reason));
        self.credentials_hold = true;
    }

    /// Something else refused the login (e.g. the router is busy): retry after a minute.
    pub fn refused(&mut self, now: Instant, reason: String) {
        self.hold = Some(Deferred::new(now, Duration::from_secs(60), reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_six_logins_an_hour() {
        let start = Instant::now();
        let mut g = LoginGuard::default();
        for i in 0..MAX_LOGINS_PER_HOUR {
            assert!(g.permit(start + Duration::from_secs(i as u64 * 60)).is_ok());
        }
        let denied = g.permit(start + Duration::from_secs(600)).unwrap_err();
        assert_eq!(denied.until, start + HOUR);
        assert!(g.permit(start + HOUR + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn wrong_passwords_never_reach_the_routers_lockout() {
        let start = Instant::now();
        let mut g = LoginGuard::default();
        let mut failures = Vec::new();
        // A poll every second for a day.
        let mut t = start;
        while t < start + Duration::from_secs(86_400) {
            if g.permit(t).is_ok() {
                failures.push(t);
                g.wrong_password(t);
            }
            t += Duration::from_secs(1);
        }
        let most_in_a_lock_window = (0..failures.len())
            .map(|i| {
                failures[i..]
                    .iter()
                    .take_while(|x| x.duration_since(failures[i]) < Duration::from_secs(300))
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert_eq!(most_in_a_lock_window, 1);
        assert!(failures.len() <= 8, "{} failed logins in a day", failures.len());
        assert_eq!(failures[1].duration_since(failures[0]), WRONG_PASSWORD_HOLD);
        assert_eq!(failures[2].duration_since(failures[1]), WRONG_PASSWORD_HOLD * 2);
    }

    #[test]
    fn quick_session_losses_back_off() {
        let start = Instant::now();
        let mut g = LoginGuard::default();
        assert!(g.permit(start).is_ok());
        g.succeeded(start);
        // The first loss: log in again at once.
        g.session_lost(start + Duration::from_secs(60), true);
        assert!(g.permit(start + Duration::from_secs(60)).is_ok());
        g.succeeded(start + Duration::from_secs(60));
        // Lost again within minutes: wait 30 s.
        g.session_lost(start + Duration::from_secs(120), true);
        let denied = g.permit(start + Duration::from_secs(121)).unwrap_err();
        assert_eq!(denied.until, start + Duration::from_secs(150));
        assert!(g.permit(start + Duration::from_secs(151)).is_ok());
        // A session that lasted an hour is lost normally: re-login at once.
        g.succeeded(start + Duration::from_secs(151));
        g.session_lost(start + Duration::from_secs(3800), true);
        assert!(g.permit(start + Duration::from_secs(3800)).is_ok());
    }

    #[test]
    fn losses_to_a_reboot_or_an_outage_never_wait() {
        let start = Instant::now();
        let mut g = LoginGuard::default();
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(g.permit(at(0)).is_ok());
        g.succeeded(at(0));
        // Sessions expire (router up): first loss, log in at once.
        g.session_lost(at(20), true);
        assert!(g.permit(at(20)).is_ok());
        g.succeeded(at(20));
        // Then the router reboots and is unreachable: the next loss is no reason to wait.
        g.session_lost(at(40), false);
        assert!(g.permit(at(40)).is_ok());
        g.succeeded(at(40));
        // And the count starts over: one more quick loss with the router up still goes at once.
        g.session_lost(at(60), true);
        assert!(g.permit(at(60)).is_ok());
        g.succeeded(at(60));
        // A second one in a row waits; a reboot seen afterwards lifts that wait.
        g.session_lost(at(80), true);
        assert!(g.permit(at(81)).is_err());
        g.router_restarted();
        assert!(g.permit(at(82)).is_ok());
    }

    #[test]
    fn lock_and_captcha_hold_off() {
        let start = Instant::now();
        let mut g = LoginGuard::default();
        g.locked(start, Duration::from_secs(300));
        assert!(g.permit(start + Duration::from_secs(329)).is_err());
        assert!(g.permit(start + Duration::from_secs(331)).is_ok());
        g.captcha(start);
        assert!(g.permit(start + Duration::from_secs(5 * 3600)).is_err());
    }

    #[test]
    fn a_wrong_password_hold_survives_a_restart_unless_the_password_changed() {
        let start = Instant::now();
        let mut g = LoginGuard::default();
        assert!(g.permit(start).is_ok());
        g.wrong_password(start);
        let memory = g.memory(start);
        assert_eq!(memory.refusals, 1);
        assert_eq!(memory.attempts.len(), 1);
        let mut after_restart = LoginGuard::default();
        assert!(after_restart.recall(&memory, true, start));
        assert!(
            after_restart.permit(start + Duration::from_secs(60)).is_err(),
            "same password: still waiting"
        );
        // The next refusal doubles the hold: the count came back too.
        assert_eq!(after_restart.wrong_password(start), WRONG_PASSWORD_HOLD * 2);
        let mut fixed = LoginGuard::default();
        assert!(!fixed.recall(&memory, false, start));
        assert!(fixed.permit(start).is_ok(), "a new password is tried at once");

        // The hourly budget comes back whatever the password: a crash loop cannot reset it.
        let mut spent = LoginGuard::default();
        for _ in 0..MAX_LOGINS_PER_HOUR {
            spent.permit(start).unwrap();
        }
        let mut restarted = LoginGuard::default();
        restarted.recall(&spent.memory(start), false, start);
        assert!(restarted.permit(start).is_err());
    }

    #[test]
    fn a_hold_reads_the_same_every_time() {
        let start = Instant::now();
        let mut g = LoginGuard::default();
        g.wrong_password(start);
        let a = g.permit(start + Duration::from_secs(1)).unwrap_err();
        let b = g.permit(start + Duration::from_secs(2)).unwrap_err();
        assert_eq!(a, b);
    }
}
