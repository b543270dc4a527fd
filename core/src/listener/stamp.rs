//! Times as the listener's tables keep them: four bytes, not eight.

use smoltcp::time::{Duration, Instant};

/// A moment in milliseconds, wrapping every 49.7 days. The listener only
/// asks how old a stamp is, and its attempts and handshakes live seconds,
/// so the wrap never shows; every table entry is the smaller for it (on a
/// board each entry is RAM for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp(u32);

impl Stamp {
    /// The stamp of an unused entry.
    pub(super) const ZERO: Stamp = Stamp(0);

    /// The stamp of `now`.
    pub(super) const fn at(now: Instant) -> Stamp {
        // Wraps on purpose: only differences between stamps are used.
        Stamp(now.total_millis() as u32)
    }

    /// How old it is at `now`.
    pub(super) fn age(self, now: Instant) -> Duration {
        Duration::from_millis(u64::from(Stamp::at(now).0.wrapping_sub(self.0)))
    }

    /// When it is `age` old, seen from `now` (`now` if it is already).
    pub(super) fn when_aged(self, age: Duration, now: Instant) -> Instant {
        let so_far = self.age(now);
        if so_far >= age {
            now
        } else {
            now + (age - so_far)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_survive_the_wrap() {
        let before_wrap = Instant::from_millis(i64::from(u32::MAX) - 10);
        let stamp = Stamp::at(before_wrap);
        let after_wrap = Instant::from_millis(i64::from(u32::MAX) + 90);
        assert_eq!(stamp.age(after_wrap), Duration::from_millis(100));
        let at = stamp.when_aged(Duration::from_millis(500), after_wrap);
        assert_eq!(at, after_wrap + Duration::from_millis(400));
        assert_eq!(
            stamp.when_aged(Duration::from_millis(50), after_wrap),
            after_wrap
        );
    }
}
