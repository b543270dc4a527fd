//! The fields of an incoming TCP segment that the filters look at, parsed
//! with smoltcp's own wire types.

use smoltcp::phy::{ChecksumCapabilities, Medium};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, Ipv4Address, Ipv4Packet,
    TcpPacket,
};

use super::mark::StreamMark;

/// One TCP connection as our side sees it: the peer, and our port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Connection {
    pub(crate) peer: IpEndpoint,
    pub(crate) port: u16,
}

impl Connection {
    /// A table entry that is not in use. All zero bytes, so a table of them
    /// in a `static` stays in `.bss`.
    pub(crate) const NONE: Connection = Connection {
        peer: IpEndpoint {
            addr: IpAddress::Ipv4(Ipv4Address::UNSPECIFIED),
            port: 0,
        },
        port: 0,
    };
}

/// An incoming TCP segment: whose, and its control flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The connection it belongs to.
    pub(crate) connection: Connection,
    pub(crate) syn: bool,
    pub(crate) ack: bool,
    /// Where it starts its sender's stream or ends one of its writes, if
    /// it does and its checksums hold.
    pub(crate) mark: Option<StreamMark>,
}

impl Segment {
    /// The TCP segment `frame` carries, if it is one: a whole IPv4 or IPv6
    /// packet (not a fragment) with a TCP header. Checksums are smoltcp's
    /// business (a segment that fails them is dropped there), except for
    /// the [`mark`](Self::mark), which is read only from a segment whose
    /// checksums hold (`checksum`: what the device left to verify).
    pub(crate) fn parse(
        medium: Medium,
        checksum: &ChecksumCapabilities,
        frame: &[u8],
    ) -> Option<Segment> {
        let packet = match medium {
            Medium::Ethernet => {
                let ethernet = EthernetFrame::new_checked(frame).ok()?;
                if !matches!(
                    ethernet.ethertype(),
                    EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6
                ) {
                    return None;
                }
                &frame[EthernetFrame::<&[u8]>::header_len()..]
            }
            Medium::Ip => frame,
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        let (source, destination, header_ok, segment) = match packet.first()? >> 4 {
            4 => {
                let ip = Ipv4Packet::new_checked(packet).ok()?;
                if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                    return None;
                }
                let header_ok = !checksum.ipv4.rx() || ip.verify_checksum();
                let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
                (src, dst, header_ok, ip.payload())
            }
            #[cfg(feature = "ipv6")]
            6 => {
                let ip = smoltcp::wire::Ipv6Packet::new_checked(packet).ok()?;
                if ip.next_header() != IpProtocol::Tcp {
                    return None;
                }
                let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
                (src, dst, true, ip.payload())
            }
            _ => return None,
        };
        let tcp = TcpPacket::new_checked(segment).ok()?;
        Some(Segment {
            connection: Connection {
                peer: IpEndpoint::new(source, tcp.src_port()),
                port: tcp.dst_port(),
            },
            syn: tcp.syn(),
            ack: tcp.ack(),
            mark: StreamMark::read(&tcp, &source, &destination, header_ok, checksum),
        })
    }

    /// A SYN without ACK: the peer asks for a new connection.
    pub(crate) const fn is_connection_request(&self) -> bool {
        self.syn && !self.ack
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpRepr, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};

    pub(crate) const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    pub(crate) const US: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

    /// The connection of every segment [`segment`] makes.
    pub(crate) fn connection() -> Connection {
        Connection {
            peer: IpEndpoint::new(IpAddress::Ipv4(PEER), 40000),
            port: 8888,
        }
    }

    /// The bytes of a TCP segment from PEER:40000 to US:8888 with
    /// `control`, an ACK if `ack`, sequence number `seq` and `payload`, its
    /// checksum right.
    pub(crate) fn tcp(control: TcpControl, ack: bool, seq: i32, payload: &[u8]) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 8888,
            control,
            seq_number: TcpSeqNumber(seq),
            ack_number: ack.then_some(TcpSeqNumber(1)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut bytes[..]),
            &PEER.into(),
            &US.into(),
            &ChecksumCapabilities::default(),
        );
        bytes
    }

    /// An IPv4 packet from PEER to US carrying `tcp`.
    pub(crate) fn ipv4(tcp: &[u8]) -> Vec<u8> {
        let ip = IpRepr::Ipv4(Ipv4Repr {
            src_addr: PEER,
            dst_addr: US,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.len(),
            hop_limit: 64,
        });
        let mut bytes = vec![0; ip.buffer_len()];
        ip.emit(&mut bytes[..], &ChecksumCapabilities::default());
        bytes[ip.header_len()..].copy_from_slice(tcp);
        bytes
    }

    /// An IPv4 packet carrying a TCP segment from PEER:40000 to US:8888.
    pub(crate) fn segment(control: TcpControl, ack: bool) -> Vec<u8> {
        ipv4(&tcp(control, ack, 1, &[]))
    }

    #[test]
    fn a_syn_is_a_connection_request_of_its_connection() {
        let syn = Segment::parse(
            Medium::Ip,
            &ChecksumCapabilities::default(),
            &segment(TcpControl::Syn, false),
        )
        .unwrap();
        assert!(syn.is_connection_request());
        assert_eq!(syn.connection, connection());
    }

    #[test]
    fn syn_ack_and_data_are_segments_but_not_connection_requests() {
        for (control, ack) in [(TcpControl::Syn, true), (TcpControl::None, true)] {
            let parsed = Segment::parse(
                Medium::Ip,
                &ChecksumCapabilities::default(),
                &segment(control, ack),
            )
            .unwrap();
            assert!(!parsed.is_connection_request(), "{control:?}");
        }
    }

    #[test]
    fn garbage_and_other_protocols_are_no_segment() {
        assert_eq!(
            Segment::parse(Medium::Ip, &ChecksumCapabilities::default(), &[0x45, 0, 0]),
            None
        );
        assert_eq!(
            Segment::parse(Medium::Ethernet, &ChecksumCapabilities::default(), &[]),
            None
        );
        let mut udp = segment(TcpControl::Syn, false);
        udp[9] = IpProtocol::Udp.into();
        assert_eq!(
            Segment::parse(Medium::Ip, &ChecksumCapabilities::default(), &udp),
            None
        );
    }
}
