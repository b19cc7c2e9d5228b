//! bandwidth2mqtt: which device on my network used how much bandwidth, published to Home
//! Assistant over MQTT.
//!
//! Data flows one way: [`sources`] fetch and parse → [`accounting`] makes totals monotonic and
//! derives rates → [`household`] decides which physical thing each number belongs to →
//! [`publish`] renders Home Assistant discovery and state. [`bridge`] wires them.

pub mod accounting;
pub mod agent;
pub mod bridge;
pub mod calendar;
pub mod clock;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "emulators")]
pub mod emulators;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod household;
pub mod http;
pub mod metrics;
pub mod model;
pub mod percent;
pub mod publish;
pub mod sources;
pub mod table;
