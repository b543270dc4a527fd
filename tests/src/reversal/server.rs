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
pub struct ServerParty {
    server: Server<'static>,
    iface: Interface,
    port: Port,
}

impl ServerParty {
    /// A server with `config` on `port`, at `address`, its interface created
    /// at `now` from [`Port::interface_config`].
    ///
    /// The resources are borrowed for the server's whole life; in a test,
    /// `Box::leak(Box::new(HeapResources::new(capacity)))` gives them that
    /// life.
    ///
    /// # Errors
    ///
    /// When `config` does not fit the resources, as [`Server::new`].
    pub fn new(
        mut port: Port,
        address: IpCidr,
        now: Instant,
        config: ServerConfig,
        resources: impl Into<ServerResources<'static>>,
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
    pub fn server(&self) -> &Server<'static> {
        &self.server
    }

    /// The server, e.g. to shut it down.
    pub fn server_mut(&mut self) -> &mut Server<'static> {
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

impl Party for ServerParty {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.server.poll(now, &mut self.iface, &mut self.port)
    }
}

impl fmt::Debug for ServerParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerParty")
            .field("server", &self.server)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}
