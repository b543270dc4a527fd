//! The smoltcp glue: session sockets, busy sockets and a UDP socket.
//!
//! All memory comes from a [`ServerResources`] the caller owns (usually a
//! `static`); nothing is allocated and nothing grows. The server owns its
//! `SocketSet`; the caller owns the `Interface` and the `Device` and hands
//! them to [`Server::poll`], which moves bytes and returns when it next needs
//! to run, so a host sleeps on that deadline and a board on a timer.

use core::fmt;

use smoltcp::iface::{
    Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::phy::Device;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use crate::datagram::{self, Answer};
use crate::fmt::{net_debug, net_info, net_warn};
use crate::reply::{ErrorCode, ErrorReply, MAX_ERROR_REPLY};
use crate::session::{self, Finish, Session, SessionConfig, SessionStats};
use crate::syn_guard::{HeldBy, SynGuard};

mod caller_sockets;

/// Datagrams each UDP buffer can hold at once.
pub const UDP_PACKETS: usize = 8;
/// Most sockets answering `ERR busy` at once. smoltcp has no listen
/// backlog, so while one is still closing a rejection, a further SYN needs
/// another listening socket or it is reset. Socket slots beyond
/// `SESSIONS + 2` become busy sockets, up to this many.
pub const BUSY_SOCKETS: usize = 4;
/// Receive window of a busy socket: it reads nothing, it only says no.
const BUSY_RX: usize = 64;
/// How long a rejected client may keep a busy socket after its `ERR busy`.
const BUSY_LINGER: Duration = Duration::from_secs(1);
/// Rounds of receive/answer/transmit in one [`Server::poll`] before it yields.
pub const MAX_ROUNDS: usize = 16;
/// Frames taken in per round, so a flood cannot keep the answers waiting.
const MAX_INGRESS: usize = 64;
/// Keep-alive interval of a session while replies are unacknowledged; see
/// [`probe_while_unacknowledged`].
const STALL_PROBE: Duration = Duration::from_secs(1);

/// How the server listens and behaves.
///
/// ```
/// use reversal_core::ServerConfig;
///
/// let config = ServerConfig { port: 7, udp_port: None, ..ServerConfig::new(4, 512) };
/// assert_eq!(config.session.max_line, 512);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerConfig {
    /// TCP port (default 8888).
    pub port: u16,
    /// UDP port (default: the TCP port); `None` switches UDP off.
    pub udp_port: Option<u16>,
    /// Concurrent sessions served; at most the resources' `SESSIONS`.
    pub sessions: usize,
    /// Behaviour of every session.
    pub session: SessionConfig,
    /// Handshake timeout (smoltcp's TCP timeout on a listening socket): a
    /// half-open connection that goes silent this long loses its slot. Open
    /// sessions are not subject to it (smoltcp's zero-window probes back off
    /// past any short timeout); a dead peer there is found by the idle timeout.
    pub tcp_timeout: Duration,
    /// Once the server has sent its FIN, how long the peer has to finish the
    /// close before the socket is reset and reused; also how long an idle
    /// session gets to deliver its `ERR idle-timeout`. While other replies
    /// are still unacknowledged the idle timeout applies instead, counted
    /// from the last reply the peer acknowledged.
    pub close_timeout: Duration,
    /// Socket slots kept for the caller's own sockets (a DHCP client, DNS),
    /// added with [`Server::add_socket`]; default 0.
    pub caller_sockets: usize,
}

/// The port the seed's `thread_server` uses.
pub const DEFAULT_PORT: u16 = 8888;

impl ServerConfig {
    /// Port 8888 for TCP and UDP, `sessions` sessions with lines up to
    /// `max_line` bytes, a 10 s handshake timeout and a 30 s close timeout
    /// (room for three backed-off retransmissions of a lost FIN).
    ///
    /// ```
    /// let config = reversal_core::ServerConfig::new(3, 512);
    /// assert_eq!((config.port, config.udp_port), (8888, Some(8888)));
    /// ```
    pub const fn new(sessions: usize, max_line: usize) -> Self {
        ServerConfig {
            port: DEFAULT_PORT,
            udp_port: Some(DEFAULT_PORT),
            sessions,
            session: SessionConfig::new(max_line),
            tcp_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(30),
            caller_sockets: 0,
        }
    }
}

/// A server configuration that does not fit the resources or cannot work.
///
/// ```
/// use reversal_core::server::ConfigError;
/// assert!(ConfigError::Sessions { max: 4 }.to_string().contains("1 to 4"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// A port is 0.
    Port,
    /// `sessions` is 0 or more than the resources hold.
    Sessions {
        /// The most sessions these resources can serve.
        max: usize,
    },
    /// The session configuration does not fit the line buffer.
    Session(session::ConfigError),
    /// The send buffer cannot hold the largest reply.
    SendBuffer {
        /// Bytes the largest reply needs.
        needed: usize,
        /// The send buffer size (`TX`).
        capacity: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Port => f.write_str("port 0 is not a port a client can reach"),
            ConfigError::Sessions { max } => write!(f, "sessions must be 1 to {max}"),
            ConfigError::Session(e) => e.fmt(f),
            ConfigError::SendBuffer { needed, capacity } => write!(
                f,
                "send buffer of {capacity} bytes cannot hold a reply of {needed} bytes: lower the maximum line length"
            ),
        }
    }
}

impl From<session::ConfigError> for ConfigError {
    fn from(e: session::ConfigError) -> Self {
        ConfigError::Session(e)
    }
}

/// Error replies sent, by code.
///
/// ```
/// let errors = reversal_core::server::ErrorCounts::default();
/// assert_eq!(errors.busy, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorCounts {
    /// `ERR too-long` (TCP and UDP).
    pub too_long: u64,
    /// `ERR utf8` (TCP and UDP).
    pub utf8: u64,
    /// `ERR busy`: connections rejected because every session was taken.
    pub busy: u64,
    /// Sessions closed by the idle timeout.
    pub idle_timeout: u64,
}

/// What the server has done since it started.
///
/// ```
/// let counters = reversal_core::Counters::default();
/// assert!(counters.to_string().contains("connections 0"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// TCP sessions opened.
    pub connections: u64,
    /// Messages answered over TCP (reversals and errors).
    pub lines: u64,
    /// Bytes read from TCP clients.
    pub bytes_in: u64,
    /// Reply bytes queued to TCP clients.
    pub bytes_out: u64,
    /// Error replies by code.
    pub errors: ErrorCounts,
    /// UDP datagrams answered or dropped.
    pub udp_datagrams: u64,
    /// UDP datagrams not answered (an error larger than the datagram, or no route).
    pub udp_dropped: u64,
}

impl ErrorCounts {
    fn count(&mut self, code: ErrorCode) {
        match code {
            ErrorCode::TooLong => self.too_long += 1,
            ErrorCode::Utf8 => self.utf8 += 1,
            ErrorCode::Busy => self.busy += 1,
            ErrorCode::IdleTimeout => self.idle_timeout += 1,
        }
    }
}

impl Counters {
    fn add_session(&mut self, stats: &SessionStats) {
        self.lines += stats.lines;
        self.bytes_in += stats.bytes_in;
        self.bytes_out += stats.bytes_out;
        self.errors.too_long += stats.too_long;
        self.errors.utf8 += stats.utf8;
        self.errors.idle_timeout += stats.idle_timeouts;
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.errors;
        write!(
            f,
            "connections {}, lines {}, bytes in {}, bytes out {}, errors too-long {} utf8 {} busy {} idle-timeout {}, udp datagrams {} dropped {}",
            self.connections,
            self.lines,
            self.bytes_in,
            self.bytes_out,
            e.too_long,
            e.utf8,
            e.busy,
            e.idle_timeout,
            self.udp_datagrams,
            self.udp_dropped
        )
    }
}

/// Why a session ended, for the close log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum CloseReason {
    EndOfInput,
    IdleTimeout,
    Shutdown,
    /// The connection went away under us (reset, or the TCP timeout).
    Lost,
    /// The peer did not finish the close within the close timeout.
    Abandoned,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::EndOfInput => "end of input",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Lost => "connection lost",
            CloseReason::Abandoned => "close not completed in time",
        })
    }
}

// repr(u8): `Listening` is tag 0 (no niche in CloseReason), see ServerResources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
enum Phase {
    Listening,
    Active,
    /// `since`: when the peer last acknowledged anything; `fin_sent`: the
    /// FIN goes out only once every reply is acknowledged, so it never rides
    /// on data (smoltcp 0.14's fast retransmit can send a segment beyond the
    /// peer's window, and a smoltcp peer then takes such a FIN too early).
    Closing {
        since: Instant,
        reason: CloseReason,
        fin_sent: bool,
    },
}

/// One session's state next to its socket.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Slot<const LINE: usize> {
    session: Session<LINE>,
    phase: Phase,
    opened_at: Instant,
    peer: IpEndpoint,
    /// Send queue length after the last poll: a drop means bytes moved.
    queued: usize,
}

const NO_PEER: IpEndpoint = IpEndpoint {
    addr: IpAddress::Ipv4(Ipv4Address::UNSPECIFIED),
    port: 0,
};

impl<const LINE: usize> Slot<LINE> {
    const fn new() -> Self {
        Slot {
            session: Session::unconfigured(),
            phase: Phase::Listening,
            opened_at: Instant::ZERO,
            peer: NO_PEER,
            queued: 0,
        }
    }
}

/// All the memory a [`Server`] uses, handed in by the caller.
///
/// - `SESSIONS`: most concurrent sessions;
/// - `SOCKETS`: socket slots, at least `SESSIONS + 2` (a busy and the UDP
///   socket) plus [`ServerConfig::caller_sockets`]; up to [`BUSY_SOCKETS`] - 1
///   more serve bursts of rejections;
/// - `RX`, `TX`: each session's TCP receive and send buffer (also the UDP
///   buffers); `TX` must hold the largest reply (`max_line + 2`, at least 64);
/// - `LINE`: each session's line buffer, the largest `max_line`.
///
/// RAM is about `SESSIONS * (RX + TX + LINE) + 2 * (RX + TX)` plus smoltcp's
/// socket state; [`core::mem::size_of`] tells exactly. Every byte of
/// `new()` is zero or uninitialised, so a `static` of it goes to `.bss` and
/// costs no flash; smoltcp's socket slots are filled in by [`Server::new`].
///
/// ```
/// use reversal_core::ServerResources;
///
/// // In a static on a board: no stack copy, no heap.
/// static mut RESOURCES: ServerResources<'static, 3, 5, 1024, 1024, 512> = ServerResources::new();
/// let heap_or_stack = ServerResources::<'_, 2, 4, 256, 256, 128>::new();
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerResources<
    'a,
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> {
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    sockets: Deferred<[SocketStorage<'a>; SOCKETS]>,
    session_rx: [[u8; RX]; SESSIONS],
    session_tx: [[u8; TX]; SESSIONS],
    slots: [Slot<LINE>; SESSIONS],
    scratch: [u8; TX],
    busy_rx: [[u8; BUSY_RX]; BUSY_SOCKETS],
    busy_tx: [[u8; MAX_ERROR_REPLY]; BUSY_SOCKETS],
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    udp_rx_meta: heapless::Vec<udp::PacketMetadata, UDP_PACKETS>,
    udp_rx: [u8; RX],
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    udp_tx_meta: heapless::Vec<udp::PacketMetadata, UDP_PACKETS>,
    udp_tx: [u8; TX],
}

impl<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> fmt::Debug for ServerResources<'_, SESSIONS, SOCKETS, RX, TX, LINE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerResources")
            .field("sessions", &SESSIONS)
            .field("sockets", &SOCKETS)
            .field("rx", &RX)
            .field("tx", &TX)
            .field("line", &LINE)
            .finish_non_exhaustive()
    }
}

impl<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> Default for ServerResources<'_, SESSIONS, SOCKETS, RX, TX, LINE>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<
    'a,
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> ServerResources<'a, SESSIONS, SOCKETS, RX, TX, LINE>
{
    /// Empty resources, usable in a `static`.
    ///
    /// ```
    /// let resources = reversal_core::ServerResources::<'_, 1, 3, 128, 128, 64>::new();
    /// ```
    pub const fn new() -> Self {
        ServerResources {
            sockets: Deferred::Empty,
            session_rx: [[0; RX]; SESSIONS],
            session_tx: [[0; TX]; SESSIONS],
            slots: [const { Slot::new() }; SESSIONS],
            scratch: [0; TX],
            busy_rx: [[0; BUSY_RX]; BUSY_SOCKETS],
            busy_tx: [[0; MAX_ERROR_REPLY]; BUSY_SOCKETS],
            udp_rx_meta: heapless::Vec::new(),
            udp_rx: [0; RX],
            udp_tx_meta: heapless::Vec::new(),
            udp_tx: [0; TX],
        }
    }
}

/// A socket that tells clients beyond the sessions `ERR busy`.
#[derive(Debug, Clone, Copy)]
struct Busy {
    handle: SocketHandle,
    phase: BusyPhase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum BusyPhase {
    Listening,
    Closing { since: Instant },
}

/// The reversal server over smoltcp sockets.
///
/// ```
/// use reversal_core::{Server, ServerConfig, ServerResources};
/// use smoltcp::iface::{Config, Interface};
/// use smoltcp::phy::{Loopback, Medium};
/// use smoltcp::time::Instant;
/// use smoltcp::wire::{IpAddress, IpCidr};
///
/// let mut device = Loopback::new(Medium::Ip);
/// let mut iface = Interface::new(Config::new(smoltcp::wire::HardwareAddress::Ip), &mut device, Instant::ZERO);
/// iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap());
///
/// let mut resources = ServerResources::<'_, 2, 4, 512, 512, 256>::new();
/// let mut server = Server::new(ServerConfig::new(2, 256), &mut resources).unwrap();
/// let next = server.poll(Instant::ZERO, &mut iface, &mut device);
/// assert_eq!(server.counters().connections, 0);
/// assert!(next.is_none(), "an idle server has no deadline");
/// ```
pub struct Server<'a, const SESSIONS: usize, const LINE: usize> {
    config: ServerConfig,
    sockets: SocketSet<'a>,
    handles: heapless::Vec<SocketHandle, SESSIONS>,
    slots: &'a mut [Slot<LINE>; SESSIONS],
    scratch: &'a mut [u8],
    busy: heapless::Vec<Busy, BUSY_SOCKETS>,
    udp: Option<SocketHandle>,
    /// Counters of finished sessions plus server-level events.
    totals: Counters,
    /// Connections the sockets hold, refreshed before each interface poll.
    held: HeldBy<SESSIONS>,
    shutting_down: bool,
}

impl<const SESSIONS: usize, const LINE: usize> fmt::Debug for Server<'_, SESSIONS, LINE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("active_sessions", &self.active_sessions())
            .field("counters", &self.counters())
            .field("shutting_down", &self.shutting_down)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const SESSIONS: usize, const LINE: usize> defmt::Format for Server<'_, SESSIONS, LINE> {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "Server {{ config: {}, active_sessions: {}, counters: {} }}",
            self.config,
            self.active_sessions(),
            self.counters()
        )
    }
}

fn tcp_socket<'a>(rx: &'a mut [u8], tx: &'a mut [u8]) -> tcp::Socket<'a> {
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    // Replies are whole lines already: Nagle and delayed ACKs only add latency
    // to pipelined request/response traffic.
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    socket
}

/// A value filled in at run time whose empty state is all zero bytes.
///
/// smoltcp's empty socket slot has non-zero bytes (an enum niche), which
/// would put a whole `static ServerResources` into `.data`, copied from
/// flash. With an explicit tag and no niche, `Empty` is zero and the static
/// stays in `.bss`.
#[derive(Debug)]
#[repr(C, u8)]
enum Deferred<T> {
    Empty,
    Ready(T),
}

impl<T> Deferred<T> {
    fn insert(&mut self, value: T) -> &mut T {
        *self = Deferred::Ready(value);
        match self {
            Deferred::Ready(value) => value,
            Deferred::Empty => unreachable!("just filled"),
        }
    }
}

/// Fills `slots` up to its capacity with `empty()` (a fresh server's slots).
fn fill<T, const N: usize>(slots: &mut heapless::Vec<T, N>, empty: impl Fn() -> T) {
    slots.clear();
    while slots.push(empty()).is_ok() {}
}

/// Takes a socket whose connection is over back to listening, or leaves it
/// closed. A socket that was just aborted stays closed until the next pass
/// (the `Closed` arm of the listening phase re-listens it): `listen` would
/// forget the connection before smoltcp sends the peer its RST.
fn finish_connection(socket: &mut tcp::Socket<'_>, config: &ServerConfig, shutting_down: bool) {
    if shutting_down {
        socket.abort();
    } else if socket.state() != tcp::State::Closed {
        relisten(socket, config);
    }
}

/// Puts a socket back to listening. Only fails for port 0, checked at start.
fn relisten(socket: &mut tcp::Socket<'_>, config: &ServerConfig) {
    if socket.is_open() {
        socket.abort();
    }
    socket.set_timeout(Some(config.tcp_timeout));
    if socket.listen(config.port).is_err() {
        net_warn!("cannot listen on port {}", config.port);
    }
}

impl<'a, const SESSIONS: usize, const LINE: usize> Server<'a, SESSIONS, LINE> {
    /// Builds the sockets in `resources` and starts listening.
    ///
    /// ```
    /// use reversal_core::{server::ConfigError, Server, ServerConfig, ServerResources};
    ///
    /// let mut resources = ServerResources::<'_, 2, 4, 256, 256, 128>::new();
    /// // Three sessions do not fit resources made for two.
    /// let err = Server::new(ServerConfig::new(3, 128), &mut resources).unwrap_err();
    /// assert_eq!(err, ConfigError::Sessions { max: 2 });
    /// ```
    pub fn new<const SOCKETS: usize, const RX: usize, const TX: usize>(
        config: ServerConfig,
        resources: &'a mut ServerResources<'a, SESSIONS, SOCKETS, RX, TX, LINE>,
    ) -> Result<Self, ConfigError> {
        let max_sessions = SESSIONS.min(
            SOCKETS
                .saturating_sub(config.caller_sockets)
                .saturating_sub(2),
        );
        if config.sessions == 0 || config.sessions > max_sessions {
            return Err(ConfigError::Sessions { max: max_sessions });
        }
        if config.port == 0 || config.udp_port == Some(0) {
            return Err(ConfigError::Port);
        }
        config.session.check(LINE)?;
        let needed = config.session.max_reply_len();
        if TX < needed {
            return Err(ConfigError::SendBuffer {
                needed,
                capacity: TX,
            });
        }

        let ServerResources {
            sockets,
            session_rx,
            session_tx,
            slots,
            scratch,
            busy_rx,
            busy_tx,
            udp_rx_meta,
            udp_rx,
            udp_tx_meta,
            udp_tx,
        } = resources;
        fill(udp_rx_meta, || udp::PacketMetadata::EMPTY);
        fill(udp_tx_meta, || udp::PacketMetadata::EMPTY);
        let sockets = sockets.insert([SocketStorage::EMPTY; SOCKETS]);
        let mut set = SocketSet::new(&mut sockets[..]);
        let mut handles = heapless::Vec::new();
        // Session sockets first: smoltcp hands a SYN to the first listening
        // socket in the set, so the busy socket only gets it when all are taken.
        for (rx, tx) in session_rx
            .iter_mut()
            .zip(session_tx.iter_mut())
            .take(config.sessions)
        {
            let mut socket = tcp_socket(rx, tx);
            relisten(&mut socket, &config);
            // Cannot fail: config.sessions <= SESSIONS.
            let _ = handles.push(set.add(socket));
        }
        for slot in slots.iter_mut() {
            *slot = Slot::new();
            slot.session.set_config(config.session)?;
        }
        let free_slots = SOCKETS
            - config.sessions
            - usize::from(config.udp_port.is_some())
            - config.caller_sockets;
        let mut busy = heapless::Vec::new();
        for (rx, tx) in busy_rx.iter_mut().zip(busy_tx.iter_mut()).take(free_slots) {
            let mut socket = tcp_socket(rx, tx);
            relisten(&mut socket, &config);
            let handle = set.add(socket);
            // Cannot fail: at most BUSY_SOCKETS pairs of buffers.
            let _ = busy.push(Busy {
                handle,
                phase: BusyPhase::Listening,
            });
        }
        let udp = config.udp_port.map(|port| {
            let mut socket = udp::Socket::new(
                udp::PacketBuffer::new(&mut udp_rx_meta[..], &mut udp_rx[..]),
                udp::PacketBuffer::new(&mut udp_tx_meta[..], &mut udp_tx[..]),
            );
            if socket.bind(port).is_err() {
                net_warn!("cannot bind UDP port {}", port);
            }
            set.add(socket)
        });
        net_info!(
            "listening on TCP port {} with {} sessions, lines up to {} bytes, mode {}",
            config.port,
            config.sessions,
            config.session.max_line,
            config.session.mode
        );
        Ok(Server {
            config,
            sockets: set,
            handles,
            slots,
            scratch: &mut scratch[..],
            busy,
            udp,
            totals: Counters::default(),
            held: HeldBy::new(),
            shutting_down: false,
        })
    }

    /// The configuration in force.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, ServerResources};
    /// # let mut resources = ServerResources::<'_, 1, 3, 128, 128, 64>::new();
    /// let server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// assert_eq!(server.config().sessions, 1);
    /// ```
    pub const fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Receives, answers and transmits until nothing more moves now, then
    /// returns when it next needs to be called (`None`: only when a packet
    /// arrives). Calling it earlier is harmless.
    ///
    /// See the [`Server`] example.
    pub fn poll<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
    ) -> Option<Instant> {
        for _ in 0..MAX_ROUNDS {
            let more_waiting = self.receive(now, iface, device);
            // Answer before transmitting, so the ACK of a line rides on its
            // reply: one frame per request instead of two.
            let moved = self.service(now);
            while iface.poll_egress(now, device, &mut self.sockets) != PollResult::None {}
            if !moved && !more_waiting {
                return self.next_deadline(now, iface);
            }
        }
        // Still busy: ask to be called again at once.
        Some(now)
    }

    /// Lets smoltcp take in up to [`MAX_INGRESS`] frames, with repeated SYNs
    /// of connections our sockets already hold kept from the listeners (see
    /// `syn_guard`). True if more frames may be waiting.
    fn receive<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
    ) -> bool {
        let sockets = &self.sockets;
        let connection = |handle: SocketHandle| {
            let socket = sockets.get::<tcp::Socket>(handle);
            let open = !matches!(
                socket.state(),
                tcp::State::Listen | tcp::State::Closed | tcp::State::TimeWait
            );
            let peer = socket.remote_endpoint().filter(|_| open)?;
            Some((peer, socket.local_endpoint()?.port))
        };
        self.held.sessions.clear();
        for (peer, port) in self.handles.iter().filter_map(|&h| connection(h)) {
            self.held.sessions.hold(peer, port);
        }
        self.held.busy.clear();
        for (peer, port) in self.busy.iter().filter_map(|b| connection(b.handle)) {
            self.held.busy.hold(peer, port);
        }
        iface.poll_maintenance(now);
        let mut guarded = SynGuard::new(device, &self.held);
        for _ in 0..MAX_INGRESS {
            let frame = iface.poll_ingress_single(now, &mut guarded, &mut self.sockets);
            if frame == PollIngressSingleResult::None {
                return false;
            }
        }
        true
    }

    /// Like [`poll`](Self::poll), but returns how long the caller may sleep.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, ServerResources};
    /// # use smoltcp::{iface::{Config, Interface}, phy::{Loopback, Medium}, time::Instant, wire::HardwareAddress};
    /// # let mut device = Loopback::new(Medium::Ip);
    /// # let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
    /// # let mut resources = ServerResources::<'_, 1, 3, 128, 128, 64>::new();
    /// let mut server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// assert_eq!(server.poll_delay(Instant::ZERO, &mut iface, &mut device), None);
    /// ```
    pub fn poll_delay<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
    ) -> Option<Duration> {
        self.poll(now, iface, device)
            .map(|at| if at > now { at - now } else { Duration::ZERO })
    }

    /// Stops accepting connections and UDP; open sessions answer what they
    /// already received (a partial line as at end of input), then close
    /// with FIN. Keep polling until [`is_shut_down`](Self::is_shut_down).
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, ServerResources};
    /// # let mut resources = ServerResources::<'_, 1, 3, 128, 128, 64>::new();
    /// let mut server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// server.shutdown();
    /// assert!(server.is_shut_down());
    /// ```
    pub fn shutdown(&mut self) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        net_info!("shutting down: no new connections");
        for (slot, &handle) in self.slots.iter_mut().zip(self.handles.iter()) {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            // A connection established but not yet seen by `service` is a
            // session and is served; a half-done handshake is refused.
            let connected = matches!(
                socket.state(),
                tcp::State::Established | tcp::State::CloseWait
            );
            if slot.phase == Phase::Listening && !connected {
                socket.abort();
            }
        }
        for busy in &self.busy {
            if busy.phase == BusyPhase::Listening {
                self.sockets.get_mut::<tcp::Socket>(busy.handle).abort();
            }
        }
        if let Some(udp) = self.udp {
            self.sockets.get_mut::<udp::Socket>(udp).close();
        }
    }

    /// Whether a shutdown has finished: every socket is closed.
    ///
    /// See [`shutdown`](Self::shutdown).
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down
            && self
                .handles
                .iter()
                .copied()
                .chain(self.busy.iter().map(|busy| busy.handle))
                .all(|h| self.sockets.get::<tcp::Socket>(h).state() == tcp::State::Closed)
    }

    /// Sessions open now.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, ServerResources};
    /// # let mut resources = ServerResources::<'_, 1, 3, 128, 128, 64>::new();
    /// let server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// assert_eq!(server.active_sessions(), 0);
    /// ```
    pub fn active_sessions(&self) -> usize {
        self.open_slots().count()
    }

    /// Everything done so far, open sessions included.
    ///
    /// See the [`Server`] example.
    pub fn counters(&self) -> Counters {
        let mut counters = self.totals;
        for slot in self.open_slots() {
            counters.add_session(&slot.session.stats());
        }
        counters
    }

    fn open_slots(&self) -> impl Iterator<Item = &Slot<LINE>> {
        self.slots[..self.handles.len()]
            .iter()
            .filter(|slot| slot.phase != Phase::Listening)
    }

    fn next_deadline(&mut self, now: Instant, iface: &mut Interface) -> Option<Instant> {
        let sessions = self.slots[..self.handles.len()]
            .iter()
            .map(|slot| match slot.phase {
                Phase::Listening => None,
                Phase::Active => slot.session.deadline(),
                Phase::Closing {
                    since,
                    reason,
                    fin_sent,
                } => closing_limit(&self.config, reason, fin_sent).map(|limit| since + limit),
            });
        let busy = self.busy.iter().map(|busy| match busy.phase {
            BusyPhase::Listening => None,
            BusyPhase::Closing { since } => Some(since + BUSY_LINGER),
        });
        sessions
            .chain(busy)
            .chain([iface.poll_at(now, &self.sockets)])
            .flatten()
            .min()
    }

    /// Moves bytes between sockets and sessions; true if anything changed.
    fn service(&mut self, now: Instant) -> bool {
        let mut moved = false;
        for index in 0..self.handles.len() {
            moved |= self.service_session(index, now);
        }
        for index in 0..self.busy.len() {
            moved |= self.service_busy(index, now);
        }
        moved |= self.service_udp();
        moved
    }

    fn service_session(&mut self, index: usize, now: Instant) -> bool {
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handles[index]);
        let slot = &mut self.slots[index];
        let state = socket.state();
        match slot.phase {
            Phase::Listening => match state {
                tcp::State::Established | tcp::State::CloseWait => {
                    slot.phase = Phase::Active;
                    slot.session.restart(now);
                    slot.opened_at = now;
                    slot.peer = socket.remote_endpoint().unwrap_or(NO_PEER);
                    slot.queued = 0;
                    // The handshake is over: from here the idle timeout watches the peer.
                    socket.set_timeout(None);
                    self.totals.connections += 1;
                    net_info!("session {}: open from {}", index, slot.peer);
                    self.service_session(index, now);
                    true
                }
                tcp::State::Closed if !self.shutting_down => {
                    relisten(socket, &self.config);
                    true
                }
                _ => false,
            },
            Phase::Active => {
                if matches!(state, tcp::State::Closed | tcp::State::TimeWait) {
                    self.end_session(index, now, CloseReason::Lost);
                    return true;
                }
                let moved = move_bytes(socket, slot, self.scratch, now, self.shutting_down);
                probe_while_unacknowledged(socket);
                if let Some(finish) = slot.session.finished() {
                    let reason = match finish {
                        Finish::IdleTimeout => CloseReason::IdleTimeout,
                        Finish::EndOfInput if self.shutting_down => CloseReason::Shutdown,
                        Finish::EndOfInput => CloseReason::EndOfInput,
                    };
                    slot.phase = Phase::Closing {
                        since: now,
                        reason,
                        fin_sent: false,
                    };
                    self.service_session(index, now);
                    return true;
                }
                moved
            }
            Phase::Closing {
                mut since,
                reason,
                mut fin_sent,
            } => {
                if matches!(state, tcp::State::Closed | tcp::State::TimeWait) {
                    self.end_session(index, now, reason);
                    return true;
                }
                probe_while_unacknowledged(socket);
                let queued = socket.send_queue();
                let acknowledged = queued < slot.queued;
                if acknowledged {
                    since = now;
                }
                slot.queued = queued;
                let send_fin = !fin_sent && queued == 0;
                if send_fin {
                    socket.close();
                    fin_sent = true;
                    since = now;
                }
                slot.phase = Phase::Closing {
                    since,
                    reason,
                    fin_sent,
                };
                if closing_limit(&self.config, reason, fin_sent)
                    .is_some_and(|limit| now >= since + limit)
                {
                    socket.abort();
                    self.end_session(index, now, CloseReason::Abandoned);
                    return true;
                }
                acknowledged || send_fin
            }
        }
    }

    /// Logs and counts a finished session and puts its socket back to work.
    fn end_session(&mut self, index: usize, now: Instant, reason: CloseReason) {
        let slot = &mut self.slots[index];
        let stats = slot.session.stats();
        self.totals.add_session(&stats);
        net_info!(
            "session {}: closed {} ({}) after {} ms: {} lines, {} bytes in, {} bytes out, {} errors",
            index,
            slot.peer,
            reason,
            (now - slot.opened_at).total_millis(),
            stats.lines,
            stats.bytes_in,
            stats.bytes_out,
            stats.errors()
        );
        slot.phase = Phase::Listening;
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handles[index]);
        finish_connection(socket, &self.config, self.shutting_down);
    }

    fn service_busy(&mut self, index: usize, now: Instant) -> bool {
        let busy = &mut self.busy[index];
        let socket = self.sockets.get_mut::<tcp::Socket>(busy.handle);
        let state = socket.state();
        match busy.phase {
            BusyPhase::Listening => match state {
                tcp::State::Established | tcp::State::CloseWait => {
                    let mut reply = [0u8; MAX_ERROR_REPLY];
                    if let Some(n) = ErrorReply::Busy.write(b"\n", &mut reply) {
                        // The send buffer is empty and MAX_ERROR_REPLY long.
                        let _ = socket.send_slice(&reply[..n]);
                    }
                    socket.close();
                    self.totals.errors.busy += 1;
                    net_info!(
                        "busy: rejected {}",
                        socket.remote_endpoint().unwrap_or(NO_PEER)
                    );
                    busy.phase = BusyPhase::Closing { since: now };
                    true
                }
                tcp::State::Closed if !self.shutting_down => {
                    relisten(socket, &self.config);
                    true
                }
                _ => false,
            },
            BusyPhase::Closing { since } => {
                let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
                if !done && now < since + BUSY_LINGER {
                    return false;
                }
                if !done {
                    socket.abort();
                }
                busy.phase = BusyPhase::Listening;
                finish_connection(socket, &self.config, self.shutting_down);
                true
            }
        }
    }

    fn service_udp(&mut self) -> bool {
        let Some(handle) = self.udp else {
            return false;
        };
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        let session = &self.config.session;
        let mut moved = false;
        while let Ok((payload, meta)) = socket.peek() {
            let answer = datagram::answer(session.mode, session.max_line, payload, self.scratch);
            let meta = *meta;
            match answer {
                Answer::Reversed(len) | Answer::Error { len, .. } => {
                    match socket.send_slice(&self.scratch[..len], meta) {
                        Ok(()) => {}
                        // Answer it once the queue has drained; it stays unread.
                        Err(udp::SendError::BufferFull) => break,
                        Err(udp::SendError::Unaddressable) => {
                            net_debug!("udp: no route to {}", meta.endpoint);
                            self.totals.udp_dropped += 1;
                        }
                    }
                    if let Answer::Error { code, .. } = answer {
                        self.totals.errors.count(code);
                    }
                }
                Answer::Dropped(code) => {
                    net_debug!(
                        "udp: {} error from {} dropped (no amplification)",
                        code,
                        meta.endpoint
                    );
                    self.totals.udp_dropped += 1;
                }
            }
            let _ = socket.recv();
            self.totals.udp_datagrams += 1;
            moved = true;
        }
        moved
    }
}

/// How long a closing session may go without progress: the idle timeout
/// while replies wait for a live peer, the close timeout once the FIN is out
/// or when the peer already sat silent through the idle timeout.
fn closing_limit(config: &ServerConfig, reason: CloseReason, fin_sent: bool) -> Option<Duration> {
    if fin_sent || reason == CloseReason::IdleTimeout {
        Some(config.close_timeout)
    } else {
        config.session.idle_timeout
    }
}

/// Feeds a session from its socket and queues its replies; true if any
/// byte moved. Input is read only as far as its replies fit in the send
/// buffer, so a client that does not read sees its window close.
fn move_bytes<const LINE: usize>(
    socket: &mut tcp::Socket<'_>,
    slot: &mut Slot<LINE>,
    scratch: &mut [u8],
    now: Instant,
    shutting_down: bool,
) -> bool {
    let session = &mut slot.session;
    if socket.send_queue() < slot.queued {
        // The peer acknowledged replies: bytes moved.
        session.note_activity(now);
    }
    let mut moved = false;
    loop {
        let out = free_output(socket, scratch);
        let progress = if socket.can_recv() {
            socket
                .recv(|rx| {
                    let p = session.receive(now, rx, out);
                    (p.consumed, p)
                })
                .unwrap_or_default()
        } else if !socket.may_recv() || shutting_down {
            session.end_of_input(now, out)
        } else {
            break;
        };
        if progress.produced > 0 {
            // Fits: `out` was no longer than the free space.
            let _ = socket.send_slice(&out[..progress.produced]);
        }
        if progress.is_empty() || session.finished().is_some() {
            moved |= !progress.is_empty();
            break;
        }
        moved = true;
    }
    // Timers (idle flush, idle timeout) also run while input is flowing.
    let out = free_output(socket, scratch);
    let progress = session.poll(now, out);
    if progress.produced > 0 {
        let _ = socket.send_slice(&out[..progress.produced]);
        moved = true;
    }
    slot.queued = socket.send_queue();
    moved
}

/// Keeps keep-alive probes on while replies wait for acknowledgement.
///
/// smoltcp 0.14's fast retransmit sends a whole segment even past a peer
/// window smaller than one, counts the part the peer cut off as sent, and
/// leaves no retransmission timer running for it: against a client with a
/// 1 KiB window the last replies could wait for the idle timeout. A
/// keep-alive probe draws a duplicate ACK; the third one makes smoltcp
/// retransmit from the first unacknowledged byte. Off again once every
/// reply is acknowledged, so idle sessions send nothing.
fn probe_while_unacknowledged(socket: &mut tcp::Socket<'_>) {
    let wanted = (socket.send_queue() > 0).then_some(STALL_PROBE);
    if socket.keep_alive() != wanted {
        socket.set_keep_alive(wanted);
    }
}

/// The part of `scratch` that the socket's free send space can take.
fn free_output<'s>(socket: &tcp::Socket<'_>, scratch: &'s mut [u8]) -> &'s mut [u8] {
    let free = socket.send_capacity() - socket.send_queue();
    let len = free.min(scratch.len());
    &mut scratch[..len]
}

#[cfg(all(test, feature = "graphemes"))]
mod tests {
    use super::*;
    use crate::client::{LineClient, RecvError};
    use smoltcp::iface::{Config, Interface};
    use smoltcp::phy::{self, DeviceCapabilities, Medium};
    use smoltcp::wire::{HardwareAddress, IpCidr};
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::vec::Vec;

    type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

    /// One end of a lossless point-to-point IP link.
    struct End {
        rx: Queue,
        tx: Queue,
    }

    fn link() -> (End, End) {
        let (a, b) = (Queue::default(), Queue::default());
        (
            End {
                rx: a.clone(),
                tx: b.clone(),
            },
            End { rx: b, tx: a },
        )
    }

    struct Rx(Vec<u8>);
    struct Tx(Queue);

    impl phy::RxToken for Rx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for Tx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = vec![0; len];
            let r = f(&mut frame);
            self.0.borrow_mut().push_back(frame);
            r
        }
    }

    impl Device for End {
        type RxToken<'a> = Rx;
        type TxToken<'a> = Tx;

        fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
            let frame = self.rx.borrow_mut().pop_front()?;
            Some((Rx(frame), Tx(self.tx.clone())))
        }

        fn transmit(&mut self, _: Instant) -> Option<Tx> {
            Some(Tx(self.tx.clone()))
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = DeviceCapabilities::default();
            caps.medium = Medium::Ip;
            caps.max_transmission_unit = 1500;
            caps
        }
    }

    fn iface(device: &mut End, last_octet: u8) -> Interface {
        let mut iface = Interface::new(Config::new(HardwareAddress::Ip), device, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(10, 0, 0, last_octet), 24))
                .unwrap();
        });
        iface
    }

    const SERVER: IpEndpoint = IpEndpoint {
        addr: IpAddress::Ipv4(Ipv4Address::new(10, 0, 0, 1)),
        port: 8888,
    };

    /// Two sessions, UDP, and four busy sockets (7 = 2 + 1 + 4).
    type Resources = ServerResources<'static, 2, 7, 1024, 1024, 64>;

    /// A server and a client host on one link, in virtual time.
    struct Net {
        server: Server<'static, 2, 64>,
        server_iface: Interface,
        server_end: End,
        client_iface: Interface,
        client_end: End,
        sockets: SocketSet<'static>,
        now: Instant,
    }

    impl Net {
        fn new(config: ServerConfig) -> Self {
            let (mut server_end, mut client_end) = link();
            let resources: &'static mut Resources = Box::leak(Box::new(Resources::new()));
            Net {
                server: Server::new(config, resources).unwrap(),
                server_iface: iface(&mut server_end, 1),
                server_end,
                client_iface: iface(&mut client_end, 2),
                client_end,
                sockets: SocketSet::new(Vec::new()),
                now: Instant::ZERO,
            }
        }

        fn client(&mut self, local_port: u16) -> LineClient<256> {
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 4096]),
            );
            let mut client = LineClient::new(self.sockets.add(socket));
            client
                .connect(
                    &mut self.sockets,
                    self.client_iface.context(),
                    SERVER,
                    local_port,
                )
                .unwrap();
            client
        }

        /// Polls both hosts, jumping virtual time to the next deadline.
        fn step(&mut self) {
            let a = self
                .server
                .poll(self.now, &mut self.server_iface, &mut self.server_end);
            self.client_iface
                .poll(self.now, &mut self.client_end, &mut self.sockets);
            let b = self.client_iface.poll_at(self.now, &self.sockets);
            let frames_waiting =
                !self.server_end.rx.borrow().is_empty() || !self.client_end.rx.borrow().is_empty();
            if !frames_waiting {
                let next = [a, b]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(self.now + Duration::from_secs(1));
                self.now = next.max(self.now + Duration::from_millis(1));
            }
        }

        /// Runs `op` until it stops saying WouldBlock (bounded in virtual time).
        fn block<T, E: fmt::Debug>(
            &mut self,
            mut op: impl FnMut(&mut Self) -> nb::Result<T, E>,
        ) -> Result<T, E> {
            let limit = self.now + Duration::from_secs(600);
            loop {
                match op(self) {
                    Err(nb::Error::WouldBlock) => {}
                    Err(nb::Error::Other(e)) => return Err(e),
                    Ok(v) => return Ok(v),
                }
                assert!(self.now < limit, "no progress in 600 s of virtual time");
                self.step();
            }
        }

        fn wait_until(&mut self, mut done: impl FnMut(&Self) -> bool) {
            self.block(|net| {
                if done(net) {
                    Ok(())
                } else {
                    Err(nb::Error::<()>::WouldBlock)
                }
            })
            .unwrap();
        }

        fn send(&mut self, client: &mut LineClient<256>, line: &[u8]) {
            self.block(|net| client.send_line(&mut net.sockets, line))
                .unwrap();
        }

        fn reply(&mut self, client: &mut LineClient<256>) -> Result<Vec<u8>, RecvError> {
            let mut buf = [0u8; 256];
            let n = self.block(|net| client.recv_line(&mut net.sockets, &mut buf))?;
            Ok(buf[..n].to_vec())
        }
    }

    fn config() -> ServerConfig {
        ServerConfig::new(2, 64)
    }

    #[test]
    fn answers_lines_over_tcp() {
        let mut net = Net::new(config());
        let mut c = net.client(40000);
        net.send(&mut c, "hello 각👍🏽".as_bytes());
        assert_eq!(net.reply(&mut c).unwrap(), "👍🏽각 olleh\n".as_bytes());
        assert_eq!(net.server.active_sessions(), 1);
        let counters = net.server.counters();
        assert_eq!((counters.connections, counters.lines), (1, 1));
    }

    #[test]
    fn answers_unterminated_last_line_then_closes_after_client_fin() {
        let mut net = Net::new(config());
        let mut c = net.client(40000);
        net.block(|n| c.send(&mut n.sockets, b"one\ntwo")).unwrap();
        net.block(|n| c.close(&mut n.sockets)).unwrap();
        assert_eq!(net.reply(&mut c).unwrap(), b"eno\n");
        assert_eq!(net.reply(&mut c).unwrap(), b"owt");
        assert_eq!(net.reply(&mut c), Err(RecvError::Closed));
        net.wait_until(|n| c.is_closed(&n.sockets));
    }

    #[test]
    fn a_connection_beyond_the_sessions_gets_busy_and_is_closed() {
        let mut net = Net::new(config());
        let mut first = net.client(40001);
        let mut second = net.client(40002);
        net.send(&mut first, b"a");
        net.send(&mut second, b"b");
        net.reply(&mut first).unwrap();
        net.reply(&mut second).unwrap();
        let mut third = net.client(40003);
        let busy = net.reply(&mut third).unwrap();
        assert!(busy.starts_with(b"ERR busy "), "{busy:?}");
        assert_eq!(net.reply(&mut third), Err(RecvError::Closed));
        assert_eq!(net.server.counters().errors.busy, 1);
    }

    #[test]
    fn a_burst_of_connections_beyond_the_sessions_all_get_busy() {
        let mut net = Net::new(ServerConfig::new(1, 64));
        let mut first = net.client(40001);
        net.send(&mut first, b"a");
        net.reply(&mut first).unwrap();
        // Four at once: one busy socket each, none is reset.
        let mut rejected: Vec<_> = (40002..40006).map(|port| net.client(port)).collect();
        for client in &mut rejected {
            let busy = net.reply(client).unwrap();
            assert!(busy.starts_with(b"ERR busy "), "{busy:?}");
        }
        assert_eq!(net.server.counters().errors.busy, 4);
    }

    #[test]
    fn a_slot_listens_again_as_soon_as_its_session_closes() {
        let mut net = Net::new(ServerConfig::new(1, 64));
        for port in 41000..41003 {
            let mut c = net.client(port);
            net.send(&mut c, b"abc");
            assert_eq!(net.reply(&mut c).unwrap(), b"cba\n");
            net.block(|n| c.close(&mut n.sockets)).unwrap();
            assert_eq!(net.reply(&mut c), Err(RecvError::Closed));
            net.wait_until(|n| n.server.active_sessions() == 0);
        }
        assert_eq!(net.server.counters().connections, 3);
    }

    #[test]
    fn idle_session_gets_idle_timeout_error_and_is_closed() {
        let mut net = Net::new(config());
        let mut c = net.client(40000);
        net.send(&mut c, b"x");
        net.reply(&mut c).unwrap();
        let start = net.now;
        let line = net.reply(&mut c).unwrap();
        assert!(line.starts_with(b"ERR idle-timeout "), "{line:?}");
        assert!(net.now - start >= session::DEFAULT_IDLE_TIMEOUT);
        assert_eq!(net.reply(&mut c), Err(RecvError::Closed));
        assert_eq!(net.server.counters().errors.idle_timeout, 1);
    }

    #[test]
    fn shutdown_delivers_owed_replies_then_closes() {
        let mut net = Net::new(config());
        let mut c = net.client(40000);
        net.block(|n| c.send(&mut n.sockets, b"pending\npartial"))
            .unwrap();
        // Let the bytes reach the server before it is told to stop.
        while net.server.counters().bytes_in < 15 {
            net.step();
        }
        net.server.shutdown();
        assert_eq!(net.reply(&mut c).unwrap(), b"gnidnep\n");
        assert_eq!(net.reply(&mut c).unwrap(), b"laitrap");
        assert_eq!(net.reply(&mut c), Err(RecvError::Closed));
        net.wait_until(|n| n.server.is_shut_down());
    }

    fn udp_exchange(net: &mut Net, payload: &[u8]) -> Option<Vec<u8>> {
        let socket = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2048]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2048]),
        );
        let handle = net.sockets.add(socket);
        let s = net.sockets.get_mut::<udp::Socket>(handle);
        s.bind(50000).unwrap();
        s.send_slice(payload, SERVER).unwrap();
        for _ in 0..20 {
            net.step();
            if let Ok((data, _)) = net.sockets.get_mut::<udp::Socket>(handle).recv() {
                return Some(data.to_vec());
            }
        }
        None
    }

    #[test]
    fn udp_datagram_is_answered_with_its_reversal() {
        let mut net = Net::new(config());
        assert_eq!(
            udp_exchange(&mut net, b"abc\r\n").as_deref(),
            Some(&b"cba\r\n"[..])
        );
        assert_eq!(net.server.counters().udp_datagrams, 1);
    }

    #[test]
    fn udp_error_larger_than_the_datagram_is_dropped_and_counted() {
        let mut net = Net::new(config());
        assert_eq!(udp_exchange(&mut net, b"\xff\n"), None);
        let counters = net.server.counters();
        assert_eq!((counters.udp_datagrams, counters.udp_dropped), (1, 1));
    }

    #[test]
    fn config_that_does_not_fit_the_resources_is_refused() {
        let resources: &'static mut Resources = Box::leak(Box::new(Resources::new()));
        assert_eq!(
            Server::new(ServerConfig::new(0, 64), resources).err(),
            Some(ConfigError::Sessions { max: 2 })
        );
        let resources: &'static mut Resources = Box::leak(Box::new(Resources::new()));
        let config = ServerConfig {
            port: 0,
            ..config()
        };
        assert_eq!(
            Server::new(config, resources).err(),
            Some(ConfigError::Port)
        );
        let resources: &'static mut Resources = Box::leak(Box::new(Resources::new()));
        assert!(matches!(
            Server::new(ServerConfig::new(2, 65), resources),
            Err(ConfigError::Session(_))
        ));
        let small: &'static mut ServerResources<'static, 1, 3, 64, 32, 64> =
            Box::leak(Box::new(ServerResources::new()));
        assert_eq!(
            Server::new(ServerConfig::new(1, 64), small).err(),
            Some(ConfigError::SendBuffer {
                needed: 66,
                capacity: 32
            })
        );
    }
}
