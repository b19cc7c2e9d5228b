//! The emulator against the bridge's own Deco client, over real HTTP on 127.0.0.1.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::Secret;
use crate::http::{TlsPolicy, build_client};
use crate::sources::deco::protocol::Endpoint;
use crate::sources::deco::session::{DecoClient, DecoError};

const PASSWORD: &str = "s3cret-pass";

fn client(url: &str, password: &str) -> DecoClient {
    let http = build_client(&TlsPolicy::Insecure, Duration::from_secs(5)).unwrap();
    DecoClient::new("mesh", http, url, Secret::new(password), Duration::from_secs(5))
}

fn read() -> serde_json::Value {
    json!({"operation": "read"})
}

async fn home() -> (DecoEmulator, crate::emulators::Server) {
    let emu = DecoEmulator::new(EmulatorConfig::home(PASSWORD, Clock::simulated(1_767_254_400_000))).unwrap();
    let server = emu.serve(0, false).await.unwrap();
    (emu, server)
}

#[tokio::test]
async fn handshake_and_reads() {
    let (emu, server) = home().await;
    let mut deco = client(&server.url(), PASSWORD);
    let devices = deco.read(Endpoint::DEVICE_LIST, &read()).await.unwrap();
    assert_eq!(devices["device_list"][1]["role"], "master");
    assert_eq!(devices["device_list"][1]["mac"], "F0-09-0D-FA-29-7C");
    assert_eq!(devices["device_list"][0]["previous"], "F0-09-0D-FA-29-7C");
    emu.clock().advance(Duration::from_secs(30));
    let clients = deco
        .read(
            Endpoint::CLIENT_LIST,
            &json!({"operation": "read", "params": {"device_mac": "default"}}),
        )
        .await
        .unwrap();
    let list = clients["client_list"].as_array().unwrap();
    assert!(list.len() >= 8, "{list:?}");
    let per_node = deco
        .read(
            Endpoint::CLIENT_LIST,
            &json!({"operation": "read", "params": {"device_mac": "F0-09-0D-FA-29-84"}}),
        )
        .await
        .unwrap();
    let node_list = per_node["client_list"].as_array().unwrap();
    assert!(!node_list.is_empty() && node_list.len() < list.len());
    let stats = emu.stats();
    assert_eq!(
        (stats.keys, stats.auth, stats.login_attempts, stats.logins_ok),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.signs_without_key, 3, "h/s-only signs after login");
    assert_eq!(stats.bad_signs, 0);
    deco.logout().await;
    assert_eq!(emu.stats().logouts, 1);
    assert!(!emu.has_session());
}

#[tokio::test]
async fn wrong_password_counts_to_the_lockout_which_a_reboot_clears() {
    let (emu, server) = home().await;
    let url = server.url();
    for attempt in 1..=LOCKOUT_AFTER {
        // A fresh client each time: the bridge's own etiquette would stop long before.
        let mut deco = client(&url, "wrong");
        let err = deco.read(Endpoint::DEVICE_LIST, &read()).await.unwrap_err();
        let DecoError::Held(hold) = err else { panic!("{err:?}") };
        if attempt < LOCKOUT_AFTER {
            assert!(hold.message.contains("-5002"), "{}", hold.message);
            assert!(
                hold.message
                    .contains(&format!("{} attempts left", LOCKOUT_AFTER - attempt)),
                "{}",
                hold.message
            );
        } else {
            assert!(hold.message.contains("-5003"), "{}", hold.message);
        }
    }
    let stats = emu.stats();
    assert_eq!(
        (stats.wrong_passwords, stats.locked_answers, stats.max_failures),
        (9, 1, 10)
    );
    let mut right = client(&url, PASSWORD);
    let err = right.read(Endpoint::DEVICE_LIST, &read()).await.unwrap_err();
    assert!(
        err.to_string().contains("-5003"),
        "locked even for the right password: {err}"
    );
    emu.reboot();
    let mut right = client(&url, PASSWORD);
    right.read(Endpoint::DEVICE_LIST, &read()).await.unwrap();
}

#[tokio::test]
async fn a_client_backs_off_after_one_wrong_password() {
    let (emu, server) = home().await;
    let mut deco = client(&server.url(), "wrong");
    for _ in 0..5 {
        assert!(deco.read(Endpoint::DEVICE_LIST, &read()).await.is_err());
    }
    assert_eq!(emu.stats().login_attempts, 1);
    assert_eq!(deco.login_attempts(), 1);
}

#[tokio::test]
async fn lost_sessions_in_both_styles_log_in_again_once() {
    for style in [SessionGone::Forbidden, SessionGone::EmptyData] {
        let (emu, server) = home().await;
        emu.set_faults(Faults {
            session_gone: style,
            ..Faults::default()
        });
        let mut deco = client(&server.url(), PASSWORD);
        deco.read(Endpoint::PERFORMANCE, &read()).await.unwrap();
        emu.kick_session();
        deco.read(Endpoint::PERFORMANCE, &read())
            .await
            .unwrap_or_else(|e| panic!("{style:?}: {e}"));
        let stats = emu.stats();
        assert_eq!((stats.logins_ok, stats.sessions_rejected), (2, 1), "{style:?}");
    }
}

#[tokio::test]
async fn an_owner_using_the_app_is_left_alone() {
    let (emu, server) = home().await;
    emu.set_faults(Faults {
        owner_active: true,
        ..Faults::default()
    });
    let mut deco = client(&server.url(), PASSWORD);
    let err = deco.read(Endpoint::PERFORMANCE, &read()).await.unwrap_err();
    assert!(err.to_string().contains("another owner login"), "{err}");
    for _ in 0..5 {
        assert!(deco.read(Endpoint::PERFORMANCE, &read()).await.is_err());
    }
    assert_eq!(emu.stats().login_attempts, 2, "one login, one retry, then a pause");
}

#[tokio::test]
async fn garbage_is_reported_as_invalid() {
    let (emu, server) = home().await;
    let mut deco = client(&server.url(), PASSWORD);
    deco.read(Endpoint::PERFORMANCE, &read()).await.unwrap();
    for (garbage, expect) in [
        (Garbage::Html, "not JSON"),
        (Garbage::BadBase64, "not base64"),
        (Garbage::WrongKey, "does not decrypt"),
        (Garbage::NotJsonInside, "decrypted reply is not JSON"),
    ] {
        emu.set_faults(Faults {
            garbage: Some(garbage),
            ..Faults::default()
        });
        let err = deco.read(Endpoint::PERFORMANCE, &read()).await.unwrap_err();
        assert!(
            matches!(err, DecoError::Invalid { .. }) && err.to_string().contains(expect),
            "{garbage:?}: {err}"
        );
        assert!(err.to_string().starts_with("admin/network?form=performance: "), "{err}");
    }
    emu.set_faults(Faults::default());
    deco.read(Endpoint::PERFORMANCE, &read()).await.unwrap();
    assert_eq!(emu.stats().logins_ok, 1, "garbage does not cost a login");
}

#[tokio::test]
async fn client_list_faults() {
    let (emu, server) = home().await;
    let mut deco = client(&server.url(), PASSWORD);
    let all = json!({"operation": "read", "params": {"device_mac": "default"}});
    emu.set_faults(Faults {
        client_list_http_500: true,
        ..Faults::default()
    });
    let err = deco.read(Endpoint::CLIENT_LIST, &all).await.unwrap_err();
    assert!(matches!(err, DecoError::Http { status: 500, .. }), "{err}");
    emu.set_faults(Faults {
        client_list_timeout_code: true,
        ..Faults::default()
    });
    let err = deco.read(Endpoint::CLIENT_LIST, &all).await.unwrap_err();
    assert!(err.to_string().contains("\"timeout\""), "{err}");
    emu.set_faults(Faults {
        client_list_delay: Some(Duration::from_secs(30)),
        ..Faults::default()
    });
    let mut impatient = {
        let http = build_client(&TlsPolicy::Insecure, Duration::from_millis(300)).unwrap();
        DecoClient::new(
            "mesh",
            http,
            &server.url(),
            Secret::new(PASSWORD),
            Duration::from_millis(300),
        )
    };
    let err = impatient.read(Endpoint::CLIENT_LIST, &all).await.unwrap_err();
    assert!(matches!(err, DecoError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("no answer within 300ms"), "{err}");
    assert!(!err.to_string().contains("stok="), "no stok in messages: {err}");
}

#[tokio::test]
async fn unknown_forms_and_operations() {
    let (_emu, server) = home().await;
    let mut deco = client(&server.url(), PASSWORD);
    let err = deco
        .read(Endpoint::new("admin/nothing", "here"), &read())
        .await
        .unwrap_err();
    assert!(matches!(err, DecoError::Unsupported { .. }), "{err}");
    let err = deco
        .read(Endpoint::new("admin/wireless", "wlan"), &json!({"operation": "write"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("error_code 1"), "{err}");
}

#[test]
fn ground_truth_follows_the_clock() {
    let clock = Clock::simulated(1_767_254_400_000);
    let emu = DecoEmulator::new(EmulatorConfig::home(PASSWORD, clock.clone())).unwrap();
    let before: u64 = emu.ground_truth().values().map(|(rx, tx)| rx + tx).sum();
    assert_eq!(emu.ground_truth().values().map(|(rx, tx)| rx + tx).sum::<u64>(), before);
    clock.advance(Duration::from_secs(3600));
    let after: u64 = emu.ground_truth().values().map(|(rx, tx)| rx + tx).sum();
    assert!(
        after > before + 1_000_000,
        "an hour of a home network: {before} → {after}"
    );
}

#[tokio::test]
async fn a_hung_login_says_what_it_is() {
    let (emu, server) = home().await;
    emu.set_faults(Faults {
        login_delay: Some(Duration::from_secs(30)),
        ..Faults::default()
    });
    let http = build_client(&TlsPolicy::Insecure, Duration::from_millis(300)).unwrap();
    let mut deco = DecoClient::new(
        "mesh",
        http,
        &server.url(),
        Secret::new(PASSWORD),
        Duration::from_millis(300),
    );
    let err = deco.read(Endpoint::DEVICE_LIST, &read()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("login?form=login: cannot reach the Deco: no answer within 300ms"),
        "{text}"
    );
    assert!(text.contains("login is stuck") && text.contains("reboot"), "{text}");
}
