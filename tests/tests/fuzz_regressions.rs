//! Failures the coverage-guided fuzz targets (`fuzz/`) found in the core,
//! each kept here as a whole-stack test over the simulated network.

use reversal_core::{Capacity, HeapResources, ServerConfig};
use reversal_sim::Host;
use reversal_sim::reversal::Network;
use smoltcp::time::Duration;
use smoltcp::wire::{IpCidr, IpEndpoint, Ipv4Address};

/// Off the server's subnet, and the server has no gateway.
const NO_ROUTE: Ipv4Address = Ipv4Address::new(192, 0, 2, 9);

/// Found by the `server` target (`Udp` from an IPv6 link-local address the
/// server has no route to, then the client's datagram): smoltcp keeps a
/// reply it cannot route at the head of the UDP socket's send queue, so one
/// datagram from such a sender stopped every later UDP reply. Here the
/// sender is a multi-homed host whose datagram leaves from an address
/// outside the server's subnet; its reply is now dropped (and counted)
/// before it is queued.
#[test]
fn a_datagram_from_a_sender_without_a_route_leaves_udp_serving() {
    let capacity = Capacity::new(2, 1024, 64).with_spare_sockets(2);
    let resources = Box::leak(Box::new(HeapResources::new(capacity)));
    let mut net = Network::new(0, ServerConfig::new(2, 64), resources).unwrap();
    let server = IpEndpoint::new(net.server_address().into(), 8888);

    let (port, address) = net.attach();
    let cidrs = [
        IpCidr::new(address.into(), 24),
        IpCidr::new(NO_ROUTE.into(), 32),
    ];
    let mut multi_homed = Host::new(port, &cidrs, net.sim.now());
    let socket = multi_homed.add_udp_socket(4, 1024);
    multi_homed.udp(socket).bind((NO_ROUTE, 5000)).unwrap();
    multi_homed
        .udp(socket)
        .send_slice(b"far\n", server)
        .unwrap();
    net.sim.add(multi_homed);
    net.sim.run_for(Duration::from_secs(1)).unwrap();

    let mut near = net.host();
    let socket = near.add_udp_socket(4, 1024);
    near.udp(socket).bind(5001).unwrap();
    near.udp(socket).send_slice(b"near\n", server).unwrap();
    let near = net.sim.add(near);
    let mut reply = None;
    let _ = net.sim.run_until(Duration::from_secs(10), |sim| {
        reply = sim[near]
            .udp(socket)
            .recv()
            .ok()
            .map(|(data, _)| data.to_vec());
        reply.is_some()
    });
    assert_eq!(
        reply.as_deref(),
        Some(&b"raen\n"[..]),
        "no UDP reply after the unroutable sender"
    );
    let counters = net.sim[net.server()].counters();
    assert_eq!((counters.udp_datagrams, counters.udp_dropped), (2, 1));
}
