use std::fmt;

use serde::{Deserialize, Serialize};

use super::MacAddr;

/// A device id: `[a-z0-9_]+`, stable for the life of the device.
///
/// It ends up in MQTT topics, HA discovery object ids and `unique_id`s, so it must never change
/// for the same physical thing: servers and routers use their configured name, network clients
/// and mesh nodes their MAC as 12 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct DeviceId(String);

/// Written as its string, borrowed: `into = "String"` cloned every id of the state file on
/// every save.
impl Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid device id: use lower-case letters, digits and `_` only")]
pub struct InvalidDeviceId(pub String);

impl DeviceId {
    /// Accepts an id that is already in canonical form.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidDeviceId> {
        let id = id.into();
        if is_valid(&id) {
            Ok(Self(id))
        } else {
            Err(InvalidDeviceId(id))
        }
    }

    /// Derives an id from a free-form name such as a hostname (`My-Server.lan` → `my_server_lan`).
    /// Returns `None` when nothing usable is left.
    pub fn slugify(name: &str) -> Option<Self> {
        let mut out = String::with_capacity(name.len());
        for c in name.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('_') {
                out.push('_');
            }
        }
        let trimmed = out.trim_matches('_');
        (!trimmed.is_empty()).then(|| Self(trimmed.to_owned()))
    }

    /// [`Self::slugify`], falling back to `unnamed` for names without a single letter or digit.
    pub fn slugify_or_unnamed(name: &str) -> Self {
        Self::slugify(name).unwrap_or_else(|| Self("unnamed".to_owned()))
    }

    pub fn from_mac(mac: MacAddr) -> Self {
        Self(mac.to_hex12())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Makes `self` equal to `other`, reusing its buffer (a lookup key built once per poll).
    pub fn assign(&mut self, other: &DeviceId) {
        self.0.clone_from(&other.0);
    }
}

fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DeviceId {
    type Error = InvalidDeviceId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<DeviceId> for String {
    fn from(value: DeviceId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_canonical_ids() {
        assert!(DeviceId::new("titan_2").is_ok());
        assert!(DeviceId::new("Titan").is_err());
        assert!(DeviceId::new("").is_err());
        assert!(DeviceId::new("a-b").is_err());
    }

    #[test]
    fn slugify_makes_hostnames_safe() {
        assert_eq!(DeviceId::slugify("My-Server.lan").unwrap().as_str(), "my_server_lan");
        assert_eq!(DeviceId::slugify("--x--").unwrap().as_str(), "x");
        assert_eq!(DeviceId::slugify("ünï").unwrap().as_str(), "n");
        assert!(DeviceId::slugify("...").is_none());
    }

    #[test]
    fn mac_ids_are_twelve_hex_digits() {
        let mac: MacAddr = "AA:BB:CC:00:11:22".parse().unwrap();
        assert_eq!(DeviceId::from_mac(mac).as_str(), "aabbcc001122");
    }
}
