//! Admission under pressure, end to end on the simulated segment: bursts
//! beyond the sessions, churn with clients outnumbering the sessions,
//! silent half-open handshakes and floods of forged SYNs. Each runs over
//! clean links, where every figure is the server's alone and exact, and is
//! swept over seeds over links with the rough fault mix, where lost
//! segments may cost a client its connection (a timeout gives up, as on
//! any lossy link) but never get it refused at the door.
//!
//! The server has one busy socket here, as a board has, so that without a
//! listen backlog every scenario refuses clients: a SYN that finds no
//! listening socket is reset.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reversal_core::{Capacity, Counters, HeapResources, ServerConfig};
use reversal_sim::reversal::{ClientParty, Script, ServerParty};
use reversal_sim::{
    Case, FailureCapture, Faults, Host, Party, PartyId, Port, PortConfig, Sim, Sweep, case_sweep,
};
use smoltcp::phy::{ChecksumCapabilities, Device, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpCidr, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

const SERVER: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const PORT: u16 = 8888;
const MAX_LINE: usize = 64;
/// Local port of a client host's first conversation; later ones count up.
const CLIENT_PORT: u16 = 40_000;
/// Forged sources are drawn from 10.0.0.128 to .254; real clients count up
/// from .2.
const FORGED_FROM: u8 = 128;
/// How long a scenario may run in virtual time.
const LIMIT: Duration = Duration::from_secs(600);

fn seeds(release: u64) -> u64 {
    if cfg!(debug_assertions) {
        release / 4
    } else {
        release
    }
}

/// How one connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Its line came back reversed.
    Served,
    /// `ERR busy`, then the server closed.
    Busy,
    /// Reset, and no socket ever took its SYN (the server never sent a
    /// SYN-ACK for it): "connection refused", what the backlog prevents.
    Refused,
    /// Reset after a socket took it, before any reply: its segments were
    /// lost until a timeout gave up (the handshake timeout, or the close
    /// timeout of a busy socket whose `ERR busy` never got through).
    GaveUp,
}

/// A client host.
#[derive(Debug, Clone, Copy)]
struct Client {
    party: PartyId<ClientParty>,
    address: Ipv4Address,
}

/// A server with `sessions` sessions and one busy socket at 10.0.0.1,
/// client hosts at 10.0.0.2 and up on links with `faults`, and a capture.
struct Lab {
    sim: Sim,
    server: PartyId<ServerParty>,
    last_octet: u8,
    link: PortConfig,
    _capture: FailureCapture,
}

impl Lab {
    fn new(sim: Sim, sessions: usize, faults: Faults) -> Lab {
        let _ = env_logger::builder().is_test(true).try_init();
        let thread = std::thread::current();
        let capture = sim
            .segment()
            .capture_on_failure(thread.name().unwrap_or("admission"));
        // Room to remember every real client as proven: more distinct
        // clients at once than the table holds compete with forged SYNs.
        let capacity = Capacity::new(sessions, 1024, MAX_LINE)
            .with_spare_sockets(1)
            .with_known_peers(64);
        let resources = Box::leak(Box::new(HeapResources::new(capacity)));
        let server = ServerParty::new(
            sim.attach(PortConfig::new().latency(Duration::from_millis(1))),
            IpCidr::new(SERVER.into(), 24),
            sim.now(),
            ServerConfig::new(sessions, MAX_LINE),
            resources,
        )
        .unwrap();
        let mut sim = sim;
        let server = sim.add(server);
        let link = PortConfig::new()
            .latency(Duration::from_millis(1))
            .faults(faults);
        Lab {
            sim,
            server,
            last_octet: 1,
            link,
            _capture: capture,
        }
    }

    /// A new client host, added to the simulation.
    fn client(&mut self) -> Client {
        self.last_octet += 1;
        assert!(
            self.last_octet < FORGED_FROM,
            "real clients run into forged addresses"
        );
        let address = Ipv4Address::new(10, 0, 0, self.last_octet);
        let cidr = IpCidr::new(address.into(), 24);
        let host = Host::new(self.sim.attach(self.link), &[cidr], self.sim.now());
        Client {
            party: self.sim.add(ClientParty::new(host)),
            address,
        }
    }

    /// Starts a conversation from `client` on its next local port.
    fn talk(&mut self, client: Client, script: Script) {
        talk(&mut self.sim[client.party], script);
    }

    /// Sessions that each got one reply and stay open.
    fn hold_every_session(&mut self, sessions: usize) {
        let held: Vec<_> = (0..sessions).map(|_| self.client()).collect();
        for &client in &held {
            self.talk(client, Script::new().send_line("held"));
        }
        self.sim
            .run_until(LIMIT, |sim| {
                held.iter()
                    .all(|c| !sim[c.party].conversations()[0].replies().is_empty())
            })
            .unwrap();
        for client in held {
            let replies = self.sim[client.party].conversations()[0].reply_text();
            assert_eq!(replies, ["dleh\n"]);
        }
    }

    /// How the `n`-th conversation of `client`, which sent `line`, ended.
    fn outcome(&self, client: Client, n: usize, line: &str) -> Outcome {
        let conversation = &self.sim[client.party].conversations()[n];
        let reversed: String = line.chars().rev().collect::<String>() + "\n";
        match conversation.reply_text().first() {
            Some(reply) if *reply == reversed => return Outcome::Served,
            Some(reply) if reply.starts_with("ERR busy ") => return Outcome::Busy,
            Some(reply) => panic!("unexpected reply {reply:?}: {conversation:?}"),
            None => {}
        }
        assert!(
            conversation.was_reset(),
            "ended without a reply: {conversation:?}"
        );
        if self.syn_acked(client, n) {
            Outcome::GaveUp
        } else {
            Outcome::Refused
        }
    }

    /// The server's counters, once it is checked that no half-open
    /// handshake gave way: every client here is real (and proven), so one
    /// that did would have been a client's cut short.
    fn no_handshake_cut_short(&self) -> Counters {
        let counters = self.sim[self.server].counters();
        assert_eq!(counters.backlog.reclaimed, 0, "{counters}");
        counters
    }

    /// Whether the server answered the SYN of `client`'s `n`-th
    /// conversation with a SYN-ACK, that is whether a socket took it, from
    /// the capture (every frame as its sender sent it).
    fn syn_acked(&self, client: Client, n: usize) -> bool {
        let segment = self.sim.segment();
        let port = CLIENT_PORT + n as u16;
        let initial: Vec<TcpSeqNumber> = segment
            .tcp_sent_by(client.address)
            .expect("capture is on")
            .iter()
            .filter(|tcp| tcp.syn() && !tcp.ack() && tcp.src_port() == port)
            .map(TcpPacket::seq_number)
            .collect();
        segment
            .tcp_sent_by(SERVER)
            .expect("capture is on")
            .iter()
            .any(|tcp| {
                tcp.syn()
                    && tcp.ack()
                    && tcp.dst_port() == port
                    && initial.iter().any(|&isn| tcp.ack_number() == isn + 1)
            })
    }
}

/// Starts a conversation from `party` on its next local port.
fn talk(party: &mut ClientParty, script: Script) {
    let port = CLIENT_PORT + party.conversations().len() as u16;
    party.connect((SERVER, PORT), port, script).unwrap();
}

/// How many of each outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    served: u64,
    busy: u64,
    refused: u64,
    gave_up: u64,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Served => self.served += 1,
            Outcome::Busy => self.busy += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::GaveUp => self.gave_up += 1,
        }
    }

    fn total(&self) -> u64 {
        self.served + self.busy + self.refused + self.gave_up
    }
}

// ---------------------------------------------------------------------------
// A burst beyond the sessions

/// Every session held, then four clients per session at once: how each of
/// them ended.
fn burst(lab: &mut Lab, sessions: usize) -> Tally {
    lab.hold_every_session(sessions);
    let burst: Vec<_> = (0..4 * sessions).map(|_| lab.client()).collect();
    for &client in &burst {
        lab.talk(client, Script::new().send_line("burst").close());
    }
    lab.sim
        .run_until(LIMIT, |sim| burst.iter().all(|c| sim[c.party].all_ended()))
        .unwrap();
    let mut tally = Tally::default();
    for &client in &burst {
        tally.add(lab.outcome(client, 0, "burst"));
    }
    let counters = lab.no_handshake_cut_short();
    assert_eq!(counters.errors.busy, tally.busy, "{counters}");
    tally
}

#[test]
fn a_burst_beyond_held_sessions_is_told_busy_never_refused() {
    for sessions in 2..=4 {
        let mut lab = Lab::new(Sim::new(1), sessions, Faults::NONE);
        let tally = burst(&mut lab, sessions);
        let busy = 4 * sessions as u64;
        assert_eq!(
            tally,
            Tally {
                busy,
                ..Tally::default()
            }
        );
    }
}

#[test]
fn a_burst_over_rough_links_refuses_no_client() {
    let sweep = Sweep::new(seeds(40)).knob("sessions", 2..=4);
    case_sweep!(sweep, |case: &Case| {
        let sessions = case.knob("sessions") as usize;
        let mut lab = Lab::new(case.sim(), sessions, Faults::rough());
        let tally = burst(&mut lab, sessions);
        assert_eq!(tally.refused, 0, "{tally:?}");
    });
}

// ---------------------------------------------------------------------------
// Churn with three clients per session

/// Three clients per session that connect, send one line and close, again
/// and again, for 10 s.
fn churn(lab: &mut Lab, sessions: usize) -> Tally {
    let clients: Vec<_> = (0..3 * sessions).map(|_| lab.client()).collect();
    let stop = lab.sim.now() + Duration::from_secs(10);
    lab.sim
        .run_until(LIMIT, |sim| {
            let now = sim.now();
            let mut all_ended = true;
            for client in &clients {
                let party = &mut sim[client.party];
                if !party.all_ended() {
                    all_ended = false;
                } else if now < stop {
                    let n = party.conversations().len();
                    talk(party, Script::new().send_line(format!("churn {n}")).close());
                    all_ended = false;
                }
            }
            all_ended && now >= stop
        })
        .unwrap();
    let mut tally = Tally::default();
    for &client in &clients {
        for n in 0..lab.sim[client.party].conversations().len() {
            tally.add(lab.outcome(client, n, &format!("churn {n}")));
        }
    }
    let counters = lab.no_handshake_cut_short();
    assert_eq!(
        (counters.connections, counters.errors.busy),
        (tally.served, tally.busy)
    );
    tally
}

#[test]
fn clients_outnumbering_the_sessions_three_to_one_are_served_never_refused() {
    for sessions in 2..=4 {
        let mut lab = Lab::new(Sim::new(1), sessions, Faults::NONE);
        let tally = churn(&mut lab, sessions);
        eprintln!("{sessions} sessions, clean links: {tally:?}");
        assert_eq!(tally.served, tally.total(), "{tally:?}");
    }
}

#[test]
fn churn_over_rough_links_refuses_no_client() {
    let sweep = Sweep::new(seeds(20)).knob("sessions", 2..=4);
    case_sweep!(sweep, |case: &Case| {
        let sessions = case.knob("sessions") as usize;
        let mut lab = Lab::new(case.sim(), sessions, Faults::rough());
        let tally = churn(&mut lab, sessions);
        // Sessions slowed by lost segments may keep a client waiting past
        // the admission wait: it is told busy, never refused.
        assert_eq!(tally.refused, 0, "{tally:?}");
    });
}

// ---------------------------------------------------------------------------
// Forged SYNs

/// Sends SYNs from forged on-link sources (10.0.0.128 to .254, random
/// MACs), `rate` a second from `start` until `count` are out, and never
/// answers anything: their SYN-ACKs wait on ARP forever.
struct SynFlood {
    port: Port,
    server_mac: EthernetAddress,
    rng: ChaCha8Rng,
    next: Instant,
    gap: Duration,
    left: u32,
}

impl SynFlood {
    fn start(lab: &mut Lab, at: Instant, rate: u32, count: u32) {
        let port = lab
            .sim
            .attach(PortConfig::new().latency(Duration::from_millis(1)));
        let flood = SynFlood {
            port,
            server_mac: lab.sim[lab.server].port().mac(),
            rng: ChaCha8Rng::seed_from_u64(lab.sim.seed()),
            next: at,
            gap: Duration::from_micros(1_000_000 / u64::from(rate)),
            left: count,
        };
        lab.sim.add(flood);
    }

    fn send_one(&mut self, now: Instant) {
        let source = Ipv4Address::new(10, 0, 0, self.rng.random_range(FORGED_FROM..255));
        let mut mac = [0x02, 0, 0, 0, 0, 0];
        self.rng.fill(&mut mac[1..]);
        let tcp = TcpRepr {
            src_port: self.rng.random_range(1024..=u16::MAX),
            dst_port: PORT,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(self.rng.random()),
            ack_number: None,
            window_len: 64240,
            window_scale: Some(7),
            max_seg_size: Some(1460),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: source,
            dst_addr: SERVER,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: EthernetAddress(mac),
            dst_addr: self.server_mac,
            ethertype: EthernetProtocol::Ipv4,
        };
        let len = ethernet.buffer_len() + ip.buffer_len() + tcp.buffer_len();
        let Some(token) = self.port.transmit(now) else {
            return;
        };
        token.consume(len, |buffer| {
            let mut frame = EthernetFrame::new_unchecked(buffer);
            ethernet.emit(&mut frame);
            let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
            let checksums = ChecksumCapabilities::default();
            ip.emit(&mut packet, &checksums);
            tcp.emit(
                &mut TcpPacket::new_unchecked(packet.payload_mut()),
                &IpAddress::Ipv4(source),
                &IpAddress::Ipv4(SERVER),
                &checksums,
            );
        });
    }
}

impl Party for SynFlood {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        while let Some((token, _)) = self.port.receive(now) {
            token.consume(|_| ());
        }
        while self.left > 0 && self.next <= now {
            self.send_one(now);
            self.left -= 1;
            self.next += self.gap;
        }
        (self.left > 0).then_some(self.next)
    }
}

/// `syns` silent forged SYNs at once, then one new client 200 ms later:
/// how it ended, and how long its line took from its start.
fn after_silent_syns(lab: &mut Lab, syns: u32) -> (Outcome, Duration) {
    let start = lab.sim.now();
    SynFlood::start(lab, start, 100_000, syns);
    lab.sim.run_for(Duration::from_millis(200)).unwrap();
    let client = lab.client();
    lab.talk(client, Script::new().send_line("after").close());
    lab.sim
        .run_until(LIMIT, |sim| sim[client.party].all_ended())
        .unwrap();
    let conversation = &lab.sim[client.party].conversations()[0];
    let took = conversation
        .replies()
        .first()
        .map_or(Duration::MAX, |reply| {
            reply.at - conversation.started_at().unwrap()
        });
    (lab.outcome(client, 0, "after"), took)
}

#[test]
fn a_hundred_silent_half_open_handshakes_hold_no_session_for_long() {
    for sessions in 1..=4 {
        let mut lab = Lab::new(Sim::new(1), sessions, Faults::NONE);
        let (outcome, took) = after_silent_syns(&mut lab, 100);
        let grace = ServerConfig::new(sessions, MAX_LINE)
            .listener
            .half_open_grace;
        assert_eq!(outcome, Outcome::Served);
        assert!(
            took <= grace + Duration::from_millis(50),
            "served after {took}"
        );
        let counters = lab.sim[lab.server].counters();
        assert!(counters.backlog.reclaimed >= 1, "{counters}");
    }
}

#[test]
fn silent_half_open_handshakes_over_rough_links_hold_no_session_for_long() {
    let sweep = Sweep::new(seeds(40))
        .knob("sessions", 1..=4)
        .knob("syns", 1..=100);
    case_sweep!(sweep, |case: &Case| {
        let sessions = case.knob("sessions") as usize;
        let mut lab = Lab::new(case.sim(), sessions, Faults::rough());
        let (outcome, took) = after_silent_syns(&mut lab, case.knob("syns") as u32);
        assert_ne!(outcome, Outcome::Refused);
        if outcome == Outcome::Served {
            // Inside the 10 s handshake timeout that frees a socket
            // without the listener, with room for lost segments.
            assert!(took < Duration::from_secs(5), "served after {took}");
        }
    });
}

/// A flood of 2,000 forged SYNs a second for 5 s, while one session talks
/// a line every 100 ms; meanwhile a new client every 250 ms. How each new
/// client ended and how long its line took.
fn flood(lab: &mut Lab) -> Vec<(Outcome, Duration)> {
    let talker = lab.client();
    let lines = 40;
    let mut script = Script::new();
    for n in 0..lines {
        script = script
            .send_line(format!("talk {n}"))
            .await_replies(n + 1)
            .pause(Duration::from_millis(100));
    }
    lab.talk(talker, script.close());
    let start = lab.sim.now() + Duration::from_millis(100);
    SynFlood::start(lab, start, 2_000, 10_000);
    let clients: Vec<_> = (0..16).map(|_| lab.client()).collect();
    for (n, client) in clients.iter().enumerate() {
        let at = start + Duration::from_millis(250 * (n as u64 + 1));
        let party = client.party;
        lab.sim.schedule(at, move |sim| {
            talk(&mut sim[party], Script::new().send_line("flooded").close());
        });
    }
    let mut watched = clients.clone();
    watched.push(talker);
    lab.sim
        .run_until(LIMIT, |sim| {
            sim.now() > start + Duration::from_secs(5)
                && watched.iter().all(|c| {
                    let party = &sim[c.party];
                    !party.conversations().is_empty() && party.all_ended()
                })
        })
        .unwrap();
    let talk = &lab.sim[talker.party].conversations()[0];
    assert_eq!(talk.replies().len(), lines, "the open session: {talk:?}");
    clients
        .iter()
        .map(|&client| {
            let conversation = &lab.sim[client.party].conversations()[0];
            let took = conversation
                .replies()
                .first()
                .map_or(Duration::MAX, |reply| {
                    reply.at - conversation.started_at().unwrap()
                });
            (lab.outcome(client, 0, "flooded"), took)
        })
        .collect()
}

#[test]
fn a_forged_syn_flood_leaves_room_for_clients_on_the_link() {
    for sessions in 2..=4 {
        let mut lab = Lab::new(Sim::new(1), sessions, Faults::NONE);
        let attempts = flood(&mut lab);
        let counters = lab.sim[lab.server].counters();
        let quick = attempts
            .iter()
            .filter(|&&(outcome, took)| {
                outcome == Outcome::Served && took <= Duration::from_secs(1)
            })
            .count();
        assert!(
            quick * 10 >= 9 * attempts.len(),
            "{quick} within 1 s: {attempts:?}"
        );
        assert!(
            counters.backlog.gave_way > 0,
            "the flood filled the backlog: {counters}"
        );
    }
}

#[test]
fn a_forged_syn_flood_over_rough_links_refuses_no_client() {
    let sweep = Sweep::new(seeds(12)).knob("sessions", 2..=4);
    case_sweep!(sweep, |case: &Case| {
        let mut lab = Lab::new(case.sim(), case.knob("sessions") as usize, Faults::rough());
        let attempts = flood(&mut lab);
        assert!(
            attempts.iter().all(|(o, _)| *o != Outcome::Refused),
            "{attempts:?}"
        );
    });
}

#[test]
fn the_same_seed_gives_the_same_flood() {
    let run = || {
        let mut lab = Lab::new(Sim::new(5), 2, Faults::rough());
        after_silent_syns(&mut lab, 60);
        (
            lab.sim.segment().trace_hash(),
            lab.sim[lab.server].counters(),
        )
    };
    assert_eq!(run(), run());
}
