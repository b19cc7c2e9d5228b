//! What the bridge reads out of the router's replies (shared/protocols/asus.md §4.3, §4.4).
//! Everything here is pure, tolerant of missing pieces, and tested against real captures.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use super::clientlist::{Client, clients, clients_from_update_page};
use super::hookjson::text;
use crate::calendar::unix_seconds;
use crate::model::MacAddr;

/// `netdev(appobj)`: cumulative bytes since boot per router interface, hex strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Netdev {
    /// `INTERNET_rx`/`_tx`: WAN download and upload. `None` on models that do not report it.
    pub internet: Option<(u64, u64)>,
    /// Every `<NAME>_rx`/`_tx` pair, by name.
    pub interfaces: BTreeMap<String, (u64, u64)>,
}

impl Netdev {
    /// Some models keep 32-bit counters; any value above 2^32 proves this one does not.
    pub fn proves_64_bit(&self) -> bool {
        self.interfaces
            .values()
            .any(|(rx, tx)| *rx > u64::from(u32::MAX) || *tx > u64::from(u32::MAX))
    }
}

pub fn netdev(map: &Map<String, Value>) -> Option<Netdev> {
    let obj = map.get("netdev")?.as_object()?;
    let mut halves: BTreeMap<String, (Option<u64>, Option<u64>)> = BTreeMap::new();
    for (key, value) in obj {
        let Some(number) = value.as_str().and_then(parse_hex) else {
            continue;
        };
        if let Some(name) = key.strip_suffix("_rx") {
            halves.entry(name.to_owned()).or_default().0 = Some(number);
        } else if let Some(name) = key.strip_suffix("_tx") {
            halves.entry(name.to_owned()).or_default().1 = Some(number);
        }
    }
    let interfaces: BTreeMap<String, (u64, u64)> = halves
        .into_iter()
        .filter_map(|(name, (rx, tx))| Some((name, (rx?, tx?))))
        .collect();
    Some(Netdev {
        internet: interfaces.get("INTERNET").copied(),
        interfaces,
    })
}

fn parse_hex(text: &str) -> Option<u64> {
    let digits = text
        .trim()
        .strip_prefix("0x")
        .or_else(|| text.trim().strip_prefix("0X"))?;
    u64::from_str_radix(digits, 16).ok()
}

/// Sum of `cpuN_total` and `cpuN_usage` over the cores: jiffies since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuJiffies {
    pub total: u64,
    pub busy: u64,
}

pub fn cpu(map: &Map<String, Value>) -> Option<CpuJiffies> {
    let obj = map.get("cpu_usage")?.as_object()?;
    // Checked: a garbage reply with huge numbers must not wrap into a plausible-looking sum.
    let sum = |suffix: &str| -> Option<u64> {
        obj.iter()
            .filter(|(k, _)| k.starts_with("cpu") && k.ends_with(suffix))
            .filter_map(|(_, v)| number(v))
            .try_fold(0u64, u64::checked_add)
    };
    let total = sum("_total")?;
    let busy = sum("_usage")?;
    (total > 0).then_some(CpuJiffies { total, busy })
}

/// CPU % between two samples; `None` across a reboot or without progress.
pub fn cpu_percent(prev: CpuJiffies, now: CpuJiffies) -> Option<f64> {
    let total = now.total.checked_sub(prev.total)?;
    let busy = now.busy.checked_sub(prev.busy)?;
    (total > 0).then(|| (busy as f64 / total as f64 * 100.0).clamp(0.0, 100.0))
}

/// `memory_usage(appobj)`: KiB as strings; returns used %.
pub fn memory_percent(map: &Map<String, Value>) -> Option<f64> {
    let obj = map.get("memory_usage")?.as_object()?;
    let total = obj.get("mem_total").and_then(number)?;
    let used = obj.get("mem_used").and_then(number)?;
    (total > 0).then(|| (used as f64 / total as f64 * 100.0).clamp(0.0, 100.0))
}

/// `uptime()`: `"Mon, 13 May 2024 09:44:45 +0800(64882 secs since boot)"` → 64882.
pub fn uptime_secs(text: &str) -> Option<u64> {
    let end = text.find(" secs since boot")?;
    let start = text[..end].rfind('(')? + 1;
    text[start..end].trim().parse().ok()
}

/// The router's clock from `uptime()`: `"Mon, 13 May 2024 09:44:45 +0800(…)"` → Unix seconds.
/// The Traffic Analyzer stamps its rows with this clock, so windows are asked in its terms.
pub fn router_time(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let stamp = text.split('(').next()?.trim();
    let mut parts = stamp.split_whitespace();
    let _weekday = parts.next()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = MONTHS.iter().position(|m| Some(*m) == parts.clone().next())? as u32 + 1;
    parts.next();
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>());
    let (h, m, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let offset = parts.next().unwrap_or("+0000");
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits = offset.trim_start_matches(['+', '-']);
    let (oh, om) = (
        digits.get(..2)?.parse::<i64>().ok()?,
        digits.get(2..4)?.parse::<i64>().ok()?,
    );
    if !(1..=31).contains(&day) || !(0..=23).contains(&h) || !(0..=59).contains(&m) || !(0..=60).contains(&s) {
        return None;
    }
    unix_seconds(year, month, day, h * 3600 + m * 60 + s - sign * (oh * 3600 + om * 60))
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Wireless band of a client from `isWL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Wired,
    Band2_4,
    Band5,
    /// `isWL = 3`: a second 5 GHz radio, or 6 GHz on tri-band Wi-Fi 6E models.
    Band5_2Or6,
}

impl Connection {
    pub fn from_is_wl(text: &str) -> Option<Self> {
        match text.trim() {
            "0" => Some(Self::Wired),
            "1" => Some(Self::Band2_4),
            "2" => Some(Self::Band5),
            "3" => Some(Self::Band5_2Or6),
            _ => None,
        }
    }

    pub fn label(self, has_6ghz: bool) -> &'static str {
        match self {
            Self::Wired => "wired",
            Self::Band2_4 => "2.4 GHz",
            Self::Band5 => "5 GHz",
            Self::Band5_2Or6 if has_6ghz => "6 GHz",
            Self::Band5_2Or6 => "5 GHz",
        }
    }
}

/// A temperature from `ajax_coretmp.asp`.
#[derive(Debug, Clone, PartialEq)]
pub struct Temperature {
    pub key: &'static str,
    pub name: &'static str,
    pub celsius: f64,
}

/// The three naming schemes of `ajax_coretmp.asp`; radios that are off say `disabled`.
pub fn temperatures(js: &str) -> Vec<Temperature> {
    const SENSORS: [(&str, &str, &str); 11] = [
        ("curr_cpuTemp", "temperature_cpu", "CPU temperature"),
        ("curr_coreTmp_cpu", "temperature_cpu", "CPU temperature"),
        (
            "curr_coreTmp_wl0_raw",
            "temperature_2_4ghz",
            "2.4 GHz radio temperature",
        ),
        ("curr_coreTmp_2_raw", "temperature_2_4ghz", "2.4 GHz radio temperature"),
        ("curr_coreTmp_0_raw", "temperature_2_4ghz", "2.4 GHz radio temperature"),
        ("curr_coreTmp_wl1_raw", "temperature_5ghz", "5 GHz radio temperature"),
        ("curr_coreTmp_5_raw", "temperature_5ghz", "5 GHz radio temperature"),
        ("curr_coreTmp_1_raw", "temperature_5ghz", "5 GHz radio temperature"),
        ("curr_coreTmp_wl2_raw", "temperature_5ghz_2", "Third radio temperature"),
        ("curr_coreTmp_52_raw", "temperature_5ghz_2", "Third radio temperature"),
        ("curr_coreTmp_2_raw_6g", "temperature_6ghz", "6 GHz radio temperature"),
    ];
    let mut out: Vec<Temperature> = Vec::new();
    for (var, key, name) in SENSORS {
        if out.iter().any(|t| t.key == key) {
            continue;
        }
        let Some(literal) = super::js::value(js, var) else {
            continue;
        };
        let inner = literal.trim_matches(|c| c == '"' || c == '\'');
        if inner.contains("disabled") {
            continue;
        }
        let digits: String = inner
            .split("&deg;")
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect();
        if let Ok(raw) = digits.parse::<f64>() {
            // Some models report tenths or thousandths of a degree. At most three steps: an
            // infinite or absurd value (found by fuzzing: `inf` looped here forever and hung the
            // poller) is not a temperature.
            let celsius = [1.0, 10.0, 100.0, 1000.0]
                .into_iter()
                .map(|scale| raw / scale)
                .find(|c| *c <= 200.0);
            if let Some(celsius) = celsius.filter(|c| c.is_finite() && *c > 0.0) {
                out.push(Temperature { key, name, celsius });
            }
        }
    }
    out
}

/// An AiMesh node from `ajax_onboarding.asp` (`get_cfg_clientlist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshNode {
    pub mac: MacAddr,
    pub alias: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub ip: Option<String>,
    pub online: bool,
}

pub fn mesh_nodes(js: &str) -> Vec<MeshNode> {
    let Some(literal) = super::js::value(js, "get_cfg_clientlist") else {
        return Vec::new();
    };
    let Ok(Value::Array(outer)) = serde_json::from_str::<Value>(&super::hookjson::clean(literal)) else {
        return Vec::new();
    };
    let Some(Value::Array(nodes)) = outer.into_iter().next() else {
        return Vec::new();
    };
    nodes
        .iter()
        .filter_map(|node| {
            let node = node.as_object()?;
            let get = |k: &str| text(node, k).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
            Some(MeshNode {
                mac: get("mac")?.parse().ok()?,
                alias: get("alias"),
                model: get("model_name").or_else(|| get("product_id")),
                firmware: get("fwver"),
                ip: get("ip"),
                online: get("online").as_deref() == Some("1"),
            })
        })
        .collect()
}

/// The router's identity from `nvram_get` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub model: Option<String>,
    /// `firmver.buildno_extendno`, e.g. `3.0.0.4.388_24353-g…`.
    pub firmware: Option<String>,
    pub mac: Option<MacAddr>,
    pub lan_ip: Option<String>,
    /// `bwdpi_db_enable`: Traffic Analyzer statistics switched on.
    pub traffic_analyzer: Option<bool>,
    /// `rc_support` lists `wifi6e`: `isWL = 3` means 6 GHz.
    pub has_6ghz: bool,
    /// `rc_support` lists `dns_dpi`: the DNS-based analyzer with `_Dns` pages (asus.md §6.1).
    pub dns_analyzer: bool,
    /// `dns_dpi_trf_analysis`: its statistics switch.
    pub dns_traffic_analyzer: Option<bool>,
}

pub fn identity(map: &Map<String, Value>) -> Identity {
    let get = |k: &str| text(map, k).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let firmware = match (get("firmver"), get("buildno"), get("extendno")) {
        (Some(v), Some(b), Some(e)) => Some(format!("{v}.{b}_{e}")),
        (Some(v), Some(b), None) => Some(format!("{v}.{b}")),
        (Some(v), None, _) => Some(v),
        _ => None,
    };
    let rc_support = get("rc_support").unwrap_or_default();
    Identity {
        model: get("productid"),
        firmware,
        mac: get("label_mac")
            .or_else(|| get("lan_hwaddr"))
            .and_then(|m| m.parse().ok()),
        lan_ip: get("lan_ipaddr"),
        traffic_analyzer: get("bwdpi_db_enable").map(|v| v == "1"),
        has_6ghz: rc_support.split_whitespace().any(|f| f == "wifi6e"),
        dns_analyzer: rc_support.split_whitespace().any(|f| f == "dns_dpi"),
        dns_traffic_analyzer: get("dns_dpi_trf_analysis").filter(|v| !v.is_empty()).map(|v| v == "1"),
    }
}

#[cfg(test)]
mod overflow_tests {
    use super::*;

    // Issue 8 item 9: a huge year or a negative hour overflowed the router-clock arithmetic.
    #[test]
    fn absurd_router_clocks_are_none_not_an_overflow() {
        assert_eq!(
            router_time("Mon, 13 May 2024 09:44:45 +0800(64882 secs since boot)"),
            Some(1_715_564_685)
        );
        for text in [
            "Mon, 13 May 9223372036854775807 09:44:45 +0800(1 secs since boot)",
            "Mon, 13 May -9223372036854775807 09:44:45 +0800(1 secs since boot)",
            "Mon, 13 May 2024 -9223372036854775807:44:45 +0800(1 secs since boot)",
            "Mon, 13 May 2024 09:-9223372036854775807:45 +0800(1 secs since boot)",
        ] {
            assert_eq!(router_time(text), None, "{text}");
        }
    }

    // Issue 8 item 9: the jiffies sum over the cores wrapped.
    #[test]
    fn a_jiffies_sum_that_overflows_is_no_reading() {
        let reply = serde_json::json!({"cpu_usage": {
            "cpu1_total": u64::MAX.to_string(), "cpu1_usage": "5",
            "cpu2_total": "10", "cpu2_usage": "5",
        }});
        assert_eq!(cpu(reply.as_object().unwrap()), None);
        let reply = serde_json::json!({"cpu_usage": {"cpu1_total": "100", "cpu1_usage": "25"}});
        assert_eq!(
            cpu(reply.as_object().unwrap()),
            Some(CpuJiffies { total: 100, busy: 25 })
        );
    }

    // Found by fuzzing (asus_js): a temperature of 400 digits parsed as +inf, and dividing
    // inf by 10 until it is below 200 never ends: the ASUS poller hung for good.
    #[test]
    fn an_infinite_or_absurd_temperature_is_skipped_not_a_hang() {
        let huge = format!(
            "curr_coreTmp_wl0_raw = \"{}&deg;C\";\ncurr_cpuTemp = \"45123\";\n",
            "6".repeat(400)
        );
        let temps = temperatures(&huge);
        assert_eq!(temps.len(), 1, "{temps:?}");
        assert_eq!(temps[0].key, "temperature_cpu");
        assert!((temps[0].celsius - 45.123).abs() < 1e-9, "{temps:?}");
        assert!(temperatures("curr_cpuTemp = \"45123000\";").is_empty());
    }

    // Found by fuzzing (asus_appget): a client's `rssi` of `-1e999` parsed as -inf and reached
    // the published state.
    #[test]
    fn an_absurd_rssi_is_no_reading() {
        let list = |rssi: &str| {
            serde_json::json!({"maclist": ["AA:BB:CC:00:00:01"],
                "AA:BB:CC:00:00:01": {"mac": "AA:BB:CC:00:00:01", "rssi": rssi, "isWL": "1", "isOnline": "1"}})
        };
        for (rssi, expected) in [("-61", Some(-61.0)), ("-1e999", None), ("-300", None), ("0", None)] {
            let clients = clients(list(rssi).as_object().unwrap());
            assert_eq!(clients.first().and_then(|c| c.rssi), expected, "rssi {rssi}");
        }
    }
}
