//! Firmware for QEMU's `mps2-an505`: the reversal server (`reversal-core`)
//! on smoltcp over the SMSC LAN9118, with the shared board code
//! (`reversal-board`: poll loop, DHCP, heartbeat, logging over defmt and
//! semihosting).
//!
//! This crate is the board: the Ethernet driver (`lan9118`), the wake-up
//! timer (`cmsdk_timer`), the core clock, the memory map (`memory.x`) and
//! the interrupt routing below; register access and `unsafe` are in those
//! two modules. The Cortex-M33 runs in Secure state, as it comes out of
//! reset. All memory is static and in `.bss`.

#![no_std]
#![no_main]

#[allow(unsafe_code)]
mod cmsdk_timer;
#[allow(unsafe_code)]
mod lan9118;

use cortex_m_rt::{entry, exception};
use reversal_board::{FrameDevice, systick};

use crate::cmsdk_timer::CmsdkTimer;
use crate::lan9118::Lan9118;

/// The AN505's main clock, which drives the core, SysTick and the CMSDK
/// timers: 20 MHz in QEMU's mps2-an505 (`SYSCLK_FRQ` in `hw/arm/mps2-tz.c`)
/// and on the FPGA image.
const CORE_CLOCK_HZ: u32 = 20_000_000;

#[entry]
fn main() -> ! {
    let core = defmt::unwrap!(cortex_m::Peripherals::take());
    systick::start(core.SYST, CORE_CLOCK_HZ);
    let timer = CmsdkTimer::start();
    let ethernet = match Lan9118::new() {
        Ok(ethernet) => ethernet,
        Err(error) => defmt::panic!("ethernet: {}", error),
    };
    reversal_board::run(FrameDevice::new(ethernet), timer)
}

/// Routes every interrupt that has no handler of its own. Only the Ethernet
/// and wake-up timer interrupts are enabled; anything else is a bug,
/// reported and fatal. (cortex-m-rt requires `unsafe fn` here.)
#[allow(unsafe_code)]
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    match u16::try_from(irqn) {
        Ok(lan9118::ETHERNET_IRQ_NUMBER) => Lan9118::on_interrupt(),
        Ok(cmsdk_timer::TIMER0_IRQ_NUMBER) => CmsdkTimer::on_interrupt(),
        _ => defmt::panic!("unexpected exception or interrupt {=i16}", irqn),
    }
}
