//! The demo's broker: the fallback chain (given URL, a broker answering on the default port,
//! a private mosquitto, the built-in rumqttd) picks what it should and avoids ports that are
//! taken or brokers that turn it away; a broker given with credentials over TLS works for the
//! bridge and the table alike, and the password is printed nowhere.
#![cfg(feature = "demo")]

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use bandwidth2mqtt::demo::{self, BrokerKind, Demo, Lookup, Options, broker};
use support::WAIT;
use support::broker::Broker;
use support::screen::Screen;
use support::watcher::Watcher;

fn lookup(default_port: u16, mosquitto: Option<std::path::PathBuf>) -> Lookup {
    Lookup {
        default_port,
        mosquitto,
        dir: std::env::temp_dir().join(format!("b2m-demo-test-{}-{default_port}", std::process::id())),
    }
}

/// A port where something listens that is not an MQTT broker (it accepts and says nothing).
fn taken_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Nothing installed, nothing on the default port: the demo still works, on its built-in broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_works_with_nothing_installed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (_listener, port) = taken_port();
    let demo = Demo::start(Options {
        speed: 1.0,
        mqtt_url: None,
        mqtt_ca_file: None,
        lookup: Some(lookup(port, None)),
    })
    .await
    .expect("demo starts");
    assert_eq!(demo.broker.kind, BrokerKind::Embedded);
    let deadline = Instant::now() + WAIT;
    while !demo::household_published(&demo.rows()) {
        assert!(
            Instant::now() < deadline,
            "household never published: {:?}",
            demo.rows()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = demo.rows();
    let titan = rows.iter().find(|r| r.name == "Titan").unwrap();
    assert!(titan.total.0.unwrap() >= 1_524_000_000_000, "{titan:?}");
    assert_eq!(titan.online, Some(true));
    demo.stop().await.expect("clean stop");
}

#[tokio::test]
async fn chain_uses_the_given_url_without_probing() {
    let (_listener, port) = taken_port();
    let chosen = broker::choose(Some("mqtt://127.0.0.1:1"), &lookup(port, None))
        .await
        .unwrap();
    assert_eq!(
        (chosen.kind, chosen.url.as_str()),
        (BrokerKind::Given, "mqtt://127.0.0.1:1")
    );
}

#[tokio::test]
async fn chain_uses_a_broker_that_answers_on_the_default_port() {
    let Some(running) = Broker::start() else { return };
    let chosen = broker::choose(None, &lookup(running.port, None)).await.unwrap();
    assert_eq!(chosen.kind, BrokerKind::Running);
    assert_eq!(chosen.url, running.url());
}

#[tokio::test]
async fn chain_starts_a_private_mosquitto_when_nothing_answers() {
    let Some(bin) = broker::find_mosquitto() else {
        if std::env::var("BANDWIDTH2MQTT_REQUIRE_BROKER").is_ok_and(|v| v == "1") {
            panic!("mosquitto is not installed");
        }
        eprintln!("SKIP: mosquitto is not installed");
        return;
    };
    // The default port is taken by something that is not a broker: the chain must go on.
    let (_listener, port) = taken_port();
    let mut chosen = broker::choose(None, &lookup(port, Some(bin))).await.unwrap();
    assert_eq!(chosen.kind, BrokerKind::Mosquitto);
    let (_, private) = chosen.host_port();
    assert_ne!(private, port);
    assert!(broker::answers_mqtt(private).await);
    chosen.stop().await;
    let deadline = Instant::now() + WAIT;
    while broker::answers_mqtt(private).await {
        assert!(Instant::now() < deadline, "mosquitto still answers after stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_falls_back_to_the_built_in_broker_which_keeps_retained_messages() {
    let (_listener, port) = taken_port();
    // No mosquitto (or one that cannot start): the built-in broker.
    let missing = std::path::PathBuf::from("/nonexistent/mosquitto");
    let chosen = broker::choose(None, &lookup(port, Some(missing))).await.unwrap();
    assert_eq!(chosen.kind, BrokerKind::Embedded);
    let (host, private) = chosen.host_port();
    let publisher = Watcher::connect(&host, private, &["unused/#"]).await;
    publisher.publish("b2m/test/state", "retained-hello", true).await;
    // A subscriber that comes later still gets it: the bridge relies on retained messages.
    let deadline = Instant::now() + WAIT;
    loop {
        let late = Watcher::connect(&host, private, &["b2m/test/#"]).await;
        let got = tokio::time::timeout(
            Duration::from_secs(2),
            late.wait_payload("b2m/test/state", "retained-hello"),
        )
        .await;
        if got.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retained message never delivered by the built-in broker"
        );
    }
}

/// A broker on the default port that turns anonymous clients away is not one the demo can use:
/// the chain goes on instead of bridging into a broker that refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_passes_over_a_default_port_broker_that_wants_a_password() {
    let Some(locked) = Broker::start_with("allow_anonymous false\n") else {
        return;
    };
    assert!(!broker::answers_mqtt(locked.port).await);
    let missing = std::path::PathBuf::from("/nonexistent/mosquitto");
    let chosen = broker::choose(None, &lookup(locked.port, Some(missing))).await.unwrap();
    assert_eq!(chosen.kind, BrokerKind::Embedded);
}

fn mosquitto_passwd() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin"].map(std::path::PathBuf::from))
        .map(|d| d.join("mosquitto_passwd"))
        .find(|p| p.is_file())
}

const USER: &str = "demo_user";
const PASSWORD: &str = "Dm0-Pa55:w/rd@x";

/// `--mqtt-url mqtts://user:password@127.0.0.1:PORT --mqtt-ca-file ca.pem` against a mosquitto
/// that wants that password and speaks TLS with a private CA: the bridge publishes the
/// household there, the table reads it back from there, and neither the intro, the
/// `mosquitto_sub` line nor the table shows the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_against_a_broker_with_a_password_over_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(passwd) = mosquitto_passwd() else {
        if std::env::var("BANDWIDTH2MQTT_REQUIRE_BROKER").is_ok_and(|v| v == "1") {
            panic!("mosquitto_passwd is not installed");
        }
        eprintln!("SKIP: mosquitto_passwd is not installed");
        return;
    };
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = support::pki::make_pki(pki_dir.path());
    let password_file = pki_dir.path().join("passwd");
    let made = Command::new(passwd)
        .arg("-c")
        .arg("-b")
        .arg(&password_file)
        .args([USER, PASSWORD])
        .status()
        .unwrap();
    assert!(made.success());
    let tls_port = support::broker::free_port();
    let extra = format!(
        "allow_anonymous false\npassword_file {}\nlistener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
        password_file.display(),
        pki.ca,
        pki.server_cert,
        pki.server_key
    );
    let Some(broker) = Broker::start_with(&extra) else {
        return;
    };
    // Anonymous clients are turned away: whatever arrives below came with the password.
    assert!(!broker::answers_mqtt(broker.port).await);

    let encoded = bandwidth2mqtt::percent::encode(PASSWORD);
    let screen = Screen::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let options = Options {
        speed: 30.0,
        mqtt_url: Some(format!("mqtts://{USER}:{encoded}@127.0.0.1:{tls_port}")),
        mqtt_ca_file: Some(pki.ca.clone().into()),
        lookup: None,
    };
    let mut out = screen.clone();
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { demo::run(options, shutdown, demo::Screen::Plain, &mut out).await }
    });
    let text = || screen.text();
    let deadline = Instant::now() + WAIT + WAIT;
    while !(text().contains("The household is on the broker")
        && text().lines().any(|l| l.starts_with("Titan") && l.contains("iB")))
    {
        assert!(Instant::now() < deadline, "the table never filled:\n{}", text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    run.await.unwrap().expect("clean stop");
    let text = text();
    assert!(
        text.contains(&format!(
            "mosquitto_sub -h 127.0.0.1 -p {tls_port} -u {USER} -P '<password>' --cafile {} -t 'bandwidth2mqtt_demo/#' -v",
            pki.ca
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("Broker: mqtts://127.0.0.1:{tls_port} ")),
        "{text}"
    );
    for spelling in [PASSWORD, encoded.as_str()] {
        assert!(!text.contains(spelling), "password printed:\n{text}");
    }
}

/// A bad `--mqtt-url` is a usage error (exit 2) whose message names the flag and not the
/// password that was in it; so is a CA file that cannot be read.
#[test]
fn a_bad_mqtt_url_exits_2_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["http://u:Hunter2pw@127.0.0.1", "mqtt://u:Hunter2pw@127.0.0.1:99999"] {
        let out = support::process::run_cli(dir.path(), &["demo", "--mqtt-url", url], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains("--mqtt-url"), "{stderr}");
        assert!(!stderr.contains("Hunter2pw"), "{stderr}");
    }
    let args = [
        "demo",
        "--mqtt-url",
        "mqtts://127.0.0.1:1",
        "--mqtt-ca-file",
        "/nonexistent/ca.pem",
    ];
    let out = support::process::run_cli(dir.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--mqtt-ca-file") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
}

/// A normal run and stop on the built-in broker logs no ERROR: rumqttd reports every client's
/// normal disconnect (the probe, the table, the bridge) as `ERROR router-drop
/// error=Recv(Disconnected)`, which the demo's log leaves out (issue 16 §3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_run_and_stop_on_the_built_in_broker_logs_no_error() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let log = Screen::default();
    let writer = log.clone();
    let logs = demo::logging::subscriber("info", move || writer.clone(), false);
    // Its own process under nextest; elsewhere another test may have set one first.
    if tracing::subscriber::set_global_default(logs).is_err() {
        return;
    }
    let (_listener, port) = taken_port();
    let demo = Demo::start(Options {
        speed: 60.0,
        mqtt_url: None,
        mqtt_ca_file: None,
        lookup: Some(lookup(port, None)),
    })
    .await
    .expect("demo starts");
    assert_eq!(demo.broker.kind, BrokerKind::Embedded);
    let deadline = Instant::now() + WAIT;
    while !demo::household_published(&demo.rows()) {
        assert!(Instant::now() < deadline, "household never published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    demo.stop().await.expect("clean stop");
    let text = log.text();
    // The bridge did log (so the capture works), and it said goodbye to the broker.
    assert!(text.contains("Bridge starting."), "{text}");
    assert!(text.contains("Stopped."), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
