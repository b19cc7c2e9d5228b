//! Liveness for container health checks: the running bridge writes `health.json` into its
//! state directory; `bandwidth2mqtt health` (Docker's `HEALTHCHECK`) reads it.
//!
//! A file rather than a socket: the state directory is already the one place the bridge and a
//! second process started in the same container share, it needs no port, and a scratch image
//! has nothing else to offer. The file says whether the broker connection is up and when that
//! was last true; a bridge that hangs stops refreshing it, so staleness is also unhealthy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "health.json";
/// How often the running bridge refreshes the file.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Older than this, the writer is presumed hung or gone.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub connected: bool,
    /// Unix seconds of this write.
    pub updated_s: i64,
    pub pid: u32,
    pub version: String,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Writes atomically (temp file + rename) so a reader never sees half a file. Failures are
/// returned, not logged here: the caller logs once.
pub fn write(state_dir: &Path, connected: bool, now_s: i64) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let health = Health {
        connected,
        updated_s: now_s,
        pid: std::process::id(),
        version: super::VERSION.to_owned(),
    };
    let tmp = state_dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&health).unwrap_or_default())?;
    std::fs::rename(tmp, path(state_dir))
}

/// The verdict of `bandwidth2mqtt health`: `Ok` with a one-line summary, or why not healthy.
pub fn check(state_dir: &Path, now_s: i64) -> Result<String, String> {
    let file = path(state_dir);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("no health file at {} ({e}); is the bridge running?", file.display()))?;
    let health: Health =
        serde_json::from_str(&text).map_err(|e| format!("unreadable health file {}: {e}", file.display()))?;
    let age = now_s - health.updated_s;
    if age > STALE_AFTER.as_secs() as i64 {
        return Err(format!(
            "bridge (pid {}) last reported {age} s ago; it is hung or stopped",
            health.pid
        ));
    }
    if !health.connected {
        return Err(format!(
            "bridge (pid {}) is not connected to the MQTT broker",
            health.pid
        ));
    }
    Ok(format!(
        "healthy: bridge {} (pid {}) connected, reported {age} s ago",
        health.version, health.pid
    ))
}

/// Removed on a clean stop, so a stopped bridge is never reported healthy.
pub fn remove(state_dir: &Path) {
    let _ = std::fs::remove_file(path(state_dir));
}

pub fn now_s() -> i64 {
    crate::sources::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check(dir.path(), 1000).unwrap_err().contains("no health file"));
        write(dir.path(), true, 1000).unwrap();
        assert!(check(dir.path(), 1030).unwrap().starts_with("healthy"));
        assert!(check(dir.path(), 1061).unwrap_err().contains("hung or stopped"));
        write(dir.path(), false, 1000).unwrap();
        assert!(check(dir.path(), 1001).unwrap_err().contains("not connected"));
        std::fs::write(path(dir.path()), "{garbage").unwrap();
        assert!(check(dir.path(), 1001).unwrap_err().contains("unreadable"));
        remove(dir.path());
        assert!(check(dir.path(), 1001).is_err());
    }
}
