//! A periodic log line: uptime, stack high-water mark, frames dropped and
//! the server's counters. `qemu-test.sh` reads the stack figure from it.

use smoltcp::time::{Duration, Instant};

use crate::frames::{FrameDevice, Mac};
use crate::resources::BoardServer;
use crate::{stack, systick};

/// How often the heartbeat is logged.
const PERIOD: Duration = Duration::from_secs(10);

/// When the next heartbeat is due.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    next: Instant,
}

impl Heartbeat {
    /// The first heartbeat one period after `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self { next: now + PERIOD }
    }

    /// Logs if one is due at `now`; returns when the next one is.
    pub(crate) fn beat<M: Mac>(
        &mut self,
        now: Instant,
        server: &BoardServer,
        device: &FrameDevice<M>,
    ) -> Instant {
        if now >= self.next {
            self.next = now + PERIOD;
            defmt::info!(
                "heartbeat: uptime {=u64} ms, stack high-water {=usize}/{=usize} bytes, rx dropped {=u32}, {}",
                systick::now_millis(),
                stack::high_water(),
                stack::capacity(),
                device.rx_dropped(),
                server.counters()
            );
        }
        self.next
    }
}
