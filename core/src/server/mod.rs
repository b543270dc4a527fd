//! The server: smoltcp sockets driven by the sessions, in one poll loop.
//!
//! All memory comes from [resources](ServerResources) the caller lends
//! (a `static` on a board, the heap on a host), sized at run time; nothing
//! is allocated and nothing grows. The server owns its `SocketSet`; the
//! caller owns the `Interface` and the `Device` and hands them to
//! [`Server::poll`], which moves bytes and returns when it next needs to
//! run, so a host sleeps on that deadline and a board on a timer.
//!
//! One file per job: [`config`](ServerConfig) and its errors, the
//! [counters](Counters), the [resources](ServerResources), the session
//! sockets and their phases (`tcp`), the busy sockets (`busy`), UDP
//! (`udp`), taking frames in through the ingress filters (`receive`); this
//! file is the poll loop that runs them in turn.

mod busy;
mod config;
mod context;
mod counters;
mod deferred;
mod receive;
mod resources;
mod socket;
mod tcp;
mod udp;

use core::fmt;

use smoltcp::iface::{Interface, PollResult, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{Socket as TcpSocket, State as TcpState};
use smoltcp::socket::udp::PacketBuffer;
use smoltcp::time::{Duration, Instant};

use crate::fmt::net_info;
use crate::ingress::HeldConnections;

pub use busy::BUSY_SOCKETS;
pub use config::{ConfigError, DEFAULT_PORT, ServerConfig};
pub use counters::{Counters, ErrorCounts};
#[cfg(feature = "alloc")]
pub use resources::HeapResources;
pub use resources::{Capacity, ServerResources, StaticResources};
pub use udp::UDP_PACKETS;

use busy::{BUSY_RX, BUSY_TX, BusySockets};
use context::Context;
use receive::receive;
use resources::{Buffers, pieces};
use tcp::Sessions;
use udp::Udp;

/// Rounds of receive/answer/transmit in one [`Server::poll`] before it yields.
const MAX_ROUNDS: usize = 16;

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
/// let mut resources = StaticResources::<'_, 2, 4, 512, 512, 256>::new();
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
    udp: Option<Udp>,
    /// As large as a session's send buffer: replies are built here.
    scratch: &'a mut [u8],
    /// Connections the sockets hold, refreshed before each batch of frames.
    held: HeldConnections<'a>,
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
    /// let mut resources = StaticResources::<'_, 2, 4, 256, 256, 128>::new();
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
            udp_rx_meta,
            udp_tx_meta,
            buffers,
        } = resources.into();
        check(&config, &capacity)?;
        let Buffers {
            session_rx,
            session_tx,
            lines,
            scratch,
            udp_rx,
            udp_tx,
            busy_rx,
            busy_tx,
        } = buffers;
        let mut set = SocketSet::new(sockets);
        // Session sockets first: smoltcp hands a SYN to the first listening
        // socket in the set, so a busy socket only gets it when all are taken.
        let session_buffers = pieces(session_rx, capacity.rx_buffer)
            .zip(pieces(session_tx, capacity.tx_buffer))
            .zip(pieces(lines, capacity.line_buffer))
            .map(|((rx, tx), line)| (rx, tx, line));
        let sessions = Sessions::new(slots, session_buffers, &mut set, &config)?;
        let busy_buffers = pieces(busy_rx, BUSY_RX).zip(pieces(busy_tx, BUSY_TX));
        let busy = BusySockets::new(busy_buffers.take(capacity.busy_sockets), &mut set, &config);
        let udp = config.udp_port.map(|port| {
            let rx = PacketBuffer::new(udp_rx_meta, udp_rx);
            let tx = PacketBuffer::new(udp_tx_meta, udp_tx);
            Udp::bind(port, rx, tx, &mut set)
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
            capacity,
            sockets: set,
            sessions,
            busy,
            udp,
            scratch,
            held: HeldConnections::new(held),
            totals: Counters::default(),
            shutting_down: false,
        })
    }

    /// The configuration in force.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # let mut resources = StaticResources::<'_, 1, 3, 128, 128, 64>::new();
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
    /// # let mut resources = StaticResources::<'_, 2, 4, 128, 128, 64>::new();
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
            let tcp_sockets = self.sessions.handles().chain(self.busy.handles());
            let more_waiting = receive(
                now,
                iface,
                device,
                &mut self.sockets,
                tcp_sockets,
                &mut self.held,
            );
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

    /// Like [`poll`](Self::poll), but returns how long the caller may sleep.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// # use smoltcp::{iface::{Config, Interface}, phy::{Loopback, Medium}, time::Instant, wire::HardwareAddress};
    /// # let mut device = Loopback::new(Medium::Ip);
    /// # let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
    /// # let mut resources = StaticResources::<'_, 1, 3, 128, 128, 64>::new();
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
    /// # let mut resources = StaticResources::<'_, 1, 3, 128, 128, 64>::new();
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
        self.sessions.shutdown(&mut self.sockets);
        self.busy.shutdown(&mut self.sockets);
        if let Some(udp) = &self.udp {
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
    /// # let mut resources = StaticResources::<'_, 1, 3, 128, 128, 64>::new();
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
        counters
    }

    fn next_deadline(&mut self, now: Instant, iface: &mut Interface) -> Option<Instant> {
        [
            self.sessions.deadline(&self.config),
            self.busy.deadline(),
            iface.poll_at(now, &self.sockets),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Moves bytes between sockets and sessions, rejects with `ERR busy` and
    /// answers datagrams; true if anything changed.
    fn service(&mut self, now: Instant) -> bool {
        let mut cx = Context {
            now,
            config: &self.config,
            shutting_down: self.shutting_down,
            scratch: self.scratch,
            totals: &mut self.totals,
        };
        let mut moved = self.sessions.service(&mut self.sockets, &mut cx);
        moved |= self.busy.service(&mut self.sockets, &mut cx);
        if let Some(udp) = &self.udp {
            moved |= udp.service(&mut self.sockets, &mut cx);
        }
        moved
    }
}

/// Whether `config` can run in memory of `capacity`.
fn check(config: &ServerConfig, capacity: &Capacity) -> Result<(), ConfigError> {
    if config.sessions == 0 || config.sessions > capacity.sessions {
        return Err(ConfigError::Sessions {
            max: capacity.sessions,
        });
    }
    if !(1..=BUSY_SOCKETS).contains(&capacity.busy_sockets) {
        return Err(ConfigError::BusySockets { max: BUSY_SOCKETS });
    }
    if config.port == 0 || config.udp_port == Some(0) {
        return Err(ConfigError::Port);
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

#[cfg(all(test, feature = "graphemes"))]
mod tests {
    use super::*;
    use crate::client::{LineClient, RecvError};
    use smoltcp::iface::{Config, Interface};
    use smoltcp::phy::{self, DeviceCapabilities, Medium};
    use smoltcp::socket::{tcp, udp};
    use smoltcp::wire::{HardwareAddress, IpCidr};
    use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};
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
    type Resources = StaticResources<'static, 2, 7, 1024, 1024, 64>;

    /// A server and a client host on one link, in virtual time.
    struct Net {
        server: Server<'static>,
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
        assert!(net.now - start >= crate::session::DEFAULT_IDLE_TIMEOUT);
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
            PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2048]),
            PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 2048]),
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
        let small: &'static mut StaticResources<'static, 1, 3, 64, 32, 64> =
            Box::leak(Box::new(StaticResources::new()));
        assert_eq!(
            Server::new(ServerConfig::new(1, 64), small).err(),
            Some(ConfigError::SendBuffer {
                needed: 66,
                capacity: 32
            })
        );
    }
}
