//! End to end: the built `host-tap` and `reverse-client` binaries, real
//! clients (`nc`, a Python seed-style client, `std::net`) and the kernel's
//! TCP/IP stack on the other side of a real TAP.
//!
//! Every test re-runs itself in a fresh network and mount namespace
//! (`unshare --net --mount`), makes its own TAP there (so names never clash
//! between tests running in parallel), and never touches the host's network.
//! Without root, `/dev/net/tun`, `unshare` or a tool a test needs, the test
//! prints `skipped: ...` and passes, unless `REQUIRE_TAP=1`, where it fails.
//! Every wait is bounded and every child process is killed when its handle
//! drops.
//!
//! Run with: `cargo test -p host-tap --release --test e2e -- --nocapture`.
//! `HOST_TAP_E2E_ARGS="--offload off"` adds arguments to every `host-tap`
//! the tests start: the whole suite without offloads (the tests of the
//! offloads themselves excepted). The tests below the "Offloads" heading
//! run both ways anyway.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use reversal_core::session::DEFAULT_IDLE_FLUSH;
use reversal_netns::namespace::{NOBODY, in_own_namespace};
use reversal_netns::process::{COMMAND_LIMIT, run};
use reversal_netns::tap::{interface_exists, ip, run_ip};

mod support;
use support::{HOST_TAP, HostTap, logged_count};

const REVERSE_CLIENT: &str = env!("CARGO_BIN_EXE_reverse-client");
const SEED_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed_client.py");

/// The server's address (host-tap's default) and the kernel's side of the TAP.
const SERVER_IP: &str = "192.168.69.1";
const HOST_CIDR: &str = "192.168.69.100/24";
const PORT: u16 = 8888;

/// Read and write timeout of the test's own sockets.
const IO_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Namespaces and processes

/// Runs `body` for `test` in a namespace of its own (see `reversal_netns`); `tools`
/// are the programs it needs besides `kill`, which every test here may use.
fn e2e(test: &str, tools: &[&str], body: impl FnOnce()) {
    let tools: Vec<&str> = ["kill"].iter().chain(tools).copied().collect();
    in_own_namespace(test, &tools, body);
}

/// Adds the TAP `tap0`, up, with `host_cidrs` on the kernel's side.
fn add_tap(host_cidrs: &[&str]) {
    ip("tuntap add name tap0 mode tap");
    for cidr in host_cidrs {
        let nodad = if cidr.contains(':') { " nodad" } else { "" };
        ip(&format!("addr add {cidr} dev tap0{nodad}"));
    }
    ip("link set dev tap0 up");
}

/// Runs `host-tap args` expecting it to fail at once.
fn host_tap_failure(args: &[&str]) -> (Option<i32>, String) {
    let output = run(Command::new(HOST_TAP).args(args), b"", COMMAND_LIMIT);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------
// Clients

fn server_address() -> SocketAddr {
    SocketAddr::new(SERVER_IP.parse().unwrap(), PORT)
}

/// A std::net (kernel) TCP connection to the server, with bounded I/O.
fn connect() -> TcpStream {
    let stream = TcpStream::connect_timeout(&server_address(), IO_LIMIT).expect("connect");
    stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
    stream.set_write_timeout(Some(IO_LIMIT)).unwrap();
    stream
}

/// Sends `input`, half-closes, and returns everything until the server closes.
fn exchange(input: &[u8]) -> Vec<u8> {
    let mut stream = connect();
    stream.write_all(input).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    read_all(&mut stream)
}

fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    stream
        .read_to_end(&mut received)
        .unwrap_or_else(|e| panic!("read until the server closes: {e}; got {received:?}"));
    received
}

/// Reads one reply line, LF included.
fn read_line(stream: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        match stream.read(&mut byte) {
            Ok(0) => panic!("server closed after {line:?}"),
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!("read a reply: {e}; got {line:?}"),
        }
    }
    line
}

/// `nc -N` (netcat-openbsd: half-close at the end of input) to the server.
fn netcat(extra: &[&str], host: &str, input: &[u8]) -> Vec<u8> {
    let output = run(
        Command::new("nc")
            .arg("-N")
            .args(extra)
            .args([host, &PORT.to_string()]),
        input,
        COMMAND_LIMIT,
    );
    assert!(output.status.success(), "nc failed: {output:?}");
    output.stdout
}

fn reverse_client(args: &[&str], input: &[u8]) -> Output {
    run(
        Command::new(REVERSE_CLIENT).args(args),
        input,
        COMMAND_LIMIT,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Frames of the capture at `path` that match the display `filter`.
fn captured(path: &Path, filter: &str) -> usize {
    let output = run(
        Command::new("tshark").arg("-r").arg(path).args([
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ]),
        b"",
        COMMAND_LIMIT,
    );
    assert!(output.status.success(), "tshark failed: {output:?}");
    text(&output.stdout).lines().count()
}

/// A capture file of this test process's own.
fn capture_path(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("host-tap-{test}-{}.pcap", std::process::id()))
}

/// Sends `datagram` from `socket` to `server` up to `tries` times, a second
/// apart, and returns the first reply.
fn udp_reply(
    socket: &UdpSocket,
    server: SocketAddr,
    datagram: &[u8],
    tries: u32,
) -> Option<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buffer = vec![0; 65_536];
    (0..tries).find_map(|_| {
        socket.send_to(datagram, server).unwrap();
        let n = socket.recv(&mut buffer).ok()?;
        Some(buffer[..n].to_vec())
    })
}

/// `len` bytes of letters, then LF.
fn long_datagram(len: usize) -> Vec<u8> {
    let letters = b"abcdefghijklmnopqrstuvwxyz".iter().cycle().take(len - 1);
    letters.copied().chain([b'\n']).collect()
}

/// `datagram`'s reply: its body reversed, its LF kept.
fn reversed_datagram(datagram: &[u8]) -> Vec<u8> {
    let (body, lf) = datagram.split_at(datagram.len() - 1);
    body.iter().rev().chain(lf).copied().collect()
}

// ---------------------------------------------------------------------------
// The service through real clients

#[test]
fn nc_gets_every_line_reversed_and_sessions_are_logged() {
    e2e(
        "nc_gets_every_line_reversed_and_sessions_are_logged",
        &["nc"],
        || {
            add_tap(&[HOST_CIDR]);
            let server = HostTap::start(&[]);
            assert_eq!(
                text(&netcat(&[], SERVER_IP, b"hello\nworld\n")),
                "olleh\ndlrow\n"
            );
            let (status, log) = server.stop();
            assert!(status.success(), "{log}");
            assert!(log.contains("open from 192.168.69.100:"), "{log}");
            assert!(log.contains("(end of input)"), "{log}");
            assert!(log.contains("2 lines"), "{log}");
        },
    );
}

#[test]
fn crlf_terminators_are_kept_line_by_line() {
    e2e("crlf_terminators_are_kept_line_by_line", &[], || {
        add_tap(&[HOST_CIDR]);
        let _server = HostTap::start(&[]);
        assert_eq!(
            text(&exchange(b"abc\r\nxyz\n\r\nq\r\n")),
            "cba\r\nzyx\n\r\nq\r\n"
        );
    });
}

#[test]
fn graphemes_stay_whole() {
    e2e("graphemes_stay_whole", &["nc"], || {
        add_tap(&[HOST_CIDR]);
        let _server = HostTap::start(&[]);
        let reply = netcat(&[], SERVER_IP, "e\u{301}x 👍🏽 🇰🇷 각\n".as_bytes());
        assert_eq!(text(&reply), "각 🇰🇷 👍🏽 xe\u{301}\n");
    });
}

#[test]
fn chars_mode_reverses_scalar_values() {
    e2e("chars_mode_reverses_scalar_values", &[], || {
        add_tap(&[HOST_CIDR]);
        let _server = HostTap::start(&["--mode", "chars"]);
        assert_eq!(text(&exchange("e\u{301}x\n".as_bytes())), "x\u{301}e\n");
    });
}

#[test]
fn bytes_mode_takes_any_bytes() {
    e2e("bytes_mode_takes_any_bytes", &[], || {
        add_tap(&[HOST_CIDR]);
        let _server = HostTap::start(&["--mode", "bytes"]);
        assert_eq!(exchange(b"a\xff\xfeb\n"), b"b\xfe\xffa\n");
    });
}

#[test]
fn unterminated_last_line_is_answered_after_fin() {
    e2e(
        "unterminated_last_line_is_answered_after_fin",
        &["nc"],
        || {
            add_tap(&[HOST_CIDR]);
            let _server = HostTap::start(&[]);
            assert_eq!(text(&exchange(b"one\ntwo")), "eno\nowt");
            assert_eq!(text(&netcat(&[], SERVER_IP, b"abc")), "cba");
        },
    );
}

#[test]
fn too_long_line_gets_an_error_and_the_session_goes_on() {
    e2e(
        "too_long_line_gets_an_error_and_the_session_goes_on",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let _server = HostTap::start(&["--max-line", "8"]);
            let reply = text(&exchange(b"12345678\n123456789\nshort\n"));
            let lines: Vec<&str> = reply.split_inclusive('\n').collect();
            assert_eq!(lines.len(), 3, "{reply:?}");
            assert_eq!(lines[0], "87654321\n");
            assert!(lines[1].starts_with("ERR too-long "), "{reply:?}");
            assert_eq!(lines[2], "trohs\n");
        },
    );
}

#[test]
fn invalid_utf8_gets_an_error_with_its_byte_offset() {
    e2e(
        "invalid_utf8_gets_an_error_with_its_byte_offset",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let _server = HostTap::start(&[]);
            assert_eq!(
                text(&exchange(b"ab\xffc\nok\n")),
                "ERR utf8 invalid UTF-8 at byte 2\nko\n"
            );
        },
    );
}

#[test]
fn connection_beyond_the_sessions_gets_busy_and_is_closed() {
    e2e(
        "connection_beyond_the_sessions_gets_busy_and_is_closed",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let server = HostTap::start(&["--sessions", "2"]);
            let mut first = connect();
            let mut second = connect();
            for (stream, line) in [(&mut first, "1st\n"), (&mut second, "2nd\n")] {
                stream.write_all(line.as_bytes()).unwrap();
                read_line(stream);
            }
            let busy = text(&read_all(&mut connect()));
            assert!(busy.starts_with("ERR busy "), "{busy:?}");
            assert_eq!(busy.matches('\n').count(), 1, "{busy:?}");
            // The two sessions are not disturbed.
            first.write_all(b"still\n").unwrap();
            assert_eq!(text(&read_line(&mut first)), "llits\n");
            drop((first, second));
            let (_, log) = server.stop();
            assert!(log.contains("busy 1"), "{log}");
        },
    );
}

#[test]
fn a_burst_of_connections_beyond_the_sessions_all_get_busy() {
    e2e(
        "a_burst_of_connections_beyond_the_sessions_all_get_busy",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let server = HostTap::start(&["--sessions", "1"]);
            let mut first = connect();
            first.write_all(b"1st\n").unwrap();
            read_line(&mut first);
            // Four, none closed before the next connects: each waits the
            // admission wait in the backlog, then gets a busy socket.
            let mut rejected: Vec<_> = (0..4).map(|_| connect()).collect();
            for stream in &mut rejected {
                let busy = text(&read_all(stream));
                assert!(busy.starts_with("ERR busy "), "{busy:?}");
            }
            drop(first);
            let (_, log) = server.stop();
            assert!(log.contains("busy 4"), "{log}");
        },
    );
}

#[test]
fn idle_session_gets_idle_timeout_and_is_closed() {
    e2e("idle_session_gets_idle_timeout_and_is_closed", &[], || {
        add_tap(&[HOST_CIDR]);
        let _server = HostTap::start(&["--idle-timeout", "300ms"]);
        let mut stream = connect();
        stream.write_all(b"x\n").unwrap();
        assert_eq!(read_line(&mut stream), b"x\n");
        let quiet_since = Instant::now();
        let rest = text(&read_all(&mut stream));
        let waited = quiet_since.elapsed();
        assert!(rest.starts_with("ERR idle-timeout"), "{rest:?}");
        assert!(
            rest.ends_with('\n') && rest.matches('\n').count() == 1,
            "{rest:?}"
        );
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
            "closed after {waited:?}"
        );
    });
}

#[test]
fn seed_style_python_client_is_answered_with_the_default_flags() {
    e2e(
        "seed_style_python_client_is_answered_with_the_default_flags",
        &["python3"],
        || {
            add_tap(&[HOST_CIDR]);
            let _server = HostTap::start(&[]);
            let started = Instant::now();
            let output = run(
                Command::new("python3").args([
                    SEED_CLIENT,
                    SERVER_IP,
                    "8888",
                    "Hello World!!!",
                    "HAHAHAHAH",
                    "각하 👍🏽",
                ]),
                b"",
                COMMAND_LIMIT,
            );
            assert!(output.status.success(), "{output:?}");
            assert_eq!(text(&output.stdout), "!!!dlroW olleH\nHAHAHAHAH\n👍🏽 하각\n");
            // Each answer comes one idle flush after its message.
            let flush = Duration::from(DEFAULT_IDLE_FLUSH);
            assert!(started.elapsed() >= flush * 3, "{:?}", started.elapsed());
        },
    );
}

/// `nc` with its input written by `printf` in pieces: `nc` writes each
/// piece it reads to the socket, so the pauses are the client's.
fn netcat_pieces(script: &str) -> Vec<u8> {
    let output = run(
        Command::new("sh").args(["-c", &format!("({script}) | nc -N {SERVER_IP} {PORT}")]),
        b"",
        COMMAND_LIMIT,
    );
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

#[test]
fn a_line_written_in_pieces_is_whole_unless_a_pause_outlasts_the_idle_flush() {
    e2e(
        "a_line_written_in_pieces_is_whole_unless_a_pause_outlasts_the_idle_flush",
        &["nc", "sh", "sleep", "printf"],
        || {
            add_tap(&[HOST_CIDR]);
            let _server = HostTap::start(&[]);
            // Pieces back to back: one line.
            let whole = netcat_pieces("printf abc; printf 'def\\n'");
            assert_eq!(text(&whole), "fedcba\n");
            // A pause longer than the flush where a write ended: "abc" is a
            // message of its own, answered without a terminator, and
            // "def" the line after it.
            let pause = Duration::from(DEFAULT_IDLE_FLUSH) * 3;
            let split = netcat_pieces(&format!(
                "printf abc; sleep {}; printf 'def\\n'",
                pause.as_secs_f64()
            ));
            assert_eq!(text(&split), "cbafed\n");
            // With --idle-flush off, a partial line waits for its newline.
            drop(_server);
            let _server = HostTap::start(&["--idle-flush", "off"]);
            let waited = netcat_pieces(&format!(
                "printf abc; sleep {}; printf 'def\\n'",
                pause.as_secs_f64()
            ));
            assert_eq!(text(&waited), "fedcba\n");
        },
    );
}

#[test]
fn reverse_client_piped_prints_exactly_the_replies() {
    e2e(
        "reverse_client_piped_prints_exactly_the_replies",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let _server = HostTap::start(&[]);
            let output = reverse_client(
                &["-i", SERVER_IP, "-p", "8888"],
                "Hello World!!!\n각👍🏽\nlast".as_bytes(),
            );
            assert!(output.status.success(), "{output:?}");
            assert_eq!(text(&output.stdout), "!!!dlroW olleH\n👍🏽각\ntsal");
            assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
        },
    );
}

#[test]
fn sixty_concurrent_clients_get_exact_replies() {
    const CLIENTS: usize = 60;
    const LINES: usize = 5;
    e2e("sixty_concurrent_clients_get_exact_replies", &[], || {
        add_tap(&[HOST_CIDR]);
        let server = HostTap::start(&[]);
        let all_connected = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let all_connected = Arc::clone(&all_connected);
                thread::spawn(move || {
                    let mut stream = connect();
                    // Every session is open before any line goes out.
                    all_connected.wait();
                    for line in 0..LINES {
                        let ascii = format!("client {client:02} line {line}");
                        stream
                            .write_all(format!("{ascii} 각👍🏽\n").as_bytes())
                            .unwrap();
                        let reversed: String = ascii.chars().rev().collect();
                        assert_eq!(text(&read_line(&mut stream)), format!("👍🏽각 {reversed}\n"));
                    }
                    stream.shutdown(Shutdown::Write).unwrap();
                    assert!(read_all(&mut stream).is_empty());
                })
            })
            .collect();
        for client in clients {
            client.join().expect("a client failed");
        }
        let (status, log) = server.stop();
        assert!(status.success(), "{log}");
        assert!(
            log.contains(&format!("connections {CLIENTS}, lines {}", CLIENTS * LINES)),
            "{log}"
        );
    });
}

#[test]
fn udp_datagram_is_answered() {
    e2e("udp_datagram_is_answered", &[], || {
        add_tap(&[HOST_CIDR]);
        let _server = HostTap::start(&[]);
        let output = reverse_client(&["--udp", "-i", SERVER_IP], "abc\r\n각하\n".as_bytes());
        assert!(output.status.success(), "{output:?}");
        assert_eq!(text(&output.stdout), "cba\r\n하각\n");
    });
}

#[test]
fn udp_error_larger_than_its_datagram_is_not_sent_but_counted() {
    e2e(
        "udp_error_larger_than_its_datagram_is_not_sent_but_counted",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let server = HostTap::start(&[]);
            let output = reverse_client(&["--udp", "-i", SERVER_IP, "-t", "500ms"], b"\xff\n");
            assert_eq!(output.status.code(), Some(3), "{output:?}");
            assert!(output.stdout.is_empty(), "{output:?}");
            assert!(text(&output.stderr).contains("no reply"), "{output:?}");
            let (_, log) = server.stop();
            assert!(log.contains("udp datagrams 1 dropped 1"), "{log}");
        },
    );
}

/// A datagram larger than a frame: the kernel sends it in IPv4 fragments,
/// host-tap reassembles it and sends its reply in fragments, which the
/// kernel reassembles. Beyond `--max-line` it gets `ERR too-long`; beyond
/// the 16 KiB smoltcp reassembles (UDP header included) nothing, and the
/// server goes on.
#[test]
fn a_udp_datagram_larger_than_a_frame_is_reassembled_and_its_reply_fragmented() {
    e2e(
        "a_udp_datagram_larger_than_a_frame_is_reassembled_and_its_reply_fragmented",
        &["tshark"],
        || {
            add_tap(&[HOST_CIDR]);
            let path = capture_path("fragments");
            let server = HostTap::start(&["--max-line", "4096", "--pcap", path.to_str().unwrap()]);
            let socket = UdpSocket::bind("192.168.69.100:0").unwrap();
            let ask =
                |datagram: &[u8], tries| udp_reply(&socket, server_address(), datagram, tries);

            let datagram = long_datagram(3000);
            let reply = ask(&datagram, 3).expect("a reply to 3,000 bytes");
            assert!(reply == reversed_datagram(&datagram), "{}", text(&reply));
            let longest = long_datagram(4097);
            let reply = ask(&longest, 3).expect("a reply to 4,097 bytes");
            assert!(reply == reversed_datagram(&longest), "{}", text(&reply));

            let too_long = ask(&long_datagram(5000), 3).expect("a reply to 5,000 bytes");
            assert_eq!(
                text(&too_long),
                "ERR too-long line longer than 4096 bytes\n"
            );
            let largest = ask(&long_datagram(16_376), 3).expect("a reply to 16,376 bytes");
            assert_eq!(text(&largest), text(&too_long));
            assert_eq!(ask(&long_datagram(16_377), 1), None, "16,377 bytes");
            assert_eq!(ask(b"still\n", 3).as_deref(), Some(&b"llits\n"[..]));

            let (status, log) = server.stop();
            assert!(status.success(), "{log}");
            // The 16,377 bytes never reached the server's socket: their
            // last fragment was dropped.
            assert!(log.contains("udp datagrams 5 dropped 0"), "{log}");
            assert!(
                log.contains("fragments beyond reassembly dropped 1"),
                "{log}"
            );
            let fragments_from =
                |ip| captured(&path, &format!("ip.src == {ip} && ip.flags.mf == 1"));
            let (to_server, from_server) =
                (fragments_from("192.168.69.100"), fragments_from(SERVER_IP));
            std::fs::remove_file(&path).unwrap();
            // Fragments with more to come: 2 + 2 + 3 + 11 + 11 of the five
            // large datagrams, 2 + 2 of the two large replies.
            assert_eq!((to_server, from_server), (29, 4));
        },
    );
}

/// smoltcp 0.14 reassembles no IPv6: over IPv6 a datagram must fit in one
/// frame (1,452 bytes of payload in a 1,500-byte MTU).
#[test]
fn over_ipv6_a_udp_datagram_larger_than_a_frame_is_not_answered() {
    e2e(
        "over_ipv6_a_udp_datagram_larger_than_a_frame_is_not_answered",
        &[],
        || {
            add_tap(&[HOST_CIDR, "fdaa::100/64"]);
            let _server = HostTap::start(&["--max-line", "4096", "--address", "fdaa::1/64"]);
            let socket = UdpSocket::bind("[fdaa::100]:0").unwrap();
            let server = SocketAddr::new("fdaa::1".parse().unwrap(), PORT);
            let fits = long_datagram(1452);
            let reply = udp_reply(&socket, server, &fits, 3).expect("a reply to 1,452 bytes");
            assert!(reply == reversed_datagram(&fits), "{}", text(&reply));
            assert_eq!(udp_reply(&socket, server, &long_datagram(1453), 1), None);
        },
    );
}

#[test]
fn ipv6_clients_are_served_over_tcp_and_udp() {
    e2e("ipv6_clients_are_served_over_tcp_and_udp", &["nc"], || {
        add_tap(&[HOST_CIDR, "fdaa::100/64"]);
        let _server = HostTap::start(&["--address", "fdaa::1/64"]);
        assert_eq!(text(&netcat(&["-6"], "fdaa::1", b"ipv6\n")), "6vpi\n");
        let output = reverse_client(&["--udp", "-i", "fdaa::1"], b"udp6\n");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(text(&output.stdout), "6pdu\n");
    });
}

#[test]
fn many_lines_through_a_65521_byte_mtu_come_back_exact() {
    e2e(
        "many_lines_through_a_65521_byte_mtu_come_back_exact",
        &[],
        || {
            ip("tuntap add name tap0 mode tap");
            ip("link set dev tap0 mtu 65521");
            ip(&format!("addr add {HOST_CIDR} dev tap0"));
            ip("link set dev tap0 up");
            let _server = HostTap::start(&["--max-line", "8192"]);
            let line: Vec<u8> = (0..4000u32).map(|i| b'a' + (i % 26) as u8).collect();
            let mut reversed = line.clone();
            reversed.reverse();
            let lines = 1000;
            let input = [&line[..], b"\n"].concat().repeat(lines);
            let output = reverse_client(&["-i", SERVER_IP], &input);
            assert!(output.status.success(), "{}", text(&output.stderr));
            assert!(
                output.stdout == [&reversed[..], b"\n"].concat().repeat(lines),
                "{} of {} bytes back",
                output.stdout.len(),
                input.len()
            );
        },
    );
}

#[test]
fn gateway_routes_replies_to_hosts_beyond_the_tap() {
    e2e(
        "gateway_routes_replies_to_hosts_beyond_the_tap",
        &["nc"],
        || {
            add_tap(&[HOST_CIDR]);
            // A client address that is not on the TAP's network: without the
            // gateway, host-tap would have no route for its replies.
            ip("link set dev lo up");
            ip("addr add 10.9.9.9/32 dev lo");
            // smoltcp answers ARP only from its own networks: the kernel must ask
            // from 192.168.69.100, not from the client's address (this namespace only).
            std::fs::write("/proc/sys/net/ipv4/conf/tap0/arp_announce", "2").unwrap();
            let _server = HostTap::start(&["--gateway", "192.168.69.100"]);
            let reply = netcat(&["-s", "10.9.9.9"], SERVER_IP, b"routed\n");
            assert_eq!(text(&reply), "detuor\n");
        },
    );
}

#[test]
fn idle_server_uses_no_cpu() {
    e2e("idle_server_uses_no_cpu", &[], || {
        add_tap(&[HOST_CIDR]);
        let server = HostTap::start(&[]);
        // An open session: the server has a timer (the idle timeout) to sleep on.
        let mut stream = connect();
        stream.write_all(b"x\n").unwrap();
        read_line(&mut stream);
        thread::sleep(Duration::from_millis(200));
        let before = cpu_ticks(server.pid());
        thread::sleep(Duration::from_secs(1));
        let used = cpu_ticks(server.pid()) - before;
        // Clock ticks are 10 ms: a busy loop would use about 100.
        assert!(used <= 2, "{used} ticks of CPU in 1 s while idle");
    });
}

// ---------------------------------------------------------------------------
// Offloads

/// `count` lines of 1 KiB (LF included), numbered, and their replies.
fn kib_lines(count: usize) -> (Vec<u8>, Vec<u8>) {
    let mut lines = Vec::with_capacity(count * 1024);
    let mut replies = Vec::with_capacity(count * 1024);
    for n in 0..count {
        let mut line = format!("{n:08} ").into_bytes();
        line.resize(1023, b'a' + (n % 26) as u8);
        lines.extend_from_slice(&line);
        lines.push(b'\n');
        line.reverse();
        replies.extend_from_slice(&line);
        replies.push(b'\n');
    }
    (lines, replies)
}

/// Sends `input` through one connection to `address` from a writer thread
/// while this thread reads, then half-closes; returns every reply byte.
fn stream_through(address: SocketAddr, input: Vec<u8>) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&address, IO_LIMIT).expect("connect");
    stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        writer.write_all(&input).expect("send the lines");
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let replies = read_all(&mut stream);
    sending.join().expect("the writer failed");
    replies
}

/// The frames host-tap read from and wrote to the TAP, from its summary.
fn tap_frames(log: &str) -> (u64, u64) {
    (
        logged_count(log, "frames in "),
        logged_count(log, "frames out "),
    )
}

/// 4 MiB of 1 KiB lines through host-tap (started with `args`) from
/// `client` to `server`; checks every reply byte and returns the frames
/// host-tap read and wrote, and its log.
fn bulk_through(args: &[&str], server: SocketAddr) -> (u64, u64, String) {
    let host_tap = HostTap::start_as_given(args);
    let (lines, replies) = kib_lines(4096);
    let received = stream_through(server, lines);
    assert!(
        received == replies,
        "{} of {} reply bytes, or wrong ones",
        received.len(),
        replies.len()
    );
    let (status, log) = host_tap.stop();
    assert!(status.success(), "{log}");
    let (frames_in, frames_out) = tap_frames(&log);
    (frames_in, frames_out, log)
}

const BULK_BYTES: u64 = 4 << 20;

#[test]
fn with_offloads_bulk_lines_cross_the_tap_in_frames_of_up_to_64_kib() {
    e2e(
        "with_offloads_bulk_lines_cross_the_tap_in_frames_of_up_to_64_kib",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let (frames_in, frames_out, log) = bulk_through(&[], server_address());
            assert!(
                log.contains("offloads: checksums and TCP segmentation"),
                "{log}"
            );
            // At MTU 1500 that would be about 2,900 frames each way.
            assert!(
                frames_out * 8192 < BULK_BYTES && frames_in * 8192 < BULK_BYTES,
                "{frames_in} frames in, {frames_out} out for {BULK_BYTES} bytes each way"
            );
        },
    );
}

#[test]
fn without_offloads_bulk_lines_cross_the_tap_in_frames_of_the_mtu() {
    e2e(
        "without_offloads_bulk_lines_cross_the_tap_in_frames_of_the_mtu",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let (frames_in, frames_out, log) =
                bulk_through(&["--offload", "off"], server_address());
            assert!(log.contains("offloads: none"), "{log}");
            // Each frame carries at most one MSS (1460 bytes).
            assert!(
                frames_out * 1460 >= BULK_BYTES && frames_in * 1460 >= BULK_BYTES,
                "{frames_in} frames in, {frames_out} out for {BULK_BYTES} bytes each way"
            );
        },
    );
}

#[test]
fn with_offloads_ipv6_bulk_comes_back_exact() {
    e2e("with_offloads_ipv6_bulk_comes_back_exact", &[], || {
        add_tap(&[HOST_CIDR, "fdaa::100/64"]);
        let server = SocketAddr::new("fdaa::1".parse().unwrap(), PORT);
        let (_, frames_out, log) = bulk_through(&["--address", "fdaa::1/64"], server);
        assert!(
            log.contains("offloads: checksums and TCP segmentation"),
            "{log}"
        );
        // The kernel writes whole segments to us, but ours are cut to the
        // MSS: smoltcp 0.14 sends no IPv6 packet larger than the MTU.
        assert!(frames_out * 1440 >= BULK_BYTES, "{frames_out} frames out");
    });
}

#[test]
fn with_offload_off_the_core_behaviours_hold() {
    const CLIENTS: usize = 20;
    e2e("with_offload_off_the_core_behaviours_hold", &["nc"], || {
        add_tap(&[HOST_CIDR, "fdaa::100/64"]);
        let mut server = HostTap::start_as_given(&[
            "--offload",
            "off",
            "--address",
            "192.168.69.1/24",
            "--address",
            "fdaa::1/64",
        ]);
        assert_eq!(
            text(&netcat(&[], SERVER_IP, "hello 각👍🏽\r\nab\n".as_bytes())),
            "👍🏽각 olleh\r\nba\n"
        );
        assert_eq!(text(&netcat(&["-6"], "fdaa::1", b"ipv6\n")), "6vpi\n");
        for address in [SERVER_IP, "fdaa::1"] {
            let output = reverse_client(&["--udp", "-i", address], b"udp\n");
            assert_eq!(text(&output.stdout), "pdu\n", "{output:?}");
        }
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                thread::spawn(move || {
                    let mut stream = connect();
                    let line = format!("client {client:02}");
                    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
                    let reversed: String = line.chars().rev().collect();
                    assert_eq!(text(&read_line(&mut stream)), format!("{reversed}\n"));
                })
            })
            .collect();
        for client in clients {
            client.join().expect("a client failed");
        }
        // Replies owed at the signal are delivered, then a FIN.
        let mut unread = connect();
        unread.write_all(b"a\nbc\npartial").unwrap();
        thread::sleep(Duration::from_millis(200));
        server.signal("TERM");
        assert_eq!(text(&read_all(&mut unread)), "a\ncb\nlaitrap");
        let (status, log) = server.exit_within(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(log.contains("offloads: none"), "{log}");
    });
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after "pid (comm)": state is the first; utime and stime are 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn pcap_capture_is_readable_by_tshark() {
    e2e(
        "pcap_capture_is_readable_by_tshark",
        &["nc", "tshark"],
        || {
            add_tap(&[HOST_CIDR]);
            let path = capture_path("pcap");
            let server = HostTap::start(&["--pcap", path.to_str().unwrap()]);
            assert_eq!(
                text(&netcat(&[], SERVER_IP, b"capture me\n")),
                "em erutpac\n"
            );
            let (status, log) = server.stop();
            assert!(status.success(), "{log}");
            let frames = captured(&path, "frame");
            let syns = captured(&path, "tcp.port == 8888 && tcp.flags.syn == 1");
            let data = captured(&path, "tcp.port == 8888 && tcp.len > 0");
            std::fs::remove_file(&path).unwrap();
            assert!(frames > 0, "no frames captured");
            // SYN and SYN-ACK; the line and its reply.
            assert!(
                syns >= 2 && data >= 2,
                "syn {syns}, data {data} of {frames}"
            );
        },
    );
}

/// Frames of the capture at `path` that match the display `filter`, with
/// Wireshark checking TCP checksums.
fn tshark_frames(path: &Path, filter: &str) -> usize {
    let output = run(
        Command::new("tshark")
            .arg("-r")
            .arg(path)
            .args(["-o", "tcp.check_checksum:TRUE", "-Y", filter])
            .args(["-T", "fields", "-e", "frame.number"]),
        b"",
        COMMAND_LIMIT,
    );
    assert!(output.status.success(), "tshark failed: {output:?}");
    text(&output.stdout).lines().count()
}

#[test]
fn pcap_records_bulk_as_the_kernel_sees_it_with_offloads_and_cut_without() {
    e2e(
        "pcap_records_bulk_as_the_kernel_sees_it_with_offloads_and_cut_without",
        &["tshark"],
        || {
            add_tap(&[HOST_CIDR]);
            let path =
                std::env::temp_dir().join(format!("host-tap-e2e-{}.pcap", std::process::id()));
            let capture = |offload: &str| {
                let pcap = path.to_str().unwrap();
                let server = HostTap::start_as_given(&["--pcap", pcap, "--offload", offload]);
                let (lines, replies) = kib_lines(256);
                assert!(stream_through(server_address(), lines) == replies);
                let (status, log) = server.stop();
                assert!(status.success(), "{log}");
                let frames =
                    |filter: &str| tshark_frames(&path, &format!("tcp.port == 8888 && {filter}"));
                let counts = (
                    frames("tcp.len > 1460"),
                    frames("tcp.len > 0 && tcp.checksum.status == 0"),
                    frames("tcp.len > 0"),
                );
                std::fs::remove_file(&path).unwrap();
                counts
            };
            // With offloads: segments larger than the MSS, both ways, and
            // TCP checksums left to the kernel.
            let (large, unfinished, data) = capture("on");
            assert!(
                large > 0 && unfinished > 0,
                "{large} large, {unfinished} unfinished of {data}"
            );
            // Without: every segment fits the MTU, every checksum is right.
            let (large, bad, data) = capture("off");
            assert!(data > 2 * 256 * 1024 / 1460, "{data} segments with data");
            assert_eq!((large, bad), (0, 0), "{large} large, {bad} bad of {data}");
        },
    );
}

#[test]
fn created_tap_is_configured_and_removed_on_exit() {
    e2e("created_tap_is_configured_and_removed_on_exit", &[], || {
        let server = HostTap::start(&[
            "--create-tap",
            "--tap",
            "tapmade",
            "--address",
            "192.168.71.1/24",
            "--host-address",
            "192.168.71.100/24",
        ]);
        let addresses = run_ip("-o addr show dev tapmade");
        assert!(
            text(&addresses.stdout).contains("inet 192.168.71.100/24"),
            "{addresses:?}"
        );
        let mut stream =
            TcpStream::connect_timeout(&"192.168.71.1:8888".parse().unwrap(), IO_LIMIT).unwrap();
        stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
        stream.write_all(b"made\n").unwrap();
        assert_eq!(read_line(&mut stream), b"edam\n");
        drop(stream);
        assert!(interface_exists("tapmade"));
        let (status, log) = server.stop();
        assert!(status.success(), "{log}");
        assert!(!interface_exists("tapmade"), "tapmade outlived host-tap");
    });
}

// ---------------------------------------------------------------------------
// Shutdown

#[test]
fn sigterm_delivers_pending_replies_and_fin_then_exits_zero() {
    e2e(
        "sigterm_delivers_pending_replies_and_fin_then_exits_zero",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let mut server = HostTap::start(&[]);
            // Owed a reply that only the end of input releases.
            let mut partial = connect();
            partial.write_all(b"one\npartial").unwrap();
            assert_eq!(read_line(&mut partial), b"eno\n");
            // Sent lines and has not read their replies yet.
            let mut unread = connect();
            unread.write_all(b"a\nbc\n").unwrap();
            thread::sleep(Duration::from_millis(200));

            let signalled = Instant::now();
            server.signal("TERM");
            // A FIN, not a reset, after the replies: read_to_end succeeds.
            assert_eq!(text(&read_all(&mut partial)), "laitrap");
            assert_eq!(text(&read_all(&mut unread)), "a\ncb\n");
            drop((partial, unread));
            let (status, log) = server.exit_within(Duration::from_secs(10));
            let took = signalled.elapsed();
            assert_eq!(status.code(), Some(0), "{log}");
            // Well within the 5 s shutdown timeout: it did not run out.
            assert!(took < Duration::from_secs(3), "exit took {took:?}");
            assert!(log.contains("every session finished"), "{log}");
            assert!(
                log.contains("host-tap: counters: connections 2, lines 4"),
                "{log}"
            );
            assert!(log.contains("(shutdown)"), "{log}");
        },
    );
}

#[test]
fn shutdown_timeout_ends_a_shutdown_that_a_client_holds_up() {
    e2e(
        "shutdown_timeout_ends_a_shutdown_that_a_client_holds_up",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let mut server = HostTap::start(&["--shutdown-timeout", "300ms"]);
            // Reads the FIN but never closes its own side.
            let mut holder = connect();
            holder.write_all(b"x\n").unwrap();
            read_line(&mut holder);
            let signalled = Instant::now();
            server.signal("TERM");
            let (status, log) = server.exit_within(Duration::from_secs(10));
            let took = signalled.elapsed();
            assert_eq!(status.code(), Some(0), "{log}");
            assert!(
                took >= Duration::from_millis(250) && took < Duration::from_secs(3),
                "exit after {took:?}"
            );
            assert!(
                log.contains("shutdown timeout passed with 1 sessions"),
                "{log}"
            );
            assert!(read_all(&mut holder).is_empty());
        },
    );
}

#[test]
fn second_signal_stops_at_once() {
    e2e("second_signal_stops_at_once", &[], || {
        add_tap(&[HOST_CIDR]);
        let mut server = HostTap::start(&["--shutdown-timeout", "1m"]);
        let mut holder = connect();
        holder.write_all(b"x\n").unwrap();
        read_line(&mut holder);
        server.signal("INT");
        // The FIN arrives: the shutdown is under way, held up by `holder`.
        assert!(read_all(&mut holder).is_empty());
        let signalled = Instant::now();
        server.signal("INT");
        let (status, log) = server.exit_within(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(signalled.elapsed() < Duration::from_secs(2));
        assert!(log.contains("second signal; 1 sessions cut off"), "{log}");
    });
}

#[test]
fn deleted_tap_ends_the_server_with_exit_code_1() {
    e2e("deleted_tap_ends_the_server_with_exit_code_1", &[], || {
        add_tap(&[HOST_CIDR]);
        let mut server = HostTap::start(&[]);
        ip("link delete dev tap0");
        let (status, log) = server.exit_within(Duration::from_secs(10));
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains("the TAP device failed"), "{log}");
        assert!(log.contains("host-tap: counters: "), "{log}");
    });
}

// ---------------------------------------------------------------------------
// Failures and their exit codes

#[test]
fn bad_arguments_exit_with_their_codes() {
    e2e("bad_arguments_exit_with_their_codes", &[], || {
        let five_addresses = ["--address", "10.0.0.1/8"].repeat(5);
        let cases: Vec<(Vec<&str>, i32, &str)> = vec![
            (vec!["--bogus"], 2, "unexpected argument"),
            (vec!["--idle-timeout", "soon"], 2, "--idle-timeout"),
            (vec!["--port", "65536"], 2, "--port"),
            (vec!["--address", "300.1.1.1/24"], 3, "not an IP address"),
            (vec!["--address", "192.168.69.1"], 3, "ADDRESS/PREFIX"),
            (vec!["--address", "192.168.69.1/33"], 3, "prefix length"),
            (vec!["--gateway", "router"], 3, "--gateway"),
            (vec!["--mac", "01:00:5e:00:00:01"], 3, "multicast"),
            (vec!["--mac", "02:00:00:00:01"], 3, "six hex octets"),
            (five_addresses, 4, "at most 4"),
            (vec!["--port", "0"], 5, "--port 0"),
            (vec!["--udp-port", "0"], 5, "--udp-port 0"),
            (vec!["--sessions", "0"], 6, "1 to 1024"),
            (vec!["--sessions", "1025"], 6, "1 to 1024"),
            (vec!["--max-line", "0"], 7, "1 to 8192"),
            (vec!["--max-line", "8193"], 7, "1 to 8192"),
        ];
        for (args, code, message) in cases {
            let (exit, stderr) = host_tap_failure(&args);
            assert_eq!(exit, Some(code), "{args:?}: {stderr}");
            assert!(stderr.contains(message), "{args:?}: {stderr}");
        }
    });
}

#[test]
fn missing_tap_is_reported_with_the_command_that_makes_it() {
    e2e(
        "missing_tap_is_reported_with_the_command_that_makes_it",
        &[],
        || {
            let (exit, stderr) = host_tap_failure(&["--tap", "tapnone"]);
            assert_eq!(exit, Some(11), "{stderr}");
            assert!(
                stderr.contains("ip tuntap add name tapnone mode tap user $USER"),
                "{stderr}"
            );
            assert!(!interface_exists("tapnone"));
        },
    );
}

#[test]
fn tap_in_use_is_reported_busy() {
    e2e("tap_in_use_is_reported_busy", &[], || {
        add_tap(&[HOST_CIDR]);
        let _first = HostTap::start(&[]);
        let (exit, stderr) = host_tap_failure(&[]);
        assert_eq!(exit, Some(13), "{stderr}");
        assert!(stderr.contains("in use by another process"), "{stderr}");
    });
}

#[test]
fn pcap_file_that_cannot_be_created_is_reported() {
    e2e("pcap_file_that_cannot_be_created_is_reported", &[], || {
        add_tap(&[HOST_CIDR]);
        let (exit, stderr) = host_tap_failure(&["--pcap", "/nonexistent-host-tap/x.pcap"]);
        assert_eq!(exit, Some(16), "{stderr}");
        assert!(
            stderr.contains("cannot create the capture file /nonexistent-host-tap/x.pcap"),
            "{stderr}"
        );
    });
}

#[test]
fn unprivileged_user_gets_no_permission() {
    e2e(
        "unprivileged_user_gets_no_permission",
        &["setpriv", "mount", "mknod", "chmod"],
        || {
            ip("tuntap add name taproot mode tap user 0");
            // This mount namespace gets its own /dev/net whose tun node's mode we
            // pick; the host's /dev/net/tun stays as it is. host-tap is copied
            // there too, so that nobody can run it wherever the build lives.
            let dir = Path::new("/dev/net");
            let shell = |program: &str, args: &[&str]| {
                let output = run(Command::new(program).args(args), b"", COMMAND_LIMIT);
                assert!(output.status.success(), "{program} {args:?}: {output:?}");
            };
            shell(
                "mount",
                &["-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/dev/net"],
            );
            shell("mknod", &["/dev/net/tun", "c", "10", "200"]);
            let exe = dir.join("host-tap");
            std::fs::copy(HOST_TAP, &exe).expect("copy host-tap");
            let as_nobody = |tap: &str| {
                let output = run(
                    Command::new("setpriv")
                        .arg(format!("--reuid={NOBODY}"))
                        .arg(format!("--regid={NOBODY}"))
                        .args(["--clear-groups", "--"])
                        .arg(&exe)
                        .args(["--tap", tap]),
                    b"",
                    COMMAND_LIMIT,
                );
                (output.status.code(), text(&output.stderr))
            };

            shell("chmod", &["0600", "/dev/net/tun"]);
            let (exit, stderr) = as_nobody("taproot");
            assert_eq!(exit, Some(10), "{stderr}");
            assert!(
                stderr.contains("permission denied opening /dev/net/tun"),
                "{stderr}"
            );

            shell("chmod", &["0666", "/dev/net/tun"]);
            let (exit, stderr) = as_nobody("taproot");
            assert_eq!(exit, Some(10), "{stderr}");
            assert!(
                stderr.contains("ip tuntap add name taproot mode tap user $USER"),
                "{stderr}"
            );
        },
    );
}

// ---------------------------------------------------------------------------
// Admission: the listen backlog with real kernel clients (issue 12's table)

/// How a kernel client's connection attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// Its line came back reversed.
    Served,
    /// `ERR busy`, then the server closed.
    Busy,
    /// Refused or reset before any reply: what the backlog prevents.
    Refused(String),
}

/// Connects, sends `line` and reads until the server closes: how it ended.
fn attempt(line: &str) -> Attempt {
    let mut stream = match TcpStream::connect_timeout(&server_address(), IO_LIMIT) {
        Ok(stream) => stream,
        Err(error) => return Attempt::Refused(format!("connect: {error}")),
    };
    stream.set_read_timeout(Some(IO_LIMIT)).unwrap();
    stream.set_write_timeout(Some(IO_LIMIT)).unwrap();
    if let Err(error) = stream.write_all(format!("{line}\n").as_bytes()) {
        return Attempt::Refused(format!("write: {error}"));
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut received = Vec::new();
    let read = stream.read_to_end(&mut received);
    let reply = text(&received);
    let reversed: String = line.chars().rev().collect();
    if reply == format!("{reversed}\n") {
        Attempt::Served
    } else if reply.starts_with("ERR busy ") && reply.matches('\n').count() == 1 {
        Attempt::Busy
    } else {
        Attempt::Refused(format!("{reply:?}, {read:?}"))
    }
}

/// Opens `count` sessions that each got one reply, and keeps them.
fn hold_sessions(count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|n| {
            let mut stream = connect();
            stream.write_all(format!("held {n}\n").as_bytes()).unwrap();
            read_line(&mut stream);
            stream
        })
        .collect()
}

#[test]
fn thirty_two_clients_at_once_beyond_eight_held_sessions_are_all_told_busy() {
    e2e(
        "thirty_two_clients_at_once_beyond_eight_held_sessions_are_all_told_busy",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let server = HostTap::start(&["--sessions", "8"]);
            let held = hold_sessions(8);
            let start = Arc::new(Barrier::new(32));
            let burst: Vec<_> = (0..32)
                .map(|n| {
                    let start = Arc::clone(&start);
                    thread::spawn(move || {
                        start.wait();
                        attempt(&format!("burst {n}"))
                    })
                })
                .collect();
            let ended: Vec<Attempt> = burst.into_iter().map(|t| t.join().unwrap()).collect();
            assert!(ended.iter().all(|a| *a == Attempt::Busy), "{ended:?}");
            drop(held);
            let (_, log) = server.stop();
            assert!(log.contains("busy 32"), "{log}");
        },
    );
}

#[test]
fn twenty_four_clients_churning_over_eight_sessions_are_never_refused() {
    const CLIENTS: usize = 24;
    const FOR: Duration = Duration::from_secs(3);
    e2e(
        "twenty_four_clients_churning_over_eight_sessions_are_never_refused",
        &[],
        || {
            add_tap(&[HOST_CIDR]);
            let server = HostTap::start(&["--sessions", "8"]);
            let stop = Instant::now() + FOR;
            let clients: Vec<_> = (0..CLIENTS)
                .map(|client| {
                    thread::spawn(move || {
                        let mut ended = Vec::new();
                        while Instant::now() < stop {
                            ended.push(attempt(&format!("client {client} #{}", ended.len())));
                        }
                        ended
                    })
                })
                .collect();
            let ended: Vec<Attempt> = clients
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect();
            let served = ended.iter().filter(|a| **a == Attempt::Served).count();
            let busy = ended.iter().filter(|a| **a == Attempt::Busy).count();
            println!(
                "figures: {} attempts in {FOR:?}: {served} served, {busy} busy",
                ended.len()
            );
            let refused: Vec<_> = ended
                .iter()
                .filter(|a| matches!(a, Attempt::Refused(_)))
                .collect();
            assert!(
                refused.is_empty(),
                "{} refused: {:?}",
                refused.len(),
                &refused[..refused.len().min(5)]
            );
            let (_, log) = server.stop();
            assert!(log.contains(&format!("busy {busy}")), "{log}");
        },
    );
}
