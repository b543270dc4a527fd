//! IPv4 fragments beyond what smoltcp reassembles here.
//!
//! smoltcp reassembles into [`REASSEMBLY_BUFFER_SIZE`] bytes per datagram
//! (feature `reassembly-buffer-size-16384`), or, where a crate built with
//! it turns on its `alloc` (the workspace's tests do), into a `Vec` that
//! grows to the largest datagram reassembled in it. The device drops every
//! fragment that ends beyond that size: every build answers the same
//! datagrams, and no reassembly buffer grows past it.

use smoltcp::config::REASSEMBLY_BUFFER_SIZE;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, Ipv4Packet};

/// Whether `frame` is an IPv4 fragment whose data ends beyond
/// [`REASSEMBLY_BUFFER_SIZE`] bytes of its datagram's payload.
pub(super) fn ends_beyond_reassembly(frame: &[u8]) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return false;
    }
    let Ok(packet) = Ipv4Packet::new_checked(ethernet.payload()) else {
        return false;
    };
    let offset = usize::from(packet.frag_offset());
    (packet.more_frags() || offset != 0) && offset + packet.payload().len() > REASSEMBLY_BUFFER_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{EthernetAddress, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Repr};

    /// A frame with an IPv4 fragment of `len` bytes at `offset`.
    fn fragment(offset: u16, len: usize, more: bool) -> Vec<u8> {
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(192, 168, 69, 100),
            dst_addr: Ipv4Address::new(192, 168, 69, 1),
            next_header: IpProtocol::Udp,
            payload_len: len,
            hop_limit: 64,
        };
        let mut frame = vec![0; 14 + ip.buffer_len() + len];
        let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut ethernet);
        let mut packet = Ipv4Packet::new_unchecked(ethernet.payload_mut());
        ip.emit(&mut packet, &smoltcp::phy::ChecksumCapabilities::default());
        packet.set_frag_offset(offset);
        packet.set_more_frags(more);
        packet.fill_checksum();
        frame
    }

    #[test]
    fn fragments_up_to_the_buffer_pass_and_beyond_it_are_dropped() {
        let last = u16::try_from(REASSEMBLY_BUFFER_SIZE - 1480).unwrap() & !7;
        let fits = REASSEMBLY_BUFFER_SIZE - usize::from(last);
        assert!(!ends_beyond_reassembly(&fragment(0, 1480, true)));
        assert!(!ends_beyond_reassembly(&fragment(last, fits, false)));
        assert!(ends_beyond_reassembly(&fragment(last, fits + 1, false)));
        assert!(ends_beyond_reassembly(&fragment(last + 8, fits, true)));
    }

    #[test]
    fn whole_packets_and_other_frames_pass() {
        assert!(!ends_beyond_reassembly(&fragment(0, 1480, false)));
        assert!(!ends_beyond_reassembly(&[0; 3]));
    }
}
