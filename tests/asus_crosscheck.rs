//! Our ASUS emulator against the real Python client, asusrouter 1.21.3 (what Home Assistant's
//! ha-asusrouter uses): if that client reads the emulator as a real router, the emulator
//! speaks the protocol the way routers do. Script: tests/asus_crosscheck.py.

mod support;

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn asusrouter_reads_the_emulator_like_a_router() {
    let Some(python) = support::python::venv_with("asusrouter", &["asusrouter==1.21.3"]) else {
        return;
    };
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    emu.with(|s| s.add_traffic(12_345_678_901, 987_654_321));
    let port = emu.url().rsplit(':').next().unwrap().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/asus_crosscheck.py");
    let out = tokio::process::Command::new(&python)
        .args([script, "127.0.0.1", &port, "admin", "router-pass"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    println!("asusrouter 1.21.3 read: {report}");
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["connected"], true);
    assert_eq!(report["identity"]["model"], "RT-AX86U Pro");
    assert_eq!(report["identity"]["mac"], "04:42:1A:10:20:30");
    assert_eq!(
        report["identity"]["merlin"], false,
        "stock firmware: ajax_sysinfo.asp is a 404"
    );
    // The WAN counters as the library decodes them equal the emulator's.
    assert_eq!(report["network"]["wan"]["rx"], 12_345_678_901u64);
    assert_eq!(report["network"]["wan"]["tx"], 987_654_321u64);
    assert_eq!(report["ram"]["total"], 1_048_576);
    let clients = report["clients"].as_object().unwrap();
    let (count, online) = emu.with(|s| (s.clients.len(), s.clients.iter().filter(|c| c.online).count()));
    assert_eq!(clients.len(), count);
    assert_eq!(clients.values().filter(|c| c["online"] == 1).count(), online);
    assert_eq!(clients["02:1A:11:00:00:00"]["ip"], "192.168.50.10");
    assert_eq!(clients["02:1A:11:00:00:00"]["name"], "Pixel 8");
    assert_eq!(report["disconnected"], true, "Logout.asp answered error_status 8");
    let stats = emu.with(|s| s.stats.clone());
    assert_eq!(stats.logins, 1);
    assert_eq!(stats.logouts, 1);
    assert_eq!(stats.failed_logins, 0);
}
