//! Data plans (design.md "Period totals and data plans"): `[plan.<device_id>]` with a quota
//! for the billing month (or the day), checked against the device's period totals. Both
//! directions count, as ISPs count them.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::periods::Periods;
use crate::config::{PlanPeriod, Settings, plan_device};
use crate::model::{DeviceId, Quota};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub quota: u64,
    pub period: PlanPeriod,
    /// `over` from this share of the quota on (1 = when it is used up).
    pub warn_at: f64,
    /// `used_so_far`: the ISP's meter reading when the plan was configured.
    pub used_so_far: Option<u64>,
}

/// A meter reading (`used_so_far`) as applied: in the period that began on `period`, the
/// plan's used figure is `extra` more than the device's own periods (the reading minus what
/// the periods held then, so bytes both know are counted once). Persisted: after a restart the
/// same reading is not applied again, and in the next period it adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    pub period: Date,
    pub reading: u64,
    pub extra: u64,
}

/// Applied meter readings by device.
pub type Meters = BTreeMap<DeviceId, Meter>;

/// The plan's period: its first day and the device's bytes in it.
fn current(plan: &Plan, periods: &Periods) -> (Option<Date>, u64) {
    let (start, totals) = match plan.period {
        PlanPeriod::Month => (periods.month, periods.this_month),
        PlanPeriod::Day => (periods.day, periods.today),
    };
    (start, totals.rx.saturating_add(totals.tx))
}

/// Applies the plan's `used_so_far` if this reading was never applied (once the device has
/// periods); returns the new entry, to persist.
pub fn read_meter(plan: &Plan, periods: &Periods, applied: Option<&Meter>) -> Option<Meter> {
    let reading = plan.used_so_far?;
    if applied.is_some_and(|m| m.reading == reading) {
        return None;
    }
    let (Some(period), used) = current(plan, periods) else {
        return None;
    };
    Some(Meter {
        period,
        reading,
        extra: reading.saturating_sub(used),
    })
}

/// Every configured plan by device (check-config has validated the keys).
pub fn from_settings(settings: &Settings) -> BTreeMap<DeviceId, Plan> {
    settings
        .plan
        .iter()
        .filter_map(|(key, p)| {
            let device = plan_device(key, settings).ok()?;
            let plan = Plan {
                quota: p.quota.0,
                period: p.period,
                warn_at: p.warn_at.map_or(1.0, |s| s.0),
                used_so_far: p.used_so_far.map(|b| b.0),
            };
            Some((device, plan))
        })
        .collect()
}

/// Where `periods` stand against `plan`, with the meter reading applied in its own period.
pub fn usage(plan: &Plan, periods: &Periods, meter: Option<&Meter>) -> Quota {
    let period = match plan.period {
        PlanPeriod::Month => "month",
        PlanPeriod::Day => "day",
    };
    let (start, own) = current(plan, periods);
    let extra = meter.filter(|m| start == Some(m.period)).map_or(0, |m| m.extra);
    let used = own.saturating_add(extra);
    // In whole bytes, so that 0.9 of 1000 is exactly 900 and not 899.999….
    let threshold = (plan.quota as f64 * plan.warn_at).ceil() as u64;
    Quota {
        quota: plan.quota,
        used,
        remaining: plan.quota.saturating_sub(used),
        over: used >= threshold.max(1),
        period,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::Totals;

    #[test]
    fn remaining_and_over_quota_with_known_answers() {
        let plan = Plan {
            quota: 1000,
            period: PlanPeriod::Month,
            warn_at: 0.9,
            used_so_far: None,
        };
        let mut p = Periods {
            this_month: Totals { rx: 800, tx: 99 },
            today: Totals { rx: 5, tx: 0 },
            ..Periods::default()
        };
        let q = usage(&plan, &p, None);
        assert_eq!((q.used, q.remaining, q.over, q.period), (899, 101, false, "month"));
        p.this_month.tx = 100;
        assert!(usage(&plan, &p, None).over, "900 of 1000 is the 90 % warning");
        p.this_month.rx = 5000;
        assert_eq!(usage(&plan, &p, None).remaining, 0, "never below zero");
        let daily = Plan {
            period: PlanPeriod::Day,
            warn_at: 1.0,
            ..plan
        };
        let q = usage(&daily, &p, None);
        assert_eq!((q.used, q.remaining, q.over, q.period), (5, 995, false, "day"));
    }

    #[test]
    fn plans_are_keyed_by_device_and_wan_is_the_router() {
        let settings: Settings = toml::from_str(
            r#"
            [asus.home]
            url = "http://192.168.50.1"
            password = "x"
            [plan.wan]
            quota = "1TB"
            [plan."AA:BB:CC:00:00:02"]
            quota = "10GB"
            period = "day"
            warn_at = "80%"
            "#,
        )
        .unwrap();
        let plans = from_settings(&settings);
        assert_eq!(plans[&DeviceId::new("home").unwrap()].quota, 1_000_000_000_000);
        let phone = &plans[&DeviceId::new("aabbcc000002").unwrap()];
        assert_eq!((phone.period, phone.warn_at), (PlanPeriod::Day, 0.8));
    }

    #[test]
    fn a_meter_reading_counts_once_in_its_own_billing_month() {
        let plan = Plan {
            quota: 1_000_000,
            period: PlanPeriod::Month,
            warn_at: 1.0,
            used_so_far: Some(412_000),
        };
        let november: Date = "2026-11-01".parse().unwrap();
        let mut p = Periods {
            month: Some(november),
            this_month: Totals { rx: 10_000, tx: 2_000 },
            ..Periods::default()
        };
        // Configured mid-month: the bridge has 12 kB of it, the ISP counted 412 kB.
        let meter = read_meter(&plan, &p, None).expect("applied once");
        assert_eq!(meter.extra, 400_000);
        assert_eq!(usage(&plan, &p, Some(&meter)).used, 412_000, "the ISP's figure");
        p.this_month.rx += 8_000;
        assert_eq!(usage(&plan, &p, Some(&meter)).used, 420_000, "then the bridge's growth");
        // A restart: the same reading is known, not applied again.
        assert_eq!(read_meter(&plan, &p, Some(&meter)), None);
        // December: the reading belongs to November only.
        p.month = Some("2026-12-01".parse().unwrap());
        p.this_month = Totals { rx: 5, tx: 0 };
        assert_eq!(read_meter(&plan, &p, Some(&meter)), None);
        assert_eq!(usage(&plan, &p, Some(&meter)).used, 5);
        // A new reading typed in later is a new meter reading.
        let newer = Plan {
            used_so_far: Some(9_000),
            ..plan
        };
        assert_eq!(read_meter(&newer, &p, Some(&meter)).map(|m| m.extra), Some(8_995));
    }
}
