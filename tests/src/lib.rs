//! An in-memory Ethernet segment for smoltcp hosts, with virtual time,
//! modelled links and seeded faults: test network code end to end without
//! an OS network, without sleeping, and with every failure replayable from
//! its seed.
//!
//! # Layers
//!
//! - **Low level.** A [`Segment`] is a learning Ethernet switch. Each
//!   [`Port`] attached to it is a smoltcp [`Device`](smoltcp::phy::Device)
//!   for one host, with its MTU and a [`Link`] in each [`Direction`]: a
//!   [`Queue`] (unbounded, drop-tail or RED) in front of a [`Bandwidth`],
//!   [`Faults`] on the wire (drop, duplicate, delay, corrupt, truncate, a
//!   frame-size limit) and a [`Latency`] drawn from a distribution, with
//!   jitter that never reorders unless asked; all random draws come from one
//!   seed. The topology changes at any instant: links down and up,
//!   partitions (both ways or one way), traffic held and released, a host
//!   unplugged and plugged in again ([`Segment::reattach`]). The segment
//!   counts what it did ([`Stats`]), reports each TCP flow's goodput and
//!   retransmissions and each link's queue ([`Report`]), hashes what it
//!   delivered ([`Segment::trace_hash`]) and can keep a pcap of the traffic.
//!   A [`Clock`] holds virtual time. Build your own `Interface` on a port
//!   with [`Port::interface_config`] and drive it however you like.
//! - **Driver.** A [`Sim`] owns a segment, a clock and [`Party`]s: anything
//!   with a `poll(now) -> next deadline`. [`Sim::run_until`] polls them and
//!   jumps the clock to the next deadline or frame delivery, so a
//!   two-minute timeout takes microseconds. [`Sim::schedule`] runs topology
//!   changes or crashes at an instant; [`Sim::crash`] drops a party with all
//!   its state and [`Sim::restart`] boots a new one in its place.
//! - **Convenience.** A [`Host`] bundles an `Interface`, a `SocketSet` and a
//!   port, with helpers for TCP and UDP sockets; [`frames`] sends frames
//!   made by hand (an ARP request, a TCP segment) for peers that send what
//!   no stack would.
//! - **The reversal server.** [`reversal`] runs the core's `Server` as a
//!   party ([`ServerParty`](reversal::ServerParty)) and holds scripted
//!   conversations through the core's `LineClient`
//!   ([`ClientParty`](reversal::ClientParty)) or as the lecture's own client
//!   does, a message with no newline at a time
//!   ([`SeedClient`](reversal::SeedClient)); a
//!   [`Network`](reversal::Network) sets up both on one segment and can
//!   crash and restart the server.
//!
//! Seeds: [`seed_sweep!`] runs a scenario over many seeds and prints the
//! command that replays a failing one (`SIM_SEED=n`); `SIM_SEEDS=n`
//! lengthens the sweep. [`case_sweep!`] does the same over a [`Sweep`]
//! with named knobs and shrinks a failing case to fewer lines, parties and
//! faults before printing the command. [`Segment::capture_on_failure`]
//! leaves a pcap of a failed run in `target/sim-failures/`.
//!
//! Because time is virtual, throughput and latency through a modelled link
//! are exact: the crate's own tests snapshot the reversal server's goodput
//! and latency over bandwidth × round trip × loss × sessions
//! (`tests/tests/performance.rs`), so a change that slows the TCP path
//! fails CI with a readable diff.
//!
//! # Compared with other harnesses
//!
//! | feature | turmoil | madsim | smoltcp netsim | Shadow | reversal-sim |
//! |---|---|---|---|---|---|
//! | seeds, determinism check, many-seed sweeps | yes | yes | yes | yes | yes ([`seed_sweep!`], [`Segment::trace_hash`]) |
//! | virtual time | yes | yes | yes | yes | yes ([`Sim`], [`Clock`]) |
//! | latency with a distribution and jitter | min/max, exponential | uniform | per-flow RTT | per edge (jitter ignored) | yes: fixed, uniform, normal, exponential; no reordering unless asked ([`Latency`]) |
//! | loss, duplicate, reorder, corrupt | loss, reorder | loss | loss, bit flips | loss | yes, and truncate, frame-size limit ([`Faults`]) |
//! | bandwidth and a bounded queue (drop-tail) | no | no | shared bottleneck | per host, qdisc | yes, per port and direction; drop-tail or RED ([`Link`], [`Queue`]) |
//! | partitions, one-way, link flaps on a schedule | yes | clog | no | no | yes ([`Segment::partition`], [`Segment::partition_one_way`], [`Segment::hold`], [`Segment::link_down`], [`Sim::schedule`]) |
//! | crash / restart of a node | yes | yes | no | stop time | yes, same or new MAC ([`Sim::crash`], [`Segment::reattach`]) |
//! | pcap | no | no | via examples | per host | yes, on failure or on request ([`Segment::capture_on_failure`]) |
//! | throughput / fairness metrics, snapshot-tested in CI | netstat | stats | yes (insta snapshots) | heartbeat | yes ([`Report`], [`jain_fairness`]; insta snapshots) |
//! | shrinking a failing run to a small reproducer | no | no | no | no | yes ([`case_sweep!`]) |
//!
//! # Guide: a board's network code on a slow, lossy link
//!
//! Firmware owns its interface and sockets and is polled with the time:
//! make it a [`Party`] on a [`Port`]. Here a board keeps a TCP connection
//! to a collector and sends it a 32-byte reading every 100 ms, with
//! 1 KiB socket buffers, over an uplink of 64 kbit/s with a 4 KiB queue,
//! 40 ± 10 ms of latency and 3 % loss each way. The test checks that every
//! reading arrives, in order, and what the link did.
//!
//! ```
//! use reversal_sim::{Bandwidth, Faults, Latency, Link, Party, Port, PortConfig, Queue, Sim};
//! use smoltcp::iface::{Interface, SocketHandle, SocketSet};
//! use smoltcp::socket::tcp;
//! use smoltcp::time::{Duration, Instant};
//! use smoltcp::wire::{IpAddress, IpCidr};
//!
//! /// The firmware under test: as on the board, it owns its stack.
//! struct Board {
//!     port: Port,
//!     iface: Interface,
//!     sockets: SocketSet<'static>,
//!     socket: SocketHandle,
//!     next_reading: Instant,
//!     readings: u32,
//! }
//!
//! impl Party for Board {
//!     fn poll(&mut self, now: Instant) -> Option<Instant> {
//!         self.iface.poll(now, &mut self.port, &mut self.sockets);
//!         let socket = self.sockets.get_mut::<tcp::Socket>(self.socket);
//!         let room = socket.send_capacity() - socket.send_queue();
//!         if now >= self.next_reading && socket.may_send() && room >= 32 {
//!             let reading = format!("reading {:05} .................\n", self.readings);
//!             socket.send_slice(reading.as_bytes()).unwrap();
//!             self.readings += 1;
//!             self.next_reading = now + Duration::from_millis(100);
//!         }
//!         self.iface.poll(now, &mut self.port, &mut self.sockets);
//!         // The next reading is a timer too, once it lies ahead.
//!         let reading = Some(self.next_reading).filter(|&at| at > now);
//!         [self.iface.poll_at(now, &self.sockets), reading].into_iter().flatten().min()
//!     }
//! }
//!
//! let mut sim = Sim::new(42);
//! let uplink = Link::new()
//!     .bandwidth(Bandwidth::kbps(64))
//!     .queue(Queue::drop_tail(4096))
//!     .latency(Latency::normal(Duration::from_millis(40), Duration::from_millis(10)))
//!     .faults(Faults { drop: 0.03, ..Faults::NONE });
//! let mut port = sim.attach(PortConfig::new().tx_link(uplink).rx_link(uplink));
//! let mut iface = Interface::new(port.interface_config(), &mut port, sim.now());
//! iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 9), 24)).unwrap());
//! let mut sockets = SocketSet::new(Vec::new());
//! let buffer = || tcp::SocketBuffer::new(vec![0; 1024]);
//! let socket = sockets.add(tcp::Socket::new(buffer(), buffer()));
//! let collector_address = IpAddress::v4(10, 0, 0, 1);
//! sockets
//!     .get_mut::<tcp::Socket>(socket)
//!     .connect(iface.context(), (collector_address, 5000), 49152)
//!     .unwrap();
//! let board = sim.add(Board { port, iface, sockets, socket, next_reading: Instant::ZERO, readings: 0 });
//!
//! let collector = sim.add_host(PortConfig::default(), &[IpCidr::new(collector_address, 24)]);
//! let listener = sim[collector].add_tcp_socket(16 * 1024, 1024);
//! sim[collector].tcp(listener).listen(5000).unwrap();
//!
//! let mut received = Vec::new();
//! sim.run_until(Duration::from_secs(120), |sim| {
//!     let socket = sim[collector].tcp(listener);
//!     while socket.can_recv() {
//!         socket.recv(|data| { received.extend_from_slice(data); (data.len(), ()) }).unwrap();
//!     }
//!     received.len() >= 300 * 32
//! })
//! .unwrap();
//!
//! // Every reading, in order, however the link treated them.
//! for (n, reading) in received.chunks(32).take(300).enumerate() {
//!     assert!(reading.starts_with(format!("reading {n:05}").as_bytes()));
//! }
//! let report = sim.segment().report();
//! assert!(report.stats.dropped > 0, "the link lost frames");
//! println!("{report}"); // goodput, retransmissions, queue drops per link
//! ```
//!
//! # Guide: a client against a server that reboots
//!
//! A client must survive its server losing power. [`Sim::crash`] drops the
//! server party with all its state and its port goes dark;
//! [`Segment::reattach`] plugs a fresh device into the same port (same
//! MAC, or a new one) and [`Sim::restart`] puts the rebooted server in the
//! old one's place; [`Sim::schedule`] does both at set instants. Here the
//! client under test reconnects whenever its connection is reset; the
//! server reboots 2 s into the run and is back 3 s later.
//!
//! ```
//! use reversal_sim::{Host, Party, PortConfig, Sim};
//! use smoltcp::iface::SocketHandle;
//! use smoltcp::socket::tcp;
//! use smoltcp::time::{Duration, Instant};
//! use smoltcp::wire::{IpAddress, IpCidr};
//!
//! const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);
//!
//! /// The client under test: one request a second; it reconnects when
//! /// the connection dies.
//! struct Client {
//!     host: Host,
//!     socket: SocketHandle,
//!     local_port: u16,
//!     next_request: Instant,
//!     connections: u32,
//! }
//!
//! impl Party for Client {
//!     fn poll(&mut self, now: Instant) -> Option<Instant> {
//!         self.host.poll(now);
//!         if !self.host.tcp(self.socket).is_open() {
//!             self.local_port += 1;
//!             self.host.tcp_connect(self.socket, (SERVER, 7), self.local_port).unwrap();
//!             self.connections += 1;
//!         }
//!         let socket = self.host.tcp(self.socket);
//!         if now >= self.next_request && socket.may_send() {
//!             socket.send_slice(b"ping\n").unwrap();
//!             self.next_request = now + Duration::from_secs(1);
//!         }
//!         let request = Some(self.next_request).filter(|&at| at > now);
//!         [self.host.poll(now), request].into_iter().flatten().min()
//!     }
//! }
//!
//! /// The server: a host that listens; its state is whatever it received.
//! fn boot_server(sim: &Sim, port: reversal_sim::Port) -> (Host, SocketHandle) {
//!     let mut host = Host::new(port, &[IpCidr::new(SERVER, 24)], sim.now());
//!     let listener = host.add_tcp_socket(4096, 4096);
//!     host.tcp(listener).listen(7).unwrap();
//!     (host, listener)
//! }
//!
//! let mut sim = Sim::new(3);
//! let port = sim.attach(PortConfig::new().latency(Duration::from_millis(1)));
//! let server_port = port.id();
//! let (host, listener) = boot_server(&sim, port);
//! let server = sim.add(host);
//! let mut client = Host::new(
//!     sim.attach(PortConfig::new().latency(Duration::from_millis(1))),
//!     &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)],
//!     sim.now(),
//! );
//! let socket = client.add_tcp_socket(4096, 4096);
//! let client = sim.add(Client { host: client, socket, local_port: 40_000, next_request: Instant::ZERO, connections: 0 });
//!
//! sim.schedule(Instant::from_secs(2), move |sim| sim.crash(server));
//! sim.schedule(Instant::from_secs(5), move |sim| {
//!     let port = sim.segment().reattach(server_port, None);
//!     let (host, _) = boot_server(sim, port);
//!     sim.restart(server, host);
//! });
//!
//! // After the reboot the client's old connection is reset when it next
//! // sends; it connects again and its requests reach the new server.
//! sim.run_until(Duration::from_secs(60), |sim| {
//!     sim.now() > Instant::from_secs(5) && sim[server].tcp(listener).recv_queue() >= 10
//! })
//! .unwrap();
//! assert_eq!(sim[client].connections, 2);
//! ```
//!
//! # Example
//!
//! A UDP echo server that owns its interface and sockets, as an application
//! under test would, answers a [`Host`] over a link that loses a third of
//! the frames each way.
//!
//! ```
//! use reversal_sim::{Faults, Party, Port, PortConfig, Sim};
//! use smoltcp::iface::{Interface, SocketHandle, SocketSet};
//! use smoltcp::socket::udp;
//! use smoltcp::time::{Duration, Instant};
//! use smoltcp::wire::{IpAddress, IpCidr};
//!
//! struct EchoServer {
//!     port: Port,
//!     iface: Interface,
//!     sockets: SocketSet<'static>,
//!     socket: SocketHandle,
//! }
//!
//! impl Party for EchoServer {
//!     fn poll(&mut self, now: Instant) -> Option<Instant> {
//!         self.iface.poll(now, &mut self.port, &mut self.sockets);
//!         let socket = self.sockets.get_mut::<udp::Socket>(self.socket);
//!         while let Ok((data, meta)) = socket.recv() {
//!             let reply = data.to_vec();
//!             socket.send_slice(&reply, meta).unwrap();
//!         }
//!         self.iface.poll(now, &mut self.port, &mut self.sockets);
//!         self.iface.poll_at(now, &self.sockets)
//!     }
//! }
//!
//! let mut sim = Sim::new(7);
//! let lossy = Faults { drop: 0.3, ..Faults::default() };
//! let link = PortConfig::new().faults(lossy);
//!
//! let mut port = sim.attach(link);
//! let mut iface = Interface::new(port.interface_config(), &mut port, sim.now());
//! iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)).unwrap());
//! let mut sockets = SocketSet::new(Vec::new());
//! let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 2048]);
//! let socket = sockets.add(udp::Socket::new(buffer(), buffer()));
//! sockets.get_mut::<udp::Socket>(socket).bind(7).unwrap();
//! sim.add(EchoServer { port, iface, sockets, socket });
//!
//! let client = sim.add_host(PortConfig::default(), &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)]);
//! let udp = sim[client].add_udp_socket(8, 2048);
//! sim[client].udp(udp).bind(7000).unwrap();
//!
//! // UDP does not retransmit: send again every second until an echo comes.
//! let mut next_send = Instant::ZERO;
//! sim.run_until(Duration::from_secs(60), |sim| {
//!     if sim.now() >= next_send {
//!         let server = (IpAddress::v4(10, 0, 0, 1), 7);
//!         sim[client].udp(udp).send_slice(b"hello", server).unwrap();
//!         next_send = sim.now() + Duration::from_secs(1);
//!         sim.wake_at(next_send);
//!     }
//!     sim[client].udp(udp).can_recv()
//! })
//! .unwrap();
//! assert_eq!(sim[client].udp(udp).recv().unwrap().0, b"hello");
//! ```
//!
//! The clock only moves to deadlines the parties report, frame deliveries
//! and instants asked for with [`Sim::wake_at`], as the closure does here
//! for its own resend timer.

// Lint policy: `[workspace.lints]` in the top-level Cargo.toml (no `unsafe`,
// every public item documented, curated clippy lints).

mod capture;
mod clock;
mod faults;
pub mod frames;
mod host;
mod link;
mod metrics;
pub mod reversal;
mod seeds;
mod segment;
mod shrink;
mod sim;

pub use capture::{FailureCapture, WritePcapError};
pub use clock::Clock;
pub use faults::{Direction, FaultId, FaultKind, Faults, ParseFaultIdError, Stats};
pub use host::Host;
pub use link::{Bandwidth, Latency, Link, LinkStats, Queue};
pub use metrics::{Flow, LinkReport, Report, jain_fairness};
pub use seeds::{SEED_COUNT_VAR, SEED_VAR, sweep_seeds};
pub use segment::{Port, PortConfig, PortId, PortRxToken, PortTxToken, Segment};
pub use shrink::{CASE_VAR, Case, FAULTS_VAR, SHRINK_VAR, Sweep};
pub use sim::{Party, PartyId, RunError, Sim};
