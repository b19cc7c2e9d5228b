//! Durations in config files are humantime strings (`30s`, `5m`, `1h 30m`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Longer than any sensible interval or timeout, and small enough that the arithmetic done on
/// them (`interval * 8` backoff, rate windows, deadlines) can never overflow. Found by fuzzing:
/// `interval = "500000000000y"` passed validation and then panicked in a poller.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    let value = humantime::parse_duration(text.trim()).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write it like \"30s\" or \"5m\""
        ))
    })?;
    if value > MAX {
        return Err(serde::de::Error::custom(format!(
            "`{text}` is longer than {}",
            humantime::format_duration(MAX)
        )));
    }
    Ok(value)
}

pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        d: Duration,
    }

    fn parse(text: &str) -> Result<Duration, toml::de::Error> {
        toml::from_str::<Holder>(&format!("d = {text:?}")).map(|h| h.d)
    }

    #[test]
    fn absurd_durations_are_refused_not_overflowed_later() {
        assert!(parse("500000000000y").is_err());
        assert!(parse("366d").is_err());
        assert_eq!(parse("365d").ok(), Some(MAX));
        assert_eq!(parse("30s").ok(), Some(Duration::from_secs(30)));
        // What the sources and pollers do with an interval must not overflow at the limit.
        let _ = MAX * 8;
    }
}
