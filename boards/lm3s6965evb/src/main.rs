//! Firmware for QEMU's `lm3s6965evb`: the reversal server (`reversal-core`)
//! on smoltcp over the Stellaris Ethernet MAC, logging through defmt over
//! semihosting.
//!
//! Memory is static: frame buffers and every server buffer live in
//! `static`s; nothing is allocated. The main loop sleeps in `wfi` until a
//! frame arrives or the server's next deadline is due.

#![no_std]
#![no_main]

mod clock;
mod stack;
mod stellaris_enet;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use defmt_semihosting as _;
use reversal_core::{Server, ServerConfig, StaticResources};
use smoltcp::iface::{Config, Interface};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpCidr, Ipv4Address};

use crate::stellaris_enet::{FrameBuffers, StellarisEnet};

/// QEMU's user network: the guest's usual address, and slirp's gateway.
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const PREFIX_LEN: u8 = 24;
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// Concurrent TCP sessions; one more connection gets `ERR busy`.
const SESSIONS: usize = 3;
/// Session sockets plus the server's busy and UDP sockets.
const SOCKETS: usize = SESSIONS + 2;
/// Longest line, terminator excluded.
const MAX_LINE: usize = 512;
/// Each session's TCP receive buffer (also the UDP receive buffer).
const RX_LEN: usize = 1024;
/// Each session's TCP send buffer: must hold the largest reply, a full line
/// with CR LF.
const TX_LEN: usize = 1024;

/// How often the firmware logs its uptime, stack high-water mark and counters.
const HEARTBEAT: Duration = Duration::from_secs(10);

defmt::timestamp!("{=u64:ms}", clock::now_millis());

#[entry]
fn main() -> ! {
    static mut FRAMES: FrameBuffers = FrameBuffers::new();
    // A plain static, so it is never built on the stack (a run-time
    // construction peaked at 25 KiB of stack). Its initial value is all
    // zero bytes, so it lands in `.bss`: no copy in flash.
    static mut RESOURCES: StaticResources<'static, SESSIONS, SOCKETS, RX_LEN, TX_LEN, MAX_LINE> =
        StaticResources::new();

    let core = defmt::unwrap!(cortex_m::Peripherals::take());
    clock::start(core.SYST);

    let mut enet = match StellarisEnet::new(FRAMES) {
        Ok(enet) => enet,
        Err(error) => defmt::panic!("ethernet: {}", error),
    };
    let mac_address = enet.mac_address();

    let mut config = Config::new(mac_address.into());
    // The chip has no entropy source; the seed only has to differ between
    // boards (it picks TCP initial sequence numbers and ephemeral ports).
    config.random_seed = mac_address
        .0
        .iter()
        .fold(0x9E37_79B9_7F4A_7C15, |seed: u64, &byte| {
            seed.rotate_left(8) ^ u64::from(byte)
        });
    let mut iface = Interface::new(config, &mut enet, clock::now());
    iface.update_ip_addrs(|addresses| {
        defmt::unwrap!(addresses.push(IpCidr::new(ADDRESS.into(), PREFIX_LEN)));
    });
    defmt::unwrap!(iface.routes_mut().add_default_ipv4_route(GATEWAY));

    let server_config = ServerConfig::new(SESSIONS, MAX_LINE);
    let mut server = match Server::new(server_config, RESOURCES) {
        Ok(server) => server,
        Err(error) => defmt::panic!("server: {}", error),
    };

    defmt::info!(
        "listening on {}:{} (mac {})",
        ADDRESS,
        server_config.port,
        mac_address
    );

    let mut next_heartbeat = clock::now() + HEARTBEAT;
    loop {
        let now = clock::now();
        let next_poll = server.poll(now, &mut iface, &mut enet);

        if now >= next_heartbeat {
            next_heartbeat = now + HEARTBEAT;
            defmt::info!(
                "heartbeat: uptime {=u64} ms, stack high-water {=usize}/{=usize} bytes, rx dropped {=u32}, {}",
                clock::now_millis(),
                stack::high_water(),
                stack::capacity(),
                enet.rx_dropped(),
                server.counters()
            );
        }

        let deadline = match next_poll {
            Some(at) => at.min(next_heartbeat),
            None => next_heartbeat,
        };
        sleep_until(&mut enet, deadline);
    }
}

/// Sleeps until a frame arrives or `deadline` passes. The check and the
/// `wfi` run with interrupts masked: an interrupt that comes in between still
/// ends the `wfi` (it pends), so no wake-up is lost. Other wake-ups (a
/// SysTick wrap, a stale timer) just go round the loop.
fn sleep_until(enet: &mut StellarisEnet<'_>, deadline: Instant) {
    clock::wake_at(deadline);
    loop {
        let wake = cortex_m::interrupt::free(|_| {
            enet.enable_rx_wakeup();
            if enet.rx_pending() || clock::now() >= deadline {
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

/// Routes every interrupt that has no handler of its own. Only the Ethernet
/// and wake-up timer interrupts are enabled; anything else is a bug,
/// reported and fatal.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    match u16::try_from(irqn) {
        Ok(stellaris_enet::ETHERNET_IRQ_NUMBER) => StellarisEnet::on_interrupt(),
        Ok(clock::TIMER0A_IRQ_NUMBER) => clock::on_timer_interrupt(),
        _ => defmt::panic!("unexpected exception or interrupt {=i16}", irqn),
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "hard fault at pc {=u32:#010x}, lr {=u32:#010x}",
        frame.pc(),
        frame.lr()
    );
    semihosting::process::exit(1)
}

/// Logs where the panic happened and makes QEMU exit with a failure status.
/// Only the location and a literal message are logged: formatting arbitrary
/// panic payloads would pull `core::fmt` into flash.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(location) => defmt::error!(
            "panic at {=str}:{=u32}: {=str}",
            location.file(),
            location.line(),
            info.message().as_str().unwrap_or("(formatted message)")
        ),
        None => defmt::error!(
            "panic: {=str}",
            info.message().as_str().unwrap_or("(formatted message)")
        ),
    }
    semihosting::process::exit(1)
}
