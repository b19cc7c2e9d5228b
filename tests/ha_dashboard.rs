//! `ha-discovery/dashboard.yaml` and `automations.yaml` find the bridge's entities by the ids its
//! discovery suggests and convert from the units HA may show. Pin them to the discovery goldens,
//! so a renamed key or unit breaks this test rather than a user's dashboard.

use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn golden(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(&format!("ha-discovery/{rel}"))).expect("golden json")
}

#[test]
fn dashboard_and_automations_use_the_ids_and_units_of_the_discovery() {
    let dashboard = read("ha-discovery/dashboard.yaml");
    let automations = read("ha-discovery/automations.yaml");
    for (file, key) in [("sensor.rx_bps.json", "rx_bps"), ("sensor.tx_bps.json", "tx_bps")] {
        let payload = &golden(&format!("router/{file}"))["payload"];
        let id = payload["default_entity_id"].as_str().unwrap();
        assert_eq!(id, format!("sensor.rt_ax86u_pro_{key}"), "entity id scheme");
        assert!(dashboard.contains(&format!("entity: {id}")), "history graph names {id}");
        // The unit HA shows, and the raw one a user may switch back to.
        let unit = payload["unit_of_measurement"].as_str().unwrap();
        for u in [unit, "bit/s"] {
            assert!(dashboard.contains(&format!("'{u}':")), "rate unit {u} converted");
        }
    }
    assert!(dashboard.contains("select('search', '_rx_bps$')"));
    let bytes = &golden("router/sensor.rx_bytes.json")["payload"];
    assert!(bytes["default_entity_id"].as_str().unwrap().ends_with("_rx_bytes"));
    // A client's today reads in MiB (publish/units.rs); raw bytes if a user switches back.
    use bandwidth2mqtt::publish::units::{Span, display};
    let client_today = display(Span::Today, bandwidth2mqtt::model::DeviceKind::Client).unit;
    for u in [bytes["unit_of_measurement"].as_str().unwrap(), client_today, "B"] {
        assert!(
            dashboard.contains(&format!("'{u}':")),
            "byte unit {u} converted in the dashboard"
        );
        assert!(
            automations.contains(&format!("'{u}':")),
            "byte unit {u} converted in the quota alert"
        );
    }
    // Period sensors follow the same `<device>_<key>` scheme (design.md: rx_today, rx_month).
    for period in ["_today", "_month"] {
        assert!(dashboard.contains(&format!("set period = '{period}'")), "{period} card");
    }
    assert!(
        automations.contains("sensor.rt_ax86u_pro_rx_month") && automations.contains("sensor.rt_ax86u_pro_tx_month")
    );
    // The new-device alert listens where design.md puts bridge events.
    assert!(automations.contains("topic: bandwidth2mqtt/bridge/event"));
    assert!(automations.contains("'device_joined'"));
}
