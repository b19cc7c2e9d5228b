//! One log line per unusual counter reading (the ledger counts on either way).

use crate::accounting::channel::CounterEvent;
use crate::model::DeviceId;

pub(super) fn log_counter_event(source: &str, device: &DeviceId, interface: Option<&str>, event: CounterEvent) {
    let interface = interface.unwrap_or("-");
    match event {
        CounterEvent::Wrapped => {
            tracing::debug!(source, %device, interface, "Counter wrapped at 2^32; counted across the wrap.")
        }
        CounterEvent::NewEpoch => tracing::info!(
            source,
            %device,
            interface,
            "Counter restarted (reboot, re-created interface or new database); total continues from where it was."
        ),
        CounterEvent::Dropped => tracing::warn!(
            source,
            %device,
            interface,
            "Counter went down without a restart; held: nothing counted, total kept, the next reading decides."
        ),
        CounterEvent::Reset => tracing::warn!(
            source,
            %device,
            interface,
            "Counter was reset without a restart; re-baselined, the bytes before the reset not counted, total kept."
        ),
        CounterEvent::Jumped => tracing::warn!(
            source,
            %device,
            interface,
            "Counter jumped implausibly and stayed there; re-baselined without counting the jump, total kept."
        ),
        CounterEvent::WentBackwards => tracing::warn!(
            source,
            %device,
            interface,
            "Sample is older than the previous one (clock stepped back?); bytes above the last reading counted, no rate, total kept."
        ),
    }
}
