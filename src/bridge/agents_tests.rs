//! Agents through the core (issue 21): what a stranger on the broker can and cannot do with an
//! agent topic. Times are explicit: the ledger's clock is manual, silence uses given instants.

use tokio::time::{Duration, Instant};

use super::super::Core;
use crate::agent::AgentMessage;
use crate::agent::payload::AgentInterface;
use crate::agent::signing;
use crate::clock::ManualClock;
use crate::model::{DeviceId, DeviceKind, MacAddr, Observation};
use crate::sources::SourceKind;

const T0: i64 = 1_795_000_000_000;
const KEY: &str = "0123456789abcdef0123456789abcdef";
const TV_MAC: &str = "3c:22:fb:10:00:01";

fn core(dir: &std::path::Path, extra: &str, clock: &ManualClock) -> Core {
    super::super::test_core::core(dir, extra, true, clock.clock())
}

fn message(name: &str, rx: u64, at_ms: i64, max_bps: f64) -> AgentMessage {
    let mut m = AgentMessage::offline(name);
    m.online = true;
    m.at_ms = Some(at_ms);
    m.interval_s = Some(10);
    m.boot_id = Some("boot-1".into());
    m.interfaces.insert(
        "eth0".into(),
        AgentInterface {
            rx_bytes: rx,
            tx_bytes: 0,
            epoch: "boot-1/2".into(),
            max_bps,
        },
    );
    m
}

fn plain(m: &AgentMessage) -> Vec<u8> {
    serde_json::to_vec(m).unwrap()
}

fn signed(key: &str, seq: u64, m: &AgentMessage) -> Vec<u8> {
    signing::sign(key.as_bytes(), &m.name, seq, &serde_json::to_string(m).unwrap()).into_bytes()
}

fn rx_total(core: &Core, id: &str) -> Option<u64> {
    core.household.device(&DeviceId::new(id).unwrap()).map(|d| d.totals.rx)
}

/// Ten seconds on the ledger's clock, then the message.
fn deliver(core: &mut Core, clock: &ManualClock, name: &str, payload: &[u8]) {
    clock.advance(Duration::from_secs(10));
    core.on_agent_message(name, payload, Instant::now());
}

fn info(core: &Core) -> serde_json::Value {
    core.outbox
        .snapshot()
        .into_iter()
        .find(|m| m.topic == "bandwidth2mqtt/bridge/info")
        .map(|m| serde_json::from_str(&m.payload).unwrap())
        .unwrap_or_default()
}

#[test]
fn an_agent_the_configuration_does_not_name_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), "", &clock);
    let sources_before = core.statuses.len();
    for i in 0..3_000 {
        let name = format!("evil{i}");
        deliver(&mut core, &clock, &name, &plain(&message(&name, 1_000, T0, 1e9)));
    }
    assert_eq!(core.statuses.len(), sources_before);
    assert_eq!(core.household.devices().count(), 0);
    assert_eq!(core.agents.refused(), 3_000);
    assert!(core.agents.unknown.len() <= super::UNKNOWN_LOGGED);
    core.render_bridge();
    let info = info(&core);
    assert_eq!(info["link"]["agent_messages_refused"], 3_000, "{info}");
    assert!(info.to_string().len() < 1_000, "bridge/info stays small: {info}");
}

#[test]
fn a_forged_unsigned_or_replayed_message_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), &format!("[agents.beast]\nkey = \"{KEY}\"\n"), &clock);
    deliver(
        &mut core,
        &clock,
        "beast",
        &signed(KEY, 5, &message("beast", 1_000, T0, 1e9)),
    );
    deliver(
        &mut core,
        &clock,
        "beast",
        &signed(KEY, 6, &message("beast", 3_000, T0, 1e9)),
    );
    let counted = rx_total(&core, "beast").expect("the server exists");
    assert!(counted > 0);
    let huge = message("beast", 1_000_000_000_000_000_000, T0, 1e9);
    // Forged: another key.
    deliver(
        &mut core,
        &clock,
        "beast",
        &signed("another key of enough length", 7, &huge),
    );
    // Unsigned.
    deliver(&mut core, &clock, "beast", &plain(&huge));
    // Replayed: an old, genuine message after a newer one.
    deliver(
        &mut core,
        &clock,
        "beast",
        &signed(KEY, 5, &message("beast", 1_000, T0, 1e9)),
    );
    assert_eq!(rx_total(&core, "beast"), Some(counted));
    assert_eq!(core.agents.refused(), 3);
    // The genuine next one still counts.
    deliver(
        &mut core,
        &clock,
        "beast",
        &signed(KEY, 8, &message("beast", 4_000, T0, 1e9)),
    );
    assert_eq!(rx_total(&core, "beast"), Some(counted + 1_000));
    // The sequence survives a restart of the bridge: the replay still counts nothing.
    core.save_agent_memory(true);
    let mut again = super::super::test_core::core(
        dir.path(),
        &format!("[agents.beast]\nkey = \"{KEY}\"\n"),
        true,
        clock.clock(),
    );
    again.on_agent_message(
        "beast",
        &signed(KEY, 6, &message("beast", 3_000, T0, 1e9)),
        Instant::now(),
    );
    assert_eq!(again.agents.refused(), 1);
}

#[test]
fn a_forged_timestamp_and_link_speed_cannot_add_an_exabyte() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), "[agents.beast]\n", &clock);
    deliver(&mut core, &clock, "beast", &plain(&message("beast", 1_000, T0, 1e9)));
    deliver(
        &mut core,
        &clock,
        "beast",
        &plain(&message("beast", 2_000, T0 + 10_000, 1e9)),
    );
    let before = rx_total(&core, "beast").unwrap();
    // A year ahead, a 400 Gbit/s link and 10^18 more bytes.
    let year_ms = 365 * 86_400_000;
    let forged = message("beast", 1_000_000_000_000_000_000, T0 + year_ms, 4e11);
    deliver(&mut core, &clock, "beast", &plain(&forged));
    assert_eq!(rx_total(&core, "beast"), Some(before), "the jump is held as a suspect");
    // The real agent's next message: counting goes on from the real counter.
    deliver(
        &mut core,
        &clock,
        "beast",
        &plain(&message("beast", 3_000, T0 + 30_000, 1e9)),
    );
    let after = rx_total(&core, "beast").unwrap();
    assert!(after <= before + 1_000, "{before} → {after}");
}

fn router_sees_the_tv(core: &mut Core, at_ms: i64) {
    let mac: MacAddr = TV_MAC.parse().unwrap();
    let mut tv = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
    tv.info.name = Some("Living Room TV".into());
    tv.info.macs.push(mac);
    tv.online = Some(true);
    let mut router = Observation::new(DeviceId::new("home").unwrap(), DeviceKind::Router);
    router.online = Some(true);
    core.take(super::super::test_core::report(vec![router, tv], at_ms));
}

#[test]
fn an_agents_macs_take_no_router_client_unless_the_configuration_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), "[agents.evil]\n", &clock);
    router_sees_the_tv(&mut core, T0);
    let tv = DeviceId::from_mac(TV_MAC.parse().unwrap());
    assert!(core.household.device(&tv).is_some());
    let mut claim = message("evil", 3_999, T0, 1e9);
    claim.macs = vec![TV_MAC.parse().unwrap()];
    deliver(&mut core, &clock, "evil", &plain(&claim));
    router_sees_the_tv(&mut core, T0 + 20_000);
    assert!(core.household.device(&tv).is_some(), "the TV keeps its device");
    let evil = core.household.device(&DeviceId::new("evil").unwrap()).unwrap();
    assert!(evil.info.macs.is_empty(), "{:?}", evil.info.macs);
}

#[test]
fn an_emptied_retained_message_means_the_agent_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), "[agents.beast]\n", &clock);
    deliver(&mut core, &clock, "beast", &plain(&message("beast", 1_000, T0, 1e9)));
    deliver(&mut core, &clock, "beast", b"");
    let status = &core.statuses["agent_beast"];
    assert_eq!(status.status, "offline");
    assert_eq!(status.last_error.as_deref(), Some("its retained message was cleared"));
    assert!(core.agents.warned.is_empty(), "not logged as broken JSON");
}

#[test]
fn an_agent_unseen_for_forget_after_is_forgotten_with_its_server() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), "forget_after = \"1h\"\n[agents.beast]\n", &clock);
    let seen = Instant::now();
    core.on_agent_message("beast", &plain(&message("beast", 1_000, T0, 1e9)), seen);
    assert!(core.household.device(&DeviceId::new("beast").unwrap()).is_some());
    core.check_silent_agents(seen + Duration::from_secs(3599));
    assert!(core.statuses.contains_key("agent_beast"));
    core.check_silent_agents(seen + Duration::from_secs(3600));
    assert!(!core.statuses.contains_key("agent_beast"));
    assert!(core.household.device(&DeviceId::new("beast").unwrap()).is_none());
}

/// A bridge started again on `dir`, as after a restart.
fn restarted(dir: &std::path::Path, extra: &str, clock: &ManualClock) -> Core {
    let mut core = core(dir, extra, clock);
    core.household.add_feed(SourceKind::Agent.feed("agent_beast"), "agent");
    core
}

#[test]
fn an_agent_restored_from_the_state_file_is_forgotten_after_forget_after() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let extra = "forget_after = \"30d\"\n[agents.beast]\n";
    let beast = DeviceId::new("beast").unwrap();
    let mut first = core(dir.path(), extra, &clock);
    deliver(&mut first, &clock, "beast", &plain(&message("beast", 1_000, T0, 1e9)));
    assert!(first.household.device(&beast).is_some());
    first.save_final();
    first.save_agent_memory(true);
    drop(first);

    // Restarted 20 days later: the agent never speaks again. Its server is restored...
    clock.advance(Duration::from_secs(20 * 86_400));
    let mut second = restarted(dir.path(), extra, &clock);
    assert!(second.household.ledger().known_ids().any(|k| *k == beast));
    second.check_silent_agents(Instant::now());
    assert!(second.household.ledger().known_ids().any(|k| *k == beast), "not yet");
    second.save_final();
    second.save_agent_memory(true);
    drop(second);

    // ...and a restart does not restart its clock: 30 days after its last message it goes,
    // with its HA configs cleared and a `device_removed` event.
    clock.advance(Duration::from_secs(10 * 86_400));
    let mut third = restarted(dir.path(), extra, &clock);
    third.check_silent_agents(Instant::now());
    assert!(!third.household.ledger().known_ids().any(|k| *k == beast));
    assert!(
        third
            .messages
            .iter()
            .any(|(t, p)| t.ends_with("bridge/event") && p.contains("device_removed")),
        "{:?}",
        third.messages
    );
    let cleared = third
        .outbox
        .snapshot()
        .into_iter()
        .any(|m| m.topic == "homeassistant/device/beast/config" && m.payload.is_empty());
    assert!(cleared, "its discovery config is emptied");
    third.save_final();
    drop(third);
    let fourth = restarted(dir.path(), extra, &clock);
    assert!(
        !fourth.household.ledger().known_ids().any(|k| *k == beast),
        "gone for good"
    );
}

#[test]
fn the_server_of_an_agent_removed_from_the_configuration_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let named = "forget_after = \"30d\"\n[agents.beast]\n";
    let removed = "forget_after = \"30d\"\n";
    let beast = DeviceId::new("beast").unwrap();
    let mut first = core(dir.path(), named, &clock);
    deliver(&mut first, &clock, "beast", &plain(&message("beast", 1_000, T0, 1e9)));
    first.save_final();
    first.save_agent_memory(true);
    drop(first);

    // `[agents.beast]` removed; 20 days on its server is still there (its history kept)...
    clock.advance(Duration::from_secs(20 * 86_400));
    let mut second = core(dir.path(), removed, &clock);
    second.check_silent_agents(Instant::now());
    assert!(second.household.ledger().known_ids().any(|k| *k == beast), "not yet");
    second.save_final();
    second.save_agent_memory(true);
    drop(second);

    // ...and 30 days after its last message it goes, for good.
    clock.advance(Duration::from_secs(10 * 86_400));
    let mut third = core(dir.path(), removed, &clock);
    third.check_silent_agents(Instant::now());
    assert!(!third.household.ledger().known_ids().any(|k| *k == beast));
    assert!(
        third
            .messages
            .iter()
            .any(|(t, p)| t.ends_with("bridge/event") && p.contains("device_removed"))
    );
    third.save_final();
    third.save_agent_memory(true);
    drop(third);
    let fourth = core(dir.path(), removed, &clock);
    assert!(
        !fourth.household.ledger().known_ids().any(|k| *k == beast),
        "gone for good"
    );
}

#[test]
fn a_restored_agent_that_speaks_again_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let extra = "forget_after = \"30d\"\n[agents.beast]\n";
    let beast = DeviceId::new("beast").unwrap();
    let mut first = core(dir.path(), extra, &clock);
    deliver(&mut first, &clock, "beast", &plain(&message("beast", 1_000, T0, 1e9)));
    first.save_final();
    first.save_agent_memory(true);
    drop(first);
    clock.advance(Duration::from_secs(29 * 86_400));
    let mut second = restarted(dir.path(), extra, &clock);
    second.check_silent_agents(Instant::now());
    deliver(&mut second, &clock, "beast", &plain(&message("beast", 2_000, T0, 1e9)));
    clock.advance(Duration::from_secs(2 * 86_400));
    second.check_silent_agents(Instant::now());
    assert!(second.household.device(&beast).is_some(), "heard from 2 days ago");
}

#[test]
fn the_bridges_own_device_stays_small_with_hundreds_of_agents() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    // Three times what the bridge's device names: the size no longer grows with the count.
    let tables: String = (0..300).map(|i| format!("[agents.a{i}]\n")).collect();
    let mut core = core(dir.path(), &tables, &clock);
    for i in 0..300 {
        let name = format!("a{i}");
        core.on_agent_message(&name, &plain(&message(&name, 1_000, T0, 1e9)), Instant::now());
    }
    assert_eq!(core.statuses.len(), 300);
    core.render_bridge();
    let snapshot = core.outbox.snapshot();
    let size = |topic: &str| {
        snapshot
            .iter()
            .find(|m| m.topic == topic)
            .map(|m| m.payload.len())
            .unwrap_or_else(|| panic!("{topic} not published"))
    };
    let info = size("bandwidth2mqtt/bridge/info");
    let device = size("homeassistant/device/bandwidth2mqtt_bridge/config");
    assert!(info < 32 * 1024, "bridge/info is {info} bytes");
    assert!(device < 64 * 1024, "the bridge's device config is {device} bytes");
    let info: serde_json::Value = serde_json::from_str(
        &snapshot
            .iter()
            .find(|m| m.topic == "bandwidth2mqtt/bridge/info")
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(info["sources_omitted"], 200);
}

#[test]
fn an_agents_error_is_bounded_in_bridge_info() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let mut core = core(dir.path(), "[agents.beast]\n", &clock);
    deliver(&mut core, &clock, "beast", &plain(&message("beast", 1_000, T0, 1e9)));
    let long_name = "x".repeat(10_000);
    let payload = format!(r#"{{"v":1,"name":"{long_name}","online":false}}"#);
    deliver(&mut core, &clock, "beast", payload.as_bytes());
    let error = core.statuses["agent_beast"].last_error.clone().unwrap();
    assert!(error.chars().count() <= super::ERROR_MAX, "{}", error.len());
}

#[test]
fn the_join_window_admits_only_what_its_rule_says_and_an_admitted_agent_is_forgotten_like_others() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let extra = format!("forget_after = \"1h\"\n[agent]\nkey = \"{KEY}\"\n");
    let mut core = core(dir.path(), &extra, &clock);
    // Closed: a correctly signed stranger creates nothing.
    deliver(
        &mut core,
        &clock,
        "beast",
        &signed(KEY, 1, &message("beast", 1_000, T0, 1e9)),
    );
    assert_eq!(rx_total(&core, "beast"), None);

    let open = serde_json::json!({"time": 60});
    core.permit_join(open.as_object().unwrap()).unwrap();
    // A signed-only window: unsigned and wrongly signed messages admit nobody.
    deliver(&mut core, &clock, "other", &plain(&message("other", 1_000, T0, 1e9)));
    let wrong = "ffffffffffffffffffffffffffffffff";
    deliver(
        &mut core,
        &clock,
        "other",
        &signed(wrong, 1, &message("other", 1_000, T0, 1e9)),
    );
    assert_eq!(rx_total(&core, "other"), None);
    assert_eq!(core.agents.admission("other"), None);
    // Signed with the household key: admitted, signed from now on.
    deliver(
        &mut core,
        &clock,
        "beast",
        &signed(KEY, 2, &message("beast", 1_000, T0, 1e9)),
    );
    assert_eq!(
        core.agents.admission("beast"),
        Some(super::super::permit_join::Admission::Signed)
    );
    let total = rx_total(&core, "beast").expect("admitted");
    deliver(&mut core, &clock, "beast", &plain(&message("beast", 9_000, T0, 1e9)));
    assert_eq!(
        rx_total(&core, "beast"),
        Some(total),
        "an unsigned message of a signed agent counts nothing"
    );

    // Unseen for forget_after: forgotten with its server, and its admission with it.
    let seen = Instant::now();
    core.check_silent_agents(seen + Duration::from_secs(3600));
    assert!(core.household.device(&DeviceId::new("beast").unwrap()).is_none());
    assert_eq!(core.agents.admission("beast"), None);
    assert_eq!(core.join_info()["open"], false, "the 60 s window closed meanwhile");
}
