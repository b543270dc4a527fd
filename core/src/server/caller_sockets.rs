//! Sockets of the caller's own beside the server's: a DHCP client, a DNS
//! resolver, an SNTP client.
//!
//! smoltcp polls one `SocketSet` per interface poll, and the server owns
//! its set, so a socket the caller needs on the same interface has to live
//! in that set. [`ServerConfig::caller_sockets`] keeps that many of the
//! resources' spare socket slots free of busy sockets; [`Server::add_socket`] fills them, and
//! [`Server::socket_mut`] reaches them between polls. [`Server::poll`]
//! polls them with the server's sockets and its deadline includes theirs.
//! The server never reads, closes or shuts them down: they are the caller's.
//!
//! A UDP socket of the caller's keeps smoltcp's own queueing: a datagram to
//! an address that never resolves stays at the head of its send queue for
//! good, and every datagram queued behind it with it (the server's replies
//! use sockets of their own to avoid that, see [`UDP_REPLY_TIMEOUT`]). Send
//! a caller socket's datagrams only to addresses that answer, or give each
//! destination a socket and close it when it stalls. smoltcp's DHCP client
//! keeps no such queue: it builds each message when its timers say so.
//!
//! [`ServerConfig::caller_sockets`]: super::ServerConfig::caller_sockets
//! [`UDP_REPLY_TIMEOUT`]: super::UDP_REPLY_TIMEOUT

use smoltcp::iface::SocketHandle;
use smoltcp::socket::AnySocket;

use super::Server;

impl<'a> Server<'a> {
    /// Adds a socket of the caller's to the set the server polls, in one of
    /// the [`caller_sockets`](super::ServerConfig::caller_sockets) slots.
    /// When those are taken, hands the socket back.
    ///
    /// A DHCP client that configures the interface the server listens on:
    ///
    /// ```
    /// use reversal_core::{Server, ServerConfig, StaticResources};
    /// use smoltcp::iface::{Config, Interface};
    /// use smoltcp::phy::{Loopback, Medium};
    /// use smoltcp::socket::dhcpv4;
    /// use smoltcp::time::Instant;
    /// use smoltcp::wire::{EthernetAddress, IpCidr};
    ///
    /// let mut device = Loopback::new(Medium::Ethernet);
    /// let mac = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
    /// let mut iface = Interface::new(Config::new(mac.into()), &mut device, Instant::ZERO);
    ///
    /// // 1 session + a busy socket + UDP's two + the DHCP client = 5 slots.
    /// let mut resources = StaticResources::<'_, 1, 5, 256, 256, 64>::new();
    /// let config = ServerConfig::new(1, 64).with_caller_sockets(1);
    /// let mut server = Server::new(config, &mut resources).unwrap();
    /// let dhcp = server.add_socket(dhcpv4::Socket::new()).unwrap();
    ///
    /// // The poll loop: after each poll, apply what the DHCP client learnt.
    /// let now = Instant::ZERO;
    /// let next = server.poll(now, &mut iface, &mut device);
    /// assert!(next.is_some(), "the DHCP client's retry is a deadline of the server's poll");
    /// if let Some(dhcpv4::Event::Configured(lease)) = server.socket_mut::<dhcpv4::Socket>(dhcp).poll() {
    ///     iface.update_ip_addrs(|addresses| {
    ///         addresses.clear();
    ///         addresses.push(IpCidr::Ipv4(lease.address)).unwrap();
    ///     });
    /// }
    ///
    /// // No slot left for a second one: it is handed back.
    /// assert!(server.add_socket(dhcpv4::Socket::new()).is_err());
    /// ```
    pub fn add_socket<T: AnySocket<'a>>(&mut self, socket: T) -> Result<SocketHandle, T> {
        let server_sockets = self.own_sockets().count();
        let added = self.sockets.iter().count() - server_sockets;
        if added >= self.config.caller_sockets {
            return Err(socket);
        }
        Ok(self.sockets.add(socket))
    }

    /// A socket added with [`add_socket`](Self::add_socket).
    ///
    /// # Panics
    ///
    /// If `handle` is one of the server's own sockets (a `SocketHandle` can
    /// be made with `Default`), or `T` is not the socket's type.
    ///
    /// ```
    /// # use reversal_core::{Server, ServerConfig, StaticResources};
    /// use smoltcp::socket::udp;
    ///
    /// # let mut resources = StaticResources::<'_, 1, 5, 256, 256, 64>::new();
    /// let config = ServerConfig::new(1, 64).with_caller_sockets(1);
    /// let mut server = Server::new(config, &mut resources).unwrap();
    /// let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 512]);
    /// let sntp = server.add_socket(udp::Socket::new(buffer(), buffer())).unwrap();
    /// server.socket_mut::<udp::Socket>(sntp).bind(123).unwrap();
    /// assert!(server.socket::<udp::Socket>(sntp).is_open());
    /// ```
    pub fn socket<T: AnySocket<'a>>(&self, handle: SocketHandle) -> &T {
        self.check_caller_socket(handle);
        self.sockets.get(handle)
    }

    /// A socket added with [`add_socket`](Self::add_socket), to use between
    /// polls.
    ///
    /// # Panics
    ///
    /// As [`socket`](Self::socket).
    ///
    /// See the [`add_socket`](Self::add_socket) example.
    pub fn socket_mut<T: AnySocket<'a>>(&mut self, handle: SocketHandle) -> &mut T {
        self.check_caller_socket(handle);
        self.sockets.get_mut(handle)
    }

    fn check_caller_socket(&self, handle: SocketHandle) {
        let owned_by_server = self.own_sockets().any(|own| own == handle);
        assert!(
            !owned_by_server,
            "not a socket added with Server::add_socket"
        );
    }
}

#[cfg(test)]
mod tests {
    use smoltcp::iface::{Config, Interface, SocketHandle};
    use smoltcp::phy::{Device, Loopback, Medium, RxToken};
    use smoltcp::socket::dhcpv4;
    use smoltcp::time::{Duration, Instant};
    use smoltcp::wire::{
        DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, Ipv4Packet,
        UdpPacket,
    };

    use crate::server::ConfigError;
    use crate::{Server, ServerConfig, StaticResources};

    /// One session, a busy socket, UDP's two sockets and one caller slot.
    type Resources = StaticResources<'static, 1, 5, 256, 256, 64>;

    fn server_with(caller_sockets: usize) -> Server<'static> {
        let resources: &'static mut Resources = Box::leak(Box::default());
        let config = ServerConfig::new(1, 64).with_caller_sockets(caller_sockets);
        Server::new(config, resources).unwrap()
    }

    fn ethernet() -> (Loopback, Interface) {
        let mut device = Loopback::new(Medium::Ethernet);
        let mac = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
        let iface = Interface::new(Config::new(mac.into()), &mut device, Instant::ZERO);
        (device, iface)
    }

    /// The DHCP message type of the frame the device holds, if any.
    fn dhcp_message_sent(device: &mut Loopback) -> Option<DhcpMessageType> {
        let (rx, _) = device.receive(Instant::ZERO)?;
        rx.consume(|frame| {
            let ip =
                Ipv4Packet::new_checked(EthernetFrame::new_checked(frame).ok()?.payload()).ok()?;
            let udp = UdpPacket::new_checked(ip.payload()).ok()?;
            let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
            Some(DhcpRepr::parse(&dhcp).ok()?.message_type)
        })
    }

    #[test]
    fn a_caller_socket_is_polled_with_the_servers_and_sets_the_deadline() {
        let (mut device, mut iface) = ethernet();
        let mut server = server_with(1);
        assert_eq!(server.poll(Instant::ZERO, &mut iface, &mut device), None);

        server.add_socket(dhcpv4::Socket::new()).unwrap();
        let next = server.poll(Instant::ZERO, &mut iface, &mut device);

        assert_eq!(
            dhcp_message_sent(&mut device),
            Some(DhcpMessageType::Discover)
        );
        // smoltcp's DHCP client retries a discovery after 10 s.
        assert_eq!(next, Some(Instant::ZERO + Duration::from_secs(10)));
    }

    #[test]
    fn sockets_beyond_the_reserved_slots_are_handed_back() {
        let mut server = server_with(1);
        assert!(server.add_socket(dhcpv4::Socket::new()).is_ok());
        assert!(server.add_socket(dhcpv4::Socket::new()).is_err());
        assert!(server_with(0).add_socket(dhcpv4::Socket::new()).is_err());
    }

    #[test]
    fn reserved_slots_leave_a_spare_socket_for_a_busy_one() {
        let resources: &'static mut Resources = Box::leak(Box::default());
        let config = ServerConfig::new(1, 64).with_caller_sockets(2);
        let error = Server::new(config, resources).unwrap_err();
        let needed = ConfigError::SpareSockets {
            needed: 3,
            capacity: 2,
        };
        assert_eq!(error, needed);
    }

    #[test]
    #[should_panic(expected = "not a socket added with Server::add_socket")]
    fn the_servers_own_sockets_are_out_of_reach() {
        let mut server = server_with(1);
        server.socket_mut::<dhcpv4::Socket>(SocketHandle::default());
    }
}
