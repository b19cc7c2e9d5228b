//! Moves the household along: runs the simulated clock (`--speed`), and carries each byte the
//! Deco's clients move to the places that count it upstream: the server's own vnstat, and the
//! ASUS (WAN counters and Traffic Analyzer rows of the Deco's WAN MAC, by app).

use std::collections::BTreeMap;
use std::time::Duration;

use super::household::{ASUS_OWN, DECO_WAN, Household, Truth};
use crate::model::MacAddr;

pub struct Driver {
    /// The household's clock (the bridge's) at the last step.
    last_ms: i64,
    last_truth: Truth,
    /// Simulated seconds not yet turned into the ASUS's own clients' traffic.
    own_carry_s: f64,
    apps: BTreeMap<MacAddr, &'static str>,
}

/// How often the driver moves the household (real time).
pub const TICK: Duration = Duration::from_millis(250);

impl Driver {
    pub fn new(household: &Household) -> Self {
        Self {
            // The first tick (before the bridge starts) books one simulated second, so the
            // router's live counters list its clients at the very first poll: an empty
            // `getTraffic.asp` reads as "not available" for three router hours.
            last_ms: household.deco.clock().now_ms().saturating_sub(1000),
            last_truth: household.deco.ground_truth(),
            own_carry_s: 0.0,
            apps: household.apps.clone(),
        }
    }

    /// One step; returns the simulated seconds it covered.
    pub fn tick(&mut self, household: &mut Household) -> f64 {
        // The clock is the bridge's (scaled at `--speed`): the step is what it moved since.
        let now_ms = household.deco.clock().now_ms();
        let simulated = Duration::from_millis(now_ms.saturating_sub(self.last_ms).max(0).unsigned_abs());
        self.last_ms = now_ms;
        let now_s = now_ms.div_euclid(1000);

        let truth = household.deco.ground_truth();
        let mut by_app: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for (mac, &(rx, tx)) in &truth {
            let (prx, ptx) = self.last_truth.get(mac).copied().unwrap_or((rx, tx));
            let (drx, dtx) = (rx.saturating_sub(prx), tx.saturating_sub(ptx));
            if drx == 0 && dtx == 0 {
                continue;
            }
            for (server_mac, server) in &mut household.vnstat {
                if server_mac == mac
                    && let Some(iface) = server.interfaces.first().map(|i| i.name.clone())
                {
                    server.add(&iface, drx, dtx);
                }
            }
            let app = self.apps.get(mac).copied().unwrap_or("General HTTPS");
            let entry = by_app.entry(app).or_default();
            entry.0 += drx;
            entry.1 += dtx;
        }
        self.last_truth = truth;

        self.own_carry_s += simulated.as_secs_f64();
        let whole = self.own_carry_s.floor();
        self.own_carry_s -= whole;
        household.asus.with(|router| {
            for (app, (rx, tx)) in by_app {
                router.add_client_traffic(DECO_WAN, app, rx, tx);
            }
            if whole > 0.0 {
                for (_, mac, rx_min, tx_min) in ASUS_OWN {
                    let (rx, tx) = (
                        (rx_min as f64 * whole / 60.0) as u64,
                        (tx_min as f64 * whole / 60.0) as u64,
                    );
                    router.add_client_traffic(mac, "General HTTPS", rx, tx);
                }
            }
        });

        for (_, server) in &mut household.vnstat {
            if let Err(e) = server.tick(now_s) {
                tracing::warn!(path = %server.path().display(), error = %e, "Demo cannot write a vnstat document.");
            }
        }
        simulated.as_secs_f64()
    }
}
