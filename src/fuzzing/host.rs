//! The bridge host's own inputs: `vnstat --json` output and `/proc/net/dev`.

use crate::config::VnstatSettings;
use crate::model::TrafficSample;
use crate::sources::host::parse_proc_net_dev;
use crate::sources::vnstat::{VnstatSource, parse};

/// `vnstat --json` (1.x and 2.x), then the source's turn of the report into an observation.
pub fn vnstat_json(data: &[u8]) {
    let text = super::lossy(data);
    let Ok(report) = parse(&text) else { return };
    let interfaces = report.interfaces.len();
    let mut source = VnstatSource::new("fuzz", &VnstatSettings::default(), 1);
    let Ok(obs) = source.observe(report) else { return };
    assert_eq!(obs.traffic.len(), interfaces, "every interface becomes one reading");
    for reading in &obs.traffic {
        assert!(matches!(reading.sample, TrafficSample::Counter(_)));
    }
}

/// `/proc/net/dev`: every line is either read or reported by name, never silently lost.
pub fn proc_net_dev(data: &[u8]) {
    let text = super::lossy(data);
    let Ok((counters, bad)) = parse_proc_net_dev(&text) else {
        return;
    };
    let lines = text.lines().skip(2).filter(|l| !l.trim().is_empty()).count();
    assert_eq!(counters.len() + bad.len(), lines, "a line went missing");
    for c in &counters {
        assert!(!c.name.is_empty());
    }
}
