//! The source on parsed replies (which interfaces, which epoch, what a reboot does to the
//! counts) and on a local HTTP server (status, size cap, refused connection).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::accounting::{ChannelState, CounterEvent};
use crate::model::{MacAddr, TrafficSample};

const AT_MS: i64 = 1_796_700_000_000;

fn source(interfaces: Option<&[&str]>) -> NodeExporterSource {
    let cfg = NodeExporterSettings {
        url: "http://127.0.0.1:9/metrics".into(),
        name: Some("Beast".into()),
        mac: vec!["aa:bb:cc:00:11:22".parse::<MacAddr>().unwrap()].into(),
        interfaces: interfaces.map(|l| l.iter().map(|s| s.to_string()).collect()),
        ..NodeExporterSettings::default()
    };
    NodeExporterSource::new("beast", &cfg)
}

fn reply(boot: &str, time: Option<&str>, rx: &str, tx: &str) -> Scrape {
    let mut text = format!(
        "node_boot_time_seconds {boot}\n\
         node_network_receive_bytes_total{{device=\"eth0\"}} {rx}\n\
         node_network_transmit_bytes_total{{device=\"eth0\"}} {tx}\n\
         node_network_receive_bytes_total{{device=\"lo\"}} 5\n\
         node_network_transmit_bytes_total{{device=\"lo\"}} 5\n\
         node_network_receive_bytes_total{{device=\"veth12ab\"}} 7\n\
         node_network_transmit_bytes_total{{device=\"veth12ab\"}} 7\n"
    );
    if let Some(time) = time {
        text.push_str(&format!("node_time_seconds {time}\n"));
    }
    read(&text)
}

fn counters(obs: &Observation) -> Vec<(String, CounterSample)> {
    obs.traffic
        .iter()
        .map(|t| match &t.sample {
            TrafficSample::Counter(c) => (t.interface.clone().unwrap_or_default(), c.clone()),
            other => panic!("a counter, not {other:?}"),
        })
        .collect()
}

#[test]
fn a_reply_becomes_the_servers_exact_counters() {
    let mut src = source(None);
    let obs = src
        .observe(&reply("1.796696814e+09", Some("1.7967e+09"), "3.99485594e+08", "628669"), AT_MS)
        .unwrap();
    assert_eq!(obs.device.as_str(), "beast");
    assert_eq!(obs.kind, DeviceKind::Server);
    assert_eq!(obs.info.name.as_deref(), Some("Beast"));
    assert_eq!(obs.info.macs, ["aa:bb:cc:00:11:22".parse::<MacAddr>().unwrap()]);
    assert_eq!(obs.online, Some(true));
    // Loopback and virtual interfaces are left out by default.
    let c = counters(&obs);
    assert_eq!(c.len(), 1);
    let (name, c) = &c[0];
    assert_eq!((name.as_str(), c.rx, c.tx, c.at_ms), ("eth0", 399_485_594, 628_669, AT_MS));
    assert_eq!(c.wrap, WrapRule::Never);
    let Some(Epoch::Uptime(boot)) = &c.epoch else {
        panic!("uptime epoch: {:?}", c.epoch)
    };
    assert_eq!(boot.uptime_s, 1_796_700_000 - 1_796_696_814);
    assert_eq!(boot.device_boot_s, Some(1_796_696_814));
}

#[test]
fn configured_interfaces_are_the_ones_published() {
    let mut src = source(Some(&["lo", "wlan9"]));
    let obs = src.observe(&reply("1e9", None, "1", "2"), AT_MS).unwrap();
    let c = counters(&obs);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].0.as_str(), c[0].1.rx), ("lo", 5));
    let mut src = source(Some(&["wlan9"]));
    match src.observe(&reply("1e9", None, "1", "2"), AT_MS) {
        Err(SourceError::Invalid(m)) => assert!(m.contains("(wlan9)"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn counters_that_are_not_byte_counts_skip_their_interface() {
    for (rx, tx) in [("NaN", "1"), ("1", "+Inf"), ("-5", "1")] {
        let mut src = source(None);
        let obs = src.observe(&reply("1e9", None, rx, tx), AT_MS).unwrap();
        assert!(obs.traffic.is_empty(), "{rx} {tx}");
    }
    // Without any netdev counter the poll fails, saying what to switch on.
    let mut src = source(None);
    match src.observe(&read("node_boot_time_seconds 1e9\n"), AT_MS) {
        Err(SourceError::Invalid(m)) => assert!(m.contains("netdev collector"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_epoch_follows_the_boot_and_only_the_boot() {
    let epoch = |boot: &str, time: Option<&str>| {
        let mut src = source(None);
        let obs = src.observe(&reply(boot, time, "1", "1"), AT_MS).unwrap();
        counters(&obs)[0].1.epoch.clone()
    };
    // Only the boot time: within the tolerance the same boot, beyond it a new one.
    let first = epoch("1796696814", None).unwrap();
    assert_eq!(first, Epoch::BootedAt(1_796_696_814));
    assert!(epoch("1796696815.4", None).unwrap().same_as(&first));
    assert!(!epoch("1796699000", None).unwrap().same_as(&first));
    // With the server's clock: its clock stepping moves both, the uptime stays: same boot.
    let first = epoch("1796696814", Some("1796700000")).unwrap();
    assert!(epoch("1796693214", Some("1796696400")).unwrap().same_as(&first));
    // Uptime gone back: rebooted.
    assert!(!epoch("1796699990", Some("1796700000")).unwrap().same_as(&first));
    // No boot time at all (stat collector off): no epoch, counters alone tell.
    let mut src = source(None);
    let obs = src
        .observe(&read("node_network_receive_bytes_total{device=\"eth0\"} 1\nnode_network_transmit_bytes_total{device=\"eth0\"} 1\n"), AT_MS)
        .unwrap();
    assert_eq!(counters(&obs)[0].1.epoch, None);
}

/// A reboot seen through accounting: the new boot's counters count from zero, and nothing of
/// the old boot's is counted twice.
#[test]
fn a_changed_boot_time_is_a_reset_of_the_counters() {
    let mut src = source(None);
    let sample = |src: &mut NodeExporterSource, boot: &str, rx: &str, at_ms: i64| {
        let obs = src.observe(&reply(boot, None, rx, "0"), at_ms).unwrap();
        counters(&obs)[0].1.clone()
    };
    let first = sample(&mut src, "1796696814", "1000000", AT_MS);
    let (mut ch, _) = ChannelState::start_counter(&first, AT_MS, true);
    let (step, _) = ch.update_counter(&sample(&mut src, "1796696814", "1000500", AT_MS + 30_000), AT_MS + 30_000);
    assert_eq!(step.rx, 500);
    let (step, event) = ch.update_counter(&sample(&mut src, "1796800000", "700", AT_MS + 60_000), AT_MS + 60_000);
    assert_eq!((step.rx, event), (700, Some(CounterEvent::NewEpoch)));
}

/// Serves one connection with `response`, returns the URL.
async fn serve_once(response: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        }
    });
    format!("http://{addr}/metrics")
}

fn with_url(url: String) -> NodeExporterSource {
    let cfg = NodeExporterSettings {
        url,
        timeout: Duration::from_secs(10),
        ..NodeExporterSettings::default()
    };
    NodeExporterSource::new("beast", &cfg)
}

#[tokio::test]
async fn polls_over_http_and_refuses_what_it_should() {
    let body = "node_network_receive_bytes_total{device=\"eth0\"} 42\nnode_network_transmit_bytes_total{device=\"eth0\"} 43\n";
    let ok = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    let mut src = with_url(serve_once(ok.into_bytes()).await);
    let obs = src.poll().await.unwrap();
    assert_eq!(counters(&obs[0])[0].1.rx, 42);

    let missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec();
    let mut src = with_url(serve_once(missing).await);
    match src.poll().await {
        Err(SourceError::Unavailable(m)) => assert_eq!(m, "node_exporter answered HTTP 404"),
        other => panic!("{other:?}"),
    }

    // A declared body over the cap is refused before it is read.
    let huge = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        BODY_CAP + 1
    );
    let mut src = with_url(serve_once(huge.into_bytes()).await);
    match src.poll().await {
        Err(SourceError::Invalid(m)) => assert!(m.contains("larger than 8 MiB"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut src = with_url(format!("http://127.0.0.1:{port}/metrics"));
    match src.poll().await {
        Err(SourceError::Unavailable(m)) => assert!(m.starts_with("cannot connect to node_exporter"), "{m}"),
        other => panic!("{other:?}"),
    }
}
