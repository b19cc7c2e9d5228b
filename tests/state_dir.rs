//! The state directory in a hostile environment (issue 8, item 7), through the real binary:
//! whatever is wrong with it is moved aside and reported, never a reason not to start; a dry
//! run moves nothing; two bridges cannot share one.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::WAIT;
use support::broker::Broker;
use support::process::{BridgeProc, run_cli};

fn config(broker: &Broker) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\ninterval = \"1s\"\n",
        broker.url()
    )
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_state_dir_that_is_a_file_or_a_state_file_that_is_a_directory_never_stops_once() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config(&broker)).unwrap();

    // state_dir is a file: a dry run reports it and renames nothing...
    std::fs::write(dir.path().join("data"), "oops").unwrap();
    let out = run_cli(dir.path(), &["once", "--dry-run", "-c", "config.toml"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("state_dir is not a directory"));
    assert!(dir.path().join("data").is_file());
    // ...while `once` moves it aside and saves its totals.
    let out = run_cli(dir.path(), &["once", "-c", "config.toml"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/state.json").is_file());
    assert_eq!(
        entries(dir.path())
            .iter()
            .filter(|n| n.starts_with("data.corrupt-"))
            .count(),
        1
    );

    // state.json is a directory; then invalid UTF-8; then a newer format.
    std::fs::remove_file(dir.path().join("data/state.json")).unwrap();
    std::fs::create_dir(dir.path().join("data/state.json")).unwrap();
    let out = run_cli(dir.path(), &["once", "--dry-run", "-c", "config.toml"], &[]);
    assert!(out.status.success());
    assert!(
        !entries(&dir.path().join("data")).iter().any(|n| n.contains("corrupt")),
        "a dry run renames nothing"
    );
    for _ in 0..2 {
        let out = run_cli(dir.path(), &["once", "-c", "config.toml"], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(
            dir.path().join("data/state.json"),
            b"{\"version\":1,\"devices\":{\"\xff\":",
        )
        .unwrap();
    }
    let aside = entries(&dir.path().join("data"))
        .into_iter()
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .count();
    assert_eq!(aside, 2, "both kept, under different names");
}

#[test]
fn two_bridges_cannot_share_a_state_dir() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut first = BridgeProc::spawn(dir.path(), &config(&broker));
    let deadline = Instant::now() + WAIT;
    while !first.log().contains("Bridge starting.") {
        assert!(Instant::now() < deadline, "{}", first.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    for args in [&["run", "-c", "config.toml"][..], &["once", "-c", "config.toml"][..]] {
        let out = run_cli(dir.path(), args, &[]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("is in use by another bandwidth2mqtt (pid {})", first.pid())),
            "{stderr}"
        );
    }
    assert!(first.is_running(), "the first bridge is undisturbed");
    first.terminate();
    let out = run_cli(dir.path(), &["once", "-c", "config.toml"], &[]);
    assert!(out.status.success(), "free once the first has stopped");
}
