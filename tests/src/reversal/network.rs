//! The fixture: a reversal server and its client hosts on one segment.

use core::fmt;

use reversal_core::server::ConfigError;
use reversal_core::{ServerConfig, ServerResources};
use smoltcp::iface::SocketHandle;
use smoltcp::time::Duration;
use smoltcp::wire::{IpCidr, IpEndpoint, Ipv4Address};

use super::client::{ClientParty, Conversation, ConversationId};
use super::script::Script;
use super::seed_client::SeedClient;
use super::server::ServerParty;
use crate::capture::FailureCapture;
use crate::host::Host;
use crate::segment::{Port, PortConfig, PortId};
use crate::sim::{PartyId, Sim};

/// Latency of every cable of a [`Network`].
const CABLE_LATENCY: Duration = Duration::from_millis(1);

/// Receive and send buffer of a [`Network::seed_client`]'s socket.
const SEED_CLIENT_BUFFER: usize = 4096;

/// The local port of the connection each [`Network`] client host opens.
const CLIENT_PORT: u16 = 40_000;

/// The [`Network`] server's address; clients count up from it.
const SERVER_ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);

/// A conversation in a [`Network`]: the client party that holds it, and
/// its id there.
#[derive(Debug, Clone, Copy)]
pub struct Talk {
    /// The client party, a host of its own.
    pub party: PartyId<ClientParty>,
    /// The conversation within the party.
    pub id: ConversationId,
}

/// A reversal server and its client hosts on one simulated segment, with
/// helpers to run scripted conversations: the fixture of whole-stack tests.
///
/// - The server, a [`ServerParty`], is at 10.0.0.1/24; each client host
///   gets the next address (10.0.0.2, 10.0.0.3, ...) on a port of its own.
/// - Every port is a clean cable with 1 ms of latency, so a round trip
///   between a client and the server takes 4 ms (two cables each way).
///   Faults are set on the segment, `sim.segment()`.
/// - The segment keeps a capture from the start. If the thread panics (a
///   test fails) while the network lives, the capture is written to
///   `target/sim-failures/`, named after the thread: libtest names each
///   test's thread after the test.
///
/// The simulation is a public field, to run it for a while, reach the
/// parties (`net.sim[talk.party]`, `net.sim[net.server()]`) and add
/// clients of other kinds.
///
/// # Example
///
/// Two clients, one of which closes while the other stays, and what the
/// server counted.
///
/// ```
/// use reversal_core::{Capacity, HeapResources, ServerConfig};
/// use reversal_sim::reversal::{Network, Script};
/// use smoltcp::time::Duration;
///
/// // The server borrows its memory for as long as it lives: leak it.
/// let capacity = Capacity::new(2, 1024, 128).with_spare_sockets(1);
/// let resources = Box::leak(Box::new(HeapResources::new(capacity)));
/// let mut net = Network::new(0, ServerConfig::new(2, 128), resources).unwrap();
///
/// let closing = net.talk(Script::new().send_line("hello").close());
/// let staying = net.talk(Script::new().send_line("abc"));
/// let conversation = net.run_until_ended(closing, Duration::from_secs(10));
/// assert_eq!(conversation.reply_text(), ["olleh\n"]);
/// assert!(!conversation.was_reset(), "the server closed with a FIN");
///
/// let conversation = net.run_until_replies(staying, 1, Duration::from_secs(10));
/// assert_eq!(conversation.reply_text(), ["cba\n"]);
/// assert!(!conversation.is_ended());
/// assert_eq!(net.sim[net.server()].counters().lines, 2);
/// ```
pub struct Network {
    /// The simulation: run it, reach its parties, read or change its
    /// segment.
    pub sim: Sim,
    server: PartyId<ServerParty>,
    server_port: PortId,
    config: ServerConfig,
    /// The last octet of the latest address handed out.
    last_octet: u8,
    _capture: FailureCapture,
}

impl Network {
    /// A segment with faults drawn from `seed` and a server with `config`
    /// on it, at virtual time zero; no client yet.
    ///
    /// The resources are borrowed for the server's whole life; in a test,
    /// `Box::leak(Box::new(HeapResources::new(capacity)))` gives them that
    /// life.
    ///
    /// # Errors
    ///
    /// When `config` does not fit the resources, as [`Server::new`](reversal_core::Server::new).
    pub fn new(
        seed: u64,
        config: ServerConfig,
        resources: impl Into<ServerResources<'static>>,
    ) -> Result<Self, ConfigError> {
        let mut sim = Sim::new(seed);
        let thread = std::thread::current();
        let capture = sim
            .segment()
            .capture_on_failure(thread.name().unwrap_or("reversal-network"));
        let port = sim.attach(Self::cable());
        let server_port = port.id();
        let server = ServerParty::new(
            port,
            IpCidr::new(SERVER_ADDRESS.into(), 24),
            sim.now(),
            config,
            resources,
        )?;
        let server = sim.add(server);
        Ok(Network {
            sim,
            server,
            server_port,
            config,
            last_octet: SERVER_ADDRESS.octets()[3],
            _capture: capture,
        })
    }

    /// Crashes the server: it loses every session and its port goes dark
    /// until [`restart_server`](Network::restart_server). Its clients do
    /// not notice until they send.
    ///
    /// ```
    /// use reversal_core::{Capacity, HeapResources, ServerConfig};
    /// use reversal_sim::reversal::{Network, Script};
    /// use smoltcp::time::Duration;
    ///
    /// let memory = || Box::leak(Box::new(HeapResources::new(Capacity::new(2, 1024, 128))));
    /// let resources = memory();
    /// let mut net = Network::new(0, ServerConfig::new(2, 128), resources).unwrap();
    /// let talk = net.talk(Script::new().send_line("before"));
    /// net.run_until_replies(talk, 1, Duration::from_secs(10));
    ///
    /// net.crash_server();
    /// net.sim.run_for(Duration::from_secs(5)).unwrap();
    /// // A reboot starts from fresh memory, as a board's does.
    /// let fresh = memory();
    /// net.restart_server(fresh).unwrap();
    ///
    /// // The old connection is gone: the next line gets a reset.
    /// net.continue_with(talk, Script::new().send_line("after"));
    /// assert!(net.run_until_ended(talk, Duration::from_secs(60)).was_reset());
    /// // A new connection from the same client is served.
    /// let again = net.reconnect(talk, Script::new().send_line("again").close());
    /// assert_eq!(net.run_until_ended(again, Duration::from_secs(10)).reply_text(), ["niaga\n"]);
    /// ```
    pub fn crash_server(&mut self) {
        self.sim.crash(self.server);
    }

    /// Boots the crashed server again on its port, with the same MAC,
    /// address and configuration, and new `resources`: a server borrows
    /// its memory for its whole life, so each boot needs its own.
    ///
    /// # Errors
    ///
    /// When the configuration does not fit the resources, as
    /// [`Server::new`](reversal_core::Server::new).
    ///
    /// # Panics
    ///
    /// If the server is running.
    pub fn restart_server(
        &mut self,
        resources: impl Into<ServerResources<'static>>,
    ) -> Result<(), ConfigError> {
        let port = self.sim.segment().reattach(self.server_port, None);
        let server = ServerParty::new(
            port,
            IpCidr::new(SERVER_ADDRESS.into(), 24),
            self.sim.now(),
            self.config,
            resources,
        )?;
        self.sim.restart(self.server, server);
        Ok(())
    }

    /// The server's port on the segment, e.g. to partition it away.
    ///
    /// ```
    /// use reversal_core::{Capacity, HeapResources, ServerConfig};
    /// use reversal_sim::reversal::Network;
    ///
    /// let resources = Box::leak(Box::new(HeapResources::new(Capacity::new(1, 512, 64))));
    /// let mut net = Network::new(0, ServerConfig::new(1, 64), resources).unwrap();
    /// let (client, _) = net.attach();
    /// net.sim.segment().partition(&[net.server_port()], &[client.id()]);
    /// ```
    pub fn server_port(&self) -> PortId {
        self.server_port
    }

    fn cable() -> PortConfig {
        PortConfig::new().latency(CABLE_LATENCY)
    }

    /// The server party: `net.sim[net.server()]`.
    pub fn server(&self) -> PartyId<ServerParty> {
        self.server
    }

    /// The server's address, 10.0.0.1.
    pub fn server_address(&self) -> Ipv4Address {
        SERVER_ADDRESS
    }

    /// Where the server listens for TCP: its address and configured port.
    pub fn server_endpoint(&self) -> IpEndpoint {
        (SERVER_ADDRESS, self.config.port).into()
    }

    /// Attaches a port for one more client, on a cable like every other,
    /// and hands out the next address, for clients made frame by frame.
    ///
    /// # Panics
    ///
    /// When the /24 has no address left, after 253 clients.
    pub fn attach(&mut self) -> (Port, Ipv4Address) {
        assert!(self.last_octet < 254, "no address left in 10.0.0.0/24");
        self.last_octet += 1;
        let [a, b, c, _] = SERVER_ADDRESS.octets();
        let address = Ipv4Address::new(a, b, c, self.last_octet);
        (self.sim.attach(Self::cable()), address)
    }

    /// The address of the latest client port ([`attach`](Network::attach),
    /// [`host`](Network::host), [`talk`](Network::talk), ...), if there is
    /// one.
    pub fn last_host_address(&self) -> Option<Ipv4Address> {
        let [a, b, c, server] = SERVER_ADDRESS.octets();
        (self.last_octet > server).then(|| Ipv4Address::new(a, b, c, self.last_octet))
    }

    /// A new client host on a port of its own, not yet added to the
    /// simulation.
    ///
    /// # Panics
    ///
    /// As [`attach`](Network::attach).
    pub fn host(&mut self) -> Host {
        let (port, address) = self.attach();
        Host::new(port, &[IpCidr::new(address.into(), 24)], self.sim.now())
    }

    /// A new client host with one TCP socket (buffers of `rx_len` and
    /// `tx_len` bytes) connecting to the server, for clients that do not
    /// follow a [`Script`]. The handshake starts when the host is first
    /// polled: add it to the simulation, in a party of its own or as it
    /// is.
    ///
    /// # Panics
    ///
    /// As [`attach`](Network::attach).
    pub fn raw_client(&mut self, rx_len: usize, tx_len: usize) -> (Host, SocketHandle) {
        let server = self.server_endpoint();
        let mut host = self.host();
        let socket = host.add_tcp_socket(rx_len, tx_len);
        host.tcp_connect(socket, server, CLIENT_PORT)
            .expect("a fresh socket connects to the server's endpoint");
        (host, socket)
    }

    /// A new client host with the lecture's client on it, sending
    /// `messages` one by one with no newline and waiting for each answer
    /// (see [`SeedClient`]), added to the simulation.
    ///
    /// # Panics
    ///
    /// As [`attach`](Network::attach), or when a message is longer than the
    /// client's 4 KiB send buffer.
    pub fn seed_client(&mut self, messages: &[&str]) -> PartyId<SeedClient> {
        let (host, socket) = self.raw_client(SEED_CLIENT_BUFFER, SEED_CLIENT_BUFFER);
        self.sim.add(SeedClient::new(host, socket, messages))
    }

    /// A new client host holding one conversation with the server that
    /// follows `script`, added to the simulation.
    ///
    /// # Panics
    ///
    /// As [`attach`](Network::attach).
    pub fn talk(&mut self, script: Script) -> Talk {
        let server = self.server_endpoint();
        let mut party = ClientParty::new(self.host());
        let id = party
            .connect(server, CLIENT_PORT, script)
            .expect("a fresh socket connects to the server's endpoint");
        Talk {
            party: self.sim.add(party),
            id,
        }
    }

    /// A new conversation following `script` from the host of `talk`, on
    /// the next local port: a client that connects again.
    ///
    /// See [`crash_server`](Network::crash_server).
    pub fn reconnect(&mut self, talk: Talk, script: Script) -> Talk {
        let server = self.server_endpoint();
        let party = &mut self.sim[talk.party];
        let local_port = CLIENT_PORT + party.conversations().len() as u16;
        let id = party
            .connect(server, local_port, script)
            .expect("a fresh socket connects to the server's endpoint");
        Talk {
            party: talk.party,
            id,
        }
    }

    /// The conversation so far.
    pub fn conversation(&self, talk: Talk) -> &Conversation {
        self.sim[talk.party].conversation(talk.id)
    }

    /// Appends `script`'s steps to those the conversation has yet to do,
    /// as [`ClientParty::continue_with`].
    pub fn continue_with(&mut self, talk: Talk, script: Script) {
        self.sim[talk.party].continue_with(talk.id, script);
    }

    /// Runs until the conversation has at least `count` replies or has
    /// ended, for at most `limit` of virtual time, and returns it.
    ///
    /// # Panics
    ///
    /// When the run stops first, with its [`RunError`](crate::RunError),
    /// which names the seed.
    pub fn run_until_replies(
        &mut self,
        talk: Talk,
        count: usize,
        limit: Duration,
    ) -> &Conversation {
        let result = self.sim.run_until(limit, |sim| {
            let conversation = sim[talk.party].conversation(talk.id);
            conversation.replies().len() >= count || conversation.is_ended()
        });
        if let Err(error) = result {
            panic!("waiting for {count} replies: {error}");
        }
        self.conversation(talk)
    }

    /// Runs until the conversation has ended, for at most `limit` of
    /// virtual time, and returns it.
    ///
    /// # Panics
    ///
    /// When the run stops first, with its [`RunError`](crate::RunError),
    /// which names the seed.
    pub fn run_until_ended(&mut self, talk: Talk, limit: Duration) -> &Conversation {
        let result = self.sim.run_until(limit, |sim| {
            sim[talk.party].conversation(talk.id).is_ended()
        });
        if let Err(error) = result {
            panic!("waiting for the conversation to end: {error}");
        }
        self.conversation(talk)
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("sim", &self.sim)
            .field("server", &self.server)
            .field("last_host_address", &self.last_host_address())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::ConversationError;
    use super::*;
    use crate::segment::PortConfig;
    use crate::sim::{PartyId, Sim};
    use reversal_core::client::ConnectError;
    use reversal_core::{Capacity, HeapResources};
    use smoltcp::wire::IpAddress;

    const SERVER: IpAddress = IpAddress::v4(10, 0, 0, 1);

    fn cidr(last_octet: u8) -> IpCidr {
        IpCidr::new(IpAddress::v4(10, 0, 0, last_octet), 24)
    }

    /// Memory for two sessions and one busy socket.
    fn small_resources() -> &'static mut HeapResources<'static> {
        let capacity = Capacity::new(2, 512, 64).with_spare_sockets(1);
        Box::leak(Box::new(HeapResources::new(capacity)))
    }

    /// A server with two sessions and a client party with one
    /// conversation to `port` following `script`.
    fn talk(port: u16, script: Script) -> (Sim, PartyId<ClientParty>, ConversationId) {
        let mut sim = Sim::new(0);
        let resources = small_resources();
        let server = ServerParty::new(
            sim.attach(PortConfig::default()),
            cidr(1),
            sim.now(),
            ServerConfig::new(2, 64),
            resources,
        )
        .unwrap();
        sim.add(server);
        let host = Host::new(sim.attach(PortConfig::default()), &[cidr(2)], sim.now());
        let mut client = ClientParty::new(host);
        let id = client.connect((SERVER, port), 40_000, script).unwrap();
        let client = sim.add(client);
        (sim, client, id)
    }

    #[test]
    fn network_clients_get_the_addresses_after_the_server_in_order() {
        let resources = small_resources();
        let mut net = Network::new(0, ServerConfig::new(2, 64), resources).unwrap();
        assert_eq!(net.last_host_address(), None);
        let (_, first) = net.attach();
        assert_eq!(first, Ipv4Address::new(10, 0, 0, 2));
        net.host();
        assert_eq!(net.last_host_address(), Some(Ipv4Address::new(10, 0, 0, 3)));
    }

    #[test]
    fn a_pause_holds_back_the_steps_after_it() {
        let script = Script::new()
            .send_line("a")
            .pause(Duration::from_secs(2))
            .send_line("b");
        let (mut sim, client, id) = talk(8888, script);
        sim.run_until(Duration::from_secs(10), |sim| {
            sim[client].conversation(id).replies().len() == 2
        })
        .unwrap();
        let replies = sim[client].conversation(id).replies();
        assert!(replies[1].at - replies[0].at >= Duration::from_secs(2));
    }

    #[test]
    fn a_refused_connection_ends_the_conversation_with_an_error() {
        let (mut sim, client, id) = talk(9, Script::new().send_line("anyone?"));
        sim.run_until(Duration::from_secs(10), |sim| {
            sim[client].conversation(id).is_ended()
        })
        .unwrap();
        let conversation = sim[client].conversation(id);
        assert_eq!(
            conversation.error(),
            Some(ConversationError::Connect(ConnectError::Refused))
        );
        assert!(conversation.was_reset());
    }

    #[test]
    fn continue_with_adds_steps_to_an_open_conversation() {
        let (mut sim, client, id) = talk(8888, Script::new().send_line("ab"));
        sim.run_until(Duration::from_secs(10), |sim| {
            !sim[client].conversation(id).replies().is_empty()
        })
        .unwrap();
        assert!(sim[client].conversation(id).script_done());
        sim[client].continue_with(id, Script::new().send("cd").close());
        sim.run_until(Duration::from_secs(10), |sim| sim[client].all_ended())
            .unwrap();
        let conversation = sim[client].conversation(id);
        assert_eq!(conversation.reply_text(), ["ba\n", "dc"]);
        assert!(!conversation.was_reset());
    }
}
