//! An in-memory Ethernet segment for smoltcp hosts, with virtual time and
//! seeded faults: test network code end to end without an OS network,
//! without sleeping, and with every failure replayable from its seed.
//!
//! # Layers
//!
//! - **Low level.** A [`Segment`] is a learning Ethernet switch. Each
//!   [`Port`] attached to it is a smoltcp [`Device`](smoltcp::phy::Device)
//!   for one host, with its MTU, cable latency and [`Faults`] in each
//!   [`Direction`]: drop, duplicate, delay (reordering), corrupt, truncate
//!   and a frame-size limit, all drawn from one seed. The segment counts
//!   what it did ([`Stats`]), hashes what it delivered
//!   ([`Segment::trace_hash`]) and can keep a pcap of the traffic. A
//!   [`Clock`] holds virtual time. Build your own `Interface` on a port with
//!   [`Port::interface_config`] and drive it however you like.
//! - **Driver.** A [`Sim`] owns a segment, a clock and [`Party`]s: anything
//!   with a `poll(now) -> next deadline`. [`Sim::run_until`] polls them and
//!   jumps the clock to the next deadline or frame delivery, so a
//!   two-minute timeout takes microseconds.
//! - **Convenience.** A [`Host`] bundles an `Interface`, a `SocketSet` and a
//!   port, with helpers for TCP and UDP sockets.
//! - **The reversal server.** [`reversal`] runs the core's `Server` as a
//!   party ([`ServerParty`](reversal::ServerParty)) and holds scripted
//!   conversations through the core's `LineClient`
//!   ([`ClientParty`](reversal::ClientParty)); a
//!   [`Network`](reversal::Network) sets up both on one segment.
//!
//! Seeds: [`seed_sweep!`] runs a scenario over many seeds and prints the
//! command that replays a failing one (`SIM_SEED=n`); `SIM_SEEDS=n`
//! lengthens the sweep. [`Segment::capture_on_failure`] leaves a pcap of a
//! failed run in `target/sim-failures/`.
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
