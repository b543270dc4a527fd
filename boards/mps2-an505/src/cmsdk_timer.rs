//! The wake-up timer: the IoT Kit's CMSDK APB timer 0, a 32-bit down
//! counter at the core clock, armed for one period to the next deadline;
//! its interrupt ends the main loop's `wfi`, and its handler stops it. Time
//! itself comes from SysTick (`reversal_board::systick`).
//!
//! The reference for behaviour is QEMU's `hw/timer/cmsdk-apb-timer.c`
//! (writing RELOAD also loads the counter) and Arm's CMSDK documentation.
//!
//! This module and `lan9118` are the only ones that touch registers.

use core::ptr;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use reversal_board::{WakeTimer, systick};
use smoltcp::time::Instant;

/// Timer 0 at its Secure alias (IoT Kit: 0x4000_0000 Non-secure).
const BASE: usize = 0x5000_0000;

#[derive(Clone, Copy)]
#[repr(usize)]
enum Reg {
    /// Control: enable, interrupt enable.
    Ctrl = 0x00,
    /// Reload value; writing it also loads the counter.
    Reload = 0x08,
    /// Interrupt status; write 1 to clear.
    IntClear = 0x0C,
}

const CTRL_ENABLE: u32 = 1 << 0;
const CTRL_IRQ_ENABLE: u32 = 1 << 3;
const INT_CLEAR: u32 = 1 << 0;

/// Timer 0's interrupt line on the NVIC (IoT Kit interrupt 3).
#[derive(Clone, Copy)]
struct Timer0Irq;

/// The interrupt number the NVIC reports for timer 0.
pub const TIMER0_IRQ_NUMBER: u16 = 3;

// SAFETY: 3 is timer 0's interrupt in the IoT Kit (and in QEMU's
// mps2-an505), below the 124 lines its NVIC implements.
unsafe impl InterruptNumber for Timer0Irq {
    fn number(self) -> u16 {
        TIMER0_IRQ_NUMBER
    }
}

fn write(reg: Reg, value: u32) {
    // SAFETY: `reg` is a register of timer 0, always mapped and open to
    // Secure accesses; only this module drives the timer.
    unsafe { ptr::write_volatile((BASE + reg as usize) as *mut u32, value) }
}

/// Timer 0, counting core cycles.
#[derive(Debug)]
pub struct CmsdkTimer(());

impl CmsdkTimer {
    /// Stops timer 0 and enables its line on the NVIC.
    pub fn start() -> Self {
        Self::on_interrupt();
        // SAFETY: the timer is stopped, so its line cannot fire before
        // `wake_at`; its handler (`on_interrupt`) only stops it.
        unsafe { NVIC::unmask(Timer0Irq) };
        Self(())
    }

    /// Timer 0's interrupt handler: stop the timer (it would reload and
    /// fire every period) and clear the interrupt so the line drops. The
    /// wake-up itself is the point.
    pub fn on_interrupt() {
        write(Reg::Ctrl, 0);
        write(Reg::IntClear, INT_CLEAR);
    }
}

impl WakeTimer for CmsdkTimer {
    /// At most ~214 s ahead: a 32-bit count of 20 MHz cycles.
    fn wake_at(&mut self, deadline: Instant) {
        let cycles = u32::try_from(systick::cycles_until(deadline))
            .unwrap_or(u32::MAX)
            .max(1);
        Self::on_interrupt();
        write(Reg::Reload, cycles);
        write(Reg::Ctrl, CTRL_ENABLE | CTRL_IRQ_ENABLE);
    }
}
