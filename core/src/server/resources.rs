//! All the memory a server uses, lent by the caller and sized at run time.
//!
//! A [`Server`](super::Server) has no size parameters. It runs in a
//! [`ServerResources`]: slices the caller lends, cut to a [`Capacity`]
//! chosen at run time (sessions, spare sockets, socket receive and send
//! buffers, line buffers), the way smoltcp's sockets take the caller's
//! buffers. Two owners lend them:
//!
//! - [`StaticResources`], for boards: every size a const generic and a
//!   `const fn new()` whose bytes are all zero, so a `static` of it lands
//!   in `.bss` and costs no flash, as embassy-net's `StackResources<N>`;
//! - `HeapResources` (feature `alloc`), for hosts: exactly the capacity
//!   its settings ask for, allocated once at start.
//!
//! Nothing is allocated after that and nothing grows.
//!
//! # Why sizes at run time
//!
//! The first design had five const generics on the resources (sessions,
//! sockets, receive, send and line buffer) and two on the server. A board
//! fixes those at compile time anyway, but a host has flags: it compiled
//! two sizes (64 and 1,024 sessions), ran 65 sessions in memory for 1,024,
//! and built the resources on a thread whose stack held them twice (about
//! 90 MiB for 1,024 sessions) because a debug build may move them through a
//! temporary. With run-time sizes the host allocates what its flags ask for
//! (the line buffer as long as `--max-line`, not the largest allowed), on
//! the heap, and a new size setting (such as the socket buffers) is a host
//! change only. Measured side by side with the const-generic design
//! (BENCHMARKS.md, "Memory sized at run time"): host-tap starts in 3.4 MB
//! instead of 6.0 MB resident (4.2 instead of 46 MB with 1,024 sessions),
//! with the same request/response throughput within the noise; the boards
//! keep their `static` in `.bss`, with 84 to 512 bytes less flash and 40
//! to 200 bytes less RAM in use (static plus stack).

use core::fmt;
use core::mem::size_of;

use smoltcp::iface::SocketStorage;
use smoltcp::socket::udp::PacketMetadata;

use super::busy::{BUSY_RX, BUSY_SOCKETS, BUSY_TX};
use super::deferred::Deferred;
use super::tcp::Slot;
use super::udp::{ReplySocket, UDP_PACKETS};
use crate::ingress::{Connection, Stream};
use crate::listener::{Attempt, KnownPeer, ListenerMemory, ListenerStorage, TrackedSocket};

/// Connection attempts the listen backlog holds unless the resources say
/// otherwise: enough for a burst of clients several times a board's
/// sessions. A host sizes it from its settings.
pub const DEFAULT_BACKLOG: usize = 16;
/// Proven peers remembered unless the resources say otherwise.
pub const DEFAULT_KNOWN_PEERS: usize = 8;

/// How much a server holds: its sizes, chosen at run time.
///
/// ```
/// use reversal_core::Capacity;
///
/// // 64 sessions with 16 KiB socket buffers and lines up to 1 KiB.
/// let capacity = Capacity::new(64, 16 * 1024, 1024).with_spare_sockets(2);
/// assert_eq!((capacity.rx_buffer, capacity.tx_buffer), (16 * 1024, 16 * 1024));
/// // Sessions, spare sockets, and UDP's: one that receives, one that replies.
/// assert_eq!(capacity.sockets(), 64 + 2 + 1 + 1);
/// assert!(capacity.memory() > 64 * (32 + 1) * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Capacity {
    /// Session slots: the most sessions the server can serve at once.
    pub sessions: usize,
    /// Socket slots beyond the sessions' and the UDP sockets': the
    /// [`caller_sockets`](super::ServerConfig::caller_sockets), and the
    /// busy sockets that tell clients beyond the sessions `ERR busy` (at
    /// least one, at most [`BUSY_SOCKETS`]: the most rejections under way
    /// at once).
    pub spare_sockets: usize,
    /// Each session's TCP receive buffer, and the UDP receive buffer.
    pub rx_buffer: usize,
    /// Each session's TCP send buffer, each UDP reply socket's send buffer,
    /// and the space replies are built in: it must hold the largest reply
    /// (`max_line + 2`, at least 64 bytes).
    pub tx_buffer: usize,
    /// Each session's line buffer: the largest `max_line`.
    pub line_buffer: usize,
    /// Connection attempts the listen backlog holds while no session can
    /// take them (see [`crate::listener`]): each costs about 100 bytes
    /// (64 without IPv6). Default [`DEFAULT_BACKLOG`].
    pub backlog: usize,
    /// Peers that proved themselves (by ARP or a completed handshake),
    /// remembered so that their connections go first under a flood of
    /// forged SYNs. Default [`DEFAULT_KNOWN_PEERS`].
    pub known_peers: usize,
    /// UDP reply sockets (default 1): replies to this many senders whose
    /// addresses have not resolved yet can wait at once (up to
    /// [`UDP_REPLY_TIMEOUT`](super::UDP_REPLY_TIMEOUT)) while other
    /// senders are answered; with all of them waiting, the oldest waiting
    /// reply gives way to the next datagram. One meets the SPEC; more let
    /// replies to several slow neighbours wait together.
    pub udp_reply_sockets: usize,
}

impl Capacity {
    /// `sessions` sessions whose sockets have receive and send buffers of
    /// `socket_buffer` bytes and whose lines are up to `line_buffer` bytes
    /// long, [`BUSY_SOCKETS`] spare sockets (all of them busy sockets
    /// unless the configuration keeps some for the caller), and one UDP
    /// reply socket.
    ///
    /// ```
    /// let capacity = reversal_core::Capacity::new(3, 1024, 512);
    /// assert_eq!(capacity.spare_sockets, reversal_core::server::BUSY_SOCKETS);
    /// ```
    pub const fn new(sessions: usize, socket_buffer: usize, line_buffer: usize) -> Self {
        Capacity {
            sessions,
            spare_sockets: BUSY_SOCKETS,
            rx_buffer: socket_buffer,
            tx_buffer: socket_buffer,
            line_buffer,
            backlog: DEFAULT_BACKLOG,
            known_peers: DEFAULT_KNOWN_PEERS,
            udp_reply_sockets: 1,
        }
    }

    /// With `count` spare sockets instead.
    ///
    /// ```
    /// let capacity = reversal_core::Capacity::new(3, 1024, 512).with_spare_sockets(1);
    /// assert_eq!(capacity.spare_sockets, 1);
    /// ```
    #[must_use]
    pub const fn with_spare_sockets(self, count: usize) -> Self {
        Capacity {
            spare_sockets: count,
            ..self
        }
    }

    /// With receive buffers of `bytes` instead.
    ///
    /// ```
    /// let capacity = reversal_core::Capacity::new(3, 1024, 512).with_rx_buffer(2048);
    /// assert_eq!((capacity.rx_buffer, capacity.tx_buffer), (2048, 1024));
    /// ```
    #[must_use]
    pub const fn with_rx_buffer(self, bytes: usize) -> Self {
        Capacity {
            rx_buffer: bytes,
            ..self
        }
    }

    /// With send buffers of `bytes` instead.
    ///
    /// ```
    /// let capacity = reversal_core::Capacity::new(3, 1024, 512).with_tx_buffer(600);
    /// assert_eq!((capacity.rx_buffer, capacity.tx_buffer), (1024, 600));
    /// ```
    #[must_use]
    pub const fn with_tx_buffer(self, bytes: usize) -> Self {
        Capacity {
            tx_buffer: bytes,
            ..self
        }
    }

    /// With a listen backlog of `attempts` instead.
    ///
    /// ```
    /// let capacity = reversal_core::Capacity::new(64, 16 * 1024, 1024).with_backlog(256);
    /// assert_eq!(capacity.backlog, 256);
    /// ```
    #[must_use]
    pub const fn with_backlog(self, attempts: usize) -> Self {
        Capacity {
            backlog: attempts,
            ..self
        }
    }

    /// With room for `peers` proven peers instead.
    ///
    /// ```
    /// let capacity = reversal_core::Capacity::new(3, 1024, 512).with_known_peers(4);
    /// assert_eq!(capacity.known_peers, 4);
    /// ```
    #[must_use]
    pub const fn with_known_peers(self, peers: usize) -> Self {
        Capacity {
            known_peers: peers,
            ..self
        }
    }

    /// With `count` UDP reply sockets instead.
    ///
    /// ```
    /// let capacity = reversal_core::Capacity::new(3, 1024, 512).with_udp_reply_sockets(4);
    /// assert_eq!(capacity.udp_reply_sockets, 4);
    /// ```
    #[must_use]
    pub const fn with_udp_reply_sockets(self, count: usize) -> Self {
        Capacity {
            udp_reply_sockets: count,
            ..self
        }
    }

    /// The socket slots: one per session, the spare ones, and UDP's (the
    /// receiving socket and the reply sockets).
    ///
    /// ```
    /// assert_eq!(reversal_core::Capacity::new(3, 1024, 512).with_spare_sockets(1).sockets(), 6);
    /// ```
    pub const fn sockets(&self) -> usize {
        self.sessions + self.spare_sockets + 1 + self.udp_reply_sockets
    }

    /// Bytes of every buffer: the sessions' socket and line buffers, the
    /// UDP sockets', the reply space, and a busy socket's for each spare one.
    const fn buffer_bytes(&self) -> usize {
        let per_session = self.rx_buffer + self.tx_buffer + self.line_buffer;
        self.sessions * per_session
            + (1 + self.udp_reply_sockets) * self.tx_buffer
            + self.rx_buffer
            + self.spare_sockets * (BUSY_RX + BUSY_TX)
    }

    /// Bytes of memory in all: the buffers, smoltcp's socket state and the
    /// server's state per socket. `HeapResources` (feature `alloc`)
    /// allocates this much.
    ///
    /// ```
    /// use reversal_core::Capacity;
    ///
    /// let one = Capacity::new(1, 1024, 512).memory();
    /// let two = Capacity::new(2, 1024, 512).memory();
    /// assert!(two - one > 1024 + 1024 + 512, "buffers and state per session");
    /// ```
    pub const fn memory(&self) -> usize {
        self.buffer_bytes()
            + self.sockets() * (size_of::<SocketStorage<'static>>() + size_of::<Connection>())
            + self.sessions * (size_of::<Deferred<Slot<'static>>>() + size_of::<Stream>())
            + self.udp_reply_sockets * size_of::<Deferred<ReplySocket>>()
            + (UDP_PACKETS + self.udp_reply_sockets) * size_of::<PacketMetadata>()
            + self.listener_bytes()
    }

    /// Bytes of the listener's tables: the backlog, the proven peers, and
    /// one entry per socket.
    const fn listener_bytes(&self) -> usize {
        self.backlog * size_of::<Attempt>()
            + self.known_peers * size_of::<KnownPeer>()
            + self.sockets() * size_of::<TrackedSocket>()
    }
}

/// The memory a [`Server`](super::Server) runs in, lent by a
/// [`StaticResources`] or a `HeapResources` (feature `alloc`);
/// [`Server::new`] takes either.
///
/// [`Server::new`]: super::Server::new
pub struct ServerResources<'a> {
    pub(super) capacity: Capacity,
    pub(super) sockets: &'a mut [SocketStorage<'a>],
    pub(super) slots: &'a mut [Deferred<Slot<'a>>],
    /// One entry per socket, for the ingress filter.
    pub(super) held: &'a mut [Connection],
    /// The listen backlog's tables.
    pub(super) listener: ListenerMemory<'a>,
    /// One entry per session, where its client's writes end.
    pub(super) streams: &'a mut [Stream],
    pub(super) udp_rx_meta: &'a mut [PacketMetadata],
    /// One per UDP reply socket.
    pub(super) udp_tx_meta: &'a mut [PacketMetadata],
    pub(super) udp_replies: &'a mut [Deferred<ReplySocket>],
    pub(super) buffers: Buffers<'a>,
}

impl fmt::Debug for ServerResources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerResources")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The byte buffers, each as long as its [`Capacity`] says.
pub(super) struct Buffers<'a> {
    /// `sessions` receive buffers of `rx_buffer` bytes.
    pub(super) session_rx: &'a mut [u8],
    /// `sessions` send buffers of `tx_buffer` bytes.
    pub(super) session_tx: &'a mut [u8],
    /// `sessions` line buffers of `line_buffer` bytes.
    pub(super) lines: &'a mut [u8],
    /// `tx_buffer` bytes.
    pub(super) scratch: &'a mut [u8],
    /// `rx_buffer` bytes.
    pub(super) udp_rx: &'a mut [u8],
    /// `udp_reply_sockets` send buffers of `tx_buffer` bytes.
    pub(super) udp_tx: &'a mut [u8],
    /// Buffers of `BUSY_RX` bytes for the busy sockets.
    pub(super) busy_rx: &'a mut [u8],
    /// Buffers of `BUSY_TX` bytes for the busy sockets.
    pub(super) busy_tx: &'a mut [u8],
}

/// `bytes` cut into pieces of `size` bytes (endless empty ones if `size`
/// is 0: the caller zips them with something finite).
pub(super) fn pieces(mut bytes: &mut [u8], size: usize) -> impl Iterator<Item = &mut [u8]> {
    core::iter::from_fn(move || {
        let (piece, rest) = core::mem::take(&mut bytes).split_at_mut_checked(size)?;
        bytes = rest;
        Some(piece)
    })
}

/// A server's memory with every size fixed at compile time, for a `static`
/// on a board.
///
/// - `SESSIONS`: session slots;
/// - `SOCKETS`: `SESSIONS` + 1 (UDP receiving socket) + `UDP_REPLIES` +
///   the spare sockets: the caller's own
///   ([`ServerConfig::caller_sockets`](super::ServerConfig::caller_sockets))
///   and at least one busy socket; the server uses up to [`BUSY_SOCKETS`]
///   busy sockets;
/// - `RX`, `TX`: each session's TCP receive and send buffer (also the UDP
///   receive buffer and each UDP reply socket's send buffer); `TX` must hold
///   the largest reply (`max_line + 2`, at least 64);
/// - `LINE`: each session's line buffer, the largest `max_line`;
/// - `UDP_REPLIES` (default 1): UDP reply sockets, see
///   [`Capacity::udp_reply_sockets`];
/// - `BACKLOG` (default [`DEFAULT_BACKLOG`]): connection attempts the
///   listen backlog holds;
/// - `PEERS` (default [`DEFAULT_KNOWN_PEERS`]): proven peers remembered;
/// - `BUSY` (default [`BUSY_SOCKETS`]): buffers for that many busy sockets,
///   1 to [`BUSY_SOCKETS`]; the server uses as many as the spare sockets
///   allow (a board with one busy socket saves the others' 130 bytes each).
///
/// (Stable Rust cannot size an array by `SESSIONS + SPARE + 1 + UDP_REPLIES`,
/// hence `SOCKETS`.) RAM is about `SESSIONS * (RX + TX + LINE) + RX + (1 +
/// UDP_REPLIES) * TX` plus smoltcp's socket state; [`core::mem::size_of`]
/// tells exactly. Every
/// byte of `new()` is zero or uninitialised, so a `static` of it goes to
/// `.bss` and costs no flash; [`Server::new`](super::Server::new) fills in
/// smoltcp's socket slots and the sessions.
///
/// ```
/// use reversal_core::{Server, ServerConfig, StaticResources};
///
/// // On a board: a static, lent to the server for good. cortex-m-rt's
/// // #[entry] hands a `static mut` declared in it out as a `&'static mut`.
/// static mut RESOURCES: StaticResources<'static, 3, 6, 1024, 1024, 512> = StaticResources::new();
///
/// // Anywhere else, for as long as the server lives.
/// let mut resources = StaticResources::<'_, 2, 5, 256, 256, 128>::new();
/// let server = Server::new(ServerConfig::new(2, 128), &mut resources).unwrap();
/// assert_eq!(server.capacity().spare_sockets, 1);
/// ```
pub struct StaticResources<
    'a,
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
    const UDP_REPLIES: usize = 1,
    const BACKLOG: usize = DEFAULT_BACKLOG,
    const PEERS: usize = DEFAULT_KNOWN_PEERS,
    const BUSY: usize = BUSY_SOCKETS,
> {
    sockets: Deferred<[SocketStorage<'a>; SOCKETS]>,
    slots: [Deferred<Slot<'a>>; SESSIONS],
    held: [Connection; SOCKETS],
    streams: [Stream; SESSIONS],
    udp_rx_meta: heapless::Vec<PacketMetadata, UDP_PACKETS>,
    udp_tx_meta: heapless::Vec<PacketMetadata, UDP_REPLIES>,
    udp_replies: [Deferred<ReplySocket>; UDP_REPLIES],
    session_rx: [[u8; RX]; SESSIONS],
    session_tx: [[u8; TX]; SESSIONS],
    lines: [[u8; LINE]; SESSIONS],
    scratch: [u8; TX],
    udp_rx: [u8; RX],
    udp_tx: [[u8; TX]; UDP_REPLIES],
    busy_rx: [[u8; BUSY_RX]; BUSY],
    busy_tx: [[u8; BUSY_TX]; BUSY],
    listener: ListenerStorage<BACKLOG, PEERS, SOCKETS>,
}

impl<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
    const UDP_REPLIES: usize,
    const BACKLOG: usize,
    const PEERS: usize,
    const BUSY: usize,
> StaticResources<'_, SESSIONS, SOCKETS, RX, TX, LINE, UDP_REPLIES, BACKLOG, PEERS, BUSY>
{
    /// The capacity of these resources.
    const CAPACITY: Capacity = Capacity::new(SESSIONS, RX, LINE)
        .with_tx_buffer(TX)
        .with_udp_reply_sockets(UDP_REPLIES)
        .with_spare_sockets(SOCKETS.saturating_sub(SESSIONS + 1 + UDP_REPLIES))
        .with_backlog(BACKLOG)
        .with_known_peers(PEERS);

    /// Empty resources, all zero bytes, usable in a `static`.
    ///
    /// ```
    /// let resources = reversal_core::StaticResources::<'_, 1, 4, 128, 128, 64>::new();
    /// // Four UDP reply sockets.
    /// let resources = reversal_core::StaticResources::<'_, 1, 7, 128, 128, 64, 4>::new();
    /// ```
    ///
    /// `SOCKETS` below `SESSIONS + 2 + UDP_REPLIES` does not compile:
    ///
    /// ```compile_fail
    /// let resources = reversal_core::StaticResources::<'_, 2, 4, 128, 128, 64>::new();
    /// ```
    pub const fn new() -> Self {
        const {
            assert!(
                SOCKETS >= SESSIONS + 2 + UDP_REPLIES,
                "SOCKETS must be SESSIONS + 1 (UDP receiving socket) + UDP_REPLIES + at least one spare socket"
            );
            assert!(
                BUSY >= 1 && BUSY <= BUSY_SOCKETS,
                "BUSY must be 1 to BUSY_SOCKETS"
            );
        }
        StaticResources {
            sockets: Deferred::Empty,
            slots: [const { Deferred::Empty }; SESSIONS],
            held: [Connection::NONE; SOCKETS],
            streams: [Stream::FREE; SESSIONS],
            udp_rx_meta: heapless::Vec::new(),
            udp_tx_meta: heapless::Vec::new(),
            udp_replies: [const { Deferred::Empty }; UDP_REPLIES],
            session_rx: [[0; RX]; SESSIONS],
            session_tx: [[0; TX]; SESSIONS],
            lines: [[0; LINE]; SESSIONS],
            scratch: [0; TX],
            udp_rx: [0; RX],
            udp_tx: [[0; TX]; UDP_REPLIES],
            busy_rx: [[0; BUSY_RX]; BUSY],
            busy_tx: [[0; BUSY_TX]; BUSY],
            listener: ListenerStorage::new(),
        }
    }

    /// The capacity of these resources.
    ///
    /// ```
    /// let resources = reversal_core::StaticResources::<'_, 3, 6, 1024, 1024, 512>::new();
    /// assert_eq!(resources.capacity().spare_sockets, 1);
    /// ```
    pub const fn capacity(&self) -> Capacity {
        Self::CAPACITY
    }
}

impl<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
    const UDP_REPLIES: usize,
    const BACKLOG: usize,
    const PEERS: usize,
    const BUSY: usize,
> Default
    for StaticResources<'_, SESSIONS, SOCKETS, RX, TX, LINE, UDP_REPLIES, BACKLOG, PEERS, BUSY>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
    const UDP_REPLIES: usize,
    const BACKLOG: usize,
    const PEERS: usize,
    const BUSY: usize,
> fmt::Debug
    for StaticResources<'_, SESSIONS, SOCKETS, RX, TX, LINE, UDP_REPLIES, BACKLOG, PEERS, BUSY>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticResources")
            .field("capacity", &Self::CAPACITY)
            .finish_non_exhaustive()
    }
}

impl<
    'a,
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
    const UDP_REPLIES: usize,
    const BACKLOG: usize,
    const PEERS: usize,
    const BUSY: usize,
>
    From<
        &'a mut StaticResources<
            'a,
            SESSIONS,
            SOCKETS,
            RX,
            TX,
            LINE,
            UDP_REPLIES,
            BACKLOG,
            PEERS,
            BUSY,
        >,
    > for ServerResources<'a>
{
    fn from(
        resources: &'a mut StaticResources<
            'a,
            SESSIONS,
            SOCKETS,
            RX,
            TX,
            LINE,
            UDP_REPLIES,
            BACKLOG,
            PEERS,
            BUSY,
        >,
    ) -> Self {
        let StaticResources {
            sockets,
            slots,
            held,
            streams,
            udp_rx_meta,
            udp_tx_meta,
            udp_replies,
            session_rx,
            session_tx,
            lines,
            scratch,
            udp_rx,
            udp_tx,
            busy_rx,
            busy_tx,
            listener,
        } = resources;
        udp_rx_meta.clear();
        while udp_rx_meta.push(PacketMetadata::EMPTY).is_ok() {}
        udp_tx_meta.clear();
        while udp_tx_meta.push(PacketMetadata::EMPTY).is_ok() {}
        ServerResources {
            capacity: StaticResources::<
                SESSIONS,
                SOCKETS,
                RX,
                TX,
                LINE,
                UDP_REPLIES,
                BACKLOG,
                PEERS,
                BUSY,
            >::CAPACITY,
            sockets: sockets.insert([SocketStorage::EMPTY; SOCKETS]),
            slots,
            held,
            streams,
            listener: listener.into(),
            udp_rx_meta,
            udp_tx_meta,
            udp_replies,
            buffers: Buffers {
                session_rx: session_rx.as_flattened_mut(),
                session_tx: session_tx.as_flattened_mut(),
                lines: lines.as_flattened_mut(),
                scratch,
                udp_rx,
                udp_tx: udp_tx.as_flattened_mut(),
                busy_rx: busy_rx.as_flattened_mut(),
                busy_tx: busy_tx.as_flattened_mut(),
            },
        }
    }
}

#[cfg(feature = "alloc")]
pub use heap::HeapResources;

#[cfg(feature = "alloc")]
mod heap {
    use alloc::vec::Vec;
    use core::fmt;
    use core::iter::repeat_with;

    use smoltcp::iface::SocketStorage;
    use smoltcp::socket::udp::PacketMetadata;

    use super::{
        Buffers, Capacity, Connection, Deferred, ReplySocket, ServerResources, Slot, Stream,
        UDP_PACKETS,
    };
    use crate::listener::{Attempt, KnownPeer, ListenerMemory, TrackedSocket};
    use crate::server::busy::{BUSY_RX, BUSY_TX};

    /// A server's memory on the heap, exactly as large as a [`Capacity`]
    /// chosen at run time (feature `alloc`): a host allocates it once at
    /// start, from its settings.
    ///
    /// The buffers are one zeroed allocation: on Linux, the kernel commits
    /// their pages as they are first written.
    ///
    /// ```
    /// use reversal_core::{Capacity, HeapResources, Server, ServerConfig};
    ///
    /// let mut resources = HeapResources::new(Capacity::new(64, 16 * 1024, 1024));
    /// let server = Server::new(ServerConfig::new(64, 1024), &mut resources).unwrap();
    /// assert_eq!(server.capacity().sessions, 64);
    /// ```
    pub struct HeapResources<'a> {
        capacity: Capacity,
        sockets: Vec<SocketStorage<'a>>,
        slots: Vec<Deferred<Slot<'a>>>,
        held: Vec<Connection>,
        streams: Vec<Stream>,
        udp_meta: Vec<PacketMetadata>,
        udp_replies: Vec<Deferred<ReplySocket>>,
        bytes: Vec<u8>,
        backlog: Vec<Attempt>,
        peers: Vec<KnownPeer>,
        tracked: Vec<TrackedSocket>,
    }

    impl HeapResources<'_> {
        /// Memory for `capacity`.
        ///
        /// See the [type's example](HeapResources).
        pub fn new(capacity: Capacity) -> Self {
            HeapResources {
                capacity,
                sockets: repeat_with(SocketStorage::default)
                    .take(capacity.sockets())
                    .collect(),
                slots: repeat_with(|| Deferred::Empty)
                    .take(capacity.sessions)
                    .collect(),
                held: alloc::vec![Connection::NONE; capacity.sockets()],
                streams: alloc::vec![Stream::FREE; capacity.sessions],
                udp_meta: alloc::vec![
                    PacketMetadata::EMPTY;
                    UDP_PACKETS + capacity.udp_reply_sockets
                ],
                udp_replies: repeat_with(|| Deferred::Empty)
                    .take(capacity.udp_reply_sockets)
                    .collect(),
                bytes: alloc::vec![0; capacity.buffer_bytes()],
                backlog: alloc::vec![Attempt::EMPTY; capacity.backlog],
                peers: alloc::vec![KnownPeer::EMPTY; capacity.known_peers],
                tracked: alloc::vec![TrackedSocket::EMPTY; capacity.sockets()],
            }
        }

        /// The capacity of this memory.
        ///
        /// ```
        /// use reversal_core::{Capacity, HeapResources};
        /// let capacity = Capacity::new(2, 1024, 256);
        /// assert_eq!(HeapResources::new(capacity).capacity(), capacity);
        /// ```
        pub const fn capacity(&self) -> Capacity {
            self.capacity
        }
    }

    impl fmt::Debug for HeapResources<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("HeapResources")
                .field("capacity", &self.capacity)
                .finish_non_exhaustive()
        }
    }

    impl<'a> From<&'a mut HeapResources<'a>> for ServerResources<'a> {
        fn from(resources: &'a mut HeapResources<'a>) -> Self {
            let capacity = resources.capacity;
            let (udp_rx_meta, udp_tx_meta) = resources.udp_meta.split_at_mut(UDP_PACKETS);
            let bytes = &mut resources.bytes[..];
            let (session_rx, bytes) = bytes.split_at_mut(capacity.sessions * capacity.rx_buffer);
            let (session_tx, bytes) = bytes.split_at_mut(capacity.sessions * capacity.tx_buffer);
            let (lines, bytes) = bytes.split_at_mut(capacity.sessions * capacity.line_buffer);
            let (scratch, bytes) = bytes.split_at_mut(capacity.tx_buffer);
            let (udp_rx, bytes) = bytes.split_at_mut(capacity.rx_buffer);
            let (udp_tx, bytes) =
                bytes.split_at_mut(capacity.udp_reply_sockets * capacity.tx_buffer);
            let (busy_rx, busy_tx) = bytes.split_at_mut(capacity.spare_sockets * BUSY_RX);
            debug_assert_eq!(busy_tx.len(), capacity.spare_sockets * BUSY_TX);
            ServerResources {
                capacity,
                sockets: &mut resources.sockets,
                slots: &mut resources.slots,
                held: &mut resources.held,
                streams: &mut resources.streams,
                listener: ListenerMemory::new(
                    &mut resources.backlog,
                    &mut resources.peers,
                    &mut resources.tracked,
                ),
                udp_rx_meta,
                udp_tx_meta,
                udp_replies: &mut resources.udp_replies,
                buffers: Buffers {
                    session_rx,
                    session_tx,
                    lines,
                    scratch,
                    udp_rx,
                    udp_tx,
                    busy_rx,
                    busy_tx,
                },
            }
        }
    }
}
