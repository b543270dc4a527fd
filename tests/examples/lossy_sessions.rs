//! A timing scenario for BENCHMARKS.md: 64 sessions send 10,000 lines in
//! all to the reversal server, each line after the reply to the one
//! before, over client links that lose 5 % of the frames each way, until
//! every reply is in; prints the virtual and the wall-clock time.
//!
//! `cargo run -p reversal-sim --release --example lossy_sessions`

use std::time::Instant as WallClock;

use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{ClientParty, ConversationId, Script, ServerParty};
use reversal_sim::{Faults, Host, PartyId, PortConfig, Sim};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpCidr};

const SESSIONS: usize = 64;
const LINES: usize = 10_000;
const HOSTS: usize = 8;

fn main() {
    let started = WallClock::now();
    let mut sim = Sim::new(1);
    let capacity = Capacity::new(SESSIONS, 4096, 256).with_spare_sockets(1);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let server = ServerParty::new(
        sim.attach(PortConfig::new().latency(Duration::from_millis(1))),
        IpCidr::new(IpAddress::v4(10, 0, 0, 1), 16),
        sim.now(),
        ServerConfig::new(SESSIONS, 256),
        resources,
    )
    .unwrap();
    let server = sim.add(server);
    let lossy = Faults {
        drop: 0.05,
        ..Faults::default()
    };
    let link = PortConfig::new()
        .latency(Duration::from_millis(1))
        .faults(lossy);
    let mut talks: Vec<(PartyId<ClientParty>, ConversationId)> = Vec::new();
    for host in 0..HOSTS {
        let address = IpCidr::new(IpAddress::v4(10, 0, 1, host as u8 + 1), 16);
        let mut party = ClientParty::new(Host::new(sim.attach(link), &[address], sim.now()));
        let mut ids = Vec::new();
        for n in 0..SESSIONS / HOSTS {
            let session = host * (SESSIONS / HOSTS) + n;
            // 10,000 lines over 64 sessions: the first 16 send one more.
            let lines = LINES / SESSIONS + usize::from(session < LINES % SESSIONS);
            let mut script = Script::new();
            for line in 0..lines {
                let text = format!("session {session:02} line {line:04} {}", "ab".repeat(20));
                script = script.send_line(text).await_replies(line + 1);
            }
            let server = (IpAddress::v4(10, 0, 0, 1), 8888);
            ids.push(
                party
                    .connect(server, 40_000 + n as u16, script.close())
                    .unwrap(),
            );
        }
        let party = sim.add(party);
        talks.extend(ids.into_iter().map(|id| (party, id)));
    }
    sim.run_until(Duration::from_secs(3600), |sim| {
        talks
            .iter()
            .all(|&(party, id)| sim[party].conversation(id).is_ended())
    })
    .unwrap();
    let replies: usize = talks
        .iter()
        .map(|&(party, id)| sim[party].conversation(id).replies().len())
        .sum();
    assert_eq!(replies, LINES);
    assert_eq!(sim[server].counters().lines, LINES as u64);
    println!(
        "{LINES} lines, {SESSIONS} sessions, 5 % loss: {} virtual, {:.3} s wall-clock; {:?}",
        sim.now(),
        started.elapsed().as_secs_f64(),
        sim.segment().stats()
    );
}
