//! The reversal server with socket buffers of 64 KiB and more (host-tap's
//! `--socket-buffer`), against a client that sends without pause and reads
//! its replies in bursts, so that both windows close and open again and
//! again: the bulk traffic of `reversal-bench` in virtual time.
//!
//! What it found (smoltcp 0.14): with a receive buffer of 64 KiB or more,
//! smoltcp scales its window (RFC 7323) and advertises the free space
//! rounded down to the scale, so its right edge can move left by up to
//! 2^scale - 1 bytes when a segment arrives. A peer that already sent up to
//! the old edge has bytes beyond the new one. Once the server's window is
//! zero, every segment from that peer starts beyond it and smoltcp drops
//! the segment whole, its acknowledgement and window update included (RFC
//! 9293 3.10.7.4 asks to process them): the server never learns that the
//! client reads again, the client never learns that the server does. Both
//! wait for ever. On a real TAP (`reversal-bench`, 1 MiB buffers) half of
//! the bulk runs stalled so. A buffer under 64 KiB has no window scale, a
//! right edge that never moves left, and never stalls: host-tap keeps
//! `--socket-buffer` below 64 KiB until smoltcp changes.

use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{Network, ServerParty};
use reversal_sim::{Bandwidth, Host, Party, PartyId, Port, PortConfig, Sim, frames, seed_sweep};
use smoltcp::iface::SocketHandle;
use smoltcp::phy::{Device, RxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, IpAddress, IpCidr, Ipv4Address, Ipv4Packet, TcpControl,
    TcpPacket, TcpRepr, TcpSeqNumber,
};

const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);
const MAX_LINE: usize = 1024;
/// The largest buffer without a window scale: host-tap's largest.
const UNSCALED: usize = 64 * 1024 - 1;
/// Lines of 1 KiB the client sends.
const LINES: usize = 2048;
/// The client's receive buffer: it fills in one burst of replies.
const CLIENT_RX: usize = 16 * 1024;
/// The client's link: 1 KiB takes 8 µs.
const BANDWIDTH: Bandwidth = Bandwidth::mbps(1000);
/// How long the client reads in each period.
const READ: Duration = Duration::from_millis(1);
/// No reply byte for this long, with replies owed, is a stall.
const STALL: Duration = Duration::from_secs(30);

/// A client that sends every line as fast as the window allows and reads
/// replies only while `reading` is on.
struct BurstReader {
    host: Host,
    socket: SocketHandle,
    to_send: Vec<u8>,
    sent: usize,
    reading: bool,
    received: Vec<u8>,
}

impl Party for BurstReader {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        loop {
            let deadline = self.host.poll(now);
            let socket = self.host.tcp(self.socket);
            let mut moved = false;
            if self.sent < self.to_send.len() && socket.can_send() {
                let n = socket.send_slice(&self.to_send[self.sent..]).unwrap();
                self.sent += n;
                moved |= n > 0;
            }
            while self.reading && socket.can_recv() {
                let received = &mut self.received;
                socket
                    .recv(|data| {
                        received.extend_from_slice(data);
                        (data.len(), ())
                    })
                    .unwrap();
                moved = true;
            }
            if !moved {
                return deadline;
            }
        }
    }
}

/// `LINES` lines of 1 KiB with their line number, and their replies.
fn lines() -> (Vec<u8>, Vec<u8>) {
    let mut lines = Vec::new();
    let mut replies = Vec::new();
    for n in 0..LINES {
        let mut line = format!("{n:06} ").into_bytes();
        line.resize(MAX_LINE - 1, b'a' + (n % 26) as u8);
        lines.extend_from_slice(&line);
        lines.push(b'\n');
        line.reverse();
        replies.extend_from_slice(&line);
        replies.push(b'\n');
    }
    (lines, replies)
}

/// Streams the lines through a server with socket buffers of
/// `server_buffer` bytes, from a client behind a link of `bandwidth` (so
/// that its segments arrive one by one and the server acknowledges them one
/// by one), which reads in bursts: for `read` of every `period`. Returns
/// how many reply bytes arrived before the end or a stall, and how many
/// segments were sent again (either way; on these clean links every one is
/// spurious), and checks the reply bytes.
fn burst_exchange(
    seed: u64,
    server_buffer: usize,
    bandwidth: Bandwidth,
    read: Duration,
    period: Duration,
) -> (usize, u64) {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed);
    let capacity = Capacity::new(1, server_buffer, MAX_LINE).with_spare_sockets(1);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let cable = PortConfig::new().latency(Duration::from_micros(100));
    let server = ServerParty::new(
        sim.attach(cable),
        IpCidr::new(SERVER, 24),
        sim.now(),
        ServerConfig::new(1, MAX_LINE),
        resources,
    )
    .unwrap();
    sim.add(server);
    let mut host = Host::new(
        sim.attach(cable.bandwidth(bandwidth)),
        &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)],
        sim.now(),
    );
    let socket = host.add_tcp_socket(CLIENT_RX, 256 * 1024);
    host.tcp_connect(socket, (SERVER, 8888), 40_000).unwrap();
    let (to_send, replies) = lines();
    let client: PartyId<BurstReader> = sim.add(BurstReader {
        host,
        socket,
        to_send,
        sent: 0,
        reading: true,
        received: Vec::new(),
    });
    let mut last_progress = (sim.now(), 0);
    while sim[client].received.len() < replies.len() {
        sim[client].reading = true;
        sim.run_for(read).unwrap();
        sim[client].reading = false;
        sim.run_for(period - read).unwrap();
        let received = sim[client].received.len();
        if received > last_progress.1 {
            last_progress = (sim.now(), received);
        } else if sim.now() - last_progress.0 > STALL {
            break;
        }
    }
    let received = &sim[client].received;
    assert!(
        received[..] == replies[..received.len()],
        "replies differ from the lines sent, reversed, in order"
    );
    let report = sim.segment().report();
    let retransmitted = report.flows.iter().map(|f| f.retransmitted_segments).sum();
    (received.len(), retransmitted)
}

fn total() -> usize {
    LINES * MAX_LINE
}

#[test]
fn unscaled_windows_carry_a_client_that_reads_in_bursts_to_the_end_without_retransmitting() {
    seed_sweep!(if cfg!(debug_assertions) { 4 } else { 40 }, |seed| {
        let period = Duration::from_millis(2 + seed % 10);
        let (received, retransmitted) = burst_exchange(seed, UNSCALED, BANDWIDTH, READ, period);
        assert_eq!(received, total(), "stalled");
        assert_eq!(retransmitted, 0, "segments sent again over a clean link");
    });
}

/// smoltcp clients get out of the same situation (see the module docs)
/// by themselves: their retransmission timeout rewinds their sequence
/// number, and their next ACK falls inside the server's zero window. The
/// shrunk windows still cost retransmissions over a clean link (in 4 of
/// these 40 runs, about 50 segments each; none with unscaled windows).
/// Linux keeps its sequence number and stalls: see [`LinuxLikePeer`].
#[test]
fn scaled_windows_carry_a_smoltcp_client_that_reads_in_bursts_to_the_end() {
    seed_sweep!(if cfg!(debug_assertions) { 4 } else { 40 }, |seed| {
        let period = Duration::from_millis(2 + seed % 10);
        let (received, _) = burst_exchange(seed, 256 * 1024, BANDWIDTH, READ, period);
        assert_eq!(received, total(), "stalled");
    });
}

/// A TCP peer made frame by frame that does what Linux does when a server
/// shrinks its window under segments in flight: the bytes it sent stay
/// sent (until acknowledged or retransmitted), and every later segment,
/// a pure ACK or a window update included, carries its sequence number
/// after them.
struct LinuxLikePeer {
    port: Port,
    address: Ipv4Address,
    server: Ipv4Address,
    server_mac: EthernetAddress,
    /// Sequence numbers: ours (next new byte) and the server's (next
    /// byte expected).
    next: TcpSeqNumber,
    server_next: TcpSeqNumber,
    /// What the server acknowledged last, and the window it offered then.
    acked: TcpSeqNumber,
    window: usize,
    /// The server's window scale.
    shift: u8,
    /// The window we offer: 0 while we do not read.
    our_window: u16,
    reply_bytes: usize,
}

const PEER_PORT: u16 = 41_000;

impl Party for LinuxLikePeer {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        let mut answer = false;
        while let Some((token, _)) = self.port.receive(now) {
            let segment = token.consume(|frame| {
                let ethernet = EthernetFrame::new_checked(frame).ok()?;
                let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                let payload = tcp.payload().len();
                let ack = tcp.ack().then(|| tcp.ack_number());
                Some((
                    tcp.seq_number(),
                    ack,
                    usize::from(tcp.window_len()),
                    payload,
                    tcp.syn(),
                ))
            });
            let Some((seq, ack, window, payload, syn)) = segment else {
                continue;
            };
            if syn {
                self.server_next = seq + 1;
            }
            if let Some(ack) = ack {
                self.acked = ack;
                self.window = window << self.shift;
            }
            if self.our_window > 0 && payload > 0 {
                if seq == self.server_next {
                    self.server_next += payload;
                    self.reply_bytes += payload;
                }
                answer = true;
            }
        }
        if answer {
            self.send(now, self.next, &[]);
        }
        None
    }
}

impl LinuxLikePeer {
    /// Bytes the server's window, as last offered, has room for beyond
    /// what we sent: none once it moved left of our bytes.
    fn room(&self) -> usize {
        let edge = self.acked + self.window;
        if edge > self.next {
            edge - self.next
        } else {
            0
        }
    }

    /// Announces our address to the server (an ARP request it learns from).
    fn announce(&mut self, now: Instant) {
        let (server_mac, address, server) = (self.server_mac, self.address, self.server);
        frames::send_arp_request(&mut self.port, now, server_mac, address, server);
    }

    fn segment(&mut self, now: Instant, control: TcpControl, seq: TcpSeqNumber, payload: &[u8]) {
        let syn = control == TcpControl::Syn;
        let tcp = TcpRepr {
            src_port: PEER_PORT,
            dst_port: 8888,
            control,
            seq_number: seq,
            ack_number: (!syn).then_some(self.server_next),
            window_len: self.our_window,
            // Window scaling on; our own scale is 0.
            window_scale: syn.then_some(0),
            max_seg_size: syn.then_some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let (server_mac, address, server) = (self.server_mac, self.address, self.server);
        frames::send_tcp(&mut self.port, now, server_mac, address, server, &tcp);
    }

    /// A data segment (or, empty, an ACK) at `seq`.
    fn send(&mut self, now: Instant, seq: TcpSeqNumber, payload: &[u8]) {
        self.segment(now, TcpControl::None, seq, payload);
    }
}

/// Fills the server with lines from a peer that does not read, ends with
/// the server's window closed and, where the server shrank its window,
/// our bytes beyond its edge; then reads, as Linux would, for 30 s.
/// Returns how many reply bytes came, and how many the server produced.
fn shrunk_window_exchange(server_buffer: usize) -> (usize, u64) {
    let _ = env_logger::builder().is_test(true).try_init();
    let capacity = Capacity::new(1, server_buffer, MAX_LINE).with_spare_sockets(1);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let mut net = Network::new(0, ServerConfig::new(1, MAX_LINE), resources).unwrap();
    let (port, address) = net.attach();
    let isn = TcpSeqNumber(1_000_000);
    let peer = net.sim.add(LinuxLikePeer {
        port,
        address,
        server: net.server_address(),
        server_mac: net.sim[net.server()].port().mac(),
        next: isn + 1,
        server_next: TcpSeqNumber(0),
        acked: isn,
        window: 0,
        shift: 0,
        our_window: 0,
        reply_bytes: 0,
    });
    let step = |net: &mut Network| net.sim.run_for(Duration::from_millis(5)).unwrap();
    let now = net.sim.now();
    net.sim[peer].announce(now);
    step(&mut net);
    // The handshake; the server's scale: the log2 of its buffer, less 16.
    let shift = (usize::BITS - server_buffer.leading_zeros()).saturating_sub(16) as u8;
    net.sim[peer].shift = 0;
    let now = net.sim.now();
    net.sim[peer].segment(now, TcpControl::Syn, isn, &[]);
    step(&mut net);
    net.sim[peer].shift = shift;
    let now = net.sim.now();
    net.sim[peer].send(now, isn + 1, &[]);
    step(&mut net);

    let (lines, _) = lines();
    let mut lines = lines.iter().copied().cycle();
    // Fill the window, a full segment at a time, until less than one fits.
    loop {
        if net.sim[peer].room() < 1460 {
            break;
        }
        let now = net.sim.now();
        while net.sim[peer].room() >= 1460 {
            let payload: Vec<u8> = lines.by_ref().take(1460).collect();
            let next = net.sim[peer].next;
            net.sim[peer].send(now, next, &payload);
            net.sim[peer].next += 1460;
        }
        step(&mut net);
    }
    // The last bytes: a segment ending 3 bytes short of the edge, then,
    // once the server has acknowledged it (perhaps with an edge moved
    // left), the 3 bytes up to the edge it had offered: a segment that was
    // on its way meanwhile.
    loop {
        let room = net.sim[peer].room();
        if room < 8 {
            break;
        }
        let first: Vec<u8> = lines.by_ref().take(room - 3).collect();
        let now = net.sim.now();
        let next = net.sim[peer].next;
        net.sim[peer].send(now, next, &first);
        net.sim[peer].next += first.len();
        step(&mut net);
        let last: Vec<u8> = lines.by_ref().take(3).collect();
        let now = net.sim.now();
        let next = net.sim[peer].next;
        net.sim[peer].send(now, next, &last);
        net.sim[peer].next += 3;
        step(&mut net);
    }
    // Now we read: offer a window, and go on as Linux does: retransmit what
    // the server has not acknowledged, on a backed-off timer.
    net.sim[peer].our_window = u16::MAX;
    let mut backoff = Duration::from_millis(200);
    let until = net.sim.now() + Duration::from_secs(30);
    while net.sim.now() < until {
        let now = net.sim.now();
        let (acked, next) = (net.sim[peer].acked, net.sim[peer].next);
        if acked < next {
            let bytes = vec![b'x'; next - acked];
            net.sim[peer].send(now, acked, &bytes);
        } else {
            net.sim[peer].send(now, next, &[]);
        }
        net.sim.run_for(backoff).unwrap();
        backoff = (backoff * 2).min(Duration::from_secs(4));
    }
    let produced = net.sim[net.server()].counters().bytes_out;
    (net.sim[peer].reply_bytes, produced)
}

#[test]
fn unscaled_windows_never_shrink_so_a_linux_peer_gets_its_replies() {
    let (came, produced) = shrunk_window_exchange(UNSCALED);
    assert!(produced > 64 * 1024, "the server answered {produced} bytes");
    assert_eq!(came as u64, produced, "replies held back");
}

/// A canary for a smoltcp upgrade: once this fails, scaled windows no
/// longer stall a Linux peer, and host-tap's `--socket-buffer` may go past
/// 64 KiB.
#[test]
fn scaled_windows_shrink_and_stall_a_linux_peer_in_smoltcp_0_14() {
    let (came, produced) = shrunk_window_exchange(256 * 1024);
    assert!(
        produced >= 256 * 1024,
        "the server answered {produced} bytes"
    );
    // At most the one byte of the server's zero-window probe.
    assert!(
        came <= 1,
        "{came} of {produced} reply bytes came: smoltcp no longer shrinks its scaled window, \
         or now takes the ACKs of segments beyond a zero window"
    );
}
