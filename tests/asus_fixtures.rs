//! Conformance: every real ASUS capture in ../shared/fixtures/asus, read in place (they come
//! from other projects and are not copied into this repository), through our parsers.

use std::path::PathBuf;

use bandwidth2mqtt::sources::asus::{hookjson, js, parse};

fn dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/asus"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: ../shared/fixtures/asus is absent; the ASUS conformance test needs it");
        None
    }
}

fn read(name: &str) -> Option<String> {
    let path = dir()?.join(name);
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn every_fixture_is_covered() {
    let Some(dir) = dir() else { return };
    let covered = [
        "SOURCES.md",
        "appget-cpu-memory-netdev-rt-ax88u-merlin388.json",
        "appget-nvram-led-val-rt-ax88u-merlin388.json",
        "appget-wan-unit-and-nvram-rt-ax88u-merlin388.json",
        "appget-unknown-first-hook-map-ac1300-stock386.json",
        "appget-uptime-zenwifi-xd4-pro.json",
        "ajax-coretmp-rt-ax88u-merlin388.js",
        "update-clients-rt-ax88u-merlin388.js",
        "update-clients-stub-3.0.0.6.102.js",
        "ajax-onboarding-rt-ax88u-merlin388.js",
        "ajax-status-rt-ax88u-merlin388.xml",
        "ajax-sysinfo-rt-ax88u-merlin388.js",
        "netool-ping-gt-ax11000pro-stock388.json",
    ];
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            covered.contains(&name.as_str()),
            "new fixture {name} has no conformance check"
        );
    }
}

#[test]
fn cpu_memory_netdev_with_duplicate_wan_keys() {
    let Some(text) = read("appget-cpu-memory-netdev-rt-ax88u-merlin388.json") else {
        return;
    };
    let map = hookjson::parse_object(&text).unwrap();
    let netdev = parse::netdev(&map).unwrap();
    // Dual WAN: INTERNET appears twice; the last pair is the active WAN.
    assert_eq!(netdev.internet, Some((0xeb9a134fe, 0x227d6b665)));
    assert_eq!(netdev.interfaces["WIRED"], (0x39ddba16c, 0x80c855eba));
    assert_eq!(netdev.interfaces["LACP1"], (0, 0x5e9c7a8c));
    assert_eq!(netdev.interfaces.len(), 7);
    assert!(netdev.proves_64_bit(), "0x134ce06712 does not fit in 32 bits");
    let cpu = parse::cpu(&map).unwrap();
    assert_eq!(cpu.total, 52_557_468 + 52_587_131 + 52_621_020 + 52_620_879);
    assert_eq!(cpu.busy, 4_733_197 + 1_731_814 + 1_821_047 + 1_720_689);
    let mem = parse::memory_percent(&map).unwrap();
    assert!((mem - 813_112.0 / 1_048_576.0 * 100.0).abs() < 1e-9, "{mem}");
}

#[test]
fn nvram_replies_including_an_unquoted_number() {
    let Some(text) = read("appget-nvram-led-val-rt-ax88u-merlin388.json") else {
        return;
    };
    assert_eq!(
        hookjson::text(&hookjson::parse_object(&text).unwrap(), "led_val").as_deref(),
        Some("0")
    );
    let Some(text) = read("appget-wan-unit-and-nvram-rt-ax88u-merlin388.json") else {
        return;
    };
    let map = hookjson::parse_object(&text).unwrap();
    assert_eq!(hookjson::text(&map, "get_wan_unit").as_deref(), Some("0"));
    assert_eq!(hookjson::text(&map, "wan0_ipaddr").as_deref(), Some("111.222.111.222"));
    assert_eq!(hookjson::text(&map, "wan0_state_t").as_deref(), Some("2"));
    assert_eq!(map.len(), 46);
}

#[test]
fn a_reply_that_starts_with_an_empty_member() {
    let Some(text) = read("appget-unknown-first-hook-map-ac1300-stock386.json") else {
        return;
    };
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "really invalid JSON"
    );
    let map = hookjson::parse_object(&text).unwrap();
    assert_eq!(map.len(), 60);
    assert_eq!(hookjson::text(&map, "wgs1_c10_caips").as_deref(), Some(""));
}

#[test]
fn uptime_from_the_hook_and_from_ajax_status() {
    let Some(text) = read("appget-uptime-zenwifi-xd4-pro.json") else {
        return;
    };
    let map = hookjson::parse_object(&text).unwrap();
    assert_eq!(
        parse::uptime_secs(&hookjson::text(&map, "uptime").unwrap()),
        Some(64_882)
    );
    let Some(xml) = read("ajax-status-rt-ax88u-merlin388.xml") else {
        return;
    };
    assert_eq!(parse::uptime_secs(&xml), Some(509_356));
    // Sun, 19 Nov 2023 15:51:06 +0100 = 14:51:06 UTC.
    let stamp = xml.split("uptimeStr=").nth(1).unwrap();
    assert_eq!(parse::router_time(stamp), Some(1_700_405_466));
    // Mon, 13 May 2024 09:44:45 +0800 = 01:44:45 UTC.
    let hook = hookjson::parse_object(&read("appget-uptime-zenwifi-xd4-pro.json").unwrap()).unwrap();
    assert_eq!(
        parse::router_time(&hookjson::text(&hook, "uptime").unwrap()),
        Some(1_715_564_685)
    );
}

#[test]
fn temperatures_skip_disabled_radios() {
    let Some(text) = read("ajax-coretmp-rt-ax88u-merlin388.js") else {
        return;
    };
    let temps = parse::temperatures(&text);
    let by_key = |k: &str| temps.iter().find(|t| t.key == k).map(|t| t.celsius);
    assert_eq!(by_key("temperature_cpu"), Some(65.514));
    assert_eq!(by_key("temperature_2_4ghz"), Some(44.0));
    assert_eq!(by_key("temperature_5ghz"), Some(44.0));
    assert_eq!(temps.len(), 3, "wl2 and wl3 are disabled: {temps:?}");
}

#[test]
fn the_client_list_of_a_real_router() {
    let Some(text) = read("update-clients-rt-ax88u-merlin388.js") else {
        return;
    };
    let list = parse::clients_from_update_page(&text).expect("fromNetworkmapd");
    let clients = parse::clients(&list);
    // SOURCES.md says 60; the fromNetworkmapd object really holds 23 (plus maclist and ClientAPILevel).
    assert_eq!(clients.len(), 23);
    let first = clients
        .iter()
        .find(|c| c.mac.to_string() == "00:00:00:00:00:01")
        .unwrap();
    assert_eq!(first.ip.as_deref(), Some("192.168.1.147"));
    assert_eq!(first.name.as_deref(), Some("FakeNickName"));
    assert_eq!(first.vendor.as_deref(), Some("Espressif Inc."));
    assert!(first.online);
    assert_eq!(first.is_wl.as_deref(), Some("1"));
    assert_eq!(first.rssi, Some(-43.0));
    assert_eq!(first.link_tx_mbps, Some(54.0));
    assert_eq!(first.connected_for.as_deref(), Some("141:25:19"));
    let second = clients
        .iter()
        .find(|c| c.mac.to_string() == "00:00:00:00:00:02")
        .unwrap();
    assert!(!second.online);
    assert_eq!(second.link_tx_mbps, Some(2401.9));
    let wired = clients
        .iter()
        .find(|c| c.mac.to_string() == "00:00:00:00:00:03")
        .unwrap();
    assert_eq!(
        (wired.is_wl.as_deref(), wired.rssi, wired.link_tx_mbps),
        (Some("0"), None, None)
    );
    assert_eq!(clients.iter().filter(|c| c.online).count(), 19);
}

#[test]
fn the_3006_stub_page_has_no_clients() {
    let Some(text) = read("update-clients-stub-3.0.0.6.102.js") else {
        return;
    };
    assert_eq!(text.len(), 241);
    assert!(parse::clients_from_update_page(&text).is_none());
}

#[test]
fn aimesh_nodes_sysinfo_and_netool() {
    let Some(text) = read("ajax-onboarding-rt-ax88u-merlin388.js") else {
        return;
    };
    let nodes = parse::mesh_nodes(&text);
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].alias.as_deref(), Some("Living Room"));
    assert_eq!(nodes[0].model.as_deref(), Some("RT-AX88U"));
    assert_eq!(nodes[0].firmware.as_deref(), Some("3.0.0.4.388.4_0"));
    assert!(nodes[0].online);
    let Some(text) = read("ajax-sysinfo-rt-ax88u-merlin388.js") else {
        return;
    };
    assert_eq!(js::value(&text, "conn_stats_arr"), Some("[\"320\",\"86\"]"));
    let Some(text) = read("netool-ping-gt-ax11000pro-stock388.json") else {
        return;
    };
    let map = hookjson::parse_object(&text).unwrap();
    assert_eq!(map["result"][0]["ping"], "7.294");
}
