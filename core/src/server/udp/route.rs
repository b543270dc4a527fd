//! Whether a reply can be routed at all: known before it is queued.
//!
//! smoltcp sends to an address on one of the interface's subnets directly
//! and to any other through the route that covers it; without either it
//! cannot send (`NoRoute`), and a UDP socket would keep the reply at the
//! head of its queue. The interface's `route` is private, so this asks the
//! same two questions through the public API: its addresses, and its
//! routing table's entries. It errs towards "routable": a route counts even
//! past its expiry, and a reply sent in vain is dropped after
//! [`UDP_REPLY_TIMEOUT`](super::UDP_REPLY_TIMEOUT) anyway.

use smoltcp::iface::Interface;
use smoltcp::wire::IpAddress;

/// Whether `iface` has a way to send to `address`: a subnet of its own
/// holds it, or a route covers it.
pub(super) fn exists(iface: &mut Interface, address: IpAddress) -> bool {
    if iface
        .ip_addrs()
        .iter()
        .any(|cidr| cidr.contains_addr(&address))
    {
        return true;
    }
    // `Routes` shows its entries only to `update`, which changes nothing here.
    let mut routed = false;
    iface.routes_mut().update(|routes| {
        routed = routes
            .iter()
            .any(|route| route.cidr.contains_addr(&address));
    });
    routed
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::iface::Config;
    use smoltcp::phy::{Loopback, Medium};
    use smoltcp::time::Instant;
    use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address, Ipv6Address};

    fn interface() -> Interface {
        let mut device = Loopback::new(Medium::Ethernet);
        let mac = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
        let mut iface = Interface::new(Config::new(mac.into()), &mut device, Instant::ZERO);
        iface.update_ip_addrs(|addresses| {
            addresses
                .push(IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24))
                .unwrap();
            addresses
                .push(IpCidr::new(IpAddress::v6(0xfdaa, 0, 0, 0, 0, 0, 0, 1), 64))
                .unwrap();
        });
        iface
    }

    #[test]
    fn an_address_on_a_subnet_of_the_interface_is_routable() {
        let mut iface = interface();
        assert!(exists(&mut iface, IpAddress::v4(10, 0, 0, 77)));
        assert!(exists(
            &mut iface,
            IpAddress::v6(0xfdaa, 0, 0, 0, 0, 0, 0, 9)
        ));
    }

    #[test]
    fn an_address_off_every_subnet_is_routable_only_through_a_gateway() {
        let mut iface = interface();
        let far = IpAddress::v4(192, 0, 2, 9);
        let link_local = IpAddress::v6(0xfe80, 0, 0, 0, 0, 0, 0, 9);
        assert!(!exists(&mut iface, far));
        assert!(!exists(&mut iface, link_local));

        let gateway = Ipv4Address::new(10, 0, 0, 254);
        iface.routes_mut().add_default_ipv4_route(gateway).unwrap();
        assert!(exists(&mut iface, far));
        assert!(!exists(&mut iface, link_local));

        let gateway = Ipv6Address::new(0xfdaa, 0, 0, 0, 0, 0, 0, 0xfe);
        iface.routes_mut().add_default_ipv6_route(gateway).unwrap();
        assert!(exists(&mut iface, link_local));
    }
}
