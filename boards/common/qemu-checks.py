#!/usr/bin/env python3
"""Checks the reversal server on a board against the SPEC with real
clients on 127.0.0.1; board-test.sh boots the firmware and runs this.

Usage: qemu-checks.py PORT OURS QEMUS BOARD_IP BOARD_MAC [--dhcp] [--chars]
  PORT:  QEMU's user network forwards TCP 127.0.0.1:PORT to the board;
  OURS, QEMUS: QEMU's socket backend sends the segment's Ethernet frames to
         UDP 127.0.0.1:OURS and takes frames on 127.0.0.1:QEMUS;
  BOARD_IP, BOARD_MAC: the board's address (as it logged it) and MAC;
  --dhcp: the address is a DHCP lease; check that it is renewed while the
         board keeps serving;
  --chars: the build reverses by scalar values (built without graphemes).
Prints one line per check and a closing "client checks: N passed, N
failed"; exits 1 on any failure.
"""

import queue
import random
import socket
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
TIMEOUT = 10.0
SESSIONS = 3
MAX_LINE = 512


class CheckFailed(Exception):
    pass


def expect(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def connect(port):
    sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


class LineReader:
    """Reads LF-terminated lines from a socket, within a deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.pending = b""

    def line(self):
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self.pending:
            if time.monotonic() > deadline:
                raise CheckFailed(f"no complete line within {TIMEOUT}s (have {self.pending!r})")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CheckFailed(f"connection closed before a line (have {self.pending!r})")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line + b"\n"

    def rest(self):
        """Everything until the server closes."""
        data = self.pending
        self.pending = b""
        while True:
            chunk = self.sock.recv(4096)
            if not chunk:
                return data
            data += chunk


def exchange(port, payload, lines):
    """Sends `payload` on a new connection and returns `lines` reply lines."""
    with connect(port) as sock:
        sock.sendall(payload)
        reader = LineReader(sock)
        return [reader.line() for _ in range(lines)]


def check_reverses_a_line(port):
    expect(exchange(port, b"hello\n", 1), [b"olleh\n"], "reply")


def check_nc_client(port):
    # netcat-openbsd: -N shuts the socket down at end of input, so nc exits
    # once the server has answered and closed.
    result = subprocess.run(
        ["nc", "-N", HOST, str(port)], input=b"hello nc\n", capture_output=True, timeout=TIMEOUT, check=False
    )
    expect((result.returncode, result.stdout), (0, b"cn olleh\n"), "nc exit status and output")


def check_keeps_crlf(port):
    expect(exchange(port, b"abc\r\nxy\n", 2), [b"cba\r\n", b"yx\n"], "replies")


def check_empty_line(port):
    expect(exchange(port, b"\n\r\n", 2), [b"\n", b"\r\n"], "replies")


# Reversal by grapheme clusters (the default build) or by scalar values
# (built without graphemes, --chars): the expected reply to `text`.
CHARS_MODE = "--chars" in sys.argv[6:]


def reversed_text(text, graphemes_reversed):
    return text[::-1] if CHARS_MODE else graphemes_reversed


def check_reverses_graphemes(port):
    text = "각👍🏽e\u0301🇰🇷"
    expected = reversed_text(text, "🇰🇷e\u0301👍🏽각") + "\n"
    expect(exchange(port, (text + "\n").encode(), 1), [expected.encode()], "reply")


def check_too_long_then_next_line(port):
    replies = exchange(port, b"a" * 600 + b"\n" + b"good\n", 2)
    if not replies[0].startswith(b"ERR too-long"):
        raise CheckFailed(f"first reply {replies[0]!r} is not ERR too-long")
    expect(replies[1], b"doog\n", "line after the long one")


def check_longest_line_fits(port):
    line = bytes(random.Random(1).choice(b"abcdefgh") for _ in range(MAX_LINE))
    expect(exchange(port, line + b"\n", 1), [line[::-1] + b"\n"], "reply")


def check_invalid_utf8_then_next_line(port):
    replies = exchange(port, b"ab\xffcd\nok\n", 2)
    expect(replies, [b"ERR utf8 invalid UTF-8 at byte 2\n", b"ko\n"], "replies")


def check_unterminated_line_at_fin(port):
    with connect(port) as sock:
        sock.sendall(b"first\nlast")
        sock.shutdown(socket.SHUT_WR)
        reader = LineReader(sock)
        expect(reader.line(), b"tsrif\n", "terminated line")
        expect(reader.rest(), b"tsal", "unterminated last line, then close")


def check_seed_style_client(port):
    """The seed's thread_client: a message with no newline, then wait for
    the answer (as many bytes as the message); the server's idle flush
    answers it, on by default."""
    with connect(port) as sock:
        for message in ("Hello World!!!".encode(), "HAHAHAHAH".encode()):
            sock.sendall(message)
            deadline = time.monotonic() + TIMEOUT
            answer = b""
            while len(answer) < len(message):
                if time.monotonic() > deadline:
                    raise CheckFailed(f"no whole answer to {message!r} within {TIMEOUT}s (have {answer!r})")
                chunk = sock.recv(4096)
                if not chunk:
                    raise CheckFailed(f"connection closed before the answer to {message!r} (have {answer!r})")
                answer += chunk
            expect(answer, message[::-1], "answer to a message with no newline")


def check_pipelined_lines(port):
    rng = random.Random(7)
    lines = [bytes(rng.choice(b"0123456789abcdef") for _ in range(rng.randrange(0, 200))) for _ in range(500)]
    payload = b"".join(line + b"\n" for line in lines)
    with connect(port) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        answer = LineReader(sock).rest()
    expect(answer, b"".join(line[::-1] + b"\n" for line in lines), f"{len(payload)}-byte pipelined answer")


# UDP cannot go through QEMU's user network: with restrict=on, libslirp drops
# every UDP datagram the guest sends (udp_input: "if (slirp->restricted)
# goto bad"), answers to forwarded ones included; only its DHCP server is
# served before that check. So board-test.sh also puts a QEMU socket backend
# on the board's network hub (Ethernet frames carried in UDP datagrams on
# 127.0.0.1), and Segment acts as a host on that segment: it answers the
# board's ARP queries, exchanges real UDP datagrams with it, and sees the
# DHCP traffic between the board and slirp.
PEER_MAC = bytes.fromhex("525400abcdef")
PEER_LAST_OCTET = 200
# An on-link address nobody owns: nothing on the segment answers ARP for it.
UNOWNED_MAC = bytes.fromhex("525400abcd01")
UNOWNED_LAST_OCTET = 201
PEER_PORT = 40000
BOARD_PORT = 8888
ETHERTYPE_IPV4 = b"\x08\x00"
ETHERTYPE_ARP = b"\x08\x06"
DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
DHCP_REQUEST = 3
DHCP_ACK = 5


def inet_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).to_bytes(2, "big")


def udp_of(frame):
    """(source IP, destination IP, source port, destination port, payload) of
    an IPv4 UDP frame, else None."""
    if frame[12:14] != ETHERTYPE_IPV4 or len(frame) < 34:
        return None
    ip = frame[14:]
    header_len = (ip[0] & 0x0F) * 4
    if ip[9] != 17:
        return None
    udp = ip[header_len : int.from_bytes(ip[2:4], "big")]
    if len(udp) < 8:
        return None
    payload = udp[8 : int.from_bytes(udp[4:6], "big")]
    return ip[12:16], ip[16:20], int.from_bytes(udp[0:2], "big"), int.from_bytes(udp[2:4], "big"), payload


def dhcp_message_type(bootp):
    """Option 53 of a BOOTP payload, else None."""
    options = bootp[240:] if bootp[236:240] == b"\x63\x82\x53\x63" else b""
    i = 0
    while i + 1 < len(options) and options[i] != 255:
        if options[i] == 0:
            i += 1
            continue
        if options[i] == 53 and options[i + 1] >= 1 and i + 2 < len(options):
            return options[i + 2]
        i += 2 + options[i + 1]
    return None


class Segment:
    """The board's Ethernet segment through QEMU's socket backend, as a host
    with PEER_MAC and the board's subnet's .200."""

    def __init__(self, ours, qemus, board_ip, board_mac):
        self.qemus = qemus
        self.board_ip = board_ip
        self.board_mac = board_mac
        self.peer_ip = board_ip[:3] + bytes([PEER_LAST_OCTET])
        self.unowned_ip = board_ip[:3] + bytes([UNOWNED_LAST_OCTET])
        self.udp_answers = queue.Queue()
        self.lock = threading.Lock()
        # The board's ARP requests for the unowned address, and UDP frames
        # it sent there.
        self.unowned_arp_requests = 0
        self.udp_to_unowned = 0
        # DHCP renewals (unicast REQUESTs from the leased address) by
        # transaction id, and how many of them slirp acknowledged.
        self.renewal_xids = set()
        self.renewals_acked = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, ours))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()

    def send(self, frame):
        self.sock.sendto(frame, (HOST, self.qemus))

    def _receive(self):
        while self.running:
            try:
                frame, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            reply = self._arp_reply_to(frame)
            if reply is not None:
                self.send(reply)
                continue
            if self._asks_for(frame, self.unowned_ip):
                with self.lock:
                    self.unowned_arp_requests += 1
                continue
            udp = udp_of(frame)
            if udp is None:
                continue
            src_ip, dst_ip, src_port, dst_port, payload = udp
            if dst_ip == self.unowned_ip:
                with self.lock:
                    self.udp_to_unowned += 1
            if (src_port, dst_port) == (DHCP_CLIENT_PORT, DHCP_SERVER_PORT) and frame[6:12] == self.board_mac:
                self._dhcp_from_board(dst_ip, payload)
            elif (src_port, dst_port) == (DHCP_SERVER_PORT, DHCP_CLIENT_PORT):
                self._dhcp_to_board(payload)
            elif frame[0:6] == PEER_MAC and (src_ip, dst_ip, src_port, dst_port) == (
                self.board_ip,
                self.peer_ip,
                BOARD_PORT,
                PEER_PORT,
            ):
                self.udp_answers.put(payload)

    @staticmethod
    def _asks_for(frame, ip):
        """Whether `frame` is an ARP request for `ip`."""
        arp = frame[14:42]
        return frame[12:14] == ETHERTYPE_ARP and len(arp) >= 28 and arp[6:8] == b"\0\x01" and arp[24:28] == ip

    def _arp_reply_to(self, frame):
        """The ARP reply if `frame` asks who has our address, else None."""
        if not self._asks_for(frame, self.peer_ip):
            return None
        arp = frame[14:42]
        asker_mac, asker_ip = arp[8:14], arp[14:18]
        reply = b"\0\x01\x08\x00\x06\x04\0\x02" + PEER_MAC + self.peer_ip + asker_mac + asker_ip
        return asker_mac + PEER_MAC + ETHERTYPE_ARP + reply

    def _dhcp_from_board(self, dst_ip, bootp):
        # A renewal is unicast to the server, from the leased address (ciaddr).
        renewal = dst_ip != b"\xff\xff\xff\xff" and bootp[12:16] == self.board_ip
        if renewal and dhcp_message_type(bootp) == DHCP_REQUEST:
            with self.lock:
                self.renewal_xids.add(bootp[4:8])

    def _dhcp_to_board(self, bootp):
        if dhcp_message_type(bootp) == DHCP_ACK and bootp[16:20] == self.board_ip:
            with self.lock:
                if bootp[4:8] in self.renewal_xids:
                    self.renewals_acked += 1

    def acked_renewals(self):
        with self.lock:
            return self.renewals_acked

    def udp_frame(self, payload, source_ip=None, source_mac=PEER_MAC):
        """A UDP datagram to the board, from us unless told otherwise."""
        source_ip = source_ip or self.peer_ip
        udp_len = (8 + len(payload)).to_bytes(2, "big")
        pseudo = source_ip + self.board_ip + b"\0\x11" + udp_len
        header = PEER_PORT.to_bytes(2, "big") + BOARD_PORT.to_bytes(2, "big") + udp_len
        udp = header + inet_checksum(pseudo + header + b"\0\0" + payload) + payload
        ip = b"\x45\0" + (20 + len(udp)).to_bytes(2, "big") + b"\0\0\0\0\x40\x11" + b"\0\0" + source_ip + self.board_ip
        ip = ip[:10] + inet_checksum(ip) + ip[12:]
        return self.board_mac + source_mac + ETHERTYPE_IPV4 + ip + udp

    def udp_exchange(self, payload, timeout=TIMEOUT):
        """Sends `payload` to the board as a UDP datagram and returns its answer."""
        self.send(self.udp_frame(payload))
        try:
            return self.udp_answers.get(timeout=timeout)
        except queue.Empty:
            raise CheckFailed(f"no UDP answer to {payload!r} within {timeout}s") from None

    def unowned_counts(self):
        with self.lock:
            return self.unowned_arp_requests, self.udp_to_unowned


def check_udp_datagram(target):
    segment = target.segment
    expect(segment.udp_exchange(b"hello"), b"olleh", "reply to a bare datagram")
    expected = reversed_text("a👍🏽b", "b👍🏽a") + "\r\n"
    expect(segment.udp_exchange("a👍🏽b\r\n".encode()), expected.encode(), "reply keeps graphemes and terminator")


# The board waits up to 3 s (the core's UDP_REPLY_TIMEOUT) for an address to
# resolve before it drops a reply; a reply held up behind one would take that
# long at least, and before the fix it never came.
PROMPT_UDP_ANSWER = 1.0


def check_udp_after_an_unowned_sender(target):
    """Issue 10: one datagram from an on-link address that never answers
    ARP must not hold up the replies to anyone else."""
    segment = target.segment
    # smoltcp sends at most one ARP request a second: let the one the
    # previous check caused age, so the board's request for the unowned
    # address goes out and its reply waits for an answer that never comes.
    time.sleep(1.1)
    segment.send(segment.udp_frame(b"from nobody\n", segment.unowned_ip, UNOWNED_MAC))
    time.sleep(0.2)
    for n in range(3):
        payload = f"after the unowned sender {n}\n".encode()
        expected = payload[:-1][::-1] + b"\n"
        expect(segment.udp_exchange(payload, PROMPT_UDP_ANSWER), expected, "prompt reply")
    time.sleep(0.5)
    arp_requests, udp_to_unowned = segment.unowned_counts()
    if arp_requests == 0:
        raise CheckFailed("the board never asked for the unowned address: did the datagram reach it?")
    expect(udp_to_unowned, 0, "UDP frames sent to the unowned address")


# The board caps its DHCP leases at 20 s for this test (feature test-lease):
# a renewal every 10 s, the lease gone after 20 s if one fails.
RENEWALS = 2
RENEWAL_WAIT = 45.0


def check_dhcp_renewals(target):
    with connect(target.port) as sock:
        reader = LineReader(sock)
        sock.sendall(b"before renewals\n")
        expect(reader.line(), b"slawener erofeb\n", "reply before the renewals")
        wanted = target.segment.acked_renewals() + RENEWALS
        deadline = time.monotonic() + RENEWAL_WAIT
        while target.segment.acked_renewals() < wanted:
            if time.monotonic() > deadline:
                seen = target.segment.acked_renewals() - wanted + RENEWALS
                raise CheckFailed(f"{seen} of {RENEWALS} lease renewals acknowledged within {RENEWAL_WAIT:.0f}s")
            time.sleep(0.2)
        sock.sendall(b"after renewals\n")
        expect(reader.line(), b"slawener retfa\n", "reply on the same connection after the renewals")
    expect(exchange(target.port, b"new\n", 1), [b"wen\n"], "reply on a new connection")


def check_sessions_and_busy(port):
    socks = []
    try:
        readers = []
        for i in range(SESSIONS):
            sock = connect(port)
            socks.append(sock)
            readers.append(LineReader(sock))
            # Answered, so the session is established before the next one.
            sock.sendall(f"session {i}\n".encode())
            expect(readers[i].line(), f"{i} noisses\n".encode(), f"session {i} first reply")
        for i, (sock, reader) in enumerate(zip(socks, readers)):
            sock.sendall(f"again {i}\n".encode())
        for i, reader in enumerate(readers):
            expect(reader.line(), f"{i} niaga\n".encode(), f"session {i} while all are open")

        try:
            extra = connect(port)
            socks.append(extra)
            busy = LineReader(extra).line()
        except OSError as error:
            raise CheckFailed(f"connection {SESSIONS + 1}: {error}") from error
        if not busy.startswith(b"ERR busy"):
            raise CheckFailed(f"connection {SESSIONS + 1} got {busy!r}, not ERR busy")
    finally:
        for sock in socks:
            sock.close()

    # Closed sessions free their slots; a connection that comes while they
    # are still closing waits in the listen backlog and gets one.
    expect(exchange(port, b"free\n", 1), [b"eerf\n"], "a new session right after closing")


BURST = 10


def check_burst_beyond_held_sessions(port):
    """Every session held, then BURST more clients at once: each waits in the
    listen backlog for the admission wait and is told ERR busy; none is
    refused (behind QEMU's user network a refusal is a connection closed
    with no reply)."""
    socks = []
    try:
        for i in range(SESSIONS):
            sock = connect(port)
            socks.append(sock)
            sock.sendall(f"held {i}\n".encode())
            expect(LineReader(sock).line(), f"{i} dleh\n".encode(), f"held session {i}")
        burst = []
        for _ in range(BURST):
            sock = connect(port)
            socks.append(sock)
            burst.append(sock)
        for sock in burst:
            sock.sendall(b"burst\n")
        for i, sock in enumerate(burst):
            try:
                reader = LineReader(sock)
                reply = reader.line()
                rest = reader.rest()
            except (CheckFailed, OSError) as error:
                raise CheckFailed(f"burst client {i} refused: {error}") from error
            if not reply.startswith(b"ERR busy") or rest:
                raise CheckFailed(f"burst client {i} got {reply + rest!r}, not ERR busy and a close")
    finally:
        for sock in socks:
            sock.close()


CHECKS = [
    ("a line comes back reversed", check_reverses_a_line),
    ("nc -N gets its line reversed", check_nc_client),
    ("CRLF terminator is kept", check_keeps_crlf),
    ("empty lines are answered with their terminator", check_empty_line),
    ("grapheme clusters survive reversal (scalar values with --chars)", check_reverses_graphemes),
    ("600-byte line gets ERR too-long, next line answered", check_too_long_then_next_line),
    ("a 512-byte line is answered", check_longest_line_fits),
    ("invalid UTF-8 gets ERR utf8 with offset, next line answered", check_invalid_utf8_then_next_line),
    ("unterminated last line answered at FIN, then close", check_unterminated_line_at_fin),
    ("a message with no newline is answered (the seed's client)", check_seed_style_client),
    ("500 pipelined lines answered in order", check_pipelined_lines),
    (f"{SESSIONS} concurrent sessions answered, one more gets ERR busy", check_sessions_and_busy),
    (f"{SESSIONS} sessions held, a burst of {BURST} more clients: all ERR busy, none refused",
     check_burst_beyond_held_sessions),
]


class Target:
    """Where the checks reach the board."""

    def __init__(self, port, segment):
        self.port = port
        self.segment = segment


SEGMENT_CHECKS = [
    ("UDP datagrams come back reversed", check_udp_datagram),
    ("a datagram from an unowned on-link address holds up no later UDP reply", check_udp_after_an_unowned_sender),
]

DHCP_CHECKS = [
    (f"{RENEWALS} DHCP lease renewals acknowledged, a session open across them still answered", check_dhcp_renewals),
]


def main():
    port = int(sys.argv[1])
    ours, qemus = int(sys.argv[2]), int(sys.argv[3])
    board_ip = socket.inet_aton(sys.argv[4])
    board_mac = bytes.fromhex(sys.argv[5].replace(":", ""))
    dhcp = "--dhcp" in sys.argv[6:]
    segment = Segment(ours, qemus, board_ip, board_mac)
    target = Target(port, segment)
    checks = [(name, lambda target, check=check: check(target.port)) for name, check in CHECKS]
    checks += SEGMENT_CHECKS + (DHCP_CHECKS if dhcp else [])
    passed = failed = 0
    try:
        for name, check in checks:
            try:
                check(target)
            except (CheckFailed, OSError, subprocess.TimeoutExpired) as error:
                print(f"FAIL {name}: {error}", flush=True)
                failed += 1
            else:
                print(f"ok   {name}", flush=True)
                passed += 1
    finally:
        segment.close()
    print(f"client checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
