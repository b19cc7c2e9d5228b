//! The discovery payloads are a contract with Home Assistant: `ha-discovery/` holds the golden
//! files (reviewable, and documentation for users); this test fails when the code's output
//! differs. `BLESS=1 cargo test --test discovery_golden` rewrites them after a deliberate change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bandwidth2mqtt::accounting::{Ledger, PersistedState};
use bandwidth2mqtt::config::MqttSettings;
use bandwidth2mqtt::model::{
    CounterSample, DeviceId, DeviceKind, Observation, TrafficReading, TrafficSample, WrapRule,
};
use bandwidth2mqtt::publish::discovery::{Context, EntityConfig};
use bandwidth2mqtt::publish::{Topics, state};
use bandwidth2mqtt::sources::SourceKind;
use serde_json::Value;

const VERSION_PLACEHOLDER: &str = "<version>";
const CLOCK: state::StateClock = state::StateClock {
    now_ms: 1_795_559_170_000,
    consider_home_ms: 180_000,
    sources_down_ms: None,
};

fn golden_dir(group: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ha-discovery").join(group)
}

/// A server `titan` as the host source sees it: one interface, two polls 10 s apart.
fn server_ledger() -> Ledger {
    let feeds = vec![SourceKind::Host.feed("host")];
    let mut ledger = Ledger::new(feeds, PersistedState::default(), BTreeMap::new());
    for (i, (rx, tx)) in [(5_000_000_000u64, 300_000_000u64), (5_012_500_000, 300_250_000)]
        .into_iter()
        .enumerate()
    {
        let mut obs = Observation::new(DeviceId::new("titan").unwrap(), DeviceKind::Server);
        obs.info.name = Some("titan".into());
        obs.info.macs = vec!["02:00:00:00:00:01".parse().unwrap()];
        obs.info.manufacturer = Some("Linux".into());
        obs.info.model = Some("Server".into());
        obs.info.sw_version = Some("6.1.0-28-amd64".into());
        obs.online = Some(true);
        obs.traffic.push(TrafficReading {
            interface: Some("eth0".into()),
            sample: TrafficSample::Counter(CounterSample {
                rx,
                tx,
                epoch: Some("boot/2".into()),
                at_ms: 1_795_559_160_000 + i as i64 * 10_000,
                wrap: WrapRule::Maybe32 { max_bps: 1e9 },
                rate_window: Duration::from_secs(30),
            }),
        });
        ledger.apply("host", vec![obs], 1_795_559_160_000 + i as i64 * 10_000);
    }
    ledger
}

fn normalise(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) if s == env!("CARGO_PKG_VERSION") => *s = VERSION_PLACEHOLDER.into(),
            Value::Object(m) => m.values_mut().for_each(walk),
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// Compares (or with BLESS=1 writes) `files`, and fails on golden files nothing produces.
fn check_group(group: &str, files: Vec<(String, Value)>) {
    let dir = golden_dir(group);
    let bless = std::env::var("BLESS").is_ok_and(|v| v == "1");
    if bless {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut mismatches = Vec::new();
    for (name, value) in &files {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(value).unwrap() + "\n";
        if bless {
            std::fs::write(&path, text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(golden) => {
                let golden: Value = serde_json::from_str(&golden).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if &golden != value {
                    mismatches.push(format!("{name}:\n  golden: {golden}\n  actual: {value}"));
                }
            }
            Err(_) => mismatches.push(format!("{name}: no golden file (run with BLESS=1)\n  actual: {text}")),
        }
    }
    let produced: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !produced.contains(&&name) {
            mismatches.push(format!("{name}: golden file that nothing produces any more"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "discovery differs from ha-discovery/{group}:\n{}",
        mismatches.join("\n")
    );
}

fn entity_files(topics: &Topics, entities: Vec<EntityConfig>) -> Vec<(String, Value)> {
    entities
        .into_iter()
        .map(|e| {
            let name = format!("{}.{}.json", e.component, e.object);
            let doc = serde_json::json!({"topic": e.topic(topics), "payload": normalise(e.payload)});
            (name, doc)
        })
        .collect()
}

#[test]
fn server_device_discovery_matches_golden_files() {
    let topics = Topics::new(&MqttSettings::default());
    let ledger = server_ledger();
    let device = ledger.device(&DeviceId::new("titan").unwrap()).unwrap();
    let ctx = Context {
        topics: &topics,
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut files = entity_files(&topics, ctx.device_entities(device));
    // The state those entities read, for reference next to them.
    files.push((
        "state.json".into(),
        serde_json::json!({"topic": topics.device_state(&device.id), "payload": state::device_state(device, CLOCK)}),
    ));
    check_group("server", files);
}

/// An ASUS router with three clients, through the real parsing path (`interpret`) from the
/// emulator's rendering of the poll's hooks.
fn router_ledger() -> Ledger {
    use bandwidth2mqtt::config::{AsusSettings, Secret};
    use bandwidth2mqtt::emulators::asus::{AsusConfig, RouterState, app_get};
    use bandwidth2mqtt::sources::asus::{AsusSource, POLL_HOOKS};
    let settings = AsusSettings {
        url: "http://127.0.0.1:9".into(),
        password: Some(Secret::new("unused")),
        ..AsusSettings::default()
    };
    let mut source = AsusSource::new("home", &settings);
    let mut router = RouterState::new(AsusConfig {
        clients: 3,
        ..AsusConfig::default()
    });
    router.add_traffic(5_000_000_000, 700_000_000);
    let feeds = vec![SourceKind::Asus.feed("home")];
    let mut ledger = Ledger::new(feeds, PersistedState::default(), BTreeMap::new());
    let observations = source
        .interpret(&app_get(&mut router, POLL_HOOKS), CLOCK.now_ms)
        .unwrap();
    ledger.apply("home", observations, CLOCK.now_ms);
    ledger
}

#[test]
fn router_and_client_discovery_match_golden_files() {
    let topics = Topics::new(&MqttSettings::default());
    let ledger = router_ledger();
    let ctx = Context {
        topics: &topics,
        version: env!("CARGO_PKG_VERSION"),
    };
    let router = ledger.device(&DeviceId::new("home").unwrap()).unwrap();
    check_group("router", entity_files(&topics, ctx.device_entities(router)));
    let client = ledger.device(&DeviceId::new("021a11000000").unwrap()).unwrap();
    let mut files = entity_files(&topics, ctx.device_entities(client));
    files.push((
        "state.json".into(),
        serde_json::json!({"topic": topics.device_state(&client.id), "payload": state::device_state(client, CLOCK)}),
    ));
    check_group("client", files);
}

#[test]
fn bridge_device_discovery_matches_golden_files() {
    let topics = Topics::new(&MqttSettings::default());
    let ctx = Context {
        topics: &topics,
        version: env!("CARGO_PKG_VERSION"),
    };
    check_group(
        "bridge",
        entity_files(&topics, ctx.bridge_entities(&["host".to_owned()])),
    );
}

#[test]
fn every_golden_payload_obeys_home_assistant_rules() {
    // The checks of shared/protocols/ha-discovery.md §16 that a typo could break.
    let topics = Topics::new(&MqttSettings::default());
    let ctx = Context {
        topics: &topics,
        version: env!("CARGO_PKG_VERSION"),
    };
    // The household's Titan (vnstat + the Deco's estimate) stands in for the plain server.
    let mut all = ctx.bridge_entities(&["host".to_owned()]);
    let routers = router_ledger();
    for d in routers.devices() {
        all.extend(ctx.device_entities(d));
    }
    let household = merged_household();
    for d in household.devices().filter(|d| d.id.as_str() != "home") {
        all.extend(ctx.device_entities(d));
    }
    let mut unique_ids = std::collections::HashSet::new();
    for e in all {
        let p = &e.payload;
        let topic = e.topic(&topics);
        let parts: Vec<&str> = topic.split('/').collect();
        assert_eq!(parts.len(), 5, "{topic}");
        for id in &parts[2..4] {
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{topic}"
            );
        }
        assert!(
            unique_ids.insert(p["unique_id"].as_str().unwrap().to_owned()),
            "duplicate unique_id in {topic}"
        );
        assert!(p["origin"]["name"].is_string(), "{topic}");
        assert!(
            p["device"]["identifiers"].is_array() && p["device"]["name"].is_string(),
            "{topic}"
        );
        assert!(
            p.get("availability_topic").is_none(),
            "{topic}: use the availability list only"
        );
        let default_id = p["default_entity_id"].as_str().unwrap();
        assert!(default_id.starts_with(&format!("{}.", e.component)), "{topic}");
        // Device class, unit and state class as HA 2026.11 accepts them (ha-discovery.md §13).
        let combo = (
            p["device_class"].as_str(),
            p["unit_of_measurement"].as_str(),
            p["state_class"].as_str(),
        );
        let allowed = [
            (Some("data_size"), Some("GiB"), Some("total_increasing")),
            (Some("data_size"), Some("MiB"), Some("total_increasing")),
            (Some("data_size"), Some("GiB"), Some("measurement")),
            // Yesterday and last month: final figures, no state class (design.md).
            (Some("data_size"), Some("GiB"), None),
            (Some("data_size"), Some("MiB"), None),
            (Some("data_rate"), Some("Mbit/s"), Some("measurement")),
            (Some("temperature"), Some("°C"), Some("measurement")),
            (Some("duration"), Some("s"), Some("measurement")),
            (Some("signal_strength"), Some("dBm"), Some("measurement")),
            (None, Some("%"), Some("measurement")),
            (None, None, Some("measurement")),
            (None, None, None),
            (Some("connectivity"), None, None),
            (Some("problem"), None, None),
        ];
        assert!(allowed.contains(&combo), "{topic}: {combo:?}");
        if e.component == "binary_sensor" {
            assert!(p["payload_on"].is_string() && p["payload_off"].is_string(), "{topic}");
        }
        assert_ne!(p["entity_category"], "config", "{topic}");
        // HA's MQTT sensor has no suggested unit (issue 16 §4): the unit shown is the unit sent,
        // divided from the state's exact integer, with decimals that fit it.
        assert!(p.get("suggested_unit_of_measurement").is_none(), "{topic}");
        if matches!(combo.0, Some("data_size" | "data_rate")) {
            let template = p["value_template"].as_str().unwrap();
            let divisor = match combo.1 {
                Some("MiB") => "/ 1048576 ",
                Some("GiB") => "/ 1073741824 ",
                _ => "/ 1000000 ",
            };
            assert!(
                template.contains(divisor) && template.ends_with("else none }}"),
                "{topic}: {template}"
            );
            assert!(
                p["suggested_display_precision"]
                    .as_u64()
                    .is_some_and(|d| (1..=2).contains(&d)),
                "{topic}"
            );
        }
        // Secondary views stay recorded: hidden, never disabled.
        assert!(p.get("enabled_by_default").is_none(), "{topic}");
    }
}

/// The seed's double NAT through the household: Titan counted by vnstat (one interface) and
/// estimated by the Deco; the Deco's master node, whose WAN side the ASUS lists as a client.
fn merged_household() -> bandwidth2mqtt::household::Household {
    use bandwidth2mqtt::config::{MacList, Settings, VnstatSettings};
    use bandwidth2mqtt::household::Household;
    use bandwidth2mqtt::model::{BucketSample, HourBucket, RateSample};
    let titan_mac = "02:00:00:00:00:01".parse().unwrap();
    let mut settings = Settings::default();
    settings.vnstat.insert(
        "titan".into(),
        VnstatSettings {
            name: Some("Titan".into()),
            mac: MacList(vec![titan_mac]),
            ..VnstatSettings::default()
        },
    );
    // Titan has a monthly data plan: 1 TB, warn at 90 %.
    settings.plan.insert(
        "titan".into(),
        bandwidth2mqtt::config::PlanSettings {
            quota: bandwidth2mqtt::config::ByteSize(1_000_000_000_000),
            period: bandwidth2mqtt::config::PlanPeriod::Month,
            warn_at: Some(bandwidth2mqtt::config::Share(0.9)),
            used_so_far: None,
        },
    );
    let feeds = vec![
        (SourceKind::Vnstat.feed("titan"), "vnstat"),
        (SourceKind::Asus.feed("home"), "asus"),
        (SourceKind::Deco.feed("mesh"), "deco"),
    ];
    let mut h = Household::new(&settings, feeds, PersistedState::default());
    let node_id = DeviceId::new("f0090dfa297c").unwrap();
    for i in 0..2i64 {
        let at_ms = CLOCK.now_ms - 10_000 + i * 10_000;
        let mut server = Observation::new(DeviceId::new("titan").unwrap(), DeviceKind::Server);
        server.info.name = Some("Titan".into());
        server.info.macs = vec![titan_mac];
        server.info.model = Some("Server".into());
        server.online = Some(true);
        server.traffic.push(TrafficReading {
            interface: Some("eno1".into()),
            sample: TrafficSample::Counter(CounterSample {
                rx: 5_000_000_000 + i as u64 * 12_500_000,
                tx: 300_000_000 + i as u64 * 250_000,
                epoch: Some("2026-01-01".into()),
                at_ms,
                wrap: WrapRule::Never,
                rate_window: Duration::from_secs(180),
            }),
        });
        let mut node = Observation::new(node_id.clone(), DeviceKind::MeshNode);
        node.info.name = Some("Living Room".into());
        node.info.macs = vec![
            "f0:09:0d:fa:29:7c".parse().unwrap(),
            "f0:09:0d:fa:29:7d".parse().unwrap(),
        ];
        node.info.manufacturer = Some("TP-Link".into());
        node.info.model = Some("Deco X50".into());
        node.online = Some(true);
        node.metric(
            "clients",
            "Clients",
            bandwidth2mqtt::model::MetricUnit::Count,
            Some(1.0),
        );
        let mut titan_seen = Observation::new(DeviceId::from_mac(titan_mac), DeviceKind::Client);
        titan_seen.info.name = Some("titan".into());
        titan_seen.info.macs = vec![titan_mac];
        titan_seen.info.via = Some(node_id.clone());
        titan_seen.online = Some(true);
        titan_seen.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Rate(RateSample {
                rx_bps: 9_600_000.0,
                tx_bps: 160_000.0,
                at_ms,
                max_gap: Duration::from_secs(120),
            }),
        });
        let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
        router.info.name = Some("RT-AX86U Pro".into());
        router.info.macs = vec!["04:42:1a:00:00:01".parse().unwrap()];
        router.online = Some(true);
        let wan_mac = "f0:09:0d:fa:29:7d".parse().unwrap();
        let mut deco_wan = Observation::new(DeviceId::from_mac(wan_mac), DeviceKind::Client);
        deco_wan.info.name = Some("Deco".into());
        deco_wan.info.macs = vec![wan_mac];
        deco_wan.info.via = Some(DeviceId::new("home").unwrap());
        deco_wan.online = Some(true);
        deco_wan.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Buckets(BucketSample {
                hours: vec![HourBucket {
                    start_s: (CLOCK.now_ms / 1000 / 3600) * 3600 - 3600,
                    rx: 2_000_000_000,
                    tx: 150_000_000,
                }],
            }),
        });
        let asus = vec![router, deco_wan];
        let deco = vec![node, titan_seen];
        h.learn(&asus);
        h.learn(&deco);
        h.apply("titan", vec![server], at_ms);
        h.apply("home", asus, at_ms);
        h.apply("mesh", deco, at_ms);
    }
    h
}

#[test]
fn merged_server_and_mesh_node_match_golden_files() {
    let topics = Topics::new(&MqttSettings::default());
    let h = merged_household();
    let ctx = Context {
        topics: &topics,
        version: env!("CARGO_PKG_VERSION"),
    };
    let ids: Vec<String> = h.devices().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["f0090dfa297c", "home", "titan"], "one device per physical thing");
    for (group, id) in [("merged-server", "titan"), ("merged-node", "f0090dfa297c")] {
        let device = h.device(&DeviceId::new(id).unwrap()).unwrap();
        let mut files = entity_files(&topics, ctx.device_entities(device));
        files.push((
            "state.json".into(),
            serde_json::json!({"topic": topics.device_state(&device.id), "payload": state::device_state(device, CLOCK)}),
        ));
        check_group(group, files);
    }
}

/// The default form (`mqtt.discovery = "device"`): one config per device, the same entities as
/// the per-entity goldens above packaged as components (shared/protocols/ha-discovery.md §3).
#[test]
fn device_based_discovery_matches_golden_files() {
    use bandwidth2mqtt::publish::device_discovery::Packager;
    let topics = Topics::new(&MqttSettings::default());
    let ctx = Context {
        topics: &topics,
        version: env!("CARGO_PKG_VERSION"),
    };
    let servers = server_ledger();
    let routers = router_ledger();
    let groups = [
        (
            "server",
            ctx.device_entities(servers.device(&DeviceId::new("titan").unwrap()).unwrap()),
        ),
        (
            "router",
            ctx.device_entities(routers.device(&DeviceId::new("home").unwrap()).unwrap()),
        ),
        (
            "client",
            ctx.device_entities(routers.device(&DeviceId::new("021a11000000").unwrap()).unwrap()),
        ),
        ("bridge", ctx.bridge_entities(&["host".to_owned()])),
    ];
    let mut packager = Packager::new();
    let mut files = Vec::new();
    for (name, entities) in groups {
        let unique_ids: Vec<Value> = entities.iter().map(|e| e.payload["unique_id"].clone()).collect();
        let (topic, payload) = packager.package(&topics, &entities).unwrap();
        let payload: Value = serde_json::from_str(&payload).unwrap();
        // Same entities, same ids as the per-entity form; every component has what HA requires.
        let components = payload["components"].as_object().unwrap();
        assert_eq!(components.len(), entities.len(), "{name}");
        for c in components.values() {
            assert!(unique_ids.contains(&c["unique_id"]), "{name}: {c}");
            assert!(c["platform"].is_string() && c.get("device").is_none(), "{name}: {c}");
        }
        assert!(payload["origin"]["name"].is_string() && payload["device"]["identifiers"].is_array());
        files.push((
            format!("{name}.json"),
            serde_json::json!({"topic": topic, "payload": normalise(payload)}),
        ));
    }
    check_group("device", files);
}
