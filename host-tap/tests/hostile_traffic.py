"""Hostile traffic for host-tap's TAP tests, built with scapy.

Run by host-tap/tests/hostile.rs inside the test's own network namespace,
never elsewhere: it writes frames onto the kernel's side of the TAP, so they
reach host-tap and nothing else. Every spoofed address is inside the test's
subnet (192.168.69.0/24, fdaa::/64).

Protocol on standard input and output: prints "ready" once scapy is loaded,
then for each batch name read from a line of standard input sends that batch
and prints "sent NAME FRAMES SECONDS". Ends at end of input. Every batch is a
fixed number of frames drawn from a seeded generator, so a run repeats.

Usage: hostile_traffic.py IFACE SERVER_MAC KERNEL_MAC SEED
"""

import random
import sys
import time

from scapy.all import (
    ARP,
    ICMP,
    IP,
    TCP,
    UDP,
    Ether,
    ICMPv6EchoRequest,
    IPOption,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Raw,
    conf,
)

SERVER = "192.168.69.1"
KERNEL = "192.168.69.100"
SERVER6 = "fdaa::1"
KERNEL6 = "fdaa::100"
PORT = 8888
# The kernel's port the fragmented-datagram batches come from; the test
# listens there for the reply.
FRAGMENTED_PORT = 40001


class Traffic:
    def __init__(self, iface, server_mac, kernel_mac, seed):
        self.rng = random.Random(seed)
        self.server_mac = server_mac
        self.kernel_mac = kernel_mac
        self.socket = conf.L2socket(iface=iface)

    # -- addresses -------------------------------------------------------

    def spoofed(self):
        """An on-link IPv4 address nobody owns (not the server, not the kernel)."""
        return "192.168.69.%d" % self.rng.choice(
            [h for h in range(2, 255) if h != 100]
        )

    def spoofed6(self):
        return "fdaa::%x" % self.rng.randrange(0x200, 0xffff)

    def mac(self):
        octets = [0x02] + [self.rng.randrange(256) for _ in range(5)]
        return ":".join("%02x" % o for o in octets)

    def junk(self, low, high):
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(low, high)))

    def port(self):
        return self.rng.randrange(1024, 65536)

    # -- frames ----------------------------------------------------------

    def from_kernel(self, packet):
        """A frame from the kernel's side: its replies resolve, so a packet
        the server accepts cannot leave a reply waiting for a neighbour."""
        return Ether(src=self.kernel_mac, dst=self.server_mac) / packet

    def from_spoofed(self, packet):
        return Ether(src=self.mac(), dst=self.server_mac) / packet

    def valid_packet(self):
        """A packet the server would take, from the kernel's address."""
        kind = self.rng.randrange(5)
        if kind == 0:
            return IP(src=KERNEL, dst=SERVER) / TCP(sport=self.port(), dport=PORT, flags="S")
        if kind == 1:
            return IP(src=KERNEL, dst=SERVER) / UDP(sport=self.port(), dport=PORT) / b"abc\n"
        if kind == 2:
            return IP(src=KERNEL, dst=SERVER) / ICMP() / self.junk(0, 64)
        if kind == 3:
            return IPv6(src=KERNEL6, dst=SERVER6) / UDP(sport=self.port(), dport=PORT) / b"abc\n"
        return IP(src=KERNEL, dst=SERVER, options=IPOption(b"\x94\x04\x00\x00")) / TCP(
            sport=self.port(), dport=PORT, flags="PA", seq=self.rng.randrange(2**32)
        ) / b"line\n"

    # -- batches (each returns a list of frames as bytes) ---------------

    def bad_checksums(self, count=1000):
        frames = []
        for _ in range(count):
            packet = self.valid_packet()
            layer = self.rng.choice([layer for layer in (IP, TCP, UDP, ICMP) if packet.haslayer(layer)])
            good = packet.__class__(bytes(packet))[layer].chksum
            packet[layer].chksum = (good + self.rng.randrange(1, 0xFFFF)) & 0xFFFF
            frames.append(bytes(self.from_kernel(packet)))
        return frames

    def truncated(self, count=1000):
        frames = []
        for _ in range(count):
            whole = bytes(self.from_kernel(self.valid_packet()))
            frames.append(whole[: self.rng.randrange(1, len(whole))])
        return frames

    def lying_headers(self, count=1000):
        frames = []
        for _ in range(count):
            kind = self.rng.randrange(5)
            body = self.junk(0, 80)
            if kind == 0:
                packet = IP(src=KERNEL, dst=SERVER, ihl=self.rng.choice([0, 1, 4, 6, 10, 15])) / UDP(dport=PORT) / body
            elif kind == 1:
                packet = IP(src=KERNEL, dst=SERVER, len=self.rng.randrange(0, 65536)) / UDP(dport=PORT) / body
            elif kind == 2:
                packet = IP(src=KERNEL, dst=SERVER) / UDP(sport=self.port(), dport=PORT, len=self.rng.randrange(0, 65536)) / body
            elif kind == 3:
                packet = IP(src=KERNEL, dst=SERVER) / TCP(
                    sport=self.port(), dport=PORT, dataofs=self.rng.choice([0, 1, 4, 15]), flags="S"
                ) / body
            else:
                packet = IPv6(src=KERNEL6, dst=SERVER6, plen=self.rng.randrange(0, 65536)) / UDP(dport=PORT) / body
            frames.append(bytes(self.from_kernel(packet)))
        return frames

    def options_garbage(self, count=1000):
        frames = []
        for _ in range(count):
            garbage = self.junk(1, 40)
            if self.rng.randrange(2):
                # Garbage as the options: the header length covers it.
                garbage = garbage + b"\x00" * (-len(garbage) % 4)
                datagram = bytes(IP(src=KERNEL, dst=SERVER) / UDP(sport=self.port(), dport=PORT) / b"opt\n")[20:]
                packet = IP(src=KERNEL, dst=SERVER, proto=17, ihl=5 + len(garbage) // 4) / Raw(garbage + datagram)
            else:
                garbage = garbage[:40] + b"\x00" * (-len(garbage[:40]) % 4)
                tcp = TCP(
                    sport=self.port(),
                    dport=PORT,
                    flags=self.rng.choice(["S", "SA", "A", "PA", "F", "R"]),
                    dataofs=5 + len(garbage) // 4,
                    seq=self.rng.randrange(2**32),
                )
                packet = IP(src=KERNEL, dst=SERVER) / tcp / Raw(garbage)
            frames.append(bytes(self.from_kernel(packet)))
        return frames

    def fragments(self, count=1000):
        frames = []
        while len(frames) < count:
            ident = self.rng.randrange(65536)
            datagram = bytes(UDP(sport=self.port(), dport=PORT) / (b"x" * self.rng.randint(16, 1400) + b"\n"))
            kind = self.rng.randrange(4)
            if kind == 0:  # tiny: 8-byte fragments of a whole datagram
                pieces = [(o, datagram[o : o + 8]) for o in range(0, min(len(datagram), 256), 8)]
                for i, (offset, piece) in enumerate(pieces):
                    flags = "MF" if i + 1 < len(pieces) else 0
                    fragment = IP(src=KERNEL, dst=SERVER, id=ident, proto=17, flags=flags, frag=offset // 8)
                    frames.append(bytes(self.from_kernel(fragment / Raw(piece))))
            elif kind == 1:  # overlapping
                frames.append(bytes(self.from_kernel(IP(src=KERNEL, dst=SERVER, id=ident, proto=17, flags="MF", frag=0) / Raw(datagram[:64]))))
                frames.append(bytes(self.from_kernel(IP(src=KERNEL, dst=SERVER, id=ident, proto=17, frag=4) / Raw(self.junk(40, 200)))))
            elif kind == 2:  # never completed: a first fragment only
                frames.append(bytes(self.from_kernel(IP(src=KERNEL, dst=SERVER, id=ident, proto=17, flags="MF", frag=0) / Raw(datagram[:200]))))
            else:  # oversized: the last fragment ends past 65535 bytes
                frames.append(bytes(self.from_kernel(IP(src=KERNEL, dst=SERVER, id=ident, proto=17, frag=8189) / Raw(self.junk(100, 400)))))
        return frames[:count]

    def fragmented_datagram(self, corrupt):
        """One 2,001-byte datagram in two fragments from the kernel's address
        and port FRAGMENTED_PORT; with `corrupt`, one payload byte of the
        second fragment flipped, so that only the whole datagram's UDP
        checksum, checked after reassembly, tells."""
        # Built under its IP header, for scapy to compute the checksum.
        whole = IP(src=KERNEL, dst=SERVER) / UDP(sport=FRAGMENTED_PORT, dport=PORT) / (b"f" * 2000 + b"\n")
        datagram = bytearray(bytes(whole)[20:])
        assert datagram[6:8] != b"\0\0", "a UDP checksum to check"
        if corrupt:
            datagram[-2] ^= 0x01
        ident = self.rng.randrange(65536)
        return [
            bytes(self.from_kernel(IP(src=KERNEL, dst=SERVER, id=ident, proto=17, flags=flags, frag=offset // 8)
                                   / Raw(bytes(datagram[offset:end]))))
            for offset, end, flags in [(0, 1480, "MF"), (1480, len(datagram), 0)]
        ]

    def ipv6_extension_chains(self, count=500):
        frames = []
        headers = [
            lambda: IPv6ExtHdrHopByHop(),
            lambda: IPv6ExtHdrDestOpt(),
            lambda: IPv6ExtHdrRouting(type=self.rng.choice([0, 2, 3, 4, 200]), segleft=self.rng.randrange(4)),
            lambda: IPv6ExtHdrFragment(offset=self.rng.randrange(8192), m=self.rng.randrange(2), id=self.rng.randrange(2**32)),
            # Options of garbage: type, length and data all random.
            lambda: IPv6ExtHdrDestOpt(autopad=0, options=self.junk(6, 14)),
        ]
        for _ in range(count):
            packet = IPv6(src=KERNEL6, dst=SERVER6)
            for _ in range(self.rng.randint(1, 8)):
                packet = packet / self.rng.choice(headers)()
            end = self.rng.randrange(4)
            if end == 0:
                packet = packet / UDP(sport=self.port(), dport=PORT) / b"six\n"
            elif end == 1:
                packet = packet / TCP(sport=self.port(), dport=PORT, flags="S")
            elif end == 2:
                packet = packet / ICMPv6EchoRequest(data=self.junk(0, 32))
            else:
                packet = packet / Raw(self.junk(0, 64))
            frames.append(bytes(self.from_kernel(packet)))
        return frames

    def arp_flood(self, count=2000):
        frames = []
        for _ in range(count):
            sender, mac = self.spoofed(), self.mac()
            kind = self.rng.randrange(4)
            if kind == 0:  # who-has the server
                arp = ARP(op=1, hwsrc=mac, psrc=sender, pdst=SERVER)
            elif kind == 1:  # unsolicited reply
                arp = ARP(op=2, hwsrc=mac, psrc=sender, hwdst=self.server_mac, pdst=SERVER)
            elif kind == 2:  # gratuitous
                arp = ARP(op=1, hwsrc=mac, psrc=sender, pdst=sender)
            else:  # junk operation and lengths
                arp = ARP(op=self.rng.randrange(65536), hwlen=self.rng.randrange(256), plen=self.rng.randrange(256),
                          hwsrc=mac, psrc=sender, pdst=SERVER)
            frames.append(bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / arp))
        return frames

    def icmp_flood(self, count=1000):
        frames = []
        for _ in range(count):
            kind = self.rng.randrange(4)
            if kind == 0:
                packet = self.from_spoofed(IP(src=self.spoofed(), dst=SERVER) / ICMP() / self.junk(0, 1400))
            elif kind == 1:
                packet = self.from_kernel(IP(src=KERNEL, dst=SERVER) / ICMP() / self.junk(0, 1400))
            elif kind == 2:  # errors quoting a packet of the server's
                quoted = IP(src=SERVER, dst=KERNEL) / UDP(sport=PORT, dport=self.port())
                packet = self.from_kernel(
                    IP(src=KERNEL, dst=SERVER) / ICMP(type=self.rng.choice([3, 4, 5, 11, 12]), code=self.rng.randrange(16)) / quoted
                )
            else:
                packet = self.from_spoofed(IPv6(src=self.spoofed6(), dst=SERVER6) / ICMPv6EchoRequest(data=self.junk(0, 1200)))
            frames.append(bytes(packet))
        return frames

    def random_bytes(self, count=2000):
        frames = []
        for _ in range(count):
            body = self.junk(1, 1500)  # a frame of at most 1514 bytes
            if self.rng.randrange(2):
                ethertype = self.rng.choice([b"\x08\x00", b"\x86\xdd", b"\x08\x06"])
                body = bytes.fromhex(self.server_mac.replace(":", "")) + body[:6].ljust(6, b"\x02") + ethertype + body[6:]
            frames.append(body)
        return frames

    def syn_flood(self, count=3000):
        return [
            bytes(self.from_spoofed(IP(src=self.spoofed(), dst=SERVER) / TCP(
                sport=self.port(), dport=PORT, flags="S", seq=self.rng.randrange(2**32)
            )))
            for _ in range(count)
        ]

    def silent_syns(self, count=24):
        """Half-open handshakes that go silent: SYNs from spoofed on-link
        senders that never answer ARP (issue 12's third row)."""
        return self.syn_flood(count)

    def long_syn_flood(self, count=50000):
        """Issue 12's fourth row: 50,000 spoofed SYNs, sent at 2,500 a second
        (20 s) by `send`."""
        return self.syn_flood(count)

    def udp_flood(self, count=3000):
        return [
            bytes(self.from_spoofed(IP(src=self.spoofed(), dst=SERVER) / UDP(sport=self.port(), dport=PORT) / b"flood\n"))
            for _ in range(count)
        ]

    def one_unowned_datagram(self):
        """Issue 10's reproducer: one datagram from an on-link address that
        never answers ARP."""
        return [bytes(Ether(src="02:00:00:00:00:32", dst=self.server_mac)
                      / IP(src="192.168.69.50", dst=SERVER) / UDP(sport=40000, dport=PORT) / b"hi\n")]

    BATCHES = {
        "bad-checksums": bad_checksums,
        "truncated": truncated,
        "lying-headers": lying_headers,
        "options-garbage": options_garbage,
        "fragments": fragments,
        "ipv6-extension-chains": ipv6_extension_chains,
        "arp-flood": arp_flood,
        "icmp-flood": icmp_flood,
        "random-bytes": random_bytes,
        "syn-flood": syn_flood,
        "silent-syns": silent_syns,
        "long-syn-flood": long_syn_flood,
        "udp-flood": udp_flood,
        "one-unowned-datagram": one_unowned_datagram,
        "fragmented-datagram": lambda self: self.fragmented_datagram(corrupt=False),
        "corrupt-fragmented-datagram": lambda self: self.fragmented_datagram(corrupt=True),
    }

    # Frames a second of the batches sent at a set rate; the others go out
    # as fast as the pacing below allows.
    RATES = {"long-syn-flood": 2500}

    def send(self, name):
        frames = self.BATCHES[name](self)
        rate = self.RATES.get(name)
        start = time.monotonic()
        for i, frame in enumerate(frames):
            self.socket.send(frame)
            if rate is not None:
                ahead = start + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            # At most about 20,000 frames a second, so that the kernel's
            # queue toward host-tap (1000 frames) does not drop them.
            elif i % 100 == 99:
                time.sleep(0.005)
        return len(frames), time.monotonic() - start


def main():
    iface, server_mac, kernel_mac, seed = sys.argv[1:5]
    traffic = Traffic(iface, server_mac, kernel_mac, int(seed))
    print("ready", flush=True)
    for line in sys.stdin:
        name = line.strip()
        frames, seconds = traffic.send(name)
        print("sent %s %d %.3f" % (name, frames, seconds), flush=True)


if __name__ == "__main__":
    main()
