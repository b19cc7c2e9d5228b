//! The Deco in access-point mode (the seed's recommended option A) end to end: the real binary,
//! a private mosquitto, the ASUS emulator with live per-client counters and the Deco emulator
//! in AP mode, both listing the same clients (and the ASUS listing the Deco units themselves).
//! Home Assistant must get one device per physical thing: the ASUS's exact numbers as the
//! headline, the Deco adding the node a client hangs off and its band.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bandwidth2mqtt::emulators::Server;
use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator, EmuClient};
use bandwidth2mqtt::emulators::deco::{ClientSpec, Clock, DecoEmulator, EmulatorConfig, Profile, home};
use bandwidth2mqtt::model::MacAddr;
use serde_json::Value;
use support::WAIT;
use support::broker::Broker;
use support::process::BridgeProc;
use support::watcher::Watcher;

const DECO_PASSWORD: &str = "deco-Owner-pw1";
/// (MAC, name, Deco node index, band, bytes the ASUS counted before the start).
const CLIENTS: [(&str, &str, usize, &str, u64); 3] = [
    ("3c:22:fb:10:00:01", "Laptop", 1, "band5", 7_000_000),
    ("3c:22:fb:10:00:02", "Phone", 0, "band2_4", 3_000_000),
    ("3c:22:fb:10:00:03", "TV", 0, "wired", 11_000_000),
];

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

async fn deco() -> (DecoEmulator, Server) {
    let (nodes, _) = home();
    let clients = CLIENTS
        .iter()
        .map(|(m, name, node, band, _)| {
            let mut c = ClientSpec::new(
                mac(m),
                name,
                *node,
                band,
                Profile::Constant {
                    down_bps: 80_000.0,
                    up_bps: 8_000.0,
                },
            );
            // In AP mode the upstream router does DHCP; the Deco often has no IP (deco.md §7).
            c.ip = "UNKNOWN".into();
            c
        })
        .collect();
    let mut config = EmulatorConfig::new(DECO_PASSWORD, nodes, clients, Clock::Real);
    config.access_point = true;
    let emu = DecoEmulator::new(config).unwrap();
    let server = emu.serve(0, false).await.unwrap();
    (emu, server)
}

/// The ASUS lists every client and both Deco units (bridged, so their own MACs too).
async fn asus(deco: &DecoEmulator) -> AsusEmulator {
    let emu = AsusEmulator::start(
        AsusConfig {
            clients: 0,
            traffic_analyzer: false,
            traffic_monitor: true,
            ..AsusConfig::default()
        },
        false,
    )
    .await
    .unwrap();
    let mut list: Vec<EmuClient> = CLIENTS
        .iter()
        .enumerate()
        .map(|(i, (m, name, _, band, _))| EmuClient {
            mac: mac(m),
            name: format!("{}-asus", name.to_lowercase()),
            nick: String::new(),
            vendor: "Apple".into(),
            ip: format!("192.168.50.{}", 100 + i),
            is_wl: if *band == "wired" { 0 } else { 2 },
            rssi: -50,
            online: true,
        })
        .collect();
    for (i, node) in deco.config().nodes.iter().enumerate() {
        list.push(EmuClient {
            mac: node.mac,
            name: format!("Deco-X50-{i}"),
            nick: String::new(),
            vendor: "TP-LINK".into(),
            ip: format!("192.168.50.{}", 20 + i),
            is_wl: 0,
            rssi: 0,
            online: true,
        });
    }
    emu.with(|router| {
        router.clients = list;
        for (m, _, _, _, bytes) in CLIENTS {
            router.add_client_traffic(mac(m), "General HTTPS", bytes, bytes / 10);
        }
        for node in &deco.config().nodes {
            router.add_client_traffic(node.mac, "General HTTPS", 1_000, 100);
        }
    });
    emu
}

fn config(broker: &Broker, asus: &AsusEmulator, deco: &Server) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n\
         [asus.home]\nurl = \"{}\"\npassword = \"router-pass\"\ninterval = \"1s\"\ntimeout = \"2s\"\n\
         traffic_analyzer = false\ntemperature_interval = \"1h\"\n\
         [deco.mesh]\nurl = \"{}\"\npassword = \"{DECO_PASSWORD}\"\ninterval = \"1s\"\ntimeout = \"2s\"\n",
        broker.url(),
        asus.url(),
        deco.url()
    )
}

/// Every device discovery config seen, by HA identifier.
fn devices(watcher: &Watcher) -> BTreeMap<String, Value> {
    watcher
        .topics_matching(|t| t.starts_with("homeassistant/device/") && t.ends_with("/config"))
        .into_iter()
        .filter_map(|t| watcher.latest(&t))
        .filter(|m| !m.payload.is_empty())
        .filter_map(|m| serde_json::from_str::<Value>(&m.payload).ok())
        .filter_map(|p| Some((p["device"]["identifiers"][0].as_str()?.to_owned(), p)))
        .collect()
}

fn state(watcher: &Watcher, id: &str) -> Option<Value> {
    serde_json::from_str(&watcher.latest(&format!("bandwidth2mqtt/{id}"))?.payload).ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn access_point_mode_one_device_per_thing_asus_numbers_deco_placement() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let (deco, deco_server) = deco().await;
    let asus = asus(&deco).await;
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["bandwidth2mqtt/#", "homeassistant/#"]).await;
    let bridge = BridgeProc::spawn(dir.path(), &config(&broker, &asus, &deco_server));

    let node = |i: usize| deco.config().nodes[i].mac.to_hex12();
    let client_ids: Vec<String> = CLIENTS.iter().map(|c| mac(c.0).to_hex12()).collect();
    let mut expected: BTreeSet<String> = ["bandwidth2mqtt_bridge".to_owned(), "bandwidth2mqtt_home".to_owned()].into();
    expected.extend((0..2).map(|i| format!("bandwidth2mqtt_{}", node(i))));
    expected.extend(client_ids.iter().map(|id| format!("bandwidth2mqtt_{id}")));

    // Settled: every thing has its device, each client its ASUS headline and its Deco node.
    let deadline = Instant::now() + WAIT * 2;
    loop {
        let found = devices(&watcher);
        let placed = client_ids.iter().all(|id| {
            found.get(&format!("bandwidth2mqtt_{id}")).is_some_and(|d| {
                d["device"]["via_device"]
                    .as_str()
                    .is_some_and(|v| v.contains("f0090dfa"))
            }) && state(&watcher, id).is_some_and(|s| s["source"] == "asus:home")
        });
        if placed && found.keys().cloned().collect::<BTreeSet<_>>().is_superset(&expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "devices {:?}; clients {:?}; log: {}",
            found.keys().collect::<Vec<_>>(),
            client_ids
                .iter()
                .map(|id| (
                    found
                        .get(&format!("bandwidth2mqtt_{id}"))
                        .map(|d| d["device"]["via_device"].clone()),
                    state(&watcher, id).map(|s| s["source"].clone())
                ))
                .collect::<Vec<_>>(),
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more polls of both sources, then the picture must still be the same.
    let polls = watcher.count(&format!("bandwidth2mqtt/{}", client_ids[0]));
    watcher
        .wait_for(&format!("bandwidth2mqtt/{}", client_ids[0]), WAIT, |_| true)
        .await;
    let deadline = Instant::now() + WAIT;
    while watcher.count(&format!("bandwidth2mqtt/{}", client_ids[0])) < polls + 3 {
        assert!(Instant::now() < deadline, "the client's state stopped moving");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let found = devices(&watcher);
    let ids: BTreeSet<String> = found.keys().cloned().collect();
    assert_eq!(ids, expected, "one device per physical thing, nothing else");
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut object_ids = BTreeSet::new();
    for (id, config) in &found {
        for connection in config["device"]["connections"].as_array().into_iter().flatten() {
            let m = connection[1].as_str().unwrap().to_owned();
            if let Some(other) = owner.insert(m.clone(), id.clone()) {
                panic!("{m} is in the connections of {other} and {id}");
            }
        }
        if let Some(via) = config["device"]["via_device"].as_str() {
            assert!(ids.contains(via), "{id} hangs off {via}, which does not exist");
        }
        for (key, component) in config["components"].as_object().into_iter().flatten() {
            let object = component["object_id"].as_str().unwrap_or(key).to_owned();
            assert!(!object.ends_with("_2"), "{id}: {object}");
            assert!(object_ids.insert(object.clone()), "{object} twice");
        }
    }
    // The Deco units are mesh nodes, not ASUS clients; the master hangs off the router.
    let master = &found[&format!("bandwidth2mqtt_{}", node(0))];
    assert_eq!(master["device"]["via_device"], "bandwidth2mqtt_home");

    for ((m, name, node_index, _, bytes), id) in CLIENTS.iter().zip(&client_ids) {
        let device = &found[&format!("bandwidth2mqtt_{id}")];
        assert_eq!(
            device["device"]["via_device"],
            format!("bandwidth2mqtt_{}", node(*node_index)),
            "{name}: the Deco knows its node"
        );
        let s = state(&watcher, id).unwrap();
        assert_eq!(s["source"], "asus:home", "{name}: the ASUS counts exactly");
        assert_eq!(s["estimated"], false);
        assert_eq!(s["rx_bytes"], *bytes, "{name}: exactly what the router counted");
        assert!(
            s["views"]["mesh"].is_object(),
            "{name}: the Deco's estimate stays secondary"
        );
        let attrs: Value = serde_json::from_str(
            &watcher
                .latest(&format!("bandwidth2mqtt/{id}/attributes"))
                .unwrap()
                .payload,
        )
        .unwrap();
        assert!(attrs["band"].is_string(), "{name}: the Deco adds the band: {attrs}");
        assert_eq!(attrs["mac"], m.to_string());
        assert!(
            device["device"]["name"].as_str().is_some_and(|n| !n.is_empty()),
            "{name}"
        );
    }
    let log = bridge.log();
    assert!(!log.contains("ERROR"), "{log}");
}
