//! A SYN kept for later: read from a frame with smoltcp's wire types,
//! checksums checked as the device asks, and written back as a frame when
//! a socket listens (or answered with a RST when it gives way).
//!
//! Only what smoltcp reads of a SYN is kept: addresses, ports, the initial
//! sequence number, the window and the options (MSS, window scale, SACK
//! permitted, timestamp). A payload on a SYN is dropped; the client sends
//! it again once the handshake is done.

use smoltcp::phy::{ChecksumCapabilities, Medium};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpEndpoint, IpProtocol, IpRepr, Ipv4Packet, Ipv4Repr, TcpControl,
    TcpPacket, TcpRepr, TcpSeqNumber, TcpTimestampRepr,
};

use crate::ingress::Connection;

/// Bytes of an Ethernet header.
const ETHERNET_HEADER: usize = 14;
/// The longest IP header we write: IPv6's, or IPv4's without options.
const IP_HEADER: usize = if cfg!(feature = "ipv6") { 40 } else { 20 };
/// The longest TCP header we write: 20 bytes and the options a [`Syn`]
/// keeps (MSS 4, window scale 3, SACK permitted 2, timestamp 10, padded).
const TCP_HEADER: usize = 40;
/// The longest frame a kept SYN, its RST or its client's ARP reply
/// becomes. Such a frame is built on the stack while smoltcp reads it (a
/// board's stack is RAM it keeps for good), so no larger than that.
pub(super) const MAX_FRAME: usize = ETHERNET_HEADER + IP_HEADER + TCP_HEADER;
/// Hop limit of the frames written back: smoltcp does not look at it.
const HOP_LIMIT: u8 = 64;

/// A connection request, as much of it as smoltcp reads, packed: every
/// backlog entry holds one (40 bytes without IPv6, 62 with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syn {
    /// The client.
    pub(crate) peer: IpEndpoint,
    /// The address and port it asked for.
    pub(crate) local: IpEndpoint,
    /// Source and destination hardware address, if [`LINK`] is set (on an
    /// Ethernet medium).
    link: [EthernetAddress; 2],
    seq: TcpSeqNumber,
    window: u16,
    /// The timestamp's value (its echo is 0 on a SYN), if [`TIMESTAMP`].
    tsval: u32,
    /// The maximum segment size option, 0 if absent.
    max_seg_size: u16,
    /// The window scale option, if [`WINDOW_SCALE`].
    window_scale: u8,
    /// [`LINK`], [`WINDOW_SCALE`], [`SACK_PERMITTED`], [`TIMESTAMP`].
    flags: u8,
}

/// [`Syn::flags`]: it came with hardware addresses.
const LINK: u8 = 1;
/// [`Syn::flags`]: it had a window scale option.
const WINDOW_SCALE: u8 = 2;
/// [`Syn::flags`]: it offered selective acknowledgements.
const SACK_PERMITTED: u8 = 4;
/// [`Syn::flags`]: it had a timestamp option.
const TIMESTAMP: u8 = 8;

impl Syn {
    /// An unused table entry, all zero bytes.
    pub(super) const NONE: Syn = Syn {
        peer: Connection::NONE.peer,
        local: Connection::NONE.peer,
        link: [EthernetAddress([0; 6]); 2],
        seq: TcpSeqNumber(0),
        window: 0,
        tsval: 0,
        max_seg_size: 0,
        window_scale: 0,
        flags: 0,
    };

    /// Whether `flag` is set.
    const fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Source and destination hardware address, on an Ethernet medium.
    fn link(&self) -> Option<(EthernetAddress, EthernetAddress)> {
        self.has(LINK).then_some((self.link[0], self.link[1]))
    }

    /// The connection request `frame` carries, if it is one (a SYN without
    /// ACK in a whole IPv4 or IPv6 packet), with its checksums checked as
    /// `checksums` says for received frames.
    pub(super) fn parse(
        medium: Medium,
        frame: &[u8],
        checksums: &ChecksumCapabilities,
    ) -> Option<Syn> {
        let (link, packet) = match medium {
            Medium::Ethernet => {
                let ethernet = EthernetFrame::new_checked(frame).ok()?;
                let link = [ethernet.src_addr(), ethernet.dst_addr()];
                (Some(link), &frame[ETHERNET_HEADER..])
            }
            Medium::Ip => (None, frame),
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        let (source, destination, segment) = match packet.first()? >> 4 {
            4 => {
                let ip = Ipv4Packet::new_checked(packet).ok()?;
                let repr = Ipv4Repr::parse(&ip, checksums).ok()?;
                if repr.next_header != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                    return None;
                }
                (repr.src_addr.into(), repr.dst_addr.into(), ip.payload())
            }
            #[cfg(feature = "ipv6")]
            6 => {
                let ip = smoltcp::wire::Ipv6Packet::new_checked(packet).ok()?;
                if ip.next_header() != IpProtocol::Tcp {
                    return None;
                }
                (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
            }
            _ => return None,
        };
        let tcp = TcpPacket::new_checked(segment).ok()?;
        let repr = TcpRepr::parse(&tcp, &source, &destination, checksums).ok()?;
        if repr.control != TcpControl::Syn || repr.ack_number.is_some() {
            return None;
        }
        let flag = |set: bool, flag: u8| if set { flag } else { 0 };
        Some(Syn {
            peer: IpEndpoint::new(source, repr.src_port),
            local: IpEndpoint::new(destination, repr.dst_port),
            link: link.unwrap_or(Syn::NONE.link),
            seq: repr.seq_number,
            window: repr.window_len,
            tsval: repr.timestamp.map_or(0, |timestamp| timestamp.tsval),
            max_seg_size: repr.max_seg_size.unwrap_or(0),
            window_scale: repr.window_scale.unwrap_or(0),
            flags: flag(link.is_some(), LINK)
                | flag(repr.window_scale.is_some(), WINDOW_SCALE)
                | flag(repr.sack_permitted, SACK_PERMITTED)
                | flag(repr.timestamp.is_some(), TIMESTAMP),
        })
    }

    /// Its connection, as the server's sockets see it.
    pub(crate) const fn connection(&self) -> Connection {
        Connection {
            peer: self.peer,
            port: self.local.port,
        }
    }

    /// Writes the SYN as a frame into `buffer` ([`MAX_FRAME`] is always
    /// enough); returns its length.
    pub(super) fn emit(&self, medium: Medium, buffer: &mut [u8]) -> usize {
        let tcp = TcpRepr {
            src_port: self.peer.port,
            dst_port: self.local.port,
            control: TcpControl::Syn,
            seq_number: self.seq,
            ack_number: None,
            window_len: self.window,
            window_scale: self.has(WINDOW_SCALE).then_some(self.window_scale),
            max_seg_size: Some(self.max_seg_size).filter(|&mss| mss > 0),
            sack_permitted: self.has(SACK_PERMITTED),
            sack_ranges: [None; 3],
            timestamp: self
                .has(TIMESTAMP)
                .then_some(TcpTimestampRepr::new(self.tsval, 0)),
            payload: &[],
        };
        write_frame(
            medium,
            self.link(),
            self.peer.addr,
            self.local.addr,
            &tcp,
            buffer,
        )
    }

    /// Writes an ARP reply from the client to us, with the addresses its
    /// SYN came with, into `buffer`; returns its length, or `None` when the
    /// SYN did not come over Ethernet and IPv4. Handed to smoltcp before a
    /// proven client's SYN, it puts the client in smoltcp's neighbour
    /// cache, which holds only a few entries: the SYN-ACK then needs no ARP
    /// request, and smoltcp sends those at most once a second for all
    /// neighbours together, a second that forged SYNs compete for.
    pub(super) fn emit_arp(&self, buffer: &mut [u8]) -> Option<usize> {
        let (client_mac, our_mac) = self.link()?;
        let (client, us) = match (self.peer.addr, self.local.addr) {
            (IpAddress::Ipv4(client), IpAddress::Ipv4(us)) => (client, us),
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: client_mac,
            source_protocol_addr: client,
            target_hardware_addr: our_mac,
            target_protocol_addr: us,
        };
        let ethernet = EthernetRepr {
            src_addr: client_mac,
            dst_addr: our_mac,
            ethertype: EthernetProtocol::Arp,
        };
        let len = ETHERNET_HEADER + arp.buffer_len();
        let mut frame = EthernetFrame::new_unchecked(&mut buffer[..len]);
        ethernet.emit(&mut frame);
        arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        Some(len)
    }

    /// Writes the RST that refuses this SYN, as smoltcp would answer it
    /// with no socket listening, into `buffer`; returns its length.
    pub(super) fn emit_reset(&self, medium: Medium, buffer: &mut [u8]) -> usize {
        let tcp = TcpRepr {
            src_port: self.local.port,
            dst_port: self.peer.port,
            control: TcpControl::Rst,
            seq_number: TcpSeqNumber(0),
            ack_number: Some(self.seq + 1),
            window_len: 0,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let link = self
            .link()
            .map(|(source, destination)| (destination, source));
        write_frame(medium, link, self.local.addr, self.peer.addr, &tcp, buffer)
    }
}

/// Writes `tcp` from `source` to `destination`, behind an Ethernet header
/// on that medium, with every checksum filled in.
fn write_frame(
    medium: Medium,
    link: Option<(EthernetAddress, EthernetAddress)>,
    source: IpAddress,
    destination: IpAddress,
    tcp: &TcpRepr,
    buffer: &mut [u8],
) -> usize {
    let checksums = ChecksumCapabilities::default();
    let ip = IpRepr::new(
        source,
        destination,
        IpProtocol::Tcp,
        tcp.buffer_len(),
        HOP_LIMIT,
    );
    let (header, packet) = match (medium, link) {
        (Medium::Ethernet, Some((src_addr, dst_addr))) => {
            let ethertype = match ip {
                IpRepr::Ipv4(_) => EthernetProtocol::Ipv4,
                #[allow(unreachable_patterns)]
                _ => EthernetProtocol::Ipv6,
            };
            let ethernet = EthernetRepr {
                src_addr,
                dst_addr,
                ethertype,
            };
            ethernet.emit(&mut EthernetFrame::new_unchecked(&mut buffer[..]));
            (ETHERNET_HEADER, &mut buffer[ETHERNET_HEADER..])
        }
        _ => (0, &mut buffer[..]),
    };
    let ip_header = ip.header_len();
    ip.emit(&mut packet[..ip.buffer_len()], &checksums);
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut packet[ip_header..ip.buffer_len()]),
        &source,
        &destination,
        &checksums,
    );
    header + ip.buffer_len()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use smoltcp::phy::Checksum;
    use smoltcp::wire::Ipv4Address;

    pub(crate) const CLIENT: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    pub(crate) const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    pub(crate) const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    pub(crate) const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    /// A SYN from `client:port` to SERVER:8888 with the options Linux sends.
    pub(crate) fn syn_from(client: Ipv4Address, port: u16) -> Syn {
        Syn {
            peer: IpEndpoint::new(client.into(), port),
            local: IpEndpoint::new(SERVER.into(), 8888),
            link: [CLIENT_MAC, SERVER_MAC],
            seq: TcpSeqNumber(0x1234_5678),
            window: 64240,
            tsval: 99,
            max_seg_size: 1460,
            window_scale: 7,
            flags: LINK | WINDOW_SCALE | SACK_PERMITTED | TIMESTAMP,
        }
    }

    /// The Ethernet frame of `syn`.
    pub(crate) fn frame(syn: &Syn) -> Vec<u8> {
        let mut buffer = [0; MAX_FRAME];
        let len = syn.emit(Medium::Ethernet, &mut buffer);
        buffer[..len].to_vec()
    }

    #[test]
    fn a_syn_survives_being_written_and_read_again() {
        let syn = syn_from(CLIENT, 40000);
        let checksums = ChecksumCapabilities::default();
        assert_eq!(
            Syn::parse(Medium::Ethernet, &frame(&syn), &checksums),
            Some(syn)
        );
        let mut buffer = [0; MAX_FRAME];
        let ip = Syn {
            link: Syn::NONE.link,
            flags: syn.flags & !LINK,
            ..syn
        };
        let len = ip.emit(Medium::Ip, &mut buffer);
        assert_eq!(Syn::parse(Medium::Ip, &buffer[..len], &checksums), Some(ip));
    }

    #[cfg(feature = "ipv6")]
    #[test]
    fn an_ipv6_syn_survives_being_written_and_read_again() {
        let mut syn = syn_from(CLIENT, 40000);
        syn.peer.addr = IpAddress::v6(0xfdaa, 0, 0, 0, 0, 0, 0, 0x100);
        syn.local.addr = IpAddress::v6(0xfdaa, 0, 0, 0, 0, 0, 0, 1);
        let checksums = ChecksumCapabilities::default();
        assert_eq!(
            Syn::parse(Medium::Ethernet, &frame(&syn), &checksums),
            Some(syn)
        );
    }

    #[test]
    fn a_corrupt_syn_is_not_kept_unless_the_device_checked_it_already() {
        let mut bytes = frame(&syn_from(CLIENT, 40000));
        // A bit of the sequence number: the TCP checksum no longer holds.
        bytes[ETHERNET_HEADER + 20 + 4] ^= 0x40;
        assert_eq!(
            Syn::parse(Medium::Ethernet, &bytes, &ChecksumCapabilities::default()),
            None
        );
        let mut offloaded = ChecksumCapabilities::default();
        offloaded.tcp = Checksum::Tx;
        assert!(Syn::parse(Medium::Ethernet, &bytes, &offloaded).is_some());
    }

    #[test]
    fn segments_other_than_a_bare_syn_are_not_connection_requests() {
        let syn = syn_from(CLIENT, 40000);
        let mut bytes = frame(&syn);
        // The TCP flags byte: SYN and ACK.
        let flags = ETHERNET_HEADER + 20 + 13;
        bytes[flags] |= 0x10;
        let checksums = ChecksumCapabilities::ignored();
        assert_eq!(Syn::parse(Medium::Ethernet, &bytes, &checksums), None);
        assert_eq!(Syn::parse(Medium::Ethernet, &[0; 10], &checksums), None);
    }

    #[test]
    fn the_arp_reply_carries_the_addresses_the_syn_came_with() {
        let syn = syn_from(CLIENT, 40000);
        let mut buffer = [0; MAX_FRAME];
        let len = syn.emit_arp(&mut buffer).unwrap();
        let ethernet = EthernetFrame::new_checked(&buffer[..len]).unwrap();
        let arp = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).unwrap()).unwrap();
        let expected = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: CLIENT_MAC,
            source_protocol_addr: CLIENT,
            target_hardware_addr: SERVER_MAC,
            target_protocol_addr: SERVER,
        };
        assert_eq!(arp, expected);
        let no_link = Syn {
            flags: syn.flags & !LINK,
            ..syn
        };
        assert_eq!(no_link.emit_arp(&mut buffer), None);
    }

    #[test]
    fn the_reset_answers_the_syn_from_the_servers_side() {
        let syn = syn_from(CLIENT, 40000);
        let mut buffer = [0; MAX_FRAME];
        let len = syn.emit_reset(Medium::Ethernet, &mut buffer);
        let ethernet = EthernetFrame::new_checked(&buffer[..len]).unwrap();
        assert_eq!(
            (ethernet.src_addr(), ethernet.dst_addr()),
            (SERVER_MAC, CLIENT_MAC)
        );
        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (SERVER, CLIENT));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.rst() && tcp.ack() && !tcp.syn());
        assert_eq!(tcp.ack_number(), TcpSeqNumber(0x1234_5679));
        assert_eq!((tcp.src_port(), tcp.dst_port()), (8888, 40000));
        assert!(tcp.verify_checksum(&SERVER.into(), &CLIENT.into()));
    }
}
