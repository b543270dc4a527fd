//! Frames made by hand, for peers that send what no well-behaved stack
//! would (a segment past a window, a sequence number a stack would not
//! pick): an Ethernet frame, an ARP request that introduces a peer, and a
//! TCP segment over IPv4 with its checksums.
//!
//! ```
//! use reversal_sim::{PortConfig, Segment, frames};
//! use smoltcp::phy::{Device, RxToken};
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{ArpPacket, EthernetAddress, EthernetFrame, Ipv4Address};
//!
//! let segment = Segment::new(1);
//! let mut peer = segment.attach(PortConfig::default());
//! let mut other = segment.attach(PortConfig::default());
//! let (me, you) = (Ipv4Address::new(10, 0, 0, 2), Ipv4Address::new(10, 0, 0, 1));
//! frames::send_arp_request(&mut peer, Instant::ZERO, EthernetAddress::BROADCAST, me, you);
//! let (token, _) = other.receive(Instant::ZERO).expect("the broadcast");
//! token.consume(|frame| {
//!     let frame = EthernetFrame::new_checked(frame).unwrap();
//!     let arp = ArpPacket::new_checked(frame.payload()).unwrap();
//!     assert_eq!(arp.target_protocol_addr(), you.octets());
//! });
//! ```

use smoltcp::phy::{ChecksumCapabilities, Device, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr,
};

use crate::segment::Port;

/// Sends an Ethernet frame from `port` to `destination` whose `len`-byte
/// payload `fill` writes.
///
/// # Panics
///
/// Never: a port always takes a frame (its link may drop it).
pub fn send_ethernet(
    port: &mut Port,
    now: Instant,
    destination: EthernetAddress,
    ethertype: EthernetProtocol,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let ethernet = EthernetRepr {
        src_addr: port.mac(),
        dst_addr: destination,
        ethertype,
    };
    let token = port.transmit(now).expect("a port always takes a frame");
    token.consume(ethernet.buffer_len() + len, |frame| {
        let mut frame = EthernetFrame::new_unchecked(frame);
        ethernet.emit(&mut frame);
        fill(frame.payload_mut());
    });
}

/// Sends an ARP request from `address` for `target` to `destination` (the
/// host that owns `target`, or [`EthernetAddress::BROADCAST`]): that host
/// learns where `address` lives from it (and answers).
pub fn send_arp_request(
    port: &mut Port,
    now: Instant,
    destination: EthernetAddress,
    address: Ipv4Address,
    target: Ipv4Address,
) {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: port.mac(),
        source_protocol_addr: address,
        target_hardware_addr: EthernetAddress::BROADCAST,
        target_protocol_addr: target,
    };
    send_ethernet(
        port,
        now,
        destination,
        EthernetProtocol::Arp,
        arp.buffer_len(),
        |buffer| arp.emit(&mut ArpPacket::new_unchecked(buffer)),
    );
}

/// Sends `tcp` from `source` to `destination` over IPv4, to the host at
/// `destination_mac`, with correct checksums.
pub fn send_tcp(
    port: &mut Port,
    now: Instant,
    destination_mac: EthernetAddress,
    source: Ipv4Address,
    destination: Ipv4Address,
    tcp: &TcpRepr<'_>,
) {
    let ip = Ipv4Repr {
        src_addr: source,
        dst_addr: destination,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let checksums = ChecksumCapabilities::default();
    let len = ip.buffer_len() + tcp.buffer_len();
    send_ethernet(
        port,
        now,
        destination_mac,
        EthernetProtocol::Ipv4,
        len,
        |buffer| {
            let mut packet = Ipv4Packet::new_unchecked(buffer);
            ip.emit(&mut packet, &checksums);
            tcp.emit(
                &mut TcpPacket::new_unchecked(packet.payload_mut()),
                &IpAddress::Ipv4(source),
                &IpAddress::Ipv4(destination),
                &checksums,
            );
        },
    );
}
