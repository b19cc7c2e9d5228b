//! The publisher owns MQTT: discovery, state, availability, the bridge's own topics, and the
//! connection itself.

pub mod connection;
pub mod device_discovery;
pub mod devices_index;
pub mod discovery;
mod drain;
pub mod inbound;
pub mod intake;
pub mod interface_key;
pub mod link;
mod link_auto;
pub mod link_health;
#[cfg(any(test, feature = "emulators"))]
pub mod link_memory;
pub mod link_rumqttc;
mod link_rumqttc5;
pub mod messages;
pub mod migration;
pub mod outbox;
pub mod render_cache;
pub mod state;
pub mod tls;
pub mod topics;
pub mod units;

pub use connection::{Incoming, MqttEvent, MqttLink};
pub use discovery::{Context, EntityConfig};
pub use link::Connector;
pub use outbox::{Message, Outbox, Priority};
pub use state::SourceStatus;
pub use topics::Topics;
