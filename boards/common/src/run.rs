//! The firmware's main loop, the same on every board.

use reversal_core::Server;
use smoltcp::iface::{Config, Interface};
use smoltcp::wire::EthernetAddress;

use crate::address::Addressing;
use crate::frames::{FrameDevice, Mac};
use crate::heartbeat::Heartbeat;
use crate::resources::BoardServer;
use crate::sleep::{WakeTimer, sleep_until};
use crate::{resources, systick};

/// Serves forever on `device`: builds the server in the static
/// [`resources`] and the interface, gets an address ([`Addressing`]), then
/// polls, logs the heartbeat, and sleeps until the next frame or deadline.
///
/// Call once, after [`systick::start`] and with the controller's and the
/// timer's interrupts routed to their drivers.
pub fn run<M: Mac>(device: FrameDevice<M>, timer: impl WakeTimer) -> ! {
    // Two calls, so that each frame is on the stack only while it is needed:
    // the core builds smoltcp's empty socket slots on the stack before it
    // moves them into the static (about 670 bytes a slot), and inlined into
    // the loop's frame that would be there for good.
    let server = start_server();
    serve(server, device, timer)
}

/// The server, in the static [`resources`].
#[inline(never)]
fn start_server() -> BoardServer {
    match Server::new(resources::server_config(), resources::take()) {
        Ok(server) => server,
        Err(error) => defmt::panic!("server: {}", error),
    }
}

/// The interface, the address and the loop.
#[inline(never)]
fn serve<M: Mac>(
    mut server: BoardServer,
    mut device: FrameDevice<M>,
    mut timer: impl WakeTimer,
) -> ! {
    let mac_address = device.mac_address();
    let mut config = Config::new(mac_address.into());
    config.random_seed = random_seed(mac_address);
    let mut iface = Interface::new(config, &mut device, systick::now());

    let mut addressing = Addressing::start(&mut server, &mut iface);

    let mut heartbeat = Heartbeat::new(systick::now());
    loop {
        let now = systick::now();
        let next_poll = server.poll(now, &mut iface, &mut device);
        addressing.update(&mut server, &mut iface);
        let next_heartbeat = heartbeat.beat(now, &server, &device);
        let deadline = next_poll.map_or(next_heartbeat, |at| at.min(next_heartbeat));
        sleep_until(&mut device, &mut timer, deadline);
    }
}

/// The boards have no entropy source; the seed only has to differ between
/// boards (it picks TCP initial sequence numbers, ephemeral ports and DHCP
/// transaction ids).
fn random_seed(mac_address: EthernetAddress) -> u64 {
    mac_address
        .0
        .iter()
        .fold(0x9E37_79B9_7F4A_7C15, |seed: u64, &byte| {
            seed.rotate_left(8) ^ u64::from(byte)
        })
}
