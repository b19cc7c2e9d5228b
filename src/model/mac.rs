use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An Ethernet MAC address. Displays as `aa:bb:cc:dd:ee:ff`, the form HA normalises connections to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr([u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (expected six hex pairs such as aa:bb:cc:dd:ee:ff)")]
pub struct InvalidMac(pub String);

impl MacAddr {
    pub const fn new(bytes: [u8; 6]) -> Self {
        Self(bytes)
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// `aabbccddeeff`: safe in MQTT topics and HA object ids.
    pub fn to_hex12(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// All-zero and broadcast addresses carry no identity (`lo` reports all zeros).
    pub fn is_meaningful(&self) -> bool {
        self.0 != [0; 6] && self.0 != [0xff; 6]
    }

    /// Locally administered addresses are what phones use for "private"/randomised MACs.
    pub fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl FromStr for MacAddr {
    type Err = InvalidMac;

    /// Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` and `aabbccddeeff`. Allocation-free:
    /// every client of every poll is keyed by a MAC read from the router's reply.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidMac(s.to_owned());
        // The text without its separators (at most 12 bytes), and how many separators it had.
        let mut hex = [0u8; 12];
        let (mut len, mut separators) = (0usize, 0usize);
        for b in s.trim().bytes() {
            if b == b':' || b == b'-' {
                separators += 1;
            } else {
                *hex.get_mut(len).ok_or_else(invalid)? = b;
                len += 1;
            }
        }
        if len != 12 || !(separators == 0 || separators == 5) {
            return Err(invalid());
        }
        let mut bytes = [0u8; 6];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            // A pair inside a multi-byte character is not UTF-8 on its own: not a MAC.
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl TryFrom<String> for MacAddr {
    type Error = InvalidMac;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<MacAddr> for String {
    fn from(value: MacAddr) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        let a: MacAddr = "AA:BB:CC:DD:EE:01".parse().unwrap();
        let b: MacAddr = "aa-bb-cc-dd-ee-01".parse().unwrap();
        let c: MacAddr = "aabbccddee01".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_string(), "aa:bb:cc:dd:ee:01");
        assert_eq!(a.to_hex12(), "aabbccddee01");
    }

    #[test]
    fn separators_count_wherever_they_are() {
        // The rule is "none or five separators, twelve hex digits", not their positions.
        let odd: MacAddr = " a:ab-bc:cd:de:eff ".parse().unwrap();
        assert_eq!(odd.to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(
            "aa:bb:cc:dd:ee:ff:".parse::<MacAddr>(),
            Err(InvalidMac("aa:bb:cc:dd:ee:ff:".into()))
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "aa:bb",
            "zz:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff:00",
            "aabb:ccddeeff",
            "é:bb:cc:dd:ee:f",
            "aabbccddeeff0",
            "aa:bb:cc:dd:ee:f\u{e9}",
            "aa:bb:cc:dd:eeff",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn classifies_addresses() {
        assert!(!"00:00:00:00:00:00".parse::<MacAddr>().unwrap().is_meaningful());
        assert!(
            "02:fc:00:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .is_locally_administered()
        );
        assert!(
            !"00:1a:2b:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .is_locally_administered()
        );
    }
}
