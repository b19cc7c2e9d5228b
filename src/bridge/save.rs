//! When the state file is written (issue 11), and when it is fsync'd.
//!
//! - **Written** (temp file + rename) after a poll that changed anything that must survive a
//!   restart: a total, a counter baseline, a cursor, an identity, a period, a name
//!   (`Household::persist().dirty`, set where those change — no comparison of the whole
//!   state). A Deco estimate integrates rates, so its bytes exist only in the file: they are
//!   written at the poll that counted them, like every total. `kill -9` loses nothing that
//!   was written: the page cache outlives the process.
//! - **Not written** when only timestamps moved (a reading equal to the last one, a client
//!   seen online again): those are written with the next change, or after [`STALE_EVERY`] at
//!   the latest. A restart without them keeps every total and baseline; only the first rate
//!   after it may be unknown (the gap since the last written reading is longer).
//! - **fsync'd** (file and directory) at most every [`SYNC_EVERY`] and at shutdown: only a
//!   power loss needs it, and the kernel itself writes dirty pages back after ~30 s. A power
//!   loss may cost what changed since the last fsync, as it may cost the kernel's unwritten
//!   pages of any program.

use std::time::Duration;

use super::Core;

/// Longest that timestamps alone stay unwritten.
pub const STALE_EVERY: Duration = Duration::from_secs(60);
/// Longest between two fsyncs while something was written.
pub const SYNC_EVERY: Duration = Duration::from_secs(30);

/// When the state file was last written and fsync'd, on the bridge's monotonic clock.
#[derive(Debug, Default)]
pub struct Pacing {
    last_write: Option<Duration>,
    last_sync: Option<Duration>,
    /// Written since the last fsync.
    unsynced: bool,
}

impl Core {
    /// After a poll (or anything else that may have changed persisted data).
    pub(super) fn save(&mut self) {
        self.save_paced(false);
    }

    /// At shutdown and at the end of `once`: whatever is unwritten, written and fsync'd.
    pub(super) fn save_final(&mut self) {
        self.save_paced(true);
    }

    fn save_paced(&mut self, last: bool) {
        if !self.persist {
            return;
        }
        let now = self.clock.mono();
        let since = |t: Option<Duration>| t.map(|t| now.saturating_sub(t));
        let changed = self.household.persist();
        let stale_due = changed.stale && since(self.saving.last_write).is_none_or(|d| d >= STALE_EVERY);
        let sync_due = last || since(self.saving.last_sync).is_none_or(|d| d >= SYNC_EVERY);
        if !(changed.dirty || stale_due || (last && changed.any())) {
            if self.saving.unsynced && sync_due {
                match self.store.sync() {
                    Ok(()) => self.synced(now),
                    Err(e) => tracing::debug!(error = %e, "Cannot fsync the state file; trying again later."),
                }
            }
            return;
        }
        match self.household.save_to(&self.store, sync_due) {
            Ok(()) => {
                self.household.saved();
                self.saving.last_write = Some(now);
                if sync_due {
                    self.synced(now);
                } else {
                    self.saving.unsynced = true;
                }
                if self.save_failing {
                    tracing::info!(path = %self.store.path().display(), "State file writable again.");
                }
                self.save_failing = false;
            }
            Err(e) => {
                if !self.save_failing {
                    tracing::error!(error = %e, "Cannot save totals; they will be lost on restart until this is fixed.");
                }
                self.save_failing = true;
            }
        }
    }

    fn synced(&mut self, now: Duration) {
        self.saving.last_sync = Some(now);
        self.saving.unsynced = false;
    }
}

#[cfg(test)]
#[path = "save_tests.rs"]
mod tests;
