//! `[plan.<device_id>]` data plans and the household options of `[bridge]` (design.md "Period
//! totals and data plans"): a quota in bytes for a day or a billing month, and which network
//! clients are published at all (randomised MACs, include/exclude lists).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `[plan.<device_id>]`; `wan` is the internet link of the (single) ASUS router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSettings {
    /// `"1TB"`, `"500 GiB"` or a number of bytes; both directions count, as ISPs count them.
    pub quota: ByteSize,
    #[serde(default)]
    pub period: PlanPeriod,
    /// `over_quota` turns on at this share of the quota: `0.9` or `"90%"`; default 1.
    #[serde(default)]
    pub warn_at: Option<Share>,
    /// The ISP's meter reading for the current period when the plan is first configured
    /// mid-cycle (`"412GB"`): the plan's used figure is this from then on, for that period
    /// only; applied once (the household remembers it across restarts).
    #[serde(default)]
    pub used_so_far: Option<ByteSize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanPeriod {
    /// The billing month (`[bridge] month_start_day`).
    #[default]
    Month,
    Day,
}

/// What happens to network clients whose MAC is locally administered (randomised "private"
/// addresses of phones and laptops: bit 0x02 of the first octet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RandomMacs {
    /// One device each, like any other MAC.
    #[default]
    Track,
    /// Never published.
    Ignore,
    /// One "Private-address devices" device with their summed traffic.
    Group,
}

/// A number of bytes: an integer, or a string with a decimal (`kB`, `MB`, `GB`, `TB`) or
/// binary (`KiB`, `MiB`, `GiB`, `TiB`) unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = (&t[..split], t[split..].trim());
        let scale: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "m" | "mb" => 1_000_000,
            "g" | "gb" => 1_000_000_000,
            "t" | "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                    "`{text}`: unknown unit `{unit}`; write it like \"1TB\" or \"500 GiB\""
                ));
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write it like \"1TB\" or \"500 GiB\""))?;
        let bytes = value * scale as f64;
        if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
            return Err(format!("`{text}` must be at least 1 byte and below 16 EB"));
        }
        Ok(Self(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

/// A visitor rather than an untagged enum: serde's untagged errors drop the message.
struct SizeVisitor;

impl serde::de::Visitor<'_> for SizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size like \"1TB\" or \"500 GiB\", or a number of bytes")
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ByteSize, E> {
        u64::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .map(ByteSize)
            .ok_or_else(|| E::custom(format!("{n} must be at least 1 byte")))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
        self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ByteSize, E> {
        ByteSize::parse(text).map_err(E::custom)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A share in (0, 1]: `0.9`, or a percentage string `"90%"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub f64);

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShareVisitor)
    }
}

struct ShareVisitor;

impl ShareVisitor {
    fn check<E: serde::de::Error>(value: f64) -> Result<Share, E> {
        if value > 0.0 && value <= 1.0 {
            Ok(Share(value))
        } else {
            Err(E::custom(format!(
                "{value} is not a share of the quota; use 0.9 or \"90%\" (above 0, at most 1)"
            )))
        }
    }
}

impl serde::de::Visitor<'_> for ShareVisitor {
    type Value = Share;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a share like 0.9 or \"90%\"")
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Share, E> {
        Self::check(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Share, E> {
        Self::check(v as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Share, E> {
        Self::check(v as f64)
    }

    fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Share, E> {
        let percent = t.trim().strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok());
        match percent {
            Some(p) => Self::check(p / 100.0),
            None => Err(E::custom(format!("`{t}`: write a share like 0.9 or \"90%\""))),
        }
    }
}

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares() {
        assert_eq!(ByteSize::parse("1TB"), Ok(ByteSize(1_000_000_000_000)));
        assert_eq!(ByteSize::parse("500 GiB"), Ok(ByteSize(500 << 30)));
        assert_eq!(ByteSize::parse("1.5 tb"), Ok(ByteSize(1_500_000_000_000)));
        assert_eq!(ByteSize::parse("42"), Ok(ByteSize(42)));
        for bad in ["", "TB", "1 XB", "-1GB", "0", "1e30TB", "nan"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad}");
        }
        let plan: PlanSettings = toml::from_str("quota = \"2TB\"\nwarn_at = \"90%\"\nperiod = \"day\"").unwrap();
        assert_eq!(plan.quota, ByteSize(2_000_000_000_000));
        assert_eq!(plan.warn_at, Some(Share(0.9)));
        assert_eq!(plan.period, PlanPeriod::Day);
        let plan: PlanSettings = toml::from_str("quota = 1000\nwarn_at = 0.5").unwrap();
        assert_eq!(
            (plan.quota.0, plan.warn_at, plan.used_so_far),
            (1000, Some(Share(0.5)), None)
        );
        let plan: PlanSettings = toml::from_str("quota = \"1TB\"\nused_so_far = \"412GB\"").unwrap();
        assert_eq!(plan.used_so_far, Some(ByteSize(412_000_000_000)));
        for bad in [
            "quota = 0",
            "quota = \"1TB\"\nwarn_at = 90",
            "quota = \"1TB\"\nwarn_at = \"x%\"",
            "warn_at = 0.5",
            "quota = \"1TB\"\nused_so_far = \"lots\"",
            "quota = \"1TB\"\nused_so_far = -5",
        ] {
            assert!(toml::from_str::<PlanSettings>(bad).is_err(), "{bad}");
        }
    }
}
