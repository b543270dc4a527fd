//! The device wrapper: the caller's `phy::Device`, with every incoming TCP
//! segment shown to a [`Filter`] on its way to smoltcp.

use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, Medium, PacketMeta, RxToken};
use smoltcp::time::Instant;

use super::filter::{Filter, Verdict};
use super::segment::Segment;

/// The caller's device for one batch of frames, filtered by `F`.
/// Transmission goes straight to the device.
pub(crate) struct Ingress<'g, D: Device + ?Sized, F> {
    device: &'g mut D,
    filter: &'g mut F,
    medium: Medium,
    /// What the device leaves to verify (smoltcp verifies the same).
    checksum: ChecksumCapabilities,
}

impl<'g, D: Device + ?Sized, F: Filter> Ingress<'g, D, F> {
    pub(crate) fn new(device: &'g mut D, filter: &'g mut F) -> Self {
        let capabilities = device.capabilities();
        Ingress {
            device,
            filter,
            medium: capabilities.medium,
            checksum: capabilities.checksum,
        }
    }
}

impl<D: Device + ?Sized, F: Filter> Device for Ingress<'_, D, F> {
    type RxToken<'a>
        = FilteredRx<'a, D::RxToken<'a>, F>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (filter, medium, checksum) = (&mut *self.filter, self.medium, &self.checksum);
        self.device.receive(timestamp).map(|(inner, tx)| {
            (
                FilteredRx {
                    inner,
                    filter,
                    medium,
                    checksum,
                },
                tx,
            )
        })
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

/// A received frame that meets the filter when smoltcp reads it.
pub(crate) struct FilteredRx<'a, T, F> {
    inner: T,
    filter: &'a mut F,
    medium: Medium,
    checksum: &'a ChecksumCapabilities,
}

impl<T: RxToken, F: Filter> RxToken for FilteredRx<'_, T, F> {
    fn consume<R, G: FnOnce(&[u8]) -> R>(self, f: G) -> R {
        let FilteredRx {
            inner,
            filter,
            medium,
            checksum,
        } = self;
        inner.consume(|frame| {
            let verdict = Segment::parse(medium, checksum, frame)
                .map_or(Verdict::Pass, |s| filter.inspect(&s));
            match verdict {
                Verdict::Pass => f(frame),
                // smoltcp drops an empty frame as malformed.
                Verdict::Drop => f(&[]),
            }
        })
    }

    fn meta(&self) -> PacketMeta {
        self.inner.meta()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::segment::tests::segment;
    use smoltcp::phy::{Loopback, TxToken};
    use smoltcp::wire::TcpControl;

    /// Drops every segment, and counts what it saw.
    struct DropAll(usize);

    impl Filter for DropAll {
        fn inspect(&mut self, _: &Segment) -> Verdict {
            self.0 += 1;
            Verdict::Drop
        }
    }

    /// What smoltcp would read of each frame `device` delivers through the
    /// wrapper.
    fn received(device: &mut Loopback, filter: &mut DropAll) -> Vec<Vec<u8>> {
        let mut ingress = Ingress::new(device, filter);
        let mut frames = Vec::new();
        while let Some((rx, _)) = ingress.receive(Instant::ZERO) {
            frames.push(rx.consume(<[u8]>::to_vec));
        }
        frames
    }

    fn send(device: &mut Loopback, frame: &[u8]) {
        let tx = device.transmit(Instant::ZERO).unwrap();
        tx.consume(frame.len(), |buffer| buffer.copy_from_slice(frame));
    }

    #[test]
    fn a_dropped_segment_reaches_smoltcp_empty_and_other_frames_whole() {
        let mut device = Loopback::new(Medium::Ip);
        let syn = segment(TcpControl::Syn, false);
        let not_tcp = [0x45, 0, 0];
        send(&mut device, &syn);
        send(&mut device, &not_tcp);
        let mut filter = DropAll(0);
        let frames = received(&mut device, &mut filter);
        assert_eq!(frames, [vec![], not_tcp.to_vec()]);
        assert_eq!(filter.0, 1, "only the TCP segment meets the filter");
    }
}
