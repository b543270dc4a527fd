//! The attacker's frames: what the fuzzer chooses, and the frames built
//! from it with smoltcp's `wire` types.

use arbitrary::Arbitrary;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet,
    Ipv4Repr, Ipv6Address, Ipv6Packet, Ipv6Repr, TcpPacket, TcpSeqNumber, UdpPacket, checksum,
};

use super::{CLIENT_V4, PORT, SERVER_MAC, SERVER_V4, SERVER_V6};

/// An IPv4 source: on the segment (10.0.0.x) or anywhere.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Source4 {
    /// 10.0.0.x.
    OnLink(u8),
    /// Any address at all.
    Anywhere(u32),
}

/// A source of TCP or UDP: IPv4 or IPv6 (fdaa::x, or fe80::x if `link_local`).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Source {
    /// Over IPv4.
    V4(Source4),
    /// Over IPv6.
    V6 {
        /// Interface identifier.
        host: u16,
        /// fe80::/64 rather than fdaa::/64.
        link_local: bool,
    },
}

/// One step of the attack or of the client's script.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Any bytes as a whole Ethernet frame.
    Raw(Vec<u8>),
    /// Any bytes behind an Ethernet header to the server (or broadcast).
    Ethernet {
        /// The EtherType.
        ethertype: u16,
        /// To ff:ff:ff:ff:ff:ff rather than to the server.
        broadcast: bool,
        /// What follows the header.
        payload: Vec<u8>,
    },
    /// An ARP packet, broadcast.
    Arp {
        /// Operation code (1 request, 2 reply, anything else).
        operation: u16,
        /// Sender, 10.0.0.x.
        sender: u8,
        /// Target, 10.0.0.x.
        target: u8,
        /// Lying hardware and protocol address lengths.
        lengths: Option<(u8, u8)>,
    },
    /// IPv4 with any header fields and options.
    Ipv4(Ipv4Fields),
    /// A TCP segment.
    Tcp(Segment),
    /// A UDP datagram.
    Udp(Datagram),
    /// An ICMPv4 echo request.
    Ping {
        /// From.
        source: Source4,
        /// Echo identifier.
        ident: u16,
        /// Echo data.
        data: Vec<u8>,
    },
    /// IPv6 with any next header (extension headers or not) and payload.
    Ipv6 {
        /// From fdaa::x.
        host: u16,
        /// First next-header value.
        next_header: u8,
        /// Hop limit.
        hop_limit: u8,
        /// Everything after the fixed header.
        payload: Vec<u8>,
        /// Added to the payload length field.
        lie: i8,
    },
    /// Virtual time passes, in milliseconds.
    Wait(u16),
    /// The client sends its next line.
    ClientLine,
    /// The client sends its next datagram.
    ClientDatagram,
}

/// IPv4 header fields, honest or not.
#[derive(Debug, Clone, Arbitrary)]
pub struct Ipv4Fields {
    /// From.
    pub source: Source4,
    /// To the server rather than 10.0.0.255.
    pub to_server: bool,
    /// Protocol number.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Fragment: more fragments follow.
    pub more_frags: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Options (up to 40 bytes).
    pub options: Vec<u8>,
    /// Header length field, if it lies.
    pub header_len: Option<u8>,
    /// Total length field, if it lies.
    pub total_len: Option<u16>,
    /// Corrupt the header checksum.
    pub bad_checksum: bool,
    /// What follows the header.
    pub payload: Vec<u8>,
}

/// A TCP segment with any flags, options and payload.
#[derive(Debug, Clone, Arbitrary)]
pub struct Segment {
    /// From.
    pub source: Source,
    /// Source port.
    pub src_port: u16,
    /// Destination port, if not the server's.
    pub dst_port: Option<u16>,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags, FIN to CWR in the low eight bits.
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Options (up to 40 bytes).
    pub options: Vec<u8>,
    /// Data.
    pub payload: Vec<u8>,
    /// Corrupt the checksum.
    pub bad_checksum: bool,
}

/// A UDP datagram.
#[derive(Debug, Clone, Arbitrary)]
pub struct Datagram {
    /// From.
    pub source: Source,
    /// Source port.
    pub src_port: u16,
    /// Destination port, if not the server's.
    pub dst_port: Option<u16>,
    /// Payload.
    pub payload: Vec<u8>,
    /// Length field, if it lies.
    pub len: Option<u16>,
    /// Corrupt the checksum.
    pub bad_checksum: bool,
}

// Addresses and frames, built with smoltcp's wire types

fn on_link(host: u8) -> Ipv4Address {
    // Never the client: the attacker does not forge it.
    let host = if host == 2 { 102 } else { host };
    Ipv4Address::new(10, 0, 0, host)
}

fn ipv4_source(source: Source4) -> Ipv4Address {
    match source {
        Source4::OnLink(host) => on_link(host),
        Source4::Anywhere(bits) if Ipv4Address::from_bits(bits) == CLIENT_V4 => on_link(102),
        Source4::Anywhere(bits) => Ipv4Address::from_bits(bits),
    }
}

fn ipv6_source(host: u16, link_local: bool) -> Ipv6Address {
    let prefix = if link_local { 0xfe80 } else { 0xfdaa };
    Ipv6Address::new(prefix, 0, 0, 0, 0, 0, 0, host)
}

/// The MAC an attacker host answers ARP or NDP with.
pub(super) fn attacker_mac(address: IpAddress) -> EthernetAddress {
    let bytes = match address {
        IpAddress::Ipv4(a) => a.octets()[1..].to_vec(),
        IpAddress::Ipv6(a) => a.octets()[13..].to_vec(),
    };
    EthernetAddress([0x02, 0xaa, 0x00, bytes[0], bytes[1], bytes[2]])
}

pub(super) fn ethernet(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut frame = vec![0u8; repr.buffer_len() + payload.len()];
    let mut packet = EthernetFrame::new_unchecked(&mut frame);
    repr.emit(&mut packet);
    packet.payload_mut().copy_from_slice(payload);
    frame
}

/// An IP packet from `src` to the server carrying `payload` as `protocol`,
/// in an Ethernet frame from the attacker's MAC.
fn ip_frame(src: IpAddress, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let caps = ChecksumCapabilities::default();
    let (ethertype, packet) = match src {
        IpAddress::Ipv4(src_addr) => {
            let repr = Ipv4Repr {
                src_addr,
                dst_addr: SERVER_V4,
                next_header: protocol,
                payload_len: payload.len(),
                hop_limit: 64,
            };
            let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
            let mut packet = Ipv4Packet::new_unchecked(&mut bytes);
            repr.emit(&mut packet, &caps);
            packet.payload_mut().copy_from_slice(payload);
            (EthernetProtocol::Ipv4, bytes)
        }
        IpAddress::Ipv6(src_addr) => {
            let repr = Ipv6Repr {
                src_addr,
                dst_addr: SERVER_V6,
                next_header: protocol,
                payload_len: payload.len(),
                hop_limit: 64,
            };
            let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
            let mut packet = Ipv6Packet::new_unchecked(&mut bytes);
            repr.emit(&mut packet);
            packet.payload_mut().copy_from_slice(payload);
            (EthernetProtocol::Ipv6, bytes)
        }
    };
    ethernet(attacker_mac(src), SERVER_MAC, ethertype, &packet)
}

fn source_address(source: Source) -> IpAddress {
    match source {
        Source::V4(source) => IpAddress::Ipv4(ipv4_source(source)),
        Source::V6 { host, link_local } => IpAddress::Ipv6(ipv6_source(host, link_local)),
    }
}

fn server_address(source: IpAddress) -> IpAddress {
    match source {
        IpAddress::Ipv4(_) => IpAddress::Ipv4(SERVER_V4),
        IpAddress::Ipv6(_) => IpAddress::Ipv6(SERVER_V6),
    }
}

/// Options padded with zeros (end of option list) to a multiple of four,
/// at most 40 bytes.
fn padded_options(options: &[u8]) -> Vec<u8> {
    let mut options = options[..options.len().min(40)].to_vec();
    options.resize(options.len().div_ceil(4) * 4, 0);
    options
}

fn tcp_frame(segment: &Segment) -> Vec<u8> {
    let src = source_address(segment.source);
    let options = padded_options(&segment.options);
    let header_len = 20 + options.len();
    let mut bytes = vec![0u8; header_len + segment.payload.len()];
    let mut tcp = TcpPacket::new_unchecked(&mut bytes);
    tcp.set_src_port(segment.src_port);
    tcp.set_dst_port(segment.dst_port.unwrap_or(PORT));
    tcp.set_seq_number(TcpSeqNumber(segment.seq as i32));
    tcp.set_ack_number(TcpSeqNumber(segment.ack as i32));
    tcp.set_header_len(header_len as u8);
    let flag = |bit: u8| segment.flags & (1 << bit) != 0;
    tcp.set_fin(flag(0));
    tcp.set_syn(flag(1));
    tcp.set_rst(flag(2));
    tcp.set_psh(flag(3));
    tcp.set_ack(flag(4));
    tcp.set_urg(flag(5));
    tcp.set_ece(flag(6));
    tcp.set_cwr(flag(7));
    tcp.set_window_len(segment.window);
    tcp.options_mut().copy_from_slice(&options);
    tcp.payload_mut().copy_from_slice(&segment.payload);
    tcp.fill_checksum(&src, &server_address(src));
    if segment.bad_checksum {
        let checksum = tcp.checksum();
        tcp.set_checksum(!checksum);
    }
    ip_frame(src, IpProtocol::Tcp, &bytes)
}

fn udp_frame(datagram: &Datagram) -> Vec<u8> {
    let src = source_address(datagram.source);
    let mut bytes = vec![0u8; 8 + datagram.payload.len()];
    let mut udp = UdpPacket::new_unchecked(&mut bytes);
    udp.set_src_port(datagram.src_port);
    udp.set_dst_port(datagram.dst_port.unwrap_or(PORT));
    udp.set_len(8 + datagram.payload.len() as u16);
    udp.payload_mut().copy_from_slice(&datagram.payload);
    udp.fill_checksum(&src, &server_address(src));
    if let Some(len) = datagram.len {
        udp.set_len(len);
    }
    if datagram.bad_checksum {
        let checksum = udp.checksum();
        udp.set_checksum(!checksum);
    }
    ip_frame(src, IpProtocol::Udp, &bytes)
}

fn ipv4_frame(fields: &Ipv4Fields) -> Vec<u8> {
    let options = padded_options(&fields.options);
    let header_len = 20 + options.len();
    let mut bytes = vec![0u8; header_len + fields.payload.len()];
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes);
    ip.set_version(4);
    ip.set_header_len(fields.header_len.unwrap_or(header_len as u8));
    ip.set_total_len(
        fields
            .total_len
            .unwrap_or((header_len + fields.payload.len()) as u16),
    );
    ip.set_ident(fields.ident);
    ip.set_more_frags(fields.more_frags);
    ip.set_frag_offset(fields.frag_offset.wrapping_mul(8));
    ip.set_hop_limit(fields.ttl);
    ip.set_next_header(IpProtocol::from(fields.protocol));
    let src = ipv4_source(fields.source);
    ip.set_src_addr(src);
    ip.set_dst_addr(if fields.to_server {
        SERVER_V4
    } else {
        Ipv4Address::new(10, 0, 0, 255)
    });
    bytes[20..header_len].copy_from_slice(&options);
    bytes[header_len..].copy_from_slice(&fields.payload);
    // Over the header as built: the length field may lie past the buffer.
    let checksum = !checksum::data(&bytes[..header_len]);
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes);
    ip.set_checksum(if fields.bad_checksum {
        !checksum
    } else {
        checksum
    });
    ethernet(
        attacker_mac(IpAddress::Ipv4(src)),
        SERVER_MAC,
        EthernetProtocol::Ipv4,
        &bytes,
    )
}

fn ipv6_frame(host: u16, next_header: u8, hop_limit: u8, payload: &[u8], lie: i8) -> Vec<u8> {
    let src = ipv6_source(host, false);
    let mut bytes = vec![0u8; 40 + payload.len()];
    let mut ip = Ipv6Packet::new_unchecked(&mut bytes);
    ip.set_version(6);
    ip.set_payload_len((payload.len() as u16).wrapping_add_signed(i16::from(lie)));
    ip.set_next_header(IpProtocol::from(next_header));
    ip.set_hop_limit(hop_limit);
    ip.set_src_addr(src);
    ip.set_dst_addr(SERVER_V6);
    // Past the fixed header, whatever the length field says.
    bytes[40..].copy_from_slice(payload);
    ethernet(
        attacker_mac(IpAddress::Ipv6(src)),
        SERVER_MAC,
        EthernetProtocol::Ipv6,
        &bytes,
    )
}

fn arp_frame(operation: u16, sender: u8, target: u8, lengths: Option<(u8, u8)>) -> Vec<u8> {
    let sender = on_link(sender);
    let mac = attacker_mac(IpAddress::Ipv4(sender));
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::from(operation),
        source_hardware_addr: mac,
        source_protocol_addr: sender,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: on_link(target),
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    let mut packet = ArpPacket::new_unchecked(&mut bytes);
    repr.emit(&mut packet);
    if let Some((hardware, protocol)) = lengths {
        packet.set_hardware_len(hardware);
        packet.set_protocol_len(protocol);
    }
    ethernet(
        mac,
        EthernetAddress::BROADCAST,
        EthernetProtocol::Arp,
        &bytes,
    )
}

fn ping_frame(source: Source4, ident: u16, data: &[u8]) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest {
        ident,
        seq_no: 1,
        data,
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut bytes[..]),
        &ChecksumCapabilities::default(),
    );
    ip_frame(
        IpAddress::Ipv4(ipv4_source(source)),
        IpProtocol::Icmp,
        &bytes,
    )
}

/// The attacker's frame for `op`, if it is one.
pub(super) fn attack_frame(op: &Op) -> Option<Vec<u8>> {
    Some(match op {
        Op::Raw(bytes) => bytes.clone(),
        Op::Ethernet {
            ethertype,
            broadcast,
            payload,
        } => {
            let dst = if *broadcast {
                EthernetAddress::BROADCAST
            } else {
                SERVER_MAC
            };
            ethernet(
                EthernetAddress([0x02, 0xaa, 0, 0, 0, 0xee]),
                dst,
                EthernetProtocol::from(*ethertype),
                payload,
            )
        }
        Op::Arp {
            operation,
            sender,
            target,
            lengths,
        } => arp_frame(*operation, *sender, *target, *lengths),
        Op::Ipv4(fields) => ipv4_frame(fields),
        Op::Tcp(segment) => tcp_frame(segment),
        Op::Udp(datagram) => udp_frame(datagram),
        Op::Ping {
            source,
            ident,
            data,
        } => ping_frame(*source, *ident, data),
        Op::Ipv6 {
            host,
            next_header,
            hop_limit,
            payload,
            lie,
        } => ipv6_frame(*host, *next_header, *hop_limit, payload, *lie),
        Op::Wait(_) | Op::ClientLine | Op::ClientDatagram => return None,
    })
}
