use super::*;
use crate::config::{MacList, VnstatSettings};

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn node(id: &str, macs: &[&str]) -> Observation {
    let mut o = Observation::new(DeviceId::new(id).unwrap(), DeviceKind::MeshNode);
    o.info.macs = macs.iter().map(|m| mac(m)).collect();
    o
}

fn client(m: &str, via: &str) -> Observation {
    let mut o = Observation::new(DeviceId::from_mac(mac(m)), DeviceKind::Client);
    o.info.macs.push(mac(m));
    o.info.name = Some("host-name".into());
    o.info.via = Some(DeviceId::new(via).unwrap());
    o
}

#[test]
fn a_configured_server_keeps_its_mac_against_a_mesh_node() {
    let mut settings = Settings::default();
    settings.vnstat.insert(
        "titan".into(),
        VnstatSettings {
            mac: MacList(vec![mac("aa:bb:cc:00:00:01"), mac("aa:bb:cc:00:00:02")]),
            ..VnstatSettings::default()
        },
    );
    let mut r = Resolver::new(&settings);
    r.learn(&[node("aabbcc000002", &["aa:bb:cc:00:00:02"])]);
    let claim = r.owner_of(&mac("aa:bb:cc:00:00:02")).unwrap();
    assert_eq!(claim.device.as_str(), "titan");
    let routed = r.route(client("aa:bb:cc:00:00:01", "home"));
    assert!(routed.borrowed);
    assert_eq!(routed.observation.device.as_str(), "titan");
    assert_eq!(routed.observation.kind, DeviceKind::Server);
    assert_eq!(
        routed.observation.info.name, None,
        "a router's host name never renames a server"
    );
    assert_eq!(routed.observation.info.via, None);
}

#[test]
fn the_upstream_router_of_a_mesh_node_is_learnt_from_its_client_entry() {
    let mut r = Resolver::default();
    assert!(r.learn(&[node("f0090dfa297c", &["f0:09:0d:fa:29:7c", "f0:09:0d:fa:29:7d"])]));
    assert!(r.learn(&[client("f0:09:0d:fa:29:7d", "home")]));
    assert_eq!(
        r.upstream_of(&DeviceId::new("f0090dfa297c").unwrap()).unwrap().as_str(),
        "home"
    );
    assert!(!r.learn(&[client("f0:09:0d:fa:29:7d", "home")]), "nothing new");
    // An unclaimed client stays itself.
    let plain = r.route(client("3c:22:fb:10:00:01", "home"));
    assert!(!plain.borrowed);
    assert_eq!(plain.observation.device.as_str(), "3c22fb100001");
}

#[test]
fn claims_round_trip_and_config_still_wins() {
    let mut r = Resolver::default();
    r.learn(&[node("f0090dfa297c", &["aa:bb:cc:00:00:01"])]);
    let saved = r.to_json();
    let mut settings = Settings::default();
    settings.vnstat.insert(
        "titan".into(),
        VnstatSettings {
            mac: MacList(vec![mac("aa:bb:cc:00:00:01")]),
            ..VnstatSettings::default()
        },
    );
    let mut restored = Resolver::new(&settings);
    restored.restore(&saved);
    assert_eq!(
        restored.owner_of(&mac("aa:bb:cc:00:00:01")).unwrap().device.as_str(),
        "titan"
    );
    restored.restore(&serde_json::json!("garbage"));
}
