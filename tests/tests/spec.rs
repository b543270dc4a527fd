//! Every behaviour of the SPEC, end to end: the core's server on a simulated
//! Ethernet segment, clients talking to it through the core's `LineClient`
//! (UDP through a plain smoltcp socket), all in virtual time.

use std::time::Instant as WallClock;

use reversal_core::{Capacity, HeapResources, Mode, ServerConfig, SessionConfig};
use reversal_sim::reversal::{Network, Script, Talk};
use reversal_sim::{Direction, Faults, Host, Party, PartyId, Segment};
use smoltcp::iface::SocketHandle;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, TcpPacket};

/// The server's UDP port, the same as its TCP port by default.
const PORT: u16 = 8888;
const SESSIONS: usize = 2;
const MAX_LINE: usize = 64;
/// How long a test waits for a reply, and for a conversation to end.
const REPLY_LIMIT: Duration = Duration::from_secs(30);
const END_LIMIT: Duration = Duration::from_secs(600);

/// The server's memory: 1 KiB socket buffers and one busy socket.
const CAPACITY: Capacity = Capacity::new(SESSIONS, 1024, MAX_LINE).with_spare_sockets(1);
type Net = Network;

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn config() -> ServerConfig {
    ServerConfig::new(SESSIONS, MAX_LINE)
}

fn with_session(session: SessionConfig) -> ServerConfig {
    config().with_session(session)
}

/// The server with `config`, and no client yet.
fn network(config: ServerConfig) -> Net {
    init_log();
    let resources = Box::leak(Box::new(HeapResources::new(CAPACITY)));
    Net::new(0, config, resources).unwrap()
}

/// What these tests ask of the network beyond the fixture.
trait SpecNet {
    /// Runs `script` alone to its end and returns its replies as text; the
    /// server must have closed with a FIN.
    fn replies_to(&mut self, script: Script) -> Vec<String>;
}

impl SpecNet for Net {
    fn replies_to(&mut self, script: Script) -> Vec<String> {
        let talk = self.talk(script);
        let conversation = self.run_until_ended(talk, END_LIMIT);
        assert_eq!(conversation.error(), None);
        assert!(!conversation.was_reset(), "the server reset the connection");
        conversation.reply_text()
    }
}

/// The TCP payloads `from` transmitted, in order, from the segment's
/// capture.
fn tcp_payloads(segment: &Segment, from: Ipv4Address) -> Vec<Vec<u8>> {
    let sent = segment.tcp_sent_by(from).expect("capture is on");
    sent.iter()
        // smoltcp reads a payload only through a borrowed packet.
        .map(|tcp| TcpPacket::new_unchecked(tcp.as_ref()).payload().to_vec())
        .filter(|payload| !payload.is_empty())
        .collect()
}

#[test]
fn several_lines_in_one_segment_are_answered_in_order() {
    let mut net = network(config());
    let replies = net.replies_to(Script::new().send("one\ntwo\nthree\n").close());
    assert_eq!(replies, ["eno\n", "owt\n", "eerht\n"]);
    let sent = tcp_payloads(net.sim.segment(), net.last_host_address().unwrap());
    assert_eq!(sent, [b"one\ntwo\nthree\n"], "all in one segment");
}

#[test]
fn a_line_across_many_segments_is_answered_once() {
    let mut net = network(config());
    let mut script = Script::new();
    for piece in ["he", "llo", ",", " wor", "ld", "\n"] {
        script = script.send(piece).wait_acked();
    }
    let replies = net.replies_to(script.close());
    assert_eq!(replies, ["dlrow ,olleh\n"]);
    let sent = tcp_payloads(net.sim.segment(), net.last_host_address().unwrap());
    assert_eq!(sent.len(), 6, "one segment per piece: {sent:?}");
}

#[test]
fn crlf_terminator_is_kept_in_the_reply() {
    let mut net = network(config());
    let replies = net.replies_to(Script::new().send("abc\r\nde\nx\ry\r\n").close());
    // A CR that is not right before the LF is content.
    assert_eq!(replies, ["cba\r\n", "ed\n", "y\rx\r\n"]);
}

#[test]
fn cr_and_lf_in_different_segments_are_still_one_terminator() {
    let mut net = network(config());
    let script = Script::new().send("abc\r").wait_acked().send("\n").close();
    assert_eq!(net.replies_to(script), ["cba\r\n"]);
}

#[test]
fn empty_lines_get_the_bare_terminator() {
    let mut net = network(config());
    let replies = net.replies_to(Script::new().send("\n\r\n\nz\n").close());
    assert_eq!(replies, ["\n", "\r\n", "\n", "z\n"]);
}

#[test]
fn graphemes_stay_whole_by_default() {
    let mut net = network(config());
    let script = Script::new()
        .send_line("e\u{301}👍🏽🇰🇷각")
        .send_line("👩‍👩‍👧 ok")
        .send_line("ᄀ\u{1161}\u{11a8}!")
        .close();
    let replies = net.replies_to(script);
    assert_eq!(
        replies,
        ["각🇰🇷👍🏽e\u{301}\n", "ko 👩‍👩‍👧\n", "!ᄀ\u{1161}\u{11a8}\n"]
    );
}

#[test]
fn chars_mode_reverses_scalar_values() {
    let mut net = network(with_session(
        SessionConfig::new(MAX_LINE).with_mode(Mode::Chars),
    ));
    let replies = net.replies_to(Script::new().send_line("e\u{301}a각").close());
    assert_eq!(replies, ["각a\u{301}e\n"]);
}

#[test]
fn bytes_mode_reverses_any_bytes() {
    let mut net = network(with_session(
        SessionConfig::new(MAX_LINE).with_mode(Mode::Bytes),
    ));
    let talk = net.talk(Script::new().send(b"\xffab\x00\xe2\x82\n").close());
    let conversation = net.run_until_ended(talk, END_LIMIT);
    assert_eq!(conversation.reply_bytes(), [b"\x82\xe2\x00ba\xff\n"]);
}

#[test]
fn a_too_long_line_gets_an_error_and_the_next_line_is_answered() {
    let mut net = network(config());
    let long = "x".repeat(3 * MAX_LINE);
    // The long line arrives in three segments: the discarding goes on
    // across them up to its LF.
    let script = Script::new()
        .send(&long[..MAX_LINE])
        .wait_acked()
        .send(&long[MAX_LINE..2 * MAX_LINE])
        .wait_acked()
        .send(format!("{}\nok\n", &long[2 * MAX_LINE..]))
        .close();
    let replies = net.replies_to(script);
    assert_eq!(
        replies,
        [
            format!("ERR too-long line longer than {MAX_LINE} bytes\n"),
            "ko\n".to_owned()
        ]
    );
    assert_eq!(net.sim[net.server()].counters().errors.too_long, 1);
}

#[test]
fn a_line_of_exactly_the_maximum_is_answered() {
    let mut net = network(config());
    let line = "ab".repeat(MAX_LINE / 2);
    let replies = net.replies_to(Script::new().send_line(&line).close());
    assert_eq!(replies, [format!("{}\n", "ba".repeat(MAX_LINE / 2))]);
}

#[test]
fn invalid_utf8_is_reported_with_its_byte_offset_and_the_session_goes_on() {
    let mut net = network(config());
    let script = Script::new().send(b"ab\xffcd\r\nok\n").close();
    let replies = net.replies_to(script);
    assert_eq!(replies, ["ERR utf8 invalid UTF-8 at byte 2\r\n", "ko\n"]);
    assert_eq!(net.sim[net.server()].counters().errors.utf8, 1);
}

#[test]
fn an_unterminated_last_line_is_answered_after_fin_then_the_server_closes() {
    let mut net = network(config());
    let talk = net.talk(Script::new().send("one\ntwo").close());
    let conversation = net.run_until_ended(talk, END_LIMIT);
    assert_eq!(conversation.reply_text(), ["eno\n", "owt"]);
    assert!(!conversation.was_reset());
    let server = net.server();
    net.sim
        .run_until(Duration::from_secs(5), |sim| {
            sim[server].server().active_sessions() == 0
        })
        .unwrap();
    assert_eq!(net.sim[server].counters().lines, 2);
}

/// A client on a raw TCP socket that reads bytes, not lines, as soon as
/// they arrive, and notes when each batch came.
struct ByteReader {
    host: Host,
    socket: SocketHandle,
    received: Vec<u8>,
    arrivals: Vec<Instant>,
}

impl ByteReader {
    fn connect(net: &mut Net) -> PartyId<ByteReader> {
        let (host, socket) = net.raw_client(4096, 4096);
        let reader = net.sim.add(ByteReader {
            host,
            socket,
            received: Vec::new(),
            arrivals: Vec::new(),
        });
        net.sim
            .run_until(Duration::from_secs(5), |sim| {
                sim[reader].host.tcp(socket).may_send()
            })
            .unwrap();
        reader
    }

    fn send(&mut self, bytes: &[u8]) {
        assert_eq!(
            self.host.tcp(self.socket).send_slice(bytes),
            Ok(bytes.len())
        );
    }
}

impl Party for ByteReader {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        loop {
            let deadline = self.host.poll(now);
            let socket = self.host.tcp(self.socket);
            if !socket.can_recv() {
                return deadline;
            }
            while let Ok(n) = socket.recv(|data| {
                self.received.extend_from_slice(data);
                (data.len(), data.len())
            }) && n > 0
            {}
            self.arrivals.push(now);
        }
    }
}

#[test]
fn idle_flush_answers_a_message_without_newline_after_the_interval() {
    let flush = Duration::from_millis(300);
    let mut net = network(with_session(
        SessionConfig::new(MAX_LINE).with_idle_flush(Some(flush)),
    ));
    // The seed's client: a message, no newline, then wait for whatever
    // comes back. `LineClient` would wait for an LF, so read raw bytes.
    let client = ByteReader::connect(&mut net);
    net.sim[client].send(b"hello");
    let sent_at = net.sim.now();
    net.sim
        .run_until(Duration::from_secs(5), |sim| {
            !sim[client].received.is_empty()
        })
        .unwrap();
    assert_eq!(net.sim[client].received, b"olleh");
    let waited = net.sim[client].arrivals[0] - sent_at;
    // The message reaches the server 2 ms after it is sent, the answer the
    // client 2 ms after it leaves.
    assert_eq!(waited, flush + Duration::from_millis(4));
    // The session goes on.
    net.sim[client].send(b"abc\n");
    net.sim
        .run_until(Duration::from_secs(5), |sim| {
            sim[client].received.len() == 9
        })
        .unwrap();
    assert_eq!(net.sim[client].received, b"ollehcba\n");
}

#[test]
fn without_idle_flush_a_message_waits_for_its_newline() {
    let mut net = network(with_session(
        SessionConfig::new(MAX_LINE).with_idle_flush(None),
    ));
    // Raw bytes: `LineClient` would hide an unterminated answer until an
    // LF came.
    let client = ByteReader::connect(&mut net);
    net.sim[client].send(b"hello");
    net.sim.run_for(Duration::from_secs(60)).unwrap();
    assert_eq!(net.sim[client].received, b"", "answered without newline");
    net.sim[client].send(b"\n");
    net.sim
        .run_until(Duration::from_secs(5), |sim| {
            sim[client].received.len() == 6
        })
        .unwrap();
    assert_eq!(net.sim[client].received, b"olleh\n");
}

#[test]
fn an_idle_session_gets_idle_timeout_after_two_minutes_of_virtual_time() {
    let mut net = network(config());
    let started = WallClock::now();
    let talk = net.talk(Script::new().send_line("hi"));
    let conversation = net.run_until_ended(talk, END_LIMIT);
    let real = started.elapsed();
    let replies = conversation.reply_text();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0], "ih\n");
    assert!(replies[1].starts_with("ERR idle-timeout "), "{replies:?}");
    assert!(!conversation.was_reset(), "closed with a FIN");
    let idle = conversation.replies()[1].at - conversation.replies()[0].at;
    let timeout = Duration::from_secs(120);
    // Idleness starts when the client acknowledges the reply, up to its
    // 10 ms delayed-ACK time after it arrives.
    assert!(
        idle >= timeout && idle <= timeout + Duration::from_millis(20),
        "timed out after {idle} idle"
    );
    eprintln!("{idle} of virtual idleness took {real:?}");
    assert!(real < std::time::Duration::from_secs(2), "took {real:?}");
    assert_eq!(net.sim[net.server()].counters().errors.idle_timeout, 1);
}

#[test]
fn an_idle_client_keeps_its_session_when_one_keep_alive_is_lost() {
    let mut net = network(config());
    let talk = net.talk(Script::new().send_line("hi"));
    net.run_until_replies(talk, 1, REPLY_LIMIT);
    // The server probes a quiet client; lose everything sent to the client
    // around the first probe, then heal the link.
    let port = net.sim[talk.party].host().port().id();
    let keep_alive = net.sim[net.server()].server().config().tcp_timeout / 2;
    net.sim
        .run_for(keep_alive - Duration::from_secs(1))
        .unwrap();
    let dead = Faults {
        drop: 1.0,
        ..Faults::default()
    };
    net.sim.segment().set_faults(port, Direction::Rx, dead);
    net.sim.run_for(Duration::from_secs(2)).unwrap();
    net.sim
        .segment()
        .set_faults(port, Direction::Rx, Faults::default());
    // Still well within the two-minute idle timeout.
    net.sim.run_for(Duration::from_secs(30)).unwrap();
    net.continue_with(talk, Script::new().send_line("still there?"));
    net.run_until_replies(talk, 2, REPLY_LIMIT);
    let conversation = net.conversation(talk);
    assert!(!conversation.was_reset(), "the server dropped the session");
    assert_eq!(conversation.reply_text(), ["ih\n", "?ereht llits\n"]);
}

/// Fills every session with a client that got one answer and stays.
fn fill_sessions(net: &mut Net) -> Vec<Talk> {
    let talks: Vec<Talk> = (0..SESSIONS)
        .map(|_| net.talk(Script::new().send_line("ab")))
        .collect();
    for &talk in &talks {
        net.run_until_replies(talk, 1, REPLY_LIMIT);
        assert_eq!(net.conversation(talk).reply_text(), ["ba\n"]);
    }
    talks
}

#[test]
fn one_connection_too_many_gets_err_busy_and_fin() {
    let mut net = network(config());
    fill_sessions(&mut net);
    let extra = net.talk(Script::new());
    let conversation = net.run_until_ended(extra, END_LIMIT);
    let replies = conversation.reply_text();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].starts_with("ERR busy "), "{replies:?}");
    assert!(!conversation.was_reset(), "closed with a FIN");
    let counters = net.sim[net.server()].counters();
    assert_eq!((counters.connections, counters.errors.busy), (2, 1));
}

#[test]
fn a_freed_session_serves_the_next_client_at_once() {
    let mut net = network(config());
    let talks = fill_sessions(&mut net);
    net.continue_with(talks[0], Script::new().close());
    let server = net.server();
    net.sim
        .run_until(Duration::from_secs(5), |sim| {
            sim[server].server().active_sessions() == SESSIONS - 1
        })
        .unwrap();
    let freed_at = net.sim.now();
    let next = net.talk(Script::new().send_line("cd"));
    net.run_until_replies(next, 1, REPLY_LIMIT);
    let conversation = net.conversation(next);
    assert_eq!(conversation.reply_text(), ["dc\n"]);
    // ARP, handshake and one exchange: a few round trips of 4 ms.
    let served_after = conversation.replies()[0].at - freed_at;
    assert!(
        served_after <= Duration::from_millis(20),
        "served after {served_after}"
    );
    let counters = net.sim[server].counters();
    assert_eq!((counters.connections, counters.errors.busy), (3, 0));
}

/// A UDP socket on a new host, bound to port 5000.
fn udp_client(net: &mut Net) -> (PartyId<Host>, SocketHandle) {
    let mut host = net.host();
    let socket = host.add_udp_socket(8, 4096);
    host.udp(socket).bind(5000).unwrap();
    (net.sim.add(host), socket)
}

/// Sends each datagram and returns what came back within a second of
/// virtual time after the last.
fn udp_exchange(net: &mut Net, datagrams: &[&[u8]]) -> Vec<Vec<u8>> {
    let (client, socket) = udp_client(net);
    let server = (net.server_address(), PORT);
    for datagram in datagrams {
        net.sim[client]
            .udp(socket)
            .send_slice(datagram, server)
            .unwrap();
    }
    net.sim.run_for(Duration::from_secs(1)).unwrap();
    let mut answers = Vec::new();
    while let Ok((answer, _)) = net.sim[client].udp(socket).recv() {
        answers.push(answer.to_vec());
    }
    answers
}

#[test]
fn a_udp_datagram_gets_its_reversal_with_the_terminator_kept() {
    let mut net = network(config());
    let answers = udp_exchange(&mut net, &[b"abc\r\n", "각👍🏽\n".as_bytes(), b"xyz"]);
    assert_eq!(
        answers,
        [b"cba\r\n".to_vec(), "👍🏽각\n".into(), b"zyx".to_vec()]
    );
    assert_eq!(net.sim[net.server()].counters().udp_datagrams, 3);
}

#[test]
fn a_udp_error_larger_than_its_datagram_is_dropped_and_counted() {
    let mut net = network(config());
    let answers = udp_exchange(&mut net, &[b"\xff\n"]);
    assert!(answers.is_empty(), "{answers:?}");
    let counters = net.sim[net.server()].counters();
    assert_eq!((counters.udp_datagrams, counters.udp_dropped), (1, 1));
}

#[test]
fn a_udp_error_that_fits_its_datagram_is_sent() {
    let mut net = network(config());
    let mut invalid = b"0123456789".repeat(4);
    invalid.extend_from_slice(b"\xff\n");
    let too_long = vec![b'x'; MAX_LINE + 1];
    let answers = udp_exchange(&mut net, &[&invalid, &too_long]);
    assert_eq!(
        answers,
        [
            b"ERR utf8 invalid UTF-8 at byte 40\n".to_vec(),
            format!("ERR too-long line longer than {MAX_LINE} bytes\n").into_bytes()
        ]
    );
    let counters = net.sim[net.server()].counters();
    assert_eq!((counters.udp_datagrams, counters.udp_dropped), (2, 0));
}
