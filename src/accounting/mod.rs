//! Accounting: observations in, monotonic totals and rates out, and the state that must
//! survive a restart.

mod channel;
mod feed;
mod ledger;
pub mod plausible;
mod reconcile;
mod state_dir;
mod store;
mod store_load;

pub use channel::{ChannelKind, ChannelState, CounterEvent, Rates, Step};
pub use ledger::{Device, Feed, Interface, Ledger, Persist, PersistedRef, Totals, View};
pub use state_dir::{StateDirLock, lock as lock_state_dir};
pub use store::{PersistedChannel, PersistedDevice, PersistedState, StateStore, StoreError};
