//! Conformance: every Deco capture in `../shared/fixtures/deco/` is decoded in place and the
//! values the bridge relies on are checked. The files come from other projects and are not
//! copied here; without `../shared` the test says so and passes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bandwidth2mqtt::sources::deco::crypto::RsaKey;
use bandwidth2mqtt::sources::deco::parse;
use bandwidth2mqtt::sources::deco::protocol::{ErrorCode, lenient_json};
use serde_json::Value;

fn fixtures_dir() -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/deco")).to_path_buf();
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} is absent; the Deco conformance fixtures live outside the repository",
            dir.display()
        );
        None
    }
}

fn load(dir: &Path, name: &str) -> Value {
    let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    lenient_json(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mac(s: &str) -> bandwidth2mqtt::model::MacAddr {
    s.parse().unwrap()
}

#[test]
fn every_fixture_decodes_with_the_expected_values() {
    let Some(dir) = fixtures_dir() else { return };
    let mut checked = BTreeSet::new();
    let mut check = |name: &str| {
        checked.insert(name.to_owned());
        load(&dir, name)
    };

    // client_list: 6 entries, one offline, one without a MAC and with "UNKNOWN" as its IP.
    let doc = check("client_list.mixed-bands-guest.json");
    assert_eq!(ErrorCode::of(&doc), ErrorCode::Ok);
    let clients = parse::client_list(&doc["result"]).unwrap();
    assert_eq!(clients.len(), 6);
    let first = &clients[0];
    assert_eq!(first.mac, Some(mac("cf:51:c9:04:e1:02")));
    assert_eq!(first.name.as_deref(), Some("wireless1"));
    assert_eq!(first.ip, Some("192.168.68.101".parse().unwrap()));
    assert_eq!((first.down, first.up), (Some(3.0), Some(17.0)));
    assert_eq!(first.connection_type.as_deref(), Some("band5"));
    assert_eq!(first.interface.as_deref(), Some("main"));
    assert!(first.online);
    assert_eq!(clients[1].name.as_deref(), Some("wired1"));
    assert_eq!(clients[1].wire_type.as_deref(), Some("wired"));
    assert!(!clients[2].online, "the offline entry");
    assert_eq!(clients[4].interface.as_deref(), Some("guest"));
    assert_eq!((clients[5].mac, clients[5].ip), (None, None), "empty MAC, UNKNOWN IP");
    assert_eq!(clients[5].name.as_deref(), Some("wireless5"));

    let doc = check("client_list.iot-band6.json");
    let clients = parse::client_list(&doc["result"]).unwrap();
    assert_eq!(clients.len(), 5);
    assert_eq!(clients[0].ip, None, "empty IP");
    assert_eq!(clients[1].interface.as_deref(), Some("iot"));
    assert_eq!(clients[1].client_type.as_deref(), Some("iot_device"));
    assert_eq!(clients[3].connection_type.as_deref(), Some("band6"));
    assert_eq!(
        (clients[4].connection_type.as_deref(), clients[4].interface.as_deref()),
        (None, None),
        "no connection_type and no interface"
    );

    let doc = check("client_list.empty.json");
    assert!(parse::client_list(&doc["result"]).unwrap().is_empty());

    // The legacy S7 fragment is one client object, not a list: the fields still read.
    let doc = check("client_list-entry.s7-legacy-fragment.json");
    let wrapped = serde_json::json!({ "client_list": [doc] });
    let s7 = &parse::client_list(&wrapped).unwrap()[0];
    assert_eq!(s7.name.as_deref(), Some("Phone"));
    assert_eq!(s7.mac, None, "redacted XX-XX-… MAC");
    assert_eq!(s7.ip, None, "0.0.0.0");
    assert!(!s7.online);

    // device_list.
    let doc = check("device_list.m4r-single.json");
    let nodes = parse::device_list(&doc["result"]).unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].master);
    assert_eq!(nodes[0].mac, Some(mac("84:a0:d0:37:c7:44")));
    assert_eq!(nodes[0].name.as_deref(), Some("Bedroom"));
    assert_eq!(nodes[0].model.as_deref(), Some("M4R"));
    assert_eq!(nodes[0].firmware.as_deref(), Some("1.6.1 Build 20231227 Rel. 80438"));
    assert_eq!(nodes[0].ip, Some("192.168.68.1".parse().unwrap()));
    assert_eq!(nodes[0].connected, Some(true));

    let doc = check("device_list.two-nodes.json");
    let nodes = parse::device_list(&doc["result"]).unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(!nodes[0].master && nodes[1].master);
    assert_eq!(nodes[0].name.as_deref(), Some("Kitchen"));
    assert_eq!(nodes[0].parent, Some(mac("2d:a9:80:57:f9:05")));
    assert_eq!(nodes[0].backhaul, vec!["band2_4", "band5"]);
    assert_eq!(nodes[0].firmware.as_deref(), Some("1.5.49"));
    assert_eq!(nodes[1].mac, Some(mac("3b:50:c9:c5:c1:a2")));

    let doc = check("device_list.x50-fw1.8.0.json");
    let nodes = parse::device_list(&doc["result"]).unwrap();
    assert_eq!(nodes[0].mac, Some(mac("f0:09:0d:fa:29:84")), "upper-case dash MAC");
    assert_eq!(nodes[0].parent, Some(mac("f0:09:0d:fa:29:7c")));
    assert_eq!(nodes[0].name.as_deref(), Some("Kids"));
    assert!(nodes[1].master);
    assert_eq!(nodes[1].name.as_deref(), Some("Living Room"));
    assert_eq!(nodes[1].model.as_deref(), Some("X50"));

    // performance: fractions → percent.
    let doc = check("performance.json");
    let perf = parse::performance(&doc["result"]);
    assert_eq!(perf.cpu_percent, Some(10.0));
    assert!((perf.memory_percent.unwrap() - 43.0).abs() < 1e-9);

    // wan_ipv4 in all four shapes.
    let doc = check("wan_ipv4.dynamic-ip.json");
    let wan = parse::wan_ipv4(&doc["result"]);
    assert_eq!(wan.mac, Some(mac("44:e1:52:8c:40:36")));
    assert_eq!(wan.ip, Some("192.168.1.11".parse().unwrap()));
    assert_eq!(wan.gateway, Some("192.168.1.1".parse().unwrap()));
    assert_eq!(wan.dial_type.as_deref(), Some("dynamic_ip"));
    assert_eq!(wan.lan_mac, Some(mac("44:e1:52:8c:40:37")));
    assert_eq!(wan.lan_ip, Some("192.168.68.1".parse().unwrap()));

    let doc = check("wan_ipv4.no-internet.json");
    let wan = parse::wan_ipv4(&doc["result"]);
    assert_eq!((wan.ip, wan.gateway), (None, None));
    assert_eq!(wan.mac, Some(mac("44:e1:52:8c:40:36")));

    let doc = check("wan_ipv4.empty-result.json");
    assert_eq!(parse::wan_ipv4(&doc["result"]), parse::Wan::default());

    let doc = check("wan_ipv4.cellular.json");
    let wan = parse::wan_ipv4(&doc["result"]);
    assert_eq!(wan.ip, Some("10.184.250.250".parse().unwrap()), "under mobile_cpe");
    assert_eq!(wan.mac, Some(mac("44:e1:52:8c:40:36")));
    assert_eq!(wan.dial_type.as_deref(), Some("lte"));

    // login: the X60's real key, and the lockout answer.
    let doc = check("login_keys.x60.json");
    let n = doc["result"]["password"][0].as_str().unwrap();
    let e = doc["result"]["password"][1].as_str().unwrap();
    assert_eq!(n.len(), 256);
    let key = RsaKey::from_hex(n, e).unwrap();
    assert_eq!(key.size(), 128);
    assert_eq!(key.encrypt_hex(b"owner password").unwrap().len(), 256);

    let doc = check("login.error-5003-locked.json");
    assert_eq!(ErrorCode::of(&doc), ErrorCode::Code(-5003));
    assert_eq!(doc["result"]["attemptsAllowed"], 0);

    // Endpoints the bridge does not read; they must still be valid JSON with error_code 0.
    for name in [
        "internet.mobile-cpe-connected.json",
        "wlan.dual-band.json",
        "wlan.tri-band-6ghz.json",
    ] {
        assert_eq!(ErrorCode::of(&check(name)), ErrorCode::Ok, "{name}");
    }

    // Nothing in the directory escapes this test.
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(present, checked, "every fixture is checked");
}
