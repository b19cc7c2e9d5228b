//! The normalised vocabulary every source speaks: who a device is and what was seen of it.
//!
//! Sources only produce [`Observation`]s; accounting turns them into totals and rates; the
//! publisher renders the result. Nothing in here does I/O.

mod device_id;
mod epoch;
mod history;
mod mac;
mod observation;
mod quota;

pub use device_id::{DeviceId, InvalidDeviceId};
pub use epoch::{Boot, Epoch};
pub use history::{DatedBytes, History};
pub use mac::{InvalidMac, MacAddr};
pub use observation::{
    BucketSample, CounterSample, DeviceInfo, DeviceKind, HourBucket, Label, LiveSample, Metric, MetricUnit,
    Observation, RateSample, TrafficReading, TrafficSample, WrapRule,
};
pub use quota::Quota;
