//! Performance gates: the reversal server's goodput and reply latency over
//! a matrix of bandwidth × round-trip time × loss × sessions, in virtual
//! time, so the figures are exact and repeat on any machine.
//!
//! The table is compared with the snapshot in `snapshots/`: a change to
//! the core's TCP path, or a smoltcp upgrade, that moves any figure fails
//! here with a line-by-line diff. CI never writes a snapshot (`CI` is set
//! there, and `.ci/run` sets `INSTA_UPDATE=no`). To accept new figures on
//! purpose, run
//!
//! ```text
//! INSTA_UPDATE=always cargo test -p reversal-sim --release --test performance
//! git diff tests/tests/snapshots/
//! ```
//!
//! and commit the snapshot with a message that says why the figures moved
//! (`cargo insta review` does the same interactively, if installed).

use core::fmt::Write;

use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{ClientParty, ConversationId, Script, ServerParty};
use reversal_sim::{Bandwidth, Faults, Host, Latency, Link, PartyId, PortConfig, Queue, Sim};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};

const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);
const MAX_LINE: usize = 1024;
const SESSIONS: usize = 8;
/// Request/response exchanges per session, each waiting for its reply.
const LOCK_STEP_LINES: usize = 20;
/// Lines of 1 KiB (LF included) each session then sends at once.
const BULK_LINES: usize = 64;

/// One cell of the matrix.
#[derive(Debug, Clone, Copy)]
struct Cell {
    bandwidth: Bandwidth,
    rtt: Duration,
    loss: f64,
    sessions: usize,
}

/// What one cell measured, all in virtual time.
struct Figures {
    /// Reply bytes per second of the bulk phase, summed over sessions.
    goodput: f64,
    /// Lock-step reply latencies over all sessions, sorted.
    latencies: Vec<Duration>,
    retransmitted: u64,
    finished: Instant,
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.total_micros() as f64 / 1000.0)
}

/// The server behind a bottleneck link of the cell's bandwidth with a
/// 64 KiB drop-tail queue; every cable adds a quarter of the round trip
/// each way; the loss is on the clients' cables, both ways.
fn run(cell: Cell) -> Figures {
    let mut sim = Sim::new(1);
    let _pcap = sim.segment().capture_on_failure("performance");
    let one_way = Latency::fixed(cell.rtt / 4);
    let bottleneck = Link::new()
        .latency(one_way)
        .bandwidth(cell.bandwidth)
        .queue(Queue::drop_tail(64 * 1024));
    let capacity = Capacity::new(SESSIONS, 16384, MAX_LINE).with_spare_sockets(1);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let server = ServerParty::new(
        sim.attach(PortConfig::new().tx_link(bottleneck).rx_link(bottleneck)),
        IpCidr::new(SERVER, 24),
        sim.now(),
        ServerConfig::new(SESSIONS, MAX_LINE),
        resources,
    )
    .unwrap();
    sim.add(server);

    let lossy = Link::new().latency(one_way).faults(Faults {
        drop: cell.loss,
        ..Faults::NONE
    });
    let cable = PortConfig::new().tx_link(lossy).rx_link(lossy);
    let bulk_line = format!("{}\n", "b".repeat(1023));
    let mut talks: Vec<(PartyId<ClientParty>, ConversationId)> = Vec::new();
    for n in 0..cell.sessions {
        let address = IpCidr::new(IpAddress::v4(10, 0, 0, n as u8 + 2), 24);
        let mut party = ClientParty::new(Host::new(sim.attach(cable), &[address], sim.now()));
        let mut script = Script::new();
        for line in 0..LOCK_STEP_LINES {
            script = script
                .send_line(format!("{n:02}:{line:02} {}", "x".repeat(56)))
                .await_replies(line + 1);
        }
        for _ in 0..BULK_LINES {
            script = script.send(&bulk_line);
        }
        let id = party
            .connect((SERVER, 8888), 40_000, script.close())
            .unwrap();
        talks.push((sim.add(party), id));
    }
    sim.run_until(Duration::from_secs(600), |sim| {
        talks
            .iter()
            .all(|&(party, id)| sim[party].conversation(id).is_ended())
    })
    .unwrap_or_else(|error| panic!("{cell:?}: {error}"));

    let mut latencies = Vec::new();
    let mut bulk_bytes = 0;
    let (mut bulk_start, mut bulk_end) = (Instant::from_secs(i64::MAX / 1_000_000), Instant::ZERO);
    for &(party, id) in &talks {
        let talk = sim[party].conversation(id);
        let replies = talk.replies();
        assert_eq!(replies.len(), LOCK_STEP_LINES + BULK_LINES, "{cell:?}");
        assert!(!talk.was_reset(), "{cell:?}");
        // Each lock-step line leaves the instant the reply before it (or
        // the connection) arrives.
        let mut asked = talk.connected_at().unwrap();
        for reply in &replies[..LOCK_STEP_LINES] {
            latencies.push(reply.at - asked);
            asked = reply.at;
        }
        bulk_start = bulk_start.min(asked);
        bulk_end = bulk_end.max(replies.last().unwrap().at);
        bulk_bytes += replies[LOCK_STEP_LINES..]
            .iter()
            .map(|reply| reply.bytes.len())
            .sum::<usize>();
    }
    latencies.sort();
    let seconds = (bulk_end - bulk_start).total_micros() as f64 / 1e6;
    Figures {
        goodput: bulk_bytes as f64 * 8.0 / seconds,
        latencies,
        retransmitted: sim.segment().report().retransmitted_segments(),
        finished: sim.now(),
    }
}

#[test]
fn reversal_server_goodput_and_latency_matrix() {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut table = String::from(
        "bandwidth   rtt ms loss sessions | goodput kbit/s | latency ms p50    p99    max | retx | done s\n",
    );
    for bandwidth in [Bandwidth::mbps(1), Bandwidth::mbps(10)] {
        for rtt in [Duration::from_millis(4), Duration::from_millis(40)] {
            for loss in [0.0, 0.02] {
                for sessions in [1, SESSIONS] {
                    let cell = Cell {
                        bandwidth,
                        rtt,
                        loss,
                        sessions,
                    };
                    let figures = run(cell);
                    let latencies = &figures.latencies;
                    writeln!(
                        table,
                        "{:<11} {:>6} {:>3}% {:>8} | {:>14.1} | {:>14} {:>6} {:>6} | {:>4} | {:>6.3}",
                        bandwidth.to_string(),
                        rtt.total_millis(),
                        loss * 100.0,
                        sessions,
                        figures.goodput / 1000.0,
                        ms(percentile(latencies, 50)),
                        ms(percentile(latencies, 99)),
                        ms(*latencies.last().unwrap()),
                        figures.retransmitted,
                        (figures.finished - Instant::ZERO).total_micros() as f64 / 1e6,
                    )
                    .unwrap();
                }
            }
        }
    }
    insta::assert_snapshot!(table);
}
