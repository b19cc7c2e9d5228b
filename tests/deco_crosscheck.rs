//! The emulator checked against the real Python client: tplinkrouterc6u 5.37.0's
//! `TPLinkDecoClient` (tests/deco_crosscheck.py) logs in to it and reads everything it can.
//!
//! Needs python3 and the package index: a venv is made once under the target directory. Without
//! them the test says why and passes; `BANDWIDTH2MQTT_REQUIRE_CROSSCHECK=1` makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bandwidth2mqtt::emulators::deco::{Clock, DecoEmulator, EmulatorConfig};
use serde_json::Value;

const PACKAGES: [&str; 2] = ["tplinkrouterc6u==5.37.0", "pycryptodome"];
const PASSWORD: &str = "Owner pass 1";

fn skip(reason: &str) {
    if std::env::var("BANDWIDTH2MQTT_REQUIRE_CROSSCHECK").is_ok_and(|v| v == "1") {
        panic!("cross-check required but unavailable: {reason}");
    }
    eprintln!("SKIP: tplinkrouterc6u cross-check: {reason}");
}

/// Runs a command with a deadline; `None` if it could not start, failed or took too long.
fn run(cmd: &mut Command, limit: Duration) -> Option<std::process::Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    child.wait_with_output().ok()
}

/// A venv with tplinkrouterc6u, made once and reused.
fn venv_python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deco-crosscheck-venv");
    let python = venv.join("bin").join("python");
    let ready = |python: &Path| {
        run(
            Command::new(python).args(["-c", "import tplinkrouterc6u, Crypto"]),
            Duration::from_secs(60),
        )
        .is_some_and(|o| o.status.success())
    };
    if python.is_file() && ready(&python) {
        return Ok(python);
    }
    let made = run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        Duration::from_secs(120),
    )
    .ok_or("python3 is not available")?;
    if !made.status.success() {
        return Err(format!(
            "python3 -m venv failed: {}",
            String::from_utf8_lossy(&made.stderr).trim()
        ));
    }
    let installed = run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(PACKAGES),
        Duration::from_secs(300),
    )
    .ok_or("pip install did not finish in 5 minutes")?;
    if !installed.status.success() || !ready(&python) {
        return Err(format!(
            "pip install {} failed: {}",
            PACKAGES.join(" "),
            String::from_utf8_lossy(&installed.stderr).trim()
        ));
    }
    Ok(python)
}

#[tokio::test(flavor = "multi_thread")]
async fn tplinkrouterc6u_reads_the_emulator() {
    let python = match tokio::task::spawn_blocking(venv_python).await.unwrap() {
        Ok(python) => python,
        Err(reason) => return skip(&reason),
    };
    let emu = DecoEmulator::new(EmulatorConfig::home(PASSWORD, Clock::Real)).unwrap();
    let server = emu.serve(0, false).await.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deco_crosscheck.py");
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        run(
            Command::new(python).arg(script).arg(url).arg(PASSWORD),
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap()
    .expect("the cross-check script ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tplinkrouterc6u failed against the emulator:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    eprintln!("tplinkrouterc6u 5.37.0 returned: {got:#}");

    assert_eq!(got["firmware"]["model"], "X50");
    assert_eq!(got["firmware"]["firmware"], "1.8.0 Build 25102213 Rel. 43970");
    assert_eq!(got["status"]["wan_ip"], "192.168.1.11");
    assert_eq!(got["status"]["wan_mac"], "F0-09-0D-FA-29-7D");
    assert_eq!(got["status"]["lan_ip"], "192.168.68.1");
    assert_eq!(got["status"]["conn_type"], "dynamic_ip");
    assert!(got["status"]["cpu"].as_f64().is_some_and(|c| (0.0..1.0).contains(&c)));
    assert_eq!(got["status"]["wired"], 1, "the NAS");
    assert_eq!(got["ipv4"]["wan_ip"], "192.168.1.11");
    let devices = got["devices"].as_array().unwrap();
    let laptop = devices
        .iter()
        .find(|d| d["hostname"] == "Laptop")
        .expect("the laptop, its base64 name decoded");
    assert_eq!(laptop["mac"], "3C-22-FB-10-00-01");
    assert_eq!(laptop["ip"], "192.168.68.100");
    assert_eq!(laptop["type"], "HOST_5G");
    assert!(laptop["down_speed"].is_u64());
    let camera = devices.iter().find(|d| d["hostname"] == "Front Door Camera").unwrap();
    assert_eq!(camera["type"], "IOT_2G");
    assert!(
        camera["up_speed"].as_u64().is_some_and(|s| s > 500),
        "kbit/s of a camera upload: {camera}"
    );
    let nodes = got["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    let main = nodes.iter().find(|n| n["main"] == true).unwrap();
    assert_eq!(main["mac"], "F0-09-0D-FA-29-7C");
    let satellite = nodes.iter().find(|n| n["main"] == false).unwrap();
    assert_eq!(satellite["parent"], "F0-09-0D-FA-29-7C");
    assert_eq!(satellite["name"], "Office");

    // What the real client sent, as the emulator saw it (deco.md §11).
    let stats = emu.stats();
    assert_eq!((stats.logins_ok, stats.login_attempts), (1, 1));
    assert_eq!(stats.logouts, 1);
    assert_eq!(stats.bad_signs, 0);
    assert_eq!(stats.signs_with_key, 0, "h/s-only signs after login");
    let requests = emu.requests();
    let keys = &requests[0];
    assert_eq!(keys.target, "/cgi-bin/luci/;stok=/login?form=keys&operation=read");
    assert_eq!((keys.body_len, keys.content_type.as_deref()), (0, None));
    let login = requests
        .iter()
        .find(|r| r.target == "/cgi-bin/luci/;stok=/login?form=login")
        .unwrap();
    assert_eq!(login.sign_len, Some(256), "k, i, h, s: two RSA-512 blocks");
    let admin: Vec<_> = requests
        .iter()
        .filter(|r| r.target.starts_with("/cgi-bin/luci/;stok=<stok>/admin/"))
        .collect();
    assert!(admin.len() >= 7, "{admin:?}");
    for r in &admin {
        assert!(r.cookie, "sysauth sent back: {r:?}");
        assert_eq!(r.sign_len, Some(128), "{r:?}");
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(
        admin.last().map(|r| (r.target.as_str(), r.operation.as_deref())),
        Some(("/cgi-bin/luci/;stok=<stok>/admin/system?form=logout", Some("logout")))
    );
    let calls: Vec<String> = requests.iter().map(|r| r.target.clone()).collect();
    eprintln!("requests: {calls:#?}");
}
