//! The LM3S6965's system control block: clock gating and the board's
//! factory MAC address. Both drivers use it.

use core::ptr;

/// Run-mode clock gating 1 (RCGC1): timers, among others.
pub const RCGC1: usize = 0x400F_E104;
/// Run-mode clock gating 2 (RCGC2): the Ethernet MAC and PHY, among others.
pub const RCGC2: usize = 0x400F_E108;
/// User registers 0 and 1: the evaluation board's factory MAC address,
/// three bytes in each (all ones when erased).
pub const USER0: usize = 0x400F_E1E0;
/// See [`USER0`].
pub const USER1: usize = 0x400F_E1E4;

/// Reads the register at `address`, one of the above.
pub fn read(address: usize) -> u32 {
    // SAFETY: `address` is one of this module's registers, always mapped and
    // free of read side effects.
    unsafe { ptr::read_volatile(address as *const u32) }
}

/// Sets `bits` in a clock-gating register. Called during start-up only,
/// before any interrupt handler can touch it; silicon needs a few clocks
/// after ungating before the peripheral's registers answer (QEMU ignores
/// the gates).
pub fn ungate(address: usize, bits: u32) {
    let value = read(address);
    // SAFETY: `address` is RCGC1 or RCGC2; setting gate bits only turns
    // peripherals' clocks on.
    unsafe { ptr::write_volatile(address as *mut u32, value | bits) };
    cortex_m::asm::delay(16);
}
