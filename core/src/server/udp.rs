//! UDP: each datagram answered with one datagram, through reply sockets
//! that a reply waiting for its sender's address cannot block.
//!
//! One socket, bound to the server's UDP port, receives every datagram
//! (it comes first in the set, and smoltcp hands a datagram to the first
//! socket bound to its port) and sends nothing. Replies leave through the
//! reply sockets (`replies`), each holding one reply at a time, so that a
//! reply whose sender never resolves holds up no other: see that module
//! for how long it waits and when it gives way. A reply to an address
//! without a route is not queued at all (`route`).

mod replies;
mod route;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::udp::{self, PacketBuffer, PacketMetadata};
use smoltcp::time::Instant;

use super::context::Context;
use super::deferred::Deferred;
use crate::datagram::{self, Answer};
use crate::fmt::{net_debug, net_warn};

pub(super) use replies::ReplySocket;
use replies::ReplySockets;
pub use replies::UDP_REPLY_TIMEOUT;

/// Datagrams the receiving socket holds at once.
pub const UDP_PACKETS: usize = 8;

/// The UDP sockets: the receiving one and the reply sockets.
#[derive(Debug)]
pub(super) struct Udp<'a> {
    receiver: SocketHandle,
    replies: ReplySockets<'a>,
}

/// Binds `socket` to `port`, which only fails for port 0, checked at start.
fn bind(socket: &mut udp::Socket<'_>, port: u16) {
    if socket.bind(port).is_err() {
        net_warn!("cannot bind UDP port {}", port);
    }
}

/// A buffer that holds no datagram: the receiving socket's send buffer and
/// the reply sockets' receive buffers.
fn receives_nothing<'a>() -> PacketBuffer<'a> {
    let metadata: &'a mut [PacketMetadata] = &mut [];
    let payload: &'a mut [u8] = &mut [];
    PacketBuffer::new(metadata, payload)
}

impl<'a> Udp<'a> {
    /// The receiving socket over `rx`, then a reply socket in each of
    /// `slots` over each of `reply_buffers` (metadata for one reply, and its
    /// bytes), all bound to `port` and added to `sockets` in that order.
    pub(super) fn bind(
        port: u16,
        rx: PacketBuffer<'a>,
        slots: &'a mut [Deferred<ReplySocket>],
        reply_buffers: impl Iterator<Item = (&'a mut [PacketMetadata], &'a mut [u8])>,
        sockets: &mut SocketSet<'a>,
    ) -> Self {
        let mut receiver = udp::Socket::new(rx, receives_nothing());
        bind(&mut receiver, port);
        let receiver = sockets.add(receiver);
        Udp {
            receiver,
            replies: ReplySockets::new(slots, reply_buffers, port, sockets),
        }
    }

    /// The receiving socket and the reply sockets.
    pub(super) fn handles(&self) -> impl Iterator<Item = SocketHandle> + '_ {
        core::iter::once(self.receiver).chain(self.replies.handles())
    }

    /// Answers the datagrams waiting, as far as the reply sockets take the
    /// answers, after dropping the replies that waited too long; true if
    /// anything changed.
    pub(super) fn service(
        &mut self,
        sockets: &mut SocketSet<'a>,
        cx: &mut Context<'_>,
        iface: &mut Interface,
    ) -> bool {
        let mut moved = false;
        self.replies.expire(cx.now, sockets, |to| {
            net_debug!(
                "udp: reply to {} dropped: no answer from its address in {}",
                to,
                UDP_REPLY_TIMEOUT
            );
            cx.totals.udp_dropped += 1;
            moved = true;
        });
        loop {
            let receiver = sockets.get_mut::<udp::Socket>(self.receiver);
            let Ok((payload, meta)) = receiver.peek() else {
                break;
            };
            let meta = *meta;
            let reply = if route::exists(iface, meta.endpoint.addr) {
                // Unread until a reply socket can take its answer.
                let Some(index) = self.replies.choose() else {
                    break;
                };
                let session = &cx.config.session;
                match datagram::answer(session.mode, session.max_line, payload, cx.scratch) {
                    Answer::Reversed(len) => Some((index, len)),
                    Answer::Error { code, len } => {
                        cx.totals.errors.count(code);
                        Some((index, len))
                    }
                    Answer::Dropped(code) => {
                        net_debug!(
                            "udp: {} error from {} dropped (no amplification)",
                            code,
                            meta.endpoint
                        );
                        None
                    }
                }
            } else {
                net_debug!("udp: no route to {}, not answered", meta.endpoint);
                None
            };
            let _ = receiver.recv();
            cx.totals.udp_datagrams += 1;
            moved = true;
            let Some((index, len)) = reply else {
                cx.totals.udp_dropped += 1;
                continue;
            };
            match self
                .replies
                .send(index, &cx.scratch[..len], meta, cx.now, sockets)
            {
                Ok(None) => {}
                Ok(Some(to)) => {
                    net_debug!(
                        "udp: reply to {} dropped: its address does not answer, and {} is waiting",
                        to,
                        meta.endpoint
                    );
                    cx.totals.udp_dropped += 1;
                }
                Err(_) => {
                    net_debug!("udp: reply to {} cannot be queued", meta.endpoint);
                    cx.totals.udp_dropped += 1;
                }
            }
        }
        moved
    }

    /// After a transmit pass (`device_full`: the device refused a frame):
    /// notes which replies left and which wait for their neighbour.
    pub(super) fn transmitted(&mut self, sockets: &SocketSet<'_>, device_full: bool) {
        self.replies.transmitted(sockets, device_full);
    }

    /// When the oldest waiting reply is to be dropped, if a reply waits.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.replies.deadline()
    }

    /// Stops taking datagrams and drops the replies not yet sent.
    pub(super) fn close(&mut self, sockets: &mut SocketSet<'_>) {
        sockets.get_mut::<udp::Socket>(self.receiver).close();
        self.replies.close(sockets);
    }
}
