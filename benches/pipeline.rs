//! CPU cost of the hot path: parsing what sources read, folding it into the ledger, and
//! rendering discovery and state. `cargo bench --bench pipeline`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use bandwidth2mqtt::accounting::{Feed, Ledger, PersistedState};
use bandwidth2mqtt::config::MqttSettings;
use bandwidth2mqtt::model::{
    CounterSample, DeviceId, DeviceKind, MacAddr, Observation, TrafficReading, TrafficSample, WrapRule,
};
use bandwidth2mqtt::publish::discovery::Context;
use bandwidth2mqtt::publish::{Topics, state};
use bandwidth2mqtt::sources::{SourceKind, host, vnstat};
use criterion::{Criterion, criterion_group, criterion_main};

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `n` network clients, each with one counter, as a router source would report them.
fn clients(n: usize, at_s: i64, bytes: u64) -> Vec<Observation> {
    (0..n)
        .map(|i| {
            let mac = MacAddr::new([0x02, 0, 0, 0, (i >> 8) as u8, i as u8]);
            let mut o = Observation::new(DeviceId::from_mac(mac), DeviceKind::Client);
            o.info.name = Some(format!("client-{i}"));
            o.info.macs = vec![mac];
            o.info.ip = Some(format!("192.168.50.{}", i % 250 + 2));
            o.online = Some(true);
            o.traffic.push(TrafficReading {
                interface: None,
                sample: TrafficSample::Counter(CounterSample {
                    rx: bytes * (i as u64 + 1),
                    tx: bytes / 10 * (i as u64 + 1),
                    epoch: Some("boot".into()),
                    at_ms: at_s * 1000,
                    wrap: WrapRule::At32,
                    rate_window: Duration::from_secs(90),
                }),
            });
            o
        })
        .collect()
}

fn feeds() -> Vec<Feed> {
    vec![SourceKind::Asus.feed("router")]
}

fn bench(c: &mut Criterion) {
    let json_f1 = fixture("vnstat/json-f-1.json");
    let json_full = fixture("vnstat/json.json");
    let proc_dev = fixture("procnet/proc-net-dev.debian12.txt");
    c.bench_function("vnstat: parse `--json f 1` (3 interfaces)", |b| {
        b.iter(|| vnstat::parse(black_box(&json_f1)).unwrap())
    });
    c.bench_function("vnstat: parse full `--json` dump", |b| {
        b.iter(|| vnstat::parse(black_box(&json_full)).unwrap())
    });
    c.bench_function("host: parse /proc/net/dev", |b| {
        b.iter(|| host::parse_proc_net_dev(black_box(&proc_dev)).unwrap())
    });

    let mut ledger = Ledger::new(feeds(), PersistedState::default(), BTreeMap::new());
    ledger.apply("router", clients(250, 0, 1_000_000), 0);
    let mut t = 0;
    c.bench_function("ledger: apply a poll of 250 clients", |b| {
        b.iter(|| {
            t += 30;
            ledger.apply("router", clients(250, t, 1_000_000 + t as u64), t * 1000)
        })
    });

    let topics = Topics::new(&MqttSettings::default());
    let ctx = Context {
        topics: &topics,
        version: "bench",
    };
    c.bench_function("publish: discovery + state JSON for 250 clients", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for d in ledger.devices() {
                for e in ctx.device_entities(d) {
                    bytes += e.payload.to_string().len();
                }
                bytes += state::device_state(
                    d,
                    state::StateClock {
                        now_ms: 0,
                        consider_home_ms: 180_000,
                        sources_down_ms: None,
                    },
                )
                .to_string()
                .len();
            }
            bytes
        })
    });
    c.bench_function("accounting: serialise state of 250 clients", |b| {
        b.iter(|| serde_json::to_vec(&ledger.to_persisted()).unwrap().len())
    });
    asus_poll(c);
    parse_paths(c);
}

/// Issue 11: the typed readings of the per-poll replies against the `Value` tree readings
/// they replaced (both still in the crate: the tree path is the fallback and the reference).
fn parse_paths(c: &mut Criterion) {
    use bandwidth2mqtt::emulators::asus::{AsusConfig, RouterState, app_get};
    use bandwidth2mqtt::sources::asus::POLL_HOOKS;
    use bandwidth2mqtt::sources::asus::hookjson::parse_object;
    use bandwidth2mqtt::sources::asus::reply::PollReply;
    use bandwidth2mqtt::sources::deco::clientlist::ClientListReply;
    use bandwidth2mqtt::sources::deco::parse::client_list;
    use bandwidth2mqtt::sources::deco::protocol::{lenient_json, lenient_text};
    for n in [250, 5_000] {
        let mut router = RouterState::new(AsusConfig {
            clients: n,
            ..AsusConfig::default()
        });
        router.add_traffic(123_456_789_012, 9_876_543_210);
        let reply = app_get(&mut router, POLL_HOOKS);
        c.bench_function(&format!("asus: appGet reply of {n} clients, typed"), |b| {
            b.iter(|| PollReply::parse(black_box(&reply)).map(|r| r.clients.len()))
        });
        c.bench_function(&format!("asus: appGet reply of {n} clients, Value tree"), |b| {
            b.iter(|| parse_object(black_box(&reply)).map(|m| PollReply::from_tree(&m).clients.len()))
        });
        // A decrypted `client_list` reply as the Deco emulator writes it.
        let entries: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "mac": format!("02:10:00:{:02x}:{:02x}:{:02x}", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff),
                    "name": "Q2xpZW50IDE=", "ip": format!("10.0.{}.{}", i >> 8 & 0xff, i & 0xff),
                    "online": true, "down_speed": 1234, "up_speed": 56, "wire_type": "wireless",
                    "connection_type": "band5", "client_type": "pc", "access_host": "1", "space_id": "1",
                    "owner_id": "", "remain_time": 0, "enable_priority": false, "client_mesh": true,
                    "interface": "main"
                })
            })
            .collect();
        let plain = serde_json::json!({"error_code": 0, "result": {"client_list": entries}}).to_string();
        c.bench_function(&format!("deco: client_list of {n} clients, typed"), |b| {
            b.iter(|| {
                ClientListReply::parse(&lenient_text(black_box(plain.as_bytes()))).map(|r| r.clients.map(|c| c.len()))
            })
        });
        // What a poll did before: the tree, its `result` cloned out, then read.
        c.bench_function(&format!("deco: client_list of {n} clients, Value tree"), |b| {
            b.iter(|| {
                lenient_json(black_box(plain.as_bytes()))
                    .map(|doc| client_list(&doc.get("result").cloned().unwrap_or_default()).map(|c| c.len()))
            })
        });
    }
}

/// Everything the bridge's CPU does for one ASUS poll with 250 clients, minus the network:
/// parse the appGet reply, fold it into the ledger, render discovery and state.
fn asus_poll(c: &mut Criterion) {
    use bandwidth2mqtt::config::{AsusSettings, Secret};
    use bandwidth2mqtt::emulators::asus::{AsusConfig, RouterState, app_get};
    use bandwidth2mqtt::sources::asus::{AsusSource, POLL_HOOKS};
    let mut router = RouterState::new(AsusConfig {
        clients: 250,
        ..AsusConfig::default()
    });
    router.add_traffic(123_456_789_012, 9_876_543_210);
    let reply = app_get(&mut router, POLL_HOOKS);
    println!("ASUS poll reply for 250 clients: {} bytes", reply.len());
    let settings = AsusSettings {
        url: "http://127.0.0.1:9".into(),
        password: Some(Secret::new("unused")),
        ..AsusSettings::default()
    };
    let mut source = AsusSource::new("home", &settings);
    c.bench_function("asus: parse a poll reply with 250 clients", |b| {
        b.iter(|| source.interpret(black_box(&reply), 0).unwrap().len())
    });
    let topics = Topics::new(&MqttSettings::default());
    let ctx = Context {
        topics: &topics,
        version: "bench",
    };
    let mut ledger = Ledger::new(
        vec![SourceKind::Asus.feed("home")],
        PersistedState::default(),
        BTreeMap::new(),
    );
    let mut t = 0i64;
    c.bench_function(
        "asus: whole poll, 250 clients (parse + ledger + discovery + state)",
        |b| {
            b.iter(|| {
                t += 30_000;
                let observations = source.interpret(&reply, t).unwrap();
                let touched = ledger.apply("home", observations, t);
                let clock = state::StateClock {
                    now_ms: t,
                    consider_home_ms: 180_000,
                    sources_down_ms: None,
                };
                let mut bytes = 0;
                for id in &touched {
                    if let Some(d) = ledger.device(id) {
                        bytes += ctx
                            .device_entities(d)
                            .iter()
                            .map(|e| e.payload.to_string().len())
                            .sum::<usize>();
                        bytes += state::device_state(d, clock).to_string().len();
                    }
                }
                bytes
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
