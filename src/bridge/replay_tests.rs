//! A reconnect's replay through the core, with sent discovery payloads dropped: every retained
//! message comes back byte for byte, discovery before states.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::{Core, PollReport};
use super::node_of;
use crate::model::{CounterSample, DeviceId, DeviceKind, Epoch, MacAddr, Observation, TrafficReading, TrafficSample};
use crate::publish::{Message, Priority};

const T0: i64 = 1_795_000_000_000;

fn core(dir: &std::path::Path, extra: &str) -> Core {
    super::super::test_core::core(dir, extra, false, crate::clock::ManualClock::new(T0).clock())
}

fn poll(at_ms: i64, bytes: u64) -> PollReport {
    let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
    router.online = Some(true);
    let mut observations = vec![router];
    for (i, name) in ["Phone", "Laptop", "TV"].into_iter().enumerate() {
        let mac: MacAddr = format!("3c:22:fb:10:00:0{i}").parse().unwrap();
        let mut o = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
        o.info.name = Some(name.into());
        o.info.macs.push(mac);
        o.online = Some(true);
        o.traffic.push(TrafficReading {
            interface: None,
            sample: TrafficSample::Counter(CounterSample {
                rx: bytes * (i as u64 + 1),
                tx: bytes,
                epoch: Some(Epoch::Id("boot".into())),
                at_ms,
                wrap: crate::model::WrapRule::Never,
                rate_window: Duration::from_secs(30),
            }),
        });
        observations.push(o);
    }
    super::super::test_core::report(observations, at_ms)
}

/// What the drain task would send, answering the outbox's render requests as the run loop does.
fn drain(core: &mut Core) -> Vec<Message> {
    let mut sent = Vec::new();
    loop {
        if let Some(m) = core.outbox.next_any() {
            sent.push(m);
            continue;
        }
        let wanted = core.outbox.take_wanted();
        if wanted.is_empty() {
            return sent;
        }
        core.render_again(wanted);
    }
}

fn retained(sent: &[Message]) -> BTreeMap<String, String> {
    sent.iter()
        .filter(|m| m.retain)
        .map(|m| (m.topic.clone(), m.payload.to_string()))
        .collect()
}

fn replay_restores_everything(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), extra);
    core.outbox.forget_sent_discovery();
    core.take(poll(T0, 1_000));
    core.render_bridge();
    let first = retained(&drain(&mut core));
    let configs = first.keys().filter(|t| t.starts_with("homeassistant/")).count();
    assert!(
        configs >= 4,
        "the bridge's, the router's and three clients' configs: {first:?}"
    );
    assert!(
        core.outbox.snapshot().iter().all(|m| m.priority != Priority::Discovery),
        "sent discovery payloads are not kept"
    );

    // The same poll again: nothing changed, nothing goes out (prints compare equal).
    core.take(poll(T0 + 1_000, 1_000));
    core.render_bridge();
    assert!(
        drain(&mut core).iter().all(|m| m.priority != Priority::Discovery),
        "unchanged configs are not sent again"
    );

    // A reconnect: everything again, byte for byte, every config before any state.
    core.outbox.mark_all();
    let replayed = drain(&mut core);
    let first_state = replayed.iter().position(|m| m.priority == Priority::State).unwrap();
    let last_config = replayed
        .iter()
        .rposition(|m| m.priority == Priority::Discovery)
        .unwrap();
    assert!(last_config < first_state, "discovery before states");
    let again = retained(&replayed);
    for (topic, payload) in first.iter().filter(|(t, _)| t.starts_with("homeassistant/")) {
        assert_eq!(again.get(topic), Some(payload), "{topic} replayed unchanged");
    }
    assert_eq!(again.len(), first.len(), "every retained topic replayed");
    assert!(core.outbox.snapshot().iter().all(|m| m.priority != Priority::Discovery));
}

#[test]
fn a_replay_renders_dropped_device_configs_again_unchanged() {
    replay_restores_everything("");
}

#[test]
fn a_replay_renders_dropped_entity_configs_again_unchanged() {
    replay_restores_everything("[mqtt]\ndiscovery = \"entity\"\n");
}

#[test]
fn a_config_nothing_renders_leaves_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path(), "");
    core.outbox.forget_sent_discovery();
    core.outbox.put(
        "homeassistant/device/gone/config".into(),
        "{}",
        true,
        Priority::Discovery,
    );
    core.outbox
        .put("bandwidth2mqtt/gone".into(), "{}", true, Priority::State);
    drain(&mut core);
    core.outbox.mark_all();
    let replayed = drain(&mut core);
    assert_eq!(
        replayed.iter().map(|m| m.topic.as_str()).collect::<Vec<_>>(),
        ["bandwidth2mqtt/gone"],
        "the state still goes; the config nobody renders does not block it"
    );
}

#[test]
fn the_node_is_read_from_both_topic_shapes() {
    assert_eq!(node_of("homeassistant", "homeassistant/device/abc/config"), Some("abc"));
    assert_eq!(
        node_of("homeassistant", "homeassistant/sensor/abc/rx_bytes/config"),
        Some("abc")
    );
    assert_eq!(node_of("homeassistant", "other/device/abc/config"), None);
}
