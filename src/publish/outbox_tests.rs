use super::*;

#[test]
fn sends_only_changes_in_priority_order() {
    let o = Outbox::new();
    assert!(o.put("b/state".into(), "1", false, Priority::State));
    assert!(o.put("a/config".into(), "{}", true, Priority::Discovery));
    assert!(
        !o.put("a/config".into(), "{}", true, Priority::Discovery),
        "unchanged payload"
    );
    assert_eq!(o.next().unwrap().topic, "a/config");
    assert_eq!(o.next().unwrap().topic, "b/state");
    assert!(o.next().is_none());
    assert!(o.put("b/state".into(), "2", false, Priority::State));
    assert_eq!(&*o.next().unwrap().payload, "2");
}

#[test]
fn coalesces_and_republishes() {
    let o = Outbox::new();
    o.put("s".into(), "1", false, Priority::State);
    o.put("s".into(), "2", false, Priority::State);
    o.put("c".into(), "{}", true, Priority::Discovery);
    assert_eq!(&*o.next().unwrap().payload, "{}");
    assert_eq!(&*o.next().unwrap().payload, "2", "only the latest state goes out");
    assert!(o.next().is_none());
    o.mark(&[Priority::State]);
    assert!(o.next().is_none(), "a republish is not a change");
    assert_eq!(o.next_replay().unwrap().topic, "s");
    assert!(o.next_any().is_none());
    o.mark_all();
    assert_eq!(o.snapshot().len(), 2);
    assert!(o.next_any().is_some() && o.next_any().is_some() && o.next_any().is_none());
}

#[test]
fn fresh_changes_overtake_a_replay() {
    let o = Outbox::new();
    for i in 0..100 {
        o.put(format!("d/{i:03}"), "1", true, Priority::Discovery);
    }
    while o.next().is_some() {}
    o.mark_all();
    assert_eq!(o.next_replay().unwrap().topic, "d/000");
    o.put("d/050".into(), "2", true, Priority::Discovery);
    o.put("s/1".into(), "fresh", false, Priority::State);
    assert_eq!(o.next().unwrap().topic, "d/050", "a change goes before the replay");
    assert_eq!(&*o.next().unwrap().payload, "fresh");
    assert!(o.next().is_none());
    let replayed: Vec<_> = std::iter::from_fn(|| o.next_replay()).map(|m| m.topic).collect();
    assert_eq!(replayed.len(), 98, "d/050 went out fresh and is not repeated");
    assert!(!replayed.contains(&"d/050".to_owned()));
}

#[test]
fn oversized_messages_are_refused_once_and_fit_again() {
    let o = Outbox::with_limit(100);
    let small = Message {
        topic: "t".into(),
        payload: "x".repeat(10).into(),
        retain: true,
        priority: Priority::State,
    };
    let big = Message {
        payload: "x".repeat(200).into(),
        ..small.clone()
    };
    assert!(o.fits(&small));
    assert!(!o.fits(&big));
    assert!(!o.fits(&big));
    assert_eq!(o.refused(), vec![("t".to_owned(), packet_size("t", 200))]);
    assert!(o.fits(&small));
    assert!(o.refused().is_empty());
    o.lower_limit(500);
    assert_eq!(o.packet_limit(), 100, "never raised");
    o.lower_limit(17);
    assert_eq!(o.packet_limit(), 16);
    assert!(!o.fits(&small), "{} bytes", packet_size("t", 10));
}

#[test]
fn a_refusal_splits_content_to_a_size_known_to_pass() {
    let o = Outbox::new();
    assert_eq!(o.part_limit(), DEFAULT_MAX_PACKET);
    o.learn_refusal(70_000, 500);
    assert_eq!(o.packet_limit(), 69_999, "only what was refused is skipped");
    assert_eq!(o.part_limit(), PART_AFTER_REFUSAL, "parts well under the refused size");
    let o = Outbox::new();
    o.learn_refusal(70_000, 40_000);
    assert_eq!(o.part_limit(), 40_000, "a size the broker took");
    let o = Outbox::new();
    o.learn_refusal(10_000, 0);
    assert_eq!(o.part_limit(), 5_000, "a small broker: half the refused size");
}

#[test]
fn packet_size_matches_the_wire_format() {
    // 1 header + 1 length byte + 2 topic length + 1 topic + 2 packet id + 10 payload.
    assert_eq!(packet_size("t", 10), 17);
    // Remaining length 127 still takes one byte, 128 takes two.
    assert_eq!(packet_size("t", 122), 1 + 1 + 127);
    assert_eq!(packet_size("t", 123), 1 + 2 + 128);
}

#[test]
fn held_discovery_holds_the_states_and_online_behind_it() {
    let o = Outbox::new();
    o.hold_discovery(true);
    o.put("b/state".into(), "online", true, Priority::BridgeState);
    o.put("c".into(), "{}", true, Priority::Discovery);
    o.put("s".into(), "1", false, Priority::State);
    o.put("m".into(), "{}", true, Priority::Migrate);
    o.put("a".into(), "online", true, Priority::Availability);
    assert_eq!(o.next().unwrap().topic, "a");
    assert_eq!(o.next().unwrap().topic, "m");
    // A state before its new config would be rendered by the old template (issue 16 §4).
    assert!(o.next().is_none());
    assert!(o.has_dirty());
    o.hold_discovery(false);
    // The config, then a state rendered by it, then `online`: HA shows no stale value.
    assert_eq!(o.next().unwrap().topic, "c");
    assert_eq!(o.next().unwrap().topic, "s");
    assert_eq!(o.next().unwrap().topic, "b/state");
}

#[test]
fn deletions_are_sent_once() {
    let o = Outbox::new();
    o.put("c".into(), "{}", true, Priority::Discovery);
    o.next();
    o.clear("c".into(), Priority::Discovery);
    let m = o.next().unwrap();
    assert!(m.payload.is_empty() && m.retain);
    o.mark_all();
    assert!(o.next().is_none());
}

/// An outbox that drops sent discovery payloads, with one config and one state sent.
fn forgetting() -> (Outbox, String) {
    let o = Outbox::new();
    o.forget_sent_discovery();
    let config = format!("{{\"big\":\"{}\"}}", "x".repeat(5_000));
    o.put("d/config".into(), config.clone(), true, Priority::Discovery);
    o.put("d/state".into(), "1", true, Priority::State);
    assert_eq!(&*o.next().unwrap().payload, config);
    assert_eq!(o.next().unwrap().topic, "d/state");
    (o, config)
}

#[test]
fn a_sent_config_keeps_only_its_print() {
    let (o, config) = forgetting();
    let kept: Vec<_> = o.snapshot().into_iter().map(|m| m.topic).collect();
    assert_eq!(kept, ["d/state"], "the config's payload is gone");
    assert!(o.contains("d/config"));
    assert!(
        !o.put("d/config".into(), config.clone(), true, Priority::Discovery),
        "the same config again is no change"
    );
    assert!(o.put("d/config".into(), config.replace('x', "y"), true, Priority::Discovery));
    assert_eq!(&*o.next().unwrap().payload, config.replace('x', "y"));
}

#[test]
fn a_replay_waits_for_the_dropped_config_then_sends_it_first() {
    let (o, config) = forgetting();
    o.mark_all();
    assert!(o.next_replay().is_none(), "the state must not overtake its config");
    assert!(o.next_replay().is_none());
    assert_eq!(o.take_wanted(), ["d/config"]);
    assert!(o.take_wanted().is_empty(), "asked once");
    assert!(o.next_replay().is_none(), "still waiting for the answer");
    o.restore("d/config", Some(config.clone()));
    let m = o.next_replay().unwrap();
    assert_eq!(
        (m.topic.as_str(), &*m.payload, m.retain),
        ("d/config", config.as_str(), true)
    );
    assert_eq!(o.next_replay().unwrap().topic, "d/state");
    assert!(o.next_replay().is_none());
    assert!(o.snapshot().iter().all(|m| m.topic != "d/config"), "dropped again");
}

#[test]
fn a_failed_send_of_a_dropped_config_gets_its_payload_back() {
    let (o, config) = forgetting();
    o.mark_all();
    o.next_replay();
    for t in o.take_wanted() {
        o.restore(&t, Some(config.clone()));
    }
    let m = o.next_replay().unwrap();
    o.retry(m);
    let again = o.next().unwrap();
    assert_eq!(&*again.payload, config, "retried with the same payload");
}

#[test]
fn a_fresh_config_put_while_asked_wins_over_the_answer() {
    let (o, config) = forgetting();
    o.mark_all();
    o.next_replay();
    o.take_wanted();
    o.put("d/config".into(), "{\"new\":1}", true, Priority::Discovery);
    o.restore("d/config", Some(config));
    assert_eq!(&*o.next().unwrap().payload, "{\"new\":1}");
    assert_eq!(o.next_replay().unwrap().topic, "d/state");
    assert!(o.next_any().is_none(), "the old config is not sent after the new one");
}

#[test]
fn without_forgetting_configs_stay_held() {
    let o = Outbox::new();
    o.put("d/config".into(), "{}", true, Priority::Discovery);
    o.next();
    o.mark_all();
    assert_eq!(o.next_replay().unwrap().topic, "d/config");
    assert!(o.take_wanted().is_empty());
}

/// Log lines written while `f` runs on this thread.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn a_message_that_grows_past_the_limit_on_every_poll_is_logged_once() {
    // Issue 22 §3: the private-address group's state grew by a member each poll, and each new
    // size was logged again (295 warnings).
    let o = Outbox::with_limit(100);
    let log = logged(|| {
        for n in 200..260 {
            let m = Message {
                topic: "bandwidth2mqtt/private_devices".into(),
                payload: "x".repeat(n).into(),
                retain: true,
                priority: Priority::State,
            };
            assert!(!o.fits(&m));
        }
    });
    assert_eq!(log.matches("larger than the packet limit").count(), 1, "{log}");
    assert_eq!(o.refused()[0].1, packet_size("bandwidth2mqtt/private_devices", 259));
}

#[test]
fn a_learnt_limit_can_be_given_up() {
    let outbox = Outbox::with_limit(100_000);
    outbox.learn_refusal(50_000, 2_000);
    assert_eq!(outbox.packet_limit(), 49_999);
    assert!(outbox.part_limit() < 50_000);
    outbox.restore_limit(100_000);
    assert_eq!((outbox.packet_limit(), outbox.part_limit()), (100_000, 100_000));
}
