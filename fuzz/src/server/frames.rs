//! Reading the frames on the segment: the IP and UDP headers the checks
//! need, and the answers of live attacker hosts to the server's ARP and
//! neighbour solicitations.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Icmpv6Packet, Icmpv6Repr, IpAddress, IpEndpoint, IpProtocol, Ipv4Packet, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress, UdpPacket,
};

use super::attack::{attacker_mac, ethernet};
use super::{CLIENT_MAC, CLIENT_V4, SERVER_MAC, SERVER_V4};

// Reading frames

/// The IP packet in an Ethernet frame: source, destination, protocol and
/// the transport payload, walking IPv6 extension headers. Lenient on
/// purpose: it finds every packet the server could take, and more.
fn transport(frame: &[u8]) -> Option<(IpAddress, IpAddress, IpProtocol, &[u8])> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    let packet = &frame[EthernetFrame::<&[u8]>::header_len()..];
    match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header(),
                ip.payload(),
            ))
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            let (mut next, mut rest) = (ip.next_header(), ip.payload());
            for _ in 0..16 {
                let len = match next {
                    IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                        (usize::from(*rest.get(1)?) + 1) * 8
                    }
                    IpProtocol::Ipv6Frag => 8,
                    _ => break,
                };
                next = IpProtocol::from(*rest.first()?);
                rest = rest.get(len..)?;
            }
            Some((ip.src_addr().into(), ip.dst_addr().into(), next, rest))
        }
        _ => None,
    }
}

/// A UDP datagram in `frame`: (from, to, payload length).
pub(super) fn udp_in(frame: &[u8]) -> Option<(IpEndpoint, IpEndpoint, usize)> {
    let (src, dst, protocol, payload) = transport(frame)?;
    if protocol != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(payload).ok()?;
    Some((
        IpEndpoint::new(src, udp.src_port()),
        IpEndpoint::new(dst, udp.dst_port()),
        udp.payload().len(),
    ))
}

/// Whether `frame` speaks as the client, which the attacker may not.
pub(super) fn forges_client(frame: &[u8]) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if ethernet.src_addr() == CLIENT_MAC {
        return true;
    }
    if ethernet.ethertype() == EthernetProtocol::Arp {
        // What smoltcp would take from it: a well-formed Ethernet/IPv4 ARP.
        let arp = ArpPacket::new_checked(ethernet.payload()).ok();
        return match arp.and_then(|arp| ArpRepr::parse(&arp).ok()) {
            Some(ArpRepr::EthernetIpv4 {
                source_protocol_addr,
                source_hardware_addr,
                ..
            }) => source_protocol_addr == CLIENT_V4 || source_hardware_addr == CLIENT_MAC,
            _ => false,
        };
    }
    transport(frame).is_some_and(|(src, ..)| src == IpAddress::Ipv4(CLIENT_V4))
}

/// The answer of a live attacker host to the server's ARP request or
/// neighbour solicitation in `frame`, if it asks for one.
pub(super) fn neighbour_answer(frame: &[u8]) -> Option<Vec<u8>> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EthernetProtocol::Arp => {
            let ArpRepr::EthernetIpv4 {
                operation,
                target_protocol_addr,
                ..
            } = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).ok()?).ok()?
            else {
                return None;
            };
            if operation != ArpOperation::Request || target_protocol_addr == CLIENT_V4 {
                return None;
            }
            let mac = attacker_mac(target_protocol_addr.into());
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: mac,
                source_protocol_addr: target_protocol_addr,
                target_hardware_addr: SERVER_MAC,
                target_protocol_addr: SERVER_V4,
            };
            let mut bytes = vec![0u8; reply.buffer_len()];
            reply.emit(&mut ArpPacket::new_unchecked(&mut bytes));
            Some(ethernet_frame_to_server(mac, EthernetProtocol::Arp, &bytes))
        }
        EthernetProtocol::Ipv6 => {
            let (IpAddress::Ipv6(server), IpAddress::Ipv6(dst), IpProtocol::Icmpv6, payload) =
                transport(frame)?
            else {
                return None;
            };
            let icmp = Icmpv6Packet::new_checked(payload).ok()?;
            let Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) =
                Icmpv6Repr::parse(&server, &dst, &icmp, &ChecksumCapabilities::ignored()).ok()?
            else {
                return None;
            };
            let mac = attacker_mac(target_addr.into());
            let advert = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                target_addr,
                lladdr: Some(RawHardwareAddress::from(mac)),
            });
            let mut bytes = vec![0u8; advert.buffer_len()];
            advert.emit(
                &target_addr,
                &server,
                &mut Icmpv6Packet::new_unchecked(&mut bytes[..]),
                &ChecksumCapabilities::default(),
            );
            let repr = Ipv6Repr {
                src_addr: target_addr,
                dst_addr: server,
                next_header: IpProtocol::Icmpv6,
                payload_len: bytes.len(),
                hop_limit: 255,
            };
            let mut packet = vec![0u8; repr.buffer_len() + bytes.len()];
            let mut ip = Ipv6Packet::new_unchecked(&mut packet);
            repr.emit(&mut ip);
            ip.payload_mut().copy_from_slice(&bytes);
            Some(ethernet_frame_to_server(
                mac,
                EthernetProtocol::Ipv6,
                &packet,
            ))
        }
        _ => None,
    }
}

fn ethernet_frame_to_server(
    src: EthernetAddress,
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Vec<u8> {
    ethernet(src, SERVER_MAC, ethertype, payload)
}
