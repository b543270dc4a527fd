//! The server's side of the write ends ([`WriteEnds`]): before each batch
//! of frames, which connection each session socket holds.

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;

use super::receive::held_connection;
use super::tcp::Sessions;
use crate::ingress::WriteEnds;
use crate::session::Session;

/// Lets each session socket's entry follow the connection the socket
/// holds: first every socket that holds one (so that each claims its SYN
/// wherever it was recorded), then every socket that holds none.
pub(super) fn refresh(
    write_ends: &mut WriteEnds<'_>,
    sockets: &SocketSet<'_>,
    sessions: &Sessions<'_>,
) {
    let connections = || {
        sessions
            .handles()
            .map(|handle| held_connection(sockets.get::<tcp::Socket>(handle)))
            .enumerate()
    };
    for (index, connection) in connections() {
        if let Some(connection) = connection {
            write_ends.hold(index, connection);
        }
    }
    for (index, connection) in connections() {
        if connection.is_none() {
            write_ends.release(index);
        }
    }
}

/// Tells `session`, which has taken its bytes out of `socket` (session
/// socket `index`), whether they end at a write end of its client with
/// nothing more readable: only then may its idle flush answer a partial
/// line.
pub(super) fn note_write_end(
    write_ends: &mut WriteEnds<'_>,
    index: usize,
    socket: &tcp::Socket<'_>,
    session: &mut Session<'_>,
) {
    let consumed = session.stats().bytes_in;
    let at_write_end = held_connection(socket).is_some_and(|connection| {
        write_ends.at_write_end(index, connection, consumed, socket.recv_queue())
    });
    session.set_at_write_boundary(at_write_end);
}
