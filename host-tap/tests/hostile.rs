//! Hostile traffic through a real TAP: malformed frames of every kind and
//! floods from spoofed on-link sources (SYN floods among them, which the
//! listen backlog outlasts), built with scapy
//! (`hostile_traffic.py`), against the built `host-tap`. After every batch
//! the server must still run, a real client (the kernel's TCP and UDP) must
//! get exactly the SPEC's replies, and its resident memory must stay flat.
//!
//! Each test re-runs itself in a fresh network namespace (`reversal_netns`); the
//! frames go onto that namespace's TAP only, every spoofed address is in its
//! subnet, and every batch is a fixed number of frames. Memory is reserved
//! at start-up but its pages become resident as sockets are first used, so
//! every test sends its batches twice and asks for no growth in the second
//! round. The figures (frames, seconds, VmRSS) are printed for the README's
//! "What it withstands".
//!
//! Run with: `cargo test -p host-tap --release --test hostile -- --nocapture`;
//! `HOST_TAP_E2E_ARGS="--offload off"` adds arguments to host-tap's, as for
//! the e2e tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reversal_netns::namespace::{in_own_namespace, skip};
use reversal_netns::process::Killed;
use reversal_netns::tap::{ip, run_ip};

mod support;
use support::{HostTap, logged_count};

const TRAFFIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile_traffic.py");
/// Debian's Python, which has python3-scapy (a `python3` earlier on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

const SERVER_IP: &str = "192.168.69.1";
const SERVER_MAC: &str = "02:00:00:00:00:01";
const PORT: u16 = 8888;
/// `FRAGMENTED_PORT` of hostile_traffic.py.
const FRAGMENTED_PORT: u16 = 40001;
const IO_LIMIT: Duration = Duration::from_secs(5);
/// Resident memory the second round of a test may add (allocator noise).
const RSS_SLACK_KB: u64 = 256;

/// A real client's lines, with graphemes, CR LF and an error, and their replies.
const LINES: &str = "hello 각👍🏽\r\nab\u{301}c\n";
const REPLIES: &str = "👍🏽각 olleh\r\ncb\u{301}a\n";

// ---------------------------------------------------------------------------
// The namespace, the server and the traffic

/// Runs `body` in a namespace of its own with a TAP (192.168.69.100/24 and
/// fdaa::100/64 on the kernel's side) and host-tap serving both families;
/// skips when scapy is missing.
fn hostile(test: &str, body: impl FnOnce(&mut Lab)) {
    hostile_with(test, &[], body);
}

/// As [`hostile`], with host-tap given `args` besides its addresses.
fn hostile_with(test: &str, args: &[&str], body: impl FnOnce(&mut Lab)) {
    in_own_namespace(test, &["kill"], || {
        if let Some(reason) = why_no_scapy() {
            skip(test, &reason);
            return;
        }
        ip("tuntap add name tap0 mode tap");
        ip("addr add 192.168.69.100/24 dev tap0");
        ip("addr add fdaa::100/64 dev tap0 nodad");
        ip("link set dev tap0 up");
        let mut lab = Lab::start(args);
        body(&mut lab);
        if lab.server.is_some() {
            lab.assert_alive();
        }
    });
}

fn why_no_scapy() -> Option<String> {
    let probe = Command::new(PYTHON)
        .args(["-c", "import scapy.all"])
        .output();
    match probe {
        Ok(output) if output.status.success() => None,
        _ => Some(format!(
            "{PYTHON} cannot import scapy (apt-get install python3-scapy)"
        )),
    }
}

/// host-tap on the TAP and a scapy process that sends batches on request.
struct Lab {
    /// None once the test stopped it on purpose ([`Lab::stop`]).
    server: Option<HostTap>,
    _traffic: Killed,
    to_traffic: ChildStdin,
    from_traffic: BufReader<ChildStdout>,
}

impl Lab {
    fn start(args: &[&str]) -> Lab {
        let addresses = ["--address", "192.168.69.1/24", "--address", "fdaa::1/64"];
        let args: Vec<&str> = addresses.iter().chain(args).copied().collect();
        let server = HostTap::start(&args);
        // From ip(8): /sys shows the namespace it was mounted in, not ours.
        let link = run_ip("-o link show dev tap0");
        let link = String::from_utf8_lossy(&link.stdout);
        let kernel_mac = link
            .split_whitespace()
            .skip_while(|&word| word != "link/ether")
            .nth(1)
            .expect("tap0's MAC");
        let mut traffic = Killed(
            Command::new(PYTHON)
                .args([TRAFFIC, "tap0", SERVER_MAC, kernel_mac, "1"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start hostile_traffic.py"),
        );
        let to_traffic = traffic.0.stdin.take().unwrap();
        let mut from_traffic = BufReader::new(traffic.0.stdout.take().unwrap());
        let mut ready = String::new();
        from_traffic.read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "hostile_traffic.py did not start");
        Lab {
            server: Some(server),
            _traffic: traffic,
            to_traffic,
            from_traffic,
        }
    }

    /// Sends one batch; returns the frames sent and how long sending took.
    fn send(&mut self, batch: &str) -> (u64, f64) {
        self.begin(batch);
        self.end(batch)
    }

    /// Starts sending a batch, and returns while it is on its way.
    fn begin(&mut self, batch: &str) {
        writeln!(self.to_traffic, "{batch}").unwrap();
    }

    /// Waits until the batch begun last is sent; returns the frames sent
    /// and how long sending took.
    fn end(&mut self, batch: &str) -> (u64, f64) {
        let mut line = String::new();
        self.from_traffic.read_line(&mut line).unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.get(..2), Some(&["sent", batch][..]), "{line:?}");
        (fields[2].parse().unwrap(), fields[3].parse().unwrap())
    }

    fn server(&mut self) -> &mut HostTap {
        self.server.as_mut().expect("host-tap was stopped")
    }

    fn rss_kb(&mut self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.server().pid()))
            .expect("host-tap is running");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Frames the kernel handed to host-tap over tap0, and frames it dropped
    /// because host-tap's queue was full (/proc/net/dev: TX of tap0).
    fn tap_delivered_and_dropped() -> (u64, u64) {
        let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
        let line = dev
            .lines()
            .find_map(|line| line.trim_start().strip_prefix("tap0:"))
            .expect("tap0 in /proc/net/dev");
        let fields: Vec<u64> = line
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        // receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop ...
        (fields[9], fields[11])
    }

    /// Stops the server with SIGTERM; returns its log, with the counters
    /// it prints at exit.
    fn stop(&mut self) -> String {
        let server = self.server.take().expect("host-tap was stopped");
        server.stop().1
    }

    fn assert_alive(&mut self) {
        let server = self.server();
        let exited = server.exited();
        assert!(
            exited.is_none(),
            "host-tap exited ({exited:?}):\n{}",
            server.log()
        );
    }

    /// Sends each batch twice; after every one checks that the server runs
    /// and that `checks` pass, and that the second round grew no memory.
    /// Prints one line of figures per batch.
    fn rounds(&mut self, batches: &[&str], checks: impl Fn(&mut Lab)) {
        let start_rss = self.rss_kb();
        let mut round_end_rss = Vec::new();
        for round in 1..=2 {
            for &batch in batches {
                let before = self.rss_kb();
                let (delivered, dropped) = Self::tap_delivered_and_dropped();
                let started = Instant::now();
                let (frames, sending) = self.send(batch);
                self.assert_alive();
                checks(self);
                let after = self.rss_kb();
                let (delivered_now, dropped_now) = Self::tap_delivered_and_dropped();
                // Each batch must reach host-tap, not the kernel's drop counter.
                assert!(
                    (delivered_now - delivered) * 10 >= frames * 9,
                    "{batch}: only {} of {frames} frames reached host-tap",
                    delivered_now - delivered
                );
                println!(
                    "figures: round {round} {batch}: {frames} frames sent in {sending:.2} s \
                     ({} frames to host-tap in all, {} dropped by the kernel's queue), \
                     checked after {:.1} s; VmRSS {before} -> {after} kB",
                    delivered_now - delivered,
                    dropped_now - dropped,
                    started.elapsed().as_secs_f64()
                );
            }
            round_end_rss.push(self.rss_kb());
        }
        println!(
            "figures: VmRSS at start {start_rss} kB, after round 1 {} kB, after round 2 {} kB",
            round_end_rss[0], round_end_rss[1]
        );
        assert!(
            round_end_rss[1] <= round_end_rss[0] + RSS_SLACK_KB,
            "resident memory grew in the second round: {round_end_rss:?} kB"
        );
    }
}

// ---------------------------------------------------------------------------
// A real client

fn server_address() -> SocketAddr {
    SocketAddr::new(SERVER_IP.parse().unwrap(), PORT)
}

/// A kernel TCP client: its lines come back exactly, then the server's FIN.
fn tcp_replies_are_exact() {
    let mut stream = TcpStream::connect_timeout(&server_address(), IO_LIMIT).expect("connect");
    tcp_exchange(&mut stream);
}

fn tcp_exchange(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
    stream.write_all(LINES.as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut replies = Vec::new();
    stream.read_to_end(&mut replies).expect("replies, then FIN");
    assert_eq!(String::from_utf8_lossy(&replies), REPLIES);
}

/// A kernel UDP client: each datagram's reply is exact (three tries, as a
/// client on a lossy network would).
fn udp_replies_are_exact() {
    let socket = UdpSocket::bind("192.168.69.100:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    for (datagram, reply) in [
        ("udp 각👍🏽\r\n", "👍🏽각 pdu\r\n"),
        ("\u{1f1f0}\u{1f1f7}x\n", "x\u{1f1f0}\u{1f1f7}\n"),
    ] {
        let mut buffer = [0u8; 256];
        let answer = (0..3).find_map(|_| {
            socket
                .send_to(datagram.as_bytes(), server_address())
                .unwrap();
            socket.recv(&mut buffer).ok()
        });
        let n = answer.unwrap_or_else(|| panic!("no UDP reply to {datagram:?} in 3 tries"));
        assert_eq!(String::from_utf8_lossy(&buffer[..n]), reply);
    }
}

fn tcp_and_udp_are_exact(_: &mut Lab) {
    tcp_replies_are_exact();
    udp_replies_are_exact();
}

/// How long fragments that never complete may hold host-tap's reassembly
/// buffers (its `REASSEMBLY_TIMEOUT`, 2 s), plus margin.
const REASSEMBLY_RECOVERY: Duration = Duration::from_secs(5);

/// A kernel UDP client's datagram of 3,000 bytes, sent in IPv4 fragments, is
/// reassembled and answered (with `ERR too-long`: host-tap runs with lines
/// up to 1,024 bytes), once fragments that never completed have timed out.
fn a_fragmented_datagram_is_answered(_: &mut Lab) {
    let socket = UdpSocket::bind("192.168.69.100:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let datagram = [b'x'; 3000];
    let sent = Instant::now();
    let mut buffer = [0u8; 256];
    let n = loop {
        socket.send_to(&datagram, server_address()).unwrap();
        if let Ok(n) = socket.recv(&mut buffer) {
            break n;
        }
        assert!(
            sent.elapsed() < REASSEMBLY_RECOVERY,
            "no reply to a fragmented datagram in {REASSEMBLY_RECOVERY:?}"
        );
    };
    println!(
        "figures: a fragmented datagram answered {:.1} s after the batch",
        sent.elapsed().as_secs_f64()
    );
    assert_eq!(
        String::from_utf8_lossy(&buffer[..n]),
        "ERR too-long line longer than 1024 bytes\n"
    );
}

// ---------------------------------------------------------------------------
// The batches

#[test]
fn malformed_headers_leave_replies_exact_and_memory_flat() {
    hostile(
        "malformed_headers_leave_replies_exact_and_memory_flat",
        |lab| {
            lab.rounds(
                &[
                    "bad-checksums",
                    "truncated",
                    "lying-headers",
                    "options-garbage",
                ],
                tcp_and_udp_are_exact,
            );
        },
    );
}

/// With checksum offload smoltcp checks no TCP checksum; the segments the
/// kernel did not make or check (these come from a packet socket) are
/// checked by host-tap's device instead. UDP checksums smoltcp checks
/// itself, offload or not.
#[test]
fn bad_tcp_checksums_are_dropped_by_host_tap_and_bad_udp_ones_by_smoltcp() {
    hostile(
        "bad_tcp_checksums_are_dropped_by_host_tap_and_bad_udp_ones_by_smoltcp",
        |lab| {
            let (frames, _) = lab.send("bad-checksums");
            tcp_and_udp_are_exact(lab);
            let log = lab.stop();
            let dropped = logged_count(&log, "bad checksums dropped ");
            println!("figures: {dropped} of {frames} frames dropped for their TCP checksum");
            if log.contains("offloads: none") {
                // smoltcp checked them all (HOST_TAP_E2E_ARGS="--offload off").
                assert_eq!(dropped, 0, "{log}");
            } else {
                // The batch spoils one checksum per frame, of the IPv4
                // header, ICMP, TCP or UDP alike: about a fifth are TCP's.
                assert!(
                    dropped * 10 >= frames && dropped * 10 <= frames * 3,
                    "{dropped} of {frames} frames dropped for a bad TCP checksum:\n{log}"
                );
            }
            // Not one of the batch's datagrams was served: only the checks'
            // two (and their retries, at most three each).
            let served = logged_count(&log, "udp datagrams ");
            assert!(served <= 6, "{served} datagrams served:\n{log}");
        },
    );
}

/// A datagram's UDP checksum covers all its fragments, so only smoltcp can
/// check it, after reassembly: a fragmented datagram with one flipped byte
/// is not answered, the same datagram intact is.
#[test]
fn a_fragmented_datagram_is_checked_whole_after_reassembly() {
    hostile(
        "a_fragmented_datagram_is_checked_whole_after_reassembly",
        |lab| {
            let socket = UdpSocket::bind(("192.168.69.100", FRAGMENTED_PORT)).unwrap();
            socket.set_read_timeout(Some(IO_LIMIT)).unwrap();
            let mut reply = [0u8; 4096];
            lab.send("corrupt-fragmented-datagram");
            let corrupt_reply = socket.recv(&mut reply);
            assert!(
                corrupt_reply.is_err(),
                "a reply to a corrupt datagram: {corrupt_reply:?}"
            );
            lab.send("fragmented-datagram");
            let n = socket
                .recv(&mut reply)
                .expect("a reply to the intact datagram");
            assert_eq!(
                String::from_utf8_lossy(&reply[..n]),
                "ERR too-long line longer than 1024 bytes\n"
            );
            let log = lab.stop();
            assert!(log.contains("udp datagrams 1 dropped 0"), "{log}");
        },
    );
}

#[test]
fn fragments_extension_chains_and_random_bytes_leave_replies_exact_and_memory_flat() {
    hostile(
        "fragments_extension_chains_and_random_bytes_leave_replies_exact_and_memory_flat",
        |lab| {
            lab.rounds(
                &["fragments", "ipv6-extension-chains", "random-bytes"],
                |lab| {
                    tcp_and_udp_are_exact(lab);
                    a_fragmented_datagram_is_answered(lab);
                },
            );
        },
    );
}

#[test]
fn arp_and_icmp_floods_leave_replies_exact_and_memory_flat() {
    hostile(
        "arp_and_icmp_floods_leave_replies_exact_and_memory_flat",
        |lab| lab.rounds(&["arp-flood", "icmp-flood"], tcp_and_udp_are_exact),
    );
}

/// A real client's first attempt: it must get in (the listen backlog keeps
/// its SYN while forged half-open handshakes hold the sockets, and they
/// give way to it); returns how long connecting and the exchange took.
fn first_attempt_gets_in() -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&server_address(), IO_LIMIT)
        .unwrap_or_else(|e| panic!("refused after {:?}: {e}", started.elapsed()));
    tcp_exchange(&mut stream);
    started.elapsed()
}

#[test]
fn syn_flood_from_spoofed_on_link_sources_keeps_no_client_out() {
    hostile(
        "syn_flood_from_spoofed_on_link_sources_keeps_no_client_out",
        |lab| {
            lab.rounds(&["syn-flood"], |_| {
                let took = first_attempt_gets_in();
                println!(
                    "figures: a real client got in and was answered {:.2} s after the SYN flood",
                    took.as_secs_f64()
                );
                udp_replies_are_exact();
            });
        },
    );
}

/// As in issue 12's table: 8 sessions, so that 24 silent SYNs hold every
/// socket (8 sessions and 4 busy ones) in a half-open handshake.
const EIGHT_SESSIONS: &[&str] = &["--sessions", "8"];

#[test]
fn silent_half_open_handshakes_keep_no_client_out() {
    let test = "silent_half_open_handshakes_keep_no_client_out";
    hostile_with(test, EIGHT_SESSIONS, |lab| {
        lab.rounds(&["silent-syns"], |_| {
            let took = first_attempt_gets_in();
            println!(
                "figures: a real client got in and was answered {:.2} s after 24 silent SYNs",
                took.as_secs_f64()
            );
        });
    });
}

#[test]
fn a_twenty_second_syn_flood_lets_every_new_client_in() {
    const CLIENTS: u32 = 18;
    let test = "a_twenty_second_syn_flood_lets_every_new_client_in";
    hostile_with(test, EIGHT_SESSIONS, |lab| {
        let rss_before = lab.rss_kb();
        lab.begin("long-syn-flood");
        // One new client a second while the flood lasts (20 s).
        let mut took = Vec::new();
        for _ in 0..CLIENTS {
            let started = Instant::now();
            took.push(first_attempt_gets_in());
            thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
        }
        let (frames, seconds) = lab.end("long-syn-flood");
        lab.assert_alive();
        took.sort();
        let within_a_second = took
            .iter()
            .filter(|t| **t <= Duration::from_secs(1))
            .count();
        println!(
            "figures: {frames} SYNs in {seconds:.1} s; {CLIENTS} of {CLIENTS} new clients got in \
             ({within_a_second} within 1 s; median {:.3} s, slowest {:.3} s); VmRSS {rss_before} -> {} kB",
            took[took.len() / 2].as_secs_f64(),
            took[took.len() - 1].as_secs_f64(),
            lab.rss_kb()
        );
        tcp_and_udp_are_exact(lab);
    });
}

#[test]
fn udp_flood_from_spoofed_on_link_sources_leaves_tcp_exact_and_memory_flat() {
    hostile(
        "udp_flood_from_spoofed_on_link_sources_leaves_tcp_exact_and_memory_flat",
        |lab| lab.rounds(&["udp-flood"], |_| tcp_replies_are_exact()),
    );
}

#[test]
fn udp_flood_from_spoofed_on_link_sources_leaves_udp_exact() {
    hostile(
        "udp_flood_from_spoofed_on_link_sources_leaves_udp_exact",
        |lab| {
            lab.send("udp-flood");
            let sent = Instant::now();
            udp_replies_are_exact();
            println!(
                "figures: a real UDP client answered {:.1} ms after the flood",
                sent.elapsed().as_secs_f64() * 1000.0
            );
        },
    );
}

#[test]
fn one_datagram_from_an_unowned_on_link_address_leaves_udp_serving() {
    hostile(
        "one_datagram_from_an_unowned_on_link_address_leaves_udp_serving",
        |lab| {
            lab.send("one-unowned-datagram");
            let sent = Instant::now();
            udp_replies_are_exact();
            println!(
                "figures: a real UDP client answered {:.1} ms after the unowned datagram",
                sent.elapsed().as_secs_f64() * 1000.0
            );
            tcp_replies_are_exact();
        },
    );
}
