//! One bridge per `state_dir`: an exclusive lock on `state_dir/.lock`, held for the life of the
//! process and released by the kernel even after `kill -9`. Two bridges on one directory would
//! overwrite each other's totals and spend each other's router logins.

use std::io::{Seek, Write};
use std::path::Path;

use super::StoreError;
use super::store_load::set_aside;

const LOCK_FILE: &str = ".lock";

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct StateDirLock {
    _file: std::fs::File,
}

/// Makes `dir` a usable state directory and locks it. A file where the directory should be
/// is moved aside (unless `read_only`: a dry run moves nothing and goes on without a lock).
/// Only another live bridge on the same directory is an error; anything else that keeps the
/// lock from being taken (a read-only disk) is reported, and the bridge runs without.
pub fn lock(dir: &Path, read_only: bool) -> Result<Option<StateDirLock>, StoreError> {
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        if read_only {
            tracing::error!(path = %dir.display(), "state_dir is not a directory; a dry run moves nothing and remembers nothing.");
            return Ok(None);
        }
        set_aside(dir, false, "(state_dir) is not a directory");
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::error!(path = %dir.display(), error = %e, "Cannot create state_dir; totals and login memory will not survive a restart.");
        return Ok(None);
    }
    let path = dir.join(LOCK_FILE);
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "Cannot create the state_dir lock; nothing keeps a second bridge out.");
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse().ok());
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
                pid,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(path = %path.display(), error = %e, "Cannot lock state_dir; nothing keeps a second bridge out.");
            return Ok(None);
        }
    }
    // Who holds it, for the other bridge's message; best effort.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(Some(StateDirLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), false).unwrap();
        assert!(first.is_some());
        let err = lock(dir.path(), false).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("in use by another bandwidth2mqtt"), "{text}");
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
        drop(first);
        assert!(lock(dir.path(), false).unwrap().is_some(), "free again once released");
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_moved_aside_except_in_a_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("data");
        std::fs::write(&state_dir, "not a directory").unwrap();
        assert!(lock(&state_dir, true).unwrap().is_none());
        assert!(state_dir.is_file(), "a dry run renames nothing");
        assert!(lock(&state_dir, false).unwrap().is_some());
        assert!(state_dir.is_dir());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("data.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
    }
}
