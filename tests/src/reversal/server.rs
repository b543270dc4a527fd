//! The reversal server as a party.

use core::fmt;

use reversal_core::server::ConfigError;
use reversal_core::{Counters, Server, ServerConfig, ServerResources};
use smoltcp::iface::Interface;
use smoltcp::time::Instant;
use smoltcp::wire::IpCidr;

use crate::segment::Port;
use crate::sim::Party;

/// The reversal [`Server`] on a [`Port`] of its own, as a [`Party`].
///
/// See the [module example](super).
pub struct ServerParty<const SESSIONS: usize, const LINE: usize> {
    server: Server<'static, SESSIONS, LINE>,
    iface: Interface,
    port: Port,
}

impl<const SESSIONS: usize, const LINE: usize> ServerParty<SESSIONS, LINE> {
    /// A server with `config` on `port`, at `address`, its interface created
    /// at `now` from [`Port::interface_config`].
    ///
    /// The resources are borrowed for the server's whole life; in a test,
    /// `Box::leak(Box::default())` gives them that life. Keep them moderate
    /// in debug builds, where the value passes over the stack.
    ///
    /// # Errors
    ///
    /// When `config` does not fit the resources, as [`Server::new`].
    pub fn new<const SOCKETS: usize, const RX: usize, const TX: usize>(
        mut port: Port,
        address: IpCidr,
        now: Instant,
        config: ServerConfig,
        resources: &'static mut ServerResources<'static, SESSIONS, SOCKETS, RX, TX, LINE>,
    ) -> Result<Self, ConfigError> {
        let server = Server::new(config, resources)?;
        let mut iface = Interface::new(port.interface_config(), &mut port, now);
        iface.update_ip_addrs(|addresses| {
            addresses
                .push(address)
                .expect("an interface holds at least one address");
        });
        Ok(ServerParty {
            server,
            iface,
            port,
        })
    }

    /// The server.
    pub fn server(&self) -> &Server<'static, SESSIONS, LINE> {
        &self.server
    }

    /// The server, e.g. to shut it down.
    pub fn server_mut(&mut self) -> &mut Server<'static, SESSIONS, LINE> {
        &mut self.server
    }

    /// What the server has done so far; shorthand for
    /// `server().counters()`.
    pub fn counters(&self) -> Counters {
        self.server.counters()
    }

    /// The server's port.
    pub fn port(&self) -> &Port {
        &self.port
    }
}

impl<const SESSIONS: usize, const LINE: usize> Party for ServerParty<SESSIONS, LINE> {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.server.poll(now, &mut self.iface, &mut self.port)
    }
}

impl<const SESSIONS: usize, const LINE: usize> fmt::Debug for ServerParty<SESSIONS, LINE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerParty")
            .field("server", &self.server)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}
