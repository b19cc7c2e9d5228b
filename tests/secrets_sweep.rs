//! Secrets sweep (issue 8, must-have 4): every command and error path runs with known secrets —
//! the MQTT password, the ASUS and Deco passwords, inline and as `password_file` — and every log
//! line, everything printed, every MQTT payload and every file in the state directory is
//! searched for them and for their encodings (base64 plain and as the ASUS login sends it,
//! percent-encoding, hex, SHA-256, the Deco's MD5 auth hash).

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator};
use bandwidth2mqtt::emulators::deco::{Clock, DecoEmulator, EmulatorConfig};
use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};
use support::broker::Broker;
use support::process::{BridgeProc, run_cli};
use support::watcher::Watcher;

const MQTT_PW: &str = "mq77-Pass:w0rd/+";
const MQTT_FILE_PW: &str = "mqF1le-S3cret!";
const ASUS_PW: &str = "router-pass";
const ASUS_WRONG: &str = "asus-Wr0ng&pw";
const DECO_PW: &str = "deco-Owner-pw1";
const DECO_WRONG: &str = "deco-Wr0ng%pw";

/// Every spelling of `secret` that must never appear.
fn spellings(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let asus_login = b64.encode(format!("admin:{secret}"));
    let mut v = vec![
        secret.to_owned(),
        b64.encode(secret),
        b64url.encode(secret),
        asus_login.clone(),
        bandwidth2mqtt::percent::encode(&asus_login),
        bandwidth2mqtt::percent::encode(secret),
        hex(secret.as_bytes()),
        hex(secret.as_bytes()).to_uppercase(),
        hex(&Sha256::digest(secret)),
        hex(&Md5::digest(secret)),
        hex(&Md5::digest(format!("admin{secret}"))),
        secret.to_lowercase(),
    ];
    // base64 drops its trailing padding in some places; the padded form's stem must not appear
    // either.
    v.push(b64.encode(secret).trim_end_matches('=').to_owned());
    v.dedup();
    v
}

struct Sweep {
    secrets: Vec<&'static str>,
    seen: usize,
}

impl Sweep {
    fn check(&mut self, what: &str, text: &str) {
        self.seen += text.len();
        for secret in &self.secrets {
            for spelling in spellings(secret) {
                assert!(
                    !text.contains(&spelling),
                    "{what} contains secret {secret:?} as {spelling:?}:\n{text}"
                );
            }
        }
    }

    fn check_output(&mut self, what: &str, out: &std::process::Output) {
        self.check(&format!("{what} stdout"), &String::from_utf8_lossy(&out.stdout));
        self.check(&format!("{what} stderr"), &String::from_utf8_lossy(&out.stderr));
    }

    /// Every file under `dir`, whatever its name.
    fn check_dir(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                self.check_dir(&path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                self.check(&path.display().to_string(), &String::from_utf8_lossy(&bytes));
            }
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A broker that refuses every login with "bad user name or password" (CONNACK code 4).
fn refusing_broker() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().filter_map(Result::ok) {
            let mut buf = [0u8; 512];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&[0x20, 0x02, 0x00, 0x04]);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_log_output_payload_or_state_file() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let asus = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let deco = DecoEmulator::new(EmulatorConfig::home(DECO_PW, Clock::Real)).unwrap();
    let server = deco.serve(0, false).await.unwrap();
    let watcher = Watcher::connect(&broker.host, broker.port, &["#"]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut sweep = Sweep {
        secrets: vec![MQTT_PW, MQTT_FILE_PW, ASUS_PW, ASUS_WRONG, DECO_PW, DECO_WRONG],
        seen: 0,
    };
    let mqtt_file = write(d, "mqtt.secret", &format!("{MQTT_FILE_PW}\n"));
    let asus_file = write(d, "asus.secret", &format!("{ASUS_PW}\n"));
    let deco_wrong_file = write(d, "deco.secret", DECO_WRONG);
    let routers = |asus_pw: &str, deco_pw: &str| {
        format!(
            "[asus.home]\nurl = \"{}\"\n{asus_pw}\ninterval = \"1s\"\ntimeout = \"2s\"\n\
             [deco.mesh]\nurl = \"{}\"\n{deco_pw}\ninterval = \"1s\"\ntimeout = \"2s\"\n",
            asus.url(),
            server.url()
        )
    };
    let good = format!(
        "[mqtt]\nurl = \"{}\"\nusername = \"bridge\"\npassword = \"{MQTT_PW}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n{}",
        broker.url(),
        routers(
            &format!("password = \"{ASUS_PW}\""),
            &format!("password = \"{DECO_PW}\"")
        )
    );
    let files = format!(
        "[mqtt]\nurl = \"{}\"\nusername = \"bridge\"\npassword_file = \"{mqtt_file}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n{}",
        broker.url(),
        routers(
            &format!("password_file = \"{asus_file}\""),
            &format!("password_file = \"{deco_wrong_file}\"")
        )
    );
    let wrong = good
        .replace(&format!("\"{ASUS_PW}\""), &format!("\"{ASUS_WRONG}\""))
        .replace(&format!("\"{DECO_PW}\""), &format!("\"{DECO_WRONG}\""));
    let cli = |args: &'static [&'static str], config: &str, env: Vec<(&'static str, String)>| {
        let path = d.to_path_buf();
        std::fs::write(d.join("c.toml"), config).unwrap();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            run_cli(&path, args, &env)
        })
    };
    let debug = || vec![("RUST_LOG", "bandwidth2mqtt=trace".to_owned())];

    // check-config: valid (inline and files), and every error path.
    for config in [&good, &files] {
        let out = cli(&["check-config", "-c", "c.toml"], config, vec![]).await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        sweep.check_output("check-config", &out);
    }
    let broken = [
        good.replace(&format!("password = \"{MQTT_PW}\""), &format!("password = \"{MQTT_PW}")),
        good.replace(&format!("password = \"{ASUS_PW}\""), &format!("password = {ASUS_PW} ,")),
        format!("{good}\n[mqtt]\n"),
        good.replace(
            "username = \"bridge\"",
            &format!("username = \"bridge\"\npassword_file = \"{mqtt_file}\""),
        ),
        files.replace(&deco_wrong_file, "/nonexistent/secret"),
    ];
    for config in &broken {
        let out = cli(&["check-config", "-c", "c.toml"], config, vec![]).await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        sweep.check_output("check-config error", &out);
    }
    for (var, value) in [
        ("BANDWIDTH2MQTT__MQTT__KEEP_ALIVE", MQTT_PW),
        ("BANDWIDTH2MQTT__MQTT__RETAIN_STATE", DECO_PW),
        ("BANDWIDTH2MQTT__ASUS__HOME__INTERVAL", ASUS_PW),
        ("BANDWIDTH2MQTT__ASUS__HOME__PASSWORD_FILE", ASUS_WRONG),
    ] {
        let out = cli(&["check-config", "-c", "c.toml"], &good, vec![(var, value.to_owned())])
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{var}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sweep.check_output(var, &out);
    }

    // once --dry-run prints every message; once publishes; wrong passwords; password files.
    for (args, config) in [
        (&["once", "--dry-run", "-c", "c.toml"][..], &good),
        (&["once", "-c", "c.toml"][..], &good),
        (&["once", "-c", "c.toml"][..], &files),
        (&["once", "--dry-run", "-c", "c.toml"][..], &wrong),
        (&["once", "-c", "c.toml"][..], &wrong),
    ] {
        let args: &'static [&'static str] = Box::leak(args.to_vec().into_boxed_slice());
        let out = cli(args, config, debug()).await.unwrap();
        sweep.check_output(&args.join(" "), &out);
    }
    assert!(deco.stats().wrong_passwords >= 1 && asus.with(|s| s.stats.failed_logins) >= 1);

    // run, at trace level, until both routers are online; then SIGTERM.
    std::fs::write(d.join("c.toml"), &good).unwrap();
    let bridge = {
        let mut child = BridgeProc::spawn(d, &good);
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/mesh", "online")
            .await;
        watcher
            .wait_payload("bandwidth2mqtt/bridge/source/home", "online")
            .await;
        child.terminate();
        child
    };
    sweep.check("run log", &bridge.log());

    // run against a broker that refuses the MQTT credentials.
    let refusing = good.replace(&broker.url(), &format!("mqtt://127.0.0.1:{}", refusing_broker()));
    std::fs::write(d.join("bridge.log"), "").unwrap();
    let mut bridge = BridgeProc::spawn(d, &refusing);
    let deadline = std::time::Instant::now() + support::WAIT;
    while !bridge.log().contains("MQTT connection failed") {
        assert!(std::time::Instant::now() < deadline, "no MQTT error logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bridge.terminate();
    sweep.check("run log (broker refuses)", &bridge.log());

    for m in watcher.log() {
        sweep.check(&format!("MQTT {}", m.topic), &format!("{} {}", m.topic, m.payload));
    }
    sweep.check_dir(&d.join("data"));
    assert!(
        d.join("data/login-home.json").is_file() && d.join("data/state.json").is_file(),
        "the state dir was swept with its files in it"
    );
    assert!(sweep.seen > 10_000, "the sweep read {} bytes only", sweep.seen);
}
