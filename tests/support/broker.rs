//! A real mosquitto for each test, on a free port of 127.0.0.1 (retained messages would leak
//! between tests on a shared broker). `BANDWIDTH2MQTT_TEST_MQTT=host:port` uses an external
//! broker instead; `BANDWIDTH2MQTT_REQUIRE_BROKER=1` (set by CI) turns "no broker" into a failure.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    pub host: String,
    pub port: u16,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    extra_conf: String,
}

fn mosquitto_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOSQUITTO_BIN") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

impl Broker {
    /// A plain broker, or `None` (with a printed reason) when none can be had and CI did not
    /// demand one.
    pub fn start() -> Option<Self> {
        Self::start_with("")
    }

    /// A local broker whose listener gets `extra` config lines (TLS files, auth).
    pub fn start_with(extra: &str) -> Option<Self> {
        if extra.is_empty()
            && let Ok(addr) = std::env::var("BANDWIDTH2MQTT_TEST_MQTT")
        {
            let (host, port) = addr.rsplit_once(':').expect("BANDWIDTH2MQTT_TEST_MQTT=host:port");
            return Some(Self {
                host: host.to_owned(),
                port: port.parse().expect("port"),
                child: None,
                dir: None,
                extra_conf: String::new(),
            });
        }
        let Some(bin) = mosquitto_bin() else {
            if std::env::var("BANDWIDTH2MQTT_REQUIRE_BROKER").is_ok_and(|v| v == "1") {
                panic!("no MQTT broker: install mosquitto or set BANDWIDTH2MQTT_TEST_MQTT");
            }
            eprintln!("SKIP: no MQTT broker available (install mosquitto or set BANDWIDTH2MQTT_TEST_MQTT)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut broker = Self {
            host: "127.0.0.1".into(),
            port: 0,
            child: None,
            dir: Some(dir),
            extra_conf: extra.to_owned(),
        };
        // A port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            broker.port = free_port();
            if broker.spawn(&bin) {
                return Some(broker);
            }
        }
        panic!("mosquitto did not start");
    }

    fn spawn(&mut self, bin: &PathBuf) -> bool {
        let dir = self.dir.as_ref().expect("local broker").path();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nuser root\nlistener {} 127.0.0.1\n{}\n",
                self.port, self.extra_conf
            ),
        )
        .expect("write mosquitto.conf");
        let log = std::fs::File::create(dir.join("mosquitto.log")).expect("log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    pub fn url(&self) -> String {
        format!("mqtt://{}:{}", self.host, self.port)
    }

    pub fn is_local(&self) -> bool {
        self.dir.is_some()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same port; with `persistence false` every retained
    /// message is gone, so whatever reappears was published again by the bridge.
    pub fn restart(&mut self) {
        self.stop();
        let bin = mosquitto_bin().expect("mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn(&bin) {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not come back on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
