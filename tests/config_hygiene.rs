//! Configuration mistakes (issue 8, item 8): each is exit 2 naming the key or position, never a
//! panic, and never repeats a secret.

mod support;

use support::process::run_cli;

fn check(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    let out = run_cli(dir.path(), &["check-config", "-c", "c.toml"], env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_toml_syntax_error_names_the_position_not_the_line() {
    for broken in [
        "[mqtt]\nusername = \"me\"\npassword = \"hunter2-S3cret\n",
        "[mqtt]\npassword = hunter2-S3cret\n",
        "[asus.home]\nurl = \"http://127.0.0.1\"\npassword = \"hunter2-S3cret\" x\n",
    ] {
        let (code, text) = check(broken, &[]);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("TOML syntax error at line"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("S3cret"), "{text}");
    }
}

#[test]
fn an_environment_override_error_does_not_repeat_the_value() {
    let (code, text) = check("", &[("BANDWIDTH2MQTT__MQTT__KEEP_ALIVE", "hunter2-S3cret")]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("mqtt.keep_alive") && text.contains("BANDWIDTH2MQTT__MQTT__KEEP_ALIVE"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    let (code, text) = check("", &[("BANDWIDTH2MQTT__MQTT__RETAIN_STATE", "hunter2-S3cret")]);
    assert_eq!(code, 2, "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn absurd_durations_are_refused_by_check_config_naming_the_key() {
    for (table, key) in [
        ("[host]\ninterval = \"500000000000y\"\n", "host.interval"),
        (
            "[mqtt]\nrefresh_interval = \"500000000000y\"\n",
            "mqtt.refresh_interval",
        ),
        (
            "[deco.mesh]\nurl = \"http://127.0.0.1:9\"\npassword = \"x\"\ninterval = \"500000000000y\"\n",
            "deco.mesh.interval",
        ),
        ("[bridge]\nconsider_home = \"2y\"\n", "bridge.consider_home"),
    ] {
        let (code, text) = check(table, &[]);
        assert_eq!(code, 2, "{table}: {text}");
        assert!(text.contains(key), "{table}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn base_topic_is_a_plain_lower_case_topic() {
    for bad in ["$SYS/bw", "a//b", "Bandwidth", "bw/+/x", "bw/#"] {
        let (code, text) = check(&format!("[mqtt]\nbase_topic = \"{bad}\"\n"), &[]);
        assert_eq!(code, 2, "{bad}: {text}");
        assert!(text.contains("mqtt.base_topic"), "{bad}: {text}");
    }
    let (code, text) = check("[mqtt]\nbase_topic = \"home/bw_2\"\n", &[]);
    assert_eq!(code, 0, "{text}");
}

// Found by fuzzing (config_toml): the `config` crate reads `x[44434444]` in a key as an index and
// built an array that long (2.8 GB for a 150-byte file). Refused before it gets there.
#[test]
fn a_key_with_brackets_is_refused_not_a_huge_allocation() {
    for config in [
        "[\"4UUU.44[44434444].4\"]\n",
        "[bridge]\n\"x[99999999]\" = 1\n",
        "[[devices.\"a[9999999]\"]]\nname = \"x\"\n",
    ] {
        let (code, text) = check(config, &[]);
        assert_eq!(code, 2, "{config}: {text}");
        assert!(text.contains("cannot appear in a key"), "{config}: {text}");
    }
    let (code, text) = check("", &[("BANDWIDTH2MQTT__BRIDGE__X[99999999]", "1")]);
    assert_eq!(code, 0, "{text}");
}
