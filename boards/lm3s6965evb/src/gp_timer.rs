//! The wake-up timer: general-purpose timer 0A, one-shot to the next
//! deadline; its interrupt ends the main loop's `wfi`. Time itself comes
//! from SysTick (`reversal_board::systick`).
//!
//! Register access is here, in `stellaris_enet` and in `sysctl`.

use core::ptr;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use reversal_board::{WakeTimer, systick};

use crate::sysctl;
use smoltcp::time::Instant;

/// General-purpose timer 0 (LM3S6965 datasheet, "General-Purpose Timers").
const TIMER0_BASE: usize = 0x4003_0000;

#[derive(Clone, Copy)]
#[repr(usize)]
enum TimerReg {
    /// Configuration (GPTMCFG): 0 = one 32-bit timer.
    Cfg = 0x00,
    /// Timer A mode (GPTMTAMR).
    Tamr = 0x04,
    /// Control (GPTMCTL).
    Ctl = 0x0C,
    /// Interrupt mask (GPTMIMR).
    Imr = 0x18,
    /// Interrupt clear (GPTMICR).
    Icr = 0x24,
    /// Timer A interval load (GPTMTAILR).
    Tailr = 0x28,
}

const CFG_32_BIT: u32 = 0;
const TAMR_ONE_SHOT: u32 = 0x1;
const CTL_TAEN: u32 = 1 << 0;
/// Timer A time-out, in GPTMIMR and GPTMICR.
const INT_TATO: u32 = 1 << 0;

/// Run-mode clock gating 1, bit 16: timer 0.
const RCGC1_TIMER0: u32 = 1 << 16;

/// Timer 0A's interrupt line on the NVIC (LM3S6965 vector 35).
#[derive(Clone, Copy)]
struct Timer0AIrq;

/// The interrupt number the NVIC reports for timer 0A (IRQ 19).
pub const TIMER0A_IRQ_NUMBER: u16 = 19;

// SAFETY: 19 is timer 0A's interrupt on the LM3S6965 (and in QEMU's
// lm3s6965evb), below the 64 lines the NVIC implements.
unsafe impl InterruptNumber for Timer0AIrq {
    fn number(self) -> u16 {
        TIMER0A_IRQ_NUMBER
    }
}

fn write_timer(reg: TimerReg, value: u32) {
    // SAFETY: `reg` is a register of timer 0, which is always mapped; only
    // this module drives the timer.
    unsafe { ptr::write_volatile((TIMER0_BASE + reg as usize) as *mut u32, value) }
}

/// Timer 0A, counting core cycles.
#[derive(Debug)]
pub struct GpTimer(());

impl GpTimer {
    /// Ungates and stops timer 0, sets it one-shot with its time-out
    /// interrupt, and enables its line on the NVIC.
    pub fn start() -> Self {
        sysctl::ungate(sysctl::RCGC1, RCGC1_TIMER0);
        write_timer(TimerReg::Ctl, 0);
        write_timer(TimerReg::Cfg, CFG_32_BIT);
        write_timer(TimerReg::Tamr, TAMR_ONE_SHOT);
        write_timer(TimerReg::Icr, INT_TATO);
        write_timer(TimerReg::Imr, INT_TATO);
        // SAFETY: the timer is stopped, so its line cannot fire before
        // `wake_at`; its handler (`on_interrupt`) only clears the timer.
        unsafe { NVIC::unmask(Timer0AIrq) };
        Self(())
    }

    /// Timer 0A's interrupt handler: clear the time-out so the
    /// level-triggered line drops. The wake-up itself is the point.
    pub fn on_interrupt() {
        write_timer(TimerReg::Icr, INT_TATO);
    }
}

impl WakeTimer for GpTimer {
    /// At most ~343 s ahead: a 32-bit count of 12.5 MHz cycles.
    fn wake_at(&mut self, deadline: Instant) {
        let cycles = u32::try_from(systick::cycles_until(deadline))
            .unwrap_or(u32::MAX)
            .max(1);
        // QEMU only loads the interval when TAEN goes from 0 to 1.
        write_timer(TimerReg::Ctl, 0);
        write_timer(TimerReg::Tailr, cycles);
        write_timer(TimerReg::Icr, INT_TATO);
        write_timer(TimerReg::Ctl, CTL_TAEN);
    }
}
