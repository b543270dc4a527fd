//! What the traffic achieved: per-flow goodput and retransmissions read off
//! the wire, queue drops per link, and Jain's fairness index.

use core::fmt;
use std::collections::HashMap;

use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, Ipv4Packet, Ipv6Packet,
    TcpPacket, TcpSeqNumber,
};

use crate::faults::{Direction, Stats};
use crate::link::LinkStats;
use crate::segment::PortId;

/// One direction of one TCP connection as seen on the wire: what its
/// sender put on the segment and what its receiver acknowledged.
///
/// Counted when frames are transmitted, before any fault: a segment sent
/// again is a retransmission whether or not the first copy was lost.
///
/// ```
/// use reversal_sim::Flow;
/// use smoltcp::time::Instant;
/// use smoltcp::wire::{IpAddress, IpEndpoint};
///
/// let flow = Flow {
///     acked_bytes: 125_000,
///     started_at: Instant::ZERO,
///     last_ack_at: Some(Instant::from_secs(1)),
///     ..Flow::new(IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), 40_000), IpEndpoint::new(IpAddress::v4(10, 0, 0, 1), 8888))
/// };
/// assert_eq!(flow.goodput(), Some(1_000_000.0)); // bits per second
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The sender.
    pub src: IpEndpoint,
    /// The receiver.
    pub dst: IpEndpoint,
    /// When the sender transmitted the flow's first segment.
    pub started_at: Instant,
    /// When the receiver last acknowledged new data.
    pub last_ack_at: Option<Instant>,
    /// Segments with payload the sender transmitted.
    pub segments: u64,
    /// Their payload bytes, retransmissions included.
    pub payload_bytes: u64,
    /// Segments that carried data sent before.
    pub retransmitted_segments: u64,
    /// Payload bytes of those segments.
    pub retransmitted_bytes: u64,
    /// Bytes the receiver acknowledged (a FIN counts one).
    pub acked_bytes: u64,
}

impl Flow {
    /// A flow from `src` to `dst` that has carried nothing yet.
    pub const fn new(src: IpEndpoint, dst: IpEndpoint) -> Flow {
        Flow {
            src,
            dst,
            started_at: Instant::ZERO,
            last_ack_at: None,
            segments: 0,
            payload_bytes: 0,
            retransmitted_segments: 0,
            retransmitted_bytes: 0,
            acked_bytes: 0,
        }
    }

    /// Acknowledged bits per second of virtual time, from the first segment
    /// to the last acknowledgement of new data; `None` before one.
    pub fn goodput(&self) -> Option<f64> {
        let last = self.last_ack_at?;
        let seconds = (last - self.started_at.min(last)).total_micros() as f64 / 1e6;
        (seconds > 0.0).then(|| self.acked_bytes as f64 * 8.0 / seconds)
    }
}

/// Jain's fairness index of some throughputs: 1 when all are equal, `1/n`
/// when one takes everything; `None` for none, or all zero.
///
/// ```
/// use reversal_sim::jain_fairness;
///
/// assert_eq!(jain_fairness([5.0, 5.0, 5.0, 5.0]), Some(1.0));
/// assert_eq!(jain_fairness([8.0, 0.0, 0.0, 0.0]), Some(0.25));
/// assert_eq!(jain_fairness([]), None);
/// ```
pub fn jain_fairness(throughputs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (count, sum, squares) = throughputs
        .into_iter()
        .fold((0u32, 0.0, 0.0), |(count, sum, squares), x| {
            (count + 1, sum + x, squares + x * x)
        });
    (squares > 0.0).then(|| sum * sum / (f64::from(count) * squares))
}

/// One direction of one port's link in a [`Report`].
///
/// ```
/// use reversal_sim::{Direction, PortConfig, Segment};
///
/// let segment = Segment::new(0);
/// let _port = segment.attach(PortConfig::default());
/// let report = segment.report();
/// assert_eq!(report.links.len(), 2, "one per direction");
/// assert_eq!(report.links[1].direction, Direction::Rx);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkReport {
    /// The port.
    pub port: PortId,
    /// Which way.
    pub direction: Direction,
    /// What it did.
    pub stats: LinkStats,
}

/// What a segment's traffic achieved: [`Segment::report`](crate::Segment::report).
///
/// Its `Display` is a small table, flows first, then the links that sent
/// anything.
///
/// ```
/// use reversal_sim::{PortConfig, Sim};
/// use smoltcp::time::Duration;
/// use smoltcp::wire::{IpAddress, IpCidr};
///
/// let mut sim = Sim::new(1);
/// let a = sim.add_host(PortConfig::default(), &[IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)]);
/// let b = sim.add_host(PortConfig::default(), &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)]);
/// let listener = sim[a].add_tcp_socket(4096, 4096);
/// sim[a].tcp(listener).listen(7).unwrap();
/// let socket = sim[b].add_tcp_socket(4096, 4096);
/// sim[b].tcp_connect(socket, (IpAddress::v4(10, 0, 0, 1), 7), 40_000).unwrap();
/// sim.run_until(Duration::from_secs(5), |sim| sim[b].tcp(socket).may_send()).unwrap();
/// sim[b].tcp(socket).send_slice(&[7; 3000]).unwrap();
/// sim.run_until(Duration::from_secs(5), |sim| sim[a].tcp(listener).recv_queue() == 3000).unwrap();
/// sim.run_for(Duration::from_millis(10)).unwrap();
///
/// let report = sim.segment().report();
/// let flow = report.flows.iter().find(|flow| flow.payload_bytes > 0).unwrap();
/// assert_eq!(flow.acked_bytes, 3000);
/// assert_eq!(flow.retransmitted_segments, 0);
/// println!("{report}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The segment's counts.
    pub stats: Stats,
    /// Every TCP flow, in the order each was first seen.
    pub flows: Vec<Flow>,
    /// Every direction of every port, in port order.
    pub links: Vec<LinkReport>,
}

impl Report {
    /// Jain's fairness index of the goodput of the flows that carried data.
    pub fn fairness(&self) -> Option<f64> {
        jain_fairness(self.data_flows().filter_map(Flow::goodput))
    }

    /// Frames the links' queues dropped, all links together.
    pub fn queue_drops(&self) -> u64 {
        self.links.iter().map(|link| link.stats.queue_drops).sum()
    }

    /// Segments sent again, all flows together.
    pub fn retransmitted_segments(&self) -> u64 {
        self.flows
            .iter()
            .map(|flow| flow.retransmitted_segments)
            .sum()
    }

    fn data_flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows.iter().filter(|flow| flow.payload_bytes > 0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:<22} {:>10} {:>8} {:>10} {:>12}",
            "flow from", "to", "acked B", "retx", "retx B", "goodput b/s"
        )?;
        for flow in self.data_flows() {
            writeln!(
                f,
                "{:<22} {:<22} {:>10} {:>8} {:>10} {:>12}",
                flow.src.to_string(),
                flow.dst.to_string(),
                flow.acked_bytes,
                flow.retransmitted_segments,
                flow.retransmitted_bytes,
                flow.goodput()
                    .map_or("-".to_owned(), |bps| format!("{bps:.0}")),
            )?;
        }
        match self.fairness() {
            Some(index) => writeln!(f, "Jain fairness {index:.3}")?,
            None => writeln!(f, "Jain fairness -")?,
        }
        writeln!(
            f,
            "{:<8} {:>10} {:>12} {:>12} {:>12}",
            "link", "frames", "bytes", "queue drops", "max backlog"
        )?;
        for link in self.links.iter().filter(|link| link.stats.frames > 0) {
            writeln!(
                f,
                "{:<8} {:>10} {:>12} {:>12} {:>12}",
                format!("{} {}", link.port, link.direction),
                link.stats.frames,
                link.stats.bytes,
                link.stats.queue_drops,
                link.stats.max_backlog
            )?;
        }
        write!(f, "{:?}", self.stats)
    }
}

/// One flow's sequence-space bookkeeping, in offsets from its first byte.
#[derive(Debug)]
struct FlowState {
    flow: Flow,
    /// Sequence number of the first payload byte (after the SYN), once seen.
    base: Option<TcpSeqNumber>,
    /// Offset just past the highest payload byte sent so far.
    highest_end: i64,
}

/// The flows of a segment, fed with every frame transmitted.
#[derive(Debug, Default)]
pub(crate) struct FlowTable {
    flows: Vec<FlowState>,
    index: HashMap<(IpEndpoint, IpEndpoint), usize>,
}

impl FlowTable {
    /// Reads `frame` if it is TCP over IPv4 or IPv6 and counts it.
    pub(crate) fn record(&mut self, now: Instant, frame: &[u8]) {
        let Some((src, dst, payload)) = ip_tcp(frame) else {
            return;
        };
        let Ok(tcp) = TcpPacket::new_checked(payload) else {
            return;
        };
        let from = IpEndpoint::new(src, tcp.src_port());
        let to = IpEndpoint::new(dst, tcp.dst_port());
        let seq = tcp.seq_number();
        let len = tcp.payload().len();
        let state = self.flow(now, from, to);
        let base = *state
            .base
            .get_or_insert(if tcp.syn() { seq + 1 } else { seq });
        if len > 0 {
            let start = offset(seq, base);
            let end = start + len as i64;
            state.flow.segments += 1;
            state.flow.payload_bytes += len as u64;
            if start < state.highest_end {
                state.flow.retransmitted_segments += 1;
                state.flow.retransmitted_bytes += len as u64;
            }
            state.highest_end = state.highest_end.max(end);
        }
        if tcp.ack()
            && let Some(&reverse) = self.index.get(&(to, from))
        {
            let reverse = &mut self.flows[reverse];
            if let Some(base) = reverse.base {
                let acked = offset(tcp.ack_number(), base);
                if acked > reverse.flow.acked_bytes as i64 {
                    reverse.flow.acked_bytes = acked as u64;
                    reverse.flow.last_ack_at = Some(now);
                }
            }
        }
    }

    fn flow(&mut self, now: Instant, from: IpEndpoint, to: IpEndpoint) -> &mut FlowState {
        let next = self.flows.len();
        let index = *self.index.entry((from, to)).or_insert(next);
        if index == next {
            self.flows.push(FlowState {
                flow: Flow {
                    started_at: now,
                    ..Flow::new(from, to)
                },
                base: None,
                highest_end: 0,
            });
        }
        &mut self.flows[index]
    }

    pub(crate) fn flows(&self) -> Vec<Flow> {
        self.flows.iter().map(|state| state.flow).collect()
    }
}

/// How far `seq` is past `base`, across wrap-around.
fn offset(seq: TcpSeqNumber, base: TcpSeqNumber) -> i64 {
    i64::from(seq.0.wrapping_sub(base.0))
}

/// The addresses and TCP bytes of an Ethernet frame carrying TCP.
fn ip_tcp(frame: &[u8]) -> Option<(IpAddress, IpAddress, &[u8])> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(&frame[14..]).ok()?;
            (ip.next_header() == IpProtocol::Tcp).then_some(())?;
            let header = usize::from(ip.header_len());
            let end = usize::from(ip.total_len()).min(frame.len() - 14);
            let payload = frame.get(14 + header..14 + end)?;
            Some((ip.src_addr().into(), ip.dst_addr().into(), payload))
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(&frame[14..]).ok()?;
            (ip.next_header() == IpProtocol::Tcp).then_some(())?;
            let payload = frame.get(14 + 40..14 + 40 + usize::from(ip.payload_len()))?;
            Some((ip.src_addr().into(), ip.dst_addr().into(), payload))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fairness_of_unequal_shares() {
        let index = jain_fairness([1.0, 2.0, 3.0]).unwrap();
        // (1+2+3)² / (3 × (1+4+9)) = 36 / 42
        assert!((index - 36.0 / 42.0).abs() < 1e-12);
        assert_eq!(jain_fairness([0.0, 0.0]), None);
    }

    #[test]
    fn goodput_needs_an_acknowledgement_after_the_start() {
        let endpoint = IpEndpoint::new(IpAddress::v4(10, 0, 0, 1), 1);
        let mut flow = Flow::new(endpoint, endpoint);
        assert_eq!(flow.goodput(), None);
        flow.last_ack_at = Some(Instant::ZERO);
        assert_eq!(flow.goodput(), None, "no time has passed");
    }

    #[test]
    fn offsets_cross_the_wrap_of_sequence_numbers() {
        let base = TcpSeqNumber(i32::MAX - 10);
        assert_eq!(offset(base + 100, base), 100);
    }
}
