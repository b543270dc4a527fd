//! Firmware for QEMU's `lm3s6965evb`: the reversal server (`reversal-core`)
//! on smoltcp over the Stellaris Ethernet MAC, with the shared board code
//! (`reversal-board`: poll loop, DHCP, heartbeat, logging over defmt and
//! semihosting).
//!
//! This crate is the board: the MAC driver (`stellaris_enet`), the wake-up
//! timer (`gp_timer`), clock gating (`sysctl`), the core clock, the memory
//! map (`memory.x`) and the interrupt routing below; register access and
//! `unsafe` are in those three modules. All memory is static and in `.bss`.

#![no_std]
#![no_main]

#[allow(unsafe_code)]
mod gp_timer;
#[allow(unsafe_code)]
mod stellaris_enet;
#[allow(unsafe_code)]
mod sysctl;

use cortex_m_rt::{entry, exception};
use reversal_board::{FrameDevice, systick};

use crate::gp_timer::GpTimer;
use crate::stellaris_enet::StellarisEnet;

/// Core clock of QEMU's lm3s6965evb out of reset: QEMU derives it from the
/// RCC register as 200 MHz / (SYSDIV + 1), and RCC resets to 0x078E_3AC0, so
/// SYSDIV = 15 and the clock is 12.5 MHz (QEMU's `info qtree` shows SysTick's
/// `cpuclk` at 12.5 MHz). Silicon starts on its 12 MHz ± 30 % internal
/// oscillator; firmware for it would first set the PLL (e.g. to 50 MHz).
const CORE_CLOCK_HZ: u32 = 12_500_000;

#[entry]
fn main() -> ! {
    let core = defmt::unwrap!(cortex_m::Peripherals::take());
    systick::start(core.SYST, CORE_CLOCK_HZ);
    let timer = GpTimer::start();
    let enet = match StellarisEnet::new() {
        Ok(enet) => enet,
        Err(error) => defmt::panic!("ethernet: {}", error),
    };
    reversal_board::run(FrameDevice::new(enet), timer)
}

/// Routes every interrupt that has no handler of its own. Only the Ethernet
/// and wake-up timer interrupts are enabled; anything else is a bug,
/// reported and fatal. (cortex-m-rt requires `unsafe fn` here.)
#[allow(unsafe_code)]
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    match u16::try_from(irqn) {
        Ok(stellaris_enet::ETHERNET_IRQ_NUMBER) => StellarisEnet::on_interrupt(),
        Ok(gp_timer::TIMER0A_IRQ_NUMBER) => GpTimer::on_interrupt(),
        _ => defmt::panic!("unexpected exception or interrupt {=i16}", irqn),
    }
}
