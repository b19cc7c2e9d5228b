//! Every vnstat error takes only that source offline: in-process on the in-memory link and a
//! manual clock (each jump one poll of each source, the failing one's backoff included), so
//! no case waits out a real backoff. Real tokio time stays: vnstat is a process with a real
//! timeout. Moved from bridge_mqtt.rs; the one log line asserted is the feature itself (the
//! user is told why an alias was repaired), read from the bridge's tracing output.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bandwidth2mqtt::clock::ManualClock;
use serde_json::Value;
use support::fake_host::FakeHost;
use support::fake_vnstat::FakeVnstat;
use support::inmem::{MemoryBroker, num};
use support::inproc::InProcess;
use support::{WAIT, fixture};

const INFO: &str = "bandwidth2mqtt/bridge/info";
const BEAST: &str = "bandwidth2mqtt/beast";
const BEAST_AVAILABLE: &str = "bandwidth2mqtt/bridge/source/beast";
/// Longer than the failing source's longest backoff (8 intervals of 1 s).
const STEP: Duration = Duration::from_secs(10);

/// The bridge's log lines, as its tracing output (this process runs one test).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn install() -> Self {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        log
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn status(info: &Value, source: &str) -> String {
    info["sources"][source]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn last_error(info: &Value) -> String {
    info["sources"]["beast"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vnstat_error_takes_only_that_source_offline() {
    let log = Log::install();
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::new(dir.path());
    host.add_interface("eth0", "02:00:00:00:00:01", 2, false);
    host.set_counters(&[("lo", 5, 5), ("eth0", 1000, 100)]);
    let fake = FakeVnstat::new(dir.path(), "beast");
    let good = fixture("vnstat/json-f-1.json");
    fake.set_output(&good, 0);
    let broker = MemoryBroker::new().waiting(WAIT);
    let clock = ManualClock::new(1_795_559_160_000 + 60_000);
    let config = format!(
        "[mqtt]\ndiscovery = \"entity\"\n[bridge]\nstate_dir = {:?}\n{}[vnstat.beast]\ncommand = {}\ninterval = \"1s\"\ntimeout = \"1s\"\n[vnstat.ghost]\ncommand = [\"/nonexistent/vnstat\", \"--json\"]\ninterval = \"1s\"\n",
        dir.path().join("data").display().to_string(),
        host.config("1s"),
        fake.command_toml()
    );
    let bridge = InProcess::start_on(dir.path(), &config, &clock, Some(broker.connector()));
    broker.wait_payload(BEAST_AVAILABLE, "online").await;
    broker.wait_payload("bandwidth2mqtt/bridge/source/host", "online").await;
    let before = broker.wait_json(BEAST, |v| num(v, &["rx_bytes"]).is_some()).await;

    // A command that does not exist: that source is offline from the start, the others are not.
    broker
        .wait_payload("bandwidth2mqtt/bridge/source/ghost", "offline")
        .await;
    broker
        .wait_json(INFO, |v| {
            v["sources"]["ghost"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not found"))
        })
        .await;

    let half = &good[..good.len() / 2];
    let cases: Vec<(String, i32, &str)> = vec![
        (
            fixture("vnstat/err-noiface-json.txt"),
            1,
            "No interface matching \"nosuch0\"",
        ),
        (
            fixture("vnstat/err-nodbdir-json.txt"),
            1,
            "Unable to open database directory",
        ),
        (fixture("vnstat/err-emptydbdir-json.txt"), 1, "Failed to open database"),
        (
            fixture("vnstat/err-emptydb-json.txt"),
            1,
            "Unable to discover suitable interface",
        ),
        (
            fixture("vnstat/err-lo-notindb-json.txt"),
            1,
            "No interface matching \"lo\"",
        ),
        (
            fixture("vnstat/err-json-single-digit-limit.txt"),
            1,
            "Invalid mode parameter \"3\"",
        ),
        (
            fixture("vnstat/v2.9/err-json-s-unsupported.txt"),
            1,
            "Invalid mode parameter \"s\"",
        ),
        // vnstat 1.18 prints these with exit status 0.
        (fixture("vnstat/v1.18/err-nodb-json.txt"), 0, "No database found"),
        (
            fixture("vnstat/v1.18/err-noiface-json.txt"),
            0,
            "Unable to read database",
        ),
        (half.to_owned(), 0, "EOF while parsing"),
        (
            good.replace("\"traffic\"", "Error: Failed to fetch data.\n\"traffic\""),
            0,
            "vnstat printed no JSON",
        ),
        (
            "{\"vnstatversion\":\"2.10\",\"jsonversion\":\"2\",\"interfaces\":[{\"name\":\"eth0\"}]}".into(),
            0,
            "missing field",
        ),
        (String::new(), 0, "vnstat printed no JSON"),
    ];
    for (output, code, expected) in cases {
        fake.set_output(&output, code);
        bridge.step(&clock, "beast", STEP).await;
        broker
            .wait_json(INFO, |v| {
                status(v, "beast") == "error" && last_error(v).contains(expected)
            })
            .await;
        broker.wait_payload(BEAST_AVAILABLE, "offline").await;
        // Everything else is unaffected, and the failing server keeps its last totals while it
        // reads as disconnected.
        assert_eq!(
            broker.last("bandwidth2mqtt/bridge/source/host").unwrap().payload,
            "online"
        );
        let held = broker.wait_json(BEAST, |v| v["online"] == Value::Bool(false)).await;
        assert_eq!(held["rx_bytes"], before["rx_bytes"], "{expected}");
        fake.set_output(&good, 0);
        bridge.step(&clock, "beast", STEP).await;
        broker.wait_json(INFO, |v| status(v, "beast") == "ok").await;
        broker.wait_payload(BEAST_AVAILABLE, "online").await;
    }

    // A hung command is killed at its timeout (real time: vnstat is a process).
    fake.set_delay(Some(5));
    bridge.step(&clock, "beast", STEP).await;
    broker
        .wait_json(INFO, |v| last_error(v).contains("did not finish within 1s"))
        .await;
    fake.set_delay(None);
    bridge.step(&clock, "beast", STEP).await;
    broker.wait_json(INFO, |v| status(v, "beast") == "ok").await;

    // An alias with a quote is repaired, the user is told, and the source stays up.
    fake.set_output(&fixture("vnstat/alias-with-quote-json-eth0-INVALID-JSON.json"), 0);
    bridge.step(&clock, "beast", STEP).await;
    assert!(
        log.text().contains("alias that is not valid JSON"),
        "alias warning logged"
    );
    assert_eq!(broker.last(BEAST_AVAILABLE).unwrap().payload, "online");
    let final_state = broker.last(BEAST).unwrap().json();
    assert!(
        num(&final_state, &["rx_bytes"]) >= num(&before, &["rx_bytes"]),
        "never backwards"
    );
    bridge.stop().await;
    assert!(!log.text().contains("panicked"));
}
