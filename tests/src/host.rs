//! A ready-made host: interface, sockets and port in one.

use core::fmt;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{IpCidr, IpEndpoint};

use crate::segment::Port;
use crate::sim::Party;

/// A smoltcp host on a [`Port`]: its own `Interface` (the port's MAC,
/// addresses given at creation) and a `SocketSet` with owned buffers.
///
/// `Host` is a [`Party`] that only runs its interface; a test drives the
/// sockets between runs or from [`Sim::run_until`](crate::Sim::run_until)'s
/// closure, or wraps the host in a party of its own that serves the sockets
/// before polling.
///
/// ```
/// use reversal_sim::{Host, PortConfig, Segment};
/// use smoltcp::time::Instant;
/// use smoltcp::wire::{IpAddress, IpCidr};
///
/// let segment = Segment::new(0);
/// let mut host = Host::new(
///     segment.attach(PortConfig::default()),
///     &[IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24)],
///     Instant::ZERO,
/// );
/// let listener = host.add_tcp_socket(4096, 4096);
/// host.tcp(listener).listen(8888).unwrap();
/// assert_eq!(host.poll(Instant::ZERO), None); // a listener has no timer
/// ```
pub struct Host {
    port: Port,
    iface: Interface,
    sockets: SocketSet<'static>,
}

impl Host {
    /// A host on `port` with `addresses`, its interface created at `now`
    /// from [`Port::interface_config`].
    ///
    /// # Panics
    ///
    /// If there are more addresses than smoltcp's interface holds
    /// (its `iface-max-addr-count` feature, 2 by default).
    pub fn new(mut port: Port, addresses: &[IpCidr], now: Instant) -> Host {
        let mut iface = Interface::new(port.interface_config(), &mut port, now);
        iface.update_ip_addrs(|slots| {
            for &address in addresses {
                slots
                    .push(address)
                    .expect("more addresses than the interface holds");
            }
        });
        Host {
            port,
            iface,
            sockets: SocketSet::new(Vec::new()),
        }
    }

    /// The host's port.
    pub fn port(&self) -> &Port {
        &self.port
    }

    /// The host's interface, e.g. to add routes.
    pub fn interface(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The host's sockets.
    pub fn sockets(&mut self) -> &mut SocketSet<'static> {
        &mut self.sockets
    }

    /// Adds a TCP socket with receive and send buffers of the given sizes.
    pub fn add_tcp_socket(&mut self, rx_len: usize, tx_len: usize) -> SocketHandle {
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx_len]),
            tcp::SocketBuffer::new(vec![0; tx_len]),
        );
        self.sockets.add(socket)
    }

    /// Adds a UDP socket whose receive and send buffers each hold up to
    /// `packets` datagrams and `payload_len` bytes in all.
    pub fn add_udp_socket(&mut self, packets: usize, payload_len: usize) -> SocketHandle {
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; packets],
                vec![0; payload_len],
            )
        };
        self.sockets.add(udp::Socket::new(buffer(), buffer()))
    }

    /// The TCP socket behind `handle`.
    ///
    /// # Panics
    ///
    /// If `handle` is not a TCP socket of this host.
    pub fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut(handle)
    }

    /// The UDP socket behind `handle`.
    ///
    /// # Panics
    ///
    /// If `handle` is not a UDP socket of this host.
    pub fn udp(&mut self, handle: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut(handle)
    }

    /// Opens a TCP connection from `local_port` to `remote`, which a
    /// socket cannot do without its interface's context.
    ///
    /// # Errors
    ///
    /// As [`tcp::Socket::connect`].
    pub fn tcp_connect(
        &mut self,
        handle: SocketHandle,
        remote: impl Into<IpEndpoint>,
        local_port: u16,
    ) -> Result<(), tcp::ConnectError> {
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        socket.connect(self.iface.context(), remote, local_port)
    }

    /// Runs the interface at `now` and returns when it next needs polling.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.iface.poll(now, &mut self.port, &mut self.sockets);
        self.iface.poll_at(now, &self.sockets)
    }
}

impl Party for Host {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        Host::poll(self, now)
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("port", &self.port)
            .field("addresses", &self.iface.ip_addrs())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{PortConfig, Segment};
    use smoltcp::wire::IpAddress;

    fn host(segment: &Segment, last_octet: u8) -> Host {
        Host::new(
            segment.attach(PortConfig::default()),
            &[IpCidr::new(IpAddress::v4(10, 0, 0, last_octet), 24)],
            Instant::ZERO,
        )
    }

    #[test]
    fn interface_uses_the_port_mac_and_given_address() {
        let segment = Segment::new(0);
        let mut host = host(&segment, 7);
        let mac = host.port().mac();
        assert_eq!(host.interface().hardware_addr(), mac.into());
        assert_eq!(
            host.interface().ip_addrs(),
            &[IpCidr::new(IpAddress::v4(10, 0, 0, 7), 24)]
        );
    }

    #[test]
    fn connecting_sends_an_arp_request_first() {
        let segment = Segment::new(0);
        segment.enable_capture();
        let mut client = host(&segment, 1);
        let socket = client.add_tcp_socket(1024, 1024);
        client
            .tcp_connect(socket, (IpAddress::v4(10, 0, 0, 2), 8888), 40000)
            .unwrap();
        client.poll(Instant::ZERO);
        assert_eq!(segment.stats().transmitted, 1);
        // After the pcap headers (24 + 16 bytes) and two MACs, the EtherType.
        assert_eq!(segment.pcap().unwrap()[52..54], [0x08, 0x06], "ARP");
        assert_eq!(client.tcp(socket).state(), tcp::State::SynSent);
    }

    #[test]
    #[should_panic(expected = "more addresses")]
    fn too_many_addresses_panic() {
        let segment = Segment::new(0);
        let addresses: Vec<_> = (1..=8)
            .map(|n| IpCidr::new(IpAddress::v4(10, 0, 0, n), 24))
            .collect();
        Host::new(
            segment.attach(PortConfig::default()),
            &addresses,
            Instant::ZERO,
        );
    }
}
