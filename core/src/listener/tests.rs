//! The listener in front of a real smoltcp interface whose peers are
//! hand-made frames: what smoltcp answers with and without it.

use std::collections::VecDeque;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::AnySocket;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpCidr, Ipv4Address, Ipv4Packet, TcpPacket,
};

use super::syn::tests::{CLIENT, SERVER, SERVER_MAC, frame, syn_from};
use super::*;

const PORT: u16 = 8888;

/// A cable with hand-made frames on one end: what arrives, and what the
/// interface sent.
#[derive(Debug, Default)]
struct Wire {
    incoming: VecDeque<Vec<u8>>,
    sent: Vec<Vec<u8>>,
}

struct WireRx(Vec<u8>);
struct WireTx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for WireRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for WireTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.0.push(frame);
        result
    }
}

impl Device for Wire {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(WireRx, WireTx<'_>)> {
        let frame = self.incoming.pop_front()?;
        Some((WireRx(frame), WireTx(&mut self.sent)))
    }

    fn transmit(&mut self, _: Instant) -> Option<WireTx<'_>> {
        Some(WireTx(&mut self.sent))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = 1514;
        capabilities
    }
}

/// What a frame the server sent is, for the assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    SynAck(u16),
    Reset(u16),
    ArpRequest(Ipv4Address),
    Other,
}

fn sent(frame: &[u8]) -> Sent {
    let ethernet = EthernetFrame::new_checked(frame).unwrap();
    if ethernet.ethertype() == EthernetProtocol::Arp {
        let arp = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).unwrap()).unwrap();
        if let ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            target_protocol_addr,
            ..
        } = arp
        {
            return Sent::ArpRequest(target_protocol_addr);
        }
        return Sent::Other;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    match (tcp.syn(), tcp.rst()) {
        (true, false) => Sent::SynAck(tcp.dst_port()),
        (false, true) => Sent::Reset(tcp.dst_port()),
        _ => Sent::Other,
    }
}

/// An interface at 10.0.0.1 with `serving` then `refusing` sockets
/// listening on PORT, a listener in front of it, and hand-made clients.
struct Bench {
    wire: Wire,
    iface: Interface,
    sockets: SocketSet<'static>,
    roles: Vec<(SocketHandle, Role)>,
    listener: Listener<'static>,
    now: Instant,
    /// Whether reclaimed sockets leave the set and come back.
    refresh_reclaimed: bool,
}

impl Bench {
    fn new(serving: usize, refusing: usize, backlog: usize, config: ListenerConfig) -> Bench {
        let mut wire = Wire::default();
        let mut iface = Interface::new(Config::new(SERVER_MAC.into()), &mut wire, Instant::ZERO);
        iface.update_ip_addrs(|a| a.push(IpCidr::new(SERVER.into(), 24)).unwrap());
        let mut sockets = SocketSet::new(vec![]);
        let mut roles = Vec::new();
        let all = [Role::Serve]
            .repeat(serving)
            .into_iter()
            .chain([Role::Refuse].repeat(refusing));
        for role in all {
            let buffer = || tcp::SocketBuffer::new(vec![0; 256]);
            let mut socket = tcp::Socket::new(buffer(), buffer());
            socket.listen(PORT).unwrap();
            roles.push((sockets.add(socket), role));
        }
        let backlog = vec![Attempt::EMPTY; backlog].leak();
        let peers = vec![KnownPeer::EMPTY; 4].leak();
        let tracked = vec![TrackedSocket::EMPTY; serving + refusing].leak();
        let listener = Listener::new(PORT, config, ListenerMemory::new(backlog, peers, tracked));
        Bench {
            wire,
            iface,
            sockets,
            roles,
            listener,
            now: Instant::ZERO,
            refresh_reclaimed: true,
        }
    }

    /// A SYN from CLIENT (or `client`) at `port` arrives.
    fn syn(&mut self, client: Ipv4Address, port: u16) {
        self.wire.incoming.push_back(frame(&syn_from(client, port)));
    }

    /// An ARP request from `client` for the server.
    fn arp_from(&mut self, client: Ipv4Address) {
        let mac = EthernetAddress([2, 0, 0, 0, 0, client.octets()[3]]);
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: client,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: SERVER,
        };
        let mut bytes = vec![0; 14 + arp.buffer_len()];
        let mut ethernet = EthernetFrame::new_unchecked(&mut bytes[..]);
        EthernetRepr {
            src_addr: mac,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        }
        .emit(&mut ethernet);
        arp.emit(&mut ArpPacket::new_unchecked(ethernet.payload_mut()));
        self.wire.incoming.push_back(bytes);
    }

    /// One poll at `at` milliseconds: update, ingress through the
    /// listener, egress; returns what the server sent.
    fn poll(&mut self, at: i64) -> Vec<Sent> {
        self.now = Instant::from_millis(at);
        let roles = &self.roles;
        let shown = self.sockets.iter_mut().filter_map(|(handle, socket)| {
            let (_, role) = roles.iter().find(|(h, _)| *h == handle)?;
            Some((*role, tcp::Socket::downcast_mut(socket)?))
        });
        self.listener.update(self.now, shown);
        // As the server does: a reclaimed socket leaves the set and comes
        // back, which ends smoltcp's wait for the forged peer's ARP answer.
        let reclaimed: Vec<_> = self.listener.reclaimed().map(|i| self.roles[i].0).collect();
        for handle in reclaimed.into_iter().filter(|_| self.refresh_reclaimed) {
            let socket = self.sockets.remove(handle);
            assert_eq!(self.sockets.add(socket), handle);
        }
        let mut device = self.listener.device(&mut self.wire);
        self.iface.poll(self.now, &mut device, &mut self.sockets);
        self.wire.sent.drain(..).map(|f| sent(&f)).collect()
    }

    /// The same, without the listener: smoltcp alone.
    fn poll_without_listener(&mut self, at: i64) -> Vec<Sent> {
        self.now = Instant::from_millis(at);
        self.iface.poll(self.now, &mut self.wire, &mut self.sockets);
        self.wire.sent.drain(..).map(|f| sent(&f)).collect()
    }

    fn state(&self, index: usize) -> tcp::State {
        self.sockets.get::<tcp::Socket>(self.roles[index].0).state()
    }

    /// Ends the socket's connection and listens again, afresh (see
    /// [`Listener::reclaimed`]).
    fn relisten(&mut self, index: usize) {
        let handle = self.roles[index].0;
        let mut socket = self.sockets.remove(handle);
        if let smoltcp::socket::Socket::Tcp(socket) = &mut socket {
            socket.abort();
            socket.listen(PORT).unwrap();
        }
        assert_eq!(self.sockets.add(socket), handle);
    }
}

fn client(last: u8) -> Ipv4Address {
    Ipv4Address::new(10, 0, 0, last)
}

#[test]
fn smoltcp_alone_resets_a_syn_that_finds_no_listener() {
    let mut bench = Bench::new(1, 0, 4, ListenerConfig::new());
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 1);
    bench.syn(CLIENT, 2);
    let sent = bench.poll_without_listener(0);
    assert!(sent.contains(&Sent::Reset(2)), "{sent:?}");
}

#[test]
fn a_syn_that_finds_no_listener_waits_and_is_handed_over_when_one_listens() {
    let mut bench = Bench::new(1, 0, 4, ListenerConfig::new());
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 1);
    bench.syn(CLIENT, 2);
    let sent = bench.poll(0);
    assert!(
        !sent.iter().any(|s| matches!(s, Sent::Reset(_))),
        "{sent:?}"
    );
    assert!(sent.contains(&Sent::SynAck(1)), "{sent:?}");
    assert_eq!(bench.listener.waiting(), 1);
    assert_eq!(bench.state(0), tcp::State::SynReceived);

    // The first client goes away; the socket listens again: the second
    // client's SYN is answered without waiting for its retransmission.
    bench.relisten(0);
    let sent = bench.poll(10);
    assert_eq!(sent, [Sent::SynAck(2)]);
    assert_eq!(bench.listener.waiting(), 0);
    let counts = bench.listener.counts();
    assert_eq!((counts.queued, counts.handed), (1, 1));
}

#[test]
fn copies_of_a_waiting_syn_are_merged_and_copies_of_a_taken_one_dropped() {
    let mut bench = Bench::new(1, 0, 4, ListenerConfig::new());
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 1);
    bench.syn(CLIENT, 2);
    bench.poll(0);
    bench.syn(CLIENT, 2);
    bench.syn(CLIENT, 1);
    let sent = bench.poll(1000);
    // Port 1's copy went nowhere: its socket retransmits its SYN-ACK by
    // itself when its timer says so.
    assert!(
        !sent.iter().any(|s| matches!(s, Sent::Reset(_))),
        "{sent:?}"
    );
    assert_eq!(bench.listener.waiting(), 1);
    assert_eq!(bench.listener.counts().merged, 1);
}

#[test]
fn a_full_backlog_lets_the_oldest_unproven_attempt_give_way_silently_by_default() {
    let mut bench = Bench::new(1, 0, 2, ListenerConfig::new());
    bench.arp_from(CLIENT);
    for port in 1..=4 {
        bench.syn(CLIENT, port);
        bench.poll(i64::from(port));
    }
    assert_eq!(bench.listener.waiting(), 2);
    assert_eq!(bench.listener.counts().gave_way, 1);
    // Port 2 gave way to port 4: a new socket takes port 3 first.
    bench.relisten(0);
    assert_eq!(bench.poll(10), [Sent::SynAck(3)]);
}

#[test]
fn with_reset_the_attempt_that_gives_way_is_refused() {
    let config = ListenerConfig::new().with_when_full(WhenFull::Reset);
    let mut bench = Bench::new(1, 0, 1, config);
    bench.syn(CLIENT, 1);
    bench.syn(CLIENT, 2);
    bench.syn(CLIENT, 3);
    let sent = bench.poll(0);
    assert!(sent.contains(&Sent::Reset(2)), "{sent:?}");
    assert!(!sent.contains(&Sent::Reset(3)), "{sent:?}");
}

#[test]
fn a_proven_peer_goes_first_and_never_gives_way_to_an_unproven_one() {
    let mut bench = Bench::new(1, 0, 2, ListenerConfig::new());
    bench.syn(client(50), 1);
    bench.syn(client(51), 2);
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 3);
    bench.syn(client(52), 4);
    bench.poll(0);
    // Waiting: port 3 (proven) and port 4 (port 2, older and unproven, gave way).
    assert_eq!(bench.listener.counts().gave_way, 1);
    bench.syn(client(53), 5);
    bench.poll(1);
    bench.relisten(0);
    assert_eq!(bench.poll(2), [Sent::SynAck(3)]);
}

#[test]
fn a_refusing_socket_takes_an_attempt_only_once_it_has_waited() {
    let config = ListenerConfig::new().with_admission_wait(Duration::from_millis(300));
    let mut bench = Bench::new(1, 1, 4, config);
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 1);
    bench.syn(CLIENT, 2);
    let sent = bench.poll(0);
    assert_eq!(bench.state(1), tcp::State::Listen, "{sent:?}");
    assert_eq!(bench.listener.poll_at(), Some(Instant::from_millis(300)));
    bench.poll(299);
    assert_eq!(bench.state(1), tcp::State::Listen);
    assert!(bench.poll(300).contains(&Sent::SynAck(2)));
    assert_eq!(bench.state(1), tcp::State::SynReceived);
}

#[test]
fn an_unproven_half_open_handshake_gives_way_after_the_grace_while_others_wait() {
    let config = ListenerConfig::new().with_half_open_grace(Duration::from_millis(500));
    let mut bench = Bench::new(1, 0, 4, config);
    // A forged SYN: its SYN-ACK waits on an ARP answer that never comes.
    bench.syn(client(50), 1);
    assert_eq!(bench.poll(0), [Sent::ArpRequest(client(50))]);
    bench.poll(400);
    // Nobody waits: the handshake keeps its socket past the grace.
    bench.poll(600);
    assert_eq!(bench.state(0), tcp::State::SynReceived);
    // A real client comes: it asks for our address first.
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 2);
    bench.poll(700);
    assert!(bench.listener.poll_at() <= Some(Instant::from_millis(700)));
    let sent = bench.poll(701);
    assert!(sent.contains(&Sent::SynAck(2)), "{sent:?}");
    assert!(
        !sent.iter().any(|s| matches!(s, Sent::Reset(_))),
        "{sent:?}"
    );
    assert_eq!(bench.listener.counts().reclaimed, 1);
}

#[test]
fn a_reclaimed_socket_left_in_the_set_waits_out_smoltcps_arp_silence() {
    let config = ListenerConfig::new().with_half_open_grace(Duration::from_millis(500));
    let mut bench = Bench::new(1, 0, 4, config);
    bench.refresh_reclaimed = false;
    bench.syn(client(50), 1);
    bench.poll(0);
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 2);
    bench.poll(600);
    // Reclaimed, and the SYN handed over, but the socket is still silent
    // until 1 s after its last ARP request for the forged peer.
    let sent = bench.poll(601);
    assert!(!sent.contains(&Sent::SynAck(2)), "{sent:?}");
    assert_eq!(bench.state(0), tcp::State::SynReceived);
    assert!(bench.poll(1000).contains(&Sent::SynAck(2)));
}

#[test]
fn a_proven_client_that_smoltcp_forgot_gets_its_syn_ack_without_an_arp_request() {
    let mut bench = Bench::new(1, 0, 4, ListenerConfig::new());
    bench.arp_from(CLIENT);
    bench.syn(client(50), 1);
    bench.poll(0);
    bench.syn(CLIENT, 2);
    bench.poll(1);
    // Eight more neighbours push CLIENT out of smoltcp's cache.
    for last in 60..68 {
        bench.arp_from(client(last));
    }
    bench.poll(2);
    bench.relisten(0);
    // smoltcp would have to ask for CLIENT's address, and its one ARP
    // request a second went to the forged peer at 0 ms.
    assert_eq!(bench.poll(3), [Sent::SynAck(2)]);
}

#[test]
fn a_proven_half_open_handshake_keeps_its_socket() {
    let config = ListenerConfig::new().with_half_open_grace(Duration::from_millis(500));
    let mut bench = Bench::new(1, 0, 4, config);
    bench.arp_from(client(60));
    bench.syn(client(60), 1);
    bench.poll(0);
    bench.syn(client(61), 2);
    bench.poll(1000);
    bench.poll(2000);
    assert_eq!(bench.state(0), tcp::State::SynReceived);
    assert_eq!(bench.listener.counts().reclaimed, 0);
}

#[test]
fn a_closed_listener_lets_smoltcp_reset_what_waits() {
    let mut bench = Bench::new(1, 0, 4, ListenerConfig::new());
    bench.arp_from(CLIENT);
    bench.syn(CLIENT, 1);
    bench.syn(CLIENT, 2);
    bench.poll(0);
    let socket = bench.roles[0].0;
    bench.sockets.get_mut::<tcp::Socket>(socket).abort();
    bench.listener.close();
    let sent = bench.poll(10);
    assert!(sent.contains(&Sent::Reset(2)), "{sent:?}");
    bench.syn(CLIENT, 3);
    assert!(bench.poll(20).contains(&Sent::Reset(3)));
}

#[test]
fn other_ports_and_other_segments_pass_untouched() {
    let mut bench = Bench::new(1, 0, 4, ListenerConfig::new());
    bench.arp_from(CLIENT);
    let mut other = syn_from(CLIENT, 1);
    other.local.port = 9;
    bench.wire.incoming.push_back(frame(&other));
    let sent = bench.poll(0);
    assert!(
        sent.contains(&Sent::Reset(1)),
        "nothing listens on port 9: {sent:?}"
    );
    assert_eq!(bench.listener.counts(), ListenerCounts::default());
}
