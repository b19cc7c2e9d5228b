//! The router TLS policies against a self-signed HTTPS emulator endpoint.

use std::time::Duration;

use bandwidth2mqtt::emulators::serve;
use bandwidth2mqtt::http::{TlsPolicy, build_client, fingerprint};

async fn get(policy: &TlsPolicy, url: &str) -> Result<String, String> {
    let client = build_client(policy, Duration::from_secs(5)).unwrap();
    match client.get(url).send().await {
        Ok(r) => Ok(r.text().await.unwrap_or_default()),
        Err(e) => Err(format!("{e:?}")),
    }
}

#[tokio::test]
async fn insecure_accepts_pinning_checks_and_verify_refuses_self_signed() {
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let server = serve(router, 0, true).await.unwrap();
    let url = server.url();
    assert!(url.starts_with("https://127.0.0.1:"));
    let cert = server.certificate.clone().unwrap();

    assert_eq!(get(&TlsPolicy::Insecure, &url).await.unwrap(), "hello");
    assert_eq!(
        get(&TlsPolicy::Pinned(fingerprint(&cert)), &url).await.unwrap(),
        "hello"
    );
    let wrong = get(&TlsPolicy::Pinned([7; 32]), &url).await.unwrap_err();
    assert!(wrong.contains("pinned"), "{wrong}");
    assert!(
        get(&TlsPolicy::Verify, &url).await.is_err(),
        "a self-signed certificate is not trusted"
    );

    server.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        get(&TlsPolicy::Insecure, &url).await.is_err(),
        "a stopped emulator is down"
    );
}
