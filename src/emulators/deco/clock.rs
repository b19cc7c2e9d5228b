//! The emulator's notion of now: the real clock, or a simulated one that tests and the accuracy
//! benchmark move forward by hand (a day of traffic in seconds).

use std::time::Duration;

use crate::clock::ManualClock;

/// Milliseconds since the Unix epoch.
#[derive(Debug, Clone)]
pub enum Clock {
    Real,
    /// Moved by [`Clock::advance`] only.
    Simulated(ManualClock),
    /// The bridge's own clock (a test's manual clock, the demo's scaled one): the mesh and the
    /// bridge then agree on every instant. Moved by whoever owns it, not by [`Clock::advance`].
    Shared(crate::clock::Clock),
}

impl Clock {
    /// A simulated clock starting at `start_ms`.
    pub fn simulated(start_ms: i64) -> Self {
        Self::Simulated(ManualClock::new(start_ms))
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Self::Real => crate::sources::now_ms(),
            Self::Simulated(manual) => manual.now_ms(),
            Self::Shared(clock) => clock.now_ms(),
        }
    }

    /// Moves a simulated clock forward; the real and shared clocks are not moved here.
    pub fn advance(&self, by: Duration) {
        if let Self::Simulated(manual) = self {
            manual.advance(by);
        }
    }

    /// The same instants as the bridge's clock, for a source polling this emulator: a
    /// simulated clock's handle (moved with it), the shared clock itself, or the system clock.
    pub fn bridge_clock(&self) -> crate::clock::Clock {
        match self {
            Self::Real => crate::clock::Clock::system(),
            Self::Simulated(manual) => manual.clock(),
            Self::Shared(clock) => clock.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_moves_only_when_told() {
        let clock = Clock::simulated(1_000);
        let read = clock.bridge_clock();
        assert_eq!(read.now_ms(), 1_000);
        clock.advance(Duration::from_secs(30));
        assert_eq!((clock.now_ms(), read.now_ms()), (31_000, 31_000));
        let real = Clock::Real;
        real.advance(Duration::from_secs(3600));
        assert!((real.now_ms() - crate::sources::now_ms()).abs() < 60_000);
    }
}
