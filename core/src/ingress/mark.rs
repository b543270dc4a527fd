//! What an incoming TCP segment says about its sender's byte stream: where
//! the stream starts (a SYN) or where one of the sender's writes ended
//! (data with PSH). Read only from segments whose checksums hold, since a
//! damaged segment is dropped by smoltcp and its fields may be anything.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpAddress, TcpPacket, TcpSeqNumber};

/// A point in the sender's byte stream that a segment marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamMark {
    /// A connection request: the stream's first byte has sequence number
    /// `isn + 1`.
    Start { isn: TcpSeqNumber },
    /// Data with PSH: the sender's write (or push) ended just before `end`.
    WriteEnd { end: TcpSeqNumber },
}

impl StreamMark {
    /// The mark `tcp` (from `src` to `dst`) carries, if it carries one and
    /// its checksums hold: the TCP checksum unless `checksum` says the
    /// device verified it, and `ip_header_ok`, whether the IPv4 header
    /// checksum held (or needed no check). A RST marks nothing: it ends the
    /// connection.
    pub(crate) fn read(
        tcp: &TcpPacket<&[u8]>,
        src: &IpAddress,
        dst: &IpAddress,
        ip_header_ok: bool,
        checksum: &ChecksumCapabilities,
    ) -> Option<StreamMark> {
        if tcp.rst() {
            return None;
        }
        let mark = if tcp.syn() && !tcp.ack() && !tcp.fin() {
            StreamMark::Start {
                isn: tcp.seq_number(),
            }
        } else if tcp.psh() && tcp.ack() && !tcp.syn() && !tcp.payload().is_empty() {
            StreamMark::WriteEnd {
                end: tcp.seq_number() + tcp.payload().len(),
            }
        } else {
            return None;
        };
        let intact = ip_header_ok && (!checksum.tcp.rx() || tcp.verify_checksum(src, dst));
        intact.then_some(mark)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ingress::segment::tests::{PEER, US, tcp};
    use smoltcp::phy::Checksum;
    use smoltcp::wire::TcpControl;

    /// A TCP segment from PEER:40000 to US:8888 with `control`, an ACK
    /// unless it is a SYN, sequence number `seq` and `payload`.
    pub(crate) fn tcp_segment(control: TcpControl, seq: i32, payload: &[u8]) -> Vec<u8> {
        tcp(control, control != TcpControl::Syn, seq, payload)
    }

    fn read(bytes: &[u8], checksum: &ChecksumCapabilities) -> Option<StreamMark> {
        let tcp = TcpPacket::new_checked(bytes).unwrap();
        StreamMark::read(&tcp, &PEER.into(), &US.into(), true, checksum)
    }

    fn verified() -> ChecksumCapabilities {
        ChecksumCapabilities::default()
    }

    #[test]
    fn a_syn_marks_the_start_and_data_with_psh_the_end_of_a_write() {
        let syn = tcp_segment(TcpControl::Syn, 99, &[]);
        let start = StreamMark::Start {
            isn: TcpSeqNumber(99),
        };
        assert_eq!(read(&syn, &verified()), Some(start));
        let data = tcp_segment(TcpControl::Psh, 100, b"hello");
        let end = TcpSeqNumber(105);
        assert_eq!(read(&data, &verified()), Some(StreamMark::WriteEnd { end }));
    }

    #[test]
    fn data_without_psh_a_bare_ack_and_a_rst_mark_nothing() {
        for (control, payload) in [
            (TcpControl::None, &b"hello"[..]),
            (TcpControl::Psh, b""),
            (TcpControl::Rst, b""),
        ] {
            let bytes = tcp_segment(control, 100, payload);
            assert_eq!(read(&bytes, &verified()), None, "{control:?}");
        }
    }

    #[test]
    fn a_damaged_segment_marks_nothing_unless_the_device_verified_it() {
        let mut data = tcp_segment(TcpControl::Psh, 100, b"hello");
        *data.last_mut().unwrap() ^= 1;
        assert_eq!(read(&data, &verified()), None);
        let mut device_verified = ChecksumCapabilities::default();
        device_verified.tcp = Checksum::Tx;
        assert!(read(&data, &device_verified).is_some());
        // A damaged IPv4 header is damage too.
        let tcp = TcpPacket::new_checked(&data[..]).unwrap();
        let mark = StreamMark::read(&tcp, &PEER.into(), &US.into(), false, &device_verified);
        assert_eq!(mark, None);
    }
}
