//! A listen backlog for smoltcp: connection attempts that find no listening
//! socket wait for one instead of being reset.
//!
//! smoltcp hands a SYN to the first socket in the `SocketSet` that listens
//! on its port, and answers it with a RST when none does: it has no listen
//! backlog, and each socket serves one connection. A server with N sockets
//! refuses the N+1st client, and every client that comes while a socket is
//! still closing, and every client behind a handful of forged SYNs that
//! hold its sockets in half-open handshakes. A [`Listener`] gives such a
//! server what `listen(fd, backlog)` gives a BSD socket, without touching
//! smoltcp, in memory the caller lends:
//!
//! - **A bounded backlog.** The listener sees every incoming frame before
//!   smoltcp does ([`ListenerDevice`] wraps the caller's device for one
//!   poll). A SYN that no listening socket can take is kept (its headers
//!   and options: an [`Attempt`] is under 100 bytes) instead of reaching
//!   smoltcp, so nobody answers it with a RST. Copies of a waiting SYN (the
//!   client's retransmissions) are merged into it, and copies of a SYN a
//!   socket already took are dropped. When a socket listens again, the
//!   device delivers the waiting SYN to smoltcp as if it had just arrived,
//!   and the handshake goes on from there without the client's next
//!   retransmission.
//! - **Serving and refusing sockets** ([`Role`]). An attempt goes to a
//!   serving socket as soon as one listens. A refusing socket (one that
//!   tells the client no, politely: the reversal server's busy sockets
//!   answer `ERR busy`) takes it only after it has waited
//!   [`admission_wait`](ListenerConfig::admission_wait). Without refusing
//!   sockets, attempts wait until a serving socket takes them.
//! - **When the backlog is full** the oldest attempt of a peer that has not
//!   proved itself gives way to the newcomer (a newcomer that has not
//!   proved itself gives way itself when every waiting peer has), and is
//!   dropped silently, so that its client sends the SYN again, or refused
//!   with a RST ([`WhenFull`]).
//! - **Proven peers go first.** A peer proves itself by sending an ARP
//!   request or reply (or an IPv6 neighbour solicitation or advertisement:
//!   a kernel asks for the server's address before its first SYN) or by
//!   completing a handshake; a bounded table ([`KnownPeer`]) remembers the
//!   most recent ones. Their attempts are handed to sockets before any
//!   other's and never give way to an unproven newcomer. A proven peer's
//!   SYN reaches smoltcp with an ARP reply from it, written from the
//!   addresses its SYN came with: smoltcp's neighbour cache holds a few
//!   entries and it sends one ARP request a second for all neighbours, a
//!   second that forged SYNs compete for.
//! - **Half-open handshakes give way.** A forged SYN takes a socket into
//!   SYN-RECEIVED, where smoltcp holds it until its handshake timeout
//!   while its SYN-ACK waits on an ARP answer that never comes. While a
//!   proven peer's attempt waits, a socket whose half-open peer has not
//!   proved itself within [`half_open_grace`](ListenerConfig::half_open_grace)
//!   listens again (no RST: there is nobody to tell; see
//!   [`reclaimed`](Listener::reclaimed) for smoltcp's ARP wait that stays
//!   with the socket). So a silent SYN holds a backlog entry, never a
//!   socket, for long, and under a flood of forged SYNs a real client on
//!   the link still gets in.
//!
//! # Using it
//!
//! Lend it memory ([`ListenerStorage`] with const-generic sizes, or slices
//! in a [`ListenerMemory`]), then around every poll of the interface:
//!
//! 1. [`update`](Listener::update) it with the time and the sockets that
//!    listen on its port, each with its [`Role`] (serving sockets first in
//!    the `SocketSet`, since smoltcp offers a SYN to sockets in set order);
//! 2. poll smoltcp's ingress through [`device`](Listener::device) instead of
//!    the device itself;
//! 3. include [`poll_at`](Listener::poll_at) in the time of the next poll.
//!
//! A socket must be put back to listening when its connection is over, as
//! with smoltcp alone; the listener puts a socket back itself only when an
//! unproven half-open handshake gives way. `core/examples/listener.rs` is a
//! complete server (`cargo run -p reversal-core --example listener`), and
//! the reversal [`Server`](crate::Server) runs one.
//!
//! ```
//! use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage, Role};
//! use smoltcp::iface::{Config, Interface, SocketSet};
//! use smoltcp::phy::{Loopback, Medium};
//! use smoltcp::socket::tcp;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
//!
//! let mut device = Loopback::new(Medium::Ip);
//! let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
//! iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap());
//! let mut sockets = SocketSet::new(vec![]);
//! let buffer = || tcp::SocketBuffer::new(vec![0; 256]);
//! // One serving socket, and two clients.
//! let mut server = tcp::Socket::new(buffer(), buffer());
//! server.listen(7).unwrap();
//! let server = sockets.add(server);
//! let clients: Vec<_> = (0..2u16)
//!     .map(|n| {
//!         let mut client = tcp::Socket::new(buffer(), buffer());
//!         client.connect(iface.context(), (IpAddress::v4(127, 0, 0, 1), 7), 40_000 + n).unwrap();
//!         sockets.add(client)
//!     })
//!     .collect();
//!
//! // A backlog of 4, 4 known peers, 1 socket shown.
//! let mut storage = ListenerStorage::<4, 4, 1>::new();
//! let mut listener = Listener::new(7, ListenerConfig::new(), &mut storage);
//! for millis in 0..3 {
//!     let now = Instant::from_millis(millis);
//!     listener.update(now, [(Role::Serve, sockets.get_mut::<tcp::Socket>(server))]);
//!     iface.poll(now, &mut listener.device(&mut device), &mut sockets);
//! }
//!
//! // The second client's SYN waits; without the listener it would be reset.
//! assert_eq!(listener.waiting(), 1);
//! assert!(clients.iter().all(|&c| sockets.get::<tcp::Socket>(c).is_open()));
//! ```
//!
//! # Limits
//!
//! - Clients behind a gateway cannot prove themselves by ARP (the gateway
//!   answers for them); until their first completed handshake they compete
//!   with forged SYNs on equal terms, and a handshake of theirs that takes
//!   longer than the grace while a proven client waits is cut short (their
//!   next segment gets a RST). The same holds for every client on a medium
//!   without ARP (`Medium::Ip`).
//! - A proven client that goes silent in its handshake keeps its socket
//!   until the socket's handshake timeout.
//! - The table of proven peers is bounded: more distinct clients at once
//!   than it holds are remembered only from their latest ARP or handshake.
//! - An attacker on the link can send ARP for the addresses it forges;
//!   nothing on the link can tell it from a real host.
//! - A waiting client sees a slow `connect`, not a refusal: the handshake
//!   completes when a socket takes its SYN. Its own connect timeout may end
//!   the wait first.
//! - smoltcp rate-limits its ARP requests to one a second for all
//!   neighbours together; an unproven real client whose address smoltcp
//!   has not resolved may wait that long for its SYN-ACK while forged SYNs
//!   are being answered.
//! - One listener per port; several ports, several listeners, one device
//!   wrapped in the next.

mod backlog;
mod config;
mod device;
mod peers;
mod sockets;
mod stamp;
mod syn;
#[cfg(test)]
mod tests;

use core::fmt;

use smoltcp::phy::{ChecksumCapabilities, Device, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

pub use backlog::Attempt;
pub use config::{ListenerConfig, WhenFull};
pub use device::{ListenerDevice, ListenerRx};
pub use peers::KnownPeer;
pub use sockets::{Role, TrackedSocket};

use crate::fmt::net_debug;
use crate::ingress::{Connection, Segment};
use backlog::Backlog;
use peers::{Peers, proof};
use sockets::{Activity, Tracked};
use stamp::Stamp;
use syn::{MAX_FRAME, Syn};

/// What a [`Listener`] has done since it started.
///
/// ```
/// let counts = reversal_core::listener::ListenerCounts::default();
/// assert_eq!(counts.queued, 0);
/// assert!(counts.to_string().contains("queued 0"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ListenerCounts {
    /// SYNs kept in the backlog because no socket could take them.
    pub queued: u64,
    /// Copies of a waiting SYN merged into it.
    pub merged: u64,
    /// Waiting attempts handed to a socket.
    pub handed: u64,
    /// Attempts that gave way to newer ones in a full backlog (dropped or
    /// reset, as [`WhenFull`] says).
    pub gave_way: u64,
    /// Half-open handshakes of unproven peers whose socket listened again
    /// for waiting attempts.
    pub reclaimed: u64,
}

impl ListenerCounts {
    /// Adds `other`'s counts to these.
    ///
    /// ```
    /// use reversal_core::listener::ListenerCounts;
    /// let mut counts = ListenerCounts { queued: 1, ..Default::default() };
    /// counts.add(&ListenerCounts { queued: 2, ..Default::default() });
    /// assert_eq!(counts.queued, 3);
    /// ```
    pub fn add(&mut self, other: &ListenerCounts) {
        self.queued += other.queued;
        self.merged += other.merged;
        self.handed += other.handed;
        self.gave_way += other.gave_way;
        self.reclaimed += other.reclaimed;
    }
}

impl fmt::Display for ListenerCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "queued {} merged {} handed {} gave-way {} reclaimed {}",
            self.queued, self.merged, self.handed, self.gave_way, self.reclaimed
        )
    }
}

/// The memory a [`Listener`] works in, lent by the caller: the backlog, the
/// proven peers, and one entry per socket it is shown.
///
/// ```
/// use reversal_core::listener::{Attempt, KnownPeer, ListenerMemory, TrackedSocket};
///
/// let (mut backlog, mut peers, mut sockets) =
///     (vec![Attempt::EMPTY; 64], vec![KnownPeer::EMPTY; 16], vec![TrackedSocket::EMPTY; 8]);
/// let memory = ListenerMemory::new(&mut backlog, &mut peers, &mut sockets);
/// ```
#[derive(Debug)]
pub struct ListenerMemory<'a> {
    backlog: &'a mut [Attempt],
    peers: &'a mut [KnownPeer],
    sockets: &'a mut [TrackedSocket],
}

impl<'a> ListenerMemory<'a> {
    /// Room for `backlog.len()` waiting attempts and `peers.len()` proven
    /// peers, and for `sockets.len()` sockets shown at each update.
    ///
    /// See the [type's example](ListenerMemory).
    pub fn new(
        backlog: &'a mut [Attempt],
        peers: &'a mut [KnownPeer],
        sockets: &'a mut [TrackedSocket],
    ) -> Self {
        ListenerMemory {
            backlog,
            peers,
            sockets,
        }
    }
}

/// A listener's memory with its sizes fixed at compile time: `BACKLOG`
/// waiting attempts, `PEERS` proven peers, `SOCKETS` sockets shown at each
/// update. `new()` is `const` and all zero, for a `static` in `.bss`.
///
/// ```
/// use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage};
///
/// static mut STORAGE: ListenerStorage<16, 8, 4> = ListenerStorage::new();
/// let mut storage = ListenerStorage::<16, 8, 4>::new();
/// let listener = Listener::new(8888, ListenerConfig::new(), &mut storage);
/// assert_eq!(listener.capacity(), 16);
/// ```
#[derive(Debug)]
pub struct ListenerStorage<const BACKLOG: usize, const PEERS: usize, const SOCKETS: usize> {
    backlog: [Attempt; BACKLOG],
    peers: [KnownPeer; PEERS],
    sockets: [TrackedSocket; SOCKETS],
}

impl<const BACKLOG: usize, const PEERS: usize, const SOCKETS: usize>
    ListenerStorage<BACKLOG, PEERS, SOCKETS>
{
    /// Empty memory.
    ///
    /// See the [type's example](ListenerStorage).
    pub const fn new() -> Self {
        ListenerStorage {
            backlog: [Attempt::EMPTY; BACKLOG],
            peers: [KnownPeer::EMPTY; PEERS],
            sockets: [TrackedSocket::EMPTY; SOCKETS],
        }
    }
}

impl<const BACKLOG: usize, const PEERS: usize, const SOCKETS: usize> Default
    for ListenerStorage<BACKLOG, PEERS, SOCKETS>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const BACKLOG: usize, const PEERS: usize, const SOCKETS: usize>
    From<&'a mut ListenerStorage<BACKLOG, PEERS, SOCKETS>> for ListenerMemory<'a>
{
    fn from(storage: &'a mut ListenerStorage<BACKLOG, PEERS, SOCKETS>) -> Self {
        ListenerMemory::new(
            &mut storage.backlog,
            &mut storage.peers,
            &mut storage.sockets,
        )
    }
}

/// A frame the listener owes for a SYN it decided on, written in
/// [`Listener::frame`] already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    /// The RST of an attempt that gave way ([`WhenFull::Reset`]), to the
    /// wire.
    Reset,
    /// A proven peer's neighbour entry, to smoltcp ([`Syn::emit_arp`]).
    Neighbour,
}

/// What the listener's device does before reading the device's next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Nothing.
    Nothing,
    /// Sends the first so many bytes of [`Listener::frame`] to the wire.
    Transmit(usize),
    /// Hands the first so many bytes of [`Listener::frame`] to smoltcp.
    Deliver(usize),
}

/// Listening sockets free to take a SYN, by role.
#[derive(Debug, Clone, Copy, Default)]
struct Free {
    serve: usize,
    refuse: usize,
}

/// A listen backlog for one TCP port; see the [module](self).
pub struct Listener<'a> {
    port: u16,
    config: ListenerConfig,
    backlog: Backlog<'a>,
    peers: Peers<'a>,
    tracked: Tracked<'a>,
    /// The time of the last update.
    now: Instant,
    free: Free,
    /// Refusing sockets shown at the last update, listening or not.
    refusers: usize,
    closed: bool,
    /// A frame owed for the SYN just decided on, and its length in
    /// `frame`; delivered at the next receive (each frame read leaves at
    /// most one, and the next receive delivers it before anything else).
    owed: Option<(Owed, u8)>,
    /// Where the frames it hands smoltcp are written: here rather than on
    /// the stack of smoltcp's ingress, which a board's RAM budget counts at
    /// its deepest.
    frame: [u8; MAX_FRAME],
    counts: ListenerCounts,
}

impl fmt::Debug for Listener<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("port", &self.port)
            .field("config", &self.config)
            .field("waiting", &self.backlog.len())
            .field("counts", &self.counts)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<'a> Listener<'a> {
    /// A listener for SYNs to `port`, in `memory`. Frames for other ports,
    /// and everything that is not a SYN, pass untouched.
    ///
    /// See the [module example](self).
    pub fn new(port: u16, config: ListenerConfig, memory: impl Into<ListenerMemory<'a>>) -> Self {
        let ListenerMemory {
            backlog,
            peers,
            sockets,
        } = memory.into();
        Listener {
            port,
            config,
            backlog: Backlog::new(backlog),
            peers: Peers::new(peers),
            tracked: Tracked::new(sockets),
            now: Instant::ZERO,
            free: Free::default(),
            refusers: 0,
            closed: false,
            owed: None,
            frame: [0; MAX_FRAME],
            counts: ListenerCounts::default(),
        }
    }

    /// The configuration in force.
    ///
    /// ```
    /// # use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage};
    /// # let mut storage = ListenerStorage::<4, 4, 1>::new();
    /// let listener = Listener::new(7, ListenerConfig::new(), &mut storage);
    /// assert_eq!(listener.config(), &ListenerConfig::new());
    /// ```
    pub const fn config(&self) -> &ListenerConfig {
        &self.config
    }

    /// How many attempts the backlog holds at most.
    ///
    /// See [`ListenerStorage`].
    pub fn capacity(&self) -> usize {
        self.backlog.capacity()
    }

    /// Attempts waiting now.
    ///
    /// See the [module example](self).
    pub const fn waiting(&self) -> usize {
        self.backlog.len()
    }

    /// What it has done so far.
    ///
    /// ```
    /// # use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage};
    /// # let mut storage = ListenerStorage::<4, 4, 1>::new();
    /// let listener = Listener::new(7, ListenerConfig::new(), &mut storage);
    /// assert_eq!(listener.counts().handed, 0);
    /// ```
    pub const fn counts(&self) -> ListenerCounts {
        self.counts
    }

    /// Takes in what the sockets on its port are doing, before smoltcp
    /// reads the next frames: which listen (and with which [`Role`]),
    /// which are in a handshake and since when, which hold a connection.
    /// Call it before each poll, with the sockets in `SocketSet` order.
    ///
    /// While attempts wait, a socket whose half-open peer has not proved
    /// itself within the grace listens again here (no RST is sent).
    /// Sockets on other ports, and past the table lent for them, only
    /// count as listening or not.
    ///
    /// See the [module example](self).
    pub fn update<'s, 'b: 's>(
        &mut self,
        now: Instant,
        sockets: impl IntoIterator<Item = (Role, &'s mut tcp::Socket<'b>)>,
    ) {
        self.now = now;
        self.free = Free::default();
        self.refusers = 0;
        let mut shown = 0;
        for (role, socket) in sockets {
            if role == Role::Refuse {
                self.refusers += 1;
            }
            let activity = self.observe(shown, role, socket);
            if activity == Activity::Listening {
                match role {
                    Role::Serve => self.free.serve += 1,
                    Role::Refuse => self.free.refuse += 1,
                }
            }
            shown += 1;
        }
        self.tracked.set_len(shown);
    }

    /// Notes what the `index`-th socket shown does; lets its half-open
    /// handshake give way if it must.
    fn observe(&mut self, index: usize, role: Role, socket: &mut tcp::Socket<'_>) -> Activity {
        // Called for every socket before every batch of frames: the common
        // cases (listening, open) cost a state read and a table write.
        let ours = |endpoint: Option<IpEndpoint>| endpoint.is_some_and(|e| e.port == self.port);
        let activity = match socket.state() {
            tcp::State::Listen if socket.listen_endpoint().port == self.port => Activity::Listening,
            tcp::State::Listen | tcp::State::Closed | tcp::State::TimeWait => Activity::Idle,
            tcp::State::SynReceived if ours(socket.local_endpoint()) => Activity::HalfOpen,
            _ if ours(socket.local_endpoint()) => Activity::Held,
            _ => Activity::Idle,
        };
        let Some(before) = self.tracked.entry(index).map(|entry| *entry) else {
            return activity;
        };
        let connection = match (activity, socket.remote_endpoint()) {
            (Activity::HalfOpen | Activity::Held, Some(peer)) => Connection {
                peer,
                port: self.port,
            },
            _ => Connection::NONE,
        };
        let same = before.connection == connection && before.activity == activity;
        let (since, proven) = match activity {
            Activity::HalfOpen if same => (before.since, before.proven),
            _ => (Stamp::at(self.now), false),
        };
        if activity == Activity::Held && !same {
            // A handshake completed: its peer owns its address.
            self.peers.prove(connection.peer.addr);
            self.backlog.prove(connection.peer.addr);
        }
        let reclaimed =
            activity == Activity::HalfOpen && !proven && self.gives_way(role, connection, since);
        let activity = if reclaimed && self.reclaim(socket, connection) {
            Activity::Listening
        } else {
            activity
        };
        if let Some(entry) = self.tracked.entry(index) {
            *entry = TrackedSocket {
                connection,
                activity,
                role,
                since,
                reclaimed,
                proven,
            };
        }
        activity
    }

    /// Puts a socket whose half-open handshake gave way back to listening;
    /// true if it listens.
    fn reclaim(&mut self, socket: &mut tcp::Socket<'_>, connection: Connection) -> bool {
        let endpoint = socket.listen_endpoint();
        socket.abort();
        // Listening at once forgets the connection before smoltcp sends
        // its RST: a forged peer is not worth one.
        let listens = socket.listen(endpoint).is_ok();
        if listens {
            net_debug!(
                "listener: half-open handshake of {} gave way",
                connection.peer
            );
            self.counts.reclaimed += 1;
        }
        listens
    }

    /// The sockets whose half-open handshake gave way at the last update,
    /// by their place in the order they were shown (0 for the first).
    ///
    /// smoltcp keeps a socket's wait for an ARP answer in the `SocketSet`,
    /// not in the socket: for up to a second after its last unanswered ARP
    /// request, a socket sends nothing, whatever connection it has by then.
    /// A reclaimed socket held a forged peer's handshake, so its next
    /// SYN-ACK would wait that second. Taking the socket out of the set and
    /// adding it back (`SocketSet::remove`, then `add`) clears the wait; in
    /// a set whose sockets are never removed it gets its handle back. The
    /// reversal [`Server`](crate::Server) does this.
    ///
    /// ```
    /// # use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage};
    /// # let mut storage = ListenerStorage::<4, 4, 1>::new();
    /// let listener = Listener::new(7, ListenerConfig::new(), &mut storage);
    /// assert_eq!(listener.reclaimed().count(), 0);
    /// ```
    pub fn reclaimed(&self) -> impl Iterator<Item = usize> + '_ {
        self.tracked
            .iter()
            .enumerate()
            .filter(|(_, socket)| socket.reclaimed)
            .map(|(index, _)| index)
    }

    /// Whether a half-open handshake of `connection`, on a socket of
    /// `role`, since `since`, gives way now: its peer has not proved itself
    /// within the grace, and a proven peer's attempt waits that the socket
    /// could take. (Handing the socket to another unproven attempt would
    /// help nobody: a real client that cannot prove itself by ARP needs the
    /// time as much as the one in the socket.)
    fn gives_way(&self, role: Role, connection: Connection, since: Stamp) -> bool {
        let config = &self.config;
        let wait = match role {
            Role::Serve => Duration::ZERO,
            Role::Refuse => config.admission_wait,
        };
        since.age(self.now) >= config.half_open_grace
            && self.backlog.proven_waited(self.now, wait)
            && !self.peers.contains(connection.peer.addr)
    }

    /// The caller's `device` for this poll, with this listener in front of
    /// smoltcp: pass it to `Interface::poll` or `poll_ingress_single`.
    ///
    /// See the [module example](self).
    pub fn device<'d, D: Device + ?Sized>(
        &'d mut self,
        device: &'d mut D,
    ) -> ListenerDevice<'d, 'a, D> {
        ListenerDevice::new(self, device)
    }

    /// When the listener next needs a poll (an attempt to hand over, a
    /// wait or a grace running out), if ever; `now` or earlier: at once.
    ///
    /// ```
    /// # use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage};
    /// # let mut storage = ListenerStorage::<4, 4, 1>::new();
    /// let listener = Listener::new(7, ListenerConfig::new(), &mut storage);
    /// assert_eq!(listener.poll_at(), None, "nothing waits");
    /// ```
    pub fn poll_at(&self) -> Option<Instant> {
        let now = self.now;
        if self.owed.is_some() || self.next_to_hand().is_some() {
            return Some(now);
        }
        if self.backlog.is_empty() {
            return None;
        }
        let config = &self.config;
        let proven_waits = self.backlog.proven_waited(now, Duration::ZERO);
        let proven_waited = self.backlog.proven_waited(now, config.admission_wait);
        let wait_ends = (self.refusers > 0)
            .then(|| self.backlog.next_to_wait(now, config.admission_wait))
            .flatten();
        let grace_ends = self
            .tracked
            .iter()
            .filter(|socket| socket.activity == Activity::HalfOpen && !socket.proven)
            .filter(|socket| match socket.role {
                Role::Serve => proven_waits,
                Role::Refuse => proven_waited,
            })
            .filter(|socket| !self.peers.contains(socket.connection.peer.addr))
            .map(|socket| socket.since.when_aged(config.half_open_grace, now))
            .min();
        wait_ends.into_iter().chain(grace_ends).min()
    }

    /// Stops keeping SYNs, for a server that shuts down: from now on every
    /// frame passes untouched, and the attempts still waiting are handed
    /// to smoltcp, which resets them if no socket listens.
    ///
    /// ```
    /// # use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage};
    /// # let mut storage = ListenerStorage::<4, 4, 1>::new();
    /// let mut listener = Listener::new(7, ListenerConfig::new(), &mut storage);
    /// listener.close();
    /// assert!(listener.is_closed());
    /// ```
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// See [`close`](Self::close).
    pub const fn is_closed(&self) -> bool {
        self.closed
    }

    /// Decides whether smoltcp gets `frame`: false keeps it away (a SYN
    /// kept or dropped).
    fn inspect(&mut self, medium: Medium, checksums: &ChecksumCapabilities, frame: &[u8]) -> bool {
        if self.closed {
            return true;
        }
        if let Some(address) = proof(medium, frame) {
            self.peers.prove(address);
            self.backlog.prove(address);
            return true;
        }
        match Segment::parse(medium, checksums, frame) {
            Some(segment)
                if segment.is_connection_request() && segment.connection.port == self.port =>
            {
                self.admit(medium, checksums, frame, segment.connection)
            }
            _ => true,
        }
    }

    /// Decides the fate of a SYN to our port; true: smoltcp takes it.
    fn admit(
        &mut self,
        medium: Medium,
        checksums: &ChecksumCapabilities,
        frame: &[u8],
        connection: Connection,
    ) -> bool {
        if self.tracked.holds(connection) {
            // A copy of a SYN a socket took already: that socket answers it.
            return false;
        }
        let Some(syn) = Syn::parse(medium, frame, checksums) else {
            // Damaged: smoltcp drops it.
            return true;
        };
        let proven = self.peers.contains(syn.peer.addr);
        if let Some(index) = self.backlog.position(connection) {
            self.backlog.merge(index, syn, proven);
            self.counts.merged += 1;
            return false;
        }
        if self.backlog.is_empty() && self.free.serve > 0 {
            self.free.serve -= 1;
            self.tracked
                .claim(Role::Serve, connection, proven, self.now);
            if proven {
                self.owe(Owed::Neighbour, |frame| syn.emit_arp(frame));
            }
            return true;
        }
        let attempt = Attempt {
            syn,
            arrived: Stamp::at(self.now),
            proven,
            announced: false,
        };
        match self.backlog.push(attempt) {
            Ok(()) => self.counts.queued += 1,
            Err(newcomer) => match self.backlog.victim(&newcomer, self.now) {
                Some(index) => {
                    let victim = self.backlog.take(index);
                    // Cannot fail: a place was just freed.
                    let _ = self.backlog.push(newcomer);
                    self.counts.queued += 1;
                    self.give_way(victim, medium);
                }
                None => self.give_way(newcomer, medium),
            },
        }
        false
    }

    /// An attempt gave way to a newer one: forgotten, or reset.
    fn give_way(&mut self, attempt: Attempt, medium: Medium) {
        self.counts.gave_way += 1;
        net_debug!("listener: attempt of {} gave way", attempt.syn.peer);
        if self.config.when_full == WhenFull::Reset {
            self.owe(Owed::Reset, |frame| {
                Some(attempt.syn.emit_reset(medium, frame))
            });
        }
    }

    /// Writes the frame `write` makes into `frame` and owes it, if it made
    /// one. Only while `frame` is free: when a frame read from the device
    /// is being decided on.
    fn owe(&mut self, owed: Owed, write: impl FnOnce(&mut [u8]) -> Option<usize>) {
        self.owed = write(&mut self.frame)
            .and_then(|len| u8::try_from(len).ok())
            .map(|len| (owed, len));
    }

    /// Whether it has a frame for smoltcp or the wire before the device's
    /// next one.
    fn has_next(&self) -> bool {
        self.owed.is_some() || self.next_to_hand().is_some()
    }

    /// Puts in `frame` what comes before the device's next frame: a frame
    /// owed, or the next frame of the attempt a socket can take now (an
    /// ARP reply from its client if the client proved itself, so that
    /// smoltcp has its address at hand; then, at the next call, its SYN,
    /// which leaves the backlog).
    fn next(&mut self, medium: Medium) -> Next {
        if let Some((owed, len)) = self.owed.take() {
            let len = usize::from(len);
            return match owed {
                Owed::Reset => Next::Transmit(len),
                Owed::Neighbour => Next::Deliver(len),
            };
        }
        let Some(index) = self.next_to_hand() else {
            return Next::Nothing;
        };
        let attempt = self.backlog.get_mut(index);
        if attempt.proven && !attempt.announced {
            attempt.announced = true;
            let syn = attempt.syn;
            if let Some(len) = syn.emit_arp(&mut self.frame) {
                return Next::Deliver(len);
            }
        }
        let syn = self.hand(index);
        Next::Deliver(syn.emit(medium, &mut self.frame))
    }

    /// The waiting attempt a listening socket can take now, if any.
    fn next_to_hand(&self) -> Option<usize> {
        if self.closed || self.free.serve > 0 {
            return self.backlog.first(self.now, |_| true);
        }
        if self.free.refuse > 0 {
            let (now, wait) = (self.now, self.config.admission_wait);
            return self
                .backlog
                .first(now, |attempt| attempt.arrived.age(now) >= wait);
        }
        None
    }

    /// Takes the attempt at `index` out of the backlog for a socket.
    fn hand(&mut self, index: usize) -> Syn {
        let attempt = self.backlog.take(index);
        self.counts.handed += 1;
        if self.closed {
            return attempt.syn;
        }
        let role = if self.free.serve > 0 {
            self.free.serve -= 1;
            Role::Serve
        } else {
            self.free.refuse = self.free.refuse.saturating_sub(1);
            Role::Refuse
        };
        self.tracked
            .claim(role, attempt.syn.connection(), attempt.proven, self.now);
        attempt.syn
    }
}
