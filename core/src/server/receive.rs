//! Taking frames in: the ingress filter's table of held connections,
//! refreshed from the sockets, then smoltcp's ingress through [`Ingress`],
//! with the session sockets' write ends recorded on the way.

use smoltcp::iface::{Interface, PollIngressSingleResult, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use crate::ingress::{Connection, HeldConnections, Ingress, WriteEnds};

/// Frames taken in per round, so a flood cannot keep the answers waiting.
const MAX_INGRESS: usize = 64;

/// Lets smoltcp take in up to [`MAX_INGRESS`] frames, with repeated SYNs of
/// connections the TCP sockets (`tcp_sockets`) already hold kept from the
/// listeners and the write ends of the rest recorded in `write_ends` (see
/// [`crate::ingress`]). True if more frames may be waiting.
pub(super) fn receive<D: Device + ?Sized>(
    now: Instant,
    iface: &mut Interface,
    device: &mut D,
    sockets: &mut SocketSet<'_>,
    tcp_sockets: impl Iterator<Item = SocketHandle>,
    held: &mut HeldConnections<'_>,
    write_ends: &mut WriteEnds<'_>,
) -> bool {
    held.clear();
    for handle in tcp_sockets {
        if let Some(connection) = held_connection(sockets.get::<tcp::Socket>(handle)) {
            held.hold(connection);
        }
    }
    iface.poll_maintenance(now);
    let mut filters = (held, write_ends);
    let mut device = Ingress::new(device, &mut filters);
    for _ in 0..MAX_INGRESS {
        let frame = iface.poll_ingress_single(now, &mut device, sockets);
        if frame == PollIngressSingleResult::None {
            return false;
        }
    }
    true
}

/// The connection a socket holds: from the first SYN until it is over.
pub(super) fn held_connection(socket: &tcp::Socket<'_>) -> Option<Connection> {
    let open = !matches!(
        socket.state(),
        tcp::State::Listen | tcp::State::Closed | tcp::State::TimeWait
    );
    let peer = socket.remote_endpoint().filter(|_| open)?;
    let port = socket.local_endpoint()?.port;
    Some(Connection { peer, port })
}
