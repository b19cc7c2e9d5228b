//! `getTraffic.asp` (asus.md §5): `array_traffic = [["MAC", tx, rx], …];` and
//! `router_traffic = [tx, rx];`, running byte counters of the DPI engine. Parsed entry by entry
//! so that one bad entry, or a reply cut short, costs only what is bad.

use std::collections::BTreeMap;

use crate::model::MacAddr;

/// What can be wrong with an entry; each kind is logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BadKind {
    /// Not `[mac, tx, rx]`: wrong shape, unreadable MAC, stray text.
    Garbage,
    /// The array ends in the middle of an entry (a reply cut short).
    Truncated,
    /// A counter that is not a number.
    NonNumeric,
    /// A counter below zero.
    Negative,
    /// A MAC that the client list does not show.
    UnknownMac,
    /// A MAC listed more than once with different counters, none of which continues what we
    /// last read (live_table.rs).
    Duplicate,
}

impl BadKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Garbage => "entries that are not [MAC, upload, download]",
            Self::Truncated => "the list is cut off in the middle of an entry",
            Self::NonNumeric => "counters that are not numbers",
            Self::Negative => "negative counters",
            Self::UnknownMac => "MACs that are not in the client list",
            Self::Duplicate => "MACs listed twice with different counters (skipped this poll)",
        }
    }
}

/// One client's counters: `rx` = what it downloaded, `tx` = what it uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub mac: MacAddr,
    pub rx: u64,
    pub tx: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// `None`: no `array_traffic` list at all.
    pub entries: Option<Vec<Entry>>,
    /// The router's own `[rx, tx]` (`router_traffic` is `[tx, rx]` like the entries).
    pub router: Option<[u64; 2]>,
    /// Skipped entries by kind, with one example each.
    pub bad: BTreeMap<BadKind, (usize, String)>,
}

impl Reply {
    fn skip(&mut self, kind: BadKind, example: &str) {
        let slot = self.bad.entry(kind).or_insert((0, example.chars().take(60).collect()));
        slot.0 += 1;
    }
}

/// The text after the last `name =` that starts a list.
fn list_after<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut found = None;
    let mut from = 0;
    while let Some(pos) = text[from..].find(name) {
        let start = from + pos;
        from = start + name.len();
        let before_ok = start == 0 || !text[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let rest = text[from..].trim_start();
        if before_ok && let Some(value) = rest.strip_prefix('=') {
            let value = value.trim_start();
            if value.starts_with('[') {
                found = Some(value);
            }
        }
    }
    found
}

pub fn parse(text: &str) -> Reply {
    let mut reply = Reply::default();
    if let Some(list) = list_after(text, "router_traffic") {
        let end = list.find(']').unwrap_or(list.len());
        let fields: Vec<&str> = list[1..end].split(',').map(str::trim).collect();
        if let [tx, rx] = fields[..]
            && let (Ok(Some(tx)), Ok(Some(rx))) = (number(tx), number(rx))
        {
            reply.router = Some([rx, tx]);
        }
    }
    let Some(list) = list_after(text, "array_traffic") else {
        return reply;
    };
    let mut entries = Vec::new();
    let mut rest = &list[1..];
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            // The list was never closed: the reply was cut short.
            reply.skip(BadKind::Truncated, "");
            break;
        }
        if rest.starts_with(']') {
            break;
        }
        if !rest.starts_with('[') {
            // Stray text: skip to the next entry or the end of the list.
            let next = rest.find(['[', ']']).unwrap_or(rest.len());
            reply.skip(BadKind::Garbage, &rest[..next]);
            rest = &rest[next..];
            continue;
        }
        let Some(close) = rest.find(']') else {
            reply.skip(BadKind::Truncated, rest);
            break;
        };
        let inner = &rest[1..close];
        rest = &rest[close + 1..];
        if inner.contains('[') {
            reply.skip(BadKind::Garbage, inner);
            continue;
        }
        match entry(inner) {
            Ok(e) => entries.push(e),
            Err(kind) => reply.skip(kind, inner),
        }
    }
    reply.entries = Some(entries);
    reply
}

fn entry(inner: &str) -> Result<Entry, BadKind> {
    let fields: Vec<&str> = inner.split(',').map(str::trim).collect();
    let [mac, tx, rx] = fields[..] else {
        return Err(BadKind::Garbage);
    };
    let mac: MacAddr = mac.trim_matches(['"', '\'']).parse().map_err(|_| BadKind::Garbage)?;
    let tx = number(tx)?.ok_or(BadKind::Negative)?;
    let rx = number(rx)?.ok_or(BadKind::Negative)?;
    Ok(Entry { mac, rx, tx })
}

/// A counter: digits, possibly quoted. `Ok(None)` for a negative number.
fn number(field: &str) -> Result<Option<u64>, BadKind> {
    let digits = field.trim_matches(['"', '\'']).trim();
    if let Some(negative) = digits.strip_prefix('-') {
        return if !negative.is_empty() && negative.bytes().all(|b| b.is_ascii_digit()) {
            Ok(None)
        } else {
            Err(BadKind::NonNumeric)
        };
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadKind::NonNumeric);
    }
    // More than 20 digits cannot be a byte count.
    digits.parse::<u64>().map(Some).map_err(|_| BadKind::NonNumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "var array_traffic = new Array();\narray_traffic = [[\"02:1A:11:00:00:00\",1200,34000],[\"02:1a:11:00:00:01\",\"5\",\"7\"]];\nvar router_traffic = new Array();\nrouter_traffic = [99,1000];\n";

    #[test]
    fn reads_entries_and_the_router_pair() {
        let r = parse(PAGE);
        let entries = r.entries.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].tx, entries[0].rx), (1200, 34000));
        assert_eq!(entries[1].mac, "02:1a:11:00:00:01".parse().unwrap());
        assert_eq!((entries[1].tx, entries[1].rx), (5, 7));
        assert_eq!(r.router, Some([1000, 99]));
        assert!(r.bad.is_empty());
    }

    #[test]
    fn empty_and_missing_lists() {
        assert_eq!(
            parse("var array_traffic = new Array();\narray_traffic = [];\n").entries,
            Some(vec![])
        );
        assert_eq!(parse("File not found.").entries, None);
        assert_eq!(parse("var array_traffic = new Array();\n").entries, None);
    }

    #[test]
    fn each_bad_entry_is_skipped_by_kind_and_the_rest_is_used() {
        let page = "array_traffic = [[\"02:1a:11:00:00:00\",1,2],[\"zz\",1,2],[\"02:1a:11:00:00:01\",\"x\",2],\
                    [\"02:1a:11:00:00:02\",-5,2],garbage,[\"02:1a:11:00:00:03\",3],[\"02:1a:11:00:00:04\",7,8],[\"02:1a:11:00:0";
        let r = parse(page);
        let macs: Vec<String> = r.entries.unwrap().iter().map(|e| e.mac.to_string()).collect();
        assert_eq!(macs, ["02:1a:11:00:00:00", "02:1a:11:00:00:04"]);
        assert_eq!(r.bad[&BadKind::Garbage].0, 3, "{:?}", r.bad);
        assert_eq!(r.bad[&BadKind::NonNumeric].0, 1);
        assert_eq!(r.bad[&BadKind::Negative].0, 1);
        assert_eq!(r.bad[&BadKind::Truncated].0, 1);
        // Numbers too long for a counter, and binary junk.
        let r = parse("array_traffic = [[\"02:1a:11:00:00:00\",123456789012345678901234,2]]");
        assert_eq!(r.bad[&BadKind::NonNumeric].0, 1);
        let r = parse("array_traffic = [\u{0}\u{7f}<<{{{");
        assert!(r.entries.unwrap().is_empty());
        assert!(!r.bad.is_empty());
    }
}
