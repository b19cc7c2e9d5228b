//! The emulator's notion of now: the real clock, or a simulated one that tests and the accuracy
//! benchmark move forward by hand (a day of traffic in seconds).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone)]
pub enum Clock {
    Real,
    Simulated(Arc<AtomicI64>),
    /// The bridge's own clock (a test's manual clock, the demo's scaled one): the mesh and the
    /// bridge then agree on every instant. Moved by whoever owns it, not by [`Clock::advance`].
    Shared(crate::clock::Clock),
}

impl Clock {
    /// A simulated clock starting at `start_ms`.
    pub fn simulated(start_ms: i64) -> Self {
        Self::Simulated(Arc::new(AtomicI64::new(start_ms)))
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Self::Real => crate::sources::now_ms(),
            Self::Simulated(ms) => ms.load(Ordering::SeqCst),
            Self::Shared(clock) => clock.now_ms(),
        }
    }

    /// Moves a simulated clock forward; the real and shared clocks are not moved here.
    pub fn advance(&self, by: Duration) {
        if let Self::Simulated(ms) = self {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            ms.fetch_add(by, Ordering::SeqCst);
        }
    }

    /// A closure reading this clock, in the form sources take.
    pub fn reader(&self) -> crate::sources::deco::Clock {
        let clock = self.clone();
        Arc::new(move || clock.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_moves_only_when_told() {
        let clock = Clock::simulated(1_000);
        let read = clock.reader();
        assert_eq!(read(), 1_000);
        clock.advance(Duration::from_secs(30));
        assert_eq!((clock.now_ms(), read()), (31_000, 31_000));
        let real = Clock::Real;
        real.advance(Duration::from_secs(3600));
        assert!((real.now_ms() - crate::sources::now_ms()).abs() < 60_000);
    }
}
