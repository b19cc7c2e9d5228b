//! Restarts never cost a router login (issue 8, item 1): a refused password and the logins of
//! the last hour are on disk before the login request leaves, in every command. Cron running
//! `once` with a wrong password, and a crash loop of `run` under `kill -9`, against both
//! routers' emulators.

mod support;

use std::time::Duration;

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator};
use bandwidth2mqtt::emulators::deco::{Clock, DecoEmulator, EmulatorConfig};
use support::WAIT;
use support::broker::Broker;
use support::process::{BridgeProc, run_cli};

const ASUS_PASSWORD: &str = "router-pass";
const DECO_PASSWORD: &str = "deco-Owner-pw1";

fn config(broker: &Broker, asus: &AsusEmulator, deco_url: &str, asus_pw: &str, deco_pw: &str) -> String {
    format!(
        "[mqtt]\nurl = \"{}\"\n[bridge]\nstate_dir = \"data\"\n[host]\nenabled = false\n\
         [asus.home]\nurl = \"{}\"\npassword = \"{asus_pw}\"\ninterval = \"1s\"\ntimeout = \"2s\"\n\
         [deco.mesh]\nurl = \"{deco_url}\"\npassword = \"{deco_pw}\"\ninterval = \"1s\"\ntimeout = \"2s\"\n",
        broker.url(),
        asus.url()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_in_repeated_once_runs_never_lock_either_router() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let asus = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let deco = DecoEmulator::new(EmulatorConfig::home(DECO_PASSWORD, Clock::Real)).unwrap();
    let server = deco.serve(0, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&broker, &asus, &server.url(), "wrong-pass", "not-the-0wner-pw");
    std::fs::write(dir.path().join("config.toml"), &cfg).unwrap();

    // Eleven runs from cron, with and without --dry-run: six would lock the ASUS (5 failures),
    // eleven the Deco (10).
    let path = dir.path().to_path_buf();
    for run in 0..11 {
        let args: &[&str] = if run % 2 == 0 {
            &["once", "-c", "config.toml"]
        } else {
            &["once", "--dry-run", "-c", "config.toml"]
        };
        let p = path.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&p, &args, &[])
        })
        .await
        .unwrap();
        assert!(!out.status.success(), "the sources fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if run > 0 {
            assert!(
                stderr.matches("Still holding back logins after a restart").count() == 2,
                "run {run}: both sources remember:\n{stderr}"
            );
        }
        assert!(!stderr.contains("wrong-pass") && !stderr.contains("not-the-0wner"));
    }
    let (logins, failed, locked) = asus.with(|s| (s.stats.logins, s.stats.failed_logins, s.locked_until.is_some()));
    assert_eq!(
        (logins, failed, locked),
        (1, 1, false),
        "ASUS: one refused login in eleven runs"
    );
    let stats = deco.stats();
    assert_eq!(
        (stats.login_attempts, stats.max_failures, stats.locked_answers),
        (1, 1, 0),
        "Deco: one refused login in eleven runs: {stats:?}"
    );
    let journal = std::fs::read_to_string(dir.path().join("data/login-home.json")).unwrap();
    assert!(journal.contains("\"refusals\":1"), "{journal}");
    assert!(!journal.contains("wrong-pass"));
}

/// Every start of `run` logs in (a kill -9 leaves no logout), so a crash loop would log in on
/// every restart; the hourly budget survives the restarts and stops it.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loop_spends_at_most_the_hourly_login_budget() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let asus = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let deco = DecoEmulator::new(EmulatorConfig::home(DECO_PASSWORD, Clock::Real)).unwrap();
    let server = deco.serve(0, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&broker, &asus, &server.url(), ASUS_PASSWORD, DECO_PASSWORD);
    const RESTARTS: usize = 30;
    let settled =
        |log: &str| log.matches("Logged in to the").count() + log.matches("logins in the last hour already").count();
    for restart in 0..RESTARTS {
        let mut bridge = BridgeProc::spawn(dir.path(), &cfg);
        let before = restart * 2;
        let deadline = std::time::Instant::now() + WAIT;
        // Both sources have either logged in or been held back by the budget.
        while settled(&bridge.log()) < before + 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "restart {restart}:\n{}",
                bridge.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bridge.kill9();
    }
    let asus_logins = asus.with(|s| s.stats.logins);
    let deco_logins = deco.stats().login_attempts;
    assert_eq!(asus_logins, 6, "ASUS: the budget of 6 an hour, not {RESTARTS}");
    assert_eq!(deco_logins, 6, "Deco: the budget of 6 an hour, not {RESTARTS}");
}

/// A clean stop logs out, which gives the login back: `once` from cron every few minutes is
/// not held back by the budget.
#[tokio::test(flavor = "multi_thread")]
async fn once_from_cron_logs_out_and_is_not_held_back() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let asus = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let deco = DecoEmulator::new(EmulatorConfig::home(DECO_PASSWORD, Clock::Real)).unwrap();
    let server = deco.serve(0, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&broker, &asus, &server.url(), ASUS_PASSWORD, DECO_PASSWORD);
    std::fs::write(dir.path().join("config.toml"), &cfg).unwrap();
    for _ in 0..8 {
        let p = dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || run_cli(&p, &["once", "-c", "config.toml"], &[]))
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(asus.with(|s| (s.stats.logins, s.stats.logouts)), (8, 8));
    let stats = deco.stats();
    assert_eq!((stats.logins_ok, stats.logouts), (8, 8));
}
