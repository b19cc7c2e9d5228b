//! vnstat's own day and month tables, read at the server's first poll and after an outage
//! (design.md "Right from the first poll"), so today, yesterday, this month and last month show
//! what vnstat counted, not what the bridge saw since it started.
//!
//! The configured command is run with its `--json` mode and limit replaced; existing
//! configurations need no new key. Which tables:
//! - billing months from the 1st (the default): `--json d 2` (today, yesterday) and
//!   `--json m 2` (this month, last month): vnstat's own entries, exactly as it counted them;
//! - `month_start_day` ≠ 1: vnstat's months are calendar months, so the billing months are
//!   summed from days: `--json d 63` reaches back to the start of the previous billing month
//!   (at most 62 days before today; vnstat keeps 62 days by default). When vnstat holds fewer
//!   days than that, the figures say from when they are whole (`since_s`).
//!
//! The day run's document also carries the totals: it is the poll's counter reading, so the
//! history and the counter come from one database state. The month run must show the same
//! `updated` for every interface (no save in between), else the history waits for the next poll.

use jiff::civil::Date;

use super::json::VnstatReport;
use crate::calendar::unix_seconds;
use crate::model::{DatedBytes, History};

/// Days asked for when billing months are summed from days.
pub const DAYS_FOR_BILLING_MONTHS: u32 = 63;

/// Modes a single-letter argument after `--json` can be (vnstat.md §2.1).
const MODES: [&str; 8] = ["a", "s", "f", "h", "d", "m", "y", "t"];

/// `argv` with the mode and limit after `--json` replaced by `mode limit`; `None` when the
/// command has no `--json` (a wrapper script: then it has no history to offer). The flag may be
/// an argument of its own or a word in one (`ssh host "vnstat --json f 1"`, `sh -c "…"`).
pub fn with_mode(argv: &[String], mode: &str, limit: u32) -> Option<Vec<String>> {
    if let Some(at) = argv.iter().position(|a| a == "--json") {
        let mut out: Vec<String> = argv[..=at].to_vec();
        let rest = replace_after(&argv[at + 1..], mode, limit);
        out.extend(rest);
        return Some(out);
    }
    let at = argv.iter().position(|a| a.split(' ').any(|w| w == "--json"))?;
    let words: Vec<String> = argv[at].split(' ').map(str::to_owned).collect();
    let flag = words.iter().position(|w| w == "--json")?;
    let mut rewritten: Vec<String> = words[..=flag].to_vec();
    rewritten.extend(replace_after(&words[flag + 1..], mode, limit));
    let mut out = argv.to_vec();
    out[at] = rewritten.join(" ");
    Some(out)
}

/// The arguments after `--json`: an optional mode letter and limit dropped, `mode limit` put first,
/// and a `--limit N` elsewhere set to `limit` too.
fn replace_after(rest: &[String], mode: &str, limit: u32) -> Vec<String> {
    let mut skip = 0;
    if rest.first().is_some_and(|a| MODES.contains(&a.as_str())) {
        skip = 1;
        if rest
            .get(1)
            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
        {
            skip = 2;
        }
    }
    let mut out = vec![mode.to_owned(), limit.to_string()];
    let mut iter = rest[skip..].iter();
    while let Some(a) = iter.next() {
        out.push(a.clone());
        if a == "--limit" && iter.next().is_some() {
            out.push(limit.to_string());
        }
    }
    out
}

/// The server's history from the day run (and the month run, if any), over the interfaces it
/// publishes (`wanted`: every one when `None`), summed like its headline.
pub fn history(
    days: &VnstatReport,
    months: Option<&VnstatReport>,
    wanted: Option<&[String]>,
    asked_days: u32,
) -> History {
    let kept = |name: &str| wanted.is_none_or(|w| w.iter().any(|n| n == name));
    let mut h = History::default();
    let mut since: Option<i64> = None;
    for iface in days.interfaces.iter().filter(|i| kept(&i.name)) {
        let entries = iface.days.as_deref().unwrap_or_default();
        add_all(&mut h.days, entries);
        // The interface was added to vnstat then: nothing before it is known.
        since = since.max(date_seconds(&iface.created));
        // A full table may not reach back as far as asked: whole from its oldest day.
        if entries.len() >= asked_days as usize
            && let Some(oldest) = entries.first()
        {
            since = since.max(unix_seconds(
                i64::from(oldest.date.year()),
                oldest.date.month() as u32,
                oldest.date.day() as u32,
                0,
            ));
        }
    }
    for iface in months
        .iter()
        .flat_map(|m| m.interfaces.iter())
        .filter(|i| kept(&i.name))
    {
        add_all(&mut h.months, iface.months.as_deref().unwrap_or_default());
    }
    h.since_s = since;
    h
}

/// Whether every interface kept has the table (`months`: the month table, else the day's).
pub fn has_tables(report: &VnstatReport, wanted: Option<&[String]>, months: bool) -> bool {
    report
        .interfaces
        .iter()
        .filter(|i| wanted.is_none_or(|w| w.iter().any(|n| n == &i.name)))
        .all(|i| if months { i.months.is_some() } else { i.days.is_some() })
}

/// Whether the month run saw the same saves as the day run.
pub fn same_state(days: &VnstatReport, months: &VnstatReport) -> bool {
    days.interfaces.len() == months.interfaces.len()
        && days
            .interfaces
            .iter()
            .zip(&months.interfaces)
            .all(|(d, m)| d.name == m.name && d.updated_ms == m.updated_ms && d.rx == m.rx && d.tx == m.tx)
}

fn add_all(into: &mut Vec<DatedBytes>, entries: &[DatedBytes]) {
    for e in entries {
        match into.iter_mut().find(|x| x.date == e.date) {
            Some(x) => {
                x.rx = x.rx.saturating_add(e.rx);
                x.tx = x.tx.saturating_add(e.tx);
            }
            None => into.push(*e),
        }
    }
    into.sort_by_key(|e| e.date);
}

/// A `YYYY-MM-DD` date (vnstat's `created`) as the Unix seconds of its midnight, read as UTC:
/// vnstat prints local dates, and only the date matters to a day period.
fn date_seconds(text: &str) -> Option<i64> {
    let d: Date = text.parse().ok()?;
    unix_seconds(i64::from(d.year()), d.month() as u32, d.day() as u32, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_mode_and_limit_are_replaced_wherever_json_is() {
        let cases = [
            ("vnstat --json f 1", "vnstat --json d 2"),
            ("vnstat --json", "vnstat --json d 2"),
            ("vnstat --json f 1 -i eth0", "vnstat --json d 2 -i eth0"),
            ("vnstat --json s", "vnstat --json d 2"),
            ("vnstat -i eth0+eth1 --json f 1", "vnstat -i eth0+eth1 --json d 2"),
            ("vnstat --json f --limit 1", "vnstat --json d 2 --limit 2"),
        ];
        for (from, to) in cases {
            assert_eq!(with_mode(&args(from), "d", 2), Some(args(to)), "{from}");
        }
        let ssh = vec![
            "ssh".to_owned(),
            "beast".to_owned(),
            "vnstat --json f 1 -i eth0".to_owned(),
        ];
        assert_eq!(
            with_mode(&ssh, "m", 2).unwrap()[2],
            "vnstat --json m 2 -i eth0",
            "a remote command in one argument"
        );
        assert_eq!(with_mode(&args("sh /opt/fake-vnstat /tmp/x"), "d", 2), None);
    }
}
