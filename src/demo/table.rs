//! The demo's terminal table, built only from what the bridge published (`bridge/devices` and
//! each device's state), so it shows exactly what Home Assistant gets. Pure functions: the
//! caller decides whether to redraw in place (a terminal) or print plain lines (a pipe).

use std::collections::BTreeMap;

use serde_json::Value;

/// One device as the table shows it; `None` is "not published (yet)", shown as "—".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Which source feeds the headline numbers (the state's `source`, else the device's sources).
    pub source: String,
    pub online: Option<bool>,
    pub estimated: bool,
    pub today: (Option<u64>, Option<u64>),
    pub month: (Option<u64>, Option<u64>),
    pub total: (Option<u64>, Option<u64>),
    /// bit/s
    pub rate: (Option<u64>, Option<u64>),
}

/// Rows from `bridge/devices` (an array) and the latest state of each device id; devices that
/// published no state yet are listed with "—". Sorted by kind (routers and servers first), then name.
pub fn rows(devices: &Value, states: &BTreeMap<String, Value>) -> Vec<Row> {
    let mut rows: Vec<Row> = devices
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| {
            let id = d.get("id")?.as_str()?.to_owned();
            let state = states.get(&id);
            let key = |k: &str| state.and_then(|s| s.get(k)).and_then(Value::as_u64);
            let sources = d
                .get("sources")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("+"))
                .unwrap_or_default();
            Some(Row {
                name: d.get("name").and_then(Value::as_str).unwrap_or(&id).to_owned(),
                kind: d.get("kind").and_then(Value::as_str).unwrap_or("").to_owned(),
                source: state
                    .and_then(|s| s.get("source"))
                    .and_then(Value::as_str)
                    .map_or(sources, str::to_owned),
                online: state.and_then(|s| s.get("online")).and_then(Value::as_bool),
                estimated: state
                    .and_then(|s| s.get("estimated"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                today: (key("rx_today"), key("tx_today")),
                month: (key("rx_month"), key("tx_month")),
                total: (key("rx_bytes"), key("tx_bytes")),
                rate: (key("rx_bps"), key("tx_bps")),
                id,
            })
        })
        .collect();
    rows.sort_by(|a, b| (kind_rank(&a.kind), &a.name).cmp(&(kind_rank(&b.kind), &b.name)));
    rows
}

fn kind_rank(kind: &str) -> u8 {
    match kind {
        "router" => 0,
        "mesh_node" => 1,
        "server" => 2,
        _ => 3,
    }
}

const HEADERS: [&str; 7] = [
    "device",
    "source",
    "online",
    "today ↓/↑",
    "month ↓/↑",
    "total ↓/↑",
    "now ↓/↑",
];

/// The table as text, one line per device under a header; columns padded to fit.
pub fn render(rows: &[Row]) -> String {
    let cells: Vec<[String; 7]> = rows.iter().map(cells).collect();
    let mut widths = [0usize; 7];
    for (w, h) in widths.iter_mut().zip(HEADERS) {
        *w = h.chars().count();
    }
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            // Names and sources left-aligned, numbers right-aligned.
            let pad = w - cell.chars().count();
            if i < 3 {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
            text.push_str("  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    let header: Vec<String> = HEADERS.iter().map(|h| (*h).to_owned()).collect();
    line(&mut out, &header);
    for row in &cells {
        line(&mut out, row);
    }
    out
}

fn cells(row: &Row) -> [String; 7] {
    let name = if row.estimated {
        format!("{} (est.)", row.name)
    } else {
        row.name.clone()
    };
    [
        name,
        row.source.clone(),
        match row.online {
            Some(true) => "yes".into(),
            Some(false) => "no".into(),
            None => "—".into(),
        },
        pair(row.today, bytes),
        pair(row.month, bytes),
        pair(row.total, bytes),
        pair(row.rate, rate),
    ]
}

fn pair(values: (Option<u64>, Option<u64>), show: fn(u64) -> String) -> String {
    match values {
        (None, None) => "—".into(),
        (rx, tx) => format!(
            "{} / {}",
            rx.map_or_else(|| "—".into(), show),
            tx.map_or_else(|| "—".into(), show)
        ),
    }
}

/// Bytes in binary units, as HA's GiB suggestion shows them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// bit/s in decimal units, as HA's Mbit/s suggestion shows them.
pub fn rate(bps: u64) -> String {
    match bps {
        0..1_000 => format!("{bps} bit/s"),
        1_000..1_000_000 => format!("{:.0} kbit/s", bps as f64 / 1e3),
        _ => format!("{:.1} Mbit/s", bps as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> (Value, BTreeMap<String, Value>) {
        let devices = json!([
            {"id": "aabbccddee01", "name": "Anna's Phone", "kind": "client", "sources": ["mesh"]},
            {"id": "titan", "name": "Titan", "kind": "server", "sources": ["titan"]},
            {"id": "home", "name": "RT-AX86U Pro", "kind": "router", "sources": ["home"]},
            {"id": "nostate", "name": "Quiet", "kind": "client", "sources": ["home"]},
        ]);
        let mut states = BTreeMap::new();
        states.insert(
            "titan".into(),
            json!({"online": true, "estimated": false, "source": "vnstat:titan", "rx_bytes": 1_610_612_736u64,
                   "tx_bytes": 2048, "rx_bps": 12_500_000, "tx_bps": 800, "rx_today": 1_048_576, "tx_today": 0,
                   "rx_month": 5_368_709_120u64, "tx_month": 512}),
        );
        states.insert(
            "aabbccddee01".into(),
            json!({"online": false, "estimated": true, "rx_bytes": 1000, "tx_bytes": 10, "rx_bps": null, "tx_bps": null}),
        );
        states.insert(
            "home".into(),
            json!({"online": true, "rx_bytes": 5, "tx_bytes": 6, "rx_bps": 64_000, "tx_bps": 8_000}),
        );
        (devices, states)
    }

    #[test]
    fn rows_come_from_what_was_published() {
        let (devices, states) = sample();
        let rows = rows(&devices, &states);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["RT-AX86U Pro", "Titan", "Anna's Phone", "Quiet"]);
        let titan = &rows[1];
        assert_eq!(
            titan.source, "vnstat:titan",
            "the state's source wins over the device's list"
        );
        assert_eq!(titan.today, (Some(1_048_576), Some(0)));
        assert_eq!(titan.month, (Some(5_368_709_120), Some(512)));
        assert_eq!(rows[2].source, "mesh");
        assert_eq!((rows[2].online, rows[2].estimated), (Some(false), true));
        assert_eq!(rows[2].today, (None, None), "no period keys yet");
        assert_eq!(rows[3].online, None);
        assert_eq!(rows[3].total, (None, None));
    }

    #[test]
    fn renders_aligned_with_dashes_for_the_unknown() {
        let (devices, states) = sample();
        let text = render(&rows(&devices, &states));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("device"), "{text}");
        let titan = lines.iter().find(|l| l.starts_with("Titan")).unwrap();
        assert!(titan.contains("vnstat:titan"), "{titan}");
        assert!(titan.contains("1.0 MiB / 0 B"), "today: {titan}");
        assert!(titan.contains("5.0 GiB / 512 B"), "month: {titan}");
        assert!(titan.contains("1.5 GiB / 2.0 KiB"), "total: {titan}");
        assert!(titan.contains("12.5 Mbit/s / 800 bit/s"), "rate: {titan}");
        let phone = lines.iter().find(|l| l.starts_with("Anna's Phone (est.)")).unwrap();
        assert!(phone.contains(" no "), "{phone}");
        assert!(phone.contains("—"), "unknown rates and periods are dashes: {phone}");
        let quiet = lines.iter().find(|l| l.starts_with("Quiet")).unwrap();
        assert_eq!(quiet.matches('—').count(), 5, "{quiet}");
        // Columns line up: every "online" cell starts at the same character position.
        let col = |l: &str| l.chars().collect::<Vec<_>>();
        let header = col(lines[0]);
        let at = (0..header.len())
            .find(|&i| header[i..].starts_with(&['o', 'n', 'l']))
            .unwrap();
        for line in &lines[1..] {
            let c = col(line);
            assert!(c[at - 2] == ' ' && c[at] != ' ', "misaligned: {line}");
        }
    }

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 40), "3.0 TiB");
        assert_eq!(rate(999), "999 bit/s");
        assert_eq!(rate(64_000), "64 kbit/s");
        assert_eq!(rate(12_500_000), "12.5 Mbit/s");
    }
}
