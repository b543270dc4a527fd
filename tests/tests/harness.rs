//! Tests of the simulation harness itself, with raw smoltcp sockets on both
//! ends.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant as WallClock;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reversal_netns::namespace::skip;
use reversal_sim::{
    Clock, Direction, Faults, Host, Link, Party, PartyId, Port, PortConfig, RunError, Segment, Sim,
    Stats, Sweep, case_sweep, seed_sweep,
};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};

const SERVER_IP: IpAddress = IpAddress::v4(10, 0, 0, 1);
const ECHO_PORT: u16 = 7;

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn cidr(last_octet: u8) -> IpCidr {
    IpCidr::new(IpAddress::v4(10, 0, 0, last_octet), 24)
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A TCP echo server that owns its interface and socket set, the way an
/// application under test does: it only borrows the port's device.
struct EchoServer {
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
    listeners: Vec<SocketHandle>,
}

impl EchoServer {
    fn new(mut port: Port, now: Instant, sessions: usize) -> EchoServer {
        let mut iface = Interface::new(port.interface_config(), &mut port, now);
        iface.update_ip_addrs(|addresses| addresses.push(cidr(1)).unwrap());
        let mut sockets = SocketSet::new(Vec::new());
        let listeners = (0..sessions)
            .map(|_| {
                let mut socket = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; 16 * 1024]),
                    tcp::SocketBuffer::new(vec![0; 16 * 1024]),
                );
                socket.listen(ECHO_PORT).unwrap();
                sockets.add(socket)
            })
            .collect();
        EchoServer {
            port,
            iface,
            sockets,
            listeners,
        }
    }

    fn serve(&mut self) {
        let mut chunk = [0; 4096];
        for &handle in &self.listeners {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            // Take in only what can be sent back, so nothing is lost.
            while socket.can_recv() && socket.can_send() {
                let room = (socket.send_capacity() - socket.send_queue()).min(chunk.len());
                let len = socket.recv_slice(&mut chunk[..room]).unwrap();
                assert_eq!(socket.send_slice(&chunk[..len]).unwrap(), len);
            }
            if socket.state() == tcp::State::CloseWait && socket.recv_queue() == 0 {
                socket.close();
            }
        }
    }
}

impl Party for EchoServer {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.iface.poll(now, &mut self.port, &mut self.sockets);
        self.serve();
        self.iface.poll(now, &mut self.port, &mut self.sockets);
        self.iface.poll_at(now, &self.sockets)
    }
}

/// A TCP client on a [`Host`] that sends `data`, collects the echo, then
/// closes.
struct EchoClient {
    host: Host,
    socket: SocketHandle,
    data: Vec<u8>,
    sent: usize,
    echoed: Vec<u8>,
}

impl EchoClient {
    fn new(mut host: Host, local_port: u16, data: Vec<u8>) -> EchoClient {
        let socket = host.add_tcp_socket(32 * 1024, 32 * 1024);
        host.tcp_connect(socket, (SERVER_IP, ECHO_PORT), local_port)
            .unwrap();
        EchoClient {
            host,
            socket,
            echoed: Vec::with_capacity(data.len()),
            data,
            sent: 0,
        }
    }

    fn finished(&self) -> bool {
        self.echoed.len() == self.data.len()
    }

    fn exchange(&mut self) {
        let socket = self.host.tcp(self.socket);
        if socket.can_send() && self.sent < self.data.len() {
            self.sent += socket.send_slice(&self.data[self.sent..]).unwrap();
        }
        while socket.can_recv() {
            socket
                .recv(|data| {
                    self.echoed.extend_from_slice(data);
                    (data.len(), ())
                })
                .unwrap();
        }
        if self.echoed.len() == self.data.len() && socket.is_open() {
            socket.close();
        }
    }
}

impl Party for EchoClient {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.host.poll(now);
        self.exchange();
        self.host.poll(now)
    }
}

struct EchoRun {
    stats: Stats,
    trace_hash: u64,
    elapsed: Duration,
}

/// Echoes `len` bytes per client from `clients` hosts through one server,
/// the clients' links both ways rough, and checks every echo is exact. A
/// failure leaves a pcap in `target/sim-failures/`.
fn echo_over_rough_links(seed: u64, clients: u8, len: usize) -> EchoRun {
    let mut sim = Sim::new(seed);
    let _pcap = sim
        .segment()
        .capture_on_failure(&format!("echo-{clients}x{len}"));
    let latency = Duration::from_millis(1);
    let server_port = sim.attach(PortConfig::new().latency(latency));
    let server = EchoServer::new(server_port, sim.now(), clients.into());
    sim.add(server);
    let rough = PortConfig::new().latency(latency).faults(Faults::rough());
    let ids: Vec<PartyId<EchoClient>> = (0..clients)
        .map(|n| {
            let host = Host::new(sim.attach(rough), &[cidr(n + 2)], sim.now());
            let data = random_bytes(seed ^ (u64::from(n) << 32), len);
            sim.add(EchoClient::new(host, 40_000 + u16::from(n), data))
        })
        .collect();
    sim.run_until(Duration::from_secs(1200), |sim| {
        ids.iter().all(|&id| sim[id].finished())
    })
    .unwrap_or_else(|error| panic!("{error}; stats {:?}", sim.segment().stats()));
    for &id in &ids {
        assert!(sim[id].echoed == sim[id].data, "seed {seed}: echo differs");
    }
    EchoRun {
        stats: sim.segment().stats(),
        trace_hash: sim.segment().trace_hash(),
        elapsed: sim.now() - Instant::ZERO,
    }
}

#[test]
fn tcp_echo_of_200_kb_survives_rough_links() {
    init_log();
    seed_sweep!(4, |seed| {
        let started = WallClock::now();
        let run = echo_over_rough_links(seed, 1, 200 * 1024);
        // The faults really happened, or this test proves nothing. Only
        // drops and delays are all but certain in one run (about 30 and 60
        // are expected); duplicates and corruption (about 6 each) are absent
        // in a few seeds out of a thousand: see seed 295 below.
        let stats = run.stats;
        assert!(stats.dropped > 0 && stats.delayed > 0, "{stats:?}");
        eprintln!(
            "seed {seed}: {} virtual, {:?} real, {stats:?}",
            run.elapsed,
            started.elapsed()
        );
    });
}

/// `SIM_SEEDS=2000` used to fail `tcp_echo_of_200_kb_survives_rough_links`
/// at seed 295. The echo was exact: the sweep's own check that every kind
/// of fault happened failed, because no frame was corrupted (of about 1150
/// draws at 1 %, which happens to about one seed in 330; seed 384 likewise
/// had no duplicate). Stack and harness were right; the check was too
/// strict, and now asks only for drops and delays.
#[test]
fn seed_295_an_echo_in_which_no_frame_is_corrupted_passes() {
    init_log();
    let run = echo_over_rough_links(295, 1, 200 * 1024);
    let stats = run.stats;
    assert_eq!(
        stats.corrupted, 0,
        "seed 295 no longer avoids corruption: {stats:?}"
    );
    assert!(stats.dropped > 0 && stats.duplicated > 0 && stats.delayed > 0);
    assert_eq!(
        (stats.transmitted, run.elapsed),
        (587, Duration::from_micros(5_162_113))
    );
}

#[test]
fn tcp_echo_with_eight_clients_on_one_server() {
    init_log();
    seed_sweep!(2, |seed| {
        let run = echo_over_rough_links(seed, 8, 20 * 1024);
        assert!(
            run.stats.delivered > run.stats.transmitted,
            "ARP is flooded"
        );
    });
}

#[test]
fn same_seed_gives_the_same_trace() {
    init_log();
    let first = echo_over_rough_links(11, 2, 30 * 1024);
    let second = echo_over_rough_links(11, 2, 30 * 1024);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.stats, second.stats);
    assert_eq!(first.elapsed, second.elapsed);
}

#[test]
fn different_seeds_give_different_traces() {
    init_log();
    let first = echo_over_rough_links(11, 2, 30 * 1024);
    let second = echo_over_rough_links(12, 2, 30 * 1024);
    assert_ne!(first.trace_hash, second.trace_hash);
}

/// Sends each datagram the socket has received back to its sender,
/// reversed.
struct UdpReverser {
    host: Host,
    socket: SocketHandle,
}

impl Party for UdpReverser {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.host.poll(now);
        let socket = self.host.udp(self.socket);
        let mut datagram = [0; 1500];
        while let Ok((len, meta)) = socket.recv_slice(&mut datagram) {
            datagram[..len].reverse();
            socket.send_slice(&datagram[..len], meta).unwrap();
        }
        self.host.poll(now)
    }
}

fn udp_pair(sim: &mut Sim, client_port: PortConfig) -> (PartyId<Host>, SocketHandle) {
    let mut server = Host::new(sim.attach(PortConfig::default()), &[cidr(1)], sim.now());
    let socket = server.add_udp_socket(16, 16 * 1024);
    server.udp(socket).bind(ECHO_PORT).unwrap();
    sim.add(UdpReverser {
        host: server,
        socket,
    });
    let client = sim.add_host(client_port, &[cidr(2)]);
    let socket = sim[client].add_udp_socket(16, 16 * 1024);
    sim[client].udp(socket).bind(5000).unwrap();
    (client, socket)
}

#[test]
fn udp_datagrams_are_answered() {
    init_log();
    let mut sim = Sim::new(1);
    let (client, socket) = udp_pair(&mut sim, PortConfig::default());
    let messages = ["hello", "sim", "of a network"];
    for message in messages {
        sim[client]
            .udp(socket)
            .send_slice(message.as_bytes(), (SERVER_IP, ECHO_PORT))
            .unwrap();
    }
    let mut answers = Vec::new();
    sim.run_until(Duration::from_secs(5), |sim| {
        while let Ok((data, _)) = sim[client].udp(socket).recv() {
            answers.push(String::from_utf8(data.to_vec()).unwrap());
        }
        answers.len() == messages.len()
    })
    .unwrap();
    assert_eq!(answers, ["olleh", "mis", "krowten a fo"]);
}

#[test]
fn frame_size_limit_drops_only_big_frames() {
    init_log();
    let mut sim = Sim::new(2);
    let limited = PortConfig::new().tx_link(Link::new().faults(Faults {
        max_frame_len: Some(600),
        ..Faults::default()
    }));
    let (client, socket) = udp_pair(&mut sim, limited);
    let server = (SERVER_IP, ECHO_PORT);
    // 14 + 20 + 8 + 558 = 600 bytes: fits exactly.
    sim[client]
        .udp(socket)
        .send_slice(&[b'a'; 558], server)
        .unwrap();
    sim.run_until(Duration::from_secs(5), |sim| {
        sim[client].udp(socket).can_recv()
    })
    .unwrap();
    assert_eq!(sim[client].udp(socket).recv().unwrap().0.len(), 558);

    sim[client]
        .udp(socket)
        .send_slice(&[b'b'; 559], server)
        .unwrap();
    let result = sim.run_until(Duration::from_secs(5), |sim| {
        sim[client].udp(socket).can_recv()
    });
    assert!(
        matches!(result, Err(RunError::Stalled { seed: 2, .. })),
        "{result:?}"
    );
    assert_eq!(sim.segment().stats().oversize, 1);
}

#[test]
fn a_two_minute_tcp_timeout_passes_in_virtual_time() {
    init_log();
    let mut sim = Sim::new(3);
    sim.add(EchoServer::new(
        sim.attach(PortConfig::default()),
        sim.now(),
        1,
    ));
    let client_port = sim.attach(PortConfig::default());
    let client_port_id = client_port.id();
    let client = sim.add(Host::new(client_port, &[cidr(2)], sim.now()));
    let socket = sim[client].add_tcp_socket(1024, 1024);
    sim[client]
        .tcp_connect(socket, (SERVER_IP, ECHO_PORT), 40_000)
        .unwrap();
    sim.run_until(Duration::from_secs(5), |sim| {
        sim[client].tcp(socket).may_send()
    })
    .unwrap();

    // Cut the cable, then send: the client retransmits until it gives up.
    let dead = Faults {
        drop: 1.0,
        ..Faults::default()
    };
    sim.segment()
        .set_faults(client_port_id, Direction::Tx, dead);
    let cut_at = sim.now();
    let timeout = Duration::from_secs(120);
    sim[client].tcp(socket).set_timeout(Some(timeout));
    sim[client].tcp(socket).send_slice(b"anyone?\n").unwrap();
    let started = WallClock::now();
    sim.run_until(Duration::from_secs(600), |sim| {
        sim[client].tcp(socket).state() == tcp::State::Closed
    })
    .unwrap();
    let waited = sim.now() - cut_at;
    eprintln!("{waited} of virtual time took {:?}", started.elapsed());
    // Up to a second late: the neighbour entry expired on the dead link,
    // and smoltcp holds a socket back a second per unanswered ARP request.
    assert!(
        waited >= timeout && waited <= timeout + Duration::from_secs(1),
        "gave up after {waited}"
    );
    assert!(
        sim.segment().stats().dropped >= 5,
        "retransmissions were sent"
    );
}

#[test]
fn hosts_can_be_polled_without_a_sim() {
    init_log();
    let segment = Segment::new(4);
    let mut clock = Clock::new();
    let mut server = Host::new(
        segment.attach(PortConfig::default()),
        &[cidr(1)],
        clock.now(),
    );
    let mut client = Host::new(
        segment.attach(PortConfig::default()),
        &[cidr(2)],
        clock.now(),
    );
    let listener = server.add_tcp_socket(1024, 1024);
    server.tcp(listener).listen(ECHO_PORT).unwrap();
    let socket = client.add_tcp_socket(1024, 1024);
    client
        .tcp_connect(socket, (SERVER_IP, ECHO_PORT), 40_000)
        .unwrap();

    loop {
        let deadlines = [
            client.poll(clock.now()),
            server.poll(clock.now()),
            segment.next_delivery(),
        ];
        if server.tcp(listener).may_recv() {
            break;
        }
        let next = deadlines
            .into_iter()
            .flatten()
            .min()
            .expect("nothing scheduled");
        clock.advance_to(next);
        assert!(clock.now() < Instant::from_secs(5), "no connection");
    }
    assert_eq!(client.tcp(socket).state(), tcp::State::Established);
}

/// Runs a short UDP exchange with capture on and returns the segment.
fn captured_udp_exchange(seed: u64) -> Segment {
    let mut sim = Sim::new(seed);
    sim.segment().enable_capture();
    let (client, socket) = udp_pair(&mut sim, PortConfig::default());
    for n in 0..3u8 {
        sim[client]
            .udp(socket)
            .send_slice(&[b'0' + n; 20], (SERVER_IP, ECHO_PORT))
            .unwrap();
    }
    let mut answers = 0;
    sim.run_until(Duration::from_secs(5), |sim| {
        while sim[client].udp(socket).recv().is_ok() {
            answers += 1;
        }
        answers == 3
    })
    .unwrap();
    sim.segment().clone()
}

/// The frames `tshark` reads from `path`, one protocol stack per line, or
/// `None` when tshark is not installed (then `test` is skipped).
fn tshark_protocols(test: &str, path: &std::path::Path) -> Option<Vec<String>> {
    let output = Command::new("tshark")
        .args(["-r"])
        .arg(path)
        .args(["-T", "fields", "-e", "frame.protocols"])
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            skip(test, "tshark is not installed");
            return None;
        }
        Err(error) => panic!("cannot run tshark: {error}"),
    };
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    Some(stdout.lines().map(str::to_owned).collect())
}

fn scratch_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("reversal-sim-{}-{name}", std::process::id()))
}

#[test]
fn pcap_is_readable_by_tshark() {
    init_log();
    let segment = captured_udp_exchange(5);
    let path = scratch_file("exchange.pcap");
    segment.write_pcap(&path).unwrap();
    let frames = tshark_protocols("pcap_is_readable_by_tshark", &path);
    std::fs::remove_file(&path).unwrap();
    let Some(frames) = frames else { return };
    assert_eq!(frames.len() as u64, segment.stats().transmitted);
    assert!(
        frames.iter().any(|stack| stack == "eth:ethertype:arp"),
        "{frames:?}"
    );
    let datagrams = frames.iter().filter(|stack| stack.contains(":udp")).count();
    assert_eq!(datagrams, 6, "three requests, three answers: {frames:?}");
}

#[test]
fn a_failed_scenario_leaves_its_pcap_behind() {
    init_log();
    const NAME: &str = "harness_failed_scenario";
    let path = Segment::new(6)
        .capture_on_failure(NAME)
        .path()
        .to_path_buf();
    let _ = std::fs::remove_file(&path);
    let scenario = std::thread::spawn(|| {
        let segment = captured_udp_exchange(6);
        let _pcap = segment.capture_on_failure(NAME);
        panic!("this scenario fails on purpose");
    });
    assert!(scenario.join().is_err());
    assert!(path.is_file(), "no pcap at {}", path.display());
    let frames = tshark_protocols("a_failed_scenario_leaves_its_pcap_behind", &path);
    std::fs::remove_file(&path).unwrap();
    if let Some(frames) = frames {
        assert!(frames.iter().filter(|stack| stack.contains(":udp")).count() == 6);
    }
}

/// Run only by the two tests below, in a child process, with the seed
/// variables they choose: prints each seed and fails at
/// `SWEEP_CHILD_FAIL_AT` if that is set.
#[test]
#[ignore = "run by the SIM_SEED tests below in a child process"]
fn sweep_child() {
    let fail_at: Option<u64> = std::env::var("SWEEP_CHILD_FAIL_AT")
        .ok()
        .map(|seed| seed.parse().unwrap());
    seed_sweep!(5, |seed| {
        println!("sweep_child ran seed {seed}");
        assert_ne!(Some(seed), fail_at, "failing on purpose");
    });
}

struct ChildRun {
    succeeded: bool,
    seeds: Vec<u64>,
    stderr: String,
}

fn run_sweep_child(vars: &[(&str, &str)]) -> ChildRun {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "sweep_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("SIM_SEED")
        .env_remove("SIM_SEEDS")
        .env_remove("SWEEP_CHILD_FAIL_AT");
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    ChildRun {
        succeeded: output.status.success(),
        seeds: stdout
            .lines()
            // libtest may print its own "test sweep_child ... " first.
            .filter_map(|line| line.split_once("sweep_child ran seed "))
            .map(|(_, seed)| seed)
            .map(|seed| seed.parse().unwrap())
            .collect(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn sweep_runs_the_default_count_or_sim_seeds() {
    let default = run_sweep_child(&[]);
    assert!(default.succeeded, "{}", default.stderr);
    assert_eq!(default.seeds, [0, 1, 2, 3, 4]);
    let longer = run_sweep_child(&[("SIM_SEEDS", "8")]);
    assert_eq!(longer.seeds, (0..8).collect::<Vec<_>>());
}

#[test]
fn failing_seed_prints_a_rerun_command_that_runs_only_it() {
    let failing = run_sweep_child(&[("SWEEP_CHILD_FAIL_AT", "3")]);
    assert!(!failing.succeeded);
    assert_eq!(failing.seeds, [0, 1, 2, 3]);
    let advice = failing
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("scenario sweep_child failed with seed 3; rerun with "))
        .unwrap_or_else(|| panic!("no rerun advice in:\n{}", failing.stderr));
    assert!(
        advice.starts_with("SIM_SEED=3 cargo test")
            && advice.ends_with(" --test harness sweep_child"),
        "{advice}"
    );

    let rerun = run_sweep_child(&[("SWEEP_CHILD_FAIL_AT", "3"), ("SIM_SEED", "3")]);
    assert!(!rerun.succeeded);
    assert_eq!(rerun.seeds, [3]);
    let other_seed = run_sweep_child(&[("SWEEP_CHILD_FAIL_AT", "3"), ("SIM_SEED", "1")]);
    assert!(other_seed.succeeded, "{}", other_seed.stderr);
    assert_eq!(other_seed.seeds, [1]);
}

/// Run only by the shrinking test below, in a child process: `lines`
/// datagrams to a reverser over a client link that drops a fifth of the
/// frames each way; fails when any answer is missing, but only from three
/// lines on, so the smallest failing case has three lines and one fault.
#[test]
#[ignore = "run by the shrinking test below in a child process"]
fn shrink_child() {
    case_sweep!(Sweep::new(3).knob("lines", 1..=12), |case| {
        let mut sim = case.sim();
        let lossy = Faults {
            drop: 0.2,
            ..Faults::default()
        };
        let (client, socket) = udp_pair(&mut sim, PortConfig::new().faults(lossy));
        let lines = case.knob("lines");
        for n in 0..lines {
            sim[client]
                .udp(socket)
                .send_slice(format!("line {n}").as_bytes(), (SERVER_IP, ECHO_PORT))
                .unwrap();
        }
        sim.run_for(Duration::from_secs(5)).unwrap();
        let mut answers = 0;
        while sim[client].udp(socket).recv().is_ok() {
            answers += 1;
        }
        assert!(
            lines < 3 || answers == lines,
            "{answers} of {lines} answered"
        );
    });
}

/// Runs `shrink_child` with `vars`; returns whether it passed and its
/// standard error.
fn run_shrink_child(vars: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["shrink_child", "--exact", "--ignored", "--nocapture"])
        .env_remove("SIM_SEED")
        .env_remove("SIM_SEEDS")
        .env_remove("SIM_CASE")
        .env_remove("SIM_FAULTS");
    command.envs(vars.iter().copied());
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_failing_case_is_shrunk_to_fewer_lines_and_faults_with_a_command_that_replays_it() {
    let (passed, stderr) = run_shrink_child(&[]);
    assert!(!passed);
    let shrunk = stderr
        .lines()
        .find(|line| line.starts_with("shrunk to "))
        .unwrap_or_else(|| panic!("no shrinking in:\n{stderr}"));
    assert!(shrunk.contains("lines=3 with 1 of "), "{shrunk}");
    let command = shrunk.split_once("; rerun with ").unwrap().1;
    assert!(
        command.contains(" --test harness shrink_child"),
        "{command}"
    );
    // Replay it as printed: the environment before `cargo`.
    let env: Vec<(&str, &str)> = command
        .split(' ')
        .take_while(|word| *word != "cargo")
        .map(|word| word.split_once('=').unwrap())
        .collect();
    assert_eq!(env[1], ("SIM_CASE", "lines=3"), "{command}");
    let (passed, stderr) = run_shrink_child(&env);
    assert!(!passed, "the shrunk case fails again");
    assert!(!stderr.contains("shrunk to"), "a replay does not shrink");
    // Without its one fault, the same case passes.
    let mut faultless = env.clone();
    faultless[2] = ("SIM_FAULTS", "none");
    assert!(run_shrink_child(&faultless).0, "the fault made it fail");
}
