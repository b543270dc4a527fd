//! Sleeping until the next frame or deadline, without losing a wake-up.

use smoltcp::time::Instant;

use crate::frames::{FrameDevice, Mac};
use crate::systick;

/// A one-shot timer whose interrupt wakes the core from `wfi`.
pub trait WakeTimer {
    /// Arms the timer to interrupt at `deadline` (at once if it has passed),
    /// replacing any earlier deadline. A timer that cannot count that far
    /// may interrupt earlier: the loop just goes round again.
    fn wake_at(&mut self, deadline: Instant);
}

/// Sleeps until a frame arrives or `deadline` passes. The check and the
/// `wfi` run with interrupts masked: an interrupt that comes in between still
/// ends the `wfi` (it pends), so no wake-up is lost. Other wake-ups (a
/// SysTick wrap, a stale timer) just go round the loop.
pub fn sleep_until<M: Mac>(
    device: &mut FrameDevice<M>,
    timer: &mut impl WakeTimer,
    deadline: Instant,
) {
    timer.wake_at(deadline);
    loop {
        let wake = cortex_m::interrupt::free(|_| {
            device.enable_rx_wakeup();
            if device.rx_pending() || systick::now() >= deadline {
                return true;
            }
            cortex_m::asm::wfi();
            false
        });
        if wake {
            return;
        }
    }
}
