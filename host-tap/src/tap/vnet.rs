//! The virtio-net header that a TAP opened with `IFF_VNET_HDR` puts before
//! every frame, and the per-frame work of the offloads it carries.
//!
//! The header is Linux's `struct virtio_net_hdr`
//! (`include/uapi/linux/virtio_net.h`): ten bytes, in the host's byte order
//! (legacy virtio; we never set `TUNSETVNETLE`). Written by hand: six
//! fields, where a bindings crate would add a dependency and still leave the
//! byte packing to us.
//!
//! What the offloads mean for each direction (`drivers/net/tun.c`,
//! `include/linux/virtio_net.h`):
//!
//! - **Checksums** (`TUN_F_CSUM`), for TCP. A segment the kernel writes to
//!   us comes with `NEEDS_CSUM` when the kernel made it (its checksum field
//!   holds only the pseudo-header sum: nothing was corrupted on a wire),
//!   with `DATA_VALID` when the kernel checked it, or with neither (a frame
//!   from a packet socket, or forwarded unchecked): the device checks those
//!   itself ([`rx_accept`]), since smoltcp is told to check no TCP checksum
//!   ([`Offloads::apply`]). A segment we write gets the pseudo-header sum in
//!   its checksum field and `NEEDS_CSUM` ([`tx_header`]): the kernel
//!   finishes it only if the frame leaves the machine; for a local client
//!   nobody computes it at all.
//!
//!   UDP checksums stay with smoltcp, both ways: a datagram larger than a
//!   frame arrives in IPv4 fragments, and only after reassembly can its
//!   checksum be checked, which a per-frame offload cannot do. The kernel
//!   may still write a datagram with `NEEDS_CSUM`; the device completes its
//!   checksum for smoltcp to check. Datagrams here are lines, so the cost
//!   is small.
//! - **Segmentation** (`TUN_F_TSO4 | TUN_F_TSO6`). The kernel may write a
//!   TCP segment of up to 64 KiB to us (GSO: `gso_size` says the MSS it
//!   would have been cut into); smoltcp takes it as one segment. smoltcp
//!   (feature `segmentation-offload`) builds segments as large as the
//!   peer's window allows, up to 64 KiB, and marks the MSS in the frame's
//!   metadata; the device passes it on as `gso_size`, and the kernel hands
//!   the whole segment to a local client's socket (or cuts it, if it is
//!   forwarded). The link still says MTU 1500.

use std::fmt;
use std::num::{NonZeroU16, NonZeroUsize};

use smoltcp::phy::{Checksum, DeviceCapabilities};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, checksum,
};

/// Bytes of `struct virtio_net_hdr`.
pub(super) const HEADER_LEN: usize = 10;

/// The largest frame with segmentation offload: an IPv4 packet's 65,535
/// bytes (its total length field) behind an Ethernet header.
pub(super) const MAX_SUPER_FRAME: usize = ETHERNET_HEADER_LEN + u16::MAX as usize;

const ETHERNET_HEADER_LEN: usize = 14;

/// `flags`: the checksum from `csum_start` on is left to the reader.
const NEEDS_CSUM: u8 = 1;
/// `flags`: the kernel checked the checksums.
const DATA_VALID: u8 = 2;
/// `gso_type`s.
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;

/// Where the checksum field sits in a TCP and in a UDP header.
const TCP_CHECKSUM_OFFSET: u16 = 16;
const UDP_CHECKSUM_OFFSET: u16 = 6;

/// The offloads the kernel agreed to for one TAP descriptor.
///
/// ```
/// let offloads = host_tap::tap::Offloads::NONE;
/// assert_eq!(offloads.to_string(), "none");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Offloads {
    /// TCP checksums are left to the kernel, both ways.
    pub checksum: bool,
    /// TCP segments of up to 64 KiB cross the TAP whole, both ways.
    pub segmentation: bool,
}

impl Offloads {
    /// No offload: smoltcp computes and checks every checksum, and every
    /// frame fits the MTU.
    pub const NONE: Offloads = Offloads {
        checksum: false,
        segmentation: false,
    };

    /// Tells smoltcp what it no longer has to do: check and compute TCP
    /// checksums (UDP's it keeps: see the module docs), and cut TCP segments to the MSS (IPv4 only: smoltcp
    /// 0.14 drops an IPv6 packet larger than the MTU instead of handing it to
    /// the device, so IPv6 segments are cut by smoltcp, and only received
    /// whole).
    pub(super) fn apply(self, capabilities: &mut DeviceCapabilities) {
        if self.checksum {
            capabilities.checksum.tcp = Checksum::None;
        }
        if self.segmentation {
            capabilities.segmentation.tcpv4 = NonZeroUsize::new(MAX_SUPER_FRAME);
        }
    }
}

impl fmt::Display for Offloads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.checksum, self.segmentation) {
            (true, true) => "checksums and TCP segmentation (frames up to 64 KiB)",
            (true, false) => "checksums",
            (false, true) => "TCP segmentation",
            (false, false) => "none",
        })
    }
}

/// One `struct virtio_net_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct VnetHeader {
    flags: u8,
    gso_type: u8,
    /// Bytes of headers (Ethernet, IP, TCP) before the payload of a GSO frame.
    hdr_len: u16,
    gso_size: u16,
    csum_start: u16,
    csum_offset: u16,
}

impl VnetHeader {
    /// Nothing offloaded: a frame whose checksums are all there.
    pub(super) const NONE: VnetHeader = VnetHeader {
        flags: 0,
        gso_type: GSO_NONE,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    pub(super) fn parse(bytes: &[u8; HEADER_LEN]) -> VnetHeader {
        let word = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
        VnetHeader {
            flags: bytes[0],
            gso_type: bytes[1],
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        }
    }

    pub(super) fn emit(&self, bytes: &mut [u8; HEADER_LEN]) {
        bytes[0] = self.flags;
        bytes[1] = self.gso_type;
        for (at, word) in [
            (2, self.hdr_len),
            (4, self.gso_size),
            (6, self.csum_start),
            (8, self.csum_offset),
        ] {
            bytes[at..at + 2].copy_from_slice(&word.to_ne_bytes());
        }
    }
}

/// Where a frame's TCP or UDP packet lies, for its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transport {
    /// Offset of the TCP or UDP header in the frame.
    start: usize,
    /// Bytes of TCP or UDP header and payload.
    len: usize,
    protocol: IpProtocol,
    ipv6: bool,
    /// The pseudo-header sum (RFC 1071, not complemented).
    pseudo_header: u16,
}

impl Transport {
    fn bytes<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[self.start..self.start + self.len]
    }
}

/// What a frame carries, as far as checksums go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// A whole TCP or UDP packet.
    Transport(Transport),
    /// A fragment of a TCP or UDP packet (which of the two): its checksum
    /// covers bytes that are not in this frame.
    Fragment(IpProtocol),
    /// Anything else (ARP, ICMP, malformed): smoltcp checks or drops it.
    Other,
}

/// Finds the TCP or UDP packet of an Ethernet frame.
fn content(frame: &[u8]) -> Content {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return Content::Other;
    };
    let found = match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => ipv4_content(ethernet.payload()),
        EthernetProtocol::Ipv6 => ipv6_content(ethernet.payload()),
        _ => return Content::Other,
    };
    match found {
        Content::Transport(transport) => Content::Transport(Transport {
            start: transport.start + ETHERNET_HEADER_LEN,
            ..transport
        }),
        other => other,
    }
}

fn is_transport(protocol: IpProtocol) -> bool {
    matches!(protocol, IpProtocol::Tcp | IpProtocol::Udp)
}

fn ipv4_content(packet: &[u8]) -> Content {
    let Ok(packet) = Ipv4Packet::new_checked(packet) else {
        return Content::Other;
    };
    let protocol = packet.next_header();
    if !is_transport(protocol) {
        return Content::Other;
    }
    if packet.more_frags() || packet.frag_offset() != 0 {
        return Content::Fragment(protocol);
    }
    let start = usize::from(packet.header_len());
    let len = usize::from(packet.total_len()) - start;
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    Content::Transport(Transport {
        start,
        len,
        protocol,
        ipv6: false,
        pseudo_header: checksum::pseudo_header(
            &IpAddress::Ipv4(src),
            &IpAddress::Ipv4(dst),
            protocol,
            len as u32,
        ),
    })
}

/// IPv6 extension headers that share the generic layout (next header, length
/// in 8-byte units after the first 8) and may come before TCP or UDP.
fn is_skippable_extension(protocol: IpProtocol) -> bool {
    matches!(
        protocol,
        IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts
    )
}

fn ipv6_content(packet: &[u8]) -> Content {
    let Ok(packet) = Ipv6Packet::new_checked(packet) else {
        return Content::Other;
    };
    let bytes = packet.payload();
    let payload_len = usize::from(packet.payload_len());
    let mut next = packet.next_header();
    let mut start = 0;
    while is_skippable_extension(next) {
        let Some(&[next_header, units]) = bytes.get(start..start + 2) else {
            return Content::Other;
        };
        next = IpProtocol::from(next_header);
        start += (usize::from(units) + 1) * 8;
    }
    if next == IpProtocol::Ipv6Frag {
        return match bytes.get(start).copied().map(IpProtocol::from) {
            Some(upper) if is_transport(upper) => Content::Fragment(upper),
            _ => Content::Other,
        };
    }
    if !is_transport(next) || start > payload_len {
        return Content::Other;
    }
    let len = payload_len - start;
    let (src, dst) = (packet.src_addr(), packet.dst_addr());
    Content::Transport(Transport {
        start: packet.header_len() + start,
        len,
        protocol: next,
        ipv6: true,
        pseudo_header: checksum::pseudo_header(
            &IpAddress::Ipv6(src),
            &IpAddress::Ipv6(dst),
            next,
            len as u32,
        ),
    })
}

/// Readies `frame`, which the kernel wrote with `header` to a TAP with
/// checksum offload, for smoltcp, which checks every UDP checksum but no TCP
/// checksum there: completes a UDP checksum the kernel left to us, and
/// checks a TCP checksum the kernel neither made nor checked. False: the
/// device drops the frame, for a wrong TCP checksum or a TCP fragment (whose
/// checksum no one could check after reassembly).
pub(super) fn rx_accept(header: &VnetHeader, frame: &mut [u8]) -> bool {
    match content(frame) {
        Content::Transport(transport) if transport.protocol == IpProtocol::Udp => {
            if header.flags & NEEDS_CSUM != 0 {
                complete_checksum(&transport, frame);
            }
            true
        }
        Content::Transport(transport) => {
            header.flags & (NEEDS_CSUM | DATA_VALID) != 0
                || checksum::combine(&[
                    transport.pseudo_header,
                    checksum::data(transport.bytes(frame)),
                ]) == !0
        }
        Content::Fragment(protocol) => protocol == IpProtocol::Udp,
        Content::Other => true,
    }
}

/// Writes the whole checksum of the UDP datagram `transport` in `frame`.
fn complete_checksum(transport: &Transport, frame: &mut [u8]) {
    let field = transport.start + usize::from(UDP_CHECKSUM_OFFSET);
    frame[field..field + 2].fill(0);
    let sum = !checksum::combine(&[
        transport.pseudo_header,
        checksum::data(transport.bytes(frame)),
    ]);
    // A computed 0 is sent as all ones: 0 means "no checksum" (RFC 768).
    let sum = if sum == 0 { !0 } else { sum };
    frame[field..field + 2].copy_from_slice(&sum.to_be_bytes());
}

/// The header for `frame`, which smoltcp built without a TCP checksum:
/// puts the pseudo-header sum in a TCP segment's checksum field and leaves
/// the rest to the kernel, and with `gso_size` (smoltcp's segment larger
/// than the MSS) asks the kernel to treat it as segments of that size.
/// Anything else (UDP with its checksum, ARP, ICMP) goes as it is.
pub(super) fn tx_header(frame: &mut [u8], gso_size: Option<NonZeroU16>) -> VnetHeader {
    let Content::Transport(transport) = content(frame) else {
        return VnetHeader::NONE;
    };
    if transport.protocol != IpProtocol::Tcp {
        return VnetHeader::NONE;
    }
    let offset = TCP_CHECKSUM_OFFSET;
    let field = transport.start + usize::from(offset);
    frame[field..field + 2].copy_from_slice(&transport.pseudo_header.to_be_bytes());
    // `content` found the transport header inside the frame, whose length
    // a TAP write keeps far below 64 KiB + 14.
    let csum_start = u16::try_from(transport.start).unwrap_or(u16::MAX);
    let mut header = VnetHeader {
        flags: NEEDS_CSUM,
        csum_start,
        csum_offset: offset,
        ..VnetHeader::NONE
    };
    if let Some(gso_size) = gso_size {
        // TCP data offset: the header length in 32-bit words.
        let tcp_header_len = frame
            .get(transport.start + 12)
            .map_or(20, |&byte| u16::from(byte >> 4) * 4);
        header.gso_type = if transport.ipv6 { GSO_TCPV6 } else { GSO_TCPV4 };
        header.gso_size = gso_size.get();
        header.hdr_len = csum_start + tcp_header_len;
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpRepr, Ipv4Address, Ipv4Repr, Ipv6Address, Ipv6Repr,
        TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
    };

    const CLIENT: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
    const SERVER: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
    const CLIENT6: Ipv6Address = Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 0x100);
    const SERVER6: Ipv6Address = Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 1);

    fn caps(checksums: bool) -> ChecksumCapabilities {
        if checksums {
            ChecksumCapabilities::default()
        } else {
            ChecksumCapabilities::ignored()
        }
    }

    /// An Ethernet frame with `ip` and a TCP segment carrying `payload`, its
    /// checksum filled in or left 0.
    fn tcp_frame(ip: IpRepr, payload: &[u8], checksums: bool) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 8888,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(1000),
            ack_number: Some(TcpSeqNumber(2000)),
            window_len: 512,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = match ip {
            IpRepr::Ipv4(mut repr) => {
                repr.payload_len = tcp.buffer_len();
                IpRepr::Ipv4(repr)
            }
            IpRepr::Ipv6(mut repr) => {
                repr.payload_len = tcp.buffer_len();
                IpRepr::Ipv6(repr)
            }
        };
        let mut frame = ethernet(&ip, tcp.buffer_len());
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let start = ETHERNET_HEADER_LEN + ip.header_len();
        ip.emit(&mut frame[ETHERNET_HEADER_LEN..], &caps(true));
        let mut packet = TcpPacket::new_unchecked(&mut frame[start..]);
        tcp.emit(&mut packet, &src, &dst, &caps(checksums));
        frame
    }

    fn udp_frame(payload: &[u8], checksums: bool) -> Vec<u8> {
        let udp = UdpRepr {
            src_port: 40000,
            dst_port: 8888,
        };
        let len = udp.header_len() + payload.len();
        let ip = ipv4_udp(len);
        let mut frame = ethernet(&ip, len);
        ip.emit(&mut frame[ETHERNET_HEADER_LEN..], &caps(true));
        let start = ETHERNET_HEADER_LEN + ip.header_len();
        let mut packet = UdpPacket::new_unchecked(&mut frame[start..]);
        udp.emit(
            &mut packet,
            &CLIENT.into(),
            &SERVER.into(),
            payload.len(),
            |buffer| buffer.copy_from_slice(payload),
            &caps(checksums),
        );
        frame
    }

    fn ipv4(payload_len: usize) -> IpRepr {
        IpRepr::Ipv4(Ipv4Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            next_header: IpProtocol::Tcp,
            payload_len,
            hop_limit: 64,
        })
    }

    fn ipv4_udp(payload_len: usize) -> IpRepr {
        IpRepr::Ipv4(Ipv4Repr {
            src_addr: CLIENT,
            dst_addr: SERVER,
            next_header: IpProtocol::Udp,
            payload_len,
            hop_limit: 64,
        })
    }

    fn ipv6() -> IpRepr {
        IpRepr::Ipv6(Ipv6Repr {
            src_addr: CLIENT6,
            dst_addr: SERVER6,
            next_header: IpProtocol::Tcp,
            payload_len: 0,
            hop_limit: 64,
        })
    }

    /// A zeroed frame with its Ethernet header for `ip` and room for a
    /// `payload_len`-byte transport packet.
    fn ethernet(ip: &IpRepr, payload_len: usize) -> Vec<u8> {
        let ethertype = match ip {
            IpRepr::Ipv4(_) => EthernetProtocol::Ipv4,
            IpRepr::Ipv6(_) => EthernetProtocol::Ipv6,
        };
        let mut frame = vec![0; ETHERNET_HEADER_LEN + ip.header_len() + payload_len];
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
        frame
    }

    fn tcp_checksum_ok(frame: &[u8]) -> bool {
        let Content::Transport(t) = content(frame) else {
            panic!("no TCP in the frame")
        };
        checksum::combine(&[t.pseudo_header, checksum::data(t.bytes(frame))]) == !0
    }

    #[test]
    fn the_header_round_trips_in_ten_bytes() {
        let header = VnetHeader {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut bytes = [0; HEADER_LEN];
        header.emit(&mut bytes);
        assert_eq!(VnetHeader::parse(&bytes), header);
        assert_eq!(bytes[..2], [NEEDS_CSUM, GSO_TCPV4]);
        assert_eq!(bytes[4..6], 1448u16.to_ne_bytes());
    }

    /// Whether the device takes `frame` (on a copy: it may write to it).
    fn accepted(header: &VnetHeader, frame: &[u8]) -> bool {
        rx_accept(header, &mut frame.to_vec())
    }

    fn flagged(flags: u8) -> VnetHeader {
        VnetHeader {
            flags,
            ..VnetHeader::NONE
        }
    }

    #[test]
    fn a_segment_the_kernel_made_or_checked_is_taken_as_it_is() {
        let mut frame = tcp_frame(ipv4(0), b"hello\n", true);
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        for flags in [NEEDS_CSUM, DATA_VALID] {
            let before = frame.clone();
            assert!(rx_accept(&flagged(flags), &mut frame));
            assert_eq!(frame, before);
        }
    }

    #[test]
    fn an_unchecked_segment_is_checked_here() {
        for ip in [ipv4(0), ipv6()] {
            let mut frame = tcp_frame(ip, b"hello\n", true);
            assert!(accepted(&VnetHeader::NONE, &frame));
            let last = frame.len() - 1;
            frame[last] ^= 0x01;
            assert!(!accepted(&VnetHeader::NONE, &frame));
        }
    }

    #[test]
    fn ethernet_padding_is_not_part_of_the_checksum() {
        let mut frame = tcp_frame(ipv4(0), b"", true);
        frame.resize(60, 0xee);
        assert!(accepted(&VnetHeader::NONE, &frame));
    }

    #[test]
    fn a_datagram_is_left_to_smoltcp_to_check() {
        let mut frame = udp_frame(b"ping\n", true);
        let last = frame.len() - 1;
        frame[last] ^= 0x01;
        for flags in [0, DATA_VALID] {
            let before = frame.clone();
            assert!(rx_accept(&flagged(flags), &mut frame));
            assert_eq!(frame, before, "flags {flags}");
        }
    }

    #[test]
    fn a_datagram_the_kernel_left_to_us_gets_its_whole_checksum() {
        // What the kernel writes: the pseudo-header sum in the field.
        let mut frame = udp_frame(b"ping\n", false);
        tx_pseudo_header_sum(&mut frame);
        assert!(rx_accept(&flagged(NEEDS_CSUM), &mut frame));
        let packet = UdpPacket::new_checked(&frame[34..]).unwrap();
        assert_ne!(packet.checksum(), 0);
        assert!(packet.verify_checksum(&CLIENT.into(), &SERVER.into()));
    }

    #[test]
    fn a_udp_fragment_goes_to_smoltcp_to_reassemble_and_a_tcp_fragment_is_refused() {
        for (mut frame, udp) in [
            (udp_frame(b"hello\n", true), true),
            (tcp_frame(ipv4(0), b"hello\n", true), false),
        ] {
            // More fragments follow.
            frame[ETHERNET_HEADER_LEN + 6] |= 0x20;
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]);
            ip.fill_checksum();
            let protocol = if udp {
                IpProtocol::Udp
            } else {
                IpProtocol::Tcp
            };
            assert_eq!(content(&frame), Content::Fragment(protocol));
            assert_eq!(accepted(&VnetHeader::NONE, &frame), udp);
        }
    }

    #[test]
    fn tcp_behind_an_ipv6_extension_header_is_found() {
        let frame = tcp_frame(ipv6(), b"hello\n", true);
        // The same segment behind an 8-byte destination-options header.
        let ip_start = ETHERNET_HEADER_LEN;
        let tcp_start = ip_start + 40;
        let mut with_options = frame[..tcp_start].to_vec();
        with_options.extend_from_slice(&[IpProtocol::Tcp.into(), 0, 1, 4, 0, 0, 0, 0]);
        with_options.extend_from_slice(&frame[tcp_start..]);
        with_options[ip_start + 6] = IpProtocol::Ipv6Opts.into();
        let payload_len = u16::try_from(with_options.len() - tcp_start).unwrap();
        with_options[ip_start + 4..ip_start + 6].copy_from_slice(&payload_len.to_be_bytes());
        assert!(accepted(&VnetHeader::NONE, &with_options));
        let last = with_options.len() - 1;
        with_options[last] ^= 0x01;
        assert!(!accepted(&VnetHeader::NONE, &with_options));
    }

    #[test]
    fn arp_and_garbage_are_left_to_smoltcp() {
        assert!(accepted(&VnetHeader::NONE, &[0; 3]));
        let mut arp = vec![0xff; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(accepted(&VnetHeader::NONE, &arp));
    }

    #[test]
    fn a_segment_we_send_gets_the_pseudo_header_sum_and_needs_csum() {
        for ip in [ipv4(0), ipv6()] {
            let mut frame = tcp_frame(ip.clone(), b"olleh\n", false);
            let header = tx_header(&mut frame, None);
            let start = if matches!(ip, IpRepr::Ipv4(_)) {
                34
            } else {
                54
            };
            assert_eq!(header.flags, NEEDS_CSUM);
            assert_eq!(usize::from(header.csum_start), start);
            assert_eq!(header.csum_offset, TCP_CHECKSUM_OFFSET);
            assert_eq!(header.gso_type, GSO_NONE);
            let packet = TcpPacket::new_checked(&frame[start..]).unwrap();
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            assert!(packet.verify_partial_checksum(&src, &dst));
            // What the kernel does with NEEDS_CSUM: sum from csum_start on,
            // store the complement.
            let sum = !checksum::data(&frame[start..]);
            frame[start + 16..start + 18].copy_from_slice(&sum.to_be_bytes());
            assert!(tcp_checksum_ok(&frame));
        }
    }

    #[test]
    fn a_super_segment_is_marked_for_the_kernel_to_cut() {
        let payload = vec![b'x'; 4000];
        let mut frame = tcp_frame(ipv4(0), &payload, false);
        let header = tx_header(&mut frame, NonZeroU16::new(1460));
        assert_eq!(header.gso_type, GSO_TCPV4);
        assert_eq!(header.gso_size, 1460);
        assert_eq!(header.hdr_len, 14 + 20 + 20);
        let mut frame = tcp_frame(ipv6(), &payload, false);
        let header = tx_header(&mut frame, NonZeroU16::new(1440));
        assert_eq!((header.gso_type, header.gso_size), (GSO_TCPV6, 1440));
        assert_eq!(header.hdr_len, 14 + 40 + 20);
    }

    #[test]
    fn a_frame_without_tcp_goes_as_it_is() {
        let mut arp = vec![0xff; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        for mut frame in [arp, udp_frame(b"gnip\n", true)] {
            let before = frame.clone();
            assert_eq!(tx_header(&mut frame, None), VnetHeader::NONE);
            assert_eq!(frame, before);
        }
    }

    /// Puts the pseudo-header sum in a UDP datagram's checksum field, as
    /// the kernel does for a datagram it marks `NEEDS_CSUM`.
    fn tx_pseudo_header_sum(frame: &mut [u8]) {
        let Content::Transport(t) = content(frame) else {
            panic!("no UDP in the frame")
        };
        let field = t.start + usize::from(UDP_CHECKSUM_OFFSET);
        frame[field..field + 2].copy_from_slice(&t.pseudo_header.to_be_bytes());
    }

    #[test]
    fn offloads_relieve_smoltcp_of_what_the_kernel_does() {
        let mut capabilities = DeviceCapabilities::default();
        Offloads::NONE.apply(&mut capabilities);
        assert!(capabilities.checksum.tcp.tx() && capabilities.checksum.udp.rx());
        assert!(capabilities.segmentation.tcpv4.is_none());
        let all = Offloads {
            checksum: true,
            segmentation: true,
        };
        all.apply(&mut capabilities);
        assert!(!capabilities.checksum.tcp.tx() && !capabilities.checksum.tcp.rx());
        assert!(capabilities.checksum.udp.tx() && capabilities.checksum.udp.rx());
        assert!(capabilities.checksum.ipv4.rx(), "IPv4 headers stay checked");
        assert_eq!(
            capabilities.segmentation.tcpv4.map(NonZeroUsize::get),
            Some(65_549)
        );
        assert!(capabilities.segmentation.tcpv6.is_none());
    }
}
