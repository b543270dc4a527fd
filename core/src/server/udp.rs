//! The UDP socket: each datagram answered with one datagram.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::udp;

use super::context::Context;
use crate::datagram::{self, Answer};
use crate::fmt::{net_debug, net_warn};

/// Datagrams each UDP buffer can hold at once.
pub const UDP_PACKETS: usize = 8;

/// The UDP socket, bound to the server's UDP port.
#[derive(Debug)]
pub(super) struct Udp {
    handle: SocketHandle,
}

impl Udp {
    /// A socket over the caller's buffers, bound to `port` and added to
    /// `sockets`. Binding only fails for port 0, checked at start.
    pub(super) fn bind<'a>(
        port: u16,
        rx: udp::PacketBuffer<'a>,
        tx: udp::PacketBuffer<'a>,
        sockets: &mut SocketSet<'a>,
    ) -> Self {
        let mut socket = udp::Socket::new(rx, tx);
        if socket.bind(port).is_err() {
            net_warn!("cannot bind UDP port {}", port);
        }
        Udp {
            handle: sockets.add(socket),
        }
    }

    /// The socket.
    pub(super) const fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// Answers the datagrams waiting, as far as the send queue takes the
    /// answers; true if any was taken.
    pub(super) fn service(&self, sockets: &mut SocketSet<'_>, cx: &mut Context<'_>) -> bool {
        let socket = sockets.get_mut::<udp::Socket>(self.handle);
        let session = &cx.config.session;
        let mut moved = false;
        while let Ok((payload, meta)) = socket.peek() {
            let answer = datagram::answer(session.mode, session.max_line, payload, cx.scratch);
            let meta = *meta;
            match answer {
                Answer::Reversed(len) | Answer::Error { len, .. } => {
                    match socket.send_slice(&cx.scratch[..len], meta) {
                        Ok(()) => {}
                        // Answer it once the queue has drained; it stays unread.
                        Err(udp::SendError::BufferFull) => break,
                        Err(udp::SendError::Unaddressable) => {
                            net_debug!("udp: no route to {}", meta.endpoint);
                            cx.totals.udp_dropped += 1;
                        }
                    }
                    if let Answer::Error { code, .. } = answer {
                        cx.totals.errors.count(code);
                    }
                }
                Answer::Dropped(code) => {
                    net_debug!(
                        "udp: {} error from {} dropped (no amplification)",
                        code,
                        meta.endpoint
                    );
                    cx.totals.udp_dropped += 1;
                }
            }
            let _ = socket.recv();
            cx.totals.udp_datagrams += 1;
            moved = true;
        }
        moved
    }

    /// Stops taking datagrams.
    pub(super) fn close(&self, sockets: &mut SocketSet<'_>) {
        sockets.get_mut::<udp::Socket>(self.handle).close();
    }
}
