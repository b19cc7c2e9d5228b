//! The bridge binary as a child process, so tests exercise exactly what users run, including
//! signals and `kill -9`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bandwidth2mqtt");

pub struct BridgeProc {
    child: Option<Child>,
    pub dir: PathBuf,
    log: PathBuf,
}

impl BridgeProc {
    /// Writes `config` to `<dir>/config.toml` and runs `bandwidth2mqtt run -c` on it, in `dir`.
    pub fn spawn(dir: &Path, config: &str) -> Self {
        std::fs::write(dir.join("config.toml"), config).expect("write config");
        // Appended across restarts of the bridge in one test.
        let log = dir.join("bridge.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        // `BANDWIDTH2MQTT_BIN` runs another build (a release binary for measurements).
        let bin = std::env::var("BANDWIDTH2MQTT_BIN").unwrap_or_else(|_| BIN.to_owned());
        let child = Command::new(bin)
            .args(["run", "-c", "config.toml"])
            .current_dir(dir)
            .env("RUST_LOG", "bandwidth2mqtt=debug")
            .env_remove("BANDWIDTH2MQTT_CONFIG")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn bridge");
        Self {
            child: Some(child),
            dir: dir.to_path_buf(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits up to 10 s for a clean exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("bridge did not stop on SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for BridgeProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- bridge log ----\n{}", self.log());
        }
        self.kill9();
    }
}

/// Runs the binary to completion with arguments, in `dir`, with extra environment.
pub fn run_cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("BANDWIDTH2MQTT_CONFIG")
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("BANDWIDTH2MQTT__") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run bridge binary")
}
