//! Time and wake-ups, tickless.
//!
//! - **Clock**: SysTick counts core cycles down from 2^24 - 1 and interrupts
//!   once per wrap (every 1.34 s at 12.5 MHz); the handler counts wraps, and
//!   the time is wraps × 2^24 plus the cycles elapsed in the current wrap.
//! - **Wake-ups**: general-purpose timer 0A runs one-shot to the next
//!   deadline and its interrupt ends the main loop's `wfi`.
//!
//! Why not a 1 ms SysTick tick: under QEMU 7.2 it costs 4 % of a host core
//! while idle, and the tick loses time (10.00 guest seconds took 10.23 to
//! 10.34 host seconds); with long SysTick periods the guest clock matches the
//! host's and the idle board costs nothing measurable.
//!
//! This module and `stellaris_enet` are the only ones that touch registers.

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::interrupt::{self, InterruptNumber};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{NVIC, SCB, SYST};
use cortex_m_rt::exception;
use smoltcp::time::Instant;

/// Core clock of QEMU's lm3s6965evb out of reset: QEMU derives it from the
/// RCC register as 200 MHz / (SYSDIV + 1), and RCC resets to 0x078E_3AC0, so
/// SYSDIV = 15 and the clock is 12.5 MHz (QEMU's `info qtree` shows SysTick's
/// `cpuclk` at 12.5 MHz). Silicon starts on its 12 MHz ± 30 % internal
/// oscillator; firmware for it would first set the PLL (e.g. to 50 MHz).
pub const CORE_CLOCK_HZ: u32 = 12_500_000;

/// SysTick's reload: the largest its 24-bit counter takes, for the fewest
/// interrupts. Each wrap is `SYSTICK_RELOAD + 1` = 2^24 cycles.
const SYSTICK_RELOAD: u32 = 0x00FF_FFFF;
const CYCLES_PER_WRAP: u64 = SYSTICK_RELOAD as u64 + 1;

/// SysTick wraps since [`start`].
static WRAPS: AtomicU32 = AtomicU32::new(0);

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

/// Run-mode clock gating 1, bit 16: timer 0. QEMU ignores the gates.
const SYSCTL_RCGC1: usize = 0x400F_E104;
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

/// Starts the clock and the wake-up timer. Taking `SYST` by value keeps
/// anyone else from reprogramming it.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSTICK_RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // The counter reads 0 until its first reload (one cycle on silicon, a
    // while under QEMU); `now_cycles` would take that 0 for the end of the
    // first wrap.
    while SYST::get_current() == 0 {}

    // SAFETY: read-modify-write of the clock-gating register during start-up,
    // before any interrupt handler can touch it.
    unsafe {
        let rcgc1 = SYSCTL_RCGC1 as *mut u32;
        ptr::write_volatile(rcgc1, ptr::read_volatile(rcgc1) | RCGC1_TIMER0);
    }
    // Silicon needs a few clocks after ungating before the registers answer.
    cortex_m::asm::delay(16);
    write_timer(TimerReg::Ctl, 0);
    write_timer(TimerReg::Cfg, CFG_32_BIT);
    write_timer(TimerReg::Tamr, TAMR_ONE_SHOT);
    write_timer(TimerReg::Icr, INT_TATO);
    write_timer(TimerReg::Imr, INT_TATO);
    // SAFETY: the timer is stopped, so its line cannot fire before
    // `wake_at`; its handler (`on_timer_interrupt`) only clears the timer.
    unsafe { NVIC::unmask(Timer0AIrq) };
}

/// Core cycles since [`start`].
fn now_cycles() -> u64 {
    interrupt::free(|_| {
        let wraps = u64::from(WRAPS.load(Ordering::Relaxed));
        let current = SYST::get_current();
        if !SCB::is_pendst_pending() {
            // No wrap since `current` was read, and none pending before it.
            return wraps * CYCLES_PER_WRAP + u64::from(SYSTICK_RELOAD - current);
        }
        // A wrap happened that the handler has not counted yet; read the
        // counter again, knowing it already wrapped.
        match SYST::get_current() {
            // At zero, not yet reloaded: still the last cycle before the wrap.
            0 => wraps * CYCLES_PER_WRAP + u64::from(SYSTICK_RELOAD),
            current => (wraps + 1) * CYCLES_PER_WRAP + u64::from(SYSTICK_RELOAD - current),
        }
    })
}

/// Milliseconds since [`start`].
pub fn now_millis() -> u64 {
    now_cycles() / u64::from(CORE_CLOCK_HZ / 1_000)
}

/// The current time as smoltcp wants it, to the microsecond.
pub fn now() -> Instant {
    Instant::from_micros(cycles_to_micros(now_cycles()) as i64)
}

const MICROS_PER_SECOND: u64 = 1_000_000;

/// Split at whole seconds so the products cannot overflow.
fn cycles_to_micros(cycles: u64) -> u64 {
    let hz = u64::from(CORE_CLOCK_HZ);
    cycles / hz * MICROS_PER_SECOND + cycles % hz * MICROS_PER_SECOND / hz
}

fn micros_to_cycles(micros: u64) -> u64 {
    let hz = u64::from(CORE_CLOCK_HZ);
    micros / MICROS_PER_SECOND * hz + micros % MICROS_PER_SECOND * hz / MICROS_PER_SECOND
}

/// Arms the wake-up timer to interrupt at `deadline` (at once if it has
/// passed, and at most ~343 s ahead: a 32-bit count of cycles).
pub fn wake_at(deadline: Instant) {
    let target = micros_to_cycles(deadline.total_micros().max(0) as u64);
    let wait = target.saturating_sub(now_cycles());
    let cycles = u32::try_from(wait).unwrap_or(u32::MAX).max(1);
    // QEMU only loads the interval when TAEN goes from 0 to 1.
    write_timer(TimerReg::Ctl, 0);
    write_timer(TimerReg::Tailr, cycles);
    write_timer(TimerReg::Icr, INT_TATO);
    write_timer(TimerReg::Ctl, CTL_TAEN);
}

/// Timer 0A's interrupt handler: clear the time-out so the level-triggered
/// line drops. The wake-up itself is the point.
pub fn on_timer_interrupt() {
    write_timer(TimerReg::Icr, INT_TATO);
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}
