//! The server: smoltcp sockets driven by the sessions, in one poll loop.
//!
//! All memory comes from [resources](ServerResources) the caller lends
//! (a `static` on a board, the heap on a host), sized at run time; the
//! server allocates nothing and nothing grows. It owns its `SocketSet`; the
//! caller owns the `Interface` and the `Device` and hands them to
//! [`Server::poll`], which moves bytes and returns when it next needs to
//! run, so a host sleeps on that deadline and a board on a timer.
//!
//! One file per job: the [configuration](ServerConfig) and its errors
//! (`config`), the [counters](Counters), the [resources](ServerResources)
//! and their [`Capacity`], the session slots and their phases (`tcp`), the
//! busy sockets (`busy`), UDP and its reply sockets (`udp`), how a TCP
//! socket is made and put back to listening (`socket`), taking frames in
//! through the ingress filters and the listen backlog (`receive`), which
//! connection each session socket holds for the ingress's write ends
//! (`push`), sending and watching the device (`transmit`); this file is the
//! poll loop that runs them in turn.
//!
//! Connections that come while every session is taken wait in the listen
//! backlog (a [`Listener`]) for the configured
//! admission wait: a session that frees in time takes the connection, and
//! otherwise a busy socket answers it with `ERR busy` and a FIN.

mod busy;
mod caller_sockets;
mod config;
mod context;
mod counters;
mod deferred;
mod push;
mod receive;
mod resources;
mod socket;
mod tcp;
mod transmit;
mod udp;

use core::fmt;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{Socket as TcpSocket, State as TcpState};
use smoltcp::socket::udp::PacketBuffer;
use smoltcp::time::{Duration, Instant};

use crate::fmt::net_info;
use crate::ingress::{HeldConnections, WriteEnds};
use crate::listener::{Listener, Role};

pub use busy::BUSY_SOCKETS;
pub use config::{ConfigError, DEFAULT_PORT, ServerConfig};
pub use counters::{Counters, ErrorCounts};
#[cfg(feature = "alloc")]
pub use resources::HeapResources;
pub use resources::{
    Capacity, DEFAULT_BACKLOG, DEFAULT_KNOWN_PEERS, ServerResources, StaticResources,
};
pub use udp::{UDP_PACKETS, UDP_REPLY_TIMEOUT};

use busy::{BUSY_RX, BUSY_TX, BusySockets};
use context::Context;
use receive::receive;
use resources::pieces;
use tcp::Sessions;
use transmit::transmit;
use udp::Udp;

/// Rounds of receive/answer/transmit in one [`Server::poll`] before it yields.
pub const MAX_ROUNDS: usize = 16;

/// The reversal server over smoltcp sockets.
///
/// ```
/// use reversal_core::{Server, ServerConfig, StaticResources};
/// use smoltcp::iface::{Config, Interface};
/// use smoltcp::phy::{Loopback, Medium};
/// use smoltcp::time::Instant;
/// use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
///
/// let mut device = Loopback::new(Medium::Ip);
/// let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
/// iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap());
///
/// let mut resources = StaticResources::<'_, 2, 5, 512, 512, 256>::new();
/// let mut server = Server::new(ServerConfig::new(2, 256), &mut resources).unwrap();
/// let next = server.poll(Instant::ZERO, &mut iface, &mut device);
/// assert_eq!(server.counters().connections, 0);
/// assert!(next.is_none(), "an idle server has no deadline");
/// ```
pub struct Server<'a> {
    config: ServerConfig,
    capacity: Capacity,
    sockets: SocketSet<'a>,
    sessions: Sessions<'a>,
    busy: BusySockets,
    udp: Option<Udp<'a>>,
    /// As large as a session's send buffer: replies are built here.
    scratch: &'a mut [u8],
    /// Connections the sockets hold, refreshed before each batch of frames.
    held: HeldConnections<'a>,
    /// The listen backlog, in front of smoltcp's ingress.
    listener: Listener<'a>,
    /// Which TCP sockets serve and which refuse, for the listener.
    roles: Roles,
    /// Where each session's client ended its writes: the idle flush answers
    /// a partial line only there.
    write_ends: WriteEnds<'a>,
    /// Counters of finished sessions plus server-level events.
    totals: Counters,
    shutting_down: bool,
}

impl fmt::Debug for Server<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("capacity", &self.capacity)
            .field("active_sessions", &self.active_sessions())
            .field("counters", &self.counters())
            .field("shutting_down", &self.shutting_down)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Server<'_> {
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

impl<'a> Server<'a> {
    /// Builds the sockets and sessions in `resources` and starts listening.
    ///
    /// ```
    /// use reversal_core::{server::ConfigError, Server, ServerConfig, StaticResources};
    ///
    /// let mut resources = StaticResources::<'_, 2, 5, 256, 256, 128>::new();
    /// // Three sessions do not fit resources made for two.
    /// let err = Server::new(ServerConfig::new(3, 128), &mut resources).unwrap_err();
    /// assert_eq!(err, ConfigError::Sessions { max: 2 });
    /// ```
    ///
    /// # Errors
    ///
    /// The configuration does not fit the resources' [`Capacity`], or a
    /// port is 0.
    pub fn new(
        config: ServerConfig,
        resources: impl Into<ServerResources<'a>>,
    ) -> Result<Self, ConfigError> {
        let ServerResources {
            capacity,
            sockets,
            slots,
            held,
            listener,
            streams,
            udp_rx_meta,
            udp_tx_meta,
            udp_replies,
            buffers: bytes,
        } = resources.into();
        check(&config, &capacity)?;
        let mut set = SocketSet::new(sockets);
        // Session sockets first: smoltcp hands a SYN to the first listening
        // socket in the set, so a busy socket only gets it when all are taken.
        let session_buffers = pieces(bytes.session_rx, capacity.rx_buffer)
            .zip(pieces(bytes.session_tx, capacity.tx_buffer))
            .zip(pieces(bytes.lines, capacity.line_buffer))
            .map(|((rx, tx), line)| (rx, tx, line));
        let sessions = Sessions::new(slots, session_buffers, &mut set, &config)?;
        let busy_buffers = pieces(bytes.busy_rx, BUSY_RX).zip(pieces(bytes.busy_tx, BUSY_TX));
        // The spare sockets the caller does not keep: `check` leaves at least one.
        let busy_count = capacity.spare_sockets - config.caller_sockets;
        let busy = BusySockets::new(busy_buffers.take(busy_count), &mut set, &config);
        let udp = config.udp_port.map(|port| {
            let rx = PacketBuffer::new(udp_rx_meta, bytes.udp_rx);
            // One reply each: metadata for one, and a send buffer's bytes.
            let reply_buffers = udp_tx_meta
                .chunks_mut(1)
                .zip(pieces(bytes.udp_tx, capacity.tx_buffer));
            Udp::bind(port, rx, udp_replies, reply_buffers, &mut set)
        });
        net_info!(
            "listening on TCP port {} with {} sessions, lines up to {} bytes, mode {}",
            config.port,
            config.sessions,
            config.session.max_line,
            config.session.mode
        );
        // There is a busy socket: `check` leaves a spare socket for one.
        let roles = Roles {
            first_busy: busy.handles().next().unwrap_or_default(),
            last_busy: busy.handles().last().unwrap_or_default(),
        };
        Ok(Server {
            config,
            capacity,
            sockets: set,
            sessions,
            busy,
            udp,
            scratch: bytes.scratch,
            held: HeldConnections::new(held),
            listener: Listener::new(config.port, config.listener, listener),
            roles,
            write_ends: WriteEnds::new(streams, config.port, capacity.rx_buffer),
            totals: Counters::default(),
            shutting_down: false,
        })
    }

    /// The configuration in force.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # let mut resources = StaticResources::<'_, 1, 4, 128, 128, 64>::new();
    /// let server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// assert_eq!(server.config().sessions, 1);
    /// ```
    pub const fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The capacity of the resources the server runs in.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # let mut resources = StaticResources::<'_, 2, 5, 128, 128, 64>::new();
    /// let server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// assert_eq!((server.config().sessions, server.capacity().sessions), (1, 2));
    /// ```
    pub const fn capacity(&self) -> Capacity {
        self.capacity
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
            push::refresh(&mut self.write_ends, &self.sockets, &self.sessions);
            let more_waiting = receive(
                now,
                iface,
                device,
                &mut self.sockets,
                &mut self.held,
                (&mut self.listener, &self.roles),
                &mut self.write_ends,
            );
            // Answer before transmitting, so the ACK of a line rides on its
            // reply: one frame per request instead of two.
            let moved = self.service(now, iface);
            let device_full = transmit(now, iface, device, &mut self.sockets);
            if let Some(udp) = &mut self.udp {
                udp.transmitted(&self.sockets, device_full);
            }
            if !moved && !more_waiting {
                return self.next_deadline(now, iface);
            }
        }
        // Still busy: ask to be called again at once.
        Some(now)
    }

    /// Like [`poll`](Self::poll), but returns how long the caller may sleep.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # use smoltcp::{iface::{Config, Interface}, phy::{Loopback, Medium}, time::Instant, wire::HardwareAddress};
    /// # let mut device = Loopback::new(Medium::Ip);
    /// # let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
    /// # let mut resources = StaticResources::<'_, 1, 4, 128, 128, 64>::new();
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
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # let mut resources = StaticResources::<'_, 1, 4, 128, 128, 64>::new();
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
        self.listener.close();
        self.sessions.shutdown(&mut self.sockets);
        self.busy.shutdown(&mut self.sockets);
        if let Some(udp) = &mut self.udp {
            udp.close(&mut self.sockets);
        }
    }

    /// Whether a shutdown has finished: every socket is closed.
    ///
    /// See [`shutdown`](Self::shutdown).
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down
            && self
                .sessions
                .handles()
                .chain(self.busy.handles())
                .all(|h| self.sockets.get::<TcpSocket>(h).state() == TcpState::Closed)
    }

    /// Sessions open now.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # let mut resources = StaticResources::<'_, 1, 4, 128, 128, 64>::new();
    /// let server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// assert_eq!(server.active_sessions(), 0);
    /// ```
    pub fn active_sessions(&self) -> usize {
        self.sessions.open().count()
    }

    /// Everything done so far, open sessions included.
    ///
    /// See the [`Server`] example.
    pub fn counters(&self) -> Counters {
        let mut counters = self.totals;
        for session in self.sessions.open() {
            counters.add_session(&session.stats());
        }
        counters.backlog = self.listener.counts();
        counters
    }

    /// The server's own sockets: sessions, busy sockets and UDP's.
    fn own_sockets(&self) -> impl Iterator<Item = SocketHandle> {
        let udp = self.udp.iter().flat_map(Udp::handles);
        self.sessions
            .handles()
            .chain(self.busy.handles())
            .chain(udp)
    }

    /// Connections waiting in the listen backlog now.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # let mut resources = StaticResources::<'_, 1, 4, 128, 128, 64>::new();
    /// let server = Server::new(ServerConfig::new(1, 64), &mut resources).unwrap();
    /// assert_eq!(server.waiting(), 0);
    /// ```
    pub const fn waiting(&self) -> usize {
        self.listener.waiting()
    }

    fn next_deadline(&mut self, now: Instant, iface: &mut Interface) -> Option<Instant> {
        [
            self.sessions.deadline(&self.config),
            self.busy.deadline(&self.config),
            self.listener.poll_at(),
            self.udp.as_ref().and_then(Udp::deadline),
            iface.poll_at(now, &self.sockets),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Moves bytes between sockets and sessions, rejects with `ERR busy` and
    /// answers datagrams; true if anything changed.
    fn service(&mut self, now: Instant, iface: &mut Interface) -> bool {
        let mut cx = Context {
            now,
            config: &self.config,
            shutting_down: self.shutting_down,
            scratch: self.scratch,
            totals: &mut self.totals,
            write_ends: self.write_ends.reborrow(),
        };
        let mut moved = self.sessions.service(&mut self.sockets, &mut cx);
        moved |= self.busy.service(&mut self.sockets, &mut cx);
        if let Some(udp) = &mut self.udp {
            moved |= udp.service(&mut self.sockets, &mut cx, iface);
        }
        moved
    }
}

/// The role of each of the server's TCP sockets, for the listener. The
/// session sockets come first in the set, the busy sockets right after
/// them (see [`Server::new`]).
#[derive(Debug)]
struct Roles {
    first_busy: SocketHandle,
    last_busy: SocketHandle,
}

impl Roles {
    /// What `handle` does, if it is one of the server's TCP sockets.
    fn of(&self, handle: SocketHandle) -> Option<Role> {
        if handle < self.first_busy {
            Some(Role::Serve)
        } else if handle <= self.last_busy {
            Some(Role::Refuse)
        } else {
            None
        }
    }
}

/// Whether `config` can run in memory of `capacity`.
fn check(config: &ServerConfig, capacity: &Capacity) -> Result<(), ConfigError> {
    if config.sessions == 0 || config.sessions > capacity.sessions {
        return Err(ConfigError::Sessions {
            max: capacity.sessions,
        });
    }
    let needed = config.caller_sockets.saturating_add(1);
    if capacity.spare_sockets < needed {
        return Err(ConfigError::SpareSockets {
            needed,
            capacity: capacity.spare_sockets,
        });
    }
    if config.port == 0 || config.udp_port == Some(0) {
        return Err(ConfigError::Port);
    }
    if config.udp_port.is_some() && capacity.udp_reply_sockets == 0 {
        return Err(ConfigError::UdpReplySockets);
    }
    config.session.check(capacity.line_buffer)?;
    let needed = config.session.max_reply_len();
    if capacity.tx_buffer < needed {
        return Err(ConfigError::SendBuffer {
            needed,
            capacity: capacity.tx_buffer,
        });
    }
    Ok(())
}

// Whole-stack behaviour (sessions, busy sockets, UDP, shutdown) is tested
// over the simulated network in `tests/` (reversal-sim); here only what a
// client cannot see.
#[cfg(test)]
mod tests {
    use super::*;

    type Resources = StaticResources<'static, 2, 5, 1024, 1024, 64>;

    fn resources() -> &'static mut Resources {
        Box::leak(Box::new(Resources::new()))
    }

    fn refused(
        config: ServerConfig,
        resources: impl Into<ServerResources<'static>>,
    ) -> Option<ConfigError> {
        Server::new(config, resources).err()
    }

    #[test]
    fn a_config_that_does_not_fit_the_resources_is_refused() {
        let sessions = Some(ConfigError::Sessions { max: 2 });
        assert_eq!(refused(ServerConfig::new(0, 64), resources()), sessions);
        assert_eq!(refused(ServerConfig::new(3, 64), resources()), sessions);
        let port = Some(ConfigError::Port);
        let config = ServerConfig::new(2, 64);
        assert_eq!(refused(config.with_port(0), resources()), port);
        assert_eq!(refused(config.with_udp_port(Some(0)), resources()), port);
        assert!(matches!(
            refused(ServerConfig::new(2, 65), resources()),
            Some(ConfigError::Session(_))
        ));
        let small_tx: &'static mut StaticResources<'static, 1, 4, 64, 32, 64> =
            Box::leak(Box::new(StaticResources::new()));
        assert_eq!(
            refused(ServerConfig::new(1, 64), small_tx),
            Some(ConfigError::SendBuffer {
                needed: 66,
                capacity: 32
            })
        );
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn resources_without_a_spare_socket_for_a_busy_one_are_refused() {
        let capacity = Capacity::new(1, 1024, 64).with_spare_sockets(0);
        let resources = Box::leak(Box::new(HeapResources::new(capacity)));
        let refusal = refused(ServerConfig::new(1, 64), resources);
        assert_eq!(
            refusal,
            Some(ConfigError::SpareSockets {
                needed: 1,
                capacity: 0
            })
        );
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn udp_without_a_reply_socket_is_refused_and_without_udp_none_is_needed() {
        let capacity = Capacity::new(1, 1024, 64).with_udp_reply_sockets(0);
        let resources = || Box::leak(Box::new(HeapResources::new(capacity)));
        let config = ServerConfig::new(1, 64);
        let refusal = refused(config, resources());
        assert_eq!(refusal, Some(ConfigError::UdpReplySockets));
        assert_eq!(refused(config.with_udp_port(None), resources()), None);
    }

    #[test]
    fn udp_reply_sockets_come_after_the_receiving_socket_in_the_set() {
        // smoltcp hands a datagram to the first socket bound to its port:
        // the receiving one must come first.
        let resources: &'static mut StaticResources<'static, 1, 6, 256, 256, 64, 3> =
            Box::leak(Box::new(StaticResources::new()));
        let server = Server::new(ServerConfig::new(1, 64), resources).unwrap();
        let udp: Vec<_> = server.udp.as_ref().unwrap().handles().collect();
        assert_eq!(udp.len(), 4);
        assert!(udp.windows(2).all(|pair| pair[0] < pair[1]), "{udp:?}");
    }

    #[test]
    fn spare_sockets_beyond_the_caller_ones_are_busy_sockets_up_to_the_most() {
        let busy = |caller_sockets| {
            let resources: &'static mut StaticResources<'static, 1, 9, 256, 256, 64> =
                Box::leak(Box::new(StaticResources::new()));
            let config = ServerConfig::new(1, 64).with_caller_sockets(caller_sockets);
            let server = Server::new(config, resources).unwrap();
            server.busy.handles().count()
        };
        // Six spare sockets: at most BUSY_SOCKETS busy ones.
        assert_eq!(busy(0), BUSY_SOCKETS);
        assert_eq!(busy(3), 3);
        assert_eq!(busy(5), 1);
    }

    #[test]
    fn session_sockets_come_first_in_the_set_and_only_as_many_as_configured() {
        // smoltcp hands a SYN to the first listening socket: a busy socket
        // must only get one when every session socket is taken.
        let resources: &'static mut StaticResources<'static, 3, 7, 256, 256, 64> =
            Box::leak(Box::new(StaticResources::new()));
        let server = Server::new(ServerConfig::new(2, 64), resources).unwrap();
        let sessions: Vec<_> = server.sessions.handles().collect();
        let busy: Vec<_> = server.busy.handles().collect();
        assert_eq!((sessions.len(), busy.len()), (2, 2));
        assert!(sessions.iter().max() < busy.iter().min());
    }
}
