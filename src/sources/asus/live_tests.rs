use super::*;

fn entry(i: u8, rx: u64, tx: u64) -> Entry {
    Entry {
        mac: MacAddr::new([2, 0, 0, 0, 0, i]),
        rx,
        tx,
    }
}

fn live() -> LiveCounters {
    LiveCounters::new("home", DeviceId::new("home").unwrap())
}

fn remember(l: &mut LiveCounters, entries: &[Entry]) {
    for e in entries {
        l.last.insert(e.mac, [e.rx, e.tx]);
    }
}

#[test]
fn a_reboot_starts_a_new_epoch_at_once_an_engine_restart_once_the_next_reply_confirms_it() {
    let mut l = live();
    let first = [entry(1, 5000, 50), entry(2, 7000, 70), entry(3, 9000, 90)];
    let e0 = l.epoch(&first, Some([21000, 210]), Some(1000)).unwrap();
    remember(&mut l, &first);
    // Growth: same life.
    let grown = [entry(1, 6000, 60), entry(2, 8000, 80), entry(3, 9500, 95)];
    assert_eq!(l.epoch(&grown, Some([23500, 235]), Some(1001)), Some(e0.clone()));
    remember(&mut l, &grown);
    // Everyone back near zero, the router's pair too: looks like a DPI engine restart, held.
    let restarted = [entry(1, 10, 1), entry(2, 20, 2), entry(3, 30, 3)];
    assert_eq!(l.epoch(&restarted, Some([60, 6]), Some(1001)), None);
    assert_eq!(l.restarts, 0);
    // The next reply goes on from the held one: the engine did restart.
    let after = [entry(1, 15, 1), entry(2, 25, 2), entry(3, 35, 3)];
    let e1 = l.epoch(&after, Some([75, 6]), Some(1001)).unwrap();
    assert_ne!(e1, e0);
    assert_eq!(l.restarts, 1);
    remember(&mut l, &after);
    // The boot time moved: a reboot, even if the counters happen to be higher.
    let e2 = l.epoch(&[entry(1, 20, 2)], None, Some(5000)).unwrap();
    assert_ne!(e2, e1);
    // A restart is remembered across a bridge restart.
    let mut again = live();
    again.restore(&l.cursor());
    assert_eq!(again.epoch(&[entry(1, 30, 3)], None, Some(5001)), Some(e2));
}

#[test]
fn a_fallen_table_that_the_next_reply_does_not_go_on_from_is_a_glitch() {
    let mut l = live();
    let first = [entry(1, 5000, 50), entry(2, 7000, 70), entry(3, 9000, 90)];
    let e0 = l.epoch(&first, Some([21000, 210]), None).unwrap();
    remember(&mut l, &first);
    // Every counter at 1/1000: held.
    let low = [entry(1, 5, 0), entry(2, 7, 0), entry(3, 9, 0)];
    assert_eq!(l.epoch(&low, Some([21, 0]), None), None);
    // Another odd reply, lower still: it replaces the held one, nothing decided.
    let lower = [entry(1, 1, 0), entry(2, 1, 0), entry(3, 1, 0)];
    assert_eq!(l.epoch(&lower, Some([3, 0]), None), None);
    // The next reply goes on from the old values: a glitch, same life.
    let on = [entry(1, 5100, 51), entry(2, 7100, 71), entry(3, 9100, 91)];
    assert_eq!(l.epoch(&on, Some([21300, 213]), None), Some(e0.clone()));
    assert_eq!(l.restarts, 0);
    remember(&mut l, &on);
    // The router's own pair fell while the clients went on: no restart of their counters.
    let on2 = [entry(1, 5200, 52), entry(2, 7200, 72), entry(3, 9200, 92)];
    assert_eq!(l.epoch(&on2, Some([10, 1]), None), Some(e0));
}

#[test]
fn an_emptied_table_is_held_and_not_available_only_if_it_stays_empty_for_a_probe_period() {
    let mut l = live();
    let known: BTreeSet<MacAddr> = [entry(1, 0, 0).mac, entry(2, 0, 0).mac].into();
    let reply = "array_traffic = [[\"02:00:00:00:00:01\", 50, 5000], [\"02:00:00:00:00:02\", 70, 7000]];";
    let restarted = "array_traffic = [[\"02:00:00:00:00:01\", 5, 10], [\"02:00:00:00:00:02\", 7, 10]];";
    let restarted_on = "array_traffic = [[\"02:00:00:00:00:01\", 6, 20], [\"02:00:00:00:00:02\", 8, 20]];";
    let empty = "array_traffic = [];";
    let at = |s: i64| s * 1000;
    let interval = Duration::from_secs(30);
    let epoch_of = |samples: &[(MacAddr, LiveSample)]| samples[0].1.counter.epoch.clone();
    let first = l.interpret(reply, &known, None, 1000, interval, at(1000));
    assert_eq!(l.availability, Availability::Available);
    // An empty table between two polls: still available, nothing counted, nothing decided.
    assert!(l.interpret(empty, &known, None, 1030, interval, at(1030)).is_empty());
    assert_eq!(l.availability, Availability::Available);
    assert!(l.interpret(empty, &known, None, 1060, interval, at(1060)).is_empty());
    assert_eq!(l.restarts, 0);
    // The table comes back with the old values: it was a glitch, same life.
    let again = l.interpret(reply, &known, None, 1090, interval, at(1090));
    assert_eq!(epoch_of(&again), epoch_of(&first), "the old values are not new bytes");
    // A real restart: empty, lower values (held), empty again, then on from the lower values.
    assert!(l.interpret(empty, &known, None, 1120, interval, at(1120)).is_empty());
    assert!(
        l.interpret(restarted, &known, None, 1150, interval, at(1150))
            .is_empty()
    );
    assert!(l.interpret(empty, &known, None, 1180, interval, at(1180)).is_empty());
    let new_life = l.interpret(restarted_on, &known, None, 1210, interval, at(1210));
    assert_ne!(epoch_of(&new_life), epoch_of(&first), "the engine restarted: new bytes");
    assert_eq!(l.restarts, 1);
    // Empty for a whole probe period: QoS was switched off.
    l.interpret(empty, &known, None, 2000, interval, at(2000));
    assert_eq!(l.availability, Availability::Available);
    l.interpret(empty, &known, None, 2000 + REPROBE_S, interval, at(2000 + REPROBE_S));
    assert_eq!(l.availability, Availability::NotAvailable);
    // A router that never listed anyone is not available from the first reply.
    let mut fresh = live();
    fresh.interpret(empty, &known, None, 1000, interval, at(1000));
    assert_eq!(fresh.availability, Availability::NotAvailable);
}

#[test]
fn one_client_at_the_top_of_32_bits_wrapped() {
    let mut l = live();
    let before = [
        entry(1, u32::MAX as u64 - 100, 10),
        entry(2, 1000, 10),
        entry(3, 1000, 10),
    ];
    let e0 = l.epoch(&before, None, None).unwrap();
    remember(&mut l, &before);
    let after = [entry(1, 400, 11), entry(2, 1200, 12), entry(3, 1300, 13)];
    assert_eq!(l.epoch(&after, None, None), Some(e0), "one wrap is not a restart");
    assert_eq!(l.wrap_rule(&after[0]), WrapRule::At32);
    assert_eq!(l.wrap_rule(&after[1]), WrapRule::Never);
    // A single drop from low values is a reset of that client: counted as nothing.
    remember(&mut l, &after);
    let reset = entry(2, 5, 12);
    assert_eq!(l.wrap_rule(&reset), WrapRule::Never);
    // Once a counter is seen past 2^32, no drop is ever a wrap.
    l.epoch(&[entry(4, 5_000_000_000, 0)], None, None);
    l.last.insert(entry(1, 0, 0).mac, [u32::MAX as u64 - 5, 0]);
    assert_eq!(l.wrap_rule(&entry(1, 3, 0)), WrapRule::Never);
}

#[test]
fn clients_the_router_no_longer_lists_leave_nothing_behind() {
    let mut l = live();
    let interval = Duration::from_secs(30);
    let at = |s: i64| s * 1000;
    // A new client every poll, each listed for three polls.
    for n in 0u8..60 {
        let listed: Vec<u8> = (n.saturating_sub(2)..=n).collect();
        let known: BTreeSet<MacAddr> = listed.iter().map(|&i| MacAddr::new([2, 0, 0, 0, 0, i])).collect();
        let rows: Vec<String> = listed
            .iter()
            .map(|&i| {
                format!(
                    "[\"02:00:00:00:00:{i:02X}\", {}, {}]",
                    10 * u64::from(n),
                    1000 * u64::from(n)
                )
            })
            .collect();
        let reply = format!("array_traffic = [{}];", rows.join(", "));
        let clock_s = 1000 + i64::from(n) * 30;
        assert_eq!(
            l.interpret(&reply, &known, None, clock_s, interval, at(clock_s)).len(),
            listed.len()
        );
        assert!(l.last.len() <= 3, "poll {n}: {} clients remembered", l.last.len());
    }
}
