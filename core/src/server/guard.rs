//! The SYN guard's wiring: which connections the sockets hold, refreshed
//! before each batch of frames smoltcp takes in.

use smoltcp::iface::{Interface, PollIngressSingleResult, SocketHandle};
use smoltcp::phy::Device;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::{MAX_INGRESS, Server};
use crate::syn_guard::SynGuard;

impl<'a, const SESSIONS: usize, const LINE: usize> Server<'a, SESSIONS, LINE> {
    /// Lets smoltcp take in up to [`MAX_INGRESS`] frames, with repeated SYNs
    /// of connections our sockets already hold kept from the listeners (see
    /// `syn_guard`). True if more frames may be waiting.
    pub(super) fn receive<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
    ) -> bool {
        let sockets = &self.sockets;
        let connection = |handle: SocketHandle| {
            let socket = sockets.get::<tcp::Socket>(handle);
            let open = !matches!(
                socket.state(),
                tcp::State::Listen | tcp::State::Closed | tcp::State::TimeWait
            );
            let peer = socket.remote_endpoint().filter(|_| open)?;
            Some((peer, socket.local_endpoint()?.port))
        };
        self.held.sessions.clear();
        for (peer, port) in self.handles.iter().filter_map(|&h| connection(h)) {
            self.held.sessions.hold(peer, port);
        }
        self.held.busy.clear();
        for (peer, port) in self.busy.iter().filter_map(|b| connection(b.handle)) {
            self.held.busy.hold(peer, port);
        }
        iface.poll_maintenance(now);
        let mut guarded = SynGuard::new(device, &self.held);
        for _ in 0..MAX_INGRESS {
            let frame = iface.poll_ingress_single(now, &mut guarded, &mut self.sockets);
            if frame == PollIngressSingleResult::None {
                return false;
            }
        }
        true
    }
}
