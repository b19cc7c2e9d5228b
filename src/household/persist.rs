//! What of the household survives a restart, and whether it changed since the last save.
//!
//! The household's own memory (identities, periods, last seen, entity ids, the Deco
//! reconciliation) goes under `@household` among the sources' cursors. [`Household::saved_parts`]
//! hands the state file writer everything borrowed, in the order and shape of
//! [`PersistedState`] — nothing is copied per save.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::{CURSOR_KEY, Household};
use crate::accounting::{Persist, PersistedState, StateStore, StoreError};
use crate::model::DeviceId;

/// The `@household` entry, borrowed; keys in the order a JSON object of them has.
#[derive(Serialize)]
struct SavedRef<'a> {
    entity_slugs: &'a BTreeMap<DeviceId, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    counts_from: &'a super::churn::CountsFrom,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    group_members: &'a super::churn::Members,
    identity: &'a super::identity::Resolver,
    last_seen: &'a super::forget::LastSeen,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    meters: &'a super::plans::Meters,
    periods: &'a super::periods::PeriodBook,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    polled: &'a super::churn::Polled,
    reconcile: &'a BTreeMap<DeviceId, super::reconcile::Reconciler>,
}

/// The sources' cursors with `@household` in its place.
struct SourcesRef<'a> {
    cursors: &'a BTreeMap<String, serde_json::Value>,
    saved: SavedRef<'a>,
}

impl Serialize for SourcesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        let mut ours = Some(&self.saved);
        for (name, cursor) in self.cursors {
            if name == CURSOR_KEY {
                continue;
            }
            if name.as_str() > CURSOR_KEY
                && let Some(saved) = ours.take()
            {
                map.serialize_entry(CURSOR_KEY, saved)?;
            }
            map.serialize_entry(name, cursor)?;
        }
        if let Some(saved) = ours {
            map.serialize_entry(CURSOR_KEY, saved)?;
        }
        map.end()
    }
}

impl Household {
    fn saved_ref(&self) -> SavedRef<'_> {
        SavedRef {
            entity_slugs: &self.entity_slugs,
            counts_from: &self.counts_from,
            group_members: &self.members,
            identity: &self.resolver,
            last_seen: &self.last_seen,
            meters: &self.meters,
            periods: &self.periods,
            polled: &self.polled,
            reconcile: self.saved_reconcilers(),
        }
    }

    /// Everything that must survive a restart, as one value (tests, `once`).
    pub fn to_persisted(&self) -> PersistedState {
        let mut state = self.ledger.to_persisted();
        let saved = serde_json::to_value(self.saved_ref()).unwrap_or_default();
        state.sources.insert(CURSOR_KEY.to_owned(), saved);
        state
    }

    /// Writes the state file from the household's own data; `durable`: fsync it too.
    pub fn save_to(&self, store: &StateStore, durable: bool) -> Result<(), StoreError> {
        let parts = self.ledger.persisted_ref();
        let sources = SourcesRef {
            cursors: parts.cursors(),
            saved: self.saved_ref(),
        };
        store.save_parts(&parts.devices(), &parts.channels(), &sources, durable)
    }

    /// What changed since [`Household::saved`]: totals, baselines, cursors, identities,
    /// periods… (`dirty`), or only timestamps (`stale`).
    pub fn persist(&self) -> Persist {
        let ledger = self.ledger.persist();
        Persist {
            dirty: ledger.dirty || self.dirty,
            stale: ledger.stale || self.stale,
        }
    }

    /// The state file now holds everything.
    pub fn saved(&mut self) {
        self.ledger.saved();
        self.dirty = false;
        self.stale = false;
    }
}
