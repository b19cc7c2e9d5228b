//! What of the ledger survives a restart, two ways: [`Ledger::to_persisted`] builds a
//! [`PersistedState`] (tests, fuzzing), and [`PersistedRef`] writes the very same JSON straight
//! from the ledger's own maps, without copying 5 000 devices and their baselines first (the
//! copy was half of the save in the issue 11 profile).
//!
//! It also keeps the ledger's side of "did anything that must survive a restart change":
//! [`Persist`] is set where persisted data changes, so the bridge saves only then.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::{ChannelKey, Device, Ledger, Totals};
use crate::accounting::channel::ChannelState;
use crate::accounting::store::{PersistedChannel, PersistedDevice, PersistedState};
use crate::model::DeviceId;

/// What changed since the state file was last written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Persist {
    /// A total, a counter baseline, a cursor, a name or a device/channel appeared or went:
    /// written at the next save.
    pub dirty: bool,
    /// Only timestamps moved (a reading equal to the last one, a device seen online again):
    /// a restart without them loses nothing but the first rate, so they are written with the
    /// next save or at most every few minutes (bridge/mod.rs).
    pub stale: bool,
}

impl Persist {
    pub fn any(self) -> bool {
        self.dirty || self.stale
    }
}

impl Ledger {
    /// What must survive a restart: totals (also of devices not seen this run) and baselines.
    pub fn to_persisted(&self) -> PersistedState {
        let mut devices = self.restored.clone();
        for (id, device) in &self.devices {
            devices.insert(id.clone(), persisted_device(device));
        }
        PersistedState {
            version: 0,
            devices,
            channels: self
                .channels
                .iter()
                .map(|(k, state)| PersistedChannel {
                    device: k.device.clone(),
                    interface: k.interface.clone(),
                    source: k.source.clone(),
                    state: state.clone(),
                })
                .collect(),
            sources: self.cursors.clone(),
        }
    }

    /// The persisted parts, borrowed, for [`crate::accounting::StateStore::save_parts`].
    pub fn persisted_ref(&self) -> PersistedRef<'_> {
        PersistedRef { ledger: self }
    }

    /// What changed since [`Ledger::saved`].
    pub fn persist(&self) -> Persist {
        self.persist
    }

    /// The state file now holds everything.
    pub fn saved(&mut self) {
        self.persist = Persist::default();
    }

    pub(super) fn mark_dirty(&mut self) {
        self.persist.dirty = true;
    }

    pub(super) fn mark_stale(&mut self) {
        self.persist.stale = true;
    }
}

fn persisted_device(device: &Device) -> PersistedDevice {
    PersistedDevice {
        totals: device.totals,
        interfaces: device
            .interfaces
            .iter()
            .map(|(name, i)| (name.clone(), i.totals))
            .collect(),
        views: device.views.iter().map(|(s, v)| (s.clone(), v.totals)).collect(),
    }
}

/// The ledger's persisted parts, serialised as [`PersistedState`]'s `devices`, `channels` and
/// `sources` (the tests compare the bytes).
pub struct PersistedRef<'a> {
    ledger: &'a Ledger,
}

impl<'a> PersistedRef<'a> {
    pub fn devices(&self) -> impl Serialize + 'a {
        DevicesRef(self.ledger)
    }

    pub fn channels(&self) -> impl Serialize + 'a {
        ChannelsRef(&self.ledger.channels)
    }

    pub fn cursors(&self) -> &'a BTreeMap<String, serde_json::Value> {
        &self.ledger.cursors
    }
}

struct DevicesRef<'a>(&'a Ledger);

/// [`PersistedDevice`] of a live device, field for field.
#[derive(Serialize)]
struct DeviceRef<'a> {
    totals: Totals,
    interfaces: InterfacesRef<'a>,
    #[serde(skip_serializing_if = "ViewsRef::is_empty")]
    views: ViewsRef<'a>,
}

struct InterfacesRef<'a>(&'a BTreeMap<String, super::Interface>);
struct ViewsRef<'a>(&'a BTreeMap<String, super::View>);

impl ViewsRef<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for InterfacesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, i)| (name, i.totals)))
    }
}

impl Serialize for ViewsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(source, v)| (source, v.totals)))
    }
}

impl Serialize for DevicesRef<'_> {
    /// Restored devices and live ones, merged in id order (a live one wins, as in
    /// [`Ledger::to_persisted`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ledger = self.0;
        let mut map = s.serialize_map(None)?;
        let mut restored = ledger.restored.iter().peekable();
        for (id, device) in &ledger.devices {
            while let Some((rid, saved)) = restored.next_if(|(rid, _)| *rid <= id) {
                if rid != id {
                    map.serialize_entry(rid, saved)?;
                }
            }
            let live = DeviceRef {
                totals: device.totals,
                interfaces: InterfacesRef(&device.interfaces),
                views: ViewsRef(&device.views),
            };
            map.serialize_entry(id, &live)?;
        }
        for (rid, saved) in restored {
            map.serialize_entry(rid, saved)?;
        }
        map.end()
    }
}

struct ChannelsRef<'a>(&'a BTreeMap<ChannelKey, ChannelState>);

/// [`PersistedChannel`], borrowed.
#[derive(Serialize)]
struct ChannelRef<'a> {
    device: &'a DeviceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: &'a Option<String>,
    source: &'a str,
    #[serde(flatten)]
    state: &'a ChannelState,
}

impl Serialize for ChannelsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, state) in self.0 {
            seq.serialize_element(&ChannelRef {
                device: &k.device,
                interface: &k.interface,
                source: &k.source,
                state,
            })?;
        }
        seq.end()
    }
}
