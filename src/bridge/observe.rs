//! What the core tells the world besides MQTT state: metrics after each poll, and the events
//! and command responses the run loop publishes as plain (not retained) messages.

use super::{Core, PollReport};

impl Core {
    /// [`Core::handle`] plus the metrics snapshot and `bridge/event` messages.
    pub(super) fn handle_report(&mut self, report: PollReport) {
        let source = report.source.clone();
        let ok = report.result.is_ok();
        let duration = report.duration.as_secs_f64();
        self.take(report);
        // Only the devices whose state or summary changed since the last report: the
        // snapshot is incremental, not a walk over the household every poll.
        let fresh = self.renders.take_fresh();
        if let Some(hub) = &self.metrics {
            let kind = self.statuses.get(&source).map(|s| s.kind).unwrap_or("?");
            // Real time: Prometheus compares it with its own `time()`.
            hub.record_poll(&source, kind, ok, duration, crate::sources::now_ms() as f64 / 1000.0);
            for id in &fresh {
                if let Some(device) = self.household.device(id) {
                    hub.update_device(device);
                }
            }
        }
        self.collect_events();
    }

    /// Messages waiting for the run loop to publish (responses, events).
    pub(super) fn take_messages(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.messages)
    }
}
