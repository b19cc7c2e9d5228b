//! State payloads: one JSON object per device on `<base>/<device_id>` with every key present in
//! every message (HA renders a missing key as empty), plus the bridge's `info` and `devices`.

use serde_json::{Map, Value, json};

use crate::accounting::{Device, Rates, Totals};
use crate::model::DeviceKind;

/// What a state document depends on besides the device itself.
#[derive(Debug, Clone, Copy)]
pub struct StateClock {
    pub now_ms: i64,
    /// How long a client that went away still counts as home.
    pub consider_home_ms: i64,
    /// How long every source that reports this device has been failing (`None`: one answers).
    pub sources_down_ms: Option<i64>,
}

/// How many members of the private-address group its state lists (by total bytes): the
/// message stays a few kB however many private MACs the household has seen.
pub const MEMBERS_LISTED: usize = 20;

/// The state document of one device.
pub fn device_state(device: &Device, clock: StateClock) -> Value {
    let mut state = Map::new();
    state.insert("online".into(), json!(device.online().unwrap_or(false)));
    if device.kind == DeviceKind::Client {
        state.insert(
            "presence".into(),
            json!(device.presence(clock.now_ms, clock.consider_home_ms)),
        );
        // A short outage of the router keeps the tracker where it was (no `not_home` flap, no
        // `unavailable`); one longer than consider_home makes it unavailable.
        let available = clock.sources_down_ms.is_none_or(|down| down < clock.consider_home_ms);
        state.insert("presence_available".into(), json!(available));
    }
    for (key, label) in &device.labels {
        state.insert(key.clone(), json!(label.value));
    }
    if device.has_traffic {
        insert_traffic(&mut state, device.totals, device.rates);
        state.insert("estimated".into(), json!(device.estimated));
        state.insert("source".into(), json!(device.headline_source));
        if let (Some(today), Some(month)) = (device.today, device.this_month) {
            state.insert("rx_today".into(), json!(today.rx));
            state.insert("tx_today".into(), json!(today.tx));
            state.insert("rx_month".into(), json!(month.rx));
            state.insert("tx_month".into(), json!(month.tx));
            let (yesterday, last_month) = (
                device.yesterday.unwrap_or_default(),
                device.last_month.unwrap_or_default(),
            );
            state.insert("rx_yesterday".into(), json!(yesterday.rx));
            state.insert("tx_yesterday".into(), json!(yesterday.tx));
            state.insert("rx_last_month".into(), json!(last_month.rx));
            state.insert("tx_last_month".into(), json!(last_month.tx));
            state.insert(
                "complete_since".into(),
                device
                    .complete_since
                    .clone()
                    .unwrap_or_else(|| json!({"today": null, "month": null, "yesterday": null, "last_month": null})),
            );
        }
        if let Some(q) = device.quota {
            state.insert("quota_remaining".into(), json!(q.remaining));
            state.insert("quota_used".into(), json!(q.used));
            state.insert("quota".into(), json!(q.quota));
            state.insert("quota_period".into(), json!(q.period));
            state.insert("over_quota".into(), json!(q.over));
        }
        let views = secondary_views(device)
            .map(|(source, view)| {
                let mut inner = Map::new();
                insert_traffic(&mut inner, view.totals, view.rates);
                inner.insert("estimated".into(), json!(view.estimated));
                (source.clone(), Value::Object(inner))
            })
            .collect::<Map<String, Value>>();
        if !views.is_empty() {
            state.insert("views".into(), Value::Object(views));
        }
        // Under their own key: an interface named `rx_bytes`, `online` or `estimated` must not
        // replace the device's own value.
        if !device.interfaces.is_empty() {
            let mut listed: Vec<(&String, &crate::accounting::Interface)> = device.interfaces.iter().collect();
            // A client's parts are the private-address group's members: however many MACs
            // came and went, its message lists the busiest few and counts them all.
            if device.kind == DeviceKind::Client {
                state.insert("members".into(), json!(listed.len()));
                listed.sort_by_key(|(name, i)| (std::cmp::Reverse(i.totals.rx.saturating_add(i.totals.tx)), *name));
                listed.truncate(MEMBERS_LISTED);
            }
            let mut interfaces = Map::new();
            for (name, iface) in listed {
                let mut inner = Map::new();
                insert_traffic(&mut inner, iface.totals, iface.rates);
                interfaces.insert(name.clone(), Value::Object(inner));
            }
            state.insert("interfaces".into(), Value::Object(interfaces));
        }
    }
    for (key, metric) in &device.metrics {
        state.insert(key.clone(), json!(metric.value.map(|v| round_for(metric.unit, v))));
    }
    Value::Object(state)
}

/// Other sources' views of a device that does have a headline: every source that counted
/// it but does not feed its headline totals (the Deco's estimate of a vnstat server), and the
/// raw estimate behind a reconciled headline.
pub fn secondary_views(device: &Device) -> impl Iterator<Item = (&String, &crate::accounting::View)> {
    device
        .views
        .iter()
        .filter(|(source, _)| device.reconciled || !device.total_sources.contains(*source))
}

/// Enough precision for the unit, and no float noise (`12.300000000000001`) in payloads.
fn round_for(unit: crate::model::MetricUnit, value: f64) -> Value {
    use crate::model::MetricUnit::*;
    match unit {
        Percent | Celsius | MbitPerSecond => json!((value * 10.0).round() / 10.0),
        Seconds | Count | Dbm => json!(value.round() as i64),
    }
}

/// Attributes that change on every poll: kept on the device's sensors, off its tracker, whose
/// every attribute change is a recorder row.
const VOLATILE: [&str; 3] = ["connected_for", "link_tx_mbps", "link_rx_mbps"];

/// What HA's router trackers show: ip, mac and host name, plus the stable facts the sources know.
pub fn tracker_attributes(device: &Device) -> Value {
    let mut attrs: Map<String, Value> = device
        .attributes
        .iter()
        .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    attrs.insert("ip".into(), json!(device.info.ip));
    attrs.insert("mac".into(), json!(device.primary_mac().map(|m| m.to_string())));
    attrs.insert("host_name".into(), json!(device.name()));
    Value::Object(attrs)
}

fn insert_traffic(map: &mut Map<String, Value>, totals: Totals, rates: Rates) {
    map.insert("rx_bytes".into(), json!(totals.rx));
    map.insert("tx_bytes".into(), json!(totals.tx));
    // Rates as whole bit/s, `null` while unknown (HA shows "unknown" rather than a made-up 0).
    map.insert("rx_bps".into(), json!(rates.rx_bps.map(|v| v.round() as u64)));
    map.insert("tx_bps".into(), json!(rates.tx_bps.map(|v| v.round() as u64)));
}

/// One entry of `bridge/devices`.
pub fn device_summary(device: &Device) -> Value {
    json!({
        "id": device.id,
        "name": device.name(),
        "kind": device.kind.as_str(),
        "mac": device.primary_mac().map(|m| m.to_string()),
        "ip": device.info.ip,
        "sources": device.sources,
    })
}

/// Status of one source for `bridge/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceStatus {
    pub kind: &'static str,
    /// `ok`, `error`, or `pending` before the first poll finished.
    pub status: &'static str,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub devices: usize,
    /// Source-specific facts (e.g. whether the Traffic Analyzer is on).
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

pub fn bridge_info(version: &str, sources: &std::collections::BTreeMap<String, SourceStatus>) -> Value {
    json!({
        "version": version,
        "sources": sources,
    })
}
