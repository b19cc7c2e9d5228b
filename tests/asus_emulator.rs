//! The ASUS emulator's own protocol behaviour, spoken to over raw HTTP: the lockout after five
//! wrong passwords, the error codes for missing and stale tokens, and httpd's form parsing.

use std::time::Duration;

use bandwidth2mqtt::emulators::asus::{AsusConfig, AsusEmulator};
use base64::Engine;

const APP_UA: &str = "asusrouter-Android-DUTUtil-1.0.0.245";

async fn post(url: &str, body: &str, cookie: Option<&str>) -> (u16, String, Option<String>) {
    let client =
        bandwidth2mqtt::http::build_client(&bandwidth2mqtt::http::TlsPolicy::Insecure, Duration::from_secs(5)).unwrap();
    let mut req = client.post(url).header("User-Agent", APP_UA).body(body.to_owned());
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let set_cookie = resp.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), set_cookie)
}

fn auth(user: &str, pass: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("login_authorization={}", b64.replace('=', "%3D"))
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account() {
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let login = format!("{}/login.cgi", emu.url());
    for _ in 0..5 {
        let (status, body, _) = post(&login, &auth("admin", "nope"), None).await;
        assert_eq!(status, 200, "errors travel in the body");
        assert!(body.contains("\"error_status\":\"3\""), "{body}");
    }
    // Now even the right password is refused until the lock expires.
    let (_, body, _) = post(&login, &auth("admin", "router-pass"), None).await;
    assert!(
        body.contains("\"error_status\":\"7\"") && body.contains("remaining_lock_time"),
        "{body}"
    );
    emu.with(|s| s.locked_until = None);
    let (_, body, cookie) = post(&login, &auth("admin", "router-pass"), None).await;
    assert!(body.contains("asus_token"), "{body}");
    assert!(cookie.unwrap().starts_with("asus_token="));
}

#[tokio::test]
async fn tokens_and_form_parsing_behave_like_httpd() {
    let emu = AsusEmulator::start(AsusConfig::default(), false).await.unwrap();
    let (_, body, _) = post(&format!("{}/login.cgi", emu.url()), &auth("admin", "router-pass"), None).await;
    let token = body.split('"').nth(3).unwrap().to_owned();
    let app_get = format!("{}/appGet.cgi", emu.url());
    let cookie = format!("asus_token={token}");

    let (_, no_token, _) = post(&app_get, "hook=uptime()", None).await;
    assert!(no_token.contains("\"error_status\":\"1\""), "{no_token}");
    let (_, stale, _) = post(&app_get, "hook=uptime()", Some("asus_token=stale")).await;
    assert!(stale.contains("\"error_status\":\"2\""), "{stale}");

    // `;` encoded: both hooks answered. Raw `;`: httpd splits the form there, one hook only.
    let (_, both, _) = post(&app_get, "hook=uptime()%3Bmemory_usage(appobj)", Some(&cookie)).await;
    assert!(
        both.contains("\"uptime\"") && both.contains("\"memory_usage\""),
        "{both}"
    );
    let (_, first, _) = post(&app_get, "hook=uptime();memory_usage(appobj)", Some(&cookie)).await;
    assert!(
        first.contains("\"uptime\"") && !first.contains("memory_usage"),
        "{first}"
    );
    assert!(!both.contains("error_status"), "normal replies never carry the word");

    let (status, _, _) = post(&format!("{}/ajax_sysinfo.asp", emu.url()), "", Some(&cookie)).await;
    assert_eq!(status, 404, "stock firmware: no Merlin page");
    let (_, bye, _) = post(&format!("{}/Logout.asp", emu.url()), "", Some(&cookie)).await;
    assert!(bye.contains("\"error_status\":\"8\""));
    let (_, after, _) = post(&app_get, "hook=uptime()", Some(&cookie)).await;
    assert!(
        after.contains("\"error_status\":\"2\""),
        "the token is gone after logout"
    );
}
