//! The listener as a `phy::Device`: the caller's device for one poll, with
//! every incoming frame shown to the listener first and waiting SYNs handed
//! to smoltcp as if they had just arrived.

use smoltcp::phy::{
    ChecksumCapabilities, Device, DeviceCapabilities, Medium, PacketMeta, RxToken, TxToken,
};
use smoltcp::time::Instant;

use super::{Listener, Next};

/// The caller's device for one poll, seen through a [`Listener`]: hand it
/// to smoltcp's `Interface::poll` (or `poll_ingress_single`) instead of
/// the device. Made by [`Listener::device`].
///
/// Before each frame it reads it writes out the RST of an attempt that
/// gave way (with [`WhenFull::Reset`](super::WhenFull::Reset)), and while
/// a socket listens that can take a waiting attempt it delivers that
/// attempt's SYN instead of reading (after a proven client's SYN, an ARP
/// reply from it, so that smoltcp knows where to send the SYN-ACK).
/// Transmission goes straight to the device.
#[derive(Debug)]
pub struct ListenerDevice<'d, 'l, D: Device + ?Sized> {
    device: &'d mut D,
    listener: &'d mut Listener<'l>,
    medium: Medium,
    checksums: ChecksumCapabilities,
}

impl<'d, 'l, D: Device + ?Sized> ListenerDevice<'d, 'l, D> {
    pub(super) fn new(listener: &'d mut Listener<'l>, device: &'d mut D) -> Self {
        let capabilities = device.capabilities();
        ListenerDevice {
            device,
            listener,
            medium: capabilities.medium,
            checksums: capabilities.checksum,
        }
    }
}

impl<'l, D: Device + ?Sized> Device for ListenerDevice<'_, 'l, D> {
    type RxToken<'a>
        = ListenerRx<'a, 'l, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.listener.has_next() {
            // smoltcp takes a transmit token with every frame: while the
            // device has none, nothing is read and what the listener has
            // for smoltcp waits.
            self.device.transmit(timestamp)?;
            match self.listener.next(self.medium) {
                Next::Transmit(len) => {
                    let frame = &self.listener.frame[..len];
                    let tx = self.device.transmit(timestamp)?;
                    tx.consume(len, |buffer| buffer.copy_from_slice(frame));
                }
                Next::Deliver(len) => {
                    // The device had a token a moment ago.
                    let tx = self.device.transmit(timestamp)?;
                    let frame = &self.listener.frame[..len];
                    return Some((ListenerRx(Rx::Written(frame)), tx));
                }
                Next::Nothing => {}
            }
        }
        let (listener, medium, checksums) = (&mut *self.listener, self.medium, &self.checksums);
        self.device.receive(timestamp).map(|(inner, tx)| {
            let rx = ListenerRx(Rx::Frame {
                inner,
                listener,
                medium,
                checksums,
            });
            (rx, tx)
        })
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

/// A frame for smoltcp: one read from the device, which meets the
/// listener when smoltcp reads it, or a waiting SYN handed over.
#[derive(Debug)]
pub struct ListenerRx<'a, 'l, R>(Rx<'a, 'l, R>);

#[derive(Debug)]
enum Rx<'a, 'l, R> {
    Frame {
        inner: R,
        listener: &'a mut Listener<'l>,
        medium: Medium,
        checksums: &'a ChecksumCapabilities,
    },
    /// A frame the listener wrote: a waiting SYN handed over, or a proven
    /// client's neighbour entry as an ARP reply from it.
    Written(&'a [u8]),
}

impl<R: RxToken> RxToken for ListenerRx<'_, '_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        match self.0 {
            Rx::Frame {
                inner,
                listener,
                medium,
                checksums,
            } => inner.consume(|frame| {
                if listener.inspect(medium, checksums, frame) {
                    f(frame)
                } else {
                    // smoltcp drops an empty frame as malformed.
                    f(&[])
                }
            }),
            Rx::Written(frame) => f(frame),
        }
    }

    fn meta(&self) -> PacketMeta {
        match &self.0 {
            Rx::Frame { inner, .. } => inner.meta(),
            Rx::Written(_) => PacketMeta::default(),
        }
    }
}
