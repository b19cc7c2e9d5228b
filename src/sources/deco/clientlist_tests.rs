//! Known answers for the typed `client_list` reading and its agreement with the tree path.

use super::*;
use crate::sources::deco::protocol::lenient_json;

fn tree(text: &str) -> Result<ClientListReply, serde_json::Error> {
    serde_json::from_str::<Value>(text).map(|doc| ClientListReply::from_tree(&doc))
}

#[test]
fn every_quirk_reads_the_same_both_ways() {
    let text = r#"{"error_code": "0", "result": {"client_list": [
        {"mac": "8E-18-51-37-67-12", "name": "UGhvbmU=", "ip": "UNKNOWN", "online": true,
         "down_speed": "120", "up_speed": 7, "wire_type": "wireless", "connection_type": "band6",
         "interface": "guest", "client_type": "phone", "linked_device_info": {"connection_type": ["wired"]}},
        {"mac": "", "name": "", "ip": "", "online": "false"},
        {"mac": "aa:bb:cc:dd:ee:01", "ip": "0.0.0.0", "down_speed": null, "up_speed": "x", "online": 2.0},
        {"mac": " AA:BB:CC:DD:EE:02 ", "ip": " 10.0.0.2 ", "online": " Online ", "down_speed": 1e3,
         "up_speed": -0.5, "name": "VFY=", "name": "UmFkaW8=", "wire_type": 5, "client_type": false},
        {"mac": 112233445566, "online": 1, "interface": "  "}
    ], "client_list_more": 1}}"#;
    let typed = ClientListReply::parse(text).unwrap();
    assert_eq!(typed, tree(text).unwrap());
    assert_eq!(typed.code, ErrorCode::Ok);
    let clients = typed.clients.unwrap();
    assert_eq!(clients.len(), 5);
    assert_eq!(clients[0].name.as_deref(), Some("Phone"));
    assert_eq!((clients[0].down, clients[0].up), (Some(120.0), Some(7.0)));
    assert_eq!(clients[0].ip, None);
    assert!(!clients[1].online && clients[1].mac.is_none());
    assert!(!clients[2].online, "a float is not a flag");
    assert_eq!((clients[2].down, clients[2].up), (None, None));
    let c = &clients[3];
    assert_eq!(c.raw_mac, "AA:BB:CC:DD:EE:02");
    assert_eq!(c.ip, Some(std::net::Ipv4Addr::new(10, 0, 0, 2)));
    assert!(c.online);
    assert_eq!((c.down, c.up), (Some(1000.0), Some(-0.5)));
    assert_eq!(c.name.as_deref(), Some("Radio"), "the last of a repeated member");
    assert_eq!((c.wire_type.as_deref(), c.client_type.as_deref()), (Some("5"), None));
    assert_eq!(clients[4].raw_mac, "112233445566");
    assert!(clients[4].online);
    assert_eq!(clients[4].interface, None);
}

#[test]
fn shapes_and_codes_read_the_same_both_ways() {
    for text in [
        r#"{"error_code": 0, "result": {"client_list": []}}"#,
        r#"{"error_code": 0, "result": {}}"#,
        r#"{"error_code": 0, "result": null}"#,
        r#"{"error_code": 0, "result": [1]}"#,
        r#"{"error_code": 0}"#,
        r#"{"error_code": -40401, "result": {"client_list": "x"}}"#,
        r#"{"error_code": "timeout"}"#,
        r#"{"error_code": 1.5, "result": {"client_list": {}}}"#,
        r#"{"error_code": [], "result": {"client_list": null}}"#,
        r#"{"result": {"client_list": [{}, 1, {}, "x"]}, "error_code": 0}"#,
        r#"{"result": {"client_list": [{"mac": "aa:bb:cc:dd:ee:01"}]}, "result": {"client_list": 5}}"#,
        r#"{"result": {"client_list": 5, "client_list": [{"online": "yes"}]}}"#,
        "[1, 2]",
        "\"text\"",
        "null",
    ] {
        let typed = ClientListReply::parse(text).unwrap();
        assert_eq!(typed, tree(text).unwrap(), "{text}");
    }
    let first_bad = ClientListReply::parse(r#"{"result": {"client_list": [{}, 1, {}, "x"]}}"#).unwrap();
    assert_eq!(
        first_bad.clients,
        Err(ParseError("client_list[1] is not an object".into()))
    );
    let missing = ClientListReply::parse(r#"{"error_code": 0}"#).unwrap();
    assert_eq!(missing.clients, Err(ParseError("the reply has no client_list".into())));
    assert_eq!(ClientListReply::parse("[1]").unwrap().code, ErrorCode::Missing);
}

#[test]
fn broken_text_fails_with_the_tree_paths_message() {
    let deep = format!(
        r#"{{"result": {{"client_list": [{{"x": {}{}}}]}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    for text in [
        "",
        "<html>",
        r#"{"error_code": 0, "result": {"client_list": [{"mac": "aa"#,
        r#"{"error_code": 0, "result": {"client_list": [{"down_speed": 1e999}]}}"#,
        r#"{"error_code": 0} trailing"#,
        deep.as_str(),
    ] {
        let typed = ClientListReply::parse(text).unwrap_err().to_string();
        assert_eq!(typed, tree(text).unwrap_err().to_string(), "{text}");
    }
}

#[test]
fn a_lenient_reply_with_nan_and_bad_utf8_reads_the_same() {
    let mut bytes = br#"{"error_code":0,"result":{"client_list":[{"mac":"aa:bb:cc:dd:ee:01","name":"x"#.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(br#"","down_speed":NaN,"up_speed":Number.NaN,"online":true}]}}"#);
    let typed = ClientListReply::parse(&crate::sources::deco::protocol::lenient_text(&bytes)).unwrap();
    assert_eq!(typed, ClientListReply::from_tree(&lenient_json(&bytes).unwrap()));
    let c = &typed.clients.unwrap()[0];
    assert_eq!((c.down, c.up, c.online), (None, None, true));
}
