//! Target `server`: the whole `Server` on an Ethernet segment, fed arbitrary
//! frames while a scripted client talks to it.
//!
//! The segment has three parties: the server (10.0.0.1 and fdaa::1, a
//! `phy::Device` whose buffers are all allocated before it runs), a
//! legitimate client (a smoltcp host at 10.0.0.2 with a TCP connection and a
//! UDP socket) and the attacker, whose frames come from the fuzzer: raw
//! bytes, or ARP, IPv4, IPv6, TCP, UDP and ICMP built with smoltcp's `wire`
//! types with any field, option or checksum, from any other address. The
//! attacker never speaks as the client (frames from its MAC or addresses are
//! left out): forging the client's own segments can end its connection, and
//! that is TCP, not a bug.
//!
//! Checked, whatever the attacker sends:
//! - no panic, and the segment settles (no busy loop);
//! - the client's TCP replies are exactly the SPEC's, in order, and its
//!   connection ends cleanly after its FIN; its UDP replies are exact; the
//!   client writes whole lines, so the idle flush, on by default, may never
//!   answer part of one, whatever the attacker does;
//! - `Server::poll` never allocates (memory is fixed);
//! - no UDP reply is larger than a datagram its receiver sent to the port.
//!
//! Attackers answer ARP and neighbour solicitations for their addresses,
//! unless the case says they are silent. A datagram from a silent sender,
//! or from an address the server has no route to, gets a reply that can
//! never be sent; it must not hold up the client's (issue 10 item 1, once
//! found by this target): every datagram of the client's is answered.

use std::collections::{HashMap, HashSet, VecDeque};

use arbitrary::Arbitrary;
use reversal_core::{Mode, Server, ServerConfig, StaticResources};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpCidr, IpEndpoint, Ipv4Address, Ipv6Address,
};

use crate::{allocations, oracle};

mod attack;
mod devices;
mod frames;

use attack::attack_frame;
pub use attack::{Datagram, Ipv4Fields, Op, Segment, Source, Source4};
use devices::{ClientPort, ServerPort};
use frames::{forges_client, neighbour_answer, udp_in};

const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const SERVER_V4: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const CLIENT_V4: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const SERVER_V6: Ipv6Address = Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 1);
const PORT: u16 = 8888;
const CLIENT_TCP_PORT: u16 = 40000;
const CLIENT_UDP_PORT: u16 = 50000;
const MAX_LINE: usize = 64;

/// Two sessions (the client's and one for the attacker), UDP (a receiving
/// and a reply socket), four busy sockets.
type Resources<'a> = StaticResources<'a, 2, 8, 1024, 1024, MAX_LINE>;

/// Operations taken from one case, and the virtual time the attacker's
/// waits may add up to (well inside the two-minute idle timeout).
const MAX_OPS: usize = 256;
const MAX_WAITING: Duration = Duration::from_secs(60);
/// Steps of the segment in one `run_for` before it counts as never settling.
const MAX_STEPS: usize = 100_000;
/// Frames the server's device can hold on its way out (a NIC's TX ring).
const TX_RING: usize = 256;
const FRAME: usize = 1514;

/// One attack on a conversation.
#[derive(Debug, Clone, Arbitrary)]
pub struct Case {
    /// Attackers never answer ARP or neighbour solicitations.
    pub silent: bool,
    /// What happens, in order.
    pub ops: Vec<Op>,
}

// ---------------------------------------------------------------------------
// The client's script

/// Lines the client sends over TCP, in turn: graphemes, CR LF, an empty
/// line, invalid UTF-8 and a line too long for `MAX_LINE`.
const LINES: &[&[u8]] = &[
    "hello 각👍🏽\n".as_bytes(),
    b"abc\r\n",
    b"\n",
    b"ab\xffc\n",
    b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n",
];

/// The client's `n`th datagram and the reply it must get: a reversal, or
/// (every third) an invalid one whose `utf8` error fits in it.
fn datagram(n: usize) -> (Vec<u8>, Vec<u8>) {
    if n % 3 == 2 {
        let payload = [format!("{n:040}").as_bytes(), b"\xff\n"].concat();
        let reply = format!("{}\n", oracle::utf8(40)).into_bytes();
        return (payload, reply);
    }
    let payload = format!("{n} udp 🇰🇷\r\n").into_bytes();
    let reply =
        oracle::reversed(Mode::Graphemes, &payload[..payload.len() - 2]).expect("valid UTF-8");
    (payload, [&reply[..], b"\r\n"].concat())
}

/// A datagram the client sent, and whether its reply came.
struct Request {
    payload: Vec<u8>,
    reply: Vec<u8>,
    answered: bool,
}

// ---------------------------------------------------------------------------
// The segment

struct Net<'a> {
    now: Instant,
    server: Server<'a>,
    server_iface: Interface,
    server_port: ServerPort,
    client_iface: Interface,
    client_port: ClientPort,
    sockets: SocketSet<'static>,
    tcp: SocketHandle,
    udp: SocketHandle,
    silent: bool,
    /// TCP bytes the client sent and still has to send.
    sent: Vec<u8>,
    unsent: Vec<u8>,
    received: Vec<u8>,
    lines: usize,
    requests: Vec<Request>,
    /// Sizes of datagrams each endpoint sent to the server's UDP port, in order.
    udp_requests: HashMap<IpEndpoint, VecDeque<usize>>,
}

fn interface(device: &mut impl Device, mac: EthernetAddress, addresses: &[IpCidr]) -> Interface {
    let mut config = Config::new(HardwareAddress::Ethernet(mac));
    // Fixed, so that a case always runs the same way.
    config.random_seed = 0x5eed;
    let mut iface = Interface::new(config, device, Instant::ZERO);
    iface.update_ip_addrs(|a| {
        for &address in addresses {
            a.push(address).expect("room for the addresses");
        }
    });
    iface
}

impl<'a> Net<'a> {
    fn new(resources: &'a mut Resources<'a>, silent: bool) -> Self {
        let server = Server::new(ServerConfig::new(2, MAX_LINE), resources).expect("config fits");
        let mut server_port = ServerPort::new();
        let server_iface = interface(
            &mut server_port,
            SERVER_MAC,
            &[
                IpCidr::new(SERVER_V4.into(), 24),
                IpCidr::new(SERVER_V6.into(), 64),
            ],
        );
        let mut client_port = ClientPort::default();
        let client_iface = interface(
            &mut client_port,
            CLIENT_MAC,
            &[IpCidr::new(CLIENT_V4.into(), 24)],
        );
        let mut sockets = SocketSet::new(Vec::new());
        let tcp = sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 8192]),
            tcp::SocketBuffer::new(vec![0; 8192]),
        ));
        let mut udp_socket = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 4096]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 4096]),
        );
        udp_socket.bind(CLIENT_UDP_PORT).expect("bind");
        let udp = sockets.add(udp_socket);
        Net {
            now: Instant::ZERO,
            server,
            server_iface,
            server_port,
            client_iface,
            client_port,
            sockets,
            tcp,
            udp,
            silent,
            sent: Vec::new(),
            unsent: Vec::new(),
            received: Vec::new(),
            lines: 0,
            requests: Vec::new(),
            udp_requests: HashMap::new(),
        }
    }

    /// Hands `frame` to the server, noting a datagram to its UDP port.
    fn deliver(&mut self, frame: Vec<u8>) {
        if let Some((from, to, len)) = udp_in(&frame)
            && to.port == PORT
        {
            self.udp_requests.entry(from).or_default().push_back(len);
        }
        self.server_port.inbox.push(frame);
    }

    /// No UDP reply larger than a datagram its receiver sent: each reply is
    /// matched, in order, with a request at least as large.
    fn check_udp_reply(&mut self, frame: &[u8]) {
        let Some((from, to, len)) = udp_in(frame) else {
            return;
        };
        if from.port != PORT {
            return;
        }
        let requests = self.udp_requests.entry(to).or_default();
        while let Some(request) = requests.pop_front() {
            if request >= len {
                return;
            }
        }
        panic!("a {len}-byte UDP reply to {to} answers no datagram at least that large");
    }

    /// One poll of each host and one exchange of frames; the next deadline.
    fn step(&mut self) -> Option<Instant> {
        let (server_next, allocated) = allocations::count(|| {
            self.server
                .poll(self.now, &mut self.server_iface, &mut self.server_port)
        });
        assert_eq!(allocated, 0, "Server::poll allocated");
        for frame in self.server_port.take_sent() {
            self.check_udp_reply(&frame);
            if !self.silent
                && let Some(answer) = neighbour_answer(&frame)
            {
                self.deliver(answer);
            }
            self.client_port.inbox.push_back(frame);
        }
        self.pump_client();
        self.client_iface
            .poll(self.now, &mut self.client_port, &mut self.sockets);
        for frame in std::mem::take(&mut self.client_port.outbox) {
            self.deliver(frame);
        }
        self.pump_client();
        let client_next = self.client_iface.poll_at(self.now, &self.sockets);
        [server_next, client_next].into_iter().flatten().min()
    }

    /// Moves the client's bytes: sends what waits, reads and checks replies.
    fn pump_client(&mut self) {
        let socket = self.sockets.get_mut::<tcp::Socket>(self.tcp);
        if socket.can_send() && !self.unsent.is_empty() {
            // Whole lines only (or all that is left, the unterminated last
            // one included), as a careful client writes them: smoltcp then
            // marks a push (PSH) only at the end of a line, and the server's
            // idle flush (on by default) never answers part of one.
            let room = socket.send_capacity() - socket.send_queue();
            let fits = if self.unsent.len() <= room {
                self.unsent.len()
            } else {
                self.unsent[..room]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |lf| lf + 1)
            };
            let n = socket.send_slice(&self.unsent[..fits]).expect("send");
            self.sent.extend(self.unsent.drain(..n));
        }
        let before = self.received.len();
        while socket.can_recv() {
            socket
                .recv(|data| {
                    self.received.extend_from_slice(data);
                    (data.len(), ())
                })
                .expect("recv");
        }
        // Replies to complete lines are due in order: what came is a prefix.
        if self.received.len() > before {
            self.check_tcp_prefix();
        }
        let socket = self.sockets.get_mut::<udp::Socket>(self.udp);
        while let Ok((reply, _)) = socket.recv() {
            // Equal replies (the utf8 errors) answer the oldest unanswered one.
            let matching = |r: &&mut Request| r.reply == reply;
            let mut requests = self.requests.iter_mut().filter(matching).peekable();
            assert!(
                requests.peek().is_some(),
                "UDP reply {reply:?} answers none of the client's datagrams"
            );
            if let Some(request) = requests.find(|r| !r.answered) {
                request.answered = true;
            }
        }
    }

    fn check_tcp_prefix(&self) {
        let expected = oracle::session_replies(Mode::Graphemes, MAX_LINE, &self.sent);
        assert!(
            expected.starts_with(&self.received),
            "the client got {:?}, the SPEC says {:?}",
            String::from_utf8_lossy(&self.received),
            String::from_utf8_lossy(&expected)
        );
    }

    /// Steps the segment until `end`, jumping between deadlines.
    fn run_until(&mut self, end: Instant, mut done: impl FnMut(&mut Self) -> bool) {
        for _ in 0..MAX_STEPS {
            let next = self.step();
            if done(self) || self.now >= end {
                return;
            }
            if self.server_port.has_input() || !self.client_port.inbox.is_empty() {
                continue;
            }
            let next = next.unwrap_or(end).max(self.now + Duration::from_millis(1));
            self.now = next.min(end);
        }
        panic!("the segment did not settle in {MAX_STEPS} steps");
    }

    fn send_line(&mut self) {
        self.unsent
            .extend_from_slice(LINES[self.lines % LINES.len()]);
        self.lines += 1;
    }

    fn send_datagram(&mut self) {
        let (payload, reply) = datagram(self.requests.len());
        self.sockets
            .get_mut::<udp::Socket>(self.udp)
            .send_slice(&payload, IpEndpoint::new(SERVER_V4.into(), PORT))
            .expect("room in the client's UDP buffer");
        self.requests.push(Request {
            payload,
            reply,
            answered: false,
        });
    }

    fn resend_unanswered(&mut self) {
        let socket = self.sockets.get_mut::<udp::Socket>(self.udp);
        for request in self.requests.iter().filter(|r| !r.answered) {
            // A full buffer just waits for the next round.
            let _ = socket.send_slice(&request.payload, IpEndpoint::new(SERVER_V4.into(), PORT));
        }
    }
}

/// Runs one case and checks it.
pub fn check(case: &Case) {
    let mut resources = Box::new(Resources::new());
    let mut net = Net::new(&mut resources, case.silent);
    let connect = net.sockets.get_mut::<tcp::Socket>(net.tcp).connect(
        net.client_iface.context(),
        IpEndpoint::new(SERVER_V4.into(), PORT),
        CLIENT_TCP_PORT,
    );
    connect.expect("connect");
    let end = net.now + Duration::from_secs(5);
    net.run_until(end, |net| {
        net.sockets.get::<tcp::Socket>(net.tcp).state() == tcp::State::Established
            && net.server.active_sessions() == 1
    });
    assert_eq!(
        net.server.active_sessions(),
        1,
        "the client's session opened"
    );

    let mut waited = Duration::ZERO;
    for op in case.ops.iter().take(MAX_OPS) {
        match op {
            Op::Wait(ms) => {
                let wait = Duration::from_millis(u64::from(*ms) % 3000).min(MAX_WAITING - waited);
                waited += wait;
                let end = net.now + wait;
                net.run_until(end, |_| false);
                continue;
            }
            Op::ClientLine => net.send_line(),
            Op::ClientDatagram if net.requests.len() < 12 => net.send_datagram(),
            Op::ClientDatagram => {}
            attack => {
                let frame = attack_frame(attack).expect("an attack is a frame");
                if !forges_client(&frame) {
                    net.deliver(frame);
                }
            }
        }
        net.step();
    }

    // The attack is over: the client finishes its conversation and closes.
    net.send_line();
    net.unsent.extend_from_slice(b"last");
    let end = net.now + Duration::from_secs(30);
    net.run_until(end, |net| {
        let socket = net.sockets.get_mut::<tcp::Socket>(net.tcp);
        if net.unsent.is_empty() && socket.send_queue() == 0 && socket.may_send() {
            socket.close();
        }
        !socket.is_open() || socket.state() == tcp::State::TimeWait
    });
    let expected = oracle::session_replies(Mode::Graphemes, MAX_LINE, &net.sent);
    assert!(
        net.unsent.is_empty(),
        "the client could not send all its lines"
    );
    assert!(
        net.received == expected,
        "the client got {:?}, the SPEC says {:?}",
        String::from_utf8_lossy(&net.received),
        String::from_utf8_lossy(&expected)
    );
    let state = net.sockets.get::<tcp::Socket>(net.tcp).state();
    assert!(
        matches!(state, tcp::State::TimeWait | tcp::State::Closed),
        "the connection did not end cleanly: {state}"
    );

    for _ in 0..10 {
        if net.requests.iter().all(|r| r.answered) {
            break;
        }
        net.resend_unanswered();
        let end = net.now + Duration::from_secs(2);
        net.run_until(end, |net| net.requests.iter().all(|r| r.answered));
    }
    let unanswered: HashSet<&[u8]> = net
        .requests
        .iter()
        .filter(|r| !r.answered)
        .map(|r| &r.payload[..])
        .collect();
    assert!(
        unanswered.is_empty(),
        "datagrams never answered: {unanswered:?}"
    );
}
