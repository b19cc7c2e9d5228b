//! The command line and configuration contract: exit codes, messages naming the key and the
//! file, environment overrides (values kept byte for byte), password files, secrets never
//! printed, a bad `--log-level`, the metrics endpoint's loopback default.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use bandwidth2mqtt::config::{ConfigSource, load_from};
use support::process::run_cli;

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    dir.join(name).display().to_string()
}

fn check(dir: &Path, config: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let path = write(dir, "bw.toml", config);
    let out = run_cli(dir, &["check-config", "-c", &path], env);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn defaults_without_any_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(dir.path(), &["check-config"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("built-in defaults"), "{text}");
    assert!(text.contains("url = \"mqtt://127.0.0.1:1883\""), "{text}");
    assert!(text.contains("[host]\nenabled = true"), "{text}");
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(dir.path(), &["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = run_cli(dir.path(), &["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check-config", "once"] {
        assert!(help.contains(cmd), "{help}");
    }
}

#[test]
fn unknown_keys_fail_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    for (config, key) in [
        ("colour = \"red\"\n", "colour"),
        ("[mqtt]\nurll = \"mqtt://x\"\n", "mqtt.urll"),
        ("[vnstat.beast]\ncomand = [\"vnstat\"]\n", "vnstat.beast.comand"),
        ("[host]\nintervall = \"5s\"\n", "host.intervall"),
    ] {
        let (code, stdout, stderr) = check(dir.path(), config, &[]);
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(stderr.contains(key), "{config}: {stderr}");
        assert!(stderr.contains("bw.toml"), "names the file: {stderr}");
        assert!(stdout.is_empty());
    }
}

#[test]
fn bad_values_fail_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (config, key) in [
        ("[host]\ninterval = \"fast\"\n", "host.interval"),
        ("[host]\ninterval = \"0s\"\n", "host.interval"),
        ("[mqtt]\nretain_state = \"maybe\"\n", "mqtt.retain_state"),
        ("[mqtt]\nurl = \"http://broker\"\n", "mqtt.url"),
        ("[mqtt]\nurl = \"mqtt://broker:99999\"\n", "mqtt.url"),
        ("[mqtt]\nbase_topic = \"homeassistant\"\n", "mqtt.base_topic"),
        ("[mqtt]\nbase_topic = \"a/#\"\n", "mqtt.base_topic"),
        (
            "[mqtt]\nca_file = \"/nonexistent/ca.pem\"\nurl = \"mqtts://x\"\n",
            "mqtt.ca_file",
        ),
        ("[vnstat.Beast]\n", "vnstat.Beast"),
        ("[vnstat.bridge]\n", "vnstat.bridge"),
        ("[vnstat.beast]\ncommand = []\n", "vnstat.beast.command"),
        ("[vnstat.beast]\nmac = \"not-a-mac\"\n", "vnstat.beast.mac"),
        ("[devices.\"zz:zz\"]\nname = \"x\"\n", "devices.zz:zz"),
        ("[bridge]\nlog_level = \"loud\"\n", "bridge.log_level"),
    ] {
        let (code, _, stderr) = check(dir.path(), config, &[]);
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(stderr.contains(key), "{config}: {stderr}");
    }
}

#[test]
fn broken_toml_and_missing_file_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = check(dir.path(), "[mqtt\nurl = 1", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bw.toml"), "{stderr}");
    let out = run_cli(dir.path(), &["check-config", "-c", "/nonexistent.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));
}

#[test]
fn environment_overrides_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = check(
        dir.path(),
        "[mqtt]\nurl = \"mqtt://file:1883\"\n[vnstat.beast]\n",
        &[
            ("BANDWIDTH2MQTT__MQTT__URL", "mqtts://env-broker:8883"),
            ("BANDWIDTH2MQTT__MQTT__CLIENT_ID", "from_env"),
            ("BANDWIDTH2MQTT__HOST__ENABLED", "false"),
            ("BANDWIDTH2MQTT__VNSTAT__BEAST__COMMAND", "ssh,beast,vnstat,--json,f,1"),
            ("BANDWIDTH2MQTT__VNSTAT__BEAST__INTERVAL", "2m"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("url = \"mqtts://env-broker:8883\""), "{stdout}");
    assert!(stdout.contains("client_id = \"from_env\""), "{stdout}");
    assert!(stdout.contains("enabled = false"), "{stdout}");
    assert!(
        stdout.contains(r#"command = ["ssh", "beast", "vnstat", "--json", "f", "1"]"#),
        "{stdout}"
    );
    assert!(stdout.contains("interval = \"2m\""), "{stdout}");
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = check(dir.path(), "", &[("BANDWIDTH2MQTT__HOST__INTERVAL", "soon")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("host.interval") && stderr.contains("BANDWIDTH2MQTT__HOST__INTERVAL"),
        "{stderr}"
    );
    let (code, _, stderr) = check(dir.path(), "", &[("BANDWIDTH2MQTT__MQTT__NOPE", "1")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("mqtt.nope"), "{stderr}");
}

#[test]
fn config_file_from_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "elsewhere.toml", "[mqtt]\nclient_id = \"picked_up\"\n");
    let out = run_cli(dir.path(), &["check-config"], &[("BANDWIDTH2MQTT_CONFIG", &path)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("picked_up"));
    // ./bandwidth2mqtt.toml is the fallback.
    write(
        dir.path(),
        "bandwidth2mqtt.toml",
        "[mqtt]\nclient_id = \"local_file\"\n",
    );
    let out = run_cli(dir.path(), &["check-config"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("local_file"));
}

#[test]
fn secrets_are_redacted_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = check(
        dir.path(),
        "[mqtt]\nusername = \"ha\"\npassword = \"hunter2-secret\"\n",
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("password = \"***\""), "{stdout}");
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));

    let (_, stdout, stderr) = check(dir.path(), "", &[("BANDWIDTH2MQTT__MQTT__PASSWORD", "0123-from-env")]);
    assert!(stdout.contains("password = \"***\""), "{stdout}");
    assert!(!stdout.contains("0123") && !stderr.contains("0123"));
}

#[test]
fn password_file_twin() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "mqtt_password", "file-secret\n");
    let (code, stdout, stderr) = check(
        dir.path(),
        &format!("[mqtt]\nusername = \"ha\"\npassword_file = \"{secret}\"\n"),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("password = \"***\""), "the file was read: {stdout}");
    assert!(!stdout.contains("file-secret"));

    let (code, _, stderr) = check(dir.path(), "[mqtt]\npassword_file = \"/nonexistent/secret\"\n", &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("mqtt.password_file"), "{stderr}");

    let (code, _, stderr) = check(
        dir.path(),
        &format!("[mqtt]\npassword = \"x\"\npassword_file = \"{secret}\"\n"),
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("mqtt.password_file") && stderr.contains("not both"),
        "{stderr}"
    );
}

#[test]
fn once_and_run_refuse_bad_config_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bw.toml", "[mqtt]\nurl = 5\n");
    for args in [vec!["once", "-c", &path], vec!["run", "-c", &path], vec!["-c", &path]] {
        let out = run_cli(dir.path(), &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn household_rules_fail_naming_both_keys() {
    let dir = tempfile::tempdir().unwrap();
    // Two servers claiming one MAC (any spelling): both keys are named.
    let config = "[host]\nenabled = false\n[vnstat.titan]\nmac = \"aa:bb:cc:00:00:01\"\n\
                  [vnstat.beast]\nmac = [\"aa:bb:cc:00:00:02\", \"AA-BB-CC-00-00-01\"]\n";
    let (code, _, stderr) = check(dir.path(), config, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("vnstat.beast.mac") && stderr.contains("vnstat.titan.mac"),
        "{stderr}"
    );
    // The host's MAC is a server's MAC too.
    let config = "[host]\nmac = \"aa:bb:cc:00:00:01\"\n[vnstat.titan]\nmac = \"aa:bb:cc:00:00:01\"\n";
    let (code, _, stderr) = check(dir.path(), config, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("vnstat.titan.mac") && stderr.contains("host.mac"),
        "{stderr}"
    );
    // A [devices] entry for a server's MAC.
    let config = "[vnstat.titan]\nmac = \"aa:bb:cc:00:00:01\"\n[devices.\"AA:BB:CC:00:00:01\"]\nname = \"T\"\n";
    let (code, _, stderr) = check(dir.path(), config, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("devices.AA:BB:CC:00:00:01") && stderr.contains("vnstat.titan.mac"),
        "{stderr}"
    );
}

#[test]
fn bad_periods_plans_and_device_lists_fail_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let router = "[asus.home]\nurl = \"http://192.168.50.1\"\npassword = \"x\"\n";
    let two_routers = format!("{router}[asus.office]\nurl = \"http://192.168.51.1\"\npassword = \"x\"\n");
    for (config, key, why) in [
        (
            "[bridge]\ntimezone = \"Mars/Olympus\"\n".to_owned(),
            "bridge.timezone",
            "Mars/Olympus",
        ),
        (
            "[bridge]\nmonth_start_day = 29\n".into(),
            "bridge.month_start_day",
            "28",
        ),
        ("[bridge]\nmonth_start_day = 0\n".into(), "bridge.month_start_day", "28"),
        (
            "[bridge]\nrandom_macs = \"hide\"\n".into(),
            "bridge.random_macs",
            "hide",
        ),
        ("[bridge]\nforget_after = \"5m\"\n".into(), "bridge.forget_after", "1h"),
        (
            "[bridge]\nexclude = [\"zz:zz:zz:zz:zz:zz\"]\n".into(),
            "bridge.exclude",
            "zz",
        ),
        (
            "[bridge]\ninclude = [\"Laptop\"]\nexclude = [\"laptop\"]\n".into(),
            "bridge.exclude",
            "include",
        ),
        (
            format!("{router}[plan.wan]\nquota = \"lots\"\n"),
            "plan.wan.quota",
            "lots",
        ),
        (format!("{router}[plan.wan]\nquota = 0\n"), "plan.wan.quota", "1 byte"),
        (
            format!("{router}[plan.wan]\nquota = \"1TB\"\nwarn_at = 90\n"),
            "plan.wan.warn_at",
            "90%",
        ),
        (
            format!("{router}[plan.wan]\nquota = \"1TB\"\nperiod = \"week\"\n"),
            "plan.wan.period",
            "week",
        ),
        (
            format!("{router}[plan.wan]\nquota = \"1TB\"\nquotas = 1\n"),
            "plan.wan.quotas",
            "unknown",
        ),
        (
            format!("{two_routers}[plan.wan]\nquota = \"1TB\"\n"),
            "plan.wan",
            "one [asus] router",
        ),
        (
            format!("{router}[plan.wan]\nquota = \"1TB\"\n[plan.home]\nquota = \"2TB\"\n"),
            "plan.",
            "already has a plan",
        ),
        ("[plan.Titan]\nquota = \"1TB\"\n".into(), "plan.Titan", "device id"),
    ] {
        let (code, _, stderr) = check(dir.path(), &config, &[]);
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(stderr.contains(key), "{config}: names {key}: {stderr}");
        assert!(stderr.contains(why), "{config}: says {why}: {stderr}");
    }
    let ok = format!(
        "{router}[bridge]\ntimezone = \"Europe/Berlin\"\nmonth_start_day = 15\nrandom_macs = \"group\"\n\
         forget_after = \"0s\"\nexclude = [\"AA:BB:CC:00:00:09\", \"Guest TV\"]\n\
         [plan.wan]\nquota = \"1TB\"\nwarn_at = \"90%\"\n[plan.\"aa:bb:cc:00:00:02\"]\nquota = \"5 GiB\"\nperiod = \"day\"\n"
    );
    let (code, stdout, stderr) = check(dir.path(), &ok, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("quota = 1000000000000"), "{stdout}");
    // List keys from the environment are comma-separated.
    let env = [("BANDWIDTH2MQTT__BRIDGE__INCLUDE", "Laptop,aa:bb:cc:00:00:07")];
    let (code, stdout, stderr) = check(dir.path(), "", &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(r#"include = ["Laptop", "aa:bb:cc:00:00:07"]"#),
        "{stdout}"
    );
}

/// `config` lower-cases keys from the environment; the values (passwords!) must arrive exactly as
/// set, mixed case, digits and punctuation included, and not parsed into numbers.
#[test]
fn passwords_from_the_environment_keep_their_case() {
    const MIXED: &str = "MiXeD-Case_Pa55/Wörd";
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bw.toml", "[asus.home]\nurl = \"http://127.0.0.1:1\"\n");
    let env: BTreeMap<String, String> = [
        ("BANDWIDTH2MQTT__ASUS__HOME__PASSWORD", MIXED),
        ("BANDWIDTH2MQTT__ASUS__HOME__USERNAME", "AdminUser"),
        ("BANDWIDTH2MQTT__DECO__MESH__URL", "http://127.0.0.1:2"),
        ("BANDWIDTH2MQTT__DECO__MESH__PASSWORD", "DeCo-OWNER"),
        ("BANDWIDTH2MQTT__MQTT__USERNAME", "HA"),
        ("BANDWIDTH2MQTT__MQTT__PASSWORD", "0123AbC"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let loaded = load_from(ConfigSource::File(path.into()), env).expect("valid");
    let s = &loaded.settings;
    let asus = &s.asus["home"];
    assert_eq!(asus.password.as_ref().map(|p| p.expose()), Some(MIXED));
    assert_eq!(asus.username, "AdminUser");
    assert_eq!(s.deco["mesh"].password.as_ref().map(|p| p.expose()), Some("DeCo-OWNER"));
    assert_eq!(s.mqtt.username.as_deref(), Some("HA"));
    assert_eq!(s.mqtt.password.as_ref().map(|p| p.expose()), Some("0123AbC"));
}

/// `--log-level` takes the five levels only; clap refuses anything else before any
/// configuration is read: exit 2 and a message naming the flag and the levels.
#[test]
fn a_bad_log_level_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--log-level", "loud", "check-config"][..],
        &["once", "--dry-run", "--log-level", "LOUD"],
        &["--log-level", ""],
    ] {
        let out = run_cli(dir.path(), args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--log-level"), "{args:?}: {stderr}");
        assert!(stderr.contains("debug"), "lists the levels: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = run_cli(dir.path(), &["--log-level", "trace", "check-config"], &[]);
    assert_eq!(out.status.code(), Some(0));
}

/// The metrics endpoint listens on loopback unless configured otherwise (it tells who is home).
#[test]
fn metrics_listen_on_loopback_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = check(dir.path(), "[metrics]\nenabled = true\n", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("[metrics]\nenabled = true\nlisten = \"127.0.0.1:9101\""),
        "{stdout}"
    );
}

#[test]
fn agent_tables_are_checked_and_their_keys_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "beast.key", "beast-key-0123456789abcdef\n");
    let (code, stdout, stderr) = check(
        dir.path(),
        &format!("[agents.beast]\nkey_file = \"{key}\"\nmac = \"aa:bb:cc:dd:ee:01\"\nmax_bps = 1e9\n"),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("key = \"***\""), "the file was read: {stdout}");
    assert!(!stdout.contains("beast-key"), "{stdout}");
    for (config, key) in [
        // The source name agent `x` gets (issue 21).
        ("[vnstat.agent_x]\n", "vnstat.agent_x"),
        ("[agents.beast]\nkey = \"short\"\n", "agents.beast.key"),
        ("[agent]\nkey = \"short\"\n", "agent.key"),
        ("[agents.Beast]\n", "agents.Beast"),
        ("[agents.beast]\nmax_bps = -1\n", "agents.beast.max_bps"),
        (
            "[agents.beast]\nmac = \"aa:bb:cc:dd:ee:01\"\n[agents.panda]\nmac = \"aa:bb:cc:dd:ee:01\"\n",
            "agents.panda.mac",
        ),
    ] {
        let (code, _, stderr) = check(dir.path(), config, &[]);
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(stderr.contains(key), "{config}: {stderr}");
        assert!(!stderr.contains("short\""), "{stderr}");
    }
}
