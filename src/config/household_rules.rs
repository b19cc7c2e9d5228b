//! Checks of the household options: `[plan.*]` targets, `forget_after`, include/exclude lists.

use super::Settings;
use crate::model::{DeviceId, MacAddr};

/// The device a `[plan.<key>]` is about: `wan` is the single ASUS router, a MAC (any
/// spelling) a network client, anything else a device id.
pub fn plan_device(key: &str, settings: &Settings) -> Result<DeviceId, String> {
    if key == "wan" {
        let mut routers = settings.asus.keys();
        return match (routers.next(), routers.next()) {
            (Some(router), None) => DeviceId::new(router.clone()).map_err(|e| e.to_string()),
            _ => Err(format!(
                "`wan` is the internet link of the one [asus] router, and {} are configured; name the router instead: [plan.<router name>]",
                settings.asus.len()
            )),
        };
    }
    if let Ok(mac) = key.parse::<MacAddr>() {
        return Ok(DeviceId::from_mac(mac));
    }
    DeviceId::new(key).map_err(|e| format!("{e}, a MAC, or `wan`"))
}

/// `Err((key, message))` for the first bad household option.
pub(super) fn check(settings: &Settings) -> Result<(), (String, String)> {
    let bridge = &settings.bridge;
    let forget = bridge.forget_after;
    if !forget.is_zero() && forget < std::time::Duration::from_secs(3600) {
        return Err((
            "bridge.forget_after".into(),
            "must be at least 1h (or \"0s\": never forget)".into(),
        ));
    }
    for (key, list) in [("bridge.include", &bridge.include), ("bridge.exclude", &bridge.exclude)] {
        for entry in list {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err((key.into(), "an entry is empty; give a MAC or a device name".into()));
            }
            // Six pairs of hex digits with separators: meant as a MAC, so it must be one.
            let looks_like_mac = entry.len() == 17 && entry.matches([':', '-']).count() == 5;
            if looks_like_mac && let Err(e) = entry.parse::<MacAddr>() {
                return Err((key.into(), e.to_string()));
            }
        }
    }
    if let Some(both) = bridge
        .exclude
        .iter()
        .find(|e| bridge.include.iter().any(|i| i.trim().eq_ignore_ascii_case(e.trim())))
    {
        return Err((
            "bridge.exclude".into(),
            format!("`{both}` is also in bridge.include; a device is either published or not"),
        ));
    }
    let mut targets: std::collections::BTreeMap<DeviceId, &str> = std::collections::BTreeMap::new();
    for key in settings.plan.keys() {
        let device = plan_device(key, settings).map_err(|m| (format!("plan.{key}"), m))?;
        if let Some(first) = targets.insert(device.clone(), key) {
            return Err((
                format!("plan.{key}"),
                format!("device `{device}` already has a plan: [plan.{first}]"),
            ));
        }
    }
    Ok(())
}
