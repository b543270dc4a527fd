//! Time from SysTick, tickless, on any Cortex-M.
//!
//! SysTick counts core cycles down from 2^24 - 1 and interrupts once per
//! wrap (every 1.34 s at 12.5 MHz, 0.84 s at 20 MHz); the handler counts
//! wraps, and the time is wraps × 2^24 plus the cycles elapsed in the
//! current wrap. A board's [`WakeTimer`](crate::WakeTimer) wakes the core at
//! deadlines in between.
//!
//! Why not a 1 ms SysTick tick: under QEMU 7.2 it costs 4 % of a host core
//! while idle, and the tick loses time (10.00 guest seconds took 10.23 to
//! 10.34 host seconds); with long SysTick periods the guest clock matches the
//! host's and the idle board costs nothing measurable.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::interrupt;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use smoltcp::time::Instant;

/// SysTick's reload: the largest its 24-bit counter takes, for the fewest
/// interrupts. Each wrap is `SYSTICK_RELOAD + 1` = 2^24 cycles.
const SYSTICK_RELOAD: u32 = 0x00FF_FFFF;
const CYCLES_PER_WRAP: u64 = SYSTICK_RELOAD as u64 + 1;
const MICROS_PER_SECOND: u64 = 1_000_000;

/// SysTick wraps since [`start`].
static WRAPS: AtomicU32 = AtomicU32::new(0);
/// The core clock given to [`start`]; 0 before.
static CORE_CLOCK_HZ: AtomicU32 = AtomicU32::new(0);

defmt::timestamp!("{=u64:ms}", now_millis());

/// Starts the clock; `core_clock_hz` is the frequency SysTick counts (the
/// core clock). Taking `SYST` by value keeps anyone else from
/// reprogramming it.
pub fn start(mut syst: SYST, core_clock_hz: u32) {
    CORE_CLOCK_HZ.store(core_clock_hz, Ordering::Relaxed);
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSTICK_RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // The counter reads 0 until its first reload (one cycle on silicon, a
    // while under QEMU); `now_cycles` would take that 0 for the end of the
    // first wrap.
    while SYST::get_current() == 0 {}
}

/// The core clock [`start`] was given, at least 1 (logging may ask for the
/// time before the clock starts).
fn hz() -> u64 {
    u64::from(CORE_CLOCK_HZ.load(Ordering::Relaxed).max(1))
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
    now_cycles() * 1_000 / hz()
}

/// The current time as smoltcp wants it, to the microsecond.
pub fn now() -> Instant {
    Instant::from_micros(cycles_to_micros(now_cycles()) as i64)
}

/// Core cycles from now until `deadline`, 0 if it has passed: what a
/// [`WakeTimer`](crate::WakeTimer) counts down.
pub fn cycles_until(deadline: Instant) -> u64 {
    micros_to_cycles(deadline.total_micros().max(0) as u64).saturating_sub(now_cycles())
}

/// Split at whole seconds so the products cannot overflow.
fn cycles_to_micros(cycles: u64) -> u64 {
    let hz = hz();
    cycles / hz * MICROS_PER_SECOND + cycles % hz * MICROS_PER_SECOND / hz
}

fn micros_to_cycles(micros: u64) -> u64 {
    let hz = hz();
    micros / MICROS_PER_SECOND * hz + micros % MICROS_PER_SECOND * hz / MICROS_PER_SECOND
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}
