//! Virtual time.

use smoltcp::time::{Duration, Instant};

/// A virtual clock: a smoltcp [`Instant`] that only moves when told to.
///
/// It starts at [`Instant::ZERO`] and never goes backwards. Nothing here
/// sleeps: a simulated two-minute timeout is one call to
/// [`advance_to`](Clock::advance_to).
///
/// ```
/// use reversal_sim::Clock;
/// use smoltcp::time::{Duration, Instant};
///
/// let mut clock = Clock::new();
/// clock.advance(Duration::from_secs(120));
/// assert_eq!(clock.now(), Instant::from_secs(120));
/// clock.advance_to(Instant::from_secs(5)); // the past: ignored
/// assert_eq!(clock.now(), Instant::from_secs(120));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    now: Instant,
}

impl Clock {
    /// A clock at [`Instant::ZERO`].
    pub const fn new() -> Clock {
        Clock { now: Instant::ZERO }
    }

    /// The current virtual time.
    pub const fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward by `duration`.
    pub fn advance(&mut self, duration: Duration) {
        self.now += duration;
    }

    /// Moves the clock to `instant`, or leaves it where it is if `instant`
    /// is not later than now (time never runs backwards).
    pub fn advance_to(&mut self, instant: Instant) {
        self.now = self.now.max(instant);
    }
}

/// The earlier of two optional deadlines; `None` means "no deadline".
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_zero() {
        assert_eq!(Clock::new().now(), Instant::ZERO);
    }

    #[test]
    fn advance_adds_the_duration() {
        let mut clock = Clock::new();
        clock.advance(Duration::from_millis(1500));
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.now(), Instant::from_secs(2));
    }

    #[test]
    fn advance_to_never_goes_backwards() {
        let mut clock = Clock::new();
        clock.advance_to(Instant::from_secs(10));
        clock.advance_to(Instant::from_secs(3));
        assert_eq!(clock.now(), Instant::from_secs(10));
    }
}
