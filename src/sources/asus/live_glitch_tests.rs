//! One odd `getTraffic.asp` reply between normal ones, through the live counters and the
//! ledger as the bridge runs them (issue 22 §1): no client's total may move by more than the
//! traffic that really passed, and a real engine restart still counts every byte once.

use std::collections::BTreeMap;

use super::*;
use crate::accounting::{Feed, Ledger, PersistedState};
use crate::model::{DeviceKind, Observation, TrafficReading, TrafficSample};

const INTERVAL_S: i64 = 30;
const BOOTED_AT: i64 = 1_700_000_000;

/// Clients with exact ground truth: bytes since boot, and what each poll adds.
struct Home {
    /// Since-boot `[rx, tx]` per client: what they really moved.
    truth: Vec<[u64; 2]>,
    /// Bytes per poll per client.
    per_poll: Vec<[u64; 2]>,
    /// What the DPI engine's counters hold (the truth until the engine restarts).
    counters: Vec<[u64; 2]>,
    live: LiveCounters,
    ledger: Ledger,
    clock_s: i64,
}

fn mac(i: usize) -> MacAddr {
    MacAddr::new([0x02, 0x1a, 0x11, 0, 0, i as u8])
}

impl Home {
    fn new() -> Self {
        // The Deco's uplink with 16 GB since boot, a TV, a phone, an idle plug.
        let truth = vec![
            [16_200_000_000, 2_100_000_000],
            [86_000_000, 4_000_000],
            [700_000_000, 90_000_000],
            [1_000, 900],
        ];
        let feeds = vec![Feed {
            name: "home".into(),
            total_rank: 0,
            rate_rank: 0,
        }];
        Self {
            counters: truth.clone(),
            truth,
            per_poll: vec![[6_600_000, 220_000], [29_000, 3_000], [150_000, 40_000], [0, 0]],
            live: LiveCounters::new("home", DeviceId::new("home").unwrap()),
            ledger: Ledger::new(feeds, PersistedState::default(), BTreeMap::new()),
            clock_s: 1_795_564_800,
        }
    }

    /// One poll's worth of traffic passes.
    fn traffic(&mut self) {
        self.clock_s += INTERVAL_S;
        for i in 0..self.truth.len() {
            for d in 0..2 {
                self.truth[i][d] += self.per_poll[i][d];
                self.counters[i][d] += self.per_poll[i][d];
            }
        }
    }

    /// The page as the router writes it: `[MAC, tx, rx]` entries and the router's `[tx, rx]`.
    fn page(counters: &[[u64; 2]], twice_at_half: bool) -> String {
        let mut entries: Vec<String> = counters
            .iter()
            .enumerate()
            .map(|(i, [rx, tx])| format!("[\"{}\", {tx}, {rx}]", mac(i)))
            .collect();
        if twice_at_half {
            entries.extend(
                counters
                    .iter()
                    .enumerate()
                    .map(|(i, [rx, tx])| format!("[\"{}\", {}, {}]", mac(i), tx / 2, rx / 2)),
            );
        }
        let rx: u64 = counters.iter().map(|c| c[0]).sum();
        let tx: u64 = counters.iter().map(|c| c[1]).sum();
        format!(
            "var array_traffic = new Array();\narray_traffic = [{}];\nvar router_traffic = new Array();\nrouter_traffic = [{tx},{rx}];\n",
            entries.join(",")
        )
    }

    fn normal(&self) -> String {
        Self::page(&self.counters, false)
    }

    /// One poll: the live counters read `page`, the ledger takes their samples.
    fn poll(&mut self, page: &str) {
        let known = (0..self.truth.len()).map(mac).collect();
        let interval = Duration::from_secs(INTERVAL_S as u64);
        let at_ms = self.clock_s * 1000;
        let samples = self
            .live
            .interpret(page, &known, Some(BOOTED_AT), self.clock_s, interval, at_ms);
        let observations = samples
            .into_iter()
            .map(|(mac, sample)| {
                let mut o = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
                o.online = Some(true);
                o.traffic = vec![TrafficReading {
                    interface: None,
                    sample: TrafficSample::Live(sample),
                }];
                o
            })
            .collect();
        self.ledger.apply("home", observations, at_ms);
    }

    fn totals(&self) -> Vec<[u64; 2]> {
        (0..self.truth.len())
            .map(|i| {
                self.ledger
                    .totals_of(&DeviceId::from_mac(mac(i)))
                    .map_or([0, 0], |t| [t.rx, t.tx])
            })
            .collect()
    }

    /// No client is ahead of what it really moved.
    fn never_ahead(&self, when: &str) {
        for (i, (total, truth)) in self.totals().iter().zip(&self.truth).enumerate() {
            assert!(
                total[0] <= truth[0] && total[1] <= truth[1],
                "{when}: client {i} counted {total:?}, but only {truth:?} passed"
            );
        }
    }

    fn exact(&self, when: &str) {
        assert_eq!(self.totals(), self.truth, "{when}: every client exact");
    }
}

/// Normal, normal, one odd reply, normal, normal: totals exact, never ahead.
fn one_odd_reply(odd: impl Fn(&Home) -> String, what: &str) {
    let mut home = Home::new();
    home.poll(&home.normal());
    home.exact(&format!("{what}: first reading"));
    home.traffic();
    home.poll(&home.normal());
    home.traffic();
    let page = odd(&home);
    home.poll(&page);
    home.never_ahead(&format!("{what}: the odd reply"));
    for n in 0..3 {
        home.traffic();
        home.poll(&home.normal());
        home.never_ahead(&format!("{what}: normal reply {n} after it"));
    }
    home.exact(&format!("{what}: after"));
    assert_eq!(home.live.restarts, 0, "{what}: no restart");
}

#[test]
fn an_empty_table_between_normal_ones_counts_nothing_twice() {
    one_odd_reply(
        |_| "var array_traffic = new Array();\narray_traffic = [];\nrouter_traffic = [0,0];\n".into(),
        "empty",
    );
}

#[test]
fn a_table_of_counters_at_a_thousandth_between_normal_ones_counts_nothing_twice() {
    one_odd_reply(
        |home| {
            let low: Vec<[u64; 2]> = home.counters.iter().map(|c| [c[0] / 1000, c[1] / 1000]).collect();
            Home::page(&low, false)
        },
        "1/1000",
    );
}

#[test]
fn a_table_listing_each_mac_twice_between_normal_ones_counts_nothing_twice() {
    one_odd_reply(|home| Home::page(&home.counters, true), "twice");
}

#[test]
fn odd_replies_of_two_shapes_count_nothing_twice() {
    // Low and listed twice in one reply.
    one_odd_reply(
        |home| {
            let low: Vec<[u64; 2]> = home.counters.iter().map(|c| [c[0] / 1000, c[1] / 1000]).collect();
            Home::page(&low, true)
        },
        "1/1000 and twice",
    );
    // Empty, then low, then normal: two odd replies in a row.
    let mut home = Home::new();
    home.poll(&home.normal());
    home.traffic();
    home.poll("array_traffic = [];");
    home.traffic();
    let low: Vec<[u64; 2]> = home.counters.iter().map(|c| [c[0] / 1000, c[1] / 1000]).collect();
    home.poll(&Home::page(&low, false));
    home.never_ahead("empty then low");
    home.traffic();
    home.poll(&home.normal());
    home.exact("empty, low, then normal");
}

/// The engine really restarts right after a poll: its counters start again from zero.
fn restart(home: &mut Home) {
    for c in &mut home.counters {
        *c = [0, 0];
    }
}

#[test]
fn a_real_engine_restart_counts_every_byte_once() {
    let mut home = Home::new();
    home.poll(&home.normal());
    home.traffic();
    home.poll(&home.normal());
    restart(&mut home);
    home.traffic();
    // The first reply after the restart is held (it may be a glitch) …
    home.poll(&home.normal());
    home.never_ahead("the fallen table");
    // … the next goes on from it: a real restart, its values are bytes since the restart.
    home.traffic();
    home.poll(&home.normal());
    assert_eq!(home.live.restarts, 1);
    home.exact("confirmed restart");
    home.traffic();
    home.poll(&home.normal());
    home.exact("after the restart");
}

#[test]
fn a_real_engine_restart_with_an_empty_table_first_and_between_counts_every_byte_once() {
    let mut home = Home::new();
    home.poll(&home.normal());
    home.traffic();
    home.poll(&home.normal());
    restart(&mut home);
    home.traffic();
    home.poll("array_traffic = [];");
    home.traffic();
    home.poll(&home.normal());
    home.traffic();
    home.poll("array_traffic = [];");
    home.never_ahead("empty again after the fallen table");
    home.traffic();
    home.poll(&home.normal());
    assert_eq!(home.live.restarts, 1);
    home.exact("confirmed restart");
}

/// A 60 MB `getTraffic.asp` is refused at the page's cap: the read fails like an unreadable
/// reply (no samples, totals hold), the next normal page is read again.
#[tokio::test]
async fn a_huge_live_page_is_refused_at_the_cap_and_the_next_one_is_read() {
    use crate::emulators::asus::{AsusConfig, AsusEmulator};
    use crate::http::{TlsPolicy, build_client};
    use crate::sources::asus::session::body_cap;

    let emu = AsusEmulator::start(
        AsusConfig {
            clients: 3,
            live_traffic: true,
            traffic_monitor: true,
            ..AsusConfig::default()
        },
        false,
    )
    .await
    .unwrap();
    emu.with(|s| {
        s.advance();
        s.clock.advance(600);
        s.advance();
    });
    let http = build_client(&TlsPolicy::Insecure, Duration::from_secs(60)).unwrap();
    let secret = crate::config::Secret::new("router-pass");
    let mut session = Session::new(http, &emu.url(), "home", "admin", secret);
    let known: BTreeSet<MacAddr> = emu.with(|s| s.clients.iter().map(|c| c.mac).collect());
    let mut live = LiveCounters::new("home", DeviceId::new("home").unwrap());
    let clock = crate::clock::Clock::system();
    let interval = Duration::from_secs(30);

    emu.with(|s| s.live_faults.padding = 60 << 20);
    let err = session.get("/getTraffic.asp").await.unwrap_err();
    assert_eq!(
        err,
        AsusError::TooLarge {
            endpoint: "getTraffic.asp".into(),
            cap: body_cap("/getTraffic.asp")
        }
    );
    assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
    assert!(
        live.read(&mut session, &known, None, 0, interval, &clock)
            .await
            .is_empty()
    );
    emu.with(|s| s.live_faults.padding = 0);
    let samples = live.read(&mut session, &known, None, 0, interval, &clock).await;
    assert!(!samples.is_empty(), "read again once the page is normal");
}
