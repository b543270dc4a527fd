//! Scenario support for the reversal server: the core's [`Server`] as a
//! [`Party`], and clients that hold conversations through the core's
//! non-blocking [`LineClient`].
//!
//! - A [`ServerParty`] owns a [`Server`], its smoltcp `Interface` and the
//!   [`Port`] it runs on. Each poll runs the server once, so it answers, and
//!   its timers (idle flush, idle timeout, close timeout) fire, in virtual
//!   time.
//! - A [`ClientParty`] is a [`Host`] with any number of
//!   [`Conversation`]s: one TCP connection each, driven by a [`Script`] of
//!   steps (send bytes, wait, close) while every reply line is collected
//!   with the virtual time it arrived.
//! - A [`Network`] puts the two together: a server and any number of client
//!   hosts on one segment, with helpers to hold a conversation and run
//!   until it has its replies or has ended. Most tests start here.
//!
//! Misbehaving clients (ones that never read, reset, or vanish) are best
//! written with raw smoltcp sockets on a plain [`Host`]
//! ([`Network::raw_client`]).
//!
//! # Example
//!
//! A server with two sessions answers a client that sends two lines, one of
//! them with CR LF, then half-closes.
//!
//! ```
//! use reversal_core::{Capacity, HeapResources, ServerConfig};
//! use reversal_sim::reversal::{ClientParty, Script, ServerParty};
//! use reversal_sim::{Host, PortConfig, Sim};
//! use smoltcp::time::Duration;
//! use smoltcp::wire::{IpAddress, IpCidr};
//!
//! let mut sim = Sim::new(1);
//! // The server borrows its memory for as long as it lives: leak it.
//! let capacity = Capacity::new(2, 1024, 128).with_spare_sockets(1);
//! let resources = Box::leak(Box::new(HeapResources::new(capacity)));
//! let server_address = IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24);
//! let server = ServerParty::new(
//!     sim.attach(PortConfig::default()),
//!     server_address,
//!     sim.now(),
//!     ServerConfig::new(2, 128),
//!     resources,
//! )
//! .unwrap();
//! let server = sim.add(server);
//!
//! let host = Host::new(
//!     sim.attach(PortConfig::default()),
//!     &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)],
//!     sim.now(),
//! );
//! let mut client = ClientParty::new(host);
//! let script = Script::new().send_line("hello").send("각👍🏽\r\n").close();
//! let talk = client.connect((server_address.address(), 8888), 40_000, script).unwrap();
//! let client = sim.add(client);
//!
//! sim.run_until(Duration::from_secs(10), |sim| sim[client].conversation(talk).is_ended())
//!     .unwrap();
//! let talk = sim[client].conversation(talk);
//! assert_eq!(talk.reply_text(), ["olleh\n", "👍🏽각\r\n"]);
//! assert!(!talk.was_reset());
//! assert_eq!(sim[server].counters().lines, 2);
//! ```

use core::fmt;
use std::collections::VecDeque;

use reversal_core::client::{ConnectError, LineClient, RecvError, SendError};
use reversal_core::server::ConfigError;
use reversal_core::{Counters, Server, ServerConfig, ServerResources};
use smoltcp::iface::{Interface, SocketHandle};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpCidr, IpEndpoint, Ipv4Address};

use crate::capture::FailureCapture;
use crate::host::Host;
use crate::segment::{Port, PortConfig};
use crate::sim::{Party, PartyId, Sim};

/// The longest reply line a [`Conversation`] can collect, terminator
/// included.
pub const REPLY_CAPACITY: usize = 4096;

/// Receive and send buffer size of each conversation's TCP socket.
pub const CONVERSATION_BUFFER: usize = 16 * 1024;

/// Rounds of "poll the interface, advance the conversations" in one
/// [`ClientParty`] poll before it yields and asks to be polled again.
const MAX_CLIENT_ROUNDS: usize = 64;

/// The reversal [`Server`] on a [`Port`] of its own, as a [`Party`].
///
/// See the [module example](self).
pub struct ServerParty {
    server: Server<'static>,
    iface: Interface,
    port: Port,
}

impl ServerParty {
    /// A server with `config` on `port`, at `address`, its interface created
    /// at `now` from [`Port::interface_config`].
    ///
    /// The resources are borrowed for the server's whole life; in a test,
    /// `Box::leak(Box::new(HeapResources::new(capacity)))` gives them that
    /// life.
    ///
    /// # Errors
    ///
    /// When `config` does not fit the resources, as [`Server::new`].
    pub fn new(
        mut port: Port,
        address: IpCidr,
        now: Instant,
        config: ServerConfig,
        resources: impl Into<ServerResources<'static>>,
    ) -> Result<Self, ConfigError> {
        let server = Server::new(config, resources)?;
        let mut iface = Interface::new(port.interface_config(), &mut port, now);
        iface.update_ip_addrs(|addresses| {
            addresses
                .push(address)
                .expect("an interface holds at least one address");
        });
        Ok(ServerParty {
            server,
            iface,
            port,
        })
    }

    /// The server.
    pub fn server(&self) -> &Server<'static> {
        &self.server
    }

    /// The server, e.g. to shut it down.
    pub fn server_mut(&mut self) -> &mut Server<'static> {
        &mut self.server
    }

    /// What the server has done so far; shorthand for
    /// `server().counters()`.
    pub fn counters(&self) -> Counters {
        self.server.counters()
    }

    /// The server's port.
    pub fn port(&self) -> &Port {
        &self.port
    }
}

impl Party for ServerParty {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.server.poll(now, &mut self.iface, &mut self.port)
    }
}

impl fmt::Debug for ServerParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerParty")
            .field("server", &self.server)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// One thing a [`Conversation`] does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Send(Vec<u8>),
    WaitAcked,
    Pause(Duration),
    AwaitReplies(usize),
    Close,
}

/// What a [`Conversation`] does, step by step; each step starts when the
/// one before it is done. Replies are read all along, whatever the step.
///
/// ```
/// use reversal_sim::reversal::Script;
/// use smoltcp::time::Duration;
///
/// // A seed-style client: a message without newline, then wait for the
/// // answer; then a line sent in two segments a second apart.
/// let script = Script::new()
///     .send("hello")
///     .await_replies(1)
///     .send("wor")
///     .pause(Duration::from_secs(1))
///     .send_line("ld")
///     .close();
/// # let _ = script;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    steps: Vec<Step>,
}

impl Script {
    /// An empty script: connect and read replies, nothing more.
    pub fn new() -> Script {
        Script::default()
    }

    /// Sends `bytes` as they are, as fast as the socket takes them.
    ///
    /// The client socket has Nagle's algorithm off, so bytes sent in a poll
    /// of their own (after a [`pause`](Script::pause) or
    /// [`wait_acked`](Script::wait_acked)) leave in a segment of their own.
    pub fn send(mut self, bytes: impl AsRef<[u8]>) -> Script {
        self.steps.push(Step::Send(bytes.as_ref().to_vec()));
        self
    }

    /// Sends `line` followed by LF.
    pub fn send_line(self, line: impl AsRef<[u8]>) -> Script {
        let mut bytes = line.as_ref().to_vec();
        bytes.push(b'\n');
        self.send(bytes)
    }

    /// Waits until the server has acknowledged every byte sent so far, so
    /// that what is sent next starts a new segment.
    pub fn wait_acked(mut self) -> Script {
        self.steps.push(Step::WaitAcked);
        self
    }

    /// Waits `duration` of virtual time.
    pub fn pause(mut self, duration: Duration) -> Script {
        self.steps.push(Step::Pause(duration));
        self
    }

    /// Waits until `total` replies have arrived since the connection opened.
    pub fn await_replies(mut self, total: usize) -> Script {
        self.steps.push(Step::AwaitReplies(total));
        self
    }

    /// Half-closes the connection (FIN); replies are still read.
    pub fn close(mut self) -> Script {
        self.steps.push(Step::Close);
        self
    }
}

/// One reply line as the client received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The line with its terminator, or without one if the server closed
    /// after it.
    pub bytes: Vec<u8>,
    /// Virtual time when the client read it (at once, when it arrived).
    pub at: Instant,
}

/// Why a [`Conversation`] stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationError {
    /// The connection was refused or reset before it was established.
    Connect(ConnectError),
    /// Sending failed.
    Send(SendError),
    /// Reading a reply failed (other than the server closing).
    Recv(RecvError),
}

impl fmt::Display for ConversationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConversationError::Connect(error) => write!(f, "connect: {error}"),
            ConversationError::Send(error) => write!(f, "send: {error}"),
            ConversationError::Recv(error) => write!(f, "receive: {error}"),
        }
    }
}

impl std::error::Error for ConversationError {}

/// One TCP connection of a [`ClientParty`]: a [`LineClient`] following a
/// [`Script`], with every reply it received.
///
/// When the server closes its side and every reply is read, the
/// conversation has ended: it closes its own side too, as `nc` does.
#[derive(Debug)]
pub struct Conversation {
    client: LineClient<REPLY_CAPACITY>,
    steps: VecDeque<Step>,
    /// Bytes of the current `Send` step already handed to the socket.
    sent: usize,
    /// When the current `Pause` step ends.
    resume_at: Option<Instant>,
    started_at: Option<Instant>,
    connected_at: Option<Instant>,
    replies: Vec<Reply>,
    ended_at: Option<Instant>,
    reset: bool,
    error: Option<ConversationError>,
}

impl Conversation {
    fn new(client: LineClient<REPLY_CAPACITY>, script: Script) -> Conversation {
        Conversation {
            client,
            steps: script.steps.into(),
            sent: 0,
            resume_at: None,
            started_at: None,
            connected_at: None,
            replies: Vec::new(),
            ended_at: None,
            reset: false,
            error: None,
        }
    }

    /// The TCP socket on the party's host.
    pub fn handle(&self) -> SocketHandle {
        self.client.handle()
    }

    /// Every reply so far, in order.
    pub fn replies(&self) -> &[Reply] {
        &self.replies
    }

    /// The replies' bytes, in order.
    pub fn reply_bytes(&self) -> Vec<&[u8]> {
        self.replies.iter().map(|reply| &reply.bytes[..]).collect()
    }

    /// The replies as text, invalid UTF-8 replaced (for readable
    /// assertions; compare [`reply_bytes`](Conversation::reply_bytes) where
    /// bytes matter).
    pub fn reply_text(&self) -> Vec<String> {
        self.replies
            .iter()
            .map(|reply| String::from_utf8_lossy(&reply.bytes).into_owned())
            .collect()
    }

    /// Virtual time of the conversation's first poll, when it began to
    /// connect.
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }

    /// Virtual time the connection was seen established.
    pub fn connected_at(&self) -> Option<Instant> {
        self.connected_at
    }

    /// Virtual time the conversation ended: the server closed (or reset)
    /// the connection and every reply was read, or it failed.
    pub fn ended_at(&self) -> Option<Instant> {
        self.ended_at
    }

    /// Whether the conversation has ended.
    pub fn is_ended(&self) -> bool {
        self.ended_at.is_some()
    }

    /// Whether the connection ended with a reset (or a TCP timeout) rather
    /// than the server's FIN.
    pub fn was_reset(&self) -> bool {
        self.reset
    }

    /// Whether every step of the script is done.
    pub fn script_done(&self) -> bool {
        self.steps.is_empty()
    }

    /// Why the conversation stopped early, if it did.
    pub fn error(&self) -> Option<ConversationError> {
        self.error
    }

    /// Reads what arrived and runs the script as far as it can now.
    /// Returns whether anything moved, and when the script next needs time.
    fn advance(
        &mut self,
        host: &mut Host,
        now: Instant,
        buffer: &mut [u8],
    ) -> (bool, Option<Instant>) {
        self.started_at.get_or_insert(now);
        if self.ended_at.is_some() {
            return (false, None);
        }
        let mut moved = self.check_connection(host, now);
        moved |= self.read_replies(host, now, buffer);
        if self.ended_at.is_some() {
            return (true, None);
        }
        while let Some(step) = self.steps.front() {
            let done = match step {
                Step::Send(bytes) => {
                    match self.client.send(host.sockets(), &bytes[self.sent..]) {
                        Ok(n) => {
                            self.sent += n;
                            moved |= n > 0;
                        }
                        Err(nb::Error::WouldBlock) => {}
                        Err(nb::Error::Other(error)) => {
                            self.fail(ConversationError::Send(error), now);
                            return (true, None);
                        }
                    }
                    self.sent == bytes.len()
                }
                Step::WaitAcked => host.tcp(self.handle()).send_queue() == 0,
                Step::Pause(duration) => {
                    let resume_at = *self.resume_at.get_or_insert(now + *duration);
                    if now < resume_at {
                        return (moved, Some(resume_at));
                    }
                    true
                }
                Step::AwaitReplies(total) => self.replies.len() >= *total,
                // Waits until everything sent is acknowledged, then sends FIN.
                Step::Close => self.client.close(host.sockets()).is_ok(),
            };
            if !done {
                break;
            }
            self.steps.pop_front();
            self.sent = 0;
            self.resume_at = None;
            moved = true;
        }
        (moved, None)
    }

    fn check_connection(&mut self, host: &mut Host, now: Instant) -> bool {
        if self.connected_at.is_some() {
            return false;
        }
        match self.client.is_connected(host.sockets()) {
            Ok(()) => {
                self.connected_at = Some(now);
                true
            }
            Err(nb::Error::WouldBlock) => false,
            Err(nb::Error::Other(error)) => {
                self.reset = true;
                self.fail(ConversationError::Connect(error), now);
                true
            }
        }
    }

    fn read_replies(&mut self, host: &mut Host, now: Instant, buffer: &mut [u8]) -> bool {
        if self.connected_at.is_none() {
            return false;
        }
        let mut moved = false;
        loop {
            match self.client.recv_line(host.sockets(), buffer) {
                Ok(len) => {
                    self.replies.push(Reply {
                        bytes: buffer[..len].to_vec(),
                        at: now,
                    });
                    moved = true;
                }
                Err(nb::Error::WouldBlock) => return moved,
                Err(nb::Error::Other(RecvError::Closed)) => {
                    // Right after a FIN the socket is still in CLOSE-WAIT,
                    // TIME-WAIT or CLOSING; only a reset or timeout leaves
                    // it CLOSED at once.
                    let socket = host.tcp(self.handle());
                    self.reset = socket.state() == tcp::State::Closed;
                    socket.close();
                    self.ended_at = Some(now);
                    return true;
                }
                Err(nb::Error::Other(error)) => {
                    self.fail(ConversationError::Recv(error), now);
                    return true;
                }
            }
        }
    }

    fn fail(&mut self, error: ConversationError, now: Instant) {
        self.error = Some(error);
        self.ended_at = Some(now);
    }
}

/// Identifies a [`Conversation`] of a [`ClientParty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationId(usize);

/// A [`Host`] holding scripted [`Conversation`]s with a server, as a
/// [`Party`].
///
/// Each poll runs the host's interface and every conversation until
/// nothing more moves at that instant, so a reply is read (and timed) as
/// soon as it arrives. See the [module example](self).
pub struct ClientParty {
    host: Host,
    conversations: Vec<Conversation>,
    reply_buffer: Vec<u8>,
}

impl ClientParty {
    /// A party for `host`, with no conversation yet.
    pub fn new(host: Host) -> ClientParty {
        ClientParty {
            host,
            conversations: Vec::new(),
            reply_buffer: vec![0; REPLY_CAPACITY],
        }
    }

    /// Opens a connection from `local_port` to `server` on a new socket
    /// (buffers of [`CONVERSATION_BUFFER`] bytes, Nagle off) and starts
    /// `script` on it at the next poll.
    ///
    /// # Errors
    ///
    /// As [`tcp::Socket::connect`]: an unusable endpoint or local port.
    pub fn connect(
        &mut self,
        server: impl Into<IpEndpoint>,
        local_port: u16,
        script: Script,
    ) -> Result<ConversationId, tcp::ConnectError> {
        let handle = self
            .host
            .add_tcp_socket(CONVERSATION_BUFFER, CONVERSATION_BUFFER);
        self.host.tcp(handle).set_nagle_enabled(false);
        self.host.tcp_connect(handle, server, local_port)?;
        self.conversations
            .push(Conversation::new(LineClient::new(handle), script));
        Ok(ConversationId(self.conversations.len() - 1))
    }

    /// Appends `script`'s steps to those a conversation has yet to do, e.g.
    /// to close it once the test has seen enough.
    ///
    /// # Panics
    ///
    /// If `id` comes from another party.
    pub fn continue_with(&mut self, id: ConversationId, script: Script) {
        self.conversations[id.0].steps.extend(script.steps);
    }

    /// A conversation.
    ///
    /// # Panics
    ///
    /// If `id` comes from another party.
    pub fn conversation(&self, id: ConversationId) -> &Conversation {
        &self.conversations[id.0]
    }

    /// Every conversation, in the order they were opened.
    pub fn conversations(&self) -> &[Conversation] {
        &self.conversations
    }

    /// Whether every conversation has ended.
    pub fn all_ended(&self) -> bool {
        self.conversations.iter().all(Conversation::is_ended)
    }

    /// The host, e.g. to add sockets of its own.
    pub fn host(&mut self) -> &mut Host {
        &mut self.host
    }
}

impl Party for ClientParty {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        for _ in 0..MAX_CLIENT_ROUNDS {
            // Running the interface last in a round that moved nothing means
            // nothing it received is left unread.
            let interface_deadline = self.host.poll(now);
            let mut moved = false;
            let mut next = interface_deadline;
            for conversation in &mut self.conversations {
                let (progress, deadline) =
                    conversation.advance(&mut self.host, now, &mut self.reply_buffer);
                moved |= progress;
                next = earliest(next, deadline);
            }
            if !moved {
                return next;
            }
        }
        Some(now)
    }
}

impl fmt::Debug for ClientParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientParty")
            .field("host", &self.host)
            .field("conversations", &self.conversations)
            .finish_non_exhaustive()
    }
}

/// Latency of every cable of a [`Network`].
const CABLE_LATENCY: Duration = Duration::from_millis(1);

/// The local port of the connection each [`Network`] client host opens.
const CLIENT_PORT: u16 = 40_000;

/// The [`Network`] server's address; clients count up from it.
const SERVER_ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

/// A conversation in a [`Network`]: the client party that holds it, and
/// its id there.
#[derive(Debug, Clone, Copy)]
pub struct Talk {
    /// The client party, a host of its own.
    pub party: PartyId<ClientParty>,
    /// The conversation within the party.
    pub id: ConversationId,
}

/// A reversal server and its client hosts on one simulated segment, with
/// helpers to run scripted conversations: the fixture of whole-stack tests.
///
/// - The server, a [`ServerParty`], is at 10.0.0.1/24; each client host
///   gets the next address (10.0.0.2, 10.0.0.3, ...) on a port of its own.
/// - Every port is a clean cable with 1 ms of latency, so a round trip
///   between a client and the server takes 4 ms (two cables each way).
///   Faults are set on the segment, `sim.segment()`.
/// - The segment keeps a capture from the start. If the thread panics (a
///   test fails) while the network lives, the capture is written to
///   `target/sim-failures/`, named after the thread: libtest names each
///   test's thread after the test.
///
/// The simulation is a public field, to run it for a while, reach the
/// parties (`net.sim[talk.party]`, `net.sim[net.server()]`) and add
/// clients of other kinds.
///
/// # Example
///
/// Two clients, one of which closes while the other stays, and what the
/// server counted.
///
/// ```
/// use reversal_core::{Capacity, HeapResources, ServerConfig};
/// use reversal_sim::reversal::{Network, Script};
/// use smoltcp::time::Duration;
///
/// // The server borrows its memory for as long as it lives: leak it.
/// let capacity = Capacity::new(2, 1024, 128).with_spare_sockets(1);
/// let resources = Box::leak(Box::new(HeapResources::new(capacity)));
/// let mut net = Network::new(0, ServerConfig::new(2, 128), resources).unwrap();
///
/// let closing = net.talk(Script::new().send_line("hello").close());
/// let staying = net.talk(Script::new().send_line("abc"));
/// let conversation = net.run_until_ended(closing, Duration::from_secs(10));
/// assert_eq!(conversation.reply_text(), ["olleh\n"]);
/// assert!(!conversation.was_reset(), "the server closed with a FIN");
///
/// let conversation = net.run_until_replies(staying, 1, Duration::from_secs(10));
/// assert_eq!(conversation.reply_text(), ["cba\n"]);
/// assert!(!conversation.is_ended());
/// assert_eq!(net.sim[net.server()].counters().lines, 2);
/// ```
pub struct Network {
    /// The simulation: run it, reach its parties, read or change its
    /// segment.
    pub sim: Sim,
    server: PartyId<ServerParty>,
    /// The last octet of the latest address handed out.
    last_octet: u8,
    _capture: FailureCapture,
}

impl Network {
    /// A segment with faults drawn from `seed` and a server with `config`
    /// on it, at virtual time zero; no client yet.
    ///
    /// The resources are borrowed for the server's whole life; in a test,
    /// `Box::leak(Box::new(HeapResources::new(capacity)))` gives them that
    /// life.
    ///
    /// # Errors
    ///
    /// When `config` does not fit the resources, as [`Server::new`].
    pub fn new(
        seed: u64,
        config: ServerConfig,
        resources: impl Into<ServerResources<'static>>,
    ) -> Result<Self, ConfigError> {
        let mut sim = Sim::new(seed);
        let thread = std::thread::current();
        let capture = sim
            .segment()
            .capture_on_failure(thread.name().unwrap_or("reversal-network"));
        let server = ServerParty::new(
            sim.attach(Self::cable()),
            IpCidr::new(SERVER_ADDRESS.into(), 24),
            sim.now(),
            config,
            resources,
        )?;
        let server = sim.add(server);
        Ok(Network {
            sim,
            server,
            last_octet: SERVER_ADDRESS.octets()[3],
            _capture: capture,
        })
    }

    fn cable() -> PortConfig {
        PortConfig {
            latency: CABLE_LATENCY,
            ..PortConfig::default()
        }
    }

    /// The server party: `net.sim[net.server()]`.
    pub fn server(&self) -> PartyId<ServerParty> {
        self.server
    }

    /// The server's address, 10.0.0.1.
    pub fn server_address(&self) -> Ipv4Address {
        SERVER_ADDRESS
    }

    /// Where the server listens for TCP: its address and configured port.
    pub fn server_endpoint(&self) -> IpEndpoint {
        let port = self.sim[self.server].server().config().port;
        (SERVER_ADDRESS, port).into()
    }

    /// Attaches a port for one more client, on a cable like every other,
    /// and hands out the next address, for clients made frame by frame.
    ///
    /// # Panics
    ///
    /// When the /24 has no address left, after 253 clients.
    pub fn attach(&mut self) -> (Port, Ipv4Address) {
        assert!(self.last_octet < 254, "no address left in 10.0.0.0/24");
        self.last_octet += 1;
        let [a, b, c, _] = SERVER_ADDRESS.octets();
        let address = Ipv4Address::new(a, b, c, self.last_octet);
        (self.sim.attach(Self::cable()), address)
    }

    /// The address of the latest client port ([`attach`](Network::attach),
    /// [`host`](Network::host), [`talk`](Network::talk), ...), if there is
    /// one.
    pub fn last_host_address(&self) -> Option<Ipv4Address> {
        let [a, b, c, server] = SERVER_ADDRESS.octets();
        (self.last_octet > server).then(|| Ipv4Address::new(a, b, c, self.last_octet))
    }

    /// A new client host on a port of its own, not yet added to the
    /// simulation.
    ///
    /// # Panics
    ///
    /// As [`attach`](Network::attach).
    pub fn host(&mut self) -> Host {
        let (port, address) = self.attach();
        Host::new(port, &[IpCidr::new(address.into(), 24)], self.sim.now())
    }

    /// A new client host with one TCP socket (buffers of `rx_len` and
    /// `tx_len` bytes) connecting to the server, for clients that do not
    /// follow a [`Script`]. The handshake starts when the host is first
    /// polled: add it to the simulation, in a party of its own or as it
    /// is.
    ///
    /// # Panics
    ///
    /// As [`attach`](Network::attach).
    pub fn raw_client(&mut self, rx_len: usize, tx_len: usize) -> (Host, SocketHandle) {
        let server = self.server_endpoint();
        let mut host = self.host();
        let socket = host.add_tcp_socket(rx_len, tx_len);
        host.tcp_connect(socket, server, CLIENT_PORT)
            .expect("a fresh socket connects to the server's endpoint");
        (host, socket)
    }

    /// A new client host holding one conversation with the server that
    /// follows `script`, added to the simulation.
    ///
    /// # Panics
    ///
    /// As [`attach`](Network::attach).
    pub fn talk(&mut self, script: Script) -> Talk {
        let server = self.server_endpoint();
        let mut party = ClientParty::new(self.host());
        let id = party
            .connect(server, CLIENT_PORT, script)
            .expect("a fresh socket connects to the server's endpoint");
        Talk {
            party: self.sim.add(party),
            id,
        }
    }

    /// The conversation so far.
    pub fn conversation(&self, talk: Talk) -> &Conversation {
        self.sim[talk.party].conversation(talk.id)
    }

    /// Appends `script`'s steps to those the conversation has yet to do,
    /// as [`ClientParty::continue_with`].
    pub fn continue_with(&mut self, talk: Talk, script: Script) {
        self.sim[talk.party].continue_with(talk.id, script);
    }

    /// Runs until the conversation has at least `count` replies or has
    /// ended, for at most `limit` of virtual time, and returns it.
    ///
    /// # Panics
    ///
    /// When the run stops first, with its [`RunError`](crate::RunError),
    /// which names the seed.
    pub fn run_until_replies(
        &mut self,
        talk: Talk,
        count: usize,
        limit: Duration,
    ) -> &Conversation {
        let result = self.sim.run_until(limit, |sim| {
            let conversation = sim[talk.party].conversation(talk.id);
            conversation.replies().len() >= count || conversation.is_ended()
        });
        if let Err(error) = result {
            panic!("waiting for {count} replies: {error}");
        }
        self.conversation(talk)
    }

    /// Runs until the conversation has ended, for at most `limit` of
    /// virtual time, and returns it.
    ///
    /// # Panics
    ///
    /// When the run stops first, with its [`RunError`](crate::RunError),
    /// which names the seed.
    pub fn run_until_ended(&mut self, talk: Talk, limit: Duration) -> &Conversation {
        let result = self.sim.run_until(limit, |sim| {
            sim[talk.party].conversation(talk.id).is_ended()
        });
        if let Err(error) = result {
            panic!("waiting for the conversation to end: {error}");
        }
        self.conversation(talk)
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("sim", &self.sim)
            .field("server", &self.server)
            .field("last_host_address", &self.last_host_address())
            .finish_non_exhaustive()
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::PortConfig;
    use crate::sim::{PartyId, Sim};
    use reversal_core::client::ConnectError;
    use reversal_core::{Capacity, HeapResources};
    use smoltcp::wire::IpAddress;

    const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);

    fn cidr(last_octet: u8) -> IpCidr {
        IpCidr::new(IpAddress::v4(10, 0, 0, last_octet), 24)
    }

    /// Memory for two sessions and one busy socket.
    fn small_resources() -> &'static mut HeapResources<'static> {
        let capacity = Capacity::new(2, 512, 64).with_spare_sockets(1);
        Box::leak(Box::new(HeapResources::new(capacity)))
    }

    /// A server with two sessions and a client party with one
    /// conversation to `port` following `script`.
    fn talk(port: u16, script: Script) -> (Sim, PartyId<ClientParty>, ConversationId) {
        let mut sim = Sim::new(0);
        let resources = small_resources();
        let server = ServerParty::new(
            sim.attach(PortConfig::default()),
            cidr(1),
            sim.now(),
            ServerConfig::new(2, 64),
            resources,
        )
        .unwrap();
        sim.add(server);
        let host = Host::new(sim.attach(PortConfig::default()), &[cidr(2)], sim.now());
        let mut client = ClientParty::new(host);
        let id = client.connect((SERVER, port), 40_000, script).unwrap();
        let client = sim.add(client);
        (sim, client, id)
    }

    #[test]
    fn network_clients_get_the_addresses_after_the_server_in_order() {
        let resources = small_resources();
        let mut net = Network::new(0, ServerConfig::new(2, 64), resources).unwrap();
        assert_eq!(net.last_host_address(), None);
        let (_, first) = net.attach();
        assert_eq!(first, Ipv4Address::new(10, 0, 0, 2));
        net.host();
        assert_eq!(net.last_host_address(), Some(Ipv4Address::new(10, 0, 0, 3)));
    }

    #[test]
    fn a_pause_holds_back_the_steps_after_it() {
        let script = Script::new()
            .send_line("a")
            .pause(Duration::from_secs(2))
            .send_line("b");
        let (mut sim, client, id) = talk(8888, script);
        sim.run_until(Duration::from_secs(10), |sim| {
            sim[client].conversation(id).replies().len() == 2
        })
        .unwrap();
        let replies = sim[client].conversation(id).replies();
        assert!(replies[1].at - replies[0].at >= Duration::from_secs(2));
    }

    #[test]
    fn a_refused_connection_ends_the_conversation_with_an_error() {
        let (mut sim, client, id) = talk(9, Script::new().send_line("anyone?"));
        sim.run_until(Duration::from_secs(10), |sim| {
            sim[client].conversation(id).is_ended()
        })
        .unwrap();
        let conversation = sim[client].conversation(id);
        assert_eq!(
            conversation.error(),
            Some(ConversationError::Connect(ConnectError::Refused))
        );
        assert!(conversation.was_reset());
    }

    #[test]
    fn continue_with_adds_steps_to_an_open_conversation() {
        let (mut sim, client, id) = talk(8888, Script::new().send_line("ab"));
        sim.run_until(Duration::from_secs(10), |sim| {
            !sim[client].conversation(id).replies().is_empty()
        })
        .unwrap();
        assert!(sim[client].conversation(id).script_done());
        sim[client].continue_with(id, Script::new().send("cd").close());
        sim.run_until(Duration::from_secs(10), |sim| sim[client].all_ended())
            .unwrap();
        let conversation = sim[client].conversation(id);
        assert_eq!(conversation.reply_text(), ["ba\n", "dc"]);
        assert!(!conversation.was_reset());
    }
}
