//! The idle flush with its defaults: a pause answers a partial line only at
//! the end of one of the client's writes (the readable data ends where a
//! segment with PSH ended), so the lecture's client is answered, and loss,
//! delay, reordering and duplication never split a line.
//!
//! The sweeps run 60 seeds in release builds and 10 in debug builds;
//! `SIM_SEEDS=n` sets the count, `SIM_SEED=n` replays one, and a failing
//! case is shrunk and leaves a pcap in `target/sim-failures/`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reversal_core::session::DEFAULT_IDLE_FLUSH;
use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{ClientParty, ConversationId, Network, Script, ServerParty};
use reversal_sim::{Direction, Faults, Host, PartyId, Port, PortConfig, Sim, Sweep, case_sweep};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpCidr, IpProtocol, Ipv4Packet, TcpPacket,
};

const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);
const SESSIONS: usize = 4;
/// Longer than a segment: a line may span several.
const MAX_LINE: usize = 2000;
/// The server's socket buffers: room for a whole line with room to spare,
/// so half the window (what a write end may lie past the last one) holds
/// every line.
const SERVER_BUFFER: usize = 8192;
const LIMIT: Duration = Duration::from_secs(900);

/// Loses, duplicates, corrupts and reorders (a fifth of the frames held
/// back up to 30 ms, so later ones overtake them), both ways.
const STORMY: Faults = Faults {
    drop: 0.05,
    duplicate: 0.03,
    delay: 0.2,
    max_delay: Duration::from_millis(30),
    corrupt: 0.01,
    ..Faults::NONE
};

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A server's socket buffers and longest line.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    buffer: usize,
    max_line: usize,
}

/// Lines longer than a segment.
const ROOMY: Sizes = Sizes {
    buffer: SERVER_BUFFER,
    max_line: MAX_LINE,
};

/// A board's 512-byte lines, and a window just over one segment: smoltcp
/// 0.14 clients stall against a smaller one (see `load.rs`).
const BOARD_LIKE: Sizes = Sizes {
    buffer: 2048,
    max_line: 512,
};

fn resources_for(sizes: Sizes) -> &'static mut HeapResources<'static> {
    let capacity = Capacity::new(SESSIONS, sizes.buffer, sizes.max_line).with_spare_sockets(1);
    Box::leak(Box::new(HeapResources::new(capacity)))
}

fn resources() -> &'static mut HeapResources<'static> {
    resources_for(ROOMY)
}

/// The server as a server started with no flags: only the sizes differ.
fn config_for(sizes: Sizes) -> ServerConfig {
    ServerConfig::new(SESSIONS, sizes.max_line)
}

fn default_config() -> ServerConfig {
    config_for(ROOMY)
}

fn reversed(text: &[u8]) -> Vec<u8> {
    text.iter().rev().copied().collect()
}

/// Printable ASCII of `len` bytes, so a reversal is the bytes reversed.
fn random_text(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random_range(b' '..=b'~')).collect()
}

#[test]
fn the_lectures_client_is_answered_by_a_server_with_no_flags() {
    init_log();
    let mut net = Network::new(0, default_config(), resources()).unwrap();
    let client = net.seed_client(&["Hello World!!!", "HAHAHAHAH", "각하 👍🏽"]);
    net.sim
        .run_until(LIMIT, |sim| sim[client].is_done())
        .unwrap();
    let answers = net.sim[client].answers();
    let texts: Vec<_> = answers
        .iter()
        .map(|a| String::from_utf8_lossy(&a.bytes).into_owned())
        .collect();
    assert_eq!(texts, ["!!!dlroW olleH", "HAHAHAHAH", "👍🏽 하각"]);
    for answer in answers {
        // The message reaches the server 2 ms after it is written; the
        // flush waits DEFAULT_IDLE_FLUSH; the answer takes 2 ms back.
        assert_eq!(
            answer.at - answer.sent_at,
            DEFAULT_IDLE_FLUSH + Duration::from_millis(4)
        );
    }
}

#[test]
fn the_lectures_client_over_stormy_links_gets_every_answer_whole() {
    let sweep = Sweep::new(if cfg!(debug_assertions) { 10 } else { 60 }).knob("messages", 1..=20);
    case_sweep!(sweep, |case| {
        init_log();
        let mut net = Network::new(case.seed(), default_config(), resources()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(case.seed());
        let messages: Vec<String> = (0..case.knob("messages"))
            .map(|_| {
                let len = rng.random_range(1..=MAX_LINE);
                String::from_utf8(random_text(&mut rng, len)).unwrap()
            })
            .collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let client = net.seed_client(&refs);
        let port = net.sim[client].host().port().id();
        for direction in [Direction::Tx, Direction::Rx] {
            net.sim.segment().set_faults(port, direction, STORMY);
        }
        net.sim
            .run_until(LIMIT, |sim| sim[client].is_done())
            .unwrap_or_else(|error| panic!("{error}: {:?}", net.sim.segment().stats()));
        for (answer, message) in net.sim[client].answers().iter().zip(&messages) {
            assert_eq!(answer.bytes, reversed(message.as_bytes()));
        }
    });
}

/// The sizes of a sweep over conversations of lines.
#[derive(Debug, Clone, Copy)]
struct Shape {
    conversations: u64,
    lines: u64,
}

impl Shape {
    fn of(case: &reversal_sim::Case) -> Shape {
        Shape {
            conversations: case.knob("conversations"),
            lines: case.knob("lines"),
        }
    }
}

/// A sweep over up to three conversations of up to 60 lines.
fn sweep() -> Sweep {
    Sweep::new(if cfg!(debug_assertions) { 10 } else { 60 })
        .knob("conversations", 1..=3)
        .knob("lines", 1..=60)
}

/// A server with the defaults and `conversations` clients, each on a
/// stormy link of its own, following the scripts `script` makes; returns
/// the simulation and the conversations once every one has ended.
fn stormy_conversations(
    case: &reversal_sim::Case,
    sizes: Sizes,
    mut script: impl FnMut(&mut ChaCha8Rng) -> Script,
) -> (Sim, Vec<(PartyId<ClientParty>, ConversationId)>) {
    init_log();
    let mut sim = case.sim();
    let _pcap = sim.segment().capture_on_failure("write-boundaries");
    let server = ServerParty::new(
        sim.attach(PortConfig::new().latency(Duration::from_millis(1))),
        IpCidr::new(SERVER, 24),
        sim.now(),
        config_for(sizes),
        resources_for(sizes),
    )
    .unwrap();
    sim.add(server);
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed());
    let link = PortConfig::new()
        .latency(Duration::from_millis(1))
        .faults(STORMY);
    let mut talks = Vec::new();
    for n in 0..Shape::of(case).conversations {
        let address = IpCidr::new(IpAddress::v4(10, 0, 0, n as u8 + 2), 24);
        let mut party = ClientParty::new(Host::new(sim.attach(link), &[address], sim.now()));
        let id = party
            .connect((SERVER, 8888), 40_000, script(&mut rng))
            .unwrap();
        talks.push((sim.add(party), id));
    }
    sim.run_until(LIMIT, |sim| {
        talks
            .iter()
            .all(|&(party, id)| sim[party].conversation(id).is_ended())
    })
    .unwrap_or_else(|error| panic!("{error}; {:?}", sim.segment().stats()));
    (sim, talks)
}

/// Lines of up to the longest a server of `sizes` takes, each written
/// whole, in bursts of up to eight with pauses of up to twice the flush
/// delay between bursts: the server sees a line cut by segment boundaries,
/// by loss and by reordering, and pauses mid-line as long as a
/// retransmission takes; every reply must be a whole line's.
fn lines_written_whole(case: &reversal_sim::Case, sizes: Sizes) {
    let shape = Shape::of(case);
    let mut expected = Vec::new();
    let (sim, talks) = stormy_conversations(case, sizes, |rng| {
        let mut script = Script::new();
        let mut replies = Vec::new();
        for n in 0..shape.lines {
            let len = rng.random_range(0..=sizes.max_line);
            let line = random_text(rng, len);
            let mut reply = reversed(&line);
            reply.push(b'\n');
            replies.push(reply);
            script = script.send_line(line);
            if n % 8 == 7 {
                let pause = rng.random_range(0..=2 * DEFAULT_IDLE_FLUSH.total_millis());
                script = script.pause(Duration::from_millis(pause));
            }
        }
        expected.push(replies);
        script.close()
    });
    for ((party, id), expected) in talks.iter().zip(&expected) {
        let conversation = sim[*party].conversation(*id);
        assert_eq!(conversation.error(), None);
        assert!(
            conversation.reply_bytes() == *expected,
            "a reply is not the whole line's: got {:?}",
            conversation.reply_text()
        );
    }
    let stats = sim.segment().stats();
    assert!(shape.lines < 20 || stats.dropped > 0, "no loss: {stats:?}");
}

#[test]
fn lines_written_whole_are_never_split_by_loss_delay_reordering_or_duplication() {
    case_sweep!(sweep(), |case| lines_written_whole(case, ROOMY));
}

#[test]
fn lines_written_whole_to_a_board_sized_server_are_never_split() {
    case_sweep!(sweep(), |case| lines_written_whole(case, BOARD_LIKE));
}

/// A client that writes pieces, each whole in one write after its pause,
/// reads every byte that comes back with the time it came, and
/// half-closes after the last piece.
struct PieceWriter {
    host: Host,
    socket: SocketHandle,
    /// The pause before each piece, and the piece.
    pieces: std::collections::VecDeque<(Duration, Vec<u8>)>,
    /// When the next piece may be written.
    next_at: Option<Instant>,
    received: Vec<u8>,
    /// How many bytes had come by each time something came.
    arrivals: Vec<(Instant, usize)>,
    /// When each piece was written.
    written: Vec<Instant>,
    closed: bool,
}

impl PieceWriter {
    fn connect(net: &mut Network, pieces: Vec<(Duration, Vec<u8>)>) -> PartyId<PieceWriter> {
        let (host, socket) = net.raw_client(16 * 1024, 16 * 1024);
        net.sim.add(PieceWriter {
            host,
            socket,
            pieces: pieces.into(),
            next_at: None,
            received: Vec::new(),
            arrivals: Vec::new(),
            written: Vec::new(),
            closed: false,
        })
    }

    fn is_done(&mut self) -> bool {
        self.closed && !self.host.tcp(self.socket).may_recv()
    }
}

impl reversal_sim::Party for PieceWriter {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        loop {
            let deadline = self.host.poll(now);
            let socket = self.host.tcp(self.socket);
            let mut moved = false;
            while socket.can_recv() {
                let _ = socket.recv(|rx| {
                    self.received.extend_from_slice(rx);
                    (rx.len(), ())
                });
                moved = true;
            }
            if moved {
                self.arrivals.push((now, self.received.len()));
            }
            if socket.may_send() {
                if let Some((pause, piece)) = self.pieces.front() {
                    let at = *self.next_at.get_or_insert(now + *pause);
                    let room = socket.send_capacity() - socket.send_queue();
                    if now >= at && room >= piece.len() {
                        // Fits: checked just above.
                        let _ = socket.send_slice(piece);
                        self.written.push(now);
                        self.pieces.pop_front();
                        self.next_at = None;
                        moved = true;
                    } else if now < at {
                        let deadline = deadline.map_or(at, |d| d.min(at));
                        if !moved {
                            return Some(deadline);
                        }
                    }
                } else if !self.closed && socket.send_queue() == 0 {
                    socket.close();
                    self.closed = true;
                    moved = true;
                }
            }
            if !moved {
                return deadline;
            }
        }
    }
}

/// Whether `output` is what a line written as `pieces` (the last ending
/// with LF) gets when the server answers groups of whole pieces: the
/// reversal of each group in turn, split only where a piece ended.
fn answered_in_whole_pieces(pieces: &[Vec<u8>], output: &[u8]) -> bool {
    (1..=pieces.len()).any(|end| {
        let group: Vec<u8> = pieces[..end].concat();
        if end == pieces.len() {
            let body = &group[..group.len() - 1];
            let mut whole = reversed(body);
            whole.push(b'\n');
            output == whole
        } else {
            let answer = reversed(&group);
            output.starts_with(&answer)
                && answered_in_whole_pieces(&pieces[end..], &output[answer.len()..])
        }
    })
}

/// Lines written in one to four pieces, with pauses shorter and longer than
/// the flush delay between them: whatever the network does, a line is
/// answered in groups of whole pieces, never split inside one.
#[test]
fn a_line_written_in_pieces_is_split_only_where_a_piece_ended() {
    case_sweep!(sweep(), |case| {
        init_log();
        let mut net = Network::new(case.seed(), default_config(), resources()).unwrap();
        let _pcap = net.sim.segment().capture_on_failure("pieces");
        let mut rng = ChaCha8Rng::seed_from_u64(case.seed());
        let mut clients = Vec::new();
        for _ in 0..Shape::of(case).conversations {
            let mut lines = Vec::new();
            let mut steps = Vec::new();
            for _ in 0..Shape::of(case).lines {
                let len = rng.random_range(1..=MAX_LINE);
                let mut line = random_text(&mut rng, len);
                line.push(b'\n');
                let mut cuts: Vec<usize> = (0..rng.random_range(0..=3))
                    .map(|_| rng.random_range(1..line.len().max(2)))
                    .filter(|&cut| cut < line.len())
                    .collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut pieces = Vec::new();
                let mut from = 0;
                for cut in cuts.into_iter().chain([line.len()]) {
                    pieces.push(line[from..cut].to_vec());
                    from = cut;
                }
                for piece in &pieces {
                    let pause = rng.random_range(0..=2 * DEFAULT_IDLE_FLUSH.total_millis());
                    steps.push((Duration::from_millis(pause), piece.clone()));
                }
                lines.push(pieces);
            }
            let client = PieceWriter::connect(&mut net, steps);
            let port = net.sim[client].host.port().id();
            for direction in [Direction::Tx, Direction::Rx] {
                net.sim.segment().set_faults(port, direction, STORMY);
            }
            clients.push((client, lines));
        }
        net.sim
            .run_until(LIMIT, |sim| {
                clients.iter().all(|(client, _)| sim[*client].is_done())
            })
            .unwrap_or_else(|error| panic!("{error}; {:?}", net.sim.segment().stats()));
        for (client, lines) in &clients {
            let received = &net.sim[*client].received;
            let outputs: Vec<&[u8]> = received.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(outputs.len(), lines.len(), "one LF per line");
            for (pieces, output) in lines.iter().zip(outputs) {
                assert!(
                    answered_in_whole_pieces(pieces, output),
                    "{:?} split inside a piece: {:?}",
                    pieces
                        .iter()
                        .map(|p| String::from_utf8_lossy(p))
                        .collect::<Vec<_>>(),
                    String::from_utf8_lossy(output)
                );
            }
        }
    });
}

/// What a client saw that wrote `abc` and, `pause` later, `def` and LF,
/// by the time the second write was answered: the bytes, how many had come
/// by each arrival, and when each write went out.
fn two_writes(pause: Duration) -> (Vec<u8>, Vec<(Instant, usize)>, Vec<Instant>) {
    init_log();
    let mut net = Network::new(0, default_config(), resources()).unwrap();
    let pieces = vec![
        (Duration::ZERO, b"abc".to_vec()),
        (pause, b"def\n".to_vec()),
    ];
    let client = PieceWriter::connect(&mut net, pieces);
    net.sim
        .run_until(LIMIT, |sim| sim[client].received.ends_with(b"\n"))
        .unwrap();
    let writer = &net.sim[client];
    (
        writer.received.clone(),
        writer.arrivals.clone(),
        writer.written.clone(),
    )
}

#[test]
fn a_pause_shorter_than_the_idle_flush_between_writes_keeps_the_line_whole() {
    let pause = DEFAULT_IDLE_FLUSH - Duration::from_millis(1);
    assert_eq!(two_writes(pause).0, b"fedcba\n");
    assert_eq!(two_writes(Duration::ZERO).0, b"fedcba\n");
}

#[test]
fn a_pause_longer_than_the_idle_flush_at_a_write_boundary_ends_a_message() {
    let (received, arrivals, written) = two_writes(DEFAULT_IDLE_FLUSH * 2);
    assert_eq!(received, b"cbafed\n");
    // "abc" is answered, without a terminator, DEFAULT_IDLE_FLUSH after it
    // arrived (2 ms each way), before "def" is written; "def\n" is a line
    // of its own.
    let (first, len) = arrivals[0];
    assert_eq!(&received[..len], b"cba");
    assert_eq!(
        first - written[0],
        DEFAULT_IDLE_FLUSH + Duration::from_millis(4)
    );
    assert!(first < written[1]);
}

/// The client's port, dropping the first frame it transmits that carries
/// data with PSH: the last segment of the first write.
struct DropFirstPush {
    port: Port,
    dropped: bool,
}

/// Whether `frame` is an IPv4 TCP segment with data and PSH.
fn carries_pushed_data(frame: &[u8]) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return false;
    }
    let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else {
        return false;
    };
    if ip.next_header() != IpProtocol::Tcp {
        return false;
    }
    TcpPacket::new_checked(ip.payload()).is_ok_and(|tcp| tcp.psh() && !tcp.payload().is_empty())
}

struct DroppingTx<'a> {
    inner: <Port as Device>::TxToken<'a>,
    dropped: &'a mut bool,
}

impl TxToken for DroppingTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        if !*self.dropped && carries_pushed_data(&frame) {
            *self.dropped = true;
        } else {
            self.inner
                .consume(len, |buffer| buffer.copy_from_slice(&frame));
        }
        result
    }
}

impl Device for DropFirstPush {
    type RxToken<'a> = <Port as Device>::RxToken<'a>;
    type TxToken<'a> = DroppingTx<'a>;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let dropped = &mut self.dropped;
        self.port
            .receive(now)
            .map(|(rx, inner)| (rx, DroppingTx { inner, dropped }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let dropped = &mut self.dropped;
        self.port
            .transmit(now)
            .map(|inner| DroppingTx { inner, dropped })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.port.capabilities()
    }
}

/// A client that writes one message whole as soon as it is connected,
/// through a port that loses the message's last segment once, and reads
/// what comes back.
struct TailLost {
    iface: Interface,
    device: DropFirstPush,
    sockets: SocketSet<'static>,
    socket: SocketHandle,
    message: Vec<u8>,
    written_at: Option<Instant>,
    received: Vec<u8>,
    arrivals: Vec<(Instant, usize)>,
}

impl reversal_sim::Party for TailLost {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        loop {
            self.iface.poll(now, &mut self.device, &mut self.sockets);
            let socket = self.sockets.get_mut::<tcp::Socket>(self.socket);
            let mut moved = false;
            if self.written_at.is_none() && socket.may_send() {
                assert_eq!(socket.send_slice(&self.message), Ok(self.message.len()));
                self.written_at = Some(now);
                moved = true;
            }
            while socket.can_recv() {
                let _ = socket.recv(|rx| {
                    self.received.extend_from_slice(rx);
                    (rx.len(), ())
                });
                self.arrivals.push((now, self.received.len()));
                moved = true;
            }
            if !moved {
                return self.iface.poll_at(now, &self.sockets);
            }
        }
    }
}

/// What a [`TailLost`] client saw.
struct Seen {
    received: Vec<u8>,
    written_at: Instant,
    first_arrival: Instant,
}

/// Writes `message` (longer than a segment) and loses its last segment
/// once; runs until `done` says the client has seen enough.
fn lose_the_tail(message: &[u8], done: impl Fn(&[u8]) -> bool) -> Seen {
    init_log();
    let mut net = Network::new(0, default_config(), resources()).unwrap();
    let _pcap = net.sim.segment().capture_on_failure("tail-lost");
    let server = net.server_endpoint();
    let (mut port, address) = net.attach();
    let mut iface = Interface::new(port.interface_config(), &mut port, net.sim.now());
    iface.update_ip_addrs(|a| a.push(IpCidr::new(address.into(), 24)).unwrap());
    let mut sockets = SocketSet::new(Vec::new());
    let buffer = || tcp::SocketBuffer::new(vec![0; 8192]);
    let socket = sockets.add(tcp::Socket::new(buffer(), buffer()));
    sockets
        .get_mut::<tcp::Socket>(socket)
        .connect(iface.context(), server, 40_000)
        .unwrap();
    let client = net.sim.add(TailLost {
        iface,
        device: DropFirstPush {
            port,
            dropped: false,
        },
        sockets,
        socket,
        message: message.to_vec(),
        written_at: None,
        received: Vec::new(),
        arrivals: Vec::new(),
    });
    net.sim
        .run_until(LIMIT, |sim| done(&sim[client].received))
        .unwrap();
    let client = &net.sim[client];
    assert!(client.device.dropped, "the last segment was lost");
    Seen {
        received: client.received.clone(),
        written_at: client.written_at.unwrap(),
        first_arrival: client.arrivals[0].0,
    }
}

/// A line that spans two segments, written whole.
fn two_segment_text() -> Vec<u8> {
    random_text(&mut ChaCha8Rng::seed_from_u64(1), 1800)
}

#[test]
fn a_line_whose_last_segment_is_lost_waits_for_the_retransmission_whole() {
    let line = two_segment_text();
    let mut written = line.clone();
    written.push(b'\n');
    let seen = lose_the_tail(&written, |received| received.ends_with(b"\n"));
    let mut whole = reversed(&line);
    whole.push(b'\n');
    assert_eq!(seen.received, whole);
    // smoltcp retransmits after its one-second minimum timeout: the first
    // segment sat alone far longer than the flush delay, unanswered.
    assert!(seen.first_arrival - seen.written_at > Duration::from_secs(1));
    assert!(Duration::from_secs(1) > DEFAULT_IDLE_FLUSH * 2);
}

#[test]
fn a_message_whose_last_segment_is_lost_is_answered_whole_after_the_retransmission() {
    let message = two_segment_text();
    let len = message.len();
    let seen = lose_the_tail(&message, |received| received.len() >= len);
    assert_eq!(seen.received, reversed(&message));
    assert!(seen.first_arrival - seen.written_at > Duration::from_secs(1) + DEFAULT_IDLE_FLUSH);
}
