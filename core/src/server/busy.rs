//! The busy sockets: listeners beyond the sessions that tell a client
//! `ERR busy` and close.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::config::ServerConfig;
use super::context::Context;
use super::socket::{NO_PEER, finish_connection, relisten, tcp_socket};
use crate::fmt::net_info;
use crate::reply::{ErrorReply, MAX_ERROR_REPLY};

/// Most sockets answering `ERR busy` at once. A connection that waited the
/// admission wait in the listen backlog goes to the first busy socket that
/// listens, and waits on while they are all saying no to others. The
/// resources say how many a server has, 1 to this many.
pub const BUSY_SOCKETS: usize = 4;
/// Receive buffer of a busy socket: it reads nothing, it only says no (a
/// client that sends more waits on a closed window until the `ERR busy`).
pub(super) const BUSY_RX: usize = 16;
/// Send buffer of a busy socket: its one reply.
pub(super) const BUSY_TX: usize = MAX_ERROR_REPLY;

/// A socket that tells clients beyond the sessions `ERR busy`.
#[derive(Debug, Clone, Copy)]
struct Busy {
    handle: SocketHandle,
    phase: BusyPhase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum BusyPhase {
    Listening,
    Closing { since: Instant },
}

/// The busy sockets, after the session sockets in the set: smoltcp hands a
/// SYN to the first listening socket, so they only get one when every
/// session socket is taken.
#[derive(Debug)]
pub(super) struct BusySockets {
    sockets: heapless::Vec<Busy, BUSY_SOCKETS>,
}

impl BusySockets {
    /// A listening socket over each pair of `buffers` (receive, send), up
    /// to [`BUSY_SOCKETS`], added to `sockets`.
    pub(super) fn new<'a>(
        buffers: impl Iterator<Item = (&'a mut [u8], &'a mut [u8])>,
        sockets: &mut SocketSet<'a>,
        config: &ServerConfig,
    ) -> Self {
        let mut busy = heapless::Vec::new();
        for (rx, tx) in buffers.take(BUSY_SOCKETS) {
            let mut socket = tcp_socket(rx, tx);
            relisten(&mut socket, config);
            // Cannot fail: at most BUSY_SOCKETS pairs of buffers.
            let _ = busy.push(Busy {
                handle: sockets.add(socket),
                phase: BusyPhase::Listening,
            });
        }
        BusySockets { sockets: busy }
    }

    /// The busy sockets.
    pub(super) fn handles(&self) -> impl Iterator<Item = SocketHandle> {
        self.sockets.iter().map(|busy| busy.handle)
    }

    /// Rejects, and ends rejections; true if anything changed.
    pub(super) fn service(&mut self, sockets: &mut SocketSet<'_>, cx: &mut Context<'_>) -> bool {
        let mut changed = false;
        for busy in &mut self.sockets {
            let socket = sockets.get_mut::<tcp::Socket>(busy.handle);
            changed |= busy.service(socket, cx);
        }
        changed
    }

    /// Stops listening.
    pub(super) fn shutdown(&self, sockets: &mut SocketSet<'_>) {
        for busy in &self.sockets {
            if busy.phase == BusyPhase::Listening {
                sockets.get_mut::<tcp::Socket>(busy.handle).abort();
            }
        }
    }

    /// When a rejected client's time is up, if one is still there.
    pub(super) fn deadline(&self, config: &ServerConfig) -> Option<Instant> {
        self.sockets
            .iter()
            .filter_map(|busy| match busy.phase {
                BusyPhase::Listening => None,
                BusyPhase::Closing { since } => Some(since + config.close_timeout),
            })
            .min()
    }
}

impl Busy {
    fn service(&mut self, socket: &mut tcp::Socket<'_>, cx: &mut Context<'_>) -> bool {
        let state = socket.state();
        match self.phase {
            BusyPhase::Listening => match state {
                tcp::State::Established | tcp::State::CloseWait => {
                    let mut reply = [0u8; MAX_ERROR_REPLY];
                    if let Some(n) = ErrorReply::Busy.write(b"\n", &mut reply) {
                        // The send buffer is empty and BUSY_TX long.
                        let _ = socket.send_slice(&reply[..n]);
                    }
                    socket.close();
                    // The handshake is over: from here the close timeout
                    // bounds how long the reply may take to get through.
                    socket.set_timeout(None);
                    cx.totals.errors.busy += 1;
                    net_info!(
                        "busy: rejected {}",
                        socket.remote_endpoint().unwrap_or(NO_PEER)
                    );
                    self.phase = BusyPhase::Closing { since: cx.now };
                    true
                }
                tcp::State::Closed if !cx.shutting_down => {
                    relisten(socket, cx.config);
                    true
                }
                _ => false,
            },
            BusyPhase::Closing { since } => {
                // Once the FIN is acknowledged the client has its reply;
                // its own FIN can meet a listening socket (which resets it).
                let done = matches!(
                    state,
                    tcp::State::Closed | tcp::State::TimeWait | tcp::State::FinWait2
                );
                // A lost `ERR busy` or FIN is retransmitted (after 1 s, then
                // 2 s, ...): the client gets the close timeout to take both,
                // as a session's client does.
                if !done && cx.now < since + cx.config.close_timeout {
                    return false;
                }
                if !done {
                    socket.abort();
                }
                self.phase = BusyPhase::Listening;
                finish_connection(socket, cx.config, cx.shutting_down);
                true
            }
        }
    }
}
