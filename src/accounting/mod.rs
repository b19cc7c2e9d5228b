//! Accounting: observations in, monotonic totals and rates out, and the state that must
//! survive a restart.

mod channel;
mod ledger;
mod reconcile;
mod store;

pub use channel::{ChannelKind, ChannelState, CounterEvent, Rates, Step};
pub use ledger::{Device, Feed, Interface, Ledger, Totals};
pub use store::{PersistedChannel, PersistedDevice, PersistedState, StateStore, StoreError};
