//! ASUS router replies (shared/protocols/asus.md): `appGet.cgi` hook JSON, the JavaScript
//! pages, `uptime()`, and the Traffic Analyzer pages.

use serde_json::Value;

use crate::config::AsusSettings;
use crate::model::TrafficSample;
use crate::sources::asus::reply::PollReply;
use crate::sources::asus::{AsusSource, hookjson, js, parse, traffic_analyzer};

/// The hook-JSON repair alone: valid JSON must come through unchanged.
pub fn asus_hookjson(data: &[u8]) {
    let text = super::lossy(data);
    let parsed = hookjson::parse_object(&text);
    if let Ok(Value::Object(plain)) = serde_json::from_str::<Value>(&text) {
        assert_eq!(parsed.as_ref().ok(), Some(&plain), "clean() changed valid JSON");
    }
    if let Ok(map) = parsed {
        for key in map.keys() {
            let _ = hookjson::text(&map, key);
        }
    }
}

/// One whole `appGet.cgi` poll reply through the source (netdev, CPU, memory, uptime, client
/// list, identity). A NUL byte splits the input into two consecutive replies, so the CPU
/// difference between polls is exercised too.
pub fn asus_appget(data: &[u8]) {
    let (first, second) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let cfg = AsusSettings {
        url: "http://127.0.0.1:9".into(),
        verify_tls: false,
        traffic_analyzer: false,
        ..AsusSettings::default()
    };
    let mut source = AsusSource::new("fuzz", &cfg);
    for (i, part) in std::iter::once(first).chain(second).enumerate() {
        let text = super::lossy(part);
        // The typed reading of the poll and the tree reading agree on every input (issue 11).
        let typed = PollReply::parse(&text);
        let tree = hookjson::parse_object(&text).map(|map| PollReply::from_tree(&map));
        assert_eq!(
            format!("{typed:?}"),
            format!("{tree:?}"),
            "typed and tree readings differ"
        );
        let Ok(observations) = source.interpret(&text, 1_700_000_000_000 + i as i64 * 30_000) else {
            continue;
        };
        for obs in &observations {
            for metric in &obs.metrics {
                if let Some(v) = metric.value {
                    assert!(v.is_finite(), "{} = {v}", metric.key);
                }
            }
            for reading in &obs.traffic {
                if let TrafficSample::Rate(r) = &reading.sample {
                    assert!(r.rx_bps.is_finite() && r.tx_bps.is_finite());
                }
            }
        }
    }
}

/// The JavaScript literal extractor and the pages read through it: the client list of
/// `update_clients.asp`, `ajax_coretmp.asp` temperatures, `ajax_onboarding.asp` mesh nodes.
pub fn asus_js(data: &[u8]) {
    let text = super::lossy(data);
    // The first line names the variable to look for; the rest is the page.
    let (name, page) = text.split_once('\n').unwrap_or(("", &text));
    if !name.is_empty()
        && let Some(literal) = js::value(page, name)
    {
        assert!(page.contains(literal), "the literal is a slice of the page");
    }
    let _ = js::value(&text, "fromNetworkmapd");
    if let Some(list) = parse::clients_from_update_page(&text) {
        let _ = parse::clients(&list);
    }
    for t in parse::temperatures(&text) {
        assert!(t.celsius.is_finite() && t.celsius > 0.0 && t.celsius <= 200.0, "{t:?}");
    }
    let _ = parse::mesh_nodes(&text);
}

/// `uptime()`: seconds since boot and the router's own clock.
pub fn asus_uptime(data: &[u8]) {
    let text = super::lossy(data);
    let _ = parse::uptime_secs(&text);
    let _ = parse::router_time(&text);
}

/// Traffic Analyzer pages (`getWanTraffic.asp` and friends): the `array_statistics` literal,
/// and the 24 hour buckets of a window. The first 8 bytes are the window's `date`.
pub fn asus_traffic_analyzer(data: &[u8]) {
    let (date, page) = match data.split_first_chunk::<8>() {
        Some((date, rest)) => (i64::from_le_bytes(*date), rest),
        None => (1_700_000_000, data),
    };
    let text = super::lossy(page);
    let _ = traffic_analyzer::statistics(&text);
    if let Some(buckets) = traffic_analyzer::hour_buckets(&text, date, crate::sources::asus::row_stamps::RowStamps::End)
    {
        assert_eq!(buckets.len(), 24);
        for pair in buckets.windows(2) {
            assert!(pair[0].start_s < pair[1].start_s, "buckets are in order");
        }
    }
}

/// `getTraffic.asp` (live per-client counters) through the parser, the counter-epoch rules
/// (reboot, engine restart, 32-bit wrap) and into a ledger, over up to eight consecutive
/// replies split by NUL bytes. A reply that starts with `#reboot` is read after a router
/// reboot. Clients are those of the first reply's list (later new MACs are unknown ones).
/// Invariants: no client total ever goes down, and the ledger's state survives the state file.
pub fn asus_live(data: &[u8]) {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use crate::accounting::{Ledger, PersistedState};
    use crate::model::{DeviceId, DeviceKind, Observation, TrafficReading};
    use crate::sources::SourceKind;
    use crate::sources::asus::{live::LiveCounters, live_parse};

    let replies: Vec<_> = data.split(|b| *b == 0).take(8).map(super::lossy).collect();
    let known: BTreeSet<_> = replies
        .first()
        .and_then(|first| live_parse::parse(first).entries)
        .unwrap_or_default()
        .iter()
        .map(|e| e.mac)
        .collect();
    let mut live = LiveCounters::new("fuzz", DeviceId::slugify_or_unnamed("router"));
    let mut ledger = Ledger::new(
        vec![SourceKind::Asus.feed("asus")],
        PersistedState::default(),
        BTreeMap::new(),
    );
    let mut booted_at = 1_700_000_000_i64;
    let mut highest: BTreeMap<DeviceId, (u64, u64)> = BTreeMap::new();
    for (poll, text) in replies.iter().enumerate() {
        let poll = poll as i64;
        if text.starts_with("#reboot") {
            booted_at += 3_600 * (poll + 1);
        }
        let clock_s = 1_700_003_600 + poll * 30;
        let at_ms = 1_700_000_000_000 + poll * 30_000;
        let samples = live.interpret(text, &known, Some(booted_at), clock_s, Duration::from_secs(30), at_ms);
        let observations = samples
            .into_iter()
            .map(|(mac, sample)| {
                assert!(known.contains(&mac), "{mac} is not in the client list");
                let mut obs = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
                obs.info.macs.push(mac);
                obs.traffic.push(TrafficReading {
                    interface: None,
                    sample: TrafficSample::Live(sample),
                });
                obs
            })
            .collect();
        ledger.apply("asus", observations, at_ms);
        for device in ledger.devices() {
            let totals = device.totals;
            let seen = highest.entry(device.id.clone()).or_default();
            assert!(
                totals.rx >= seen.0 && totals.tx >= seen.1,
                "{}: total went down from {seen:?} to {totals:?}",
                device.id
            );
            *seen = (totals.rx, totals.tx);
        }
    }
    super::state::survives_state_file(&ledger.to_persisted());
}
