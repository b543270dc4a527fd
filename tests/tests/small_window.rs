//! The reversal server's replies against a client with a small receive
//! window (an embedded client with 1 KiB buffers) over lossy links.
//!
//! smoltcp 0.14's fast retransmit can send a whole segment past a window
//! smaller than one segment, count the cut-off part as sent, and leave no
//! retransmission timer running for it (see `load.rs`). The server is a
//! smoltcp sender too, and without the core's keep-alive probes while
//! replies are unacknowledged (`probe_while_unacknowledged` in the core's
//! server) seed 376 below stalls its last replies until the idle timeout,
//! 120 s later. Three duplicate ACKs are needed first, so the links here
//! duplicate and reorder more than `Faults::rough`.

use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{ClientParty, Script, ServerParty};
use reversal_sim::{Faults, Host, PortConfig, Sim, seed_sweep};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};

const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);
const MAX_LINE: usize = 256;

/// Loses, duplicates and reorders enough to draw duplicate ACKs.
const CHOPPY: Faults = Faults {
    drop: 0.05,
    duplicate: 0.05,
    delay: 0.3,
    max_delay: Duration::from_millis(10),
    ..Faults::NONE
};

/// One conversation of `lines` 200-byte lines sent at once from a client
/// whose socket buffers are `client_buffer` bytes, over a link with
/// `faults` both ways; checks every reply and returns when the
/// conversation ended.
fn small_window_exchange(seed: u64, client_buffer: usize, lines: usize, faults: Faults) -> Instant {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed);
    let _pcap = sim.segment().capture_on_failure("small-window");
    let capacity = Capacity::new(1, 16384, MAX_LINE).with_spare_sockets(1);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let server = ServerParty::new(
        sim.attach(PortConfig::new().latency(Duration::from_millis(2))),
        IpCidr::new(SERVER, 24),
        sim.now(),
        ServerConfig::new(1, MAX_LINE),
        resources,
    )
    .unwrap();
    let server = sim.add(server);
    let link = PortConfig::new()
        .latency(Duration::from_millis(2))
        .faults(faults);
    let host = Host::new(
        sim.attach(link),
        &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)],
        sim.now(),
    );
    let mut client = ClientParty::new(host).socket_buffers(client_buffer, client_buffer);
    let mut script = Script::new();
    let mut expected = Vec::new();
    for n in 0..lines {
        let line = format!("{n:04}{}", "x".repeat(196));
        expected.push(format!("{}\n", line.chars().rev().collect::<String>()));
        script = script.send_line(line);
    }
    let talk = client
        .connect((SERVER, 8888), 40_000, script.close())
        .unwrap();
    let client = sim.add(client);
    sim.run_until(Duration::from_secs(900), |sim| {
        sim[client].conversation(talk).is_ended()
    })
    .unwrap_or_else(|error| panic!("{error}; {:?}", sim.segment().stats()));
    let conversation = sim[client].conversation(talk);
    let counters = sim[server].counters();
    if std::env::var_os("SMALL_WINDOW_VERBOSE").is_some() {
        eprintln!(
            "seed {seed}: {} {:?}\n{}",
            sim.now(),
            sim.segment().stats(),
            sim.segment().report()
        );
    }
    assert_eq!(counters.errors.idle_timeout, 0, "stalled: {counters}");
    assert_eq!(conversation.reply_text(), expected, "{counters}");
    sim.now()
}

#[test]
fn seed_376_a_fast_retransmit_past_a_one_kib_window_does_not_stall_the_last_replies() {
    let ended = small_window_exchange(376, 1024, 300, CHOPPY);
    // Stalled, it ended at 131.7 s: the idle timeout, then the close.
    assert!(ended < Instant::from_secs(20), "ended at {ended}");
}

#[test]
fn replies_reach_a_client_with_a_one_kib_window_over_choppy_links() {
    seed_sweep!(if cfg!(debug_assertions) { 20 } else { 500 }, |seed| {
        small_window_exchange(seed, 1024, 300, CHOPPY);
    });
}
