//! SYNs from forged on-link sources, written onto the TAP's kernel side:
//! silent half-open handshakes and SYN floods for the admission workloads.
//!
//! Every source is an address of the TAP's own /24 that nobody owns (not
//! the server's, not the kernel's) with a random locally administered MAC,
//! so the server's SYN-ACKs wait on ARP answers that never come, and every
//! frame stays on the benchmark's TAP in its own network namespace. Every
//! batch is bounded in count and time.

use std::io;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

use crate::sys::PacketSocket;

/// Writes SYNs from forged sources on one subnet to one server.
#[derive(Debug)]
pub struct ForgedSyns {
    socket: PacketSocket,
    server: Ipv4Address,
    server_mac: EthernetAddress,
    port: u16,
    /// Host numbers of the /24 that nobody owns.
    free_hosts: Vec<u8>,
    random: u64,
}

impl ForgedSyns {
    /// SYNs to `server` (at `server_mac`) port `port`, from addresses of
    /// its /24 other than `owned`, written onto `interface`.
    ///
    /// # Errors
    ///
    /// The packet socket cannot be opened (needs `CAP_NET_RAW`).
    pub fn new(
        interface: &str,
        server: Ipv4Addr,
        server_mac: EthernetAddress,
        port: u16,
        owned: &[Ipv4Addr],
    ) -> io::Result<ForgedSyns> {
        let free_hosts = (2..255)
            .filter(|&host| {
                let [a, b, c, _] = server.octets();
                let address = Ipv4Addr::new(a, b, c, host);
                address != server && !owned.contains(&address)
            })
            .collect();
        Ok(ForgedSyns {
            socket: PacketSocket::bind(interface)?,
            server,
            server_mac,
            port,
            free_hosts,
            random: 0x9E37_79B9_7F4A_7C15,
        })
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: plenty for varied addresses and ports.
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        self.random.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// One SYN from a forged source.
    fn frame(&mut self) -> Vec<u8> {
        let roll = self.next_random();
        let host = self.free_hosts[(roll % self.free_hosts.len() as u64) as usize];
        let [a, b, c, _] = self.server.octets();
        let source = Ipv4Address::new(a, b, c, host);
        let mut mac = [0x02, 0, 0, 0, 0, 0];
        mac[1..].copy_from_slice(&self.next_random().to_be_bytes()[..5]);
        let tcp = TcpRepr {
            src_port: 1024 + (roll >> 16) as u16 % 64_000,
            dst_port: self.port,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber((roll >> 32) as i32),
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
            dst_addr: self.server,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: EthernetAddress(mac),
            dst_addr: self.server_mac,
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut bytes = vec![0; ethernet.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        ethernet.emit(&mut frame);
        let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
        let checksums = ChecksumCapabilities::default();
        ip.emit(&mut packet, &checksums);
        tcp.emit(
            &mut TcpPacket::new_unchecked(packet.payload_mut()),
            &IpAddress::Ipv4(source),
            &IpAddress::Ipv4(self.server),
            &checksums,
        );
        bytes
    }

    /// Writes `count` SYNs at once (paced only so that the kernel's queue
    /// toward the server, 1,000 frames, does not drop them).
    ///
    /// # Errors
    ///
    /// Writing a frame failed.
    pub fn burst(&mut self, count: u32) -> io::Result<()> {
        for n in 0..count {
            let frame = self.frame();
            self.socket.send(&frame)?;
            if n % 100 == 99 {
                thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }

    /// Writes `rate` SYNs a second for `duration`, evenly; returns how many
    /// it wrote.
    ///
    /// # Errors
    ///
    /// Writing a frame failed.
    pub fn flood(&mut self, rate: u32, duration: Duration) -> io::Result<u64> {
        let start = Instant::now();
        let gap = Duration::from_secs(1) / rate;
        let mut sent = 0u64;
        while start.elapsed() < duration {
            let due = (start.elapsed().as_nanos() / gap.as_nanos()) as u64 + 1;
            while sent < due {
                let frame = self.frame();
                self.socket.send(&frame)?;
                sent += 1;
            }
            thread::sleep(gap.max(Duration::from_millis(1)));
        }
        Ok(sent)
    }
}
