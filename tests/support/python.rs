//! A throw-away virtualenv with one pinned package, for the cross-checks against the public
//! Python clients. Returns `None` (with a printed reason) when Python or the package index is
//! not available, so the check runs wherever it can.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv's python, with `requirement` installed (cached between test runs).
pub fn venv_with(name: &str, requirements: &[&str]) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("venv-{name}"));
    let python = root.join("bin/python");
    let marker = root.join(format!(
        ".installed-{}",
        requirements.join("+").replace(['=', '<', '>'], "_")
    ));
    if marker.is_file() {
        return Some(python);
    }
    let python3 = ["python3", "/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(python3) = python3 else {
        eprintln!("SKIP: no python3 for the {name} cross-check");
        return None;
    };
    let made = Command::new(python3).args(["-m", "venv"]).arg(&root).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: cannot create a virtualenv for the {name} cross-check");
        return None;
    }
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(requirements)
        .status();
    if !installed.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: pip could not install {requirements:?} for the {name} cross-check");
        return None;
    }
    let _ = std::fs::write(&marker, "");
    Some(python)
}
