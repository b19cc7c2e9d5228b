//! `vnstat --json` output of every version in the wild: jsonversion 2 (vnStat 2.x; `timestamp`
//! keys only from 2.10) and jsonversion 1 (vnStat 1.x, values in KiB, other key names).
//! See shared/protocols/vnstat.md §2.

use serde::Deserialize;

#[cfg(test)]
use crate::calendar::days_from_civil;
use crate::calendar::unix_seconds;
use crate::model::DatedBytes;

/// The parts of a vnstat document the bridge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnstatReport {
    pub vnstat_version: Option<String>,
    pub json_version: u32,
    pub interfaces: Vec<VnstatInterface>,
    /// An alias broke the JSON (vnstat prints it unescaped) and was repaired before parsing.
    pub repaired_alias: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnstatInterface {
    pub name: String,
    pub alias: String,
    /// When the interface was added to the database, as a date: if it changes, the totals
    /// restarted. The date (not the 2.10+ timestamp) so that upgrading vnstat is not a restart.
    pub created: String,
    /// Time of the last save included in the totals, in ms. From `timestamp` (2.10+), else from
    /// the local date and time read as if it were UTC: only differences are used.
    pub updated_ms: i64,
    /// All-time bytes received.
    pub rx: u64,
    /// All-time bytes sent.
    pub tx: u64,
    /// The `day` table's entries, oldest first; `None`: the document has no day table (its
    /// mode was not `d`, `a` or `s`).
    pub days: Option<Vec<DatedBytes>>,
    /// The `month` table's entries (named by their first day), oldest first.
    pub months: Option<Vec<DatedBytes>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("vnstat printed no JSON: {0}")]
    NotJson(String),
    #[error("vnstat JSON is not in a known shape: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct RawDoc {
    vnstatversion: Option<String>,
    jsonversion: RawVersion,
    interfaces: Vec<RawInterface>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVersion {
    Text(String),
    Number(u32),
}

#[derive(Deserialize)]
struct RawInterface {
    /// jsonversion 2.
    name: Option<String>,
    /// jsonversion 1 calls the name `id` and the alias `nick`.
    id: Option<String>,
    #[serde(alias = "nick")]
    alias: Option<String>,
    created: RawStamp,
    updated: RawStamp,
    traffic: RawTraffic,
}

#[derive(Deserialize)]
struct RawStamp {
    date: RawDate,
    time: Option<RawTime>,
    timestamp: Option<i64>,
}

#[derive(Deserialize)]
struct RawDate {
    year: i64,
    month: u32,
    day: u32,
}

#[derive(Deserialize)]
struct RawTime {
    hour: u32,
    /// jsonversion 1 spells it `minutes`.
    #[serde(alias = "minutes")]
    minute: u32,
}

#[derive(Deserialize)]
struct RawTraffic {
    total: RawTotal,
    /// jsonversion 1 calls them `days` and `months`.
    #[serde(default, alias = "days")]
    day: Option<Vec<RawEntry>>,
    #[serde(default, alias = "months")]
    month: Option<Vec<RawEntry>>,
}

/// One entry of the `day` or `month` table (a month's date has no day).
#[derive(Deserialize)]
struct RawEntry {
    date: RawEntryDate,
    rx: u64,
    tx: u64,
}

#[derive(Deserialize)]
struct RawEntryDate {
    year: i64,
    month: i64,
    day: Option<i64>,
}

/// The entries as dated bytes, oldest first; one with an impossible date is left out.
fn entries(raw: Vec<RawEntry>, unit: u64) -> Vec<DatedBytes> {
    let mut out: Vec<DatedBytes> = raw
        .into_iter()
        .filter_map(|e| {
            Some(DatedBytes {
                date: jiff::civil::Date::new(
                    i16::try_from(e.date.year).ok()?,
                    i8::try_from(e.date.month).ok()?,
                    i8::try_from(e.date.day.unwrap_or(1)).ok()?,
                )
                .ok()?,
                rx: e.rx.saturating_mul(unit),
                tx: e.tx.saturating_mul(unit),
            })
        })
        .collect();
    // jsonversion 1 lists the newest first; 2 the oldest.
    out.sort_by_key(|e| e.date);
    out
}

#[derive(Deserialize)]
struct RawTotal {
    rx: u64,
    tx: u64,
}

pub fn parse(text: &str) -> Result<VnstatReport, ParseError> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return Err(ParseError::NotJson(first_line(trimmed)));
    }
    let (doc, repaired_alias) = match serde_json::from_str::<RawDoc>(trimmed) {
        Ok(doc) => (doc, false),
        Err(first_error) => {
            let repaired = repair_aliases(trimmed).ok_or_else(|| describe(&first_error, trimmed))?;
            let doc = serde_json::from_str::<RawDoc>(&repaired).map_err(|_| describe(&first_error, trimmed))?;
            (doc, true)
        }
    };
    let json_version = match doc.jsonversion {
        RawVersion::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| ParseError::Shape(format!("jsonversion `{t}`")))?,
        RawVersion::Number(n) => n,
    };
    // jsonversion 1 (vnStat 1.x) counts KiB.
    let unit: u64 = if json_version == 1 { 1024 } else { 1 };
    let interfaces = doc
        .interfaces
        .into_iter()
        .map(|raw| {
            let name = raw
                .name
                .or(raw.id)
                .ok_or_else(|| ParseError::Shape("an interface has no name".into()))?;
            Ok(VnstatInterface {
                alias: raw.alias.unwrap_or_default(),
                created: format!(
                    "{:04}-{:02}-{:02}",
                    raw.created.date.year, raw.created.date.month, raw.created.date.day
                ),
                updated_ms: stamp_ms(&raw.updated)
                    .ok_or_else(|| ParseError::Shape(format!("`updated` of {name} is not a valid date")))?,
                rx: raw.traffic.total.rx.saturating_mul(unit),
                tx: raw.traffic.total.tx.saturating_mul(unit),
                days: raw.traffic.day.map(|d| entries(d, unit)),
                months: raw.traffic.month.map(|m| entries(m, unit)),
                name,
            })
        })
        .collect::<Result<Vec<_>, ParseError>>()?;
    Ok(VnstatReport {
        vnstat_version: doc.vnstatversion,
        json_version,
        interfaces,
        repaired_alias,
    })
}

fn describe(error: &serde_json::Error, text: &str) -> ParseError {
    if error.is_syntax() || error.is_eof() {
        // vnstat ≤ 2.11 can print an error line in the middle of its JSON; show where it broke.
        let line = text.lines().nth(error.line().saturating_sub(1)).unwrap_or("");
        let start = error.column().saturating_sub(40);
        let excerpt: String = line.chars().skip(start).take(80).collect();
        ParseError::NotJson(format!("{error} near `{excerpt}`"))
    } else {
        ParseError::Shape(error.to_string())
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("(empty output)");
    line.trim().chars().take(200).collect()
}

/// vnstat prints the alias with a plain `printf("%s")`, so `"` or `\` in it break the JSON.
/// The alias is always followed by `","created":{`, which lets us find where it really ends
/// and escape it properly.
fn repair_aliases(text: &str) -> Option<String> {
    const END: &str = "\",\"created\":{";
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    let mut changed = false;
    loop {
        let start = ["\"alias\":\"", "\"nick\":\""]
            .iter()
            .filter_map(|key| rest.find(key).map(|pos| (pos, key.len())))
            .min();
        let Some((pos, key_len)) = start else { break };
        let value_start = pos + key_len;
        let value_len = rest[value_start..].find(END)?;
        let raw = &rest[value_start..value_start + value_len];
        out.push_str(&rest[..pos + key_len - 1]);
        let escaped = serde_json::to_string(raw).ok()?;
        changed |= escaped.len() != raw.len() + 2;
        out.push_str(&escaped);
        rest = &rest[value_start + value_len + 1..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

fn stamp_ms(stamp: &RawStamp) -> Option<i64> {
    if let Some(ts) = stamp.timestamp {
        return Some(ts.saturating_mul(1000));
    }
    let d = &stamp.date;
    if !(1..=12).contains(&d.month) || !(1..=31).contains(&d.day) {
        return None;
    }
    let (hour, minute) = stamp.time.as_ref().map(|t| (t.hour, t.minute)).unwrap_or((0, 0));
    if hour > 23 || minute > 59 {
        return None;
    }
    let secs = unix_seconds(d.year, d.month, d.day, i64::from(hour) * 3600 + i64::from(minute) * 60)?;
    secs.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vnstat/");
        std::fs::read_to_string(format!("{path}{name}")).unwrap()
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        // 2026-11-24 22:26 UTC = 1795559160 in the 2.10 fixtures.
        assert_eq!(
            days_from_civil(2026, 11, 24) * 86_400 + 22 * 3600 + 26 * 60,
            1_795_559_160
        );
    }

    #[test]
    fn v2_10_with_timestamps() {
        let r = parse(&fixture("json-f-1.json")).unwrap();
        assert_eq!((r.json_version, r.vnstat_version.as_deref()), (2, Some("2.10")));
        let names: Vec<_> = r.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "ifb0", "ifb1"]);
        let eth0 = &r.interfaces[0];
        assert_eq!((eth0.rx, eth0.tx), (720_864_692, 1_105_100));
        assert_eq!(eth0.updated_ms, 1_795_559_160_000);
        assert_eq!(eth0.created, "2026-11-24");
        assert!(!r.repaired_alias);
    }

    #[test]
    fn v2_9_without_timestamps_gives_the_same_numbers() {
        let old = parse(&fixture("v2.9/json-f-eth0.json")).unwrap();
        let new = parse(&fixture("json-f-1.json")).unwrap();
        assert_eq!(old.interfaces[0].rx, new.interfaces[0].rx);
        assert_eq!(old.interfaces[0].created, new.interfaces[0].created);
        // The naive local time of the 2.9 client equals the UTC timestamp here (host in UTC).
        assert_eq!(old.interfaces[0].updated_ms, new.interfaces[0].updated_ms);
    }

    // Issue 8 item 9: a huge year overflowed the millisecond arithmetic (a wrapped timestamp).
    #[test]
    fn a_huge_year_is_an_invalid_date_not_an_overflow() {
        let text = fixture("v2.9/json-f-eth0.json");
        let stamp = r#""updated":{"date":{"year":2026,"#;
        assert!(text.contains(stamp));
        for year in ["9223372036854775807", "-9223372036854775807", "300000000000000"] {
            let bad = text.replace(stamp, &format!(r#""updated":{{"date":{{"year":{year},"#));
            assert!(
                matches!(parse(&bad), Err(ParseError::Shape(m)) if m.contains("not a valid date")),
                "year {year}"
            );
        }
    }

    #[test]
    fn v1_18_is_kib_and_uses_other_keys() {
        let r = parse(&fixture("v1.18/json.json")).unwrap();
        assert_eq!(r.json_version, 1);
        let eth0 = r.interfaces.iter().find(|i| i.name == "eth0").unwrap();
        assert_eq!((eth0.rx, eth0.tx), (148_642 * 1024, 302 * 1024));
        assert_eq!(
            eth0.updated_ms,
            (days_from_civil(2026, 11, 24) * 86_400 + 22 * 3600 + 25 * 60) * 1000
        );
    }

    #[test]
    fn every_valid_2x_capture_parses() {
        for name in [
            "json.json",
            "json-f.json",
            "json-h.json",
            "json-d.json",
            "json-m.json",
            "json-y.json",
            "json-t.json",
            "json-s.json",
            "json-d-3.json",
            "json-f-3.json",
            "json-i-eth0.json",
            "json-h-i-ifb0.json",
            "json-d-merged-eth0+ifb0.json",
            "nodata-json.json",
            "nodata-json-eth0.json",
            "nodata-json-lo-just-added.json",
            "v2.9/json.json",
            "v2.9/json-d-eth0.json",
            "v1.18/json-i-eth0.json",
            "v1.18/json-h-eth0.json",
            "v1.18/json-d-eth0.json",
            "v1.18/json-m-eth0.json",
            "v1.18/json-t-eth0.json",
        ] {
            let r = parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!r.interfaces.is_empty(), "{name}");
        }
        let merged = parse(&fixture("json-d-merged-eth0+ifb0.json")).unwrap();
        assert_eq!(merged.interfaces[0].name, "eth0+ifb0");
        let nodata = parse(&fixture("nodata-json.json")).unwrap();
        assert!(nodata.interfaces.iter().all(|i| i.rx == 0 && i.tx == 0));
    }

    #[test]
    fn day_and_month_tables_are_read_in_bytes_oldest_first() {
        let day = |y, m, d| jiff::civil::date(y, m, d);
        let r = parse(&fixture("json-d.json")).unwrap();
        let eth0 = &r.interfaces[0];
        let days = eth0.days.as_deref().unwrap();
        assert_eq!(
            days.iter().map(|e| (e.date, e.rx, e.tx)).collect::<Vec<_>>(),
            [(day(2026, 11, 24), 720_864_692, 1_105_100)]
        );
        assert!(eth0.months.is_none(), "mode d has no month table");
        let m = parse(&fixture("json-m.json")).unwrap();
        let months = m.interfaces[0].months.as_deref().unwrap();
        assert_eq!(months.last().map(|e| e.date), Some(day(2026, 11, 1)));
        assert!(parse(&fixture("json-f-1.json")).unwrap().interfaces[0].days.is_none());
        // jsonversion 1: `days`, KiB.
        let old = parse(&fixture("v1.18/json-d-eth0.json")).unwrap();
        let days = old.interfaces[0].days.as_deref().unwrap();
        assert_eq!((days[0].rx, days[0].tx), (148_642 * 1024, 302 * 1024));
    }

    #[test]
    fn repairs_an_alias_with_quotes_and_backslashes() {
        let r = parse(&fixture("alias-with-quote-json-eth0-INVALID-JSON.json")).unwrap();
        assert!(r.repaired_alias);
        assert_eq!(r.interfaces[0].alias, r#"WAN "fibre" \ uplink"#);
        assert_eq!(r.interfaces[0].rx, 567_016_279);
    }

    #[test]
    fn error_texts_are_not_json() {
        for name in [
            "err-noiface-json.txt",
            "err-nodbdir-json.txt",
            "err-emptydb-json.txt",
            "err-emptydbdir-json.txt",
            "err-lo-notindb-json.txt",
            "err-json-single-digit-limit.txt",
            "v1.18/err-nodb-json.txt",
            "v1.18/err-noiface-json.txt",
            "v2.9/err-json-s-unsupported.txt",
        ] {
            match parse(&fixture(name)) {
                Err(ParseError::NotJson(msg)) => assert!(!msg.is_empty(), "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let ParseError::NotJson(msg) = parse(&fixture("v1.18/err-nodb-json.txt")).unwrap_err() else {
            panic!()
        };
        assert!(msg.starts_with("No database found"), "{msg}");
    }

    #[test]
    fn truncated_or_interrupted_json_is_an_error() {
        let full = fixture("json-f-1.json");
        assert!(parse(&full[..full.len() / 2]).is_err());
        let broken = full.replacen("\"traffic\"", "Error: Failed to fetch fiveminute data.\n\"traffic\"", 1);
        assert!(matches!(parse(&broken), Err(ParseError::NotJson(_))));
        assert!(parse(r#"{"jsonversion":"2","interfaces":[{"name":"x"}]}"#).is_err());
    }
}
