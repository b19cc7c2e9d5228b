//! The durable half of a router source's login etiquette: `login-<source>.json` in the state
//! directory, rewritten atomically (temp file, fsync, rename, fsync of the directory) *before*
//! each login request is sent and as soon as a refusal is learned. It is separate from
//! `state.json` because that is written only after a successful poll and never by
//! `once --dry-run`, while a login happens in every command and a refusal means no poll
//! succeeds — exactly when a crash loop would otherwise forget it.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::login_memory::{LoginMemory, new_salt, password_tag};

#[derive(Debug)]
pub struct LoginJournal {
    /// `None`: remember nothing across restarts (tests, emulator tools).
    path: Option<PathBuf>,
    source: String,
    salt: String,
    tag: String,
    failing: bool,
}

impl LoginJournal {
    /// In-memory only.
    pub fn none() -> Self {
        Self {
            path: None,
            source: String::new(),
            salt: String::new(),
            tag: String::new(),
            failing: false,
        }
    }

    pub fn in_dir(state_dir: &Path, source: &str) -> Self {
        Self {
            path: Some(state_dir.join(format!("login-{source}.json"))),
            source: source.to_owned(),
            ..Self::none()
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What the previous run remembered, and whether it was about this same `password`. An
    /// unreadable journal is reported and treated as empty (the in-process etiquette still
    /// applies).
    pub fn open(&mut self, password: &str) -> Option<(LoginMemory, bool)> {
        let path = self.path.clone()?;
        let memory = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<LoginMemory>(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(source = %self.source, path = %path.display(), error = %e, "Login memory is unreadable; starting without it.");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(source = %self.source, path = %path.display(), error = %e, "Cannot read the login memory; starting without it.");
                None
            }
        };
        let same = memory.as_ref().is_some_and(|m| m.applies_to(password));
        match &memory {
            Some(m) if same => {
                self.salt = m.salt.clone();
                self.tag = m.password.clone();
            }
            _ => {
                self.salt = new_salt();
                self.tag = password_tag(&self.salt, password);
            }
        }
        memory.map(|m| (m, same))
    }

    /// Makes `memory` durable before returning. A failure is logged once (until it works
    /// again); the caller's in-process etiquette still holds, but a restart would forget.
    pub fn save(&mut self, mut memory: LoginMemory) {
        let Some(path) = self.path.clone() else {
            return;
        };
        memory.salt = self.salt.clone();
        memory.password = self.tag.clone();
        match write_atomically(&path, &memory) {
            Ok(()) => {
                if self.failing {
                    tracing::info!(source = %self.source, path = %path.display(), "Login memory writable again.");
                }
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    tracing::error!(source = %self.source, path = %path.display(), error = %e, "Cannot save the login memory; a restart would forget refused passwords and logins already spent.");
                }
                self.failing = true;
            }
        }
    }
}

fn write_atomically(path: &Path, memory: &LoginMemory) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    serde_json::to_writer(&mut file, memory)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::login_memory::RememberedHold;

    #[test]
    fn remembers_for_the_same_password_only_and_never_stores_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = LoginJournal::in_dir(dir.path(), "home");
        assert!(j.open("s3cret-pw").is_none(), "first start");
        j.save(LoginMemory {
            refusals: 1,
            hold: Some(RememberedHold::lasting(None, "wrong password")),
            attempts: vec![1],
            ..LoginMemory::default()
        });
        let text = std::fs::read_to_string(dir.path().join("login-home.json")).unwrap();
        assert!(!text.contains("s3cret"), "{text}");

        let mut again = LoginJournal::in_dir(dir.path(), "home");
        let (memory, same) = again.open("s3cret-pw").unwrap();
        assert!(same);
        assert_eq!(memory.refusals, 1);
        let mut changed = LoginJournal::in_dir(dir.path(), "home");
        let (memory, same) = changed.open("fixed-pw").unwrap();
        assert!(!same, "a new password is not held back");
        assert_eq!(
            memory.attempts,
            vec![1],
            "the login budget is about the router, not the password"
        );

        std::fs::write(dir.path().join("login-home.json"), b"\xff\xfe garbage").unwrap();
        assert!(LoginJournal::in_dir(dir.path(), "home").open("x").is_none());
    }
}
