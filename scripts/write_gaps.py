#!/usr/bin/env python3
"""Gaps a server sees inside one write and between writes, on the TAP:
the figures behind the idle flush's default delay.

Run by scripts/write-gaps, which starts host-tap with --pcap inside a
network namespace of its own. Usage:

  write_gaps.py clients HOST PORT LOG     run the workloads, log their writes
  write_gaps.py report PCAP LOG           analyse the capture, print the table

Every client is Linux's TCP (Python sockets), the sender whose pushes (PSH)
the server reads. Each workload logs, per connection (its local port), the
stream offsets where its writes ended. The report reads the capture of the
server's side with tshark and prints, per workload: writes, data segments,
pushes inside a write, the largest gap between two segments of one write,
the largest gap after a push inside a write (what the flush must outwait),
and the gaps at the write boundaries of a line written in pieces.
"""

import json
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 10.0


def connect(host, port):
    """A blocking socket: each sendall is one send() system call, one write
    (with a timeout Python makes the socket non-blocking and may split a
    sendall into several writes). scripts/write-gaps bounds the whole run."""
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.settimeout(None)
    return sock


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"server closed after {len(data)} of {count} bytes")
        data += chunk
    return data


class Log:
    """Per workload and connection (its local port): the stream offsets
    where its writes ended, and which of those lie inside a line."""

    def __init__(self):
        self.workloads = {}

    def connection(self, workload, sock):
        writes = {"ends": [], "inside_lines": []}
        self.workloads.setdefault(workload, {})[str(sock.getsockname()[1])] = writes
        return writes


def lock_step(host, port, log):
    """One line per write, each waiting for its reply, of several sizes."""
    for size in (10, 100, 1000, 1400, 3000, 8000):
        with connect(host, port) as sock:
            writes = log.connection(f"one line per write, {size} B, lock-step", sock)
            offset = 0
            for n in range(40):
                line = (b"%06d" % n + b"x" * size)[:size] + b"\n"
                sock.sendall(line)
                offset += len(line)
                writes["ends"].append(offset)
                read_exactly(sock, len(line))


def pipelined(host, port, log):
    """Writes of 64 KiB of 100-byte lines, replies read by a thread: the
    writes are larger than half the server's window and than what the
    socket buffers hold, so Linux pushes inside them."""
    with connect(host, port) as sock:
        writes = log.connection("64 KiB writes of lines, pipelined", sock)
        line = b"y" * 99 + b"\n"
        block = line * (65536 // len(line))
        count = 40
        reader = threading.Thread(target=read_exactly, args=(sock, count * len(block)))
        reader.start()
        offset = 0
        for _ in range(count):
            sock.sendall(block)
            offset += len(block)
            writes["ends"].append(offset)
        reader.join()


def pieces(host, port, log):
    """A line written as three back-to-back writes, lock-step, with
    Nagle's algorithm on (the default) and off: the pauses at its write
    boundaries are a program's, not a person's."""
    for nodelay in (False, True):
        with connect(host, port) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, nodelay)
            name = "a line in three writes, back to back" + (", TCP_NODELAY" if nodelay else "")
            writes = log.connection(name, sock)
            offset = 0
            for n in range(200):
                for i, piece in enumerate((b"%04d" % n, b" in ", b"pieces\n")):
                    sock.sendall(piece)
                    offset += len(piece)
                    writes["ends"].append(offset)
                    if i < 2:
                        writes["inside_lines"].append(offset)
                read_exactly(sock, 15)


def netcat_pieces(host, port, log):
    """The same from a shell: printf's writes into a pipe, which nc
    forwards, one line of three pieces per connection."""
    for _ in range(40):
        subprocess.run(
            ["sh", "-c", f"(printf ab; printf cd; printf 'ef\\n') | nc -N {host} {port} >/dev/null"],
            check=True,
            timeout=TIMEOUT,
        )
    # nc's local ports are not known here: the report takes the connections
    # no other workload logged ("*"), each with these write ends.
    writes = {"ends": [2, 4, 7], "inside_lines": [2, 4]}
    log.workloads["a line in three writes, printf | nc"] = {"*": writes}


def clients(host, port, log_path):
    log = Log()
    lock_step(host, port, log)
    pipelined(host, port, log)
    pieces(host, port, log)
    netcat_pieces(host, port, log)
    with open(log_path, "w") as out:
        json.dump(log.workloads, out)


def segments(pcap, server_port):
    """Client-to-server data segments by client port: (time, start, end,
    push), stream offsets from the first data byte."""
    fields = ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "tcp.seq", "tcp.len", "tcp.flags.push"]
    out = subprocess.run(
        ["tshark", "-r", pcap, "-Y", f"tcp.dstport == {server_port} && tcp.len > 0", "-T", "fields"]
        + [arg for field in fields for arg in ("-e", field)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    by_port = {}
    for row in out.splitlines():
        when, src, _dst, seq, length, push = row.split("\t")
        start = int(seq) - 1
        by_port.setdefault(src, []).append(
            (float(when), start, start + int(length), push in ("1", "True"))
        )
    return by_port


def analyse(segs, writes):
    """(writes, segments, pushes inside a write, gaps inside a write,
    gaps after a push inside a write, gaps at write boundaries inside a
    line) of one connection's segments, retransmissions left out."""
    ends = writes["ends"]
    ends_set = set(ends)
    inside_lines = set(writes["inside_lines"])
    seen_end = 0
    inside = []
    after_push = []
    boundary = []
    pushes_inside = 0
    previous = None
    for when, start, end, push in sorted(segs):
        if end <= seen_end:
            continue  # a retransmission
        seen_end = end
        if previous is not None:
            gap = when - previous[0]
            if previous[1] in inside_lines:
                boundary.append(gap)
            elif previous[1] not in ends_set:
                inside.append(gap)
                if previous[2]:
                    after_push.append(gap)
        if push and end not in ends_set:
            pushes_inside += 1
        previous = (when, end, push)
    return len(ends), len(segs), pushes_inside, inside, after_push, boundary


def ms(values):
    return f"{max(values) * 1000:.3f}" if values else "-"


def report(pcap, log_path, server_port=8888):
    with open(log_path) as f:
        workloads = json.load(f)
    by_port = segments(pcap, server_port)
    logged = {port for conns in workloads.values() for port in conns if port != "*"}
    print("| workload | writes | segments | pushes inside a write | largest gap inside a write (ms) "
          "| largest gap after a push inside a write (ms) "
          "| gaps at a write boundary inside a line: median / largest (ms) |")
    print("|---|---|---|---|---|---|---|")
    for name, conns in workloads.items():
        totals = [0, 0, 0, [], [], []]
        if "*" in conns:
            runs = [(port, conns["*"]) for port in by_port if port not in logged]
        else:
            runs = list(conns.items())
        for port, ends in runs:
            result = analyse(by_port.get(port, []), ends)
            for i in range(3):
                totals[i] += result[i]
            for i in range(3, 6):
                totals[i] += result[i]
        boundary = sorted(totals[5])
        median = f"{boundary[len(boundary) // 2] * 1000:.3f}" if boundary else "-"
        print(
            f"| {name} | {totals[0]} | {totals[1]} | {totals[2]} | {ms(totals[3])} | {ms(totals[4])} "
            f"| {median} / {ms(boundary)} |"
        )


def main():
    if sys.argv[1] == "clients":
        clients(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
