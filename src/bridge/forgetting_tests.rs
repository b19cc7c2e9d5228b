//! Forgetting through the core, on explicit times: what HA is told, and the event.

use super::super::{Core, PollReport};
use crate::model::{DeviceId, DeviceKind, MacAddr, Observation};
use crate::sources::SourceKind;

const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_795_000_000_000;

fn core(dir: &std::path::Path, extra: &str) -> Core {
    super::super::test_core::core(dir, extra, false, crate::clock::ManualClock::new(T0).clock())
}

fn client(mac: &str, name: &str) -> Observation {
    let mac: MacAddr = mac.parse().unwrap();
    let mut o = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
    o.info.name = Some(name.into());
    o.info.macs.push(mac);
    o.online = Some(true);
    o
}

fn poll(clients: Vec<Observation>, at_ms: i64) -> PollReport {
    let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
    router.online = Some(true);
    let mut observations = vec![router];
    observations.extend(clients);
    super::super::test_core::report(observations, at_ms)
}

fn retained(core: &Core, topic: &str) -> Option<String> {
    core.outbox
        .snapshot()
        .into_iter()
        .find(|m| m.topic == topic)
        .map(|m| m.payload.to_string())
}

#[test]
fn a_client_unseen_for_forget_after_is_removed_from_ha_and_announced() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "");
    let phone = DeviceId::new("3c22fb100001").unwrap();
    core.take(poll(vec![client("3c:22:fb:10:00:01", "Phone")], T0));
    let config_topic = "homeassistant/device/3c22fb100001/config";
    assert!(retained(&core, config_topic).is_some_and(|p| !p.is_empty()));
    // The phone leaves; the router keeps answering.
    core.take(poll(vec![], T0 + DAY_MS));
    core.take_messages();
    core.tick_periods(T0 + 30 * DAY_MS);
    assert!(
        core.household.device(&phone).is_some(),
        "unseen for exactly 30 days: kept"
    );
    core.tick_periods(T0 + 30 * DAY_MS + 1);
    assert!(core.household.device(&phone).is_none(), "unseen for 30 days: forgotten");
    assert_eq!(retained(&core, config_topic).as_deref(), Some(""), "HA forgets it");
    assert_eq!(retained(&core, "bandwidth2mqtt/3c22fb100001").as_deref(), Some(""));
    let events: Vec<serde_json::Value> = core
        .take_messages()
        .into_iter()
        .filter(|(t, _)| t == "bandwidth2mqtt/bridge/event")
        .map(|(_, p)| serde_json::from_str(&p).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "device_removed");
    assert_eq!(events[0]["data"]["id"], "3c22fb100001");
    assert!(
        core.household.device(&DeviceId::new("home").unwrap()).is_some(),
        "routers stay"
    );
    assert!(
        !core.household.to_persisted().devices.contains_key(&phone),
        "gone from the state file"
    );
}

#[test]
fn an_excluded_device_is_removed_and_never_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "");
    core.take(poll(vec![client("3c:22:fb:10:00:02", "Guest TV")], T0));
    let state = core.household.to_persisted();
    // The user excludes it by name and restarts the bridge.
    let mut core = self::core(dir.path(), "exclude = [\"guest tv\"]\n");
    core.household = crate::household::Household::new(
        &core.config.settings,
        vec![(SourceKind::Asus.feed("home"), "asus")],
        state,
    );
    core.take(poll(vec![client("3c:22:fb:10:00:02", "Guest TV")], T0 + 60_000));
    let tv = DeviceId::new("3c22fb100002").unwrap();
    assert!(core.household.device(&tv).is_none());
    core.tick_periods(T0 + 90_000);
    assert_eq!(
        retained(&core, "homeassistant/device/3c22fb100002/config").as_deref(),
        Some(""),
        "its old config is emptied"
    );
    assert!(!core.household.to_persisted().devices.contains_key(&tv));
}
