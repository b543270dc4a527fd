//! The UDP socket: each datagram answered with one datagram.

use smoltcp::socket::udp;

use super::Server;
use crate::datagram::{self, Answer};
use crate::fmt::net_debug;

/// Datagrams each UDP buffer can hold at once.
pub const UDP_PACKETS: usize = 8;

impl<'a, const SESSIONS: usize, const LINE: usize> Server<'a, SESSIONS, LINE> {
    pub(super) fn service_udp(&mut self) -> bool {
        let Some(handle) = self.udp else {
            return false;
        };
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        let session = &self.config.session;
        let mut moved = false;
        while let Ok((payload, meta)) = socket.peek() {
            let answer = datagram::answer(session.mode, session.max_line, payload, self.scratch);
            let meta = *meta;
            match answer {
                Answer::Reversed(len) | Answer::Error { len, .. } => {
                    match socket.send_slice(&self.scratch[..len], meta) {
                        Ok(()) => {}
                        // Answer it once the queue has drained; it stays unread.
                        Err(udp::SendError::BufferFull) => break,
                        Err(udp::SendError::Unaddressable) => {
                            net_debug!("udp: no route to {}", meta.endpoint);
                            self.totals.udp_dropped += 1;
                        }
                    }
                    if let Answer::Error { code, .. } = answer {
                        self.totals.errors.count(code);
                    }
                }
                Answer::Dropped(code) => {
                    net_debug!(
                        "udp: {} error from {} dropped (no amplification)",
                        code,
                        meta.endpoint
                    );
                    self.totals.udp_dropped += 1;
                }
            }
            let _ = socket.recv();
            self.totals.udp_datagrams += 1;
            moved = true;
        }
        moved
    }
}
