//! Keeps a repeated SYN away from the listening sockets.
//!
//! smoltcp hands an incoming segment to the first socket in the set that
//! accepts it, and a listening socket accepts any SYN. When a session slot
//! listens again at a lower index than the socket that already holds a
//! connection, a retransmitted or duplicated SYN of that connection is taken
//! by the listener, which answers with a SYN-ACK of its own and ends up
//! resetting the client. [`SynGuard`] wraps the caller's device and drops
//! such SYNs before smoltcp sees them: the socket that holds the connection
//! has answered the first SYN already and retransmits its SYN-ACK by itself.

use core::cell::RefCell;

use crate::server::BUSY_SOCKETS;
use smoltcp::phy::{Device, DeviceCapabilities, Medium, PacketMeta, RxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, Ipv4Packet, TcpPacket,
};

/// Connections our sockets hold, as (peer, our port).
#[derive(Debug)]
pub(crate) struct Held<const N: usize> {
    connections: RefCell<heapless::Vec<(IpEndpoint, u16), N>>,
}

impl<const N: usize> Held<N> {
    pub(crate) const fn new() -> Self {
        Held {
            connections: RefCell::new(heapless::Vec::new()),
        }
    }

    pub(crate) fn clear(&self) {
        self.connections.borrow_mut().clear();
    }

    /// Records a connection. When the list is full every session socket
    /// holds a connection, so none listens and none can take a SYN that is
    /// not its own: forgetting the extra one is harmless.
    pub(crate) fn hold(&self, peer: IpEndpoint, port: u16) {
        let _ = self.connections.borrow_mut().push((peer, port));
    }

    fn holds(&self, peer: IpEndpoint, port: u16) -> bool {
        self.connections.borrow().contains(&(peer, port))
    }
}

/// Connections held by the session sockets and by the busy sockets.
#[derive(Debug)]
pub(crate) struct HeldBy<const SESSIONS: usize> {
    pub(crate) sessions: Held<SESSIONS>,
    pub(crate) busy: Held<BUSY_SOCKETS>,
}

impl<const SESSIONS: usize> HeldBy<SESSIONS> {
    pub(crate) const fn new() -> Self {
        HeldBy {
            sessions: Held::new(),
            busy: Held::new(),
        }
    }

    fn holds(&self, peer: IpEndpoint, port: u16) -> bool {
        self.sessions.holds(peer, port) || self.busy.holds(peer, port)
    }
}

/// The caller's device, minus SYNs of connections already held.
pub(crate) struct SynGuard<'g, D: Device + ?Sized, const N: usize> {
    device: &'g mut D,
    held: &'g HeldBy<N>,
    medium: Medium,
}

impl<'g, D: Device + ?Sized, const N: usize> SynGuard<'g, D, N> {
    pub(crate) fn new(device: &'g mut D, held: &'g HeldBy<N>) -> Self {
        let medium = device.capabilities().medium;
        SynGuard {
            device,
            held,
            medium,
        }
    }
}

impl<D: Device + ?Sized, const N: usize> Device for SynGuard<'_, D, N> {
    type RxToken<'a>
        = GuardedRx<'a, D::RxToken<'a>, N>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (held, medium) = (self.held, self.medium);
        self.device.receive(timestamp).map(|(inner, tx)| {
            (
                GuardedRx {
                    inner,
                    held,
                    medium,
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

pub(crate) struct GuardedRx<'a, T, const N: usize> {
    inner: T,
    held: &'a HeldBy<N>,
    medium: Medium,
}

impl<T: RxToken, const N: usize> RxToken for GuardedRx<'_, T, N> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let (held, medium) = (self.held, self.medium);
        self.inner
            .consume(|frame| match connection_request(medium, frame) {
                // smoltcp drops an empty frame as malformed.
                Some((peer, port)) if held.holds(peer, port) => f(&[]),
                Some((peer, port)) => {
                    // A second copy of this SYN later in the same poll is a duplicate.
                    held.sessions.hold(peer, port);
                    f(frame)
                }
                None => f(frame),
            })
    }

    fn meta(&self) -> PacketMeta {
        self.inner.meta()
    }
}

/// The (peer, our port) of a frame that is a TCP SYN without ACK.
fn connection_request(medium: Medium, frame: &[u8]) -> Option<(IpEndpoint, u16)> {
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
    let (source, segment) = match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            (IpAddress::Ipv4(ip.src_addr()), ip.payload())
        }
        #[cfg(feature = "ipv6")]
        6 => {
            let ip = smoltcp::wire::Ipv6Packet::new_checked(packet).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (IpAddress::Ipv6(ip.src_addr()), ip.payload())
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(segment).ok()?;
    if !tcp.syn() || tcp.ack() {
        return None;
    }
    Some((IpEndpoint::new(source, tcp.src_port()), tcp.dst_port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpRepr, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};

    const PEER: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const US: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

    /// An IPv4 packet carrying a TCP segment from PEER:40000 to US:8888.
    fn segment(control: TcpControl, ack: bool) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 8888,
            control,
            seq_number: TcpSeqNumber(1),
            ack_number: ack.then_some(TcpSeqNumber(1)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = IpRepr::Ipv4(Ipv4Repr {
            src_addr: PEER,
            dst_addr: US,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        });
        let mut bytes = vec![0; ip.buffer_len()];
        let caps = ChecksumCapabilities::default();
        ip.emit(&mut bytes[..], &caps);
        let (src, dst) = (IpAddress::Ipv4(PEER), IpAddress::Ipv4(US));
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut bytes[ip.header_len()..]),
            &src,
            &dst,
            &caps,
        );
        bytes
    }

    #[test]
    fn a_syn_is_a_connection_request() {
        let syn = segment(TcpControl::Syn, false);

        let peer = IpEndpoint::new(IpAddress::Ipv4(PEER), 40000);
        assert_eq!(connection_request(Medium::Ip, &syn), Some((peer, 8888)));
    }

    #[test]
    fn syn_ack_data_and_garbage_are_not_connection_requests() {
        assert_eq!(
            connection_request(Medium::Ip, &segment(TcpControl::Syn, true)),
            None
        );
        assert_eq!(
            connection_request(Medium::Ip, &segment(TcpControl::None, true)),
            None
        );
        assert_eq!(connection_request(Medium::Ip, &[0x45, 0, 0]), None);
        assert_eq!(connection_request(Medium::Ethernet, &[]), None);
    }

    #[test]
    fn held_connections_are_recognised_until_cleared() {
        let held = Held::<2>::new();
        let peer = IpEndpoint::new(IpAddress::Ipv4(PEER), 40000);
        held.hold(peer, 8888);
        assert!(held.holds(peer, 8888));
        assert!(!held.holds(peer, 7));
        held.clear();
        assert!(!held.holds(peer, 8888));
    }
}
