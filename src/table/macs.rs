//! A server's `mac`: one MAC (`mac = "aa:…"`) or several (`mac = ["aa:…", "bb:…"]`), because a
//! machine with two NICs (or Wi-Fi and a cable) is seen by the routers under each of them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::MacAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacList(pub Vec<MacAddr>);

impl MacList {
    pub fn iter(&self) -> impl Iterator<Item = &MacAddr> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn first(&self) -> Option<MacAddr> {
        self.0.first().copied()
    }
}

impl<'a> IntoIterator for &'a MacList {
    type Item = &'a MacAddr;
    type IntoIter = std::slice::Iter<'a, MacAddr>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Vec<MacAddr>> for MacList {
    fn from(value: Vec<MacAddr>) -> Self {
        Self(value)
    }
}

impl<'de> Deserialize<'de> for MacList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Untagged enums swallow the inner error; parse by shape so a bad MAC is named.
        let value = toml::Value::deserialize(d)?;
        let parse = |v: &toml::Value| -> Result<MacAddr, D::Error> {
            let text = v
                .as_str()
                .ok_or_else(|| serde::de::Error::custom("a MAC must be a string such as \"aa:bb:cc:dd:ee:ff\""))?;
            text.parse().map_err(serde::de::Error::custom)
        };
        match &value {
            toml::Value::Array(items) => items.iter().map(parse).collect::<Result<Vec<_>, _>>().map(Self),
            other => Ok(Self(vec![parse(other)?])),
        }
    }
}

impl Serialize for MacList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        mac: MacList,
    }

    #[test]
    fn one_or_many() {
        let one: T = toml::from_str(r#"mac = "AA:BB:CC:00:11:22""#).unwrap();
        assert_eq!(one.mac.0.len(), 1);
        let many: T = toml::from_str(r#"mac = ["aa:bb:cc:00:11:22", "aabbcc001123"]"#).unwrap();
        assert_eq!(many.mac.0.len(), 2);
        let bad = toml::from_str::<T>(r#"mac = ["aa:bb:cc:00:11:22", "nope"]"#);
        assert!(bad.err().unwrap().to_string().contains("nope"));
    }
}
