//! UDP replies the server cannot deliver: a datagram from a sender whose
//! address never resolves (one that sent and vanished while the server had
//! no neighbour entry for it, or a spoofed one). Its reply waits for the
//! neighbour for a bounded time and is then dropped and counted; replies to
//! every other sender go out meanwhile as if it were not there (SPEC, UDP).
//!
//! smoltcp 0.14's UDP socket keeps a packet at the head of its send queue
//! until it leaves, so before the reply sockets one such datagram stopped
//! every later UDP reply for good.

use reversal_core::server::UDP_REPLY_TIMEOUT;
use reversal_core::{Capacity, Counters, HeapResources, Server, ServerConfig};
use reversal_sim::reversal::Network;
use reversal_sim::{Direction, Faults, Host, Party, PartyId, Port, PortConfig, Sim, seed_sweep};
use smoltcp::iface::{Interface, SocketHandle};
use smoltcp::phy::{ChecksumCapabilities, Device, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpCidr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket,
    UdpRepr,
};

const PORT: u16 = 8888;
const MAX_LINE: usize = 64;
/// How long an asker waits for a reply before it sends its datagram again.
const RETRY: Duration = Duration::from_millis(100);
/// The longest a datagram of an asker whose address has resolved may wait
/// for its reply over rough links: ten retries, and far below the reply
/// timeout, so a reply held up behind the vanished sender's would show.
const ANSWER_LIMIT: Duration = Duration::from_secs(1);

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A server with `reply_sockets` UDP reply sockets, and no client yet.
fn network(seed: u64, reply_sockets: usize) -> Network {
    init_log();
    let capacity = Capacity::new(2, 1024, MAX_LINE)
        .with_spare_sockets(1)
        .with_udp_reply_sockets(reply_sockets);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    Network::new(seed, ServerConfig::new(2, MAX_LINE), resources).unwrap()
}

fn counters(net: &Network) -> Counters {
    net.sim[net.server()].counters()
}

// ---------------------------------------------------------------------------
// A sender that vanishes

/// A sender that sends one datagram and is gone: it answers no ARP request,
/// and the server has no neighbour entry for it (it never asked for the
/// server's address, as a laptop whose entry at the server expired would
/// not before it sends). It counts what reaches its port.
struct Vanished {
    port: Port,
    address: Ipv4Address,
    seen: Seen,
}

/// What reached a vanished sender's port.
#[derive(Debug, Default)]
struct Seen {
    /// ARP requests for its address.
    arp_requests: usize,
    /// UDP datagrams addressed to it.
    udp_to_it: usize,
}

impl Vanished {
    /// Adds one on a port of its own that sends `payload` to the server now.
    fn add(net: &mut Network, payload: &[u8]) -> PartyId<Vanished> {
        let (port, address) = net.attach();
        let mut vanished = Vanished {
            port,
            address,
            seen: Seen::default(),
        };
        let server_mac = net.sim[net.server()].port().mac();
        vanished.send(net.sim.now(), server_mac, net.server_address(), payload);
        net.sim.add(vanished)
    }

    fn send(
        &mut self,
        now: Instant,
        server_mac: EthernetAddress,
        server: Ipv4Address,
        payload: &[u8],
    ) {
        let udp = UdpRepr {
            src_port: 40_000,
            dst_port: PORT,
        };
        let ip = Ipv4Repr {
            src_addr: self.address,
            dst_addr: server,
            next_header: IpProtocol::Udp,
            payload_len: udp.header_len() + payload.len(),
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: self.port.mac(),
            dst_addr: server_mac,
            ethertype: EthernetProtocol::Ipv4,
        };
        let checksums = ChecksumCapabilities::default();
        let len = ethernet.buffer_len() + ip.buffer_len() + ip.payload_len;
        let token = self.port.transmit(now).expect("an idle port can send");
        token.consume(len, |frame| {
            let mut frame = EthernetFrame::new_unchecked(frame);
            ethernet.emit(&mut frame);
            let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
            ip.emit(&mut packet, &checksums);
            udp.emit(
                &mut UdpPacket::new_unchecked(packet.payload_mut()),
                &self.address.into(),
                &server.into(),
                payload.len(),
                |buffer| buffer.copy_from_slice(payload),
                &checksums,
            );
        });
    }

    /// Counts `frame` if it is an ARP request for `address` or a UDP
    /// datagram to it.
    fn note(address: Ipv4Address, seen: &mut Seen, frame: &[u8]) {
        let Ok(frame) = EthernetFrame::new_checked(frame) else {
            return;
        };
        match frame.ethertype() {
            EthernetProtocol::Arp => {
                let request = ArpPacket::new_checked(frame.payload())
                    .and_then(|packet| ArpRepr::parse(&packet));
                if let Ok(ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    target_protocol_addr,
                    ..
                }) = request
                    && target_protocol_addr == address
                {
                    seen.arp_requests += 1;
                }
            }
            EthernetProtocol::Ipv4 => {
                if let Ok(packet) = Ipv4Packet::new_checked(frame.payload())
                    && packet.next_header() == IpProtocol::Udp
                    && packet.dst_addr() == address
                {
                    seen.udp_to_it += 1;
                }
            }
            _ => {}
        }
    }
}

impl Party for Vanished {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        while let Some((token, _)) = self.port.receive(now) {
            token.consume(|frame| Self::note(self.address, &mut self.seen, frame));
        }
        None
    }
}

// ---------------------------------------------------------------------------
// Senders that stay

/// A UDP client that sends its datagrams one at a time, each again every
/// [`RETRY`] until its reply comes, and notes how long each reply took.
/// While `paused`, it sends no datagram after its first is answered.
struct Asker {
    paused: bool,
    host: Host,
    socket: SocketHandle,
    server: (Ipv4Address, u16),
    datagrams: Vec<Vec<u8>>,
    /// When the current datagram was first sent, and last sent.
    first_sent: Option<Instant>,
    last_sent: Instant,
    /// For each datagram answered, in order: how long its reply took from
    /// the first send.
    answered: Vec<Duration>,
}

impl Asker {
    fn new(net: &mut Network, datagrams: Vec<Vec<u8>>) -> Asker {
        let mut host = net.host();
        let socket = host.add_udp_socket(8, 4096);
        host.udp(socket).bind(5000).unwrap();
        Asker {
            paused: false,
            host,
            socket,
            server: (net.server_address(), PORT),
            datagrams,
            first_sent: None,
            last_sent: Instant::ZERO,
            answered: Vec::new(),
        }
    }

    fn is_done(&self) -> bool {
        self.answered.len() == self.datagrams.len()
    }

    /// The reply the current datagram must get: its reversal, LF kept.
    fn expected(datagram: &[u8]) -> Vec<u8> {
        let body = datagram.strip_suffix(b"\n").unwrap_or(datagram);
        let mut reply: Vec<u8> = body.iter().rev().copied().collect();
        reply.extend_from_slice(&datagram[body.len()..]);
        reply
    }
}

impl Party for Asker {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        let next = self.host.poll(now);
        while let Ok((reply, _)) = self.host.udp(self.socket).recv() {
            let reply = reply.to_vec();
            let index = self.answered.len();
            // Replies to earlier datagrams, sent again or duplicated on the
            // way, may still come; anything else is wrong.
            let earlier = self.datagrams[..index]
                .iter()
                .any(|datagram| Self::expected(datagram) == reply);
            if let Some(datagram) = self.datagrams.get(index)
                && Self::expected(datagram) == reply
            {
                let first = self.first_sent.take().expect("the datagram was sent");
                self.answered.push(now - first);
            } else {
                assert!(earlier, "a reply to no datagram: {reply:?}");
            }
        }
        let Some(datagram) = self.datagrams.get(self.answered.len()) else {
            return next;
        };
        if self.paused && !self.answered.is_empty() {
            return next;
        }
        let due = match self.first_sent {
            None => true,
            Some(_) => now >= self.last_sent + RETRY,
        };
        if due {
            // Its ARP request may be lost too: copies wait in the socket,
            // as many as it holds.
            if self.host.udp(self.socket).can_send() {
                self.host
                    .udp(self.socket)
                    .send_slice(datagram, self.server)
                    .unwrap();
            }
            self.first_sent.get_or_insert(now);
            self.last_sent = now;
            self.host.poll(now);
        }
        let retry = self.last_sent + RETRY;
        Some(next.map_or(retry, |next| next.min(retry)))
    }
}

/// Ten datagrams of a few bytes, numbered after `asker`.
fn datagrams(asker: usize) -> Vec<Vec<u8>> {
    (0..10)
        .map(|n| format!("asker {asker} datagram {n}\n").into_bytes())
        .collect()
}

// ---------------------------------------------------------------------------
// The tests

/// Under the usual fault mix on the askers' links, over many seeds: three
/// askers get a first reply (so their addresses resolve), one sender
/// vanishes after one datagram, then the askers send nine more datagrams
/// each. Every one is answered within a few retries; the vanished sender's
/// reply never goes out and is counted as dropped.
#[test]
fn a_sender_that_vanishes_after_one_datagram_holds_up_no_other_sender() {
    let seeds = if cfg!(debug_assertions) { 10 } else { 50 };
    seed_sweep!(seeds, |seed| {
        let mut net = network(seed, 1);
        let mut askers = Vec::new();
        for n in 0..3 {
            let mut asker = Asker::new(&mut net, datagrams(n));
            asker.paused = true;
            let port = asker.host.port().id();
            for direction in [Direction::Tx, Direction::Rx] {
                net.sim
                    .segment()
                    .set_faults(port, direction, Faults::rough());
            }
            askers.push(net.sim.add(asker));
        }
        let first_replies =
            |sim: &mut Sim| askers.iter().all(|&asker| !sim[asker].answered.is_empty());
        net.sim
            .run_until(Duration::from_secs(60), first_replies)
            .expect("every asker's first reply");
        let before = counters(&net).udp_datagrams;

        let vanished = Vanished::add(&mut net, b"gone\n");
        net.sim.run_for(Duration::from_millis(10)).unwrap();
        // Copies of the askers' first datagrams may still arrive.
        assert!(counters(&net).udp_datagrams > before, "the server took it");
        for &asker in &askers {
            net.sim[asker].paused = false;
        }
        let all_replies = |sim: &mut Sim| askers.iter().all(|&asker| sim[asker].is_done());
        net.sim
            .run_until(Duration::from_secs(60), all_replies)
            .expect("every asker's replies");

        for (n, &asker) in askers.iter().enumerate() {
            let slowest = net.sim[asker].answered[1..].iter().max().unwrap();
            assert!(*slowest <= ANSWER_LIMIT, "asker {n} waited {slowest}");
        }
        net.sim.run_for(UDP_REPLY_TIMEOUT).unwrap();
        assert_eq!(
            net.sim[vanished].seen.udp_to_it, 0,
            "a reply without a neighbour"
        );
        assert_eq!(counters(&net).udp_dropped, 1, "{}", counters(&net));
    });
}

/// With nobody else sending, the vanished sender's reply waits for its
/// neighbour for the reply timeout (three ARP requests, a second apart, as
/// smoltcp's neighbour discovery retries), then is dropped and counted; the
/// server then sleeps.
#[test]
fn a_reply_that_waits_for_a_neighbour_is_dropped_after_the_timeout() {
    let mut net = network(0, 1);
    let sent = net.sim.now();
    let vanished = Vanished::add(&mut net, b"gone\n");
    let server = net.server();
    net.sim
        .run_until(Duration::from_secs(60), |sim| {
            sim[server].counters().udp_dropped == 1
        })
        .expect("the reply is dropped");
    let dropped_after = net.sim.now() - sent;
    println!(
        "figures: the vanished sender's reply dropped after {dropped_after}, {} ARP requests for it",
        net.sim[vanished].seen.arp_requests
    );
    assert!(
        dropped_after >= UDP_REPLY_TIMEOUT
            && dropped_after <= UDP_REPLY_TIMEOUT + Duration::from_millis(10),
        "dropped after {dropped_after}"
    );
    assert_eq!(net.sim[vanished].seen.arp_requests, 3);

    // Nothing more to do: no frame, no wake-up.
    let frames = net.sim.segment().stats().delivered;
    net.sim.run_for(Duration::from_secs(60)).unwrap();
    assert_eq!(net.sim.segment().stats().delivered, frames);
    assert_eq!(net.sim[vanished].seen.udp_to_it, 0);
}

/// With two reply sockets and three vanished senders, the oldest waiting
/// reply gives way to each new datagram once every reply socket waits; an
/// asker is answered at once all along.
#[test]
fn when_every_reply_socket_waits_the_oldest_reply_gives_way() {
    let mut net = network(0, 2);
    let step = Duration::from_millis(100);
    let gone: Vec<_> = (0..3)
        .map(|n| {
            let vanished = Vanished::add(&mut net, format!("gone {n}\n").as_bytes());
            net.sim.run_for(step).unwrap();
            vanished
        })
        .collect();
    // Two waiting, the first gave way to the third.
    assert_eq!(counters(&net).udp_dropped, 1);

    let asker = Asker::new(&mut net, datagrams(0));
    let asker = net.sim.add(asker);
    net.sim
        .run_until(Duration::from_secs(2), |sim| sim[asker].is_done())
        .expect("the asker is answered");
    let slowest = *net.sim[asker].answered.iter().max().unwrap();
    println!("figures: slowest asker reply {slowest} with every reply socket waiting");
    assert!(slowest <= Duration::from_millis(20), "{slowest}");
    // The asker's first datagram took the place of the second; the third
    // waits its time out.
    assert_eq!(counters(&net).udp_dropped, 2);
    net.sim.run_for(UDP_REPLY_TIMEOUT).unwrap();
    assert_eq!(counters(&net).udp_dropped, 3);
    for vanished in gone {
        assert_eq!(net.sim[vanished].seen.udp_to_it, 0);
    }
}

/// An empty datagram gets an empty reply, which holds no byte but waits
/// all the same (found by the `server` fuzz target, from an IPv6 sender).
#[test]
fn an_empty_reply_that_waits_holds_up_no_other_sender() {
    let mut net = network(0, 1);
    Vanished::add(&mut net, b"");
    net.sim.run_for(Duration::from_millis(10)).unwrap();
    let asker = Asker::new(&mut net, datagrams(0));
    let asker = net.sim.add(asker);
    net.sim
        .run_until(Duration::from_secs(2), |sim| sim[asker].is_done())
        .expect("the asker is answered");
    assert_eq!(counters(&net).udp_dropped, 1);
}

/// A sender that later answers ARP gets its reply, late: a reply waits for
/// its neighbour up to the timeout instead of being dropped at once.
#[test]
fn a_reply_to_a_slow_neighbour_is_delivered_within_the_timeout() {
    let mut net = network(0, 1);
    let slow = Vanished::add(&mut net, b"slow\n");
    net.sim.run_for(Duration::from_millis(1500)).unwrap();
    // It comes back and answers the next ARP request.
    let (address, mac) = (net.sim[slow].address, net.sim[slow].port.mac());
    let server_mac = net.sim[net.server()].port().mac();
    let server = net.server_address();
    let now = net.sim.now();
    net.sim[slow].answer_arp(now, server_mac, server, address, mac);
    net.sim.run_for(Duration::from_millis(100)).unwrap();
    assert_eq!(net.sim[slow].seen.udp_to_it, 1);
    assert_eq!(counters(&net).udp_dropped, 0);
}

impl Vanished {
    /// An ARP reply telling the server where `address` lives.
    fn answer_arp(
        &mut self,
        now: Instant,
        server_mac: EthernetAddress,
        server: Ipv4Address,
        address: Ipv4Address,
        mac: EthernetAddress,
    ) {
        let arp = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: address,
            target_hardware_addr: server_mac,
            target_protocol_addr: server,
        };
        let ethernet = EthernetRepr {
            src_addr: mac,
            dst_addr: server_mac,
            ethertype: EthernetProtocol::Arp,
        };
        let token = self.port.transmit(now).expect("an idle port can send");
        token.consume(ethernet.buffer_len() + arp.buffer_len(), |frame| {
            let mut frame = EthernetFrame::new_unchecked(frame);
            ethernet.emit(&mut frame);
            arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        });
    }
}

/// Without a route back (an address off every subnet of the server's and no
/// gateway), a reply is dropped at once: it never takes a reply socket.
#[test]
fn a_datagram_from_an_address_without_a_route_is_dropped_at_once() {
    let mut net = network(0, 1);
    let far = IpAddress::v4(192, 0, 2, 9);
    let mut host = net.host();
    host.interface().update_ip_addrs(|addresses| {
        addresses.push(IpCidr::new(far, 32)).unwrap();
    });
    let socket = host.add_udp_socket(4, 1024);
    host.udp(socket).bind((far, 5000)).unwrap();
    let server = (net.server_address(), PORT);
    host.udp(socket).send_slice(b"far\n", server).unwrap();
    net.sim.add(host);
    net.sim.run_for(Duration::from_millis(50)).unwrap();
    let counters = counters(&net);
    assert_eq!((counters.udp_datagrams, counters.udp_dropped), (1, 1));
}

// ---------------------------------------------------------------------------
// A full device

/// A device with no room to send while `full`, as a NIC whose transmit
/// ring is full.
struct Full<D> {
    device: D,
    full: bool,
}

impl<D: Device> Device for Full<D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.device.receive(timestamp)
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if self.full {
            return None;
        }
        self.device.transmit(timestamp)
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.device.capabilities()
    }
}

/// The server on a [`Full`] port.
struct ServerOnFullDevice {
    server: Server<'static>,
    iface: Interface,
    device: Full<Port>,
}

impl Party for ServerOnFullDevice {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        let next = self.server.poll(now, &mut self.iface, &mut self.device);
        // A full NIC wakes its driver when it has room again; here, soon.
        match self.device.full {
            true => Some(now + Duration::from_millis(1)),
            false => next,
        }
    }
}

/// A reply that the device had no room for has not been tried: it waits
/// for the device, gives way to no datagram, and is delivered with the
/// ones that waited unread behind it.
#[test]
fn replies_the_device_has_no_room_for_wait_and_are_not_dropped() {
    init_log();
    let mut sim = Sim::new(0);
    let capacity = Capacity::new(1, 1024, MAX_LINE).with_spare_sockets(1);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let server = Server::new(ServerConfig::new(1, MAX_LINE), resources).unwrap();
    let mut port = sim.attach(PortConfig::new().latency(Duration::from_millis(1)));
    let mut iface = Interface::new(port.interface_config(), &mut port, sim.now());
    let server_address = Ipv4Address::new(10, 0, 0, 1);
    iface.update_ip_addrs(|addresses| {
        addresses
            .push(IpCidr::new(server_address.into(), 24))
            .unwrap();
    });
    let device = Full {
        device: port,
        full: false,
    };
    let server = sim.add(ServerOnFullDevice {
        server,
        iface,
        device,
    });
    let config = PortConfig::new().latency(Duration::from_millis(1));
    let client = sim.add_host(config, &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)]);
    let socket = sim[client].add_udp_socket(8, 4096);
    sim[client].udp(socket).bind(5000).unwrap();
    let exchange = |sim: &mut Sim, datagrams: &[&[u8]]| {
        for datagram in datagrams {
            let to = (server_address, PORT);
            sim[client].udp(socket).send_slice(datagram, to).unwrap();
        }
        sim.run_for(Duration::from_millis(100)).unwrap();
    };
    // The client's address resolves.
    exchange(&mut sim, &[b"first\n"]);
    assert!(sim[client].udp(socket).recv().is_ok());

    sim[server].device.full = true;
    exchange(&mut sim, &[b"one\n", b"two\n", b"three\n"]);
    assert!(sim[client].udp(socket).recv().is_err(), "no room to send");
    sim[server].device.full = false;
    sim.run_for(Duration::from_millis(100)).unwrap();
    let mut replies = Vec::new();
    while let Ok((reply, _)) = sim[client].udp(socket).recv() {
        replies.push(reply.to_vec());
    }
    assert_eq!(replies, [&b"eno\n"[..], b"owt\n", b"eerht\n"]);
    let counters = sim[server].server.counters();
    assert_eq!((counters.udp_datagrams, counters.udp_dropped), (4, 0));
}
