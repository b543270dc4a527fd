//! Stack high-water mark. cortex-m-rt's `paint-stack` feature fills the whole
//! stack region with [`STACK_PAINT_VALUE`] at reset; the stack grows down
//! from `_stack_start`, so the lowest word no longer holding the paint marks
//! the deepest the stack has been.

use core::ptr;

use cortex_m_rt::STACK_PAINT_VALUE;

unsafe extern "C" {
    /// Top of the stack (end of RAM), from cortex-m-rt's linker script.
    static _stack_start: u32;
    /// Bottom of the stack region (end of `.bss`/`.uninit`).
    static _stack_end: u32;
}

fn bounds() -> (usize, usize) {
    (
        (&raw const _stack_end) as usize,
        (&raw const _stack_start) as usize,
    )
}

/// Bytes between the bottom of the stack region and the top of the stack.
pub fn capacity() -> usize {
    let (bottom, top) = bounds();
    top - bottom
}

/// The most stack used since reset, in bytes.
pub fn high_water() -> usize {
    let (bottom, top) = bounds();
    let mut address = bottom;
    // SAFETY: every word in `bottom..top` is RAM of the stack region; words
    // below the live stack are only ever paint or stale frames.
    while address < top && unsafe { ptr::read_volatile(address as *const u32) } == STACK_PAINT_VALUE
    {
        address += 4;
    }
    top - address
}
