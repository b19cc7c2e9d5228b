//! Typed views of the decrypted `result` objects (deco.md §5). Tolerant where real firmware
//! varies (numbers as strings, missing fields, MAC spellings, `"UNKNOWN"` IPs); strict only
//! where nothing useful could be read.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::clientlist::{ClientFields, client_entry};
use super::names::{decode_name, humanize_nickname};
use crate::model::MacAddr;
use crate::sources::scalar::Scalar;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// One entry of `client_list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEntry {
    /// `None` when the MAC is empty or unreadable; such clients cannot be tracked.
    pub mac: Option<MacAddr>,
    pub raw_mac: String,
    pub name: Option<String>,
    pub ip: Option<Ipv4Addr>,
    pub online: bool,
    /// Raw `down_speed` / `up_speed` in the Deco's unit; `None` if absent or not a number.
    pub down: Option<f64>,
    pub up: Option<f64>,
    pub wire_type: Option<String>,
    pub connection_type: Option<String>,
    pub interface: Option<String>,
    pub client_type: Option<String>,
}

/// One entry of `device_list`: a Deco unit.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEntry {
    pub mac: Option<MacAddr>,
    pub raw_mac: String,
    pub master: bool,
    pub name: Option<String>,
    pub ip: Option<Ipv4Addr>,
    pub model: Option<String>,
    pub hardware: Option<String>,
    pub firmware: Option<String>,
    /// The node it hangs off (`previous`); `None` for the master.
    pub parent: Option<MacAddr>,
    /// `group_status == "connected"`; `None` when the field is missing.
    pub connected: Option<bool>,
    pub inet_status: Option<String>,
    /// Backhaul types (`["band2_4","band5"]`, `["wired"]`).
    pub backhaul: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Performance {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wan {
    pub mac: Option<MacAddr>,
    pub ip: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    pub dial_type: Option<String>,
    pub lan_mac: Option<MacAddr>,
    pub lan_ip: Option<Ipv4Addr>,
}

/// `client_list` from a parsed `result` tree (the per-poll read goes through
/// [`super::clientlist::ClientListReply`], which reads the same way without the tree).
pub fn client_list(result: &Value) -> Result<Vec<ClientEntry>, ParseError> {
    let list = result
        .get("client_list")
        .ok_or_else(|| ParseError("the reply has no client_list".into()))?
        .as_array()
        .ok_or_else(|| ParseError("client_list is not a list".into()))?;
    list.iter()
        .enumerate()
        .map(|(i, entry)| match entry.as_object() {
            Some(entry) => Ok(client_entry(&ClientFields::from_tree(entry))),
            None => Err(ParseError(format!("client_list[{i}] is not an object"))),
        })
        .collect()
}

pub fn device_list(result: &Value) -> Result<Vec<NodeEntry>, ParseError> {
    let list = result
        .get("device_list")
        .ok_or_else(|| ParseError("the reply has no device_list".into()))?
        .as_array()
        .ok_or_else(|| ParseError("device_list is not a list".into()))?;
    let mut nodes = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        if !entry.is_object() {
            return Err(ParseError(format!("device_list[{i}] is not an object")));
        }
        let raw_mac = text(entry, "mac").unwrap_or_default();
        let name = text(entry, "custom_nickname")
            .and_then(|n| decode_name(&n))
            .or_else(|| text(entry, "nickname").and_then(|n| humanize_nickname(&n)));
        nodes.push(NodeEntry {
            mac: mac(&raw_mac),
            master: text(entry, "role").is_some_and(|r| r.eq_ignore_ascii_case("master")),
            name,
            ip: text(entry, "device_ip").and_then(|ip| ipv4(&ip)),
            model: text(entry, "device_model"),
            hardware: text(entry, "hardware_ver"),
            firmware: text(entry, "software_ver"),
            parent: text(entry, "previous").and_then(|m| mac(&m)),
            connected: text(entry, "group_status").map(|s| s.eq_ignore_ascii_case("connected")),
            inet_status: text(entry, "inet_status"),
            backhaul: match entry.get("connection_type") {
                Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                _ => Vec::new(),
            },
            raw_mac,
        });
    }
    if nodes.is_empty() {
        return Err(ParseError("device_list is empty: no Deco unit listed".into()));
    }
    // The master is the `role: master` entry, or the only one ([C6U] get_firmware); a list
    // without one (never seen) falls back to the node without a parent.
    if !nodes.iter().any(|n| n.master) {
        let pick = nodes.iter().position(|n| n.parent.is_none()).unwrap_or(0);
        nodes[pick].master = true;
    }
    Ok(nodes)
}

/// `cpu_usage` and `mem_usage` are fractions (0.1 = 10 %); a value above 1 is taken as
/// already being a percentage.
pub fn performance(result: &Value) -> Performance {
    let percent = |key: &str| {
        number(result.get(key))
            .filter(|v| *v >= 0.0)
            .map(|v| if v <= 1.0 { v * 100.0 } else { v.min(100.0) })
    };
    Performance {
        cpu_percent: percent("cpu_usage"),
        memory_percent: percent("mem_usage"),
    }
}

/// The WAN block sits under `wan.ip_info`, or `wan.mobile_cpe` on 4G/5G models; it is empty or
/// missing without internet and in AP mode.
pub fn wan_ipv4(result: &Value) -> Wan {
    let wan = result.get("wan");
    let info = wan
        .and_then(|w| w.get("ip_info"))
        .filter(|v| v.is_object())
        .or_else(|| wan.and_then(|w| w.get("mobile_cpe")));
    let lan = result.get("lan").and_then(|l| l.get("ip_info"));
    let field = |block: Option<&Value>, key: &str| block.and_then(|b| text(b, key));
    Wan {
        mac: field(info, "mac").and_then(|m| mac(&m)),
        ip: field(info, "ip").and_then(|ip| ipv4(&ip)),
        gateway: field(info, "gateway").and_then(|ip| ipv4(&ip)),
        dial_type: wan.and_then(|w| text(w, "dial_type")),
        lan_mac: field(lan, "mac").and_then(|m| mac(&m)),
        lan_ip: field(lan, "ip").and_then(|ip| ipv4(&ip)),
    }
}

/// `admin/device?form=mode`: `(sysmode, workmode)`, e.g. `("Router", …)`.
pub fn mode(result: &Value) -> Option<String> {
    ["sysmode", "system_mode", "workmode"]
        .iter()
        .find_map(|k| text(result, k))
}

/// A string field, non-empty and trimmed; numbers are accepted as their text.
fn text(obj: &Value, key: &str) -> Option<String> {
    scalar_text(&Scalar::from_value(obj.get(key)?))
}

pub(super) fn scalar_text(value: &Scalar) -> Option<String> {
    match value {
        Scalar::Str(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        }
        Scalar::Num(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or a numeric string (S7 firmware, [C6U] `_to_int`).
fn number(value: Option<&Value>) -> Option<f64> {
    scalar_number(&Scalar::from_value(value?))
}

pub(super) fn scalar_number(value: &Scalar) -> Option<f64> {
    match value {
        Scalar::Num(n) => n.as_f64(),
        Scalar::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

pub(super) fn scalar_boolean(value: &Scalar) -> Option<bool> {
    match value {
        Scalar::Bool(b) => Some(*b),
        Scalar::Num(n) => n.as_i64().map(|v| v != 0),
        Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "online" => Some(true),
            "false" | "0" | "no" | "offline" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Colon or dash, any case; the all-zero and broadcast addresses identify nothing.
pub(super) fn mac(raw: &str) -> Option<MacAddr> {
    raw.parse::<MacAddr>().ok().filter(MacAddr::is_meaningful)
}

/// `""`, `"0.0.0.0"` and `"UNKNOWN"` (AP mode) all mean "no IP".
pub(super) fn ipv4(raw: &str) -> Option<Ipv4Addr> {
    raw.trim().parse::<Ipv4Addr>().ok().filter(|ip| !ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn client_fields_with_every_quirk() {
        let result = json!({"client_list": [
            {"mac": "8E-18-51-37-67-12", "name": "UGhvbmU=", "ip": "UNKNOWN", "online": true,
             "down_speed": "120", "up_speed": 7, "wire_type": "wireless",
             "connection_type": "band6", "interface": "guest", "client_type": "phone"},
            {"mac": "", "name": "", "ip": "", "online": "false"},
            {"mac": "aa:bb:cc:dd:ee:01", "ip": "0.0.0.0", "down_speed": null, "up_speed": "x"}
        ]});
        let clients = client_list(&result).unwrap();
        let c = &clients[0];
        assert_eq!(c.mac, Some("8e:18:51:37:67:12".parse().unwrap()));
        assert_eq!(c.name.as_deref(), Some("Phone"));
        assert_eq!(c.ip, None);
        assert!(c.online);
        assert_eq!((c.down, c.up), (Some(120.0), Some(7.0)));
        assert_eq!(c.connection_type.as_deref(), Some("band6"));
        assert_eq!(c.interface.as_deref(), Some("guest"));
        assert_eq!(
            (clients[1].mac, clients[1].online, clients[1].name.clone()),
            (None, false, None)
        );
        assert_eq!((clients[2].down, clients[2].up, clients[2].ip), (None, None, None));
        assert!(!clients[2].online, "a missing online flag is not online");
    }

    #[test]
    fn client_list_shape_errors() {
        assert!(client_list(&json!({})).is_err());
        assert!(client_list(&json!({"client_list": {}})).is_err());
        assert!(client_list(&json!({"client_list": [1]})).is_err());
        assert!(client_list(&json!({"client_list": []})).unwrap().is_empty());
    }

    #[test]
    fn master_is_found_or_inferred() {
        let nodes = device_list(&json!({"device_list": [
            {"mac": "aa:bb:cc:00:00:02", "role": "slave", "previous": "aa:bb:cc:00:00:01"},
            {"mac": "aa:bb:cc:00:00:01", "previous": "", "custom_nickname": "SGFsbA=="}
        ]}))
        .unwrap();
        assert!(nodes[1].master && !nodes[0].master);
        assert_eq!(nodes[1].name.as_deref(), Some("Hall"));
        assert_eq!(nodes[0].parent, nodes[1].mac);
        assert!(device_list(&json!({"device_list": []})).is_err());
    }

    #[test]
    fn performance_fractions_and_strings() {
        let p = performance(&json!({"cpu_usage": "0.25", "mem_usage": 0.5}));
        assert_eq!((p.cpu_percent, p.memory_percent), (Some(25.0), Some(50.0)));
        let p = performance(&json!({"cpu_usage": 37, "mem_usage": -1}));
        assert_eq!((p.cpu_percent, p.memory_percent), (Some(37.0), None));
        assert_eq!(performance(&json!({})), Performance::default());
    }
}
