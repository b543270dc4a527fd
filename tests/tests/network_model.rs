//! The link model and the topology, with raw smoltcp hosts: bandwidth,
//! bounded queues, jitter, partitions, held traffic, link flaps, crashes.

use reversal_sim::{
    Bandwidth, Direction, Host, Latency, Link, PartyId, PortConfig, PortId, Queue, Report, Sim,
};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};

const PORT: u16 = 7;

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn cidr(last_octet: u8) -> IpCidr {
    IpCidr::new(IpAddress::v4(10, 0, 0, last_octet), 24)
}

fn address(last_octet: u8) -> IpAddress {
    IpAddress::v4(10, 0, 0, last_octet)
}

/// A receiver at 10.0.0.1 that listens with one socket per sender, and
/// `senders` hosts after it, each connected with a socket of its own.
struct Bulk {
    sim: Sim,
    receiver: PartyId<Host>,
    listeners: Vec<SocketHandle>,
    senders: Vec<(PartyId<Host>, SocketHandle)>,
}

impl Bulk {
    fn new(seed: u64, receiver: PortConfig, sender: PortConfig, senders: u8) -> Bulk {
        let mut sim = Sim::new(seed);
        let id = sim.add_host(receiver, &[cidr(1)]);
        let listeners = (0..senders)
            .map(|_| {
                let socket = sim[id].add_tcp_socket(64 * 1024, 1024);
                sim[id].tcp(socket).listen(PORT).unwrap();
                socket
            })
            .collect();
        let senders = (0..senders)
            .map(|n| {
                let host = sim.add_host(sender, &[cidr(n + 2)]);
                let socket = sim[host].add_tcp_socket(1024, 64 * 1024);
                sim[host]
                    .tcp_connect(socket, (address(1), PORT), 40_000)
                    .unwrap();
                (host, socket)
            })
            .collect();
        Bulk {
            sim,
            receiver: id,
            listeners,
            senders,
        }
    }

    /// Each sender sends `len` bytes; the receiver reads everything and
    /// checks it. Returns the segment's report once all arrived.
    fn transfer(&mut self, len: usize) -> Report {
        let data: Vec<u8> = (0..len).map(|n| (n % 251) as u8).collect();
        let mut sent = vec![0; self.senders.len()];
        let mut received = vec![Vec::new(); self.senders.len()];
        let Bulk {
            sim,
            receiver,
            listeners,
            senders,
        } = self;
        sim.run_until(Duration::from_secs(600), |sim| {
            for (n, &(host, socket)) in senders.iter().enumerate() {
                let socket = sim[host].tcp(socket);
                if socket.may_send() && sent[n] < len {
                    sent[n] += socket.send_slice(&data[sent[n]..]).unwrap();
                }
            }
            for &listener in listeners.iter() {
                let socket = sim[*receiver].tcp(listener);
                while socket.can_recv() {
                    let from = socket.remote_endpoint().unwrap().addr;
                    let IpAddress::Ipv4(from) = from else {
                        unreachable!()
                    };
                    let index = usize::from(from.octets()[3]) - 2;
                    socket
                        .recv(|bytes| {
                            received[index].extend_from_slice(bytes);
                            (bytes.len(), ())
                        })
                        .unwrap();
                }
            }
            received.iter().all(|bytes| bytes.len() == len)
        })
        .unwrap_or_else(|error| panic!("{error}: {:?}", sim.segment().stats()));
        assert!(received.iter().all(|bytes| *bytes == data));
        // Let the last acknowledgements cross.
        sim.run_for(Duration::from_millis(200)).unwrap();
        sim.segment().report()
    }
}

fn mbit_per_s(bits_per_second: f64) -> f64 {
    bits_per_second / 1e6
}

#[test]
fn a_bulk_transfer_runs_at_the_bottleneck_bandwidth() {
    init_log();
    let slow = PortConfig::new()
        .latency(Duration::from_millis(5))
        .bandwidth(Bandwidth::mbps(1));
    let mut bulk = Bulk::new(1, slow, PortConfig::new(), 1);
    let report = bulk.transfer(200 * 1024);
    let flow = report.flows.iter().find(|f| f.payload_bytes > 0).unwrap();
    let goodput = mbit_per_s(flow.goodput().unwrap());
    // 1460 payload bytes in a 1514-byte frame: at most 96 % of the line.
    assert!(
        (0.85..0.97).contains(&goodput),
        "{goodput} Mbit/s\n{report}"
    );
    assert_eq!(report.queue_drops(), 0, "{report}");
    assert_eq!(flow.retransmitted_segments, 0, "{report}");
    let into_receiver = report
        .links
        .iter()
        .find(|link| link.port.index() == 0 && link.direction == Direction::Rx)
        .unwrap();
    assert!(into_receiver.stats.max_backlog > 10_000, "a queue built up");
}

#[test]
fn a_small_drop_tail_queue_drops_and_tcp_recovers() {
    init_log();
    let bottleneck = PortConfig::new()
        .latency(Duration::from_millis(5))
        .bandwidth(Bandwidth::mbps(1))
        .queue(Queue::drop_tail(16 * 1024));
    let mut bulk = Bulk::new(2, bottleneck, PortConfig::new(), 1);
    let report = bulk.transfer(200 * 1024);
    assert!(report.queue_drops() > 0, "{report}");
    assert_eq!(report.stats.queue_drops, report.queue_drops());
    assert!(report.retransmitted_segments() > 0, "{report}");
}

#[test]
fn red_drops_some_frames_before_its_queue_is_full() {
    init_log();
    let with = |queue| {
        let port = PortConfig::new()
            .latency(Duration::from_millis(10))
            .bandwidth(Bandwidth::mbps(2))
            .queue(queue);
        let mut bulk = Bulk::new(3, port, PortConfig::new(), 2);
        let report = bulk.transfer(200 * 1024);
        let link = report.links[1];
        assert_eq!((link.port.index(), link.direction), (0, Direction::Rx));
        link.stats
    };
    let tail = with(Queue::drop_tail(64 * 1024));
    let red = with(Queue::red(8 * 1024, 24 * 1024, 0.1, 64 * 1024));
    assert!(red.early_drops > 0, "{red:?}");
    assert_eq!(tail.early_drops, 0, "{tail:?}");
}

#[test]
fn two_flows_share_a_bottleneck_fairly() {
    init_log();
    let bottleneck = PortConfig::new().latency(Duration::from_millis(2)).rx_link(
        Link::new()
            .latency(Latency::fixed(Duration::from_millis(2)))
            .bandwidth(Bandwidth::mbps(2))
            .queue(Queue::drop_tail(32 * 1024)),
    );
    let mut bulk = Bulk::new(4, bottleneck, PortConfig::new(), 2);
    let report = bulk.transfer(100 * 1024);
    let fairness = report.fairness().unwrap();
    // smoltcp has no congestion control unless built with it: the flows
    // share, but not evenly.
    assert!(fairness > 0.8, "{fairness}\n{report}");
    let total: f64 = report.flows.iter().filter_map(|f| f.goodput()).sum();
    assert!(mbit_per_s(total) < 2.0, "{report}");
}

/// Two hosts, a UDP socket each bound to `PORT`.
fn udp_pair(config: PortConfig) -> (Sim, [(PartyId<Host>, SocketHandle); 2]) {
    let mut sim = Sim::new(5);
    let ends = [1, 2].map(|octet| {
        let host = sim.add_host(config, &[cidr(octet)]);
        let socket = sim[host].add_udp_socket(64, 64 * 1024);
        sim[host].udp(socket).bind(PORT).unwrap();
        (host, socket)
    });
    (sim, ends)
}

/// The numbers `to` received, after `from` sent `count` datagrams, one a
/// millisecond.
fn numbered_datagrams(config: PortConfig, count: u8) -> Vec<u8> {
    let (mut sim, [(from, out), (to, into)]) = udp_pair(config);
    // Let ARP resolve first, with one datagram that is not counted.
    sim[from]
        .udp(out)
        .send_slice(&[255], (address(2), PORT))
        .unwrap();
    sim.run_until(Duration::from_secs(1), |sim| sim[to].udp(into).can_recv())
        .unwrap();
    sim[to].udp(into).recv().unwrap();
    for n in 0..count {
        sim[from]
            .udp(out)
            .send_slice(&[n], (address(2), PORT))
            .unwrap();
        sim.run_for(Duration::from_millis(1)).unwrap();
    }
    sim.run_for(Duration::from_secs(1)).unwrap();
    let mut received = Vec::new();
    while let Ok((data, _)) = sim[to].udp(into).recv() {
        received.push(data[0]);
    }
    received
}

#[test]
fn jitter_delays_frames_but_keeps_their_order_unless_asked() {
    init_log();
    let jitter = Latency::normal(Duration::from_millis(20), Duration::from_millis(10));
    let link = Link::new().latency(jitter);
    let ordered = numbered_datagrams(PortConfig::new().tx_link(link), 60);
    assert_eq!(ordered, (0..60).collect::<Vec<_>>());
    let shuffled = numbered_datagrams(PortConfig::new().tx_link(link.reorder(true)), 60);
    assert_eq!(shuffled.len(), 60);
    assert!(
        shuffled.windows(2).any(|pair| pair[0] > pair[1]),
        "{shuffled:?}"
    );
}

/// Sends one datagram each way; returns which arrived (a to b, b to a).
fn ping_both_ways(sim: &mut Sim, ends: [(PartyId<Host>, SocketHandle); 2]) -> (bool, bool) {
    let [(a, a_socket), (b, b_socket)] = ends;
    sim[a]
        .udp(a_socket)
        .send_slice(b"to b", (address(2), PORT))
        .unwrap();
    sim[b]
        .udp(b_socket)
        .send_slice(b"to a", (address(1), PORT))
        .unwrap();
    sim.run_for(Duration::from_secs(2)).unwrap();
    let arrived = |sim: &mut Sim, (host, socket): (PartyId<Host>, SocketHandle)| {
        let mut any = false;
        while sim[host].udp(socket).recv().is_ok() {
            any = true;
        }
        any
    };
    (arrived(sim, ends[1]), arrived(sim, ends[0]))
}

fn port_of(sim: &Sim, host: PartyId<Host>) -> PortId {
    sim[host].port().id()
}

#[test]
fn partitions_cut_both_ways_or_one_way_until_healed() {
    init_log();
    let (mut sim, ends) = udp_pair(PortConfig::new());
    let [a, b] = ends.map(|(host, _)| port_of(&sim, host));
    assert_eq!(ping_both_ways(&mut sim, ends), (true, true));

    sim.segment().partition(&[a], &[b]);
    assert_eq!(ping_both_ways(&mut sim, ends), (false, false));
    assert!(sim.segment().stats().partitioned >= 2);

    sim.segment().heal();
    sim.segment().partition_one_way(&[a], &[b]);
    assert_eq!(ping_both_ways(&mut sim, ends), (false, true));

    sim.segment().heal();
    assert_eq!(ping_both_ways(&mut sim, ends), (true, true));
}

#[test]
fn held_traffic_waits_at_the_switch_and_arrives_on_release() {
    init_log();
    let (mut sim, ends) = udp_pair(PortConfig::new());
    let [a, b] = ends.map(|(host, _)| port_of(&sim, host));
    assert_eq!(ping_both_ways(&mut sim, ends), (true, true));
    sim.segment().hold(&[a], &[b]);
    assert_eq!(ping_both_ways(&mut sim, ends), (false, false));
    assert_eq!(sim.segment().held(), 2);
    sim.segment().release();
    sim.run_for(Duration::from_millis(1)).unwrap();
    let [(a_host, a_socket), (b_host, b_socket)] = ends;
    assert_eq!(sim[b_host].udp(b_socket).recv().unwrap().0, b"to b");
    assert_eq!(sim[a_host].udp(a_socket).recv().unwrap().0, b"to a");
    assert_eq!(sim.segment().stats().held, 2);
}

#[test]
fn a_tcp_transfer_survives_a_link_that_flaps_on_a_schedule() {
    init_log();
    let mut bulk = Bulk::new(6, PortConfig::new(), PortConfig::new(), 1);
    let sender = port_of(&bulk.sim, bulk.senders[0].0);
    for second in [1, 4, 7] {
        let down = Instant::from_millis(second * 1000 + 100);
        bulk.sim
            .schedule(down, move |sim| sim.segment().link_down(sender));
        bulk.sim
            .schedule(down + Duration::from_secs(2), move |sim| {
                sim.segment().link_up(sender)
            });
    }
    // 1 Mbit/s makes the transfer last across the flaps.
    bulk.sim.segment().set_link(
        sender,
        Direction::Tx,
        Link::new().bandwidth(Bandwidth::mbps(1)),
    );
    let report = bulk.transfer(1024 * 1024);
    assert!(report.stats.link_down > 0, "{report}");
    assert!(bulk.sim.now() > Instant::from_secs(9), "{}", bulk.sim.now());
}

/// A host with one listening TCP socket at 10.0.0.1.
fn listening_host(sim: &Sim, port: reversal_sim::Port) -> (Host, SocketHandle) {
    let mut host = Host::new(port, &[cidr(1)], sim.now());
    let socket = host.add_tcp_socket(4096, 4096);
    host.tcp(socket).listen(PORT).unwrap();
    (host, socket)
}

#[test]
fn a_peer_of_a_crashed_host_is_reset_after_the_reboot_and_connects_again() {
    init_log();
    let mut sim = Sim::new(7);
    let server_port = sim.attach(PortConfig::new().latency(Duration::from_millis(1)));
    let server_port_id = server_port.id();
    let (host, listener) = listening_host(&sim, server_port);
    let server = sim.add(host);
    let client = sim.add_host(
        PortConfig::new().latency(Duration::from_millis(1)),
        &[cidr(2)],
    );
    let first = sim[client].add_tcp_socket(4096, 4096);
    sim[client]
        .tcp_connect(first, (address(1), PORT), 40_000)
        .unwrap();
    sim.run_until(Duration::from_secs(5), |sim| {
        sim[server].tcp(listener).state() == tcp::State::Established
    })
    .unwrap();

    sim.crash(server);
    sim.run_for(Duration::from_secs(3)).unwrap();
    let (rebooted, listener) = listening_host(&sim, sim.segment().reattach(server_port_id, None));
    sim.restart(server, rebooted);
    // The client still thinks it is connected; its next bytes get a reset.
    sim[client].tcp(first).send_slice(b"still there?").unwrap();
    sim.run_until(Duration::from_secs(30), |sim| {
        sim[client].tcp(first).state() == tcp::State::Closed
    })
    .unwrap();

    let second = sim[client].add_tcp_socket(4096, 4096);
    sim[client]
        .tcp_connect(second, (address(1), PORT), 40_001)
        .unwrap();
    sim.run_until(Duration::from_secs(5), |sim| {
        sim[client].tcp(second).may_send() && sim[server].tcp(listener).may_recv()
    })
    .unwrap();
}

#[test]
fn a_host_that_reboots_with_a_new_mac_is_reached_once_the_neighbour_cache_expires() {
    init_log();
    let (mut sim, ends) = udp_pair(PortConfig::new());
    assert_eq!(ping_both_ways(&mut sim, ends), (true, true));
    let [(a, a_socket), (b, _)] = ends;
    let b_port = port_of(&sim, b);
    sim.crash(b);
    let new_mac = smoltcp::wire::EthernetAddress([0x02, 0, 0, 0, 0, 0x99]);
    let mut rebooted = Host::new(
        sim.segment().reattach(b_port, Some(new_mac)),
        &[cidr(2)],
        sim.now(),
    );
    let b_socket = rebooted.add_udp_socket(64, 64 * 1024);
    rebooted.udp(b_socket).bind(PORT).unwrap();
    sim.restart(b, rebooted);

    // `a` still sends to the old MAC, which the new interface ignores.
    let ends = [(a, a_socket), (b, b_socket)];
    assert!(!ping_both_ways(&mut sim, ends).0);
    // smoltcp forgets a neighbour after a minute.
    sim.run_for(Duration::from_secs(60)).unwrap();
    assert!(ping_both_ways(&mut sim, ends).0);
}
