//! SIGTERM while a router does not answer (issue 8, item 8): the bridge stops before Docker's
//! SIGKILL (10 s after SIGTERM) and saves its totals first, although the router's HTTP timeout
//! (15 s) would hold both the poll in flight and the logout.

mod support;

use std::time::{Duration, Instant};

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator, Fault};
use support::WAIT;
use support::broker::Broker;
use support::process::BridgeProc;
use support::watcher::Watcher;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_a_hung_router_stops_in_time_and_saves() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n\
         [asus.home]\nurl = \"{}\"\npassword = \"router-pass\"\ninterval = \"1s\"\ntimeout = \"15s\"\n",
        broker.url(),
        emu.url()
    );
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let mut bridge = BridgeProc::spawn(dir.path(), &config);
    watcher
        .wait_payload("bandwidth2mqtt/bridge/source/home", "online")
        .await;
    let state = dir.path().join("data/state.json");
    // The router stops answering (every request, the logout included, hangs for a minute).
    let polls = || emu.with(|s| s.stats.requests.get("/appGet.cgi").copied().unwrap_or(0));
    emu.with(|s| s.fault = Some(Fault::Slow(Duration::from_secs(60))));
    let before = polls();
    let deadline = Instant::now() + WAIT;
    while polls() < before + 1 {
        assert!(Instant::now() < deadline, "no poll in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let saved_before = std::fs::metadata(&state).unwrap().modified().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // `terminate` fails the test unless the bridge exits within 10 s, like Docker's SIGKILL.
    let started = Instant::now();
    let status = bridge.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    eprintln!("stopped {took:?} after SIGTERM");
    let saved_after = std::fs::metadata(&state).unwrap().modified().unwrap();
    assert!(saved_after > saved_before, "the final save happened");
    let log = bridge.log();
    assert!(log.contains("Stopped."), "{log}");
}
