//! The in-memory Ethernet segment and its ports.

use core::cell::RefCell;
use core::cmp::Ordering;
use core::fmt;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use smoltcp::iface::Config;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, PcapLinkType, PcapSink};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpProtocol, Ipv4Address,
    Ipv4Packet, TcpPacket,
};

use crate::capture::{FailureCapture, WritePcapError};
use crate::faults::{Direction, Fate, FaultRecord, FaultStream, Faults, Stats};
use crate::link::{Latency, Link, LinkState, LinkStats};
use crate::metrics::{FlowTable, LinkReport, Report};

/// Bytes of an Ethernet II header, which smoltcp counts in a device's MTU.
const ETHERNET_HEADER_LEN: usize = 14;

/// Recycled frame buffers kept at most; past this they are freed.
const SPARE_BUFFERS: usize = 1024;

/// Bytes of a libpcap file header, and of the header before each frame.
const PCAP_FILE_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;

/// The number of a port on its segment, in the order ports were attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(usize);

impl PortId {
    #[cfg(test)]
    pub(crate) const fn new(index: usize) -> PortId {
        PortId(index)
    }

    pub(crate) const fn from_index(index: usize) -> PortId {
        PortId(index)
    }

    /// The port's position on the segment: 0 for the first attached.
    pub const fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a port is attached to its segment: its MAC, its MTU, and the
/// [`Link`] of each direction of its cable.
///
/// ```
/// use reversal_sim::{Bandwidth, Faults, Link, PortConfig, Queue};
/// use smoltcp::time::Duration;
///
/// // A jumbo-frame port whose cable loses a tenth of what it delivers.
/// let jumbo_and_lossy = PortConfig::new()
///     .mtu(9000)
///     .rx_link(Link::new().faults(Faults { drop: 0.1, ..Faults::default() }));
/// // A board on a slow, rough link: 1 ms each way, 1 Mbit/s, 16 KiB queue.
/// let board = PortConfig::new()
///     .latency(Duration::from_millis(1))
///     .bandwidth(Bandwidth::mbps(1))
///     .queue(Queue::drop_tail(16 * 1024))
///     .faults(Faults::rough());
/// assert_eq!(board.tx.bandwidth, Some(Bandwidth::mbps(1)));
/// assert_eq!(jumbo_and_lossy.tx.faults, Faults::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct PortConfig {
    /// The port's MAC address; `None` (the default) assigns
    /// `02:53:49:4d:hh:ll`, where `hhll` is the port's index.
    pub mac: Option<EthernetAddress>,
    /// The IP MTU in bytes (default 1500). The device reports 14 more to
    /// smoltcp, for the Ethernet header, and the port refuses to receive
    /// frames longer than that, like a real NIC.
    pub mtu: usize,
    /// The frames the port's host transmits, on their way to the switch.
    pub tx: Link,
    /// The frames the switch hands to the port's host.
    pub rx: Link,
}

impl PortConfig {
    /// MTU 1500, an assigned MAC, perfect links both ways.
    pub const fn new() -> PortConfig {
        PortConfig {
            mac: None,
            mtu: 1500,
            tx: Link::new(),
            rx: Link::new(),
        }
    }

    /// With this MAC address.
    pub const fn mac(mut self, mac: EthernetAddress) -> PortConfig {
        self.mac = Some(mac);
        self
    }

    /// With this IP MTU.
    pub const fn mtu(mut self, mtu: usize) -> PortConfig {
        self.mtu = mtu;
        self
    }

    /// A fixed one-way latency on each direction, so a frame between two
    /// such ports takes twice this.
    pub const fn latency(mut self, latency: Duration) -> PortConfig {
        self.tx.latency = Latency::fixed(latency);
        self.rx.latency = Latency::fixed(latency);
        self
    }

    /// These faults on each direction.
    pub const fn faults(mut self, faults: Faults) -> PortConfig {
        self.tx.faults = faults;
        self.rx.faults = faults;
        self
    }

    /// This bandwidth on each direction.
    pub const fn bandwidth(mut self, bandwidth: crate::Bandwidth) -> PortConfig {
        self.tx.bandwidth = Some(bandwidth);
        self.rx.bandwidth = Some(bandwidth);
        self
    }

    /// This queue on each direction.
    pub const fn queue(mut self, queue: crate::Queue) -> PortConfig {
        self.tx.queue = queue;
        self.rx.queue = queue;
        self
    }

    /// This link for what the host transmits.
    pub const fn tx_link(mut self, link: Link) -> PortConfig {
        self.tx = link;
        self
    }

    /// This link for what the host receives.
    pub const fn rx_link(mut self, link: Link) -> PortConfig {
        self.rx = link;
        self
    }
}

impl Default for PortConfig {
    fn default() -> PortConfig {
        PortConfig::new()
    }
}

/// An in-memory Ethernet switch with virtual-time delivery, a link model
/// per port and direction, and seeded faults.
///
/// Each [`Port`] attached to it is a smoltcp [`Device`] for one host. A
/// frame one port transmits goes to the port whose host owns its
/// destination MAC; broadcast, multicast and unknown destinations are
/// flooded to every other port. The switch learns which port a MAC lives on
/// from the source of the frames each port transmits, so hosts may use MACs
/// other than their port's.
///
/// A frame crosses the sender's transmit [`Link`] (queue, bandwidth,
/// faults, latency), the switch, then the receiver's receive link, and
/// waits until the receiver polls its device with a timestamp at or after
/// its arrival. Between the two links the topology applies: links that are
/// down, partitions, traffic held back ([`partition`](Segment::partition),
/// [`hold`](Segment::hold), [`set_link_up`](Segment::set_link_up)).
/// Random draws come from one seed; the same seed and the same polling give
/// the same frames at the same times, which
/// [`trace_hash`](Segment::trace_hash) sums up.
///
/// `Segment` is a cheap handle: clones share the same switch. It is not
/// `Send`; a simulation lives on one thread.
///
/// ```
/// use reversal_sim::{PortConfig, Segment};
/// use smoltcp::phy::{Device, RxToken, TxToken};
/// use smoltcp::time::Instant;
///
/// let segment = Segment::new(1);
/// let mut a = segment.attach(PortConfig::default());
/// let mut b = segment.attach(PortConfig::default());
///
/// // A broadcast frame from `a` reaches `b`.
/// let mut frame = [0u8; 60];
/// frame[..6].fill(0xff);
/// frame[6..12].copy_from_slice(a.mac().as_bytes());
/// let now = Instant::ZERO;
/// a.transmit(now).unwrap().consume(frame.len(), |buf| buf.copy_from_slice(&frame));
/// let (rx, _tx) = b.receive(now).unwrap();
/// rx.consume(|received| assert_eq!(received, frame));
/// assert_eq!(segment.stats().delivered, 1);
/// ```
#[derive(Clone)]
pub struct Segment {
    wire: Rc<RefCell<Wire>>,
}

impl Segment {
    /// An empty segment whose random draws all derive from `seed`.
    pub fn new(seed: u64) -> Segment {
        Segment::recording(seed, None)
    }

    /// A segment whose faults are limited to, and recorded in, `record`.
    pub(crate) fn recording(seed: u64, record: Option<Rc<RefCell<FaultRecord>>>) -> Segment {
        Segment {
            wire: Rc::new(RefCell::new(Wire {
                seed,
                now: Instant::ZERO,
                ports: Vec::new(),
                locations: HashMap::new(),
                stats: Stats::default(),
                trace: Fnv1a::new(),
                next_sequence: 0,
                crossing: BinaryHeap::new(),
                next_crossing: 0,
                least_rx_latency: Duration::ZERO,
                partitions: HashSet::new(),
                holds: HashSet::new(),
                held: Vec::new(),
                flows: FlowTable::default(),
                record,
                capture: None,
                spare: Vec::new(),
            })),
        }
    }

    /// The seed every random decision of this segment derives from.
    pub fn seed(&self) -> u64 {
        self.wire.borrow().seed
    }

    /// The latest time the segment has seen: the simulation's clock, or
    /// the latest timestamp a port was polled with.
    ///
    /// ```
    /// use reversal_sim::Segment;
    /// use smoltcp::time::Instant;
    ///
    /// let segment = Segment::new(0);
    /// segment.advance_to(Instant::from_secs(3));
    /// segment.advance_to(Instant::from_secs(1)); // never backwards
    /// assert_eq!(segment.now(), Instant::from_secs(3));
    /// ```
    pub fn now(&self) -> Instant {
        self.wire.borrow().now
    }

    /// Moves the segment's time to `now`, letting every frame due at the
    /// switch by then cross it. A [`Sim`](crate::Sim) does this as its clock
    /// moves; code that polls ports by hand need not, ports do it too.
    pub fn advance_to(&self, now: Instant) {
        self.wire.borrow_mut().advance_to(now);
    }

    /// Attaches a new port and returns its device.
    ///
    /// Each port's links draw from random streams of their own, so
    /// attaching one more port leaves the faults of the others unchanged.
    pub fn attach(&self, config: PortConfig) -> Port {
        let mut wire = self.wire.borrow_mut();
        let id = PortId(wire.ports.len());
        let mac = config.mac.unwrap_or_else(|| {
            let [.., high, low] = (id.0 as u64).to_be_bytes();
            EthernetAddress([0x02, 0x53, 0x49, 0x4d, high, low])
        });
        let seed = wire.seed;
        wire.ports.push(PortState {
            mtu: config.mtu,
            mac,
            plugged: true,
            boots: 0,
            tx: FaultStream::new(seed, id, Direction::Tx),
            rx: FaultStream::new(seed, id, Direction::Rx),
            tx_link: LinkState::new(seed, id, Direction::Tx, config.tx),
            rx_link: LinkState::new(seed, id, Direction::Rx, config.rx),
            inbox: BinaryHeap::new(),
        });
        wire.locations.insert(mac, id.0);
        wire.update_least_rx_latency();
        Port {
            id,
            mac,
            mtu: config.mtu,
            boot: 0,
            wire: Rc::clone(&self.wire),
        }
    }

    /// Plugs a new device into a port whose previous one was dropped (its
    /// host crashed or was switched off): the same cable, links and random
    /// streams, with the port's MAC or `mac`.
    ///
    /// A host that boots again with a new MAC is not reached by peers that
    /// still have the old one in their neighbour cache until it expires.
    ///
    /// # Panics
    ///
    /// If `port` is not a port of this segment or its device still exists.
    pub fn reattach(&self, port: PortId, mac: Option<EthernetAddress>) -> Port {
        let mut wire = self.wire.borrow_mut();
        let state = &mut wire.ports[port.0];
        assert!(!state.plugged, "port {port} still has its device");
        state.plugged = true;
        state.boots += 1;
        state.mac = mac.unwrap_or(state.mac);
        let (mac, mtu, boot) = (state.mac, state.mtu, state.boots);
        wire.locations.insert(mac, port.0);
        Port {
            id: port,
            mac,
            mtu,
            boot,
            wire: Rc::clone(&self.wire),
        }
    }

    /// Replaces the faults of one direction of a port, e.g. to heal a link
    /// in the middle of a run. The port's random stream goes on where it was.
    ///
    /// # Panics
    ///
    /// If `port` is not a port of this segment.
    pub fn set_faults(&self, port: PortId, direction: Direction, faults: Faults) {
        let mut wire = self.wire.borrow_mut();
        let link = wire.ports[port.0].link_mut(direction);
        let changed = link.link().faults(faults);
        link.set_link(changed);
    }

    /// Replaces the link model of one direction of a port from now on,
    /// e.g. to let the bandwidth drop mid-run. Frames already queued keep
    /// the times they were given.
    ///
    /// ```
    /// use reversal_sim::{Bandwidth, Direction, Link, PortConfig, Segment};
    ///
    /// let segment = Segment::new(0);
    /// let port = segment.attach(PortConfig::default());
    /// // The uplink degrades to 64 kbit/s.
    /// segment.set_link(port.id(), Direction::Tx, Link::new().bandwidth(Bandwidth::kbps(64)));
    /// ```
    ///
    /// # Panics
    ///
    /// If `port` is not a port of this segment.
    pub fn set_link(&self, port: PortId, direction: Direction, link: Link) {
        let mut wire = self.wire.borrow_mut();
        wire.ports[port.0].link_mut(direction).set_link(link);
        wire.update_least_rx_latency();
    }

    /// Takes one direction of a port's cable down (`false`) or up again.
    /// While it is down, every frame that would enter it is lost (counted
    /// in [`Stats::link_down`]); frames already past that point arrive.
    ///
    /// ```
    /// use reversal_sim::{Direction, PortConfig, Segment};
    ///
    /// let segment = Segment::new(0);
    /// let port = segment.attach(PortConfig::default());
    /// segment.set_link_up(port.id(), Direction::Rx, false); // deaf, can still talk
    /// assert!(!segment.is_link_up(port.id(), Direction::Rx));
    /// assert!(segment.is_link_up(port.id(), Direction::Tx));
    /// ```
    ///
    /// # Panics
    ///
    /// If `port` is not a port of this segment.
    pub fn set_link_up(&self, port: PortId, direction: Direction, up: bool) {
        let mut wire = self.wire.borrow_mut();
        let now = wire.now;
        wire.advance_to(now);
        wire.ports[port.0].link_mut(direction).set_up(up);
    }

    /// Whether one direction of a port's cable is up.
    ///
    /// # Panics
    ///
    /// If `port` is not a port of this segment.
    pub fn is_link_up(&self, port: PortId, direction: Direction) -> bool {
        self.wire.borrow_mut().ports[port.0]
            .link_mut(direction)
            .is_up()
    }

    /// Pulls a port's cable: both directions down.
    ///
    /// ```
    /// use reversal_sim::{Direction, PortConfig, Segment};
    ///
    /// let segment = Segment::new(0);
    /// let port = segment.attach(PortConfig::default());
    /// segment.link_down(port.id());
    /// assert!(!segment.is_link_up(port.id(), Direction::Tx));
    /// segment.link_up(port.id());
    /// assert!(segment.is_link_up(port.id(), Direction::Tx));
    /// ```
    pub fn link_down(&self, port: PortId) {
        self.set_link_up(port, Direction::Tx, false);
        self.set_link_up(port, Direction::Rx, false);
    }

    /// Plugs a port's cable back in: both directions up.
    pub fn link_up(&self, port: PortId) {
        self.set_link_up(port, Direction::Tx, true);
        self.set_link_up(port, Direction::Rx, true);
    }

    /// Cuts every frame between a port of `a` and a port of `b`, both ways,
    /// from now on, until [`heal`](Segment::heal). Broadcasts (ARP) are cut
    /// too; traffic within each group flows on.
    ///
    /// ```
    /// use reversal_sim::{PortConfig, Segment};
    ///
    /// let segment = Segment::new(0);
    /// let [a, b, c] = [(); 3].map(|()| segment.attach(PortConfig::default()).id());
    /// segment.partition(&[a], &[b, c]);
    /// assert!(segment.is_cut(a, b) && segment.is_cut(c, a));
    /// assert!(!segment.is_cut(b, c));
    /// segment.heal();
    /// assert!(!segment.is_cut(a, b));
    /// ```
    pub fn partition(&self, a: &[PortId], b: &[PortId]) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Cuts every frame from a port of `from` to a port of `to`, and only
    /// that way, until [`heal`](Segment::heal): `from` still hears `to`,
    /// but not the other way round.
    ///
    /// ```
    /// use reversal_sim::{PortConfig, Segment};
    ///
    /// let segment = Segment::new(0);
    /// let [a, b] = [(); 2].map(|()| segment.attach(PortConfig::default()).id());
    /// segment.partition_one_way(&[a], &[b]);
    /// assert!(segment.is_cut(a, b));
    /// assert!(!segment.is_cut(b, a));
    /// ```
    pub fn partition_one_way(&self, from: &[PortId], to: &[PortId]) {
        let mut wire = self.wire.borrow_mut();
        let now = wire.now;
        wire.advance_to(now);
        for &x in from {
            for &y in to {
                wire.partitions.insert((x.0, y.0));
            }
        }
    }

    /// Whether frames from `from` to `to` are cut by a partition.
    pub fn is_cut(&self, from: PortId, to: PortId) -> bool {
        self.wire.borrow().partitions.contains(&(from.0, to.0))
    }

    /// Ends every partition.
    pub fn heal(&self) {
        let mut wire = self.wire.borrow_mut();
        let now = wire.now;
        wire.advance_to(now);
        wire.partitions.clear();
    }

    /// Holds back every frame between a port of `a` and a port of `b`,
    /// both ways, at the switch, until [`release`](Segment::release): a
    /// network that stalls without losing anything.
    ///
    /// ```
    /// use reversal_sim::{PortConfig, Segment};
    ///
    /// let segment = Segment::new(0);
    /// let [a, b] = [(); 2].map(|()| segment.attach(PortConfig::default()).id());
    /// segment.hold(&[a], &[b]);
    /// assert_eq!(segment.held(), 0);
    /// segment.release();
    /// ```
    pub fn hold(&self, a: &[PortId], b: &[PortId]) {
        let mut wire = self.wire.borrow_mut();
        let now = wire.now;
        wire.advance_to(now);
        for &x in a {
            for &y in b {
                wire.holds.insert((x.0, y.0));
                wire.holds.insert((y.0, x.0));
            }
        }
    }

    /// Frames held back now.
    pub fn held(&self) -> usize {
        self.wire.borrow().held.len()
    }

    /// Ends every hold and sends the frames held so far on, in the order
    /// they reached the switch, as if they crossed it now.
    pub fn release(&self) {
        let mut wire = self.wire.borrow_mut();
        let now = wire.now;
        wire.advance_to(now);
        wire.holds.clear();
        for crossing in core::mem::take(&mut wire.held) {
            wire.enter_rx_link(crossing.item, now);
        }
    }

    /// What the segment has done so far.
    pub fn stats(&self) -> Stats {
        self.wire.borrow().stats
    }

    /// What one direction of a port's link has done so far.
    ///
    /// # Panics
    ///
    /// If `port` is not a port of this segment.
    pub fn link_stats(&self, port: PortId, direction: Direction) -> LinkStats {
        self.wire.borrow_mut().ports[port.0]
            .link_mut(direction)
            .stats()
    }

    /// What the traffic achieved so far: every TCP flow's goodput and
    /// retransmissions, every link's queue, the segment's counts.
    pub fn report(&self) -> Report {
        let mut wire = self.wire.borrow_mut();
        let links = wire
            .ports
            .iter_mut()
            .enumerate()
            .flat_map(|(index, port)| {
                [Direction::Tx, Direction::Rx].map(|direction| LinkReport {
                    port: PortId(index),
                    direction,
                    stats: port.link_mut(direction).stats(),
                })
            })
            .collect();
        Report {
            stats: wire.stats,
            flows: wire.flows.flows(),
            links,
        }
    }

    /// A hash of every frame delivered so far: when, to which port, and its
    /// bytes, in delivery order (FNV-1a, 64 bits).
    ///
    /// Two runs with the same seed and the same parties give the same hash;
    /// it is stable within a build of this crate.
    pub fn trace_hash(&self) -> u64 {
        self.wire.borrow().trace.finish()
    }

    /// The earliest instant at which a frame still in flight may become
    /// deliverable, if any: the clock must stop there.
    pub fn next_delivery(&self) -> Option<Instant> {
        let wire = self.wire.borrow();
        let delivery = wire
            .ports
            .iter()
            .filter_map(|port| port.inbox.peek().map(|frame| frame.at))
            .min();
        // A frame still before the switch arrives no sooner than the
        // smallest receive latency after reaching it.
        let crossing = wire
            .crossing
            .peek()
            .map(|crossing| crossing.at + wire.least_rx_latency);
        crate::clock::earliest(delivery, crossing)
    }

    /// Starts keeping a capture of every frame from now on, in memory.
    ///
    /// Each frame is captured once, as its host transmitted it, before any
    /// fault: the capture shows what the hosts said, and the log (at
    /// `debug` level) says what the faults did to it. Timestamps are
    /// virtual time. Calling this again keeps the capture already taken.
    pub fn enable_capture(&self) {
        let mut wire = self.wire.borrow_mut();
        if wire.capture.is_none() {
            let mut capture = Vec::new();
            capture.global_header(PcapLinkType::Ethernet);
            wire.capture = Some(capture);
        }
    }

    /// The capture so far in libpcap format (`LINKTYPE_ETHERNET`), or
    /// `None` if [`enable_capture`](Segment::enable_capture) was not called.
    pub fn pcap(&self) -> Option<Vec<u8>> {
        self.wire.borrow().capture.clone()
    }

    /// The TCP segments `host` has transmitted over IPv4, in order, from
    /// the capture, or `None` if capture is off: to check how a host cut
    /// its stream into segments, or whether it sent a SYN. Frames that are
    /// not Ethernet, IPv4 and TCP are passed over.
    pub fn tcp_sent_by(&self, host: Ipv4Address) -> Option<Vec<TcpPacket<Vec<u8>>>> {
        let wire = self.wire.borrow();
        let capture = wire.capture.as_ref()?;
        let segments = captured_frames(capture)
            .filter_map(|frame| {
                let ethernet = EthernetFrame::new_checked(frame).ok()?;
                if ethernet.ethertype() != EthernetProtocol::Ipv4 {
                    return None;
                }
                let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
                if ip.src_addr() != host || ip.next_header() != IpProtocol::Tcp {
                    return None;
                }
                TcpPacket::new_checked(ip.payload().to_vec()).ok()
            })
            .collect();
        Some(segments)
    }

    /// Writes the capture so far to `path` as a libpcap file, which
    /// `tshark -r` and Wireshark read.
    pub fn write_pcap(&self, path: impl AsRef<Path>) -> Result<(), WritePcapError> {
        let wire = self.wire.borrow();
        let capture = wire.capture.as_ref().ok_or(WritePcapError::CaptureOff)?;
        std::fs::write(path, capture).map_err(WritePcapError::Io)
    }

    /// Enables capture and returns a guard that writes it to
    /// `<target dir>/sim-failures/<name>-seed<seed>.pcap` if it is dropped
    /// while the thread panics, that is when the test fails.
    ///
    /// ```
    /// use reversal_sim::Segment;
    ///
    /// let segment = Segment::new(3);
    /// let guard = segment.capture_on_failure("doc_example");
    /// assert!(guard.path().ends_with("doc_example-seed3.pcap"));
    /// // ... run the scenario; a failing assertion leaves the pcap behind.
    /// ```
    pub fn capture_on_failure(&self, name: &str) -> FailureCapture {
        self.enable_capture();
        FailureCapture::new(self.clone(), name)
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = self.wire.borrow();
        f.debug_struct("Segment")
            .field("seed", &wire.seed)
            .field("now", &wire.now)
            .field("ports", &wire.ports.len())
            .field("stats", &wire.stats)
            .field("capturing", &wire.capture.is_some())
            .finish()
    }
}

/// One host's connection to a [`Segment`]: a smoltcp [`Device`] with
/// `Medium::Ethernet`.
///
/// Receiving returns the earliest frame whose delivery time is at or before
/// the timestamp smoltcp passes in; transmitting hands the frame to the
/// port's transmit link at that timestamp.
///
/// Dropping a port unplugs its host, as when it crashes or loses power:
/// frames waiting for it and frames that arrive later are lost, until
/// [`Segment::reattach`] plugs in a new device.
pub struct Port {
    id: PortId,
    mac: EthernetAddress,
    mtu: usize,
    /// How many times the port's host has booted before this one.
    boot: u32,
    wire: Rc<RefCell<Wire>>,
}

impl Port {
    /// The port's number on its segment.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The MAC address the port was attached with.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// The port's IP MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// An interface configuration for this port: its MAC, and a random seed
    /// for smoltcp (TCP initial sequence numbers, ephemeral ports) derived
    /// from the segment's seed, the port's number and how often its host
    /// has booted, so runs repeat and a rebooted host does not reuse its
    /// sequence numbers.
    ///
    /// ```
    /// use reversal_sim::{PortConfig, Segment};
    /// use smoltcp::iface::Interface;
    /// use smoltcp::time::Instant;
    ///
    /// let segment = Segment::new(9);
    /// let mut port = segment.attach(PortConfig::default());
    /// let iface = Interface::new(port.interface_config(), &mut port, Instant::ZERO);
    /// assert_eq!(iface.hardware_addr(), port.mac().into());
    /// ```
    pub fn interface_config(&self) -> Config {
        let seed = self.wire.borrow().seed;
        let mut config = Config::new(HardwareAddress::Ethernet(self.mac));
        let mut random_seed = splitmix64(seed ^ splitmix64(self.id.0 as u64));
        if self.boot > 0 {
            random_seed = splitmix64(random_seed ^ u64::from(self.boot));
        }
        config.random_seed = random_seed;
        config
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.wire.borrow_mut().unplug(self.id);
    }
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("mac", &self.mac)
            .field("mtu", &self.mtu)
            .finish()
    }
}

impl Device for Port {
    type RxToken<'a> = PortRxToken<'a>;
    type TxToken<'a> = PortTxToken<'a>;

    fn receive(&mut self, timestamp: Instant) -> Option<(PortRxToken<'_>, PortTxToken<'_>)> {
        let frame = self.wire.borrow_mut().take_due(self.id, timestamp)?;
        let port = &*self;
        Some((PortRxToken { port, frame }, PortTxToken { port, timestamp }))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<PortTxToken<'_>> {
        Some(PortTxToken {
            port: self,
            timestamp,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = self.mtu + ETHERNET_HEADER_LEN;
        capabilities
    }
}

/// A frame a [`Port`] received, handed to smoltcp.
pub struct PortRxToken<'a> {
    port: &'a Port,
    frame: Vec<u8>,
}

impl phy::RxToken for PortRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let result = f(&self.frame);
        self.port.wire.borrow_mut().recycle(self.frame);
        result
    }
}

impl fmt::Debug for PortRxToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortRxToken")
            .field("port", &self.port.id)
            .field("len", &self.frame.len())
            .finish()
    }
}

/// Permission for smoltcp to transmit one frame through a [`Port`].
pub struct PortTxToken<'a> {
    port: &'a Port,
    timestamp: Instant,
}

impl phy::TxToken for PortTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = self.port.wire.borrow_mut().buffer(len);
        let result = f(&mut frame);
        self.port
            .wire
            .borrow_mut()
            .transmit(self.port.id, self.timestamp, frame);
        result
    }
}

impl fmt::Debug for PortTxToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortTxToken")
            .field("port", &self.port.id)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// The shared state behind a [`Segment`] and its ports.
struct Wire {
    seed: u64,
    /// The latest time seen; nothing happens before it any more.
    now: Instant,
    ports: Vec<PortState>,
    /// Which port each known MAC lives on (assigned or learned).
    locations: HashMap<EthernetAddress, usize>,
    stats: Stats,
    trace: Fnv1a,
    /// Orders frames due at the same instant by when they were queued.
    next_sequence: u64,
    /// Frames on their way from a transmit link to the switch, earliest
    /// on top.
    crossing: BinaryHeap<Due<Crossing>>,
    next_crossing: u64,
    /// The smallest latency of any receive link: how soon after crossing
    /// the switch a frame can be delivered.
    least_rx_latency: Duration,
    /// (from, to) port pairs a partition cuts.
    partitions: HashSet<(usize, usize)>,
    /// (from, to) port pairs whose frames wait at the switch.
    holds: HashSet<(usize, usize)>,
    held: Vec<Due<Crossing>>,
    flows: FlowTable,
    /// Which faults may happen, for a shrinking run.
    record: Option<Rc<RefCell<FaultRecord>>>,
    capture: Option<Vec<u8>>,
    /// Buffers of consumed frames, reused so steady traffic does not
    /// allocate.
    spare: Vec<Vec<u8>>,
}

struct PortState {
    mtu: usize,
    mac: EthernetAddress,
    /// Whether a device (a host) is plugged into the port.
    plugged: bool,
    boots: u32,
    tx: FaultStream,
    rx: FaultStream,
    tx_link: LinkState,
    rx_link: LinkState,
    /// Frames on their way to the host, by delivery time.
    inbox: BinaryHeap<Due<Vec<u8>>>,
}

impl PortState {
    fn max_frame_len(&self) -> usize {
        self.mtu + ETHERNET_HEADER_LEN
    }

    fn link_mut(&mut self, direction: Direction) -> &mut LinkState {
        match direction {
            Direction::Tx => &mut self.tx_link,
            Direction::Rx => &mut self.rx_link,
        }
    }
}

enum Destination {
    One(usize),
    Everyone,
}

impl Wire {
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.resize(len, 0);
        buffer
    }

    fn copy_of(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(frame);
        buffer
    }

    fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(buffer);
        }
    }

    fn update_least_rx_latency(&mut self) {
        self.least_rx_latency = self
            .ports
            .iter()
            .map(|port| port.rx_link.link().latency.min())
            .min()
            .unwrap_or(Duration::ZERO);
    }

    /// Lets every frame that reaches the switch by `now` cross it.
    fn advance_to(&mut self, now: Instant) {
        self.now = self.now.max(now);
        while self.crossing.peek().is_some_and(|next| next.at <= now) {
            let crossing = self.crossing.pop().expect("peeked");
            self.cross(crossing);
        }
    }

    fn unplug(&mut self, port: PortId) {
        let state = &mut self.ports[port.0];
        state.plugged = false;
        state.tx_link.flush();
        state.rx_link.flush();
        let lost = core::mem::take(&mut state.inbox);
        self.stats.link_down += lost.len() as u64;
        for frame in lost {
            self.recycle(frame.item);
        }
    }

    fn transmit(&mut self, from: PortId, now: Instant, mut frame: Vec<u8>) {
        self.advance_to(now);
        self.stats.transmitted += 1;
        if let Some(capture) = &mut self.capture {
            capture.packet(now, &frame);
        }
        self.flows.record(now, &frame);
        if let Ok(header) = EthernetFrame::new_checked(&frame[..]) {
            let source = header.src_addr();
            if source.is_unicast() {
                self.locations.insert(source, from.0);
            }
        }
        let port = &mut self.ports[from.0];
        if !port.tx_link.is_up() {
            self.stats.link_down += 1;
            self.recycle(frame);
            return;
        }
        // Drawn first, for every frame, so a port's random stream does not
        // depend on the queue.
        let fate = port.tx.apply(
            &port.tx_link.link().faults,
            &mut frame,
            &mut self.stats,
            self.record.as_deref(),
        );
        let Some(sent) = port.tx_link.send(now, frame.len()) else {
            self.stats.queue_drops += 1;
            self.recycle(frame);
            return;
        };
        if !fate.delays().is_empty() {
            let arrival = port.tx_link.arrival(sent);
            for &delay in fate.delays() {
                self.switch(from, arrival + delay, &frame);
            }
        }
        self.recycle(frame);
    }

    fn switch(&mut self, from: PortId, at: Instant, frame: &[u8]) {
        // A frame cut shorter than its header has no destination: a real
        // switch drops such a runt.
        let Ok(header) = EthernetFrame::new_checked(frame) else {
            return;
        };
        let destination = header.dst_addr();
        let known = destination
            .is_unicast()
            .then(|| self.locations.get(&destination).copied())
            .flatten();
        match known.map_or(Destination::Everyone, Destination::One) {
            Destination::One(to) if to != from.0 => self.toward(from.0, to, at, frame),
            // The switch never sends a frame back out of the port it came in by.
            Destination::One(_) => {}
            Destination::Everyone => {
                for to in (0..self.ports.len()).filter(|&to| to != from.0) {
                    self.toward(from.0, to, at, frame);
                }
            }
        }
    }

    /// Sends a copy of `frame` from port `from` toward port `to`, reaching
    /// the switch at `at`. Its fate on the receive link is drawn now, in
    /// the order frames are transmitted; what the topology and the queue
    /// do with it is decided when it reaches the switch.
    fn toward(&mut self, from: usize, to: usize, at: Instant, frame: &[u8]) {
        if frame.len() > self.ports[to].max_frame_len() {
            self.stats.oversize += 1;
            log::debug!(
                "port {to} rx: frame of {} bytes exceeds the MTU",
                frame.len()
            );
            return;
        }
        let mut copy = self.copy_of(frame);
        let port = &mut self.ports[to];
        let fate = port.rx.apply(
            &port.rx_link.link().faults,
            &mut copy,
            &mut self.stats,
            self.record.as_deref(),
        );
        let first_sequence = self.next_sequence;
        self.next_sequence += fate.delays().len() as u64;
        self.crossing.push(Due {
            at,
            order: self.next_crossing,
            item: Crossing {
                from,
                to,
                frame: copy,
                fate,
                first_sequence,
            },
        });
        self.next_crossing += 1;
    }

    /// A frame reaches the switch: the topology decides whether it goes on.
    fn cross(&mut self, crossing: Due<Crossing>) {
        let pair = (crossing.item.from, crossing.item.to);
        if self.partitions.contains(&pair) {
            self.stats.partitioned += 1;
            self.recycle(crossing.item.frame);
        } else if self.holds.contains(&pair) {
            self.stats.held += 1;
            self.held.push(crossing);
        } else {
            self.enter_rx_link(crossing.item, crossing.at);
        }
    }

    /// A frame leaves the switch at `at` on the receiving port's link.
    fn enter_rx_link(&mut self, crossing: Crossing, at: Instant) {
        let Crossing {
            to,
            mut frame,
            fate,
            first_sequence,
            ..
        } = crossing;
        let port = &mut self.ports[to];
        if !port.plugged || !port.rx_link.is_up() {
            self.stats.link_down += 1;
            self.recycle(frame);
            return;
        }
        let Some(sent) = port.rx_link.send(at, frame.len()) else {
            self.stats.queue_drops += 1;
            self.recycle(frame);
            return;
        };
        let delays = fate.delays();
        if delays.is_empty() {
            self.recycle(frame);
            return;
        }
        let arrival = port.rx_link.arrival(sent);
        for (index, &delay) in delays.iter().enumerate() {
            let copy = if index + 1 == delays.len() {
                core::mem::take(&mut frame)
            } else {
                self.copy_of(&frame)
            };
            self.ports[to].inbox.push(Due {
                at: arrival + delay,
                order: first_sequence + index as u64,
                item: copy,
            });
        }
    }

    fn take_due(&mut self, port: PortId, now: Instant) -> Option<Vec<u8>> {
        self.advance_to(now);
        let inbox = &mut self.ports[port.0].inbox;
        if inbox.peek()?.at > now {
            return None;
        }
        let frame = inbox.pop()?.item;
        self.stats.delivered += 1;
        self.trace.write(&now.total_micros().to_le_bytes());
        self.trace.write(&(port.0 as u64).to_le_bytes());
        self.trace.write(&(frame.len() as u64).to_le_bytes());
        self.trace.write(&frame);
        Some(frame)
    }
}

/// A frame between a transmit link and the switch, with its fate on the
/// receive link already drawn.
struct Crossing {
    from: usize,
    to: usize,
    frame: Vec<u8>,
    fate: Fate,
    /// The delivery order of its first copy among frames due together.
    first_sequence: u64,
}

/// Something due at an instant; among those due together, the lower
/// `order` first.
struct Due<T> {
    at: Instant,
    order: u64,
    item: T,
}

// `BinaryHeap` pops its greatest item; the greatest here is the earliest.
impl<T> Ord for Due<T> {
    fn cmp(&self, other: &Due<T>) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl<T> PartialOrd for Due<T> {
    fn partial_cmp(&self, other: &Due<T>) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Due<T> {
    fn eq(&self, other: &Due<T>) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Due<T> {}

/// FNV-1a, 64 bits: tiny, and the same in every build, unlike std's
/// randomly keyed hasher.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Fnv1a {
        Fnv1a(Self::OFFSET_BASIS)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The frames of a capture a [`Wire`] wrote, in order.
fn captured_frames(pcap: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = &pcap[PCAP_FILE_HEADER_LEN..];
    core::iter::from_fn(move || {
        let (header, after) = rest.split_at_checked(PCAP_RECORD_HEADER_LEN)?;
        // The captured length, written in the machine's byte order.
        let len = u32::from_ne_bytes(header[8..12].try_into().expect("four bytes")) as usize;
        let (frame, after) = after.split_at(len);
        rest = after;
        Some(frame)
    })
}

/// Spreads nearby integers (seeds, port numbers) over all 64 bits.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Sim;
    use smoltcp::phy::{RxToken, TxToken};
    use smoltcp::wire::IpCidr;

    const BROADCAST: [u8; 6] = [0xff; 6];

    fn send(port: &mut Port, now: Instant, destination: [u8; 6], payload: &[u8]) {
        let source = port.mac();
        port.transmit(now)
            .unwrap()
            .consume(14 + payload.len(), |buf| {
                buf[..6].copy_from_slice(&destination);
                buf[6..12].copy_from_slice(source.as_bytes());
                buf[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental
                buf[14..].copy_from_slice(payload);
            });
    }

    fn receive(port: &mut Port, now: Instant) -> Option<Vec<u8>> {
        let (rx, _tx) = port.receive(now)?;
        Some(rx.consume(|frame| frame[14..].to_vec()))
    }

    #[test]
    fn fnv1a_matches_the_reference_vector() {
        let mut hash = Fnv1a::new();
        hash.write(b"a");
        assert_eq!(hash.finish(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn unicast_goes_only_to_the_owner_of_the_mac() {
        let segment = Segment::new(0);
        let mut a = segment.attach(PortConfig::default());
        let mut b = segment.attach(PortConfig::default());
        let mut c = segment.attach(PortConfig::default());
        send(&mut a, Instant::ZERO, b.mac().0, b"to b");
        assert_eq!(
            receive(&mut b, Instant::ZERO).as_deref(),
            Some(&b"to b"[..])
        );
        assert_eq!(receive(&mut c, Instant::ZERO), None);
    }

    #[test]
    fn broadcast_goes_to_every_other_port() {
        let segment = Segment::new(0);
        let mut a = segment.attach(PortConfig::default());
        let mut b = segment.attach(PortConfig::default());
        let mut c = segment.attach(PortConfig::default());
        send(&mut a, Instant::ZERO, BROADCAST, b"all");
        assert!(receive(&mut b, Instant::ZERO).is_some());
        assert!(receive(&mut c, Instant::ZERO).is_some());
        assert_eq!(receive(&mut a, Instant::ZERO), None);
    }

    #[test]
    fn unknown_unicast_is_flooded_and_sources_are_learned() {
        let segment = Segment::new(0);
        let mut a = segment.attach(PortConfig::default());
        let mut b = segment.attach(PortConfig::default());
        let mut c = segment.attach(PortConfig::default());
        let stranger = [0x02, 0, 0, 0, 0, 0x99];
        send(&mut a, Instant::ZERO, stranger, b"who?");
        assert!(receive(&mut b, Instant::ZERO).is_some());
        assert!(receive(&mut c, Instant::ZERO).is_some());

        // `c` answers from the stranger's MAC: from now on only `c` gets it.
        let c_mac = c.mac();
        c.transmit(Instant::ZERO).unwrap().consume(20, |buf| {
            buf[..6].copy_from_slice(a.mac().as_bytes());
            buf[6..12].copy_from_slice(&stranger);
            buf[12..14].copy_from_slice(&[0x88, 0xb5]);
        });
        assert!(receive(&mut a, Instant::ZERO).is_some());
        send(&mut a, Instant::ZERO, stranger, b"you");
        assert!(receive(&mut c, Instant::ZERO).is_some());
        assert_eq!(receive(&mut b, Instant::ZERO), None);
        assert_ne!(c_mac.0, stranger);
    }

    #[test]
    fn latency_holds_frames_until_due() {
        let segment = Segment::new(0);
        let latency = Duration::from_millis(5);
        let config = PortConfig::new().latency(latency);
        let mut a = segment.attach(config);
        let mut b = segment.attach(config);
        send(&mut a, Instant::ZERO, b.mac().0, b"slow");
        let due = Instant::from_millis(10);
        assert_eq!(segment.next_delivery(), Some(due));
        assert_eq!(receive(&mut b, due - Duration::from_micros(1)), None);
        assert!(receive(&mut b, due).is_some());
        assert_eq!(segment.next_delivery(), None);
    }

    #[test]
    fn frames_due_together_keep_their_order() {
        let segment = Segment::new(0);
        let mut a = segment.attach(PortConfig::default());
        let mut b = segment.attach(PortConfig::default());
        for n in 0..50u8 {
            send(&mut a, Instant::ZERO, b.mac().0, &[n]);
        }
        let received: Vec<u8> = core::iter::from_fn(|| receive(&mut b, Instant::ZERO))
            .map(|payload| payload[0])
            .collect();
        assert_eq!(received, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn delayed_frames_are_overtaken() {
        let segment = Segment::new(5);
        let mut a = segment.attach(PortConfig::new().tx_link(Link::new().faults(Faults {
            delay: 0.5,
            max_delay: Duration::from_millis(50),
            ..Faults::default()
        })));
        let mut b = segment.attach(PortConfig::default());
        for n in 0..50u8 {
            send(&mut a, Instant::ZERO, b.mac().0, &[n]);
        }
        let received: Vec<u8> = core::iter::from_fn(|| receive(&mut b, Instant::from_secs(1)))
            .map(|payload| payload[0])
            .collect();
        assert_eq!(received.len(), 50);
        assert!(received.windows(2).any(|pair| pair[0] > pair[1]));
        assert!(segment.stats().delayed > 0);
    }

    #[test]
    fn frames_over_the_receivers_mtu_are_dropped() {
        let segment = Segment::new(0);
        let mut big = segment.attach(PortConfig::new().mtu(9000));
        let mut small = segment.attach(PortConfig::new().mtu(576));
        send(&mut big, Instant::ZERO, small.mac().0, &[0; 576]);
        send(&mut big, Instant::ZERO, small.mac().0, &[0; 577]);
        assert_eq!(
            receive(&mut small, Instant::ZERO).map(|p| p.len()),
            Some(576)
        );
        assert_eq!(receive(&mut small, Instant::ZERO), None);
        assert_eq!(segment.stats().oversize, 1);
    }

    #[test]
    fn device_reports_mtu_with_the_ethernet_header() {
        let segment = Segment::new(0);
        let port = segment.attach(PortConfig::default());
        let capabilities = port.capabilities();
        assert_eq!(capabilities.medium, Medium::Ethernet);
        assert_eq!(capabilities.max_transmission_unit, 1514);
        assert_eq!(capabilities.ip_mtu(), 1500);
    }

    #[test]
    fn assigned_macs_are_unicast_and_distinct() {
        let segment = Segment::new(0);
        let macs: Vec<_> = (0..300)
            .map(|_| segment.attach(PortConfig::default()).mac())
            .collect();
        assert!(macs.iter().all(|mac| mac.is_unicast() && mac.is_local()));
        let mut unique = macs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), macs.len());
    }

    #[test]
    fn interface_seeds_differ_per_port_and_per_segment_seed() {
        let first = Segment::new(1);
        let second = Segment::new(2);
        let seed = |port: Port| port.interface_config().random_seed;
        let a = seed(first.attach(PortConfig::default()));
        let b = seed(first.attach(PortConfig::default()));
        let c = seed(second.attach(PortConfig::default()));
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn trace_hash_covers_delivery_time() {
        let run = |at: Instant| {
            let segment = Segment::new(0);
            let mut a = segment.attach(PortConfig::default());
            let mut b = segment.attach(PortConfig::default());
            send(&mut a, Instant::ZERO, b.mac().0, b"x");
            receive(&mut b, at).unwrap();
            segment.trace_hash()
        };
        assert_eq!(run(Instant::ZERO), run(Instant::ZERO));
        assert_ne!(run(Instant::ZERO), run(Instant::from_millis(1)));
    }

    #[test]
    fn capture_is_off_until_enabled() {
        let segment = Segment::new(0);
        assert!(segment.pcap().is_none());
        assert!(segment.tcp_sent_by(Ipv4Address::new(10, 0, 0, 1)).is_none());
        assert!(matches!(
            segment.write_pcap("/nonexistent/never-written.pcap"),
            Err(WritePcapError::CaptureOff)
        ));
    }

    #[test]
    fn capture_records_each_transmitted_frame_once() {
        let segment = Segment::new(0);
        segment.enable_capture();
        let mut a = segment.attach(PortConfig::default());
        let _b = segment.attach(PortConfig::default());
        let _c = segment.attach(PortConfig::default());
        send(&mut a, Instant::from_millis(1500), BROADCAST, &[7; 46]);
        let pcap = segment.pcap().unwrap();
        // 24-byte global header, one 16-byte record header, one 60-byte frame.
        assert_eq!(pcap.len(), 24 + 16 + 60);
        let field = |at: usize| u32::from_ne_bytes(pcap[at..at + 4].try_into().unwrap());
        assert_eq!(field(0), 0xa1b2_c3d4);
        assert_eq!(field(20), 1, "LINKTYPE_ETHERNET");
        assert_eq!((field(24), field(28)), (1, 500_000), "timestamp 1.5 s");
        assert_eq!((field(32), field(36)), (60, 60));
    }

    #[test]
    fn tcp_sent_by_keeps_one_host_s_tcp_segments_in_order() {
        let mut sim = Sim::new(0);
        sim.segment().enable_capture();
        let address = |last_octet| Ipv4Address::new(10, 0, 0, last_octet);
        let cidr = |last_octet| IpCidr::new(address(last_octet).into(), 24);
        let server = sim.add_host(PortConfig::default(), &[cidr(1)]);
        let client = sim.add_host(PortConfig::default(), &[cidr(2)]);
        let listener = sim[server].add_tcp_socket(1024, 1024);
        sim[server].tcp(listener).listen(7).unwrap();
        let socket = sim[client].add_tcp_socket(1024, 1024);
        sim[client]
            .tcp_connect(socket, (address(1), 7), 40_000)
            .unwrap();
        sim.run_until(Duration::from_secs(5), |sim| {
            sim[server].tcp(listener).may_recv()
        })
        .unwrap();

        // Each host sent an ARP frame before its first TCP segment.
        let from_client = sim.segment().tcp_sent_by(address(2)).unwrap();
        let from_server = sim.segment().tcp_sent_by(address(1)).unwrap();
        let flags = |tcp: &TcpPacket<Vec<u8>>| (tcp.syn(), tcp.ack());
        let client_flags: Vec<_> = from_client.iter().map(flags).collect();
        assert_eq!(client_flags, [(true, false), (false, true)], "SYN, ACK");
        let server_flags: Vec<_> = from_server.iter().map(flags).collect();
        assert_eq!(server_flags, [(true, true)], "SYN-ACK");
    }
}
