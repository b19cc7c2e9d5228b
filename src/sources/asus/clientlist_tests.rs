//! Known answers for the typed client list, and its agreement with the tree path.

use super::*;

/// Both readings of one `get_clientlist` object text.
fn both(list: &str) -> (Vec<Client>, Vec<Client>) {
    let typed = serde_json::from_str::<ObjectOrNot<ClientList>>(list)
        .unwrap()
        .0
        .unwrap_or_default()
        .0;
    let tree: Value = serde_json::from_str(list).unwrap();
    let from_tree = tree.as_object().map(clients).unwrap_or_default();
    (typed, from_tree)
}

#[test]
fn odd_entries_read_the_same_both_ways() {
    let list = r#"{
        "maclist": ["AA:BB:CC:00:00:02", "AA:BB:CC:00:00:01"], "ClientAPILevel": "5",
        "AA:BB:CC:00:00:02": {"mac": "AA:BB:CC:00:00:02", "nickName": "  ", "name": " TV ", "isOnline": 1,
            "isWL": 2, "rssi": -55, "curTx": "866.7", "curRx": 780.5, "isGN": "0", "ip": "0.0.0.0",
            "amesh_papMac": "00:00:00:00:00:00", "wlConnectTime": true, "ipMethod": null,
            "extra": {"nested": [1, 2, {"x": "y"}]}},
        "AA:BB:CC:00:00:01": {"nickName": "Ph\u006fne", "vendor": "Acme", "isOnline": "1", "isWL": "1",
            "rssi": "-1e999", "ip": "192.168.1.5", "isGN": "1", "amesh_papMac": "aa-bb-cc-dd-ee-ff"},
        "aa:bb:cc:00:00:03": "not an object",
        "AA:BB:CC:00:00:04": ["nor", "this"],
        "AA:BB:CC:00:00:05": {"vendor": "", "name": 42, "isOnline": "0", "rssi": "x"},
        "not-a-mac": {"nickName": "ignored"}
    }"#;
    let (typed, tree) = both(list);
    assert_eq!(typed, tree);
    let macs: Vec<String> = typed.iter().map(|c| c.mac.to_string()).collect();
    // Tree order: by key as sent (upper-case keys before lower-case ones).
    assert_eq!(macs, ["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "aa:bb:cc:00:00:05"]);
    let (phone, tv, numbered) = (&typed[0], &typed[1], &typed[2]);
    assert_eq!(phone.name.as_deref(), Some("Phone"), "escapes are read");
    assert_eq!((phone.rssi, phone.guest.as_deref()), (None, Some("1")));
    assert_eq!(phone.ip.as_deref(), Some("192.168.1.5"));
    assert_eq!(
        phone.mesh_parent,
        Some("aa:bb:cc:dd:ee:ff".parse().unwrap()),
        "dashes are a MAC too"
    );
    assert_eq!(tv.mesh_parent, None, "all zeros is no mesh node");
    assert_eq!(
        tv.name.as_deref(),
        Some("TV"),
        "an empty nickname falls back to the name"
    );
    assert!(tv.online, "a number 1 is online");
    assert_eq!(tv.is_wl.as_deref(), Some("2"));
    assert_eq!(
        (tv.rssi, tv.link_tx_mbps, tv.link_rx_mbps),
        (Some(-55.0), Some(866.7), Some(780.5))
    );
    assert_eq!((tv.ip.as_deref(), tv.guest.as_deref()), (None, None));
    assert_eq!(tv.connected_for.as_deref(), Some("true"));
    assert_eq!(tv.ip_method, None);
    assert_eq!(numbered.name.as_deref(), Some("42"), "numbers are text");
    assert_eq!((numbered.vendor.as_deref(), numbered.rssi), (None, None));
}

#[test]
fn a_repeated_mac_or_member_counts_with_its_last_value() {
    let list = r#"{"AA:BB:CC:00:00:01": {"nickName": "first", "nickName": "second"},
                  "AA:BB:CC:00:00:02": {"nickName": "kept"},
                  "AA:BB:CC:00:00:01": {"nickName": "third", "isOnline": "1"},
                  "AA:BB:CC:00:00:03": {"nickName": "dropped"},
                  "AA:BB:CC:00:00:03": "gone"}"#;
    let (typed, tree) = both(list);
    assert_eq!(typed, tree);
    let names: Vec<_> = typed.iter().map(|c| c.name.as_deref()).collect();
    assert_eq!(names, [Some("third"), Some("kept")]);
    assert!(typed[0].online);
}

#[test]
fn the_same_mac_spelled_twice_is_two_entries_as_in_the_tree() {
    let (typed, tree) = both(r#"{"aa:bb:cc:00:00:01": {"name": "lower"}, "AA-BB-CC-00-00-01": {"name": "dash"}}"#);
    assert_eq!(typed, tree);
    assert_eq!(typed.len(), 2);
    assert_eq!(typed[0].name.as_deref(), Some("dash"));
}

#[test]
fn a_list_that_is_not_an_object_has_no_clients() {
    for list in ["[]", "[{\"AA:BB:CC:00:00:01\": {}}]", "\"\"", "null", "5"] {
        let typed = serde_json::from_str::<ObjectOrNot<ClientList>>(list).unwrap();
        assert_eq!(typed.0, None, "{list}");
    }
    assert_eq!(both("{}"), (Vec::new(), Vec::new()));
}

#[test]
fn a_truncated_list_is_an_error_not_a_partial_list() {
    for list in [
        r#"{"AA:BB:CC:00:00:01": {"name": "a"}, "AA:BB:CC:00:00:02": {"na"#,
        r#"{"AA:BB:CC:00:00:01": {"name": "a"},"#,
        r#"{"AA:BB:CC:00:00:01": {"rssi": -1e999}}"#,
    ] {
        assert!(serde_json::from_str::<ObjectOrNot<ClientList>>(list).is_err(), "{list}");
        assert!(serde_json::from_str::<Value>(list).is_err(), "{list}");
    }
}
