//! Which life of a counter a reading belongs to: a counter that restarted from zero (reboot,
//! re-created interface, new database) starts a new epoch, and everything it shows is new.

use serde::{Deserialize, Serialize};

/// Which life of a counter a reading belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Epoch {
    /// An exact identity (`boot_id/ifindex`, a database's creation date).
    Id(String),
    /// When the device booted, in Unix seconds by the bridge's wall clock ("now − uptime").
    /// Only read from state files written before [`Epoch::Uptime`]; a step of the bridge's
    /// clock (NTP on a Pi without RTC, a VM resume) moves it like a reboot would.
    BootedAt(i64),
    /// A device's boot, told by its uptime against clocks a wall-clock step cannot fool.
    Uptime(Boot),
}

/// One reading of a device's uptime, with its boot placed on every clock we have.
///
/// Two readings are the same boot unless the uptime went backwards or the boot moved on the
/// bridge's monotonic clock (within one run). Across a restart of the bridge there is no
/// monotonic link, so the boot must have moved on both the device's own clock and the
/// bridge's wall clock: either clock alone can step (NTP after a router boot, a Pi without
/// RTC) and a false reboot would count the whole since-boot counter again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    /// Seconds since boot as the device reports them: the device's own monotonic clock.
    pub uptime_s: u64,
    /// Boot time on the device's own clock (its clock − uptime), if it reports its clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_boot_s: Option<i64>,
    /// Boot time on the bridge's wall clock (now − uptime).
    pub wall_boot_s: i64,
    /// Boot time on the bridge process's monotonic clock, in ms; meaningless in another
    /// process, so never persisted.
    #[serde(skip)]
    pub mono_boot_ms: Option<i64>,
}

impl Boot {
    /// Places a boot on every clock. `at_ms`: bridge wall clock; `mono_ms`: bridge monotonic
    /// clock (this process); `device_now_s`: the device's clock, when it reports one.
    pub fn from_uptime(uptime_s: u64, at_ms: i64, mono_ms: i64, device_now_s: Option<i64>) -> Self {
        let up = i64::try_from(uptime_s).unwrap_or(i64::MAX);
        Self {
            uptime_s,
            device_boot_s: device_now_s.map(|now| now.saturating_sub(up)),
            wall_boot_s: (at_ms / 1000).saturating_sub(up),
            mono_boot_ms: Some(mono_ms.saturating_sub(up.saturating_mul(1000))),
        }
    }

    /// Whether `self` (the newer reading) is the same boot as `old`.
    pub fn same_boot_as(&self, old: &Boot) -> bool {
        let tolerance = Epoch::BOOT_TOLERANCE_S.unsigned_abs();
        if self.uptime_s.saturating_add(tolerance) < old.uptime_s {
            return false;
        }
        if let (Some(a), Some(b)) = (self.mono_boot_ms, old.mono_boot_ms) {
            return a.abs_diff(b) <= tolerance * 1000;
        }
        let device_agrees = matches!(
            (self.device_boot_s, old.device_boot_s),
            (Some(a), Some(b)) if a.abs_diff(b) <= tolerance
        );
        device_agrees || self.wall_boot_s.abs_diff(old.wall_boot_s) <= tolerance
    }
}

impl Epoch {
    /// Boot time estimates jitter by the request latency: within this, two are the same boot.
    pub const BOOT_TOLERANCE_S: i64 = 120;

    /// Whether `self` (the newer reading) belongs to the same counter life as `old`.
    pub fn same_as(&self, old: &Epoch) -> bool {
        let tolerance = Self::BOOT_TOLERANCE_S.unsigned_abs();
        match (self, old) {
            (Self::Id(a), Self::Id(b)) => a == b,
            (Self::BootedAt(a), Self::BootedAt(b)) => a.abs_diff(*b) <= tolerance,
            (Self::Uptime(new), Self::Uptime(old)) => new.same_boot_as(old),
            // A state file from before `Uptime`: its wall-clock boot is all there is.
            (Self::Uptime(new), Self::BootedAt(b)) | (Self::BootedAt(b), Self::Uptime(new)) => {
                new.wall_boot_s.abs_diff(*b) <= tolerance
            }
            _ => false,
        }
    }
}

impl From<String> for Epoch {
    fn from(id: String) -> Self {
        Self::Id(id)
    }
}

impl From<&str> for Epoch {
    fn from(id: &str) -> Self {
        Self::Id(id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALL: i64 = 1_795_559_160_000;
    const ROUTER: i64 = 1_795_559_000;

    /// A reading `t` seconds after the first, with the bridge's wall clock off by `wall_step` s.
    fn reading(uptime_s: u64, t: i64, wall_step: i64, router_step: i64, mono: bool) -> Epoch {
        let mut boot = Boot::from_uptime(
            uptime_s,
            WALL + (t + wall_step) * 1000,
            t * 1000,
            Some(ROUTER + t + router_step),
        );
        if !mono {
            boot.mono_boot_ms = None;
        }
        Epoch::Uptime(boot)
    }

    // Issue 8 item 3: ±200–300 s steps of the bridge's wall clock looked like router reboots.
    #[test]
    fn a_wall_clock_step_is_not_a_reboot() {
        let first = reading(10_000, 0, 0, 0, true);
        for step in [-300, -200, 200, 300, 86_400] {
            assert!(
                reading(10_030, 30, step, 0, true).same_as(&first),
                "within a run, step {step}"
            );
            assert!(
                reading(10_030, 30, step, 0, false).same_as(&first),
                "after a restart, step {step}"
            );
        }
        // The router's own clock steps (NTP after its boot) while ours is right: same boot.
        assert!(reading(10_030, 30, 0, 3600, false).same_as(&first));
    }

    #[test]
    fn real_reboots_are_seen() {
        let first = reading(10_000, 0, 0, 0, true);
        // Uptime went back: rebooted, whatever any clock says.
        assert!(!reading(20, 30, 0, 0, true).same_as(&first));
        assert!(!reading(20, 30, 0, 0, false).same_as(&first));
        // Rebooted and up longer than before by the next reading (an outage in between).
        let short = reading(600, 0, 0, 0, true);
        assert!(!reading(1200, 3600, 0, 0, true).same_as(&short), "monotonic clock");
        assert!(!reading(1200, 3600, 0, 0, false).same_as(&short), "both clocks agree");
        assert!(reading(10_030, 30, 0, 0, false).same_as(&first), "no reboot, no step");
    }

    #[test]
    fn the_monotonic_boot_is_not_persisted_and_old_files_still_compare() {
        let text = serde_json::to_string(&reading(10_000, 0, 0, 0, true)).unwrap();
        assert!(!text.contains("mono"));
        let back: Epoch = serde_json::from_str(&text).unwrap();
        assert_eq!(back, reading(10_000, 0, 0, 0, false));
        let legacy: Epoch = serde_json::from_str("1795549160").unwrap();
        assert_eq!(legacy, Epoch::BootedAt(1_795_549_160));
        assert!(reading(10_030, 30, 0, 0, false).same_as(&legacy));
        assert_eq!(
            serde_json::from_str::<Epoch>("\"boot/2\"").unwrap(),
            Epoch::Id("boot/2".into())
        );
    }

    #[test]
    fn absurd_uptimes_do_not_overflow() {
        let a = Boot::from_uptime(u64::MAX, i64::MIN, i64::MIN, Some(i64::MIN));
        let b = Boot::from_uptime(0, i64::MAX, i64::MAX, Some(i64::MAX));
        assert!(!Epoch::Uptime(b.clone()).same_as(&Epoch::Uptime(a.clone())));
        assert!(Epoch::Uptime(a.clone()).same_as(&Epoch::Uptime(a)));
    }
}
