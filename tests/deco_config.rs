//! The `[deco.<name>]` configuration: defaults, secrets, validation messages.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bandwidth2mqtt::config::{ConfigSource, SpeedUnit, load_from};
use support::process::run_cli;

fn load(toml: &str, env: &[(&str, &str)]) -> Result<bandwidth2mqtt::config::LoadedConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    load_from(ConfigSource::File(path), env).map_err(|e| e.to_string())
}

#[test]
fn defaults_follow_the_spec() {
    let loaded = load("[deco.mesh]\nurl = \"http://192.168.68.1\"\npassword = \"pw\"\n", &[]).unwrap();
    let deco = &loaded.settings.deco["mesh"];
    assert_eq!(deco.interval, Duration::from_secs(30));
    assert!(deco.timeout >= Duration::from_secs(30), "client_list is slow");
    assert_eq!(deco.speed_unit, SpeedUnit::KbitPerS);
    assert!(!deco.verify_tls);
    assert_eq!(deco.password.as_ref().unwrap().expose(), "pw");
}

#[test]
fn every_key_and_the_password_file_twin() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("deco_pw");
    std::fs::write(&secret, "from-file\n").unwrap();
    let toml = format!(
        "[deco.mesh]\nurl = \"https://10.0.0.1:8443/\"\npassword_file = \"{}\"\ninterval = \"15s\"\ntimeout = \"1m\"\nspeed_unit = \"kbyte_per_s\"\nverify_tls = true\ntls_fingerprint = \"{}\"\n",
        secret.display(),
        "ab".repeat(32)
    );
    let loaded = load(&toml, &[]).unwrap();
    let deco = &loaded.settings.deco["mesh"];
    assert_eq!(deco.password.as_ref().unwrap().expose(), "from-file");
    assert_eq!(deco.interval, Duration::from_secs(15));
    assert_eq!(deco.timeout, Duration::from_secs(60));
    assert_eq!(deco.speed_unit, SpeedUnit::KbytePerS);
    assert!(deco.verify_tls);

    let loaded = load(
        "[deco.mesh]\nurl = \"http://h\"\n",
        &[("BANDWIDTH2MQTT__DECO__MESH__PASSWORD", "0123")],
    )
    .unwrap();
    assert_eq!(
        loaded.settings.deco["mesh"].password.as_ref().unwrap().expose(),
        "0123",
        "a numeric-looking password stays text"
    );
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        (
            "[deco.mesh]\nurl = \"http://h\"\npassword = \"p\"\npasword = \"x\"\n",
            "deco.mesh.pasword",
        ),
        ("[deco.Mesh]\nurl = \"http://h\"\npassword = \"p\"\n", "deco.Mesh"),
        ("[deco.mesh]\npassword = \"p\"\n", "deco.mesh.url"),
        ("[deco.mesh]\nurl = \"ftp://h\"\npassword = \"p\"\n", "deco.mesh.url"),
        (
            "[deco.mesh]\nurl = \"http://h/admin\"\npassword = \"p\"\n",
            "deco.mesh.url",
        ),
        ("[deco.mesh]\nurl = \"http://h\"\n", "deco.mesh.password"),
        (
            "[deco.mesh]\nurl = \"http://h\"\npassword = \"p\"\nspeed_unit = \"mbit\"\n",
            "deco.mesh.speed_unit",
        ),
        (
            "[deco.mesh]\nurl = \"http://h\"\npassword = \"p\"\ninterval = \"0s\"\n",
            "deco.mesh.interval",
        ),
        (
            "[deco.mesh]\nurl = \"http://h\"\npassword = \"p\"\ntls_fingerprint = \"abc\"\n",
            "deco.mesh.tls_fingerprint",
        ),
        (
            "[deco.mesh]\nurl = \"http://h\"\npassword = \"p\"\npassword_file = \"/nonexistent/x\"\n",
            "deco.mesh.password_file",
        ),
    ];
    for (toml, key) in cases {
        let err = load(toml, &[]).expect_err(toml);
        assert!(err.contains(&format!("`{key}`")), "{toml}\n→ {err}");
    }
}

#[test]
fn check_config_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[host]\nenabled = false\n[deco.mesh]\nurl = \"http://192.168.68.1\"\npassword = \"hunter2-deco\"\n",
    )
    .unwrap();
    let out = run_cli(dir.path(), &["check-config", "-c", "c.toml"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("[deco.mesh]"), "{stdout}");
    assert!(stdout.contains("password = \"***\""), "{stdout}");
    assert!(stdout.contains("speed_unit = \"kbit_per_s\""), "{stdout}");
    assert!(!stdout.contains("hunter2-deco"), "{stdout}");
}
