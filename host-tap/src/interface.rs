//! smoltcp's interface for our side of the network, as `host-tap` and
//! `tap-echo` both set it up.

use smoltcp::iface::{Config, Interface};
use smoltcp::phy::Device;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::HardwareAddress;

use crate::settings::NetworkSettings;

/// How long the fragments of an IPv4 datagram may take to arrive in full
/// before smoltcp frees their reassembly buffer. Its four buffers are shared
/// with anyone who sends a first fragment and never the rest; the fragments
/// of one datagram leave their sender back to back and arrive within
/// milliseconds on a link, and a client whose datagram lost one sends it
/// again after a timeout of its own. (RFC 1122 asks for 60 to 120 s, for
/// fragments on long paths; smoltcp's default is 60 s.)
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(2);

/// smoltcp's interface: our MAC, addresses and default routes, a random
/// seed of its own for TCP sequence numbers and ephemeral ports, and the
/// [`REASSEMBLY_TIMEOUT`].
///
/// ```
/// use host_tap::settings::{DEFAULT_MAC, NetworkSettings, parse_unicast_mac};
/// use smoltcp::phy::{Loopback, Medium};
/// use smoltcp::time::Instant;
///
/// let network = NetworkSettings {
///     mac: parse_unicast_mac(DEFAULT_MAC).unwrap(),
///     addresses: vec!["192.168.69.1/24".parse().unwrap()],
///     ipv4_gateway: Some("192.168.69.254".parse().unwrap()),
///     ipv6_gateway: None,
/// };
/// let mut device = Loopback::new(Medium::Ethernet);
/// let iface = host_tap::interface::create(&network, &mut device, Instant::now());
/// assert_eq!(iface.ip_addrs(), network.addresses.as_slice());
/// assert_eq!(iface.reassembly_timeout(), host_tap::interface::REASSEMBLY_TIMEOUT);
/// ```
pub fn create<D: Device>(network: &NetworkSettings, device: &mut D, now: Instant) -> Interface {
    let mut config = Config::new(HardwareAddress::Ethernet(network.mac));
    // TCP initial sequence numbers and ephemeral ports must not be predictable.
    config.random_seed = random_seed();
    let mut iface = Interface::new(config, device, now);
    iface.set_reassembly_timeout(REASSEMBLY_TIMEOUT);
    iface.update_ip_addrs(|addresses| {
        for &cidr in &network.addresses {
            if addresses.push(cidr).is_err() {
                log::warn!("address {cidr} left out: the interface is full");
            }
        }
    });
    if let Some(gateway) = network.ipv4_gateway
        && iface.routes_mut().add_default_ipv4_route(gateway).is_err()
    {
        log::warn!("IPv4 gateway {gateway} left out: the route table is full");
    }
    if let Some(gateway) = network.ipv6_gateway
        && iface.routes_mut().add_default_ipv6_route(gateway).is_err()
    {
        log::warn!("IPv6 gateway {gateway} left out: the route table is full");
    }
    iface
}

/// A random number from std's per-process random hash keys.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}
