//! The real `vnstat` binary against a database its own daemon creates in a private directory
//! (shared/protocols/vnstat.md; the same setup that produced the fixtures). Skipped with a
//! printed reason when vnstat is not installed, unless BANDWIDTH2MQTT_REQUIRE_VNSTAT=1 (CI).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bandwidth2mqtt::config::VnstatSettings;
use bandwidth2mqtt::model::TrafficSample;
use bandwidth2mqtt::sources::vnstat::VnstatSource;
use bandwidth2mqtt::sources::{Source, SourceError};
use serde_json::Value;
use support::process::run_cli;

struct Daemon {
    child: Child,
    config: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed(bin: &str) -> bool {
    [
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/bin",
        "/sbin",
    ]
    .iter()
    .any(|d| Path::new(d).join(bin).is_file())
}

fn vnstat_available() -> bool {
    if installed("vnstat") && installed("vnstatd") {
        return true;
    }
    if std::env::var("BANDWIDTH2MQTT_REQUIRE_VNSTAT").is_ok_and(|v| v == "1") {
        panic!("vnstat and vnstatd are required here (apt-get install vnstat)");
    }
    eprintln!("SKIP: vnstat is not installed");
    false
}

fn write_config(dir: &Path, db: &Path) -> PathBuf {
    let config = dir.join("vnstat.conf");
    std::fs::write(
        &config,
        format!(
            "DatabaseDir \"{}\"\nUpdateInterval 5\nPollInterval 5\nSaveInterval 1\nOfflineSaveInterval 1\nUseLogging 0\nPidFile \"{}\"\n",
            db.display(),
            dir.join("vnstatd.pid").display()
        ),
    )
    .unwrap();
    config
}

/// Starts vnstatd on an empty database and waits until `vnstat --json` answers with data.
fn start_daemon(dir: &Path) -> Daemon {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let config = write_config(dir, &db);
    let child = Command::new("vnstatd")
        .arg("-n")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vnstatd");
    let daemon = Daemon { child, config };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("vnstat")
            .arg("--config")
            .arg(&daemon.config)
            .args(["--json", "f", "1"])
            .output()
            .unwrap();
        if out.status.success() && out.stdout.starts_with(b"{") {
            return daemon;
        }
        assert!(Instant::now() < deadline, "vnstatd did not create its database");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn source(config: &Path, extra: &[&str]) -> VnstatSource {
    let mut command: Vec<String> = vec!["vnstat".into(), "--config".into(), config.display().to_string()];
    command.extend(extra.iter().map(|s| s.to_string()));
    let settings = VnstatSettings {
        command,
        ..VnstatSettings::default()
    };
    VnstatSource::new("real", &settings, 1)
}

/// Kernel counters by interface, read the same way any tool would.
fn proc_net_dev() -> Vec<(String, u64)> {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap();
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.rsplit_once(':')?;
            Some((name.trim().to_owned(), rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn real_vnstat_output_is_read_correctly() {
    if !vnstat_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path());

    // The interfaces vnstat itself says it has, compared with what we parse.
    let listed = Command::new("vnstat")
        .arg("--config")
        .arg(&daemon.config)
        .args(["--dbiflist", "1"])
        .output()
        .unwrap();
    let listed: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(!listed.is_empty(), "vnstatd added no interface");

    for args in [
        &["--json", "f", "1"][..],
        &["--json", "s"],
        &["--json"],
        &["--json", "d", "3"],
    ] {
        let mut src = source(&daemon.config, args);
        let observations = src.poll().await.unwrap_or_else(|e| panic!("vnstat {args:?}: {e}"));
        assert_eq!(observations.len(), 1);
        let obs = &observations[0];
        // The first poll reads vnstat's own day and month tables (`--json d 2`, `--json m 2`).
        // A young database may have saved nothing yet: its tables are empty, today is 0.
        let history = obs.history.as_ref().unwrap_or_else(|| panic!("{args:?}: no history"));
        assert!(
            history.days.len() <= 2 && history.months.len() <= 2,
            "{args:?}: {history:?}"
        );
        if let (Some(today), Some(month)) = (history.days.last(), history.months.last()) {
            assert_eq!(month.date, today.date.first_of_month(), "{args:?}");
            assert!(month.rx >= today.rx && month.tx >= today.tx, "{args:?}");
        }
        let month_rx: u64 = history.months.iter().map(|m| m.rx).sum();
        let total: u64 = obs
            .traffic
            .iter()
            .map(|t| match &t.sample {
                TrafficSample::Counter(c) => c.rx,
                _ => 0,
            })
            .sum();
        assert!(month_rx <= total, "{args:?}: the months are part of the total");
        let again = src.poll().await.unwrap_or_else(|e| panic!("vnstat {args:?}: {e}"));
        assert!(again[0].history.is_none(), "{args:?}: the tables are read once");
        let mut seen: Vec<String> = obs.traffic.iter().filter_map(|t| t.interface.clone()).collect();
        seen.sort();
        let mut expected = listed.clone();
        expected.sort();
        assert_eq!(seen, expected, "{args:?}");
        let kernel = proc_net_dev();
        for t in &obs.traffic {
            let TrafficSample::Counter(c) = &t.sample else {
                panic!("vnstat gives counters")
            };
            let name = t.interface.as_deref().unwrap();
            // vnstat counts from when it added the interface, so never more than the kernel.
            let k = kernel
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .unwrap_or(u64::MAX);
            assert!(c.rx <= k, "{name}: vnstat {} > kernel {k}", c.rx);
            assert!(
                matches!(&c.epoch, Some(bandwidth2mqtt::model::Epoch::Id(e)) if e.len() == 10),
                "created date: {:?}",
                c.epoch
            );
            assert!(c.at_ms > 1_700_000_000_000, "updated timestamp {}", c.at_ms);
        }
    }

    // vnstat's own error for an unknown interface, exit status 1, text on stdout.
    let mut src = source(&daemon.config, &["--json", "f", "1", "-i", "nosuch0"]);
    match src.poll().await {
        Err(SourceError::Unavailable(e)) => {
            assert!(e.contains("No interface matching \"nosuch0\""), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn real_vnstat_errors_without_a_database() {
    if !vnstat_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &dir.path().join("missing-db"));
    let mut src = source(&config, &["--json", "f", "1"]);
    match src.poll().await {
        Err(SourceError::Unavailable(e)) => {
            assert!(e.contains("Unable to open database directory"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    std::fs::create_dir_all(dir.path().join("missing-db")).unwrap();
    match src.poll().await {
        Err(SourceError::Unavailable(e)) => assert!(e.contains("Failed to open database"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bridge_once_with_real_vnstat() {
    if !vnstat_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path());
    let config = dir.path().join("bw.toml");
    std::fs::write(
        &config,
        format!(
            "[host]\nenabled = false\n[vnstat.real]\ncommand = [\"vnstat\", \"--config\", \"{}\", \"--json\", \"f\", \"1\"]\n",
            daemon.config.display()
        ),
    )
    .unwrap();
    let out = run_cli(dir.path(), &["once", "--dry-run", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let state = lines
        .iter()
        .find(|l| l["topic"] == "bandwidth2mqtt/real")
        .expect("state published");
    let state: Value = serde_json::from_str(state["payload"].as_str().unwrap()).unwrap();
    assert_eq!(state["online"], Value::Bool(true));
    assert!(state["rx_bytes"].is_u64(), "{state}");
    // Filled from vnstat's tables at the first poll: this month holds today.
    assert!(state["rx_month"].as_u64() >= state["rx_today"].as_u64(), "{state}");
    assert!(state["complete_since"]["today"].is_string(), "{state}");
    // Device-based discovery (the default): one config with every entity as a component.
    let config = lines
        .iter()
        .find(|l| l["topic"] == "homeassistant/device/real/config" && l["retain"] == true)
        .expect("device config");
    let config: Value = serde_json::from_str(config["payload"].as_str().unwrap()).unwrap();
    assert_eq!(config["components"]["rx_bytes"]["platform"], "sensor", "{config}");
    // A dry run takes the state_dir lock (one bridge per state_dir) but writes no totals.
    assert!(
        !dir.path().join("data/state.json").exists(),
        "a dry run writes no state"
    );
}
