//! Data plans (design.md "Period totals and data plans"): `[plan.<device_id>]` with a quota
//! for the billing month (or the day), checked against the device's period totals. Both
//! directions count, as ISPs count them.

use std::collections::BTreeMap;

use super::periods::Periods;
use crate::config::{PlanPeriod, Settings, plan_device};
use crate::model::{DeviceId, Quota};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub quota: u64,
    pub period: PlanPeriod,
    /// `over` from this share of the quota on (1 = when it is used up).
    pub warn_at: f64,
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
            };
            Some((device, plan))
        })
        .collect()
}

/// Where `periods` stand against `plan`.
pub fn usage(plan: &Plan, periods: &Periods) -> Quota {
    let (totals, period) = match plan.period {
        PlanPeriod::Month => (periods.this_month, "month"),
        PlanPeriod::Day => (periods.today, "day"),
    };
    let used = totals.rx.saturating_add(totals.tx);
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
        };
        let mut p = Periods {
            this_month: Totals { rx: 800, tx: 99 },
            today: Totals { rx: 5, tx: 0 },
            ..Periods::default()
        };
        let q = usage(&plan, &p);
        assert_eq!((q.used, q.remaining, q.over, q.period), (899, 101, false, "month"));
        p.this_month.tx = 100;
        assert!(usage(&plan, &p).over, "900 of 1000 is the 90 % warning");
        p.this_month.rx = 5000;
        assert_eq!(usage(&plan, &p).remaining, 0, "never below zero");
        let daily = Plan {
            period: PlanPeriod::Day,
            warn_at: 1.0,
            ..plan
        };
        let q = usage(&daily, &p);
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
}
