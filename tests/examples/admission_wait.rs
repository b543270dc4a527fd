//! How long a connection should wait for a session before `ERR busy`:
//! three clients per session connect, send a line and close, again and
//! again, for 60 s of virtual time, over client links with the rough fault
//! mix (5 % loss, so a lost segment costs a closing session a 1 s
//! retransmission), with each admission wait in turn. Prints the share of
//! attempts served and told busy, and how long a client told busy waited.
//!
//! Run: `cargo run -p reversal-sim --release --example admission_wait`

use reversal_core::listener::ListenerConfig;
use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::reversal::{ClientParty, Script, ServerParty};
use reversal_sim::{Faults, Host, PartyId, PortConfig, Sim};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};

const SESSIONS: usize = 4;
const SEEDS: u64 = 5;

/// Attempts served and told busy, over every seed.
#[derive(Debug, Default)]
struct Tally {
    served: u64,
    busy: u64,
    other: u64,
}

fn churn(seed: u64, wait: Duration) -> Tally {
    let mut sim = Sim::new(seed);
    let capacity = Capacity::new(SESSIONS, 1024, 64).with_spare_sockets(1);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let config = ServerConfig::new(SESSIONS, 64)
        .with_listener(ListenerConfig::new().with_admission_wait(wait));
    let server_address = IpAddress::v4(10, 0, 0, 1);
    let cable = PortConfig::new().latency(Duration::from_millis(1));
    let server = ServerParty::new(
        sim.attach(cable),
        IpCidr::new(server_address, 24),
        sim.now(),
        config,
        resources,
    )
    .unwrap();
    sim.add(server);
    let rough = cable.faults(Faults::rough());
    let clients: Vec<PartyId<ClientParty>> = (0..3 * SESSIONS as u8)
        .map(|n| {
            let address = IpCidr::new(IpAddress::v4(10, 0, 0, 2 + n), 24);
            let host = Host::new(sim.attach(rough), &[address], sim.now());
            sim.add(ClientParty::new(host))
        })
        .collect();
    let stop = Instant::from_secs(60);
    sim.run_until(Duration::from_secs(600), |sim| {
        let now = sim.now();
        let mut all_ended = true;
        for &client in &clients {
            let party = &mut sim[client];
            if !party.all_ended() {
                all_ended = false;
            } else if now < stop {
                let n = party.conversations().len() as u16;
                let script = Script::new().send_line("churn").close();
                party
                    .connect((server_address, 8888), 40_000 + n, script)
                    .unwrap();
                all_ended = false;
            }
        }
        all_ended && now >= stop
    })
    .unwrap();
    let mut tally = Tally::default();
    for &client in &clients {
        for conversation in sim[client].conversations() {
            match conversation.reply_text().first().map(String::as_str) {
                Some("nruhc\n") => tally.served += 1,
                Some(reply) if reply.starts_with("ERR busy") => tally.busy += 1,
                _ => tally.other += 1,
            }
        }
    }
    tally
}

fn main() {
    println!("| admission wait | attempts | served | ERR busy | neither (lost) |");
    println!("|---|---|---|---|---|");
    for millis in [0, 100, 250, 500, 1000, 2000] {
        let wait = Duration::from_millis(millis);
        let mut total = Tally::default();
        for seed in 0..SEEDS {
            let tally = churn(seed, wait);
            total.served += tally.served;
            total.busy += tally.busy;
            total.other += tally.other;
        }
        let attempts = total.served + total.busy + total.other;
        let share = |n: u64| n as f64 * 100.0 / attempts as f64;
        println!(
            "| {millis} ms | {attempts} | {:.1} % | {:.1} % | {:.2} % |",
            share(total.served),
            share(total.busy),
            share(total.other)
        );
    }
}
