//! The ingress filters' wiring: which connections the sockets hold,
//! refreshed before each batch of frames smoltcp takes in through
//! [`Ingress`].

use smoltcp::iface::{Interface, PollIngressSingleResult, SocketHandle};
use smoltcp::phy::Device;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::{MAX_INGRESS, Server};
use crate::ingress::{Connection, Ingress};

impl<'a, const SESSIONS: usize, const LINE: usize> Server<'a, SESSIONS, LINE> {
    /// Lets smoltcp take in up to [`MAX_INGRESS`] frames, with repeated SYNs
    /// of connections our sockets already hold kept from the listeners (see
    /// `ingress`). True if more frames may be waiting.
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
            let port = socket.local_endpoint()?.port;
            Some(Connection { peer, port })
        };
        let handles = self.handles.iter().copied();
        let busy = self.busy.iter().map(|busy| busy.handle);
        self.held.clear();
        for held in handles.chain(busy).filter_map(connection) {
            self.held.hold(held);
        }
        iface.poll_maintenance(now);
        let mut guarded = Ingress::new(device, &mut self.held);
        for _ in 0..MAX_INGRESS {
            let frame = iface.poll_ingress_single(now, &mut guarded, &mut self.sockets);
            if frame == PollIngressSingleResult::None {
                return false;
            }
        }
        true
    }
}
