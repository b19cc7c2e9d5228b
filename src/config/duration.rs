//! Durations in config files are humantime strings (`30s`, `5m`, `1h 30m`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Longer than any interval or timeout makes sense for; far below where adding it to a clock
/// could overflow (`500000000000y` would panic the first timer that used it).
pub const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    let value = humantime::parse_duration(text.trim()).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write it like \"30s\" or \"5m\""
        ))
    })?;
    if value > LONGEST {
        return Err(serde::de::Error::custom(format!(
            "`{text}` is too long; at most a year (\"365d\")"
        )));
    }
    Ok(value)
}

pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
}
