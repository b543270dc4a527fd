//! Peers that proved themselves: they answered or asked by ARP (or IPv6
//! neighbour discovery) on the link, or completed a handshake with us.
//!
//! A SYN with a forged source costs its sender one frame; an ARP answer or
//! a completed handshake needs the sender to own the address. Under
//! pressure the listener serves the SYNs of proven peers first and lets
//! half-open handshakes of unproven ones give way. The table is bounded:
//! when it is full, the peer heard from longest ago is forgotten.

use smoltcp::phy::Medium;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, IpAddress};

use crate::ingress::Connection;

/// The address `frame` proves, if any: the sender of an ARP request or
/// reply, or the source of an IPv6 neighbour solicitation or
/// advertisement. Whom it was for does not matter: whoever sends it owns
/// the address on the link (or could forge anything anyway).
pub(super) fn proof(medium: Medium, frame: &[u8]) -> Option<IpAddress> {
    if medium != Medium::Ethernet {
        return None;
    }
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(ethernet.payload()).ok()?;
            match ArpRepr::parse(&arp).ok()? {
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request | ArpOperation::Reply,
                    source_hardware_addr,
                    source_protocol_addr,
                    ..
                } if source_hardware_addr.is_unicast() => Some(source_protocol_addr.into()),
                _ => None,
            }
        }
        #[cfg(feature = "ipv6")]
        EthernetProtocol::Ipv6 => {
            /// ICMPv6 neighbour solicitation and advertisement.
            const NEIGHBOUR_DISCOVERY: [u8; 2] = [135, 136];
            let ip = smoltcp::wire::Ipv6Packet::new_checked(ethernet.payload()).ok()?;
            let icmp_type = ip.payload().first()?;
            let discovery = ip.next_header() == smoltcp::wire::IpProtocol::Icmpv6
                && NEIGHBOUR_DISCOVERY.contains(icmp_type);
            discovery.then(|| ip.src_addr().into())
        }
        _ => None,
    }
}

/// A peer that proved itself, and how recently it last did.
///
/// The caller lends a table of them ([`ListenerMemory`](super::ListenerMemory));
/// [`KnownPeer::EMPTY`] fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPeer {
    address: IpAddress,
    /// When it last proved itself, as a count of proofs (wrapping): the
    /// peer proved longest ago goes first when the table is full.
    seen: u32,
}

impl KnownPeer {
    /// An unused entry, all zero bytes.
    ///
    /// ```
    /// let peers = [reversal_core::listener::KnownPeer::EMPTY; 8];
    /// ```
    pub const EMPTY: KnownPeer = KnownPeer {
        address: Connection::NONE.peer.addr,
        seen: 0,
    };
}

impl Default for KnownPeer {
    fn default() -> Self {
        KnownPeer::EMPTY
    }
}

/// The proven peers, in no particular order.
#[derive(Debug)]
pub(super) struct Peers<'a> {
    entries: &'a mut [KnownPeer],
    len: usize,
    /// Proofs so far (wrapping).
    proofs: u32,
}

impl<'a> Peers<'a> {
    pub(super) fn new(entries: &'a mut [KnownPeer]) -> Self {
        Peers {
            entries,
            len: 0,
            proofs: 0,
        }
    }

    /// Whether `address` has proved itself.
    pub(super) fn contains(&self, address: IpAddress) -> bool {
        self.entries[..self.len]
            .iter()
            .any(|peer| peer.address == address)
    }

    /// Notes that `address` proved itself; true if it was new.
    pub(super) fn prove(&mut self, address: IpAddress) -> bool {
        if !address.is_unicast() {
            return false;
        }
        self.proofs = self.proofs.wrapping_add(1);
        let seen = self.proofs;
        let known = &mut self.entries[..self.len];
        if let Some(peer) = known.iter_mut().find(|peer| peer.address == address) {
            peer.seen = seen;
            return false;
        }
        let slot = if self.len < self.entries.len() {
            self.len += 1;
            self.len - 1
        } else {
            // Full (or no table at all): the peer heard from longest ago goes.
            let proofs = self.proofs;
            let ago = |i: usize| proofs.wrapping_sub(self.entries[i].seen);
            match (0..self.len).max_by_key(|&i| ago(i)) {
                Some(oldest) => oldest,
                None => return false,
            }
        };
        self.entries[slot] = KnownPeer { address, seen };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv4Address;

    fn address(last: u8) -> IpAddress {
        Ipv4Address::new(10, 0, 0, last).into()
    }

    #[test]
    fn a_full_table_forgets_the_peer_heard_from_longest_ago() {
        let mut table = [KnownPeer::EMPTY; 2];
        let mut peers = Peers::new(&mut table);
        assert!(peers.prove(address(2)));
        assert!(peers.prove(address(3)));
        assert!(!peers.prove(address(2)), "heard again");
        assert!(peers.prove(address(4)));
        assert!(peers.contains(address(2)) && peers.contains(address(4)));
        assert!(!peers.contains(address(3)));
    }

    #[test]
    fn broadcast_and_unspecified_addresses_prove_nothing() {
        let mut table = [KnownPeer::EMPTY; 2];
        let mut peers = Peers::new(&mut table);
        assert!(!peers.prove(Ipv4Address::BROADCAST.into()));
        assert!(!peers.prove(Ipv4Address::UNSPECIFIED.into()));
        assert!(!peers.contains(Ipv4Address::UNSPECIFIED.into()));
    }

    /// An ARP frame from 10.0.0.`last` with `operation`.
    fn arp(last: u8, operation: ArpOperation) -> Vec<u8> {
        use smoltcp::wire::{EthernetAddress, EthernetRepr};
        let sender = EthernetAddress([2, 0, 0, 0, 0, last]);
        let arp = ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sender,
            source_protocol_addr: Ipv4Address::new(10, 0, 0, last),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
        };
        let mut frame = vec![0; 14 + arp.buffer_len()];
        let ethernet = EthernetRepr {
            src_addr: sender,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let mut ethernet_frame = EthernetFrame::new_unchecked(&mut frame[..]);
        ethernet.emit(&mut ethernet_frame);
        arp.emit(&mut ArpPacket::new_unchecked(ethernet_frame.payload_mut()));
        frame
    }

    #[test]
    fn arp_requests_and_replies_prove_their_sender() {
        let request = arp(7, ArpOperation::Request);
        assert_eq!(proof(Medium::Ethernet, &request), Some(address(7)));
        let reply = arp(8, ArpOperation::Reply);
        assert_eq!(proof(Medium::Ethernet, &reply), Some(address(8)));
        let junk = arp(9, ArpOperation::Unknown(7));
        assert_eq!(proof(Medium::Ethernet, &junk), None);
        assert_eq!(proof(Medium::Ip, &request), None, "no link layer");
        assert_eq!(proof(Medium::Ethernet, &request[..20]), None);
    }

    #[test]
    fn without_a_table_no_peer_is_known() {
        let mut peers = Peers::new(&mut []);
        assert!(!peers.prove(address(2)));
        assert!(!peers.contains(address(2)));
    }
}
