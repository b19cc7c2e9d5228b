//! Optional Prometheus endpoint (`[metrics] enabled = true`, `listen = "127.0.0.1:9101"`):
//! per-device totals, rates and online state, per-source polls, errors, last success and poll
//! duration, and the MQTT queue depth (topics waiting in the outbox).
//!
//! The core writes a snapshot after each poll; the HTTP task only reads it, so a scrape never
//! waits for, or slows down, the bridge. Text exposition format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::accounting::Device;
use crate::publish::Outbox;

#[derive(Debug, Clone, Default, PartialEq)]
struct DeviceRow {
    name: String,
    kind: &'static str,
    rx: u64,
    tx: u64,
    rx_bps: Option<f64>,
    tx_bps: Option<f64>,
    online: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct SourceRow {
    kind: &'static str,
    polls: u64,
    errors: u64,
    up: bool,
    last_success_s: Option<f64>,
    last_duration_s: f64,
}

#[derive(Debug, Default)]
struct Snapshot {
    devices: BTreeMap<String, DeviceRow>,
    sources: BTreeMap<String, SourceRow>,
}

/// Name, type, help, and how to read the value off a row (`None`: no sample).
type Family<R> = (&'static str, &'static str, &'static str, fn(&R) -> Option<f64>);

pub struct MetricsHub {
    version: &'static str,
    snapshot: Mutex<Snapshot>,
    outbox: Arc<Outbox>,
}

impl MetricsHub {
    pub fn new(version: &'static str, outbox: Arc<Outbox>) -> Self {
        Self {
            version,
            snapshot: Mutex::new(Snapshot::default()),
            outbox,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // Each update replaces whole rows, so a poisoned lock still holds consistent data.
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One poll of `source` finished (`ok` or not) after `duration_s`, at `now_s`.
    pub fn record_poll(&self, source: &str, kind: &'static str, ok: bool, duration_s: f64, now_s: f64) {
        let mut snap = self.lock();
        let row = snap.sources.entry(source.to_owned()).or_default();
        row.kind = kind;
        row.polls += 1;
        row.up = ok;
        row.last_duration_s = duration_s;
        if ok {
            row.last_success_s = Some(now_s);
        } else {
            row.errors += 1;
        }
    }

    pub fn update_device(&self, device: &Device) {
        let row = DeviceRow {
            name: device.name().to_owned(),
            kind: device.kind.as_str(),
            rx: device.totals.rx,
            tx: device.totals.tx,
            rx_bps: device.rates.rx_bps,
            tx_bps: device.rates.tx_bps,
            online: device.online(),
        };
        self.lock().devices.insert(device.id.as_str().to_owned(), row);
    }

    pub fn remove_device(&self, id: &str) {
        self.lock().devices.remove(id);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let snap = self.lock();
        let mut out = String::new();
        let p = "bandwidth2mqtt";
        let _ = writeln!(
            out,
            "# HELP {p}_build_info The running version.\n# TYPE {p}_build_info gauge"
        );
        let _ = writeln!(out, "{p}_build_info{{version=\"{}\"}} 1", escape(self.version));
        let _ = writeln!(
            out,
            "# HELP {p}_mqtt_queue_depth Topics waiting to be published.\n# TYPE {p}_mqtt_queue_depth gauge\n{p}_mqtt_queue_depth {}",
            self.outbox.pending()
        );

        let device_labels = |id: &str, d: &DeviceRow| {
            format!(
                "device=\"{}\",name=\"{}\",kind=\"{}\"",
                escape(id),
                escape(&d.name),
                d.kind
            )
        };
        let families: [Family<DeviceRow>; 5] = [
            (
                "device_rx_bytes_total",
                "counter",
                "Bytes the device received (download).",
                |d| Some(d.rx as f64),
            ),
            (
                "device_tx_bytes_total",
                "counter",
                "Bytes the device sent (upload).",
                |d| Some(d.tx as f64),
            ),
            ("device_rx_bits_per_second", "gauge", "Current download rate.", |d| {
                d.rx_bps
            }),
            ("device_tx_bits_per_second", "gauge", "Current upload rate.", |d| {
                d.tx_bps
            }),
            ("device_online", "gauge", "1 while the device is online.", |d| {
                d.online.map(|o| if o { 1.0 } else { 0.0 })
            }),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {p}_{name} {help}\n# TYPE {p}_{name} {kind}");
            for (id, d) in &snap.devices {
                if let Some(v) = value(d) {
                    let _ = writeln!(out, "{p}_{name}{{{}}} {v}", device_labels(id, d));
                }
            }
        }

        let source_families: [Family<SourceRow>; 5] = [
            (
                "source_polls_total",
                "counter",
                "Polls (or agent messages) handled.",
                |s| Some(s.polls as f64),
            ),
            ("source_errors_total", "counter", "Polls that failed.", |s| {
                Some(s.errors as f64)
            }),
            ("source_up", "gauge", "1 if the last poll succeeded.", |s| {
                Some(if s.up { 1.0 } else { 0.0 })
            }),
            (
                "source_last_success_timestamp_seconds",
                "gauge",
                "Unix time of the last successful poll.",
                |s| s.last_success_s,
            ),
            (
                "source_poll_duration_seconds",
                "gauge",
                "How long the last poll took.",
                |s| Some(s.last_duration_s),
            ),
        ];
        for (name, kind, help, value) in source_families {
            let _ = writeln!(out, "# HELP {p}_{name} {help}\n# TYPE {p}_{name} {kind}");
            for (source, s) in &snap.sources {
                if let Some(v) = value(s) {
                    let _ = writeln!(
                        out,
                        "{p}_{name}{{source=\"{}\",kind=\"{}\"}} {v}",
                        escape(source),
                        s.kind
                    );
                }
            }
        }
        out
    }
}

/// Label values: backslash, double quote and newline are escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Binds `listen` and serves `GET /metrics` until `shutdown`.
///
/// A deliberately tiny HTTP/1.x responder (one request per connection, then close): one
/// read-only page does not justify pulling the emulators' HTTP stack into the bridge's core.
pub async fn serve(
    listen: SocketAddr,
    hub: Arc<MetricsHub>,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "Prometheus metrics at /metrics.");
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::debug!(error = %e, "Metrics connection not accepted.");
                        continue;
                    }
                },
            };
            let hub = hub.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), answer(stream, &hub)).await;
            });
        }
    }))
}

/// Reads the request head (up to 8 KiB) and answers it.
async fn answer(mut stream: tokio::net::TcpStream, hub: &MetricsHub) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", hub.render()),
        ("GET", _) => ("404 Not Found", "text/plain", "only /metrics here\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sources_and_escapes_labels() {
        let hub = MetricsHub::new("1.2.3", Arc::new(Outbox::new()));
        hub.record_poll("home", "asus", true, 0.25, 100.0);
        hub.record_poll("home", "asus", false, 1.5, 110.0);
        let text = hub.render();
        assert!(text.contains("bandwidth2mqtt_build_info{version=\"1.2.3\"} 1"));
        assert!(text.contains("bandwidth2mqtt_source_polls_total{source=\"home\",kind=\"asus\"} 2"));
        assert!(text.contains("bandwidth2mqtt_source_errors_total{source=\"home\",kind=\"asus\"} 1"));
        assert!(text.contains("bandwidth2mqtt_source_up{source=\"home\",kind=\"asus\"} 0"));
        assert!(
            text.contains("bandwidth2mqtt_source_last_success_timestamp_seconds{source=\"home\",kind=\"asus\"} 100")
        );
        assert!(text.contains("bandwidth2mqtt_source_poll_duration_seconds{source=\"home\",kind=\"asus\"} 1.5"));
        assert!(text.contains("bandwidth2mqtt_mqtt_queue_depth 0"));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
