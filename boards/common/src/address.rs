//! The board's IPv4 address, prefix and gateway: leased by DHCPv4 (the
//! `dhcp` feature, on by default), or fixed at build time (without it).
//!
//! The DHCP client is smoltcp's, in a socket slot the server keeps for the
//! board ([`Server::add_socket`]), so the server's poll runs it; after each
//! poll, [`Addressing::update`] applies what it learnt to the interface.
//! Renewals that change nothing are silent; a lost lease takes the address
//! away (the sockets keep listening, and answer again on the next lease).
//!
//! QEMU's user network with `restrict=on` leases an address and a netmask
//! but no gateway: the host side's address is on the link, so none is needed.

use smoltcp::iface::Interface;
use smoltcp::wire::{HardwareAddress, Ipv4Address};

use crate::resources::BoardServer;

#[cfg(feature = "dhcp")]
pub use self::dhcp::Addressing;
#[cfg(not(feature = "dhcp"))]
pub use self::fixed::Addressing;

/// The port the server listens on (TCP and UDP), for the log.
const PORT: u16 = crate::resources::server_config().port;

fn log_serving(address: Ipv4Address, iface: &Interface) {
    if let HardwareAddress::Ethernet(mac) = iface.hardware_addr() {
        defmt::info!("serving at {}:{} (mac {})", address, PORT, mac);
    }
}

#[cfg(feature = "dhcp")]
mod dhcp {
    use smoltcp::iface::{Interface, SocketHandle};
    use smoltcp::socket::dhcpv4;
    use smoltcp::wire::{IpCidr, Ipv4Cidr};

    use super::{BoardServer, log_serving};

    /// Leases held longer than this are renewed as if they ended here.
    #[cfg(feature = "test-lease")]
    const TEST_LEASE: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(20);

    /// The DHCP client, in the server's socket set, and its lease.
    #[derive(Debug)]
    pub struct Addressing {
        dhcp: SocketHandle,
        lease: Option<Ipv4Cidr>,
    }

    impl Addressing {
        /// Starts the DHCP client; the interface has no address until the
        /// first lease.
        pub fn start(server: &mut BoardServer, _iface: &mut Interface) -> Self {
            #[allow(unused_mut)]
            let mut socket = dhcpv4::Socket::new();
            #[cfg(feature = "test-lease")]
            socket.set_max_lease_duration(Some(TEST_LEASE));
            let dhcp = match server.add_socket(socket) {
                Ok(handle) => handle,
                Err(_) => defmt::panic!("no socket slot left for the DHCP client"),
            };
            defmt::info!("DHCP: asking for an address");
            Self { dhcp, lease: None }
        }

        /// Applies a new lease, or the loss of one, to the interface.
        pub fn update(&mut self, server: &mut BoardServer, iface: &mut Interface) {
            match server.socket_mut::<dhcpv4::Socket>(self.dhcp).poll() {
                None => {}
                Some(dhcpv4::Event::Configured(lease)) => {
                    defmt::info!(
                        "DHCP lease: {} from server {}, gateway {}",
                        lease.address,
                        lease.server.address,
                        lease.router
                    );
                    iface.update_ip_addrs(|addresses| {
                        addresses.clear();
                        // Cannot fail: room for one address at least.
                        let _ = addresses.push(IpCidr::Ipv4(lease.address));
                    });
                    match lease.router {
                        Some(router) => {
                            // Cannot fail: the route table was emptied first.
                            iface.routes_mut().remove_default_ipv4_route();
                            let _ = iface.routes_mut().add_default_ipv4_route(router);
                        }
                        None => {
                            iface.routes_mut().remove_default_ipv4_route();
                        }
                    }
                    log_serving(lease.address.address(), iface);
                    self.lease = Some(lease.address);
                }
                // Also the client's first word, before any lease.
                Some(dhcpv4::Event::Deconfigured) => {
                    if let Some(lost) = self.lease.take() {
                        defmt::warn!("DHCP lease {} lost: no address until the next one", lost);
                    }
                    iface.update_ip_addrs(|addresses| addresses.clear());
                    iface.routes_mut().remove_default_ipv4_route();
                }
            }
        }
    }
}

#[cfg(not(feature = "dhcp"))]
mod fixed {
    use smoltcp::iface::Interface;
    use smoltcp::wire::{IpCidr, Ipv4Address};

    use super::{BoardServer, log_serving};

    /// QEMU's user network: the guest's usual address, and slirp's gateway.
    const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
    const PREFIX_LEN: u8 = 24;
    const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

    /// A fixed address, set once.
    #[derive(Debug)]
    pub struct Addressing;

    impl Addressing {
        /// Gives the interface its fixed address and default route.
        pub fn start(_server: &mut BoardServer, iface: &mut Interface) -> Self {
            iface.update_ip_addrs(|addresses| {
                defmt::unwrap!(addresses.push(IpCidr::new(ADDRESS.into(), PREFIX_LEN)));
            });
            defmt::unwrap!(iface.routes_mut().add_default_ipv4_route(GATEWAY));
            log_serving(ADDRESS, iface);
            Self
        }

        /// Nothing changes a fixed address.
        pub fn update(&mut self, _server: &mut BoardServer, _iface: &mut Interface) {}
    }
}
