//! smoltcp's clock on a host: what `now` means for the event loop and for
//! the timestamps of a capture.

use smoltcp::time::{Duration, Instant};

/// smoltcp's clock: wall-clock time at start-up (so that captures carry real
/// timestamps) advanced by the monotonic clock (so that it never jumps).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: std::time::Instant,
    started_at: Instant,
}

impl Clock {
    /// A clock that reads the wall-clock time now.
    ///
    /// ```
    /// let clock = host_tap::clock::Clock::start();
    /// assert!(clock.now() <= clock.now());
    /// ```
    pub fn start() -> Clock {
        Clock {
            started: std::time::Instant::now(),
            // smoltcp's `Instant::now()` needs its `std`, which host-tap
            // leaves off (see Cargo.toml); this is what it does.
            started_at: Instant::from_micros(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| {
                        i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
                    }),
            ),
        }
    }

    /// The time now.
    pub fn now(&self) -> Instant {
        self.started_at + Duration::from(self.started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn clock_starts_at_the_wall_clock_time() {
        let before = Instant::now();
        let clock = Clock::start();
        let after = Instant::now();
        let now = clock.now();
        assert!(now >= before, "{now} < {before}");
        assert!(now - after < Duration::from_secs(1));
    }

    #[test]
    fn clock_advances() {
        let clock = Clock::start();
        let first = clock.now();
        thread::sleep(std::time::Duration::from_millis(5));
        assert!(clock.now() - first >= Duration::from_millis(5));
    }
}
