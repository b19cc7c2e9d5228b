//! Reading `state.json` tolerantly: whatever is wrong with it is reported and set aside, and
//! never a reason not to start (a refusal would be a crash loop under a restart policy, and
//! every total lost anyway). Each device and each counter baseline is read on its own, so one
//! bad entry costs only itself; what was left out stays on disk in a uniquely named copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::store::{PersistedChannel, PersistedDevice, PersistedState};
use crate::model::DeviceId;

pub fn load(path: &Path, format_version: u32, read_only: bool) -> PersistedState {
    let empty = PersistedState {
        version: format_version,
        ..PersistedState::default()
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return empty,
        // A directory in its place, no permission, an I/O error: move it aside if we can.
        Err(e) => {
            set_aside(path, read_only, &format!("cannot be read ({e})"));
            return empty;
        }
    };
    // Invalid UTF-8 (a bit flip, a bad disk) spoils only the strings it is in.
    let text = String::from_utf8_lossy(&bytes);
    let lossy = matches!(text, std::borrow::Cow::Owned(_));
    let doc = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(doc)) => doc,
        Ok(_) => {
            set_aside(path, read_only, "is not a JSON object");
            return empty;
        }
        Err(e) => {
            set_aside(path, read_only, &format!("is not valid JSON ({e})"));
            return empty;
        }
    };
    let mut problems: Vec<String> = Vec::new();
    if lossy {
        problems.push("invalid UTF-8 replaced".into());
    }
    let version = doc.get("version").and_then(Value::as_u64).unwrap_or(1);
    if version > u64::from(format_version) {
        problems.push(format!(
            "written by a newer bandwidth2mqtt (format {version}, this one reads {format_version}); read as far as understood"
        ));
    }
    let mut state = empty;
    if let Some(devices) = doc.get("devices").and_then(Value::as_object) {
        for (key, value) in devices {
            let id = DeviceId::new(key).map_err(|e| e.to_string());
            let device = serde_json::from_value::<PersistedDevice>(value.clone()).map_err(|e| e.to_string());
            match (id, device) {
                (Ok(id), Ok(device)) => {
                    state.devices.insert(id, device);
                }
                (Err(e), _) | (_, Err(e)) => problems.push(format!("device {key:?} left out: {e}")),
            }
        }
    }
    if let Some(channels) = doc.get("channels").and_then(Value::as_array) {
        for value in channels {
            match serde_json::from_value::<PersistedChannel>(value.clone()) {
                Ok(channel) => state.channels.push(channel),
                Err(e) => {
                    let device = value.get("device").and_then(Value::as_str).unwrap_or("?");
                    problems.push(format!("a counter baseline of device {device:?} left out: {e}"));
                }
            }
        }
    }
    if let Some(sources) = doc.get("sources").and_then(Value::as_object) {
        state.sources = sources
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>();
    }
    if !problems.is_empty() {
        let copy = (!read_only)
            .then(|| unique_aside(path, "corrupt"))
            .and_then(|aside| std::fs::copy(path, &aside).ok().map(|_| aside.display().to_string()));
        tracing::error!(
            path = %path.display(),
            copied_to = copy.as_deref().unwrap_or("-"),
            kept_devices = state.devices.len(),
            problems = %problems.join("; "),
            "State file is partly unreadable; everything readable is kept."
        );
    }
    state
}

/// Moves `path` aside (never deletes it) and reports; `read_only` only reports.
pub fn set_aside(path: &Path, read_only: bool, why: &str) {
    if read_only {
        tracing::error!(path = %path.display(), "State file {why}; a dry run starts with empty totals and moves nothing.");
        return;
    }
    let aside = unique_aside(path, "corrupt");
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::error!(
            path = %path.display(),
            moved_to = %aside.display(),
            "State file {why}; it was moved aside and the bridge starts with empty totals."
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            error = %e,
            "State file {why} and cannot be moved aside; the bridge starts with empty totals."
        ),
    }
}

/// `<path>.<what>-<unix seconds>[-n]`: the first such name that does not exist yet, so two
/// problems in one second never overwrite each other's evidence.
pub fn unique_aside(path: &Path, what: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let base = path.with_file_name(format!("{name}.{what}-{secs}"));
    if std::fs::symlink_metadata(&base).is_err() {
        return base;
    }
    (2u32..)
        .map(|n| path.with_file_name(format!("{name}.{what}-{secs}-{n}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::StateStore;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    const TWO_DEVICES: &str = r#"{"version":1,"devices":{"titan":{"totals":{"rx":5,"tx":7}},"beast":{"totals":{"rx":1,"tx":2}}},"channels":[]}"#;

    #[test]
    fn one_bad_device_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let bad = TWO_DEVICES
            .replace(r#"{"rx":1,"tx":2}"#, r#"{"rx":null,"tx":2}"#)
            .replace(
                r#""channels":[]"#,
                r#""channels":[{"device":"titan","source":"host","rx":"x"},{"device":"titan","source":"vnstat","rx":1,"tx":2,"at_ms":3,"advanced_ms":3}]"#,
            );
        std::fs::write(store.path(), bad).unwrap();
        let state = store.load().unwrap();
        assert_eq!(state.devices.len(), 1);
        assert_eq!(state.devices[&DeviceId::new("titan").unwrap()].totals.rx, 5);
        assert_eq!(state.channels.len(), 1, "the good baseline is kept");
        assert!(store.path().exists(), "still in place (the next save rewrites it)");
        assert!(
            names(dir.path()).iter().any(|n| n.starts_with("state.json.corrupt-")),
            "the original is kept"
        );
    }

    #[test]
    fn invalid_utf8_spoils_only_the_strings_it_is_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let mut bytes = TWO_DEVICES.replace("beast", "be\u{1}st").into_bytes();
        let at = bytes.iter().position(|b| *b == 1).unwrap();
        bytes[at] = 0xff;
        std::fs::write(store.path(), bytes).unwrap();
        let state = store.load().unwrap();
        assert_eq!(state.devices.len(), 1, "titan survives: {state:?}");
    }

    #[test]
    fn a_directory_in_place_of_the_file_is_moved_aside_uniquely() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        std::fs::create_dir(store.path()).unwrap();
        assert!(store.load().unwrap().devices.is_empty());
        assert!(!store.path().exists());
        // Twice more within the same second: every piece of evidence is kept.
        std::fs::write(store.path(), "{ torn").unwrap();
        store.load().unwrap();
        std::fs::write(store.path(), "[]").unwrap();
        store.load().unwrap();
        let aside: Vec<_> = names(dir.path())
            .into_iter()
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 3, "{aside:?}");
    }

    #[test]
    fn a_dry_run_reads_but_never_moves() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::read_only(dir.path());
        std::fs::write(store.path(), "{ torn").unwrap();
        assert!(store.load().unwrap().devices.is_empty());
        std::fs::write(store.path(), TWO_DEVICES.replace(r#"{"rx":1,"tx":2}"#, "null")).unwrap();
        assert_eq!(store.load().unwrap().devices.len(), 1);
        assert_eq!(names(dir.path()), vec!["state.json".to_owned()]);
    }

    #[test]
    fn a_newer_format_is_read_as_far_as_understood_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let future = TWO_DEVICES.replace(r#""version":1"#, r#""version":99,"new_thing":{"a":1}"#);
        std::fs::write(store.path(), &future).unwrap();
        let state = store.load().unwrap();
        assert_eq!(state.devices.len(), 2, "totals never go backwards on a downgrade");
        let copies: Vec<_> = names(dir.path())
            .into_iter()
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert_eq!(copies.len(), 1, "the newer file is kept as it was");
        assert_eq!(std::fs::read_to_string(dir.path().join(&copies[0])).unwrap(), future);
    }
}
