//! What the bridge writes to stderr, against the real binary and a real mosquitto:
//! `log_format = "json"` gives one JSON object per line (timestamp, level, target, message and
//! the event's fields such as `source` at the top level), `--log-level` changes what is printed,
//! and no secret appears either way.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::broker::Broker;
use support::fake_vnstat::FakeVnstat;
use support::process::BIN;
use support::{WAIT, fixture};

const SECRET: &str = "Lg-S3cret-pw";

/// Runs the bridge with one good and one failing vnstat server until the failing one has been
/// polled three times (first failure: a warning; repeats: debug), stops it with SIGTERM and
/// returns its stderr.
fn run_logged(broker: &Broker, dir: &Path, format: &str, level: Option<&str>) -> String {
    let good = FakeVnstat::new(dir, "beast");
    good.set_output(&fixture("vnstat/json-f-1.json"), 0);
    let broken = FakeVnstat::new(dir, "broken");
    broken.set_output(&fixture("vnstat/err-nodbdir-json.txt"), 1);
    let config = format!(
        "[mqtt]\nurl = \"{}\"\nusername = \"ha\"\npassword = \"{SECRET}\"\n[bridge]\nstate_dir = \"data\"\nlog_format = \"{format}\"\n[host]\nenabled = false\n[vnstat.beast]\ncommand = {}\n[vnstat.broken]\ncommand = {}\ninterval = \"1s\"\n",
        broker.url(),
        good.command_toml(),
        broken.command_toml(),
    );
    std::fs::write(dir.join("bw.toml"), config).unwrap();
    let log = dir.join("stderr.log");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "-c", "bw.toml"]);
    if let Some(level) = level {
        cmd.args(["--log-level", level]);
    }
    let mut child = cmd
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("BANDWIDTH2MQTT_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn bridge");
    let deadline = Instant::now() + WAIT;
    while broken.calls() < 3 {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broken source polled {} times", broken.calls());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "{status:?}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bridge did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(SECRET), "secret in the log:\n{text}");
    text
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v @ Value::Object(_)) => v,
            _ => panic!("not one JSON object: {l}"),
        })
        .collect()
}

fn levels(text: &str) -> Vec<String> {
    json_lines(text)
        .iter()
        .map(|l| l["level"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_level_target_message_and_fields() {
    let Some(broker) = Broker::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = run_logged(&broker, dir.path(), "json", Some("debug"));
    let logs = json_lines(&text);
    for line in &logs {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line[key].is_string(), "`{key}` missing: {line}");
        }
        assert!(line["target"].as_str().unwrap().starts_with("bandwidth2mqtt"), "{line}");
    }
    // The failing source: one warning naming it, then debug repeats naming it.
    let about_broken: Vec<&Value> = logs.iter().filter(|l| l["source"] == "broken").collect();
    assert!(
        about_broken
            .iter()
            .any(|l| l["level"] == "WARN" && l["kind"] == "vnstat"),
        "{text}"
    );
    assert!(about_broken.iter().any(|l| l["level"] == "DEBUG"), "{text}");
    assert!(
        logs.iter()
            .any(|l| l["message"] == "Bridge starting." && l["broker"].is_string()),
        "{text}"
    );
}

#[test]
fn log_level_changes_what_is_printed() {
    let Some(broker) = Broker::start() else { return };
    let run = |format: &str, level: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        run_logged(&broker, dir.path(), format, level)
    };
    let (debug, info, warn) = (
        levels(&run("json", Some("debug"))),
        levels(&run("json", None)),
        levels(&run("json", Some("warn"))),
    );
    assert!(debug.iter().any(|l| l == "DEBUG"), "{debug:?}");
    assert!(info.iter().any(|l| l == "INFO"), "{info:?}");
    assert!(!info.iter().any(|l| l == "DEBUG"), "the default is info: {info:?}");
    assert!(warn.iter().any(|l| l == "WARN"), "{warn:?}");
    assert!(warn.iter().all(|l| l == "WARN" || l == "ERROR"), "{warn:?}");
    // The text format obeys the flag too, and is not JSON.
    let text = run("text", Some("debug"));
    assert!(
        text.lines().any(|l| l.contains("DEBUG") && l.contains("broken")),
        "{text}"
    );
    assert!(
        text.lines().all(|l| serde_json::from_str::<Value>(l).is_err()),
        "{text}"
    );
}
