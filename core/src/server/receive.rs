//! Taking frames in: the ingress filter's table of held connections,
//! refreshed from the sockets, the listen backlog told what the sockets
//! do, then smoltcp's ingress through both ([`Ingress`], then the
//! [`Listener`]'s device), with the session sockets' write ends recorded
//! on the way.

use smoltcp::iface::{Interface, PollIngressSingleResult, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{AnySocket, tcp};
use smoltcp::time::Instant;

use super::Roles;
use crate::ingress::{Connection, HeldConnections, Ingress, WriteEnds};
use crate::listener::Listener;

/// Frames taken in per round, so a flood cannot keep the answers waiting.
const MAX_INGRESS: usize = 64;

/// Lets smoltcp take in up to [`MAX_INGRESS`] frames, with repeated SYNs of
/// connections the server's TCP sockets already hold kept from the
/// listeners and the write ends of the rest recorded in `write_ends` (see
/// [`crate::ingress`]), and connections no socket can take yet kept in the
/// listen backlog. True if more frames may be waiting.
pub(super) fn receive<D: Device + ?Sized>(
    now: Instant,
    iface: &mut Interface,
    device: &mut D,
    sockets: &mut SocketSet<'_>,
    held: &mut HeldConnections<'_>,
    (listener, roles): (&mut Listener<'_>, &Roles),
    write_ends: &mut WriteEnds<'_>,
) -> bool {
    update(now, sockets, held, listener, roles);
    iface.poll_maintenance(now);
    let mut filters = (held, write_ends);
    let mut device = Ingress::new(device, &mut filters);
    let mut device = listener.device(&mut device);
    for _ in 0..MAX_INGRESS {
        let frame = iface.poll_ingress_single(now, &mut device, sockets);
        if frame == PollIngressSingleResult::None {
            return false;
        }
    }
    true
}

/// In one pass over the server's TCP sockets (sessions first): refills the
/// table of held connections and shows the listener what each socket
/// does. Then gives each socket whose half-open handshake gave way a
/// fresh slot: smoltcp keeps a socket's wait for an unanswered ARP in the
/// set, where it would hold the next SYN-ACK back for up to a second (see
/// [`Listener::reclaimed`]). Nothing before these sockets is ever removed
/// from the set, so each gets its handle back.
fn update(
    now: Instant,
    sockets: &mut SocketSet<'_>,
    held: &mut HeldConnections<'_>,
    listener: &mut Listener<'_>,
    roles: &Roles,
) {
    held.clear();
    let shown = sockets.iter_mut().filter_map(|(handle, socket)| {
        let role = roles.of(handle)?;
        let socket = tcp::Socket::downcast_mut(socket)?;
        if let Some(connection) = held_connection(socket) {
            held.hold(connection);
        }
        Some((role, socket))
    });
    listener.update(now, shown);
    for index in listener.reclaimed() {
        let handle = sockets
            .iter()
            .filter(|(handle, socket)| {
                roles.of(*handle).is_some() && tcp::Socket::downcast(socket).is_some()
            })
            .nth(index)
            .map(|(handle, _)| handle);
        if let Some(handle) = handle {
            let socket = sockets.remove(handle);
            let again = sockets.add(socket);
            debug_assert_eq!(again, handle, "a slot before the server's sockets was free");
        }
    }
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
