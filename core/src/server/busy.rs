//! The busy sockets: listeners beyond the sessions that tell a client
//! `ERR busy` and close.

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use super::Server;
use super::tcp::{NO_PEER, finish_connection, relisten};
use crate::fmt::net_info;
use crate::reply::{ErrorReply, MAX_ERROR_REPLY};

/// Most sockets answering `ERR busy` at once. smoltcp has no listen
/// backlog, so while one is still closing a rejection, a further SYN needs
/// another listening socket or it is reset. Socket slots beyond
/// `SESSIONS + 2` become busy sockets, up to this many.
pub const BUSY_SOCKETS: usize = 4;
/// Receive window of a busy socket: it reads nothing, it only says no.
pub(super) const BUSY_RX: usize = 64;
/// How long a rejected client may keep a busy socket after its `ERR busy`.
pub(super) const BUSY_LINGER: Duration = Duration::from_secs(1);

/// A socket that tells clients beyond the sessions `ERR busy`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Busy {
    pub(super) handle: SocketHandle,
    pub(super) phase: BusyPhase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) enum BusyPhase {
    Listening,
    Closing { since: Instant },
}

impl<'a, const SESSIONS: usize, const LINE: usize> Server<'a, SESSIONS, LINE> {
    pub(super) fn service_busy(&mut self, index: usize, now: Instant) -> bool {
        let busy = &mut self.busy[index];
        let socket = self.sockets.get_mut::<tcp::Socket>(busy.handle);
        let state = socket.state();
        match busy.phase {
            BusyPhase::Listening => match state {
                tcp::State::Established | tcp::State::CloseWait => {
                    let mut reply = [0u8; MAX_ERROR_REPLY];
                    if let Some(n) = ErrorReply::Busy.write(b"\n", &mut reply) {
                        // The send buffer is empty and MAX_ERROR_REPLY long.
                        let _ = socket.send_slice(&reply[..n]);
                    }
                    socket.close();
                    self.totals.errors.busy += 1;
                    net_info!(
                        "busy: rejected {}",
                        socket.remote_endpoint().unwrap_or(NO_PEER)
                    );
                    busy.phase = BusyPhase::Closing { since: now };
                    true
                }
                tcp::State::Closed if !self.shutting_down => {
                    relisten(socket, &self.config);
                    true
                }
                _ => false,
            },
            BusyPhase::Closing { since } => {
                let done = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
                if !done && now < since + BUSY_LINGER {
                    return false;
                }
                if !done {
                    socket.abort();
                }
                busy.phase = BusyPhase::Listening;
                finish_connection(socket, &self.config, self.shutting_down);
                true
            }
        }
    }
}
