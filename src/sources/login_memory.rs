//! A router's refusal of our credentials, remembered across restarts: restarting the bridge with
//! the same wrong password must not spend another of the few attempts before the router locks
//! the account (ASUS: 5, Deco: 10). A changed password is tried at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginMemory {
    /// A short SHA-256 tag of the password the refusal was for (never the password itself).
    pub password: String,
    /// Refusals in a row.
    pub refusals: u32,
    /// Unix seconds until which no login is tried; `None`: not until the password changes.
    pub hold_until: Option<i64>,
    pub reason: String,
}

impl LoginMemory {
    pub fn password_tag(password: &str) -> String {
        let digest = Sha256::digest(format!("bandwidth2mqtt login memory:{password}"));
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Whether this memory applies to the configured password.
    pub fn applies_to(&self, password: &str) -> bool {
        self.password == Self::password_tag(password)
    }

    /// How long from now the hold still lasts (`None` = indefinitely), or `Some(ZERO)` if over.
    pub fn remaining(&self) -> Option<Duration> {
        let until = self.hold_until?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Some(Duration::from_secs((until - now).max(0) as u64))
    }

    pub fn wall_clock(in_: Duration) -> i64 {
        (SystemTime::now() + in_)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_do_not_reveal_the_password_and_tell_changes_apart() {
        let tag = LoginMemory::password_tag("hunter2");
        assert_eq!(tag.len(), 16);
        assert!(!tag.contains("hunter2"));
        let m = LoginMemory {
            password: tag,
            refusals: 1,
            hold_until: Some(LoginMemory::wall_clock(Duration::from_secs(60))),
            reason: "x".into(),
        };
        assert!(m.applies_to("hunter2") && !m.applies_to("hunter3"));
        assert!(m.remaining().is_some_and(|d| d > Duration::from_secs(50)));
    }
}
