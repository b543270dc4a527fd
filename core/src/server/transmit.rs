//! Sending what the sockets have queued, and whether the device had room
//! for every frame.
//!
//! A UDP reply that is still in its socket after a transmit pass waits for
//! its sender's address, unless the device was full and smoltcp never got
//! to try it: only the device can tell the two apart, so the pass watches
//! it (see `udp/replies.rs`).

use smoltcp::iface::{Interface, PollResult, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;

/// Lets smoltcp send until it has nothing more; true if the device refused
/// a frame meanwhile (it was full).
pub(super) fn transmit<D: Device + ?Sized>(
    now: Instant,
    iface: &mut Interface,
    device: &mut D,
    sockets: &mut SocketSet<'_>,
) -> bool {
    let mut watched = Watched {
        device,
        full: false,
    };
    while iface.poll_egress(now, &mut watched, sockets) != PollResult::None {}
    watched.full
}

/// The caller's device, noting when it has no room for a frame.
struct Watched<'d, D: Device + ?Sized> {
    device: &'d mut D,
    full: bool,
}

impl<D: Device + ?Sized> Device for Watched<'_, D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.device.receive(timestamp)
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let token = self.device.transmit(timestamp);
        self.full |= token.is_none();
        token
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}
